"""MOS analysis as in Ledig et al. (SRGAN, §3.4 and Fig. 5): per method MOS, SD, 95 % CI and n;
per pair of methods the Wilcoxon signed-rank test on scores paired by (rater, item); the
stacked score distribution per method beside MOS ± CI; a Markdown table.

CI: MOS ± t(0.975, n − 1) · SD / √n with SD the sample standard deviation (ddof = 1).
Wilcoxon: scipy.stats.wilcoxon(a, b) with its defaults (two-sided; zero differences dropped);
p-values are not corrected for the number of pairs. Calibration ratings are left out; if a
(rater, item, method) was rated twice (only possible by editing the file), the first one counts.
"""
import io
import itertools
import math
import warnings
from pathlib import Path

import numpy as np
from scipy import stats

from common.files import atomic_write_bytes, json_text
from common.mos.study import CALIBRATION_PREFIX, RATINGS, SCORES, StudyError, load_manifest, read_ratings

SCORE_COLOURS = ("#c0392b", "#e67e22", "#f1c40f", "#7dbb42", "#1e8449")  # 1 (bad) .. 5 (excellent)


def method_stats(scores) -> dict:
    """Scores of one method -> {"mos", "sd", "ci95": [low, high], "n", "counts": [n1..n5]}."""
    x = np.asarray(scores, dtype=np.float64)
    n = int(x.size)
    mos = float(x.mean()) if n else None
    sd = float(x.std(ddof=1)) if n > 1 else None
    if n > 1:
        half = float(stats.t.ppf(0.975, n - 1)) * sd / math.sqrt(n)
        ci = [mos - half, mos + half]
    else:
        ci = None
    counts = [int(np.sum(x == s)) for s in SCORES]
    return {"mos": mos, "sd": sd, "ci95": ci, "n": n, "counts": counts}


def paired_test(a: dict, b: dict) -> dict:
    """Two methods' {(rater, item): score} -> Wilcoxon signed-rank on the (rater, item)s both have."""
    keys = sorted(set(a) & set(b))
    x = np.array([a[k] for k in keys], dtype=np.float64)
    y = np.array([b[k] for k in keys], dtype=np.float64)
    result = {"pairs": len(keys), "mean_difference": float(np.mean(x - y)) if keys else None,
              "statistic": None, "p": None}
    if keys:
        with warnings.catch_warnings():  # all-equal pairs: scipy warns and gives p = 1
            warnings.simplefilter("ignore", RuntimeWarning)
            test = stats.wilcoxon(x, y)
        result["statistic"], result["p"] = float(test.statistic), float(test.pvalue)
    return result


def summarize(rows: list[dict], methods: list[str]) -> dict:
    """Rating rows (rater, item, method, score, ...) -> the analysis dict (methods in given order)."""
    scores: dict[str, dict] = {m: {} for m in methods}
    duplicates = unknown = calibration = 0
    for row in rows:
        if row["item"].startswith(CALIBRATION_PREFIX):
            calibration += 1
        elif row["method"] not in scores:
            unknown += 1
        elif (row["rater"], row["item"]) in scores[row["method"]]:
            duplicates += 1
        else:
            scores[row["method"]][(row["rater"], row["item"])] = row["score"]
    counted = [k for m in methods for k in scores[m]]
    return {
        "raters": len({rater for rater, _ in counted}),
        "items": len({item for _, item in counted}),
        "ratings": len(counted),
        "left_out": {"calibration": calibration, "duplicates": duplicates, "unknown_method": unknown},
        "methods": [{"method": m, **method_stats(list(scores[m].values()))} for m in methods],
        "pairs": [{"a": a, "b": b, **paired_test(scores[a], scores[b])}
                  for a, b in itertools.combinations(methods, 2)],
    }


def _num(value, fmt: str) -> str:
    return "–" if value is None else format(value, fmt)


def markdown(summary: dict) -> str:
    lines = [f"{summary['ratings']} ratings by {summary['raters']} raters of {summary['items']} images "
             "(calibration left out)", "",
             "| method | MOS | SD | 95 % CI | n |", "|---|---|---|---|---|"]
    for m in summary["methods"]:
        ci = "–" if m["ci95"] is None else f"{m['ci95'][0]:.2f} – {m['ci95'][1]:.2f}"
        lines.append(f"| {m['method']} | {_num(m['mos'], '.2f')} | {_num(m['sd'], '.2f')} | {ci} | {m['n']} |")
    lines += ["", "| pair (Wilcoxon signed-rank) | pairs | mean difference | W | p |", "|---|---|---|---|---|"]
    for p in summary["pairs"]:
        lines.append(f"| {p['a']} vs {p['b']} | {p['pairs']} | {_num(p['mean_difference'], '+.2f')} "
                     f"| {_num(p['statistic'], '.1f')} | {_num(p['p'], '.3g')} |")
    return "\n".join(lines) + "\n"


def figure_png(summary: dict) -> bytes:
    """Left: each method's score distribution as a stacked bar; right: MOS with its 95 % CI."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    methods = summary["methods"]
    names = [m["method"] for m in methods]
    y = np.arange(len(methods))[::-1]  # first method on top
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 0.55 * len(methods) + 1.6), sharey=True,
                                      gridspec_kw={"width_ratios": [3, 2]})
    start = np.zeros(len(methods))
    for s, colour in zip(SCORES, SCORE_COLOURS):
        share = np.array([m["counts"][s - 1] / m["n"] if m["n"] else 0.0 for m in methods])
        left.barh(y, share, left=start, color=colour, label=str(s), height=0.7)
        start += share
    left.set_xlim(0, 1)
    left.set_xlabel("share of ratings")
    left.set_yticks(y, names)
    left.legend(title="score", ncols=5, loc="lower center", bbox_to_anchor=(0.5, 1.0), frameon=False)
    rated = [(yy, m) for yy, m in zip(y, methods) if m["n"]]
    mos = np.array([m["mos"] for _, m in rated])
    err = np.array([[m["mos"] - m["ci95"][0], m["ci95"][1] - m["mos"]] if m["ci95"] else [0, 0]
                    for _, m in rated]).reshape(-1, 2).T
    right.errorbar(mos, [yy for yy, _ in rated], xerr=err, fmt="o", color="#c0392b", capsize=4)
    right.set_xlim(1, 5)
    right.set_xticks(SCORES)
    right.set_xlabel("MOS (95 % CI)")
    right.grid(axis="x", alpha=0.3)
    fig.suptitle(f"MOS: {summary['ratings']} ratings, {summary['raters']} raters, {summary['items']} images",
                 y=0.995, fontsize=10)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=120)
    plt.close(fig)
    return buf.getvalue()


def analyze_study(study_dir) -> dict:
    """The study's ratings -> the analysis dict ("unreadable_rows": rows cut off by a crash)."""
    manifest = load_manifest(study_dir)
    path = Path(study_dir) / RATINGS
    rows, bad = read_ratings(path)
    summary = summarize(rows, [m["name"] for m in manifest["methods"]])
    if summary["ratings"] == 0:
        raise StudyError(f"{path}: no ratings yet")
    summary["unreadable_rows"] = bad
    return summary


def write_outputs(summary: dict, figure, table, json_path=None) -> None:
    """Render everything first, then write each file atomically."""
    outputs = {Path(figure): figure_png(summary), Path(table): markdown(summary).encode()}
    if json_path:
        outputs[Path(json_path)] = json_text(summary).encode()
    for path, data in outputs.items():
        atomic_write_bytes(path, data)
