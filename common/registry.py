"""Model builders by architecture name, so a checkpoint's JSON can say how to rebuild its model.

Chapter modules are imported only when one of their architectures is asked for.
"""
import importlib
from typing import Callable

ARCHITECTURES = {
    "srcnn": "srcnn.models:srcnn",
    "srresnet": "srgan.models:srresnet",
    "rrdb_generator": "esrgan.models:rrdb_generator",
    "srgan_discriminator": "srgan.models:discriminator",
    "esrgan_discriminator": "esrgan.models:discriminator",
}

# Named weight sources: "krasserm:srgan" -> srgan.krasserm.load_krasserm("srgan") -> (model, meta).
WEIGHT_SOURCES = {"krasserm": "srgan.krasserm:load_krasserm"}

# Loaders for foreign whole-model files without our JSON (e.g. Keras 2 files that Keras 3 cannot
# load); each returns (model, meta) or raises ValueError when the file is not its kind.
FOREIGN_LOADERS = ("srcnn.thesis:load_thesis_checkpoint",)


def load_function(target: str) -> Callable:
    module_name, function = target.split(":")
    return getattr(importlib.import_module(module_name), function)


# Builders registered at run time (tests, experiments); they take precedence over ARCHITECTURES.
_REGISTERED: dict[str, Callable] = {}


class UnknownArchitecture(KeyError):
    def __str__(self):
        return self.args[0]


def register(name: str, builder: Callable) -> Callable:
    """Register `builder` under `name` (overrides ARCHITECTURES); returns the builder."""
    _REGISTERED[name] = builder
    return builder


def unregister(name: str) -> None:
    _REGISTERED.pop(name, None)


def names() -> list[str]:
    return sorted(set(ARCHITECTURES) | set(_REGISTERED))


def get_builder(architecture: str) -> Callable:
    """The builder function of an architecture; raises UnknownArchitecture or ImportError."""
    if architecture in _REGISTERED:
        return _REGISTERED[architecture]
    if architecture not in ARCHITECTURES:
        raise UnknownArchitecture(
            f"unknown architecture {architecture!r} (known: {', '.join(names())})"
        )
    module_name, function = ARCHITECTURES[architecture].split(":")
    module = importlib.import_module(module_name)
    try:
        return getattr(module, function)
    except AttributeError:
        raise ImportError(f"{module_name} has no builder {function}() for {architecture!r}") from None


def import_module_of(architecture: str) -> bool:
    """Import the chapter module of an architecture (so its custom layers get registered).

    Returns False instead of raising when the module is not available.
    """
    target = ARCHITECTURES.get(architecture)
    if target is None:
        return False
    try:
        importlib.import_module(target.split(":")[0])
    except ImportError:
        return False
    return True


def build(architecture: str, **args):
    """Build a model: `build("srcnn", num_filters=...)` calls srcnn.models.srcnn(num_filters=...)."""
    return get_builder(architecture)(**args)
