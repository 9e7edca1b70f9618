"""Tiled inference: tiled == untiled, metadata handling, limits."""
import keras
import numpy as np
import pytest

from common import inference, tiling
from common.degradations import upsample_bicubic
from common.inference import InferenceError, upscale
from common.layers import PixelShuffle, Rescale
from tests.common.test_checkpoints import tiny_post, tiny_pre

RNG = np.random.default_rng(1)
IMAGE = RNG.random((64, 64, 3)).astype(np.float32)
CASES = {
    "post_rgb": (lambda: tiny_post(), {"scale": 2, "upsampling": "post", "color": "rgb"}),
    "pre_y_valid": (lambda: tiny_pre(1, "valid"), {"scale": 3, "upsampling": "pre", "color": "y"}),
    "pre_rgb_same": (lambda: tiny_pre(3, "same"),
                     {"scale": 2, "upsampling": "pre", "color": "rgb", "input_range": [-1, 1],
                      "output_range": [-1, 1]}),
}


def nearest_x2(input_range=(0.0, 1.0), output_range=(0.0, 1.0)) -> keras.Model:
    """Exact nearest-neighbour x2 upsampling that works in the given value ranges."""
    inp = keras.Input((None, None, 3))
    (ilo, ihi), (olo, ohi) = input_range, output_range
    x = Rescale(1.0 / (ihi - ilo), -ilo / (ihi - ilo))(inp)  # back to [0, 1]
    conv = keras.layers.Conv2D(12, 1, use_bias=False)
    x = conv(x)
    kernel = np.zeros((1, 1, 3, 12), np.float32)
    for k in range(4):
        for c in range(3):
            kernel[0, 0, c, 3 * k + c] = 1.0
    conv.set_weights([kernel])
    x = PixelShuffle(2)(x)
    return keras.Model(inp, Rescale(ohi - olo, olo)(x))


def identity(channels: int) -> keras.Model:
    inp = keras.Input((None, None, channels))
    conv = keras.layers.Conv2D(channels, 1)
    out = conv(inp)
    conv.set_weights([np.eye(channels, dtype=np.float32)[None, None], np.zeros(channels, np.float32)])
    return keras.Model(inp, out)


@pytest.mark.parametrize("case", sorted(CASES))
def test_tiled_equals_untiled(case):
    build, meta = CASES[case]
    model = build()
    whole = upscale(IMAGE, model, meta, tile=0)
    calls = []
    tiled = upscale(IMAGE, model, meta, tile=24, progress=lambda done, total: calls.append((done, total)))
    assert whole.shape == (64 * meta["scale"], 64 * meta["scale"], 3)
    assert calls[-1][0] == calls[-1][1] >= 9  # really tiled: at least 3x3 tiles
    assert np.abs(tiled - whole).max() <= 1 / 255
    assert 0.0 <= tiled.min() and tiled.max() <= 1.0


def test_tiles_need_their_overlap():
    """Control: without context around the tiles the seams show."""
    model = tiny_post()
    meta = CASES["post_rgb"][1]
    whole = upscale(IMAGE, model, meta, tile=0)
    seamy = upscale(IMAGE, model, meta, tile=24, tile_overlap=0)
    assert np.abs(seamy - whole).max() > 1e-3


def test_one_trace_for_all_tile_sizes():
    model = tiny_post()
    meta = CASES["post_rgb"][1]
    for tile in (16, 24, 0):
        upscale(IMAGE[:40, :50], model, meta, tile=tile, batch_size=3)
    assert inference._compiled(model).experimental_get_tracing_count() == 1


def test_value_ranges_are_mapped():
    image = IMAGE[:10, :12]
    expected = image.repeat(2, axis=0).repeat(2, axis=1)
    model = nearest_x2(input_range=(0, 255), output_range=(-1, 1))
    meta = {"scale": 2, "upsampling": "post", "color": "rgb", "input_range": [0, 255],
            "output_range": [-1, 1]}
    np.testing.assert_allclose(upscale(image, model, meta), expected, atol=1e-5)
    wrong = upscale(image, model, {**meta, "input_range": [0, 1]})
    assert np.abs(wrong - expected).max() > 0.1


def test_pre_upsampling_y_model_is_bicubic_when_identity():
    """A Y model that changes nothing gives plain bicubic upscaling (Cb/Cr bicubic too)."""
    image = IMAGE[:12, :10]
    out = upscale(image, identity(1), {"scale": 3, "upsampling": "pre", "color": "y"}, tile=0)
    np.testing.assert_allclose(out, np.clip(upsample_bicubic(image, 3), 0, 1), atol=2e-5)


def test_grey_input_keeps_its_shape():
    model, meta = tiny_post(), CASES["post_rgb"][1]
    grey = IMAGE[:20, :16, :1]
    assert upscale(grey, model, meta).shape == (40, 32, 1)
    assert upscale(grey[..., 0], model, meta).shape == (40, 32)
    out = upscale(grey, nearest_x2(), meta)[..., 0]
    np.testing.assert_allclose(out, grey[..., 0].repeat(2, 0).repeat(2, 1), atol=1e-5)


def test_image_too_small():
    build, meta = CASES["pre_y_valid"]
    with pytest.raises(InferenceError, match=r"image is 1x1 pixels; this model needs at least 2x2"):
        upscale(np.zeros((1, 1, 3), np.float32), build(), meta)
    assert upscale(np.zeros((2, 2, 3), np.float32), build(), meta).shape == (6, 6, 3)


def test_tile_too_small_for_overlap():
    with pytest.raises(InferenceError, match="too small"):
        upscale(IMAGE, tiny_post(), CASES["post_rgb"][1], tile=8, tile_overlap=4)


def test_metadata_must_match_model():
    with pytest.raises(InferenceError, match="enlarges x2 but its metadata says scale 4"):
        upscale(IMAGE[:8, :8], tiny_post(), {"scale": 4})
    with pytest.raises(InferenceError, match="color 'y' needs a 1-channel model"):
        upscale(IMAGE[:8, :8], tiny_post(), {"color": "y"})
    with pytest.raises(InferenceError, match="lacks the 'scale'"):
        upscale(IMAGE[:8, :8], identity(3), {"upsampling": "pre"})


def test_model_analysis():
    info = inference.analyze_model(tiny_post())
    assert (info.ratio, info.crop, info.receptive_field) == (2.0, 0.0, 2.0)
    info = inference.analyze_model(tiny_pre(1, "valid"))
    assert (info.ratio, info.crop, info.receptive_field, info.in_channels) == (1.0, 3.0, 3.0, 1)


def test_auto_tile_follows_available_memory(monkeypatch):
    assert inference.available_memory() > 0
    spec = inference.model_spec(tiny_post(64), CASES["post_rgb"][1])
    monkeypatch.setattr(tiling, "available_memory", lambda: 64 << 20)
    small = inference.auto_tile_size(spec, 2, spec.margin, 1)
    monkeypatch.setattr(tiling, "available_memory", lambda: 2 << 30)
    large = inference.auto_tile_size(spec, 2, spec.margin, 1)
    assert inference.MIN_TILE <= small < large <= inference.MAX_TILE
    assert small % 8 == 0 and large % 8 == 0


def test_precision_is_per_call():
    """No process-wide setting: each call (or Upscaler) names its precision."""
    model, meta = tiny_post(), CASES["post_rgb"][1]
    f32 = upscale(IMAGE[:16, :16], model, meta, tile=0)
    np.testing.assert_array_equal(f32, upscale(IMAGE[:16, :16], model, meta, tile=0, precision="float32"))
    assert not hasattr(inference, "set_precision")
    with pytest.raises(ValueError):
        upscale(IMAGE[:16, :16], model, meta, precision="float16")


def test_strip_bicubic_equals_whole_image_bicubic():
    image = RNG.random((37, 23)).astype(np.float32)
    strips = inference.upsample_bicubic_strips(image, 3, rows=8)
    np.testing.assert_allclose(strips, upsample_bicubic(image, 3), atol=1e-6)


def test_models_that_downsample_inside_get_aligned_tiles():
    """A strided conv needs even sides and a fixed phase: odd images are padded, tiles aligned."""
    inp = keras.Input((None, None, 3))
    x = keras.layers.Conv2D(8, 3, strides=2, padding="same", activation="relu")(inp)
    x = keras.layers.Conv2D(48, 3, padding="same")(x)
    model = keras.Model(inp, PixelShuffle(4)(x))  # x2 overall
    assert inference.analyze_model(model).multiple == 2
    image = IMAGE[:45, :63]
    whole = upscale(image, model, {"scale": 2}, tile=0)
    tiled = upscale(image, model, {"scale": 2}, tile=25)
    assert whole.shape == (90, 126, 3)
    assert np.abs(tiled - whole).max() <= 1 / 255


# --- geometric self-ensemble ------------------------------------------------------------------------


def test_dihedral_transforms_are_the_eight_and_invert():
    image = RNG.random((5, 7, 2)).astype(np.float32)  # not square: rotations change the shape
    seen = set()
    for k in range(8):
        turned = inference.dihedral(image, k)
        seen.add(turned.tobytes() + bytes(turned.shape))
        np.testing.assert_array_equal(inference.undo_dihedral(turned, k), image)
    assert len(seen) == 8


def test_self_ensemble_of_an_equivariant_upscaler_is_the_upscaler():
    """Bicubic (a symmetric kernel) commutes with flips and quarter turns; a wrongly undone pass
    would not line up and the mean would blur."""
    image = IMAGE[:12, :17]
    plain = upsample_bicubic(image, 3)
    np.testing.assert_allclose(inference.geometric_self_ensemble(lambda im: upsample_bicubic(im, 3), image),
                               plain, atol=2e-5)
    model, meta = nearest_x2(), {"scale": 2, "upsampling": "post", "color": "rgb"}
    np.testing.assert_allclose(upscale(image, model, meta, self_ensemble=True), upscale(image, model, meta),
                               atol=1e-6)


def test_self_ensemble_averages_the_eight_passes():
    model, meta = tiny_post(), CASES["post_rgb"][1]
    image = IMAGE[:20, :26]
    passes = [inference.undo_dihedral(upscale(np.ascontiguousarray(inference.dihedral(image, k)), model, meta), k)
              for k in range(8)]
    calls = []
    out = upscale(image, model, meta, tile=12, self_ensemble=True, progress=lambda *a: calls.append(a))
    assert out.shape == (40, 52, 3) and calls[-1] == (8, 8)
    np.testing.assert_allclose(out, np.mean(passes, axis=0), atol=2 / 255)  # tiled vs untiled passes
    assert np.abs(out - passes[0]).max() > 1e-3  # a random network is not flip-invariant
    assert upscale(image[..., 0], model, meta, self_ensemble=True).shape == (40, 52)
