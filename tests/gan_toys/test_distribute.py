"""gan_toys.train under tf.distribute, on one 2-core CPU (see tests/common/test_distribute.py).

* MirroredStrategy over two logical CPU devices takes the default strategy's steps: every replica
  uses its rows of the global noise and data, batch normalisation is synchronised.
* A two-worker MultiWorkerMirroredStrategy cluster (TF_CONFIG on 127.0.0.1) running
  `python -m gan_toys.train --strategy multiworker` ends with identical weights on both workers,
  and only the chief writes the output folder.

Each test starts fresh Python processes with bounded timeouts and kills them in the end.
"""
import json
import subprocess
import sys

import numpy as np
import pytest

from tests.common.test_distribute import ROOT, TIMEOUT, WORKER, Cluster, _env, _tail


@pytest.fixture(scope="module")
def mirrored(tmp_path_factory):
    """The default-vs-mirrored worker, started at once in the background (it runs while the
    cluster test does); the test using it waits for it."""
    out = tmp_path_factory.mktemp("gan_toys_mirrored")
    log = out / "worker.log"
    with open(log, "w") as f:
        proc = subprocess.Popen([sys.executable, str(WORKER), "gan_toys_mirrored", str(out)], cwd=ROOT,
                                env=_env(), stdout=f, stderr=subprocess.STDOUT)
    try:
        yield proc, out
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=30)


def test_two_workers_agree_and_only_the_chief_writes(tmp_path, mirrored):  # (mirrored: start it now)
    out = tmp_path / "run"
    args = ["gaussian", "--strategy", "multiworker", "--out", str(out), "--steps", "6",
            "--batch-size", "8", "--d-steps", "2", "--average-last", "2", "--log-every", "2",
            "--eval-samples", "200"]
    cluster = Cluster(tmp_path / "workers")
    try:
        cluster.start(args, mode="gan_toys")
        assert cluster.wait() == [0, 0], cluster.logs()
    finally:
        cluster.kill()
    chief, other = cluster.report(0), cluster.report(1)
    assert chief["chief"] and not other["chief"]
    assert chief["replicas"] == other["replicas"] == 2 and chief["gans"] == other["gans"] == 1
    a, b = cluster.weights(0), cluster.weights(1)
    assert a.keys() == b.keys() and any("discriminator/" in k for k in a)
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)
    assert chief["d_real"] == other["d_real"]  # figures are reduced over both workers
    assert other["writes_into_run_dir"] == [] and chief["writes_into_run_dir"]
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["replicas"] == 2 and metrics["strategy"] == "multiworker" and metrics["steps"] == 6
    assert json.loads((out / "config.json").read_text())["strategy"] == "multiworker"
    assert (out / "histogram.png").exists()


def test_mirrored_strategy_matches_default_strategy(mirrored):
    proc, out = mirrored
    try:
        code = proc.wait(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        code = "time-out"
    assert code == 0, _tail(out / "worker.log")
    info = json.loads((out / "info.json").read_text())
    assert info["default"]["replicas"] == 1 and info["mirrored"]["replicas"] == 2
    assert info["default"]["synchronized_bn"] == [False, False]
    assert info["mirrored"]["synchronized_bn"] == [True, True]
    default, mirrored = np.load(out / "default.npz"), np.load(out / "mirrored.npz")
    assert default.files == mirrored.files and any(k.startswith("discriminator/") for k in default.files)
    assert len(default["history/d_loss"]) == 4
    # Adam turns rounding differences of near-zero gradients (sums over one device vs all-reduced
    # over two) into steps of up to the learning rate: one weight in thousands moves ~1e-5. A
    # mode-seeking term from each replica's own batch instead of the global one moves them ~3e-2.
    for key in default.files:
        np.testing.assert_allclose(mirrored[key], default[key], rtol=0, atol=1e-4, err_msg=key)
    for name in ("default", "mirrored"):
        assert (out / name / "metrics.json").exists() and (out / name / "samples_step000004.png").exists()
