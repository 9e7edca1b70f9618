"""Chapters 3-4 of the thesis: the GAN game on three toy problems (Gaussian, mixture, sinusoid images).

`python -m gan_toys.train gaussian|mixture|sinusoids` runs one experiment; see gan_toys/train.py.
"""
import common  # noqa: F401  (imports TensorFlow quietly)
