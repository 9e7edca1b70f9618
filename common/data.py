"""tf.data pipelines of (LR, HR) training patches, and the evaluation pairs.

Training (`train_dataset`): the HR images are decoded once and kept in memory as 8-bit (16-bit
if any file is) in one flat buffer; every element is a random `hr_patch` crop of one image,
randomly flipped and rotated; its LR version is made on the fly with `degrade_tf` and rounded to
8 bits like a saved file. Elements yield `(lr, hr)` float32 batches in [0, 1].

Randomness is stateless and keyed on (seed, element index): the same arguments give byte-identical
batches, and element i is the same whichever way the pipeline is parallelised. Images are drawn
in "epochs": a seeded permutation visits each image `patches_per_image` times before any repeats.

Resuming: `start_step=S` starts the stream at element S * batch_size, so a resumed run continues
exactly where an uninterrupted run would be, without replaying the crops already seen.
(With `cache=False` the crops are mixed through a shuffle buffer instead; there `start_step` is
folded into the seed, so a resumed run draws fresh crops but not the identical continuation.)

Distribution: with a `tf.distribute.InputContext`, each input pipeline reads its own shard of the
file list (when there are at least as many files as pipelines), uses seed + pipeline id and
yields per-replica batches.
"""
import os
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

import common  # noqa: F401  (quiet TensorFlow import)
import tensorflow as tf

from common.degradations import degrade, make_degradation, upsample_bicubic_tf
from common.realworld import usm_sharpen
from common.images import decode_rgb, list_images, mod_crop, read_image, rgb_to_y_tf, to_uint8

# Salts separate the random streams that share one seed.
_PERM_SALT, _CROP_SALT, _DEGRADE_SALT = 0x5EED, 0xC0B, 0xDE6
_TF_DECODABLE = (".png", ".bmp", ".jpg", ".jpeg", ".gif")
_MAX_INDEX = np.iinfo(np.int64).max


def _image_paths(folders) -> list[Path]:
    if isinstance(folders, (str, os.PathLike)):
        folders = [folders]
    paths = [p for folder in folders for p in list_images(folder)]
    if not paths:
        raise ValueError(f"no images in {', '.join(str(f) for f in folders)}")
    return paths


def _load_integer_rgb(path) -> np.ndarray:
    """File -> (H, W, 3) uint8 or uint16 RGB; grey becomes 3 channels, alpha is dropped."""
    image = decode_rgb(path)
    return image if image.shape[2] == 3 else np.repeat(image[..., :1], 3, axis=2)


class _ImageCache:
    """All images in one flat buffer with per-image offsets and shapes (no 2 GB graph constant)."""

    def __init__(self, paths, min_size: int):
        workers = min(8, os.cpu_count() or 1)
        with ThreadPoolExecutor(workers) as pool:
            images = list(pool.map(_load_integer_rgb, paths))
        kept = [(p, im) for p, im in zip(paths, images) if min(im.shape[:2]) >= min_size]
        if not kept:
            raise ValueError(f"no image is at least {min_size}x{min_size} pixels")
        if len(kept) < len(images):
            warnings.warn(
                f"skipped {len(images) - len(kept)} image(s) smaller than {min_size}x{min_size}", stacklevel=3
            )
        self.paths = [p for p, _ in kept]
        sixteen = any(im.dtype == np.uint16 for _, im in kept)
        dtype = np.uint16 if sixteen else np.uint8
        self.max_value = 65535.0 if sixteen else 255.0
        flat = [
            (im.astype(np.uint16) * 257 if sixteen and im.dtype == np.uint8 else im).reshape(-1)
            for _, im in kept
        ]
        sizes = np.array([f.size for f in flat], np.int64)
        self.buffer = tf.constant(np.concatenate(flat).astype(dtype, copy=False))
        self.offsets = tf.constant(np.concatenate([[0], np.cumsum(sizes)[:-1]]), tf.int64)
        self.heights = tf.constant([im.shape[0] for _, im in kept], tf.int64)
        self.widths = tf.constant([im.shape[1] for _, im in kept], tf.int64)

    def __len__(self):
        return len(self.paths)

    def crop(self, k, y, x, size: int):
        """Float32 [0, 1] crop (size, size, 3) of image k at (y, x): slices only `size` rows."""
        width = self.widths[k]
        start = self.offsets[k] + y * width * 3
        rows = tf.reshape(tf.slice(self.buffer, [start], [size * width * 3]), [size, -1, 3])
        patch = rows[:, x : x + size]
        return tf.cast(patch, tf.float32) / self.max_value


def _crop_params(key, height, width, size: int):
    """Offsets and augmentation draws for one crop, from a stateless key."""
    u = tf.random.stateless_uniform([5], seed=key, dtype=tf.float32)
    y = tf.minimum(tf.cast(u[0] * tf.cast(height - size + 1, tf.float32), tf.int64), height - size)
    x = tf.minimum(tf.cast(u[1] * tf.cast(width - size + 1, tf.float32), tf.int64), width - size)
    return y, x, u[2:]


def _augment(patch, draws, size: int):
    """Random horizontal and vertical flips and a 90-degree rotation, from uniform draws."""
    patch = tf.cond(draws[0] < 0.5, lambda: tf.reverse(patch, [1]), lambda: patch)
    patch = tf.cond(draws[1] < 0.5, lambda: tf.reverse(patch, [0]), lambda: patch)
    patch = tf.image.rot90(patch, tf.cast(draws[2] * 4.0, tf.int32) % 4)
    return tf.ensure_shape(patch, [size, size, 3])


def _index_stream(n: int, seed: int, start: int, repeat: bool) -> tf.data.Dataset:
    """(element index, image index) pairs; each epoch is a seeded permutation of range(n)."""
    first_epoch = start // n
    last_epoch = _MAX_INDEX if repeat else first_epoch + 1
    perm_key = tf.constant([seed, _PERM_SALT], tf.int64)

    def epoch(e):
        key = tf.random.experimental.stateless_fold_in(perm_key, e)
        order = tf.random.experimental.stateless_shuffle(tf.range(n, dtype=tf.int64), seed=key)
        return tf.data.Dataset.from_tensor_slices(order)

    images = tf.data.Dataset.range(first_epoch, last_epoch).flat_map(epoch).skip(start - first_epoch * n)
    return tf.data.Dataset.zip(tf.data.Dataset.range(start, _MAX_INDEX), images)


def _quantise(x):
    """Round to 8 bits as a saved file would (half away from zero, like images.to_uint8)."""
    return tf.floor(tf.clip_by_value(x, 0.0, 1.0) * 255.0 + 0.5) / 255.0


def _shard(paths, seed, batch_size, input_context):
    """(paths, seed, per-replica batch, elements this pipeline consumes per training step)."""
    if input_context is None:
        return paths, seed, batch_size, batch_size
    n, i = input_context.num_input_pipelines, input_context.input_pipeline_id
    if len(paths) >= n:
        paths = paths[i::n]
    per_replica = input_context.get_per_replica_batch_size(batch_size)
    return paths, seed + i, per_replica, per_replica * (input_context.num_replicas_in_sync // n)


def train_dataset(
    folders,
    scale: int,
    hr_patch: int = 96,
    batch_size: int = 16,
    degradation="bicubic",
    augment: bool = True,
    seed: int = 0,
    repeat: bool = True,
    cache: bool = True,
    lr_upsampled: bool = False,
    y_only: bool = False,
    input_context: tf.distribute.InputContext | None = None,
    start_step: int = 0,
    patches_per_image: int | None = None,
    degradation_options=(),
    sharpen_hr: float = 0.0,
) -> tf.data.Dataset:
    """Batches `(lr, hr)` of random HR crops and their degraded LR versions (float32, [0, 1]).

    Shapes: hr (B, P, P, C), lr (B, P/s, P/s, C), or (B, P, P, C) with `lr_upsampled=True`
    (bicubic back to the HR size, not clipped, for pre-upsampling models like SRCNN);
    C = 1 with `y_only=True` (BT.601 Y channel), else 3.
    `patches_per_image`: visits per image per epoch with `cache=True` (default 1; only sets
    the epoch length when `repeat=False`); crops per decoded file with `cache=False` (default 8).
    Images smaller than `hr_patch` are skipped (with a warning when cached).
    `degradation`: a name of common.degradations (with `degradation_options`) or a degradation
    object; it runs on each crop before batching, its parameters drawn from (seed, element index).
    `sharpen_hr` > 0: HR crops are unsharp-masked with this weight first (Real-ESRGAN's USM targets;
    the LR is made from the sharpened crop, as there).
    `start_step`: the step a resumed run starts at (see the module notes); `input_context`:
    from `strategy.distribute_datasets_from_function`, for per-worker shards and batches.
    """
    if isinstance(degradation, str):
        degradation = make_degradation(degradation, degradation_options)
    if hr_patch % scale:
        raise ValueError(f"hr_patch {hr_patch} is not a multiple of the scale {scale}")
    paths, seed, batch, per_step = _shard(_image_paths(folders), int(seed), batch_size, input_context)
    start = int(start_step) * per_step

    if cache:
        images = _ImageCache(paths, hr_patch)
        per_image = patches_per_image or 1
        crop_key = tf.constant([seed, _CROP_SALT], tf.int64)

        def make_patch(i, slot):
            k = slot % len(images)
            key = tf.random.experimental.stateless_fold_in(crop_key, i)
            y, x, draws = _crop_params(key, images.heights[k], images.widths[k], hr_patch)
            patch = images.crop(k, y, x, hr_patch)
            if augment:
                return i, _augment(patch, draws, hr_patch)
            return i, tf.ensure_shape(patch, [hr_patch, hr_patch, 3])

        ds = _index_stream(len(images) * per_image, seed, start, repeat)
        ds = ds.map(make_patch, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    else:
        ds = _decoded_patches(paths, hr_patch, augment, seed + 7919 * int(start_step), repeat,
                              patches_per_image or 8).enumerate(start)

    degrade_key = tf.constant([seed, _DEGRADE_SALT], tf.int64)
    lr_patch = hr_patch // scale

    def make_pair(i, hr):
        key = tf.random.experimental.stateless_fold_in(degrade_key, i)
        if sharpen_hr:
            hr = usm_sharpen(hr, sharpen_hr)
        lr = tf.ensure_shape(_quantise(degradation(hr, key, scale)), [lr_patch, lr_patch, 3])
        if lr_upsampled:
            lr = upsample_bicubic_tf(lr, scale)
        if y_only:
            hr, lr = rgb_to_y_tf(hr), rgb_to_y_tf(lr)
        return lr, hr

    ds = ds.map(make_pair, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    ds = ds.batch(batch, drop_remainder=True)
    ds = ds.prefetch(tf.data.AUTOTUNE)
    options = tf.data.Options()
    options.deterministic = True
    return ds.with_options(options)


def _decoded_patches(paths, size, augment, seed, repeat, per_image):
    """Uncached variant: decode each drawn file, take `per_image` crops, mix in a shuffle buffer."""
    bad = [p for p in paths if p.suffix.lower() not in _TF_DECODABLE]
    if bad:
        raise ValueError(f"{bad[0]}: cache=False reads only {', '.join(_TF_DECODABLE)} files")
    files = tf.constant([str(p) for p in paths])
    crop_key = tf.constant([seed, _CROP_SALT], tf.int64)

    def crops(i, k):
        data = tf.io.read_file(files[k])
        image = tf.io.decode_image(data, channels=3, dtype=tf.float32, expand_animations=False)
        shape = tf.shape(image)
        # Too-small images are padded here so that cropping works, and dropped by the filter.
        image = tf.image.pad_to_bounding_box(
            image, 0, 0, tf.maximum(shape[0], size), tf.maximum(shape[1], size)
        )
        h, w = tf.cast(shape[0], tf.int64), tf.cast(shape[1], tf.int64)
        ph, pw = tf.maximum(h, size), tf.maximum(w, size)

        def one(j):
            key = tf.random.experimental.stateless_fold_in(crop_key, i * per_image + j)
            y, x, draws = _crop_params(key, ph, pw, size)
            patch = image[y : y + size, x : x + size]
            return _augment(patch, draws, size) if augment else tf.ensure_shape(patch, [size, size, 3])

        return tf.map_fn(one, tf.range(per_image, dtype=tf.int64), fn_output_signature=tf.float32), h, w

    ds = _index_stream(len(paths), seed, 0, repeat)
    ds = ds.map(crops, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    ds = ds.filter(lambda patches, h, w: tf.logical_and(h >= size, w >= size))
    ds = ds.map(lambda patches, h, w: patches).unbatch()
    return ds.shuffle(max(64, 4 * per_image), seed=seed, reshuffle_each_iteration=False)


VALIDATION_SEED = 2021  # the degraded validation sets' key: the same LR images on every run


def eval_pairs(folders, scale: int, degradation: str = "bicubic", seed: int = VALIDATION_SEED, options=()):
    """Yield (name, hr, lr) float32 RGB arrays by the evaluation protocol.

    hr = mod_crop(read_image(file), scale); lr = degrade(hr) rounded to 8 bits like a saved file.
    A random degradation (realesrgan, bsrgan) draws image k's parameters from (seed, k), k in the
    sorted file order: a fixed degraded validation set, never used to train (training keys are
    (seed, salt) folds, and the validation images are not in the training folders).
    """
    for index, path in enumerate(_image_paths(folders)):
        hr = mod_crop(read_image(path), scale)
        lr = to_uint8(degrade(hr, scale, degradation, seed, index, options)).astype(np.float32) / 255.0
        yield path.stem, hr, lr
