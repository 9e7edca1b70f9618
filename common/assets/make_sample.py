"""Build common/assets/sample.png, the project's bundled test image.

scikit-image's "astronaut" (Eileen Collins, NASA, public domain; shipped inside the scikit-image
package, so nothing is downloaded) downscaled to 256x256 with MATLAB-style bicubic.

    python -m common.assets.make_sample
"""
import common  # noqa: F401

from pathlib import Path

import numpy as np
from skimage import data

from common.degradations import imresize
from common.images import write_image

SAMPLE = Path(__file__).resolve().parent / "sample.png"
SIZE = 256


def make_sample(path=SAMPLE, size: int = SIZE) -> Path:
    image = data.astronaut().astype(np.float64) / 255.0  # 512x512 RGB uint8
    small = imresize(image, output_shape=(size, size))
    write_image(path, np.clip(small, 0.0, 1.0))
    return Path(path)


if __name__ == "__main__":
    out = make_sample()
    print(f"wrote {out} ({out.stat().st_size / 1024:.0f} KB)")
