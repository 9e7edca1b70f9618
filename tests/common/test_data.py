from pathlib import Path

import numpy as np
import pytest

import common  # noqa: F401
import tensorflow as tf

from common.data import eval_pairs, train_dataset
from common.degradations import degrade, degrade_tf
from common.images import read_image, rgb_to_y_tf, write_image

SET5 = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "Set5"


def batches(ds, n):
    return [(lr.numpy(), hr.numpy()) for lr, hr in ds.take(n)]


@pytest.fixture(scope="module")
def textures(tmp_path_factory):
    """Three random 8-bit RGB images of different sizes."""
    folder = tmp_path_factory.mktemp("textures")
    rng = np.random.default_rng(0)
    for i, (h, w) in enumerate([(40, 52), (36, 36), (48, 40)]):
        write_image(folder / f"img{i}.png", rng.integers(0, 256, (h, w, 3), dtype=np.uint8))
    return folder


@pytest.fixture(scope="module")
def flat_colours(tmp_path_factory):
    """Six constant grey images (value 10*(k+1)/255) that identify the source of a crop."""
    folder = tmp_path_factory.mktemp("flat")
    for k in range(6):
        write_image(folder / f"c{k}.png", np.full((30, 34, 3), 10 * (k + 1), np.uint8))
    return folder


def source_ids(hr):
    """Image number k of each crop from `flat_colours` (asserting the crop is constant)."""
    values = np.round(hr * 255).reshape(len(hr), -1)
    assert (values == values[:, :1]).all()
    return [int(v) // 10 - 1 for v in values[:, 0]]


def test_same_seed_gives_identical_batches_and_other_seed_differs(textures):
    kw = dict(scale=4, hr_patch=24, batch_size=4)
    a = batches(train_dataset(textures, seed=3, **kw), 3)
    b = batches(train_dataset(textures, seed=3, **kw), 3)
    c = batches(train_dataset(textures, seed=4, **kw), 3)
    for (lr_a, hr_a), (lr_b, hr_b) in zip(a, b):
        assert lr_a.tobytes() == lr_b.tobytes() and hr_a.tobytes() == hr_b.tobytes()
    assert not np.array_equal(a[0][1], c[0][1])
    assert not np.array_equal(a[0][1], a[1][1])  # the stream moves on


@pytest.mark.parametrize("scale", [2, 4])
def test_shapes_dtypes_and_range(textures, scale):
    lr, hr = next(iter(train_dataset(textures, scale=scale, hr_patch=24, batch_size=5)))
    assert hr.shape == (5, 24, 24, 3) and lr.shape == (5, 24 // scale, 24 // scale, 3)
    assert hr.dtype == tf.float32 and lr.dtype == tf.float32
    assert 0.0 <= float(tf.reduce_min(lr)) and float(tf.reduce_max(lr)) <= 1.0
    # LR is quantised to 8 bits like a saved file.
    np.testing.assert_allclose(lr.numpy() * 255, np.round(lr.numpy() * 255), atol=1e-4)


def test_lr_upsampled_and_y_only(textures):
    kw = dict(scale=2, hr_patch=24, batch_size=4, seed=1)
    lr_rgb, hr_rgb = next(iter(train_dataset(textures, **kw)))
    lr_up, hr_up = next(iter(train_dataset(textures, lr_upsampled=True, **kw)))
    assert lr_up.shape == hr_up.shape == (4, 24, 24, 3)
    np.testing.assert_array_equal(hr_up, hr_rgb)
    lr_y, hr_y = next(iter(train_dataset(textures, y_only=True, **kw)))
    assert lr_y.shape == (4, 12, 12, 1) and hr_y.shape == (4, 24, 24, 1)
    np.testing.assert_allclose(hr_y, rgb_to_y_tf(hr_rgb), atol=1e-6)
    np.testing.assert_allclose(lr_y, rgb_to_y_tf(lr_rgb), atol=1e-6)
    lr_yu, _ = next(iter(train_dataset(textures, y_only=True, lr_upsampled=True, **kw)))
    assert lr_yu.shape == (4, 24, 24, 1)


def test_grayscale_file_becomes_three_channels(tmp_path):
    grey = np.random.default_rng(1).integers(0, 256, (32, 32), dtype=np.uint8)
    write_image(tmp_path / "grey.png", grey[..., None])
    assert read_image(tmp_path / "grey.png").shape == (32, 32, 3)
    for cache in (True, False):
        lr, hr = next(iter(train_dataset(tmp_path, scale=2, hr_patch=16, batch_size=2, cache=cache)))
        assert hr.shape == (2, 16, 16, 3) and lr.shape == (2, 8, 8, 3)
        hr = hr.numpy()
        assert np.array_equal(hr[..., 0], hr[..., 1]) and np.array_equal(hr[..., 0], hr[..., 2])


def find_window(image, patch, transforms):
    """Whether `patch` equals some transform of a window of `image`."""
    size = patch.shape[0]
    for t in transforms:
        target = t(patch)
        for y in range(image.shape[0] - size + 1):
            for x in range(image.shape[1] - size + 1):
                if np.array_equal(image[y : y + size, x : x + size], target):
                    return True
    return False


def test_crops_are_windows_and_lr_is_the_quantised_degradation(tmp_path):
    image = np.random.default_rng(2).integers(0, 256, (20, 26, 3), dtype=np.uint8)
    write_image(tmp_path / "a.png", image)
    source = read_image(tmp_path / "a.png")
    lr, hr = next(iter(train_dataset(tmp_path, scale=4, hr_patch=12, batch_size=6, augment=False)))
    expected = tf.floor(tf.clip_by_value(degrade_tf(hr, 4, "bicubic"), 0, 1) * 255 + 0.5) / 255
    np.testing.assert_array_equal(lr, expected)
    for patch, small in zip(hr.numpy(), lr.numpy()):
        assert find_window(source, patch, [lambda p: p])
        # Close to the numpy (MATLAB) protocol away from the border.
        ref = degrade(patch, 4, "bicubic")
        assert np.abs(small - ref)[1:-1, 1:-1].max() < 2.5 / 255
    # With augmentation every crop is a flipped/rotated window of the image.
    _, hr = next(iter(train_dataset(tmp_path, scale=4, hr_patch=12, batch_size=8, seed=5)))
    dihedral = [lambda p, k=k, f=f: np.rot90(p[:, ::-1] if f else p, k) for k in range(4) for f in (0, 1)]
    assert all(find_window(source, patch, dihedral) for patch in hr.numpy())
    plain = sum(find_window(source, patch, [lambda p: p]) for patch in hr.numpy())
    assert plain < 8  # some crops really were transformed


@pytest.mark.parametrize("name", ["gaussian", "nearest"])
def test_other_degradations(textures, name):
    lr, hr = next(iter(train_dataset(textures, scale=4, hr_patch=24, batch_size=2, degradation=name,
                                     augment=False)))
    assert lr.shape == (2, 6, 6, 3)
    expected = tf.floor(tf.clip_by_value(degrade_tf(hr, 4, name), 0, 1) * 255 + 0.5) / 255
    np.testing.assert_array_equal(lr, expected)


def test_each_epoch_visits_every_image_once(flat_colours):
    ds = train_dataset(flat_colours, scale=2, hr_patch=16, batch_size=6, seed=9)
    for _, hr in ds.take(3):
        assert sorted(source_ids(hr.numpy())) == list(range(6))
    finite = train_dataset(flat_colours, scale=2, hr_patch=16, batch_size=4, repeat=False,
                           patches_per_image=3)
    assert sum(1 for _ in finite) == 18 // 4


def test_start_step_continues_the_stream(textures):
    kw = dict(scale=2, hr_patch=16, batch_size=4, seed=2)
    full = batches(train_dataset(textures, **kw), 5)
    resumed = batches(train_dataset(textures, start_step=3, **kw), 2)
    for (lr_a, hr_a), (lr_b, hr_b) in zip(full[3:], resumed):
        np.testing.assert_array_equal(hr_a, hr_b)
        np.testing.assert_array_equal(lr_a, lr_b)


def test_small_images_are_skipped(flat_colours, tmp_path):
    for path in sorted(flat_colours.iterdir())[:2]:
        (tmp_path / path.name).write_bytes(path.read_bytes())
    write_image(tmp_path / "tiny.png", np.full((10, 40, 3), 250, np.uint8))
    with pytest.warns(UserWarning, match="skipped 1 image"):
        ds = train_dataset(tmp_path, scale=2, hr_patch=16, batch_size=8)
    _, hr = next(iter(ds))
    assert set(source_ids(hr.numpy())) == {0, 1}
    _, hr = next(iter(train_dataset(tmp_path, scale=2, hr_patch=16, batch_size=8, cache=False)))
    assert set(source_ids(hr.numpy())) == {0, 1}
    with pytest.raises(ValueError, match="at least 48x48"):
        train_dataset(tmp_path, scale=2, hr_patch=48)


def test_sharding_with_an_input_context(flat_colours):
    seen = []
    for pipeline in range(2):
        ctx = tf.distribute.InputContext(num_input_pipelines=2, input_pipeline_id=pipeline,
                                         num_replicas_in_sync=2)
        ds = train_dataset(flat_colours, scale=2, hr_patch=16, batch_size=6, input_context=ctx)
        lr, hr = next(iter(ds))
        assert hr.shape == (3, 16, 16, 3) and lr.shape == (3, 8, 8, 3)  # per-replica batch
        seen.append({i for _, hr in ds.take(4) for i in source_ids(hr.numpy())})
    assert seen[0] and seen[1] and not seen[0] & seen[1]
    assert seen[0] | seen[1] == set(range(6))


def test_sharding_few_files_still_gives_different_streams(tmp_path, textures):
    (tmp_path / "one.png").write_bytes((textures / "img0.png").read_bytes())
    firsts = []
    for pipeline in range(2):
        ctx = tf.distribute.InputContext(2, pipeline, 2)
        firsts.append(next(iter(train_dataset(tmp_path, scale=2, hr_patch=16, batch_size=4,
                                              input_context=ctx)))[1].numpy())
    assert firsts[0].shape == (2, 16, 16, 3)
    assert not np.array_equal(firsts[0], firsts[1])


def test_uncached_pipeline_is_deterministic_and_covers_images(flat_colours):
    kw = dict(scale=2, hr_patch=16, batch_size=6, cache=False, seed=1, patches_per_image=2)
    a = batches(train_dataset(flat_colours, **kw), 4)
    b = batches(train_dataset(flat_colours, **kw), 4)
    for (lr_a, hr_a), (lr_b, hr_b) in zip(a, b):
        assert hr_a.tobytes() == hr_b.tobytes() and lr_a.tobytes() == lr_b.tobytes()
    assert a[0][0].shape == (6, 8, 8, 3)
    ids = [i for _, hr in a for i in source_ids(hr)]
    assert sorted(set(ids)) == list(range(6))


def test_bad_arguments(textures):
    with pytest.raises(ValueError, match="multiple of the scale"):
        train_dataset(textures, scale=3, hr_patch=16)
    with pytest.raises(ValueError, match="unknown degradation"):
        train_dataset(textures, scale=2, hr_patch=16, degradation="box")


def test_list_of_folders(textures, flat_colours):
    _, hr = next(iter(train_dataset([textures, flat_colours], scale=2, hr_patch=16, batch_size=9,
                                    patches_per_image=1)))
    flat = [np.ptp(p) == 0 for p in hr.numpy()]
    assert sum(flat) == 6  # one epoch of 9 images: the six flat ones and three textures


def test_eval_pairs_follow_the_protocol():
    pairs = list(eval_pairs(SET5, 4))
    assert [name for name, _, _ in pairs] == ["baby", "bird", "butterfly", "head", "woman"]
    for name, hr, lr in pairs:
        assert hr.dtype == lr.dtype == np.float32
        assert hr.shape[0] % 4 == 0 and hr.shape[1] % 4 == 0
        assert lr.shape == (hr.shape[0] // 4, hr.shape[1] // 4, 3)
        np.testing.assert_allclose(lr * 255, np.round(lr * 255), atol=1e-4)
    name, hr, lr = pairs[1]
    expected = np.floor(np.clip(degrade(hr, 4), 0, 1) * 255 + 0.5) / 255
    np.testing.assert_allclose(lr, expected, atol=1e-6)


def test_sixteen_bit_files_keep_their_precision(tmp_path):
    write_image(tmp_path / "deep.png", np.full((20, 20, 3), 1000, np.uint16))
    write_image(tmp_path / "plain.png", np.full((20, 20, 3), 200, np.uint8))
    _, hr = next(iter(train_dataset(tmp_path, scale=2, hr_patch=8, batch_size=2)))
    values = sorted({float(v) for v in np.unique(hr.numpy())})
    assert values == [np.float32(1000) / np.float32(65535), np.float32(200) / np.float32(255)]
