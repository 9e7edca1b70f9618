"""Shared library: images, degradations, data pipelines, metrics, VGG features, layers,
checkpoints, training harness and tiled inference.

Importing `common` makes TensorFlow's import quiet, whenever it happens: its C++ start-up lines
(CUDA probing on a machine without a GPU) are written to stderr before any log level applies, so
stderr is silenced at the file-descriptor level while TensorFlow loads and probes devices.
TensorFlow itself is imported only by the modules that use it (an upscale that runs a cached
OpenVINO model never loads it). Set SR_VERBOSE_TF=1 to see the lines.
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


class _QuietTensorFlowLoader:
    """Runs TensorFlow's own loader with stderr silenced, then probes the GPUs (also silenced)."""

    def __init__(self, loader):
        self.loader = loader

    def __getattr__(self, name):
        return getattr(self.loader, name)

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module):
        with silenced_stderr():
            self.loader.exec_module(module)
            module.config.list_physical_devices("GPU")  # probes CUDA now, while stderr is silenced
        import logging

        module.get_logger().setLevel(logging.ERROR)


class _QuietTensorFlowFinder:
    """A meta-path finder that wraps the loader of `tensorflow` (once) in _QuietTensorFlowLoader."""

    @classmethod
    def find_spec(cls, name, path=None, target=None):
        if name != "tensorflow":
            return None
        sys.meta_path.remove(cls)
        import importlib.util

        spec = importlib.util.find_spec(name)
        if spec is not None and spec.loader is not None:
            spec.loader = _QuietTensorFlowLoader(spec.loader)
        return spec


if not os.environ.get("SR_VERBOSE_TF") and "tensorflow" not in sys.modules:
    sys.meta_path.insert(0, _QuietTensorFlowFinder)
