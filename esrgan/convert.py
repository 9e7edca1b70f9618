"""Convert official ESRGAN / BasicSR RRDBNet PyTorch weights (.pth) to a Keras `rrdb_generator`.

    python -m esrgan.convert RRDB_ESRGAN_x4.pth -o esrgan_x4.h5

Recognised state dicts (an optional "module." prefix is stripped):
  * official ESRGAN: conv_first, RRDB_trunk.N.RDBk.convj, trunk_conv, upconv1.., HRconv, conv_last
  * the original "old architecture": model.0, model.1.sub.N.RDBk.convj.0, model.1.sub.<nb>, model.3, ...
  * BasicSR checkpoints ({"params": ...} or {"params_ema": ...}; params_ema preferred): conv_first,
    body.N.rdbk.convj, conv_body, conv_up1.., conv_hr, conv_last; Real-ESRGAN's x2/x1 models
    (pixel-unshuffled input) too.
num_blocks, num_filters, growth and scale are read from the tensor shapes. PyTorch is needed only
to read the file.
"""
import argparse
import re
import sys
from pathlib import Path

import common  # noqa: F401  (quiet TensorFlow import)
import numpy as np

from common.checkpoints import save_model
from esrgan.chapter import CHAPTER
from esrgan.models import keras_name, rrdb_generator


class ConversionError(Exception):
    """The file cannot be read or is not a recognised RRDBNet state dict."""


def load_state_dict(path, key=None):
    """Read a .pth file into {name: float32 numpy array}; `key` picks a sub-dict (e.g. "params")."""
    try:
        import torch
    except ImportError:
        raise ConversionError("reading .pth files needs PyTorch: pip install torch (the CPU build is enough)")
    try:
        obj = torch.load(str(path), map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise ConversionError(f"{path}: no such file")
    except Exception as e:  # pickles of whole models, corrupt or non-torch files
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ConversionError(f"{path} is not a PyTorch state dict file ({first})")
    if not isinstance(obj, dict):
        raise ConversionError(f"{path} holds a {type(obj).__name__}, not a state dict")
    if key is not None:
        if key not in obj:
            raise ConversionError(f"{path} has no '{key}' entry (entries: {', '.join(map(str, obj))})")
        obj = obj[key]
    else:
        for k in ("params_ema", "params", "state_dict", "model"):
            if isinstance(obj.get(k), dict):
                obj = obj[k]
                break
    out = {}
    for k, v in obj.items():
        if not hasattr(v, "detach"):
            continue
        out[k[len("module."):] if k.startswith("module.") else k] = v.detach().float().cpu().numpy()
    return out


def _canonical(sd):
    """Rename any recognised scheme to official module names: {module: {"weight", "bias"}}; also
    returns the scheme name."""
    modules = {}
    for key, value in sd.items():
        module, _, param = key.rpartition(".")
        modules.setdefault(module, {})[param] = value

    if "RRDB_trunk.0.RDB1.conv1" in modules:
        scheme, renamed = "official", modules
    elif "body.0.rdb1.conv1" in modules:
        scheme, renamed = "basicsr", {}
        fixed = {"conv_body": "trunk_conv", "conv_hr": "HRconv"}
        for m, p in modules.items():
            if (r := re.fullmatch(r"body\.(\d+)\.rdb(\d)\.conv(\d)", m)):
                m = f"RRDB_trunk.{r[1]}.RDB{r[2]}.conv{r[3]}"
            elif (r := re.fullmatch(r"conv_up(\d)", m)):
                m = f"upconv{r[1]}"
            renamed[fixed.get(m, m)] = p
    elif "model.1.sub.0.RDB1.conv1.0" in modules:
        scheme, renamed = "old", {}
        top = sorted(int(r[1]) for m in modules if (r := re.fullmatch(r"model\.(\d+)", m)))
        sub = sorted(int(r[1]) for m in modules if (r := re.fullmatch(r"model\.1\.sub\.(\d+)", m)))
        if not sub or len(top) < 3 or top[0] != 0:
            raise ConversionError("incomplete old-architecture ESRGAN state dict")
        names = {f"model.{top[0]}": "conv_first", f"model.1.sub.{sub[-1]}": "trunk_conv"}
        names.update({f"model.{i}": f"upconv{n}" for n, i in enumerate(top[1:-2], 1)})
        names.update({f"model.{top[-2]}": "HRconv", f"model.{top[-1]}": "conv_last"})
        for m, p in modules.items():
            if (r := re.fullmatch(r"model\.1\.sub\.(\d+)\.(RDB\d\.conv\d)\.0", m)):
                m = f"RRDB_trunk.{r[1]}.{r[2]}"
            renamed[names.get(m, m)] = p
    else:
        shown = ", ".join(list(sd)[:4])
        raise ConversionError(f"not a recognised ESRGAN/BasicSR RRDBNet state dict (keys: {shown}, ...)")
    return renamed, scheme


def infer_args(modules):
    """rrdb_generator keyword arguments read from canonical modules' tensor shapes."""
    try:
        first = modules["conv_first"]["weight"]
        growth = modules["RRDB_trunk.0.RDB1.conv1"]["weight"].shape[0]
        last = modules["conv_last"]["weight"]
    except KeyError as e:
        raise ConversionError(f"RRDBNet state dict without {e.args[0]}")
    num_blocks = len({m.split(".")[1] for m in modules if m.startswith("RRDB_trunk.")})
    num_up = len([m for m in modules if re.fullmatch(r"upconv\d", m)])
    unshuffle = {3: 1, 12: 2, 48: 4}.get(first.shape[1])
    if unshuffle is None or last.shape[0] != 3:
        raise ConversionError(f"only RGB models are supported (conv_first takes {first.shape[1]} channels, "
                              f"conv_last gives {last.shape[0]})")
    scale = 2**num_up // unshuffle
    if scale not in (1, 2, 4, 8):
        raise ConversionError(f"unsupported upsampling: {num_up} x2 stages with unshuffle {unshuffle}")
    return {"scale": scale, "num_filters": int(first.shape[0]), "num_blocks": num_blocks,
            "growth": int(growth), "unshuffle": unshuffle}


def _unshuffle_permutation(r, channels=3):
    """Index map from TF space_to_depth channel order to PyTorch pixel_unshuffle order."""
    return [c * r * r + i * r + j for i in range(r) for j in range(r) for c in range(channels)]


def state_dict_to_keras(sd):
    """Build an rrdb_generator holding the weights of an RRDBNet state dict; returns (model, args, scheme)."""
    modules, scheme = _canonical(sd)
    args = infer_args(modules)
    model = rrdb_generator(**args)
    by_keras_name = {keras_name(m): m for m in modules}
    used = set()
    for layer in model.layers:
        if not layer.weights:
            continue
        official = by_keras_name.get(layer.name)
        if official is None:
            raise ConversionError(f"state dict has no weights for layer {layer.name}")
        p = modules[official]
        if "weight" not in p or "bias" not in p:
            raise ConversionError(f"{official} needs a weight and a bias")
        kernel = np.transpose(p["weight"], (2, 3, 1, 0))  # OIHW -> HWIO
        if official == "conv_first" and args["unshuffle"] > 1:
            kernel = kernel[:, :, _unshuffle_permutation(args["unshuffle"]), :]
        want = [tuple(w.shape) for w in layer.get_weights()]
        if [kernel.shape, p["bias"].shape] != want:
            raise ConversionError(f"{official}: shapes {kernel.shape}, {p['bias'].shape} do not fit {want}")
        layer.set_weights([kernel, p["bias"]])
        used.add(official)
    extra = sorted(set(modules) - used)
    if extra:
        raise ConversionError(f"state dict has weights the RRDBNet does not use: {', '.join(extra[:5])}")
    return model, args, scheme


def convert(pth, out, key=None):
    """Convert `pth` to a Keras model saved at `out` (.h5); returns the metadata written."""
    model, args, scheme = state_dict_to_keras(load_state_dict(pth, key))
    meta = {**CHAPTER.checkpoint_meta("rrdb_generator", args, args["scale"]), "value_range": [0, 1],
            "source": Path(pth).name, "source_scheme": scheme}
    if args["unshuffle"] > 1:
        meta["min_input_size"] = args["unshuffle"]  # and sides must be multiples of it
    save_model(model, out, meta)  # X.h5, X.weights.h5 and X.json, atomically
    return meta


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m esrgan.convert", description=__doc__.split("\n\n")[0])
    ap.add_argument("pth", help="official ESRGAN or BasicSR .pth file")
    ap.add_argument("-o", "--output", required=True, help="output Keras model (.h5)")
    ap.add_argument("--key", help="sub-dict to read, e.g. params or params_ema (default: params_ema, else params)")
    a = ap.parse_args(argv)
    if not a.output.endswith(".h5"):
        ap.error("the output must end in .h5")
    try:
        meta = convert(a.pth, a.output, a.key)
    except ConversionError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    g = meta["args"]
    print(f"wrote {a.output}: x{g['scale']} RRDBNet, num_blocks={g['num_blocks']}, num_filters={g['num_filters']}, "
          f"growth={g['growth']} ({meta['source_scheme']} names)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
