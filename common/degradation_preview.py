"""See and fix degradations: a preview grid, a degraded validation set, the options of each.

    python -m common.degradations preview --data ../shared/data/Set14 -o grid.png
    python -m common.degradations valset --data ../shared/data/Set14 --degradation realesrgan -o runs/set14_rw
    python -m common.degradations options realesrgan

`preview` draws one row per degradation: random HR crops and their LR versions (enlarged by
pixel repetition), each captioned with the parameters drawn for it. `valset` writes the LR images
that the evaluation commands make for `--degradation NAME` (key: the fixed validation seed and the
file's place in sorted order), with their parameters in params.json: the same files on every run.
"""
import argparse
import dataclasses
import json
import sys
from pathlib import Path

import numpy as np

from common.degradations import DEGRADATIONS, degradation_class, make_degradation

_KINDS = ("iso", "aniso", "g-iso", "g-aniso", "p-iso", "p-aniso", "sinc")
_MODES = ("area", "bilin", "bicub")


def _kernel_text(p: dict, prefix: str) -> str:
    kind = int(p[prefix + "type"])
    if kind == 6:
        return f"sinc {int(p[prefix + 'size'])}px wc{float(p[prefix + 'cutoff']):.1f}"
    text = f"{_KINDS[kind]} {int(p[prefix + 'size'])}px s{float(p[prefix + 'sigma_x']):.1f}"
    return text + (f"/{float(p[prefix + 'sigma_y']):.1f}" if kind % 2 else "")


def _noise_text(p: dict, prefix: str) -> str:
    grey = " grey" if bool(p[prefix + "grey"]) else ""
    if int(p[prefix + "noise"]) == 0:
        return f"gauss {float(p[prefix + 'sigma']) * 255:.0f}{grey}"
    return f"poisson {float(p[prefix + 'poisson_scale']):.1f}{grey}"


def summary(name: str, p: dict) -> str:
    """A short caption of drawn parameters (two lines)."""
    if name == "realesrgan":
        first = (f"{_kernel_text(p, 'blur1_')}, x{float(p['resize1_factor']):.2f} {_MODES[int(p['resize1_mode'])]}, "
                 f"{_noise_text(p, 'noise1_')}, q{float(p['jpeg1']):.0f}")
        blur2 = _kernel_text(p, "blur2_") + ", " if bool(p["blur2_on"]) else ""
        final = f"sinc wc{float(p['final_cutoff']):.1f}" if bool(p["final_sinc"]) else "no sinc"
        second = (f"{blur2}x{float(p['resize2_factor']):.2f}, {_noise_text(p, 'noise2_')}, {final}, "
                  f"q{float(p['jpeg2']):.0f}{' first' if bool(p['jpeg_first']) else ''}")
        return first + "\n" + second
    if name == "bsrgan":
        steps = ("blur", "blur", "down", "final", "noise", "jpeg")
        order = " > ".join(steps[int(i)] for i in p["order"])
        noise = ("colour", "grey", "corr")[int(p["noise_kind"])]
        return (f"{'halve, ' if bool(p['halve']) else ''}{order}\nnoise {float(p['noise_level']):.0f} {noise}, "
                f"q{float(p['jpeg1']):.0f}{'' if bool(p['jpeg_on']) else ' (off)'} then q{float(p['jpeg2']):.0f}")
    return name


def _crops(folder: Path, count: int, patch: int, rng) -> list[np.ndarray]:
    from common.images import list_images, read_image

    paths = list_images(folder)
    crops = []
    for k in range(count):
        image = read_image(paths[k % len(paths)])
        h, w = image.shape[:2]
        y, x = rng.integers(0, max(1, h - patch + 1)), rng.integers(0, max(1, w - patch + 1))
        crops.append(image[y:y + patch, x:x + patch])
    return crops


def preview(data, output, names=("realesrgan", "bsrgan", "bicubic"), per_row: int = 6, patch: int = 128,
            scale: int = 4, seed: int = 0) -> Path:
    """Write the grid PNG: a row per degradation, HR crops on top of their enlarged LR versions."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import tensorflow as tf

    rng = np.random.default_rng(seed)
    crops = _crops(Path(data), per_row, patch, rng)
    fig, axes = plt.subplots(len(names) + 1, per_row, figsize=(2.6 * per_row, 2.9 * (len(names) + 1)))
    axes = np.atleast_2d(axes)
    for j, crop in enumerate(crops):
        axes[0, j].imshow(np.clip(crop, 0, 1))
        axes[0, j].set_title("HR crop", fontsize=8)
    for i, name in enumerate(names, start=1):
        degradation = make_degradation(name)
        for j, crop in enumerate(crops):
            key = tf.constant([seed, j], tf.int64)
            params = degradation.draw(key)
            lr = degradation.apply(tf.constant(crop, tf.float32), params, scale).numpy()
            lr = np.floor(np.clip(lr, 0, 1) * 255 + 0.5) / 255
            axes[i, j].imshow(np.repeat(np.repeat(lr, scale, 0), scale, 1), interpolation="nearest")
            axes[i, j].set_title(summary(name, {k: np.asarray(v) for k, v in params.items()}), fontsize=6)
        axes[i, 0].set_ylabel(name, fontsize=11)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.tight_layout()
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(output, dpi=110)
    plt.close(fig)
    return output


def valset(data, output, name: str = "realesrgan", scale: int = 4, seed: int | None = None) -> Path:
    """Write the degraded LR images of `data` (as evaluation makes them) and params.json."""
    import tensorflow as tf

    from common.data import VALIDATION_SEED, _image_paths
    from common.files import write_json
    from common.images import mod_crop, read_image, to_uint8, write_image

    seed = VALIDATION_SEED if seed is None else seed
    degradation = make_degradation(name)
    output = Path(output)
    output.mkdir(parents=True, exist_ok=True)
    record = {"degradation": name, "scale": scale, "seed": seed, "source": str(data), "images": {}}
    for index, path in enumerate(_image_paths(data)):
        hr = mod_crop(read_image(path), scale)
        params = degradation.draw(tf.constant([seed, index], tf.int64))
        lr = degradation.apply(tf.constant(hr, tf.float32), params, scale).numpy()
        write_image(output / f"{path.stem}.png", to_uint8(lr))
        record["images"][path.stem] = {k: np.asarray(v).tolist() for k, v in params.items()}
    write_json(output / "params.json", record)
    return output


def describe_options(name: str) -> str:
    cls = degradation_class(name)
    if not dataclasses.is_dataclass(cls) or not dataclasses.fields(cls):
        return f"{name}: no options"
    lines = [f"{name} options (--degradation-options NAME=VALUE, tuples comma-separated):"]
    for f in dataclasses.fields(cls):
        default = f.default
        shown = ",".join(str(v) for v in default) if isinstance(default, tuple) else str(default)
        unit = f.metadata.get("unit", "")
        lines.append(f"  {f.name}={shown}{' ' + unit if unit else ''}  {f.metadata.get('help', '')}")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m common.degradations", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("preview", help="a grid of degraded samples with their drawn parameters")
    p.add_argument("--data", required=True, help="folder of HR images to crop")
    p.add_argument("-o", "--output", required=True, help="PNG to write")
    p.add_argument("--degradations", nargs="+", default=["realesrgan", "bsrgan", "bicubic"], choices=DEGRADATIONS,
                   help="one row each (default: realesrgan bsrgan bicubic)")
    p.add_argument("--per-row", type=int, default=6, help="crops per row (default 6)")
    p.add_argument("--patch", type=int, default=128, help="HR crop side in px (default 128)")
    p.add_argument("--scale", type=int, default=4, help="downscaling factor (default 4)")
    p.add_argument("--seed", type=int, default=0, help="crops and keys (default 0)")
    v = sub.add_parser("valset", help="write a degraded validation set (LR PNGs + params.json)")
    v.add_argument("--data", required=True, help="folder of HR images (e.g. ../shared/data/Set14)")
    v.add_argument("-o", "--output", required=True, help="folder to write")
    v.add_argument("--degradation", default="realesrgan", choices=DEGRADATIONS, help="default realesrgan")
    v.add_argument("--scale", type=int, default=4, help="default 4")
    v.add_argument("--seed", type=int, default=None, help="default: the evaluation commands' fixed seed")
    o = sub.add_parser("options", help="list a degradation's options with their defaults")
    o.add_argument("name", choices=DEGRADATIONS)
    args = parser.parse_args(argv)
    try:
        if args.command == "options":
            print(describe_options(args.name))
        elif args.command == "preview":
            if args.patch % args.scale or args.per_row < 1:
                parser.error("--patch must be a multiple of --scale and --per-row at least 1")
            print(preview(args.data, args.output, args.degradations, args.per_row, args.patch, args.scale, args.seed))
        else:
            print(valset(args.data, args.output, args.degradation, args.scale, args.seed))
    except (OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
