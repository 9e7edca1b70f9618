"""The study folder: its manifest, the per-rater order and the ratings file.

    STUDY/study.json     manifest: methods, items, calibration and trial images (by opaque id)
    STUDY/images/ID.png  one image per trial / calibration image; the id says nothing of the method
    STUDY/page/          the rating page (index.html, app.js, style.css)
    STUDY/ratings.csv    rater,item,method,score,seconds,timestamp (append-only, one row per rating)

Calibration ratings are stored with item "calibration:NAME" so analysis can leave them out.
"""
import csv
import json
import random
import re
from pathlib import Path

MANIFEST = "study.json"
RATINGS = "ratings.csv"
FORMAT = "sr-thesis MOS study 1"
RATINGS_FIELDS = ("rater", "item", "method", "score", "seconds", "timestamp")
CALIBRATION_PREFIX = "calibration:"
SCORES = (1, 2, 3, 4, 5)
# Rater ids go into the CSV and seed the order: short, no separators, no spaces. Match them with
# fullmatch (a `$` would let a final newline through, which splits a CSV row).
RATER_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+-]{0,63}")
ID_PATTERN = re.compile(r"[0-9a-f]{16}")


class StudyError(ValueError):
    """A study folder or ratings file that cannot be used; the message names the file."""


def load_manifest(study_dir) -> dict:
    path = Path(study_dir) / MANIFEST
    try:
        manifest = json.loads(path.read_text())
    except FileNotFoundError:
        raise StudyError(f"{path}: no study manifest (build one with `python -m common.mos build`)") from None
    except (OSError, ValueError) as exc:
        raise StudyError(f"{path}: cannot read ({exc})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise StudyError(f"{path}: not a study manifest ({FORMAT!r})")
    return manifest


def rater_order(manifest: dict, rater: str) -> list[str]:
    """Trial image ids in this rater's order: a shuffle seeded by the study seed and the rater id.

    random.Random seeds from a string by SHA-512, so the order is the same in every Python run.
    """
    ids = [trial["id"] for trial in manifest["trials"]]
    random.Random(f"{manifest['seed']}:{rater}").shuffle(ids)
    return ids


def image_keys(manifest: dict) -> dict[str, tuple[str, str]]:
    """Image id -> (item, method) as written in ratings.csv (calibration items prefixed)."""
    keys = {t["id"]: (t["item"], t["method"]) for t in manifest["trials"]}
    keys.update({c["id"]: (CALIBRATION_PREFIX + c["item"], c["method"]) for c in manifest["calibration"]})
    return keys


def read_ratings(path) -> tuple[list[dict], int]:
    """Rows of ratings.csv with score int and seconds float -> (rows, number of unreadable rows).

    An unreadable row can only be a line cut off by a crash mid-write; it is skipped and counted.
    """
    path = Path(path)
    if not path.exists():
        return [], 0
    rows, bad = [], 0
    with open(path, newline="") as f:
        reader = csv.reader(f)
        header = next(reader, None)
        if header is not None and tuple(header) != RATINGS_FIELDS:
            raise StudyError(f"{path}: header is not {','.join(RATINGS_FIELDS)}")
        for fields in reader:
            try:
                row = dict(zip(RATINGS_FIELDS, fields, strict=True))
                row["score"] = int(row["score"])
                row["seconds"] = float(row["seconds"])
            except ValueError:
                bad += 1
                continue
            if row["score"] not in SCORES or not RATER_PATTERN.fullmatch(row["rater"]):
                bad += 1
                continue
            rows.append(row)
    return rows, bad
