"""Shared library: images, degradations, data pipelines, metrics, VGG features, layers,
checkpoints, training harness and tiled inference.

Importing `common` imports TensorFlow quietly: its C++ start-up lines (CUDA probing on a
machine without a GPU) are written to stderr before any log level applies, so stderr is
silenced at the file-descriptor level while TensorFlow loads and probes devices.
Set SR_VERBOSE_TF=1 to see them.
"""
import contextlib
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


@contextlib.contextmanager
def silenced_stderr():
    """Hide lines C++ code writes straight to file descriptor 2 (unless SR_VERBOSE_TF is set)."""
    if os.environ.get("SR_VERBOSE_TF"):
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def _quiet_tensorflow_import():
    if os.environ.get("SR_VERBOSE_TF") or "tensorflow" in sys.modules:
        import tensorflow  # noqa: F401
        return
    with silenced_stderr():
        import tensorflow as tf

        tf.config.list_physical_devices("GPU")  # probes CUDA now, while stderr is silenced
    import logging

    tf.get_logger().setLevel(logging.ERROR)


_quiet_tensorflow_import()
