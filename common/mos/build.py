"""Build a MOS study folder: every test image upscaled by every method, a manifest and the page.

Images follow the evaluation protocol (common.data.eval_pairs: HR cropped to a multiple of the
scale, LR by the named degradation, saved as 8 bits); method `hr` is the cropped original.
Each image gets a random opaque id, so nothing the browser sees names a method or a file.
The folder is written beside its destination and renamed into place: a failed build leaves nothing.
"""
import hashlib
import json
import os
import secrets
import shutil
import tempfile
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from common.data import eval_pairs
from common.files import current_umask
from common.images import to_uint8, write_image
from common.mos.study import FORMAT, MANIFEST, NAME_PATTERN, SCORES

STATIC = Path(__file__).resolve().parent / "static"
PAGE_FILES = ("index.html", "app.js", "style.css")


def parse_method(text: str) -> tuple[str, str]:
    """"NAME=SPEC" or "SPEC" (named after itself; a path is named by its file stem) -> (name, spec)."""
    name, sep, spec = text.partition("=")
    if not sep:
        spec = text
        name = Path(text).name.split(".")[0] if ("/" in text or text.endswith(".h5")) else text.replace(":", "-")
    if not NAME_PATTERN.fullmatch(name):
        raise ValueError(f"{text}: method name must be letters, digits and _.+- (at most 64)")
    if not spec:
        raise ValueError(f"{text}: empty method spec")
    return name, spec


def parse_calibration(text: str) -> tuple[str, int]:
    """"METHOD=SCORE" -> (method name, intended score 1-5)."""
    name, sep, score = text.partition("=")
    if not sep or score not in {str(s) for s in SCORES}:
        raise ValueError(f"{text}: calibration must be METHOD=SCORE with SCORE 1-5")
    return name, int(score)


def default_calibration(methods: list[tuple[str, str]]) -> list[tuple[str, int]]:
    """The SRGAN paper's anchors: nearest-neighbour as 1 (bad), the original as 5 (excellent)."""
    anchors = {"nearest": 1, "hr": 5}
    return sorted(((name, anchors[spec]) for name, spec in methods if spec in anchors), key=lambda c: c[1])


def method_upscaler(spec: str, scale: int):
    """SPEC -> f(hr, lr) -> image in [0, 1]; `hr` shows the original, anything else upscales lr."""
    if spec == "hr":
        return lambda hr, lr: hr
    from common.evaluate import model_upscaler

    try:
        fn, _ = model_upscaler(spec, scale)
    except Exception as exc:  # checkpoint, registry and import errors alike: one line naming the spec
        text = (str(exc) or type(exc).__name__).splitlines()[0].strip("'\"")
        raise ValueError(text if text.startswith(spec) else f"{spec}: {text}") from exc
    return lambda hr, lr: fn(lr)


def _render(pairs, upscalers: dict, wanted: dict[str, dict], salt: str, kind: str, out_dir: Path) -> list[dict]:
    """Write each wanted (image, method) as images/ID.png; return [{"id", "item", "method", ...}]."""
    records, seen = [], set()
    for name, hr, lr in pairs:
        if name in seen:  # a.png and a.jpg: the ratings file names items by stem
            raise ValueError(f"{name}: two images with this name (the extension does not count)")
        seen.add(name)
        for method, extra in wanted.items():
            image = upscalers[method](hr, lr)
            if image.shape != hr.shape:
                raise ValueError(f"{method}: output shape {image.shape} != HR shape {hr.shape} for {name}")
            image_id = hashlib.sha256(f"{salt}|{kind}|{name}|{method}".encode()).hexdigest()[:16]
            write_image(out_dir / "images" / f"{image_id}.png", to_uint8(np.asarray(image)))
            records.append({"id": image_id, "item": name, "method": method, **extra})
    return records


def build_study(
    data_dir,
    scale: int,
    methods: list[tuple[str, str]],
    out,
    calibration: list[tuple[str, int]] | None = None,
    calibration_data=None,
    calibration_images: int = 2,
    degradation: str = "bicubic",
    seed: int | None = None,
) -> dict:
    """Write the study folder `out` (must not exist, or be empty) and return its manifest.

    methods: [(name, spec)]; calibration: [(method name, intended score)] shown first on the
    first `calibration_images` images of `calibration_data` (default: the test images);
    None = default_calibration(methods). seed: the per-rater order's seed (default random).
    """
    out = Path(out)
    names = [name for name, _ in methods]
    if not methods:
        raise ValueError("no methods given")
    if len(set(names)) != len(names):
        raise ValueError(f"method names repeat: {', '.join(names)}")
    calibration = default_calibration(methods) if calibration is None else calibration
    for name, _ in calibration:
        if name not in names:
            raise ValueError(f"calibration method {name!r} is not one of the study's methods ({', '.join(names)})")
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ValueError(f"{out}: exists and is not an empty folder (a study is never overwritten)")
    upscalers = {name: method_upscaler(spec, scale) for name, spec in methods}  # bad specs fail here
    seed = secrets.randbelow(2**31) if seed is None else int(seed)
    salt = secrets.token_hex(16)

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
    try:
        (tmp / "images").mkdir()
        trials = _render(eval_pairs(data_dir, scale, degradation), upscalers,
                         {name: {} for name in names}, salt, "trial", tmp)
        calib = []
        if calibration and calibration_images > 0:
            pairs = eval_pairs(calibration_data or data_dir, scale, degradation)
            first = (pair for pair, _ in zip(pairs, range(calibration_images)))
            calib = _render(first, upscalers, {name: {"score": score} for name, score in calibration},
                            salt, "calibration", tmp)
        manifest = {
            "format": FORMAT,
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "data": str(Path(data_dir).resolve()),
            "calibration_data": str(Path(calibration_data or data_dir).resolve()) if calib else None,
            "scale": scale,
            "degradation": degradation,
            "seed": seed,
            "order": "trials shuffled per rater by random.Random(f'{seed}:{rater}'); calibration first, in order",
            "methods": [{"name": name, "spec": spec} for name, spec in methods],
            "items": list(dict.fromkeys(t["item"] for t in trials)),
            "calibration": calib,
            "trials": trials,
        }
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n")
        (tmp / "page").mkdir()
        for name in PAGE_FILES:
            shutil.copyfile(STATIC / name, tmp / "page" / name)
        os.chmod(tmp, 0o777 & ~current_umask())  # mkdtemp makes 0700 folders
        if out.exists():
            out.rmdir()
        os.rename(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return manifest
