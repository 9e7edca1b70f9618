"""Small synthetic image folders for the training tests."""
import numpy as np

from common.images import write_image


def sinusoid_folders(root, size: int, val_size: int, max_freq: float, amplitude: float, noise: float = 0.0):
    """root/train/{a,b,c}.png (size x size) and root/val/{butterfly,other}.png (val_size crops of the
    same kind): RGB sinusoids of random frequencies in [1, max_freq], plus Gaussian noise."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:size, 0:size] / size
    for folder, names, side in (("train", ("a", "b", "c"), size), ("val", ("butterfly", "other"), val_size)):
        (root / folder).mkdir()
        for name in names:
            f = rng.uniform(1, max_freq, 3)
            image = 0.5 + amplitude * np.sin(f[None, None] * np.stack([xx, yy, xx + yy], -1) * np.pi)
            if noise:
                image += rng.normal(0, noise, image.shape)
            write_image(root / folder / f"{name}.png", np.clip(image[:side, :side], 0, 1).astype(np.float32))
    return root
