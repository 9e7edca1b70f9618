"""MOS analysis on synthetic ratings whose answers are known or computed independently."""
import csv
import json
import math
import statistics

import numpy as np
import pytest
from scipy import stats

from common.images import read_image, write_image
from common.mos.__main__ import main
from common.mos.analyze import method_stats, summarize
from common.mos.build import build_study
from common.mos.study import RATINGS_FIELDS, read_ratings


def rows_from(table):
    """{(rater, item, method): score} -> rating rows as read_ratings returns them."""
    return [{"rater": r, "item": i, "method": m, "score": s, "seconds": 1.0, "timestamp": "t"}
            for (r, i, m), s in table.items()]


def test_mos_sd_ci_and_counts_are_exact():
    scores = [5, 4, 4, 3, 5, 2, 4, 5, 1, 4, 3]
    got = method_stats(scores)
    assert got["mos"] == pytest.approx(sum(scores) / len(scores), abs=1e-15)
    assert got["sd"] == pytest.approx(statistics.stdev(scores), rel=1e-12)
    # 95 % CI by Student's t with n - 1 = 10 degrees of freedom: t = 2.2281388519649385
    half = 2.2281388519649385 * statistics.stdev(scores) / math.sqrt(len(scores))
    assert got["ci95"] == pytest.approx([sum(scores) / 11 - half, sum(scores) / 11 + half], rel=1e-9)
    assert got["n"] == 11 and got["counts"] == [1, 1, 2, 4, 3]
    one = method_stats([4])
    assert one["mos"] == 4 and one["sd"] is None and one["ci95"] is None and one["n"] == 1


def test_wilcoxon_pairs_by_rater_and_item_and_equals_scipy():
    rng = np.random.default_rng(3)
    methods = ["hr", "sr", "bicubic"]
    table = {}
    for r in range(7):
        for i in range(6):
            for k, m in enumerate(methods):
                table[(f"r{r}", f"img{i}", m)] = int(np.clip(round(5 - 1.2 * k + rng.normal(0, 1)), 1, 5))
    # Holes: a pair only counts where both methods were rated by that rater on that image.
    for key in [("r0", "img0", "hr"), ("r3", "img2", "sr"), ("r5", "img5", "bicubic"), ("r6", "img1", "sr")]:
        del table[key]
    summary = summarize(rows_from(table), methods)
    assert [m["method"] for m in summary["methods"]] == methods
    for m in summary["methods"]:
        expected = [s for (_, _, mm), s in table.items() if mm == m["method"]]
        assert m["n"] == len(expected) and m["mos"] == pytest.approx(np.mean(expected), abs=1e-14)
    assert [(p["a"], p["b"]) for p in summary["pairs"]] == [("hr", "sr"), ("hr", "bicubic"), ("sr", "bicubic")]
    for p in summary["pairs"]:
        keys = sorted({(r, i) for (r, i, m) in table if m == p["a"]} & {(r, i) for (r, i, m) in table if m == p["b"]})
        a = [table[(r, i, p["a"])] for r, i in keys]
        b = [table[(r, i, p["b"])] for r, i in keys]
        ref = stats.wilcoxon(a, b)
        assert p["pairs"] == len(keys) < 42
        assert p["p"] == float(ref.pvalue) and p["statistic"] == float(ref.statistic)
        assert p["mean_difference"] == pytest.approx(np.mean(np.subtract(a, b)), abs=1e-14)
    assert summary["raters"] == 7 and summary["items"] == 6 and summary["ratings"] == len(table)


def test_wilcoxon_known_exact_p():
    # Four pairs, all differences positive and distinct (1..4): exact two-sided p = 2 / 2^4.
    table = {}
    for r, (a, b) in enumerate([(5, 4), (5, 3), (5, 2), (5, 1)]):
        table[(f"r{r}", "x", "a")], table[(f"r{r}", "x", "b")] = a, b
    (pair,) = summarize(rows_from(table), ["a", "b"])["pairs"]
    assert pair["p"] == pytest.approx(0.125, abs=1e-12) and pair["statistic"] == 0.0
    # Identical scores: no evidence at all.
    same = {(r, i, m): 3 for r in "ab" for i in "xy" for m in ("a", "b")}
    (pair,) = summarize(rows_from(same), ["a", "b"])["pairs"]
    assert pair["p"] == 1.0 and pair["mean_difference"] == 0.0


def test_calibration_duplicates_and_unknown_methods_are_left_out():
    rows = rows_from({("r1", "img", "a"): 5, ("r1", "img", "b"): 2, ("r1", "calibration:img", "a"): 1,
                      ("r1", "img", "zzz"): 1})
    rows.append({**rows[0], "score": 1})  # a second rating of (r1, img, a): the first counts
    summary = summarize(rows, ["a", "b"])
    assert [m["mos"] for m in summary["methods"]] == [5.0, 2.0]
    assert summary["left_out"] == {"calibration": 1, "duplicates": 1, "unknown_method": 1}


def test_read_ratings_skips_a_row_cut_off_mid_write(tmp_path):
    path = tmp_path / "ratings.csv"
    path.write_text(",".join(RATINGS_FIELDS) + "\nr1,img,a,4,1.5,t\nr1,img,b,3,2.0,t\nr1,img,c,5,1.\nr2,img,a,9,1,t\n")
    rows, bad = read_ratings(path)
    assert [(r["method"], r["score"], r["seconds"]) for r in rows] == [("a", 4, 1.5), ("b", 3, 2.0)]
    assert bad == 2  # the cut row and the score outside 1-5


@pytest.fixture()
def study(tmp_path):
    rng = np.random.default_rng(0)
    data = tmp_path / "data"
    data.mkdir()
    for name in ("one", "two"):
        write_image(data / f"{name}.png", rng.uniform(0, 1, (12, 10, 3)).astype(np.float32))
    out = tmp_path / "study"
    build_study(data, 2, [("hr", "hr"), ("bicubic", "bicubic"), ("nearest", "nearest")], out, seed=0)
    return out


def test_analyze_cli_prints_table_and_writes_figure(study, tmp_path, capsys):
    scores = {"hr": [5, 4, 5, 4], "bicubic": [3, 3, 2, 4], "nearest": [1, 2, 1, 1]}
    with open(study / "ratings.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(RATINGS_FIELDS)
        w.writerow(["r1", "calibration:one", "hr", 5, 1.0, "t"])
        for method, values in scores.items():
            for (rater, item), score in zip([("r1", "one"), ("r1", "two"), ("r2", "one"), ("r2", "two")], values):
                w.writerow([rater, item, method, score, 2.5, "t"])
    assert main(["analyze", str(study), "--json", str(tmp_path / "mos.json")]) == 0
    out = capsys.readouterr().out
    assert "| hr | 4.50 | 0.58 |" in out and "| nearest | 1.25 | 0.50 |" in out
    assert "| hr vs nearest | 4 | +3.25 |" in out
    result = json.loads((tmp_path / "mos.json").read_text())
    assert result["ratings"] == 12 and result["left_out"]["calibration"] == 1
    assert (study / "mos.md").read_text() in out
    figure = read_image(study / "mos.png")
    assert figure.shape[0] > 200 and figure.shape[1] > 800 and figure.std() > 0.05


def test_analyze_without_ratings_is_an_error_and_writes_nothing(study, capsys):
    assert main(["analyze", str(study)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and "no ratings yet" in err[0]
    assert not (study / "mos.png").exists() and not (study / "mos.md").exists()
