"""Network interpolation (ESRGAN Sec. 3.4): theta = (1 - alpha) * theta_PSNR + alpha * theta_GAN.

    python -m esrgan.interpolate --psnr psnr.h5 --gan esrgan.h5 --alpha 0.8 -o interp_08.h5

Every weight is interpolated, non-trainable ones (batch-norm moving statistics) included, so any two
checkpoints of one architecture can be blended; alpha = 0 gives the PSNR model, 1 the GAN model.
"""
import sys
from pathlib import Path

import common  # noqa: F401  (quiet TensorFlow import)
import keras
import numpy as np

import esrgan.models  # noqa: F401  (registers the custom layers)
from common.checkpoints import CheckpointError, load_model, save_model
from common.config_cli import CommandParser, SettingError, check_checkpoint, report

# Metadata that describes one trained model and not a blend of two.
_PER_MODEL_KEYS = ("created", "keras_version", "parameters", "steps", "val_psnr", "source", "source_scheme")


class IncompatibleModels(ValueError):
    """The two models do not share an architecture; the message is one line."""


def interpolate_weights(psnr_weights, gan_weights, alpha):
    """(1 - alpha) * a + alpha * b for two lists of arrays of equal shapes (float math in float64)."""
    if len(psnr_weights) != len(gan_weights):
        raise IncompatibleModels(f"the models have {len(psnr_weights)} and {len(gan_weights)} weight arrays")
    out = []
    for i, (a, b) in enumerate(zip(psnr_weights, gan_weights)):
        a, b = np.asarray(a), np.asarray(b)
        if a.shape != b.shape:
            raise IncompatibleModels(f"weight {i} has shape {a.shape} in one model and {b.shape} in the other")
        if a.dtype.kind != "f":  # counters and the like: only equal values can be blended
            if not np.array_equal(a, b):
                raise IncompatibleModels(f"non-float weight {i} differs between the models")
            out.append(a.copy())
            continue
        blended = (1.0 - alpha) * a.astype(np.float64) + alpha * b.astype(np.float64)
        out.append(blended.astype(a.dtype))
    return out


def interpolate_models(psnr_model, gan_model, alpha):
    """A new model of psnr_model's architecture holding the interpolated weights."""
    a, b = psnr_model.weights, gan_model.weights
    names_a, names_b = [w.path for w in a], [w.path for w in b]
    if len(a) == len(b) and names_a != names_b:
        diff = next((x, y) for x, y in zip(names_a, names_b) if x != y)
        raise IncompatibleModels(f"the models differ: weight {diff[0]} vs {diff[1]}")
    values = interpolate_weights([w.numpy() for w in a], [w.numpy() for w in b], alpha)
    model = keras.models.clone_model(psnr_model)
    for var, value in zip(model.weights, values):
        var.assign(value)
    return model


def interpolate_checkpoints(psnr_path, gan_path, alpha, out):
    """Blend two saved checkpoints into `out` (.h5, with .weights.h5 and .json beside it)."""
    if not 0.0 <= alpha <= 1.0:
        raise SettingError("--alpha", f"must be in [0, 1], not {alpha:g}")
    psnr_model, psnr_meta = load_model(psnr_path)
    gan_model, gan_meta = load_model(gan_path)
    for key in ("architecture", "args", "scale"):
        if key in psnr_meta and key in gan_meta and psnr_meta[key] != gan_meta[key]:
            raise IncompatibleModels(f"the checkpoints' {key} differ: {psnr_meta[key]} vs {gan_meta[key]}")
    model = interpolate_models(psnr_model, gan_model, alpha)
    meta = {k: v for k, v in psnr_meta.items() if k not in _PER_MODEL_KEYS}
    meta["interpolation"] = {"psnr": str(psnr_path), "gan": str(gan_path), "alpha": float(alpha)}
    return save_model(model, out, meta)


def main(argv=None):
    ap = CommandParser(prog="python -m esrgan.interpolate", description=__doc__.split("\n\n")[0])
    ap.add_argument("--psnr", required=True, help="PSNR-oriented checkpoint (.h5)")
    ap.add_argument("--gan", required=True, help="GAN-trained checkpoint of the same architecture (.h5)")
    ap.add_argument("--alpha", type=float, required=True, help="weight of the GAN model, 0..1 (paper: 0.8)")
    ap.add_argument("-o", "--output", required=True, help="output checkpoint (.h5)")
    a = ap.parse_args(argv)
    try:
        check_checkpoint("--psnr", a.psnr)
        check_checkpoint("--gan", a.gan)
        if not 0.0 <= a.alpha <= 1.0:
            raise SettingError("--alpha", f"must be in [0, 1], not {a.alpha:g}")
        if Path(a.output).is_dir():
            raise SettingError("--output", f"{a.output} is a folder: give a file name (X.h5)")
    except SettingError as exc:
        return report(exc)
    try:
        path = interpolate_checkpoints(a.psnr, a.gan, a.alpha, a.output)
    except (CheckpointError, IncompatibleModels, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(f"wrote {path} (alpha = {a.alpha:g})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
