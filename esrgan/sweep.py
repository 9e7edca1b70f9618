"""Network vs pixel interpolation between a PSNR-oriented and a GAN-trained generator (ESRGAN Sec. 3.4).

    python -m esrgan.sweep --psnr rrdb_psnr_x4.h5 --gan rrdb_x4.h5 --data ../shared/data/Set5 \
        [--alphas 0 0.2 0.4 0.6 0.8 1] [--out runs/sweep-Set5] [--save-images]
    python -m esrgan.sweep --psnr krasserm:srresnet --gan krasserm:srgan --data ../shared/data/Set5

For every alpha it scores, with PSNR and SSIM (Y channel, `scale` border pixels) and NIQE (lower is
better), two ways of trading distortion for perceptual quality:
  * network interpolation: theta = (1 - alpha) * theta_PSNR + alpha * theta_GAN (esrgan.interpolate);
  * pixel interpolation: SR = (1 - alpha) * SR_PSNR + alpha * SR_GAN (the two models' outputs).
alpha = 0 is the PSNR model, 1 the GAN model. It writes OUT/sweep.json and the perception-distortion
plot OUT/sweep.png (NIQE against PSNR, one curve per method, points labelled with alpha), the
thesis's figures 2 and 11. The two checkpoints must share one architecture (RRDB, SRResNet, ...);
--psnr/--gan also take named weight sources (krasserm:srresnet, krasserm:srgan).
"""
import io
import sys
from pathlib import Path

import numpy as np

import common  # noqa: F401  (quiet TensorFlow import)
from common.checkpoints import CheckpointError, load_model
from common.config_cli import CommandParser, SettingError, check_checkpoint, report
from common.degradations import DEGRADATIONS
from common.evaluate import check_image_folder, check_scale
from common.data import eval_pairs
from common.files import atomic_write_bytes, write_json
from common.images import ImageError, to_uint8, write_image
from common.inference import upscale
from common.metrics import psnr, ssim
from esrgan.evaluate import image_niqe, mean_or_none
from esrgan.interpolate import IncompatibleModels, interpolate_models, interpolate_weights

DEFAULT_ALPHAS = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)
METHODS = ("network", "pixel")
_SAME = ("architecture", "args", "scale", "upsampling", "color", "input_range", "output_range")


def load_pair(psnr_spec: str, gan_spec: str):
    """(psnr_model, psnr_meta, gan_model, gan_meta); IncompatibleModels if they cannot be blended."""
    psnr_model, psnr_meta = load_model(psnr_spec)
    gan_model, gan_meta = load_model(gan_spec)
    for key in _SAME:
        a, b = psnr_meta.get(key), gan_meta.get(key)
        if a is not None and b is not None and a != b:
            raise IncompatibleModels(f"the models' {key} differ: {a} vs {b}")
    return psnr_model, psnr_meta, gan_model, gan_meta


def score(name: str, hr, sr, scale: int, with_niqe: bool = True) -> dict:
    """PSNR/SSIM as common.evaluate computes them (8-bit, Y, border crop), and NIQE."""
    hr8, sr8 = to_uint8(hr), to_uint8(sr)
    row = {"name": name, "psnr": psnr(hr8, sr8, scale), "ssim": ssim(hr8, sr8, scale)}
    if with_niqe:
        row["niqe"] = image_niqe(sr, scale)
    return row


def summarise(alpha: float, rows: list) -> dict:
    out = {"alpha": float(alpha), "psnr": float(np.mean([r["psnr"] for r in rows])),
           "ssim": float(np.mean([r["ssim"] for r in rows]))}
    if rows and "niqe" in rows[0]:
        out["niqe"] = mean_or_none([r["niqe"] for r in rows])
    return {**out, "per_image": rows}


def _save(image_dir, method, alpha, name, sr):
    folder = Path(image_dir) / "images" / method / f"alpha_{alpha:.2f}"
    folder.mkdir(parents=True, exist_ok=True)
    write_image(folder / f"{name}.png", sr)


def sweep(psnr_spec: str, gan_spec: str, data_dir, alphas=DEFAULT_ALPHAS, scale: int = 4,
          degradation: str = "bicubic", with_niqe: bool = True, image_dir=None, progress: bool = False) -> dict:
    """Scores of network and pixel interpolation for each alpha (see the module notes)."""
    alphas = [float(a) for a in alphas]
    if not alphas or any(not 0.0 <= a <= 1.0 for a in alphas):
        raise SettingError("--alphas", f"each must lie in [0, 1], not {' '.join(f'{a:g}' for a in alphas)}")
    psnr_model, meta, gan_model, gan_meta = load_pair(psnr_spec, gan_spec)
    for m in (meta, gan_meta):
        if m.get("scale") not in (None, scale):
            raise ValueError(f"the models are x{m['scale']}, not x{scale}")
    pairs = list(eval_pairs(data_dir, scale, degradation))
    if not pairs:
        raise ImageError(f"{data_dir}: no images found")

    # One working model whose weights are re-blended for each alpha (traced once for inference).
    psnr_weights = [w.numpy() for w in psnr_model.weights]
    gan_weights = [w.numpy() for w in gan_model.weights]
    work = interpolate_models(psnr_model, gan_model, alphas[0])

    def run(model):
        return [upscale(lr, model, meta) for _, _, lr in pairs]

    # The ends: the models' own outputs, blended pixel-wise below.
    ends = {}
    network = []
    steps = [("network", a) for a in alphas] + [("pixel", a) for a in alphas]
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(steps), desc=f"sweep on {Path(data_dir).name}", leave=False)
    for alpha in alphas:
        for var, value in zip(work.weights, interpolate_weights(psnr_weights, gan_weights, alpha)):
            var.assign(value)
        outputs = run(work)
        if alpha in (0.0, 1.0):
            ends[alpha] = outputs
        network.append(summarise(alpha, [score(n, hr, sr, scale, with_niqe)
                                         for (n, hr, _), sr in zip(pairs, outputs)]))
        if image_dir:
            for (n, _, _), sr in zip(pairs, outputs):
                _save(image_dir, "network", alpha, n, sr)
        if bar is not None:
            bar.update(1)
    for alpha in (0.0, 1.0):
        if alpha not in ends:
            ends[alpha] = run(psnr_model if alpha == 0.0 else gan_model)

    pixel = []
    for alpha in alphas:
        rows = []
        for (n, hr, _), sr_p, sr_g in zip(pairs, ends[0.0], ends[1.0]):
            sr = ((1.0 - alpha) * sr_p + alpha * sr_g).astype(np.float32)
            rows.append(score(n, hr, sr, scale, with_niqe))
            if image_dir:
                _save(image_dir, "pixel", alpha, n, sr)
        pixel.append(summarise(alpha, rows))
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    return {
        "dataset": Path(data_dir).name,
        "scale": scale,
        "degradation": degradation,
        "psnr_model": str(psnr_spec),
        "gan_model": str(gan_spec),
        "architecture": meta.get("architecture"),
        "alphas": alphas,
        "network": network,
        "pixel": pixel,
    }


def plot(result: dict, path) -> Path:
    """The perception-distortion plane: NIQE (lower is better) against PSNR, one curve per method."""
    return plot_pairs([(None, result)], path)


def plot_pairs(labelled: list, path) -> Path:
    """Several sweeps [(label, result)] in one perception-distortion plane: network interpolation
    solid, pixel interpolation dashed, one colour per pair (one pair: the colour per method)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.8), dpi=120)
    colours = ["tab:red", "tab:green", "tab:purple", "tab:orange"]
    for i, (label, result) in enumerate(labelled):
        for method in METHODS:
            points = [(r["psnr"], r.get("niqe"), r["alpha"]) for r in result[method] if r.get("niqe") is not None]
            if not points:
                continue
            colour = ("tab:red" if method == "network" else "tab:blue") if len(labelled) == 1 else colours[i % 4]
            name = "network interpolation" if method == "network" else "image (pixel) interpolation"
            xs, ys, alphas = zip(*points)
            ax.plot(xs, ys, "o-" if method == "network" else "s--", color=colour, markersize=5,
                    label=f"{label}: {name}" if label else name, alpha=1.0 if method == "network" else 0.6)
            for x, y, a in zip(xs, ys, alphas):
                ax.annotate(f"{a:g}", (x, y), textcoords="offset points",
                            xytext=(5, 4 if method == "network" else -11), fontsize=7, color=colour)
    first = labelled[0][1]
    ax.set_xlabel("PSNR (dB, Y channel)  - higher: less distortion")
    ax.set_ylabel("NIQE  - lower: more natural")
    ax.set_title(f"Perception-distortion, {first['dataset']} x{first['scale']} (labels: alpha)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7 if len(labelled) > 1 else 10)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    atomic_write_bytes(Path(path), buffer.getvalue())
    return Path(path)


def format_table(result: dict) -> str:
    lines = [f"{'alpha':>6} | {'network PSNR':>12} {'SSIM':>7} {'NIQE':>7} | "
             f"{'pixel PSNR':>10} {'SSIM':>7} {'NIQE':>7}"]

    def cells(r):
        niqe = "n/a" if r.get("niqe") is None else f"{r['niqe']:.3f}"
        return r["psnr"], r["ssim"], niqe

    for net, pix in zip(result["network"], result["pixel"]):
        (np_, ns, nn), (pp, ps, pn) = cells(net), cells(pix)
        lines.append(f"{net['alpha']:6.2f} | {np_:12.3f} {ns:7.4f} {nn:>7} | {pp:10.3f} {ps:7.4f} {pn:>7}")
    return "\n".join(lines)


def check_args(args, out: Path) -> None:
    """SettingError for a flag the sweep cannot use, before any model is loaded."""
    for flag, spec in (("--psnr", args.psnr), ("--gan", args.gan)):
        check_checkpoint(flag, spec)
    check_image_folder(args.data)
    check_scale(args.scale)
    if not all(0.0 <= a <= 1.0 for a in args.alphas):
        raise SettingError("--alphas", f"each must lie in [0, 1], not {' '.join(f'{a:g}' for a in args.alphas)}")
    if out.exists() and not out.is_dir():
        raise SettingError("--out", f"{out} is a file, not a folder")


def main(argv=None) -> int:
    parser = CommandParser(prog="python -m esrgan.sweep", description=__doc__.split("\n")[0])
    parser.add_argument("--psnr", required=True, help="PSNR-oriented checkpoint (or krasserm:srresnet)")
    parser.add_argument("--gan", required=True,
                        help="GAN-trained checkpoint of the same architecture (or krasserm:srgan)")
    parser.add_argument("--data", required=True, help="folder of HR images (e.g. ../shared/data/Set5)")
    parser.add_argument("--scale", type=int, default=4, help="upscaling factor (default 4)")
    parser.add_argument("--degradation", default="bicubic", choices=DEGRADATIONS)
    parser.add_argument("--alphas", type=float, nargs="+", default=list(DEFAULT_ALPHAS),
                        help="weights of the GAN model, each in [0, 1] (default 0 0.2 0.4 0.6 0.8 1)")
    parser.add_argument("--out", help="output folder for sweep.json and sweep.png (default runs/sweep-<dataset>)")
    parser.add_argument("--save-images", action="store_true",
                        help="also write every SR image to OUT/images/<network|pixel>/alpha_<a>/")
    args = parser.parse_args(argv)
    out = Path(args.out or f"runs/sweep-{Path(args.data).name}")
    try:
        check_args(args, out)
    except SettingError as exc:
        return report(exc)
    try:
        result = sweep(args.psnr, args.gan, args.data, args.alphas, args.scale, args.degradation,
                       image_dir=out if args.save_images else None, progress=True)
    except (ImageError, CheckpointError, IncompatibleModels, ValueError, OSError, ImportError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "sweep.json", result)
    plot(result, out / "sweep.png")
    print(format_table(result))
    print(f"wrote {out / 'sweep.json'} and {out / 'sweep.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
