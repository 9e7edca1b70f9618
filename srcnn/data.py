"""SRCNN training data: whole images degraded once (as the paper), then sub-images."""
import numpy as np
import tensorflow as tf

from common.degradations import degrade, imresize
from common.images import list_images, mod_crop, read_image, rgb_to_y, to_uint8
from common.paths import resolve_data


def training_pairs(folders, scale: int, degradation: str = "bicubic", color: str = "y", seed: int = 0,
                   options=()):
    """[(bicubic input, HR target)] float32 (H, W, C) per image, LR quantised to 8 bits (a random
    degradation draws image k's parameters from (seed, k), once, as the paper degrades once)."""
    pairs = []
    paths = [path for folder in folders for path in list_images(resolve_data(folder))]
    for index, path in enumerate(paths):
        hr = mod_crop(read_image(path), scale)
        lr = to_uint8(degrade(hr, scale, degradation, seed, index, options)) / 255.0
        inp = imresize(lr, float(scale))
        if color == "y":
            hr, inp = rgb_to_y(hr)[..., None], rgb_to_y(np.clip(inp, 0, 1))[..., None]
        pairs.append((inp.astype(np.float32), hr.astype(np.float32)))
    return pairs


def sub_image_dataset(pairs, patch: int, border: int, batch_size: int, stride=None,
                      seed: int = 0, start_step: int = 0) -> tf.data.Dataset:
    """Endless batches of (input patch, central target patch).

    With `stride`, the paper's fixed grid of sub-images, reshuffled every epoch; without it,
    uniformly random crops. The random stream is keyed on (seed, start_step) so a resumed
    run continues with fresh batches.
    """
    pairs = [p for p in pairs if min(p[0].shape[:2]) >= patch]
    if stride:
        grid = [(i, y, x) for i, (inp, _) in enumerate(pairs)
                for y in range(0, inp.shape[0] - patch + 1, stride)
                for x in range(0, inp.shape[1] - patch + 1, stride)]
        grid = np.array(grid)
    channels = pairs[0][0].shape[2]
    out = patch - 2 * border

    def generate():
        rng = np.random.default_rng([seed, start_step])
        order, pos = None, 0
        while True:
            if stride:
                if order is None or pos + batch_size > len(order):
                    order, pos = rng.permutation(len(grid)), 0
                picks = grid[order[pos:pos + batch_size]]
                pos += batch_size
            else:
                idx = rng.integers(len(pairs), size=batch_size)
                picks = [(i, rng.integers(pairs[i][0].shape[0] - patch + 1),
                          rng.integers(pairs[i][0].shape[1] - patch + 1)) for i in idx]
            x = np.stack([pairs[i][0][y:y + patch, xx:xx + patch] for i, y, xx in picks])
            t = np.stack([pairs[i][1][y + border:y + border + out, xx + border:xx + border + out]
                          for i, y, xx in picks])
            yield x, t

    spec = (tf.TensorSpec((batch_size, patch, patch, channels), tf.float32),
            tf.TensorSpec((batch_size, out, out, channels), tf.float32))
    return tf.data.Dataset.from_generator(generate, output_signature=spec).prefetch(4)
