"""Training under tf.distribute, on one 2-core CPU.

* MirroredStrategy over two logical CPU devices gives the default strategy's weights on the same
  global batches (SRResNet without BN; with BN, replicas normalise by their own half of the batch,
  so only the moving statistics' first update is comparable, and all replica copies stay equal).
* A two-worker MultiWorkerMirroredStrategy cluster (two processes, TF_CONFIG on 127.0.0.1) runs
  `python -m srgan.train` (pretrain and GAN stages): both workers end with identical weights, a run
  killed on both workers resumes from its checkpoint, SIGTERM to one worker stops both at the same
  step, and only the chief writes the run folder.

Every test starts fresh Python processes (logical devices and collectives must be configured
before TensorFlow starts) with bounded timeouts, and kills them in the end whatever happens.
"""
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from common.images import write_image

WORKER = Path(__file__).with_name("_dist_worker.py")
ROOT = Path(__file__).resolve().parents[2]
TIMEOUT = 400  # seconds per launch; each takes 20-60 s of CPU time


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """Four smooth 40x40 training images, two 32x32 validation images."""
    root = tmp_path_factory.mktemp("dist_data")
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:40, 0:40] / 40.0
    for folder, names, size in (("train", "abcd", 40), ("val", ("butterfly", "other"), 32)):
        (root / folder).mkdir()
        for name in names:
            f = rng.uniform(1, 4, 3)
            image = 0.5 + 0.4 * np.sin(f[None, None] * np.stack([xx, yy, xx + yy], -1) * np.pi)
            write_image(root / folder / f"{name}.png", image[:size, :size].astype(np.float32))
    return root


def _env(tf_config=None) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "TF_CONFIG"}
    env.update(TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="", PYTHONUNBUFFERED="1")
    if tf_config is not None:
        env["TF_CONFIG"] = json.dumps(tf_config)
    return env


def _tail(path: Path, lines: int = 25) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else "(no log)"


def _free_ports(n: int) -> list[int]:
    sockets = [socket.socket() for _ in range(n)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


class Cluster:
    """`n` local workers of one MultiWorkerMirroredStrategy cluster, each running _dist_worker.py."""

    def __init__(self, out: Path, n: int = 2):
        self.out, self.n, self.procs = out, n, []

    def log(self, i: int) -> Path:
        return self.out / f"worker{i}.log"

    def report(self, i: int) -> dict:
        return json.loads((self.out / f"worker{i}.json").read_text())

    def weights(self, i: int) -> dict:
        with np.load(self.out / f"worker{i}.npz") as arrays:
            return {k: arrays[k] for k in arrays.files}

    def start(self, train_args: list, hold: bool = False, mode: str = "srgan"):
        """mode: the worker's program (srgan: `srgan.train`, gan_toys: `gan_toys.train`);
        hold: the workers wait after their first checkpoint until `release()` (srgan only)."""
        self.out.mkdir(parents=True, exist_ok=True)
        workers = [f"127.0.0.1:{p}" for p in _free_ports(self.n)]
        for i in range(self.n):
            config = {"cluster": {"worker": workers}, "task": {"type": "worker", "index": i}}
            cmd = [sys.executable, str(WORKER), mode, str(self.out / f"worker{i}"),
                   *(["--hold"] if hold else []), "--", *train_args]
            with open(self.log(i), "w") as log:
                self.procs.append(subprocess.Popen(cmd, cwd=ROOT, env=_env(config), stdout=log,
                                                   stderr=subprocess.STDOUT))

    def wait_for(self, path: Path, timeout: float = TIMEOUT):
        deadline = time.monotonic() + timeout
        while not path.exists():
            assert all(p.poll() is None for p in self.procs), "a worker ended early:\n" + self.logs()
            assert time.monotonic() < deadline, f"no {path.name} in time:\n" + self.logs()
            time.sleep(0.2)

    def release(self):
        for i in range(self.n):
            (self.out / f"worker{i}.release").touch()

    def wait(self, timeout: float = TIMEOUT, grace: float = 60) -> list[int]:
        """Exit codes; once one worker has ended, the others (maybe blocked in a collective
        with it) get `grace` seconds."""
        deadline = time.monotonic() + timeout
        while any(p.poll() is None for p in self.procs):
            if time.monotonic() > deadline:
                self.kill()
                pytest.fail("cluster did not finish (time-out, or a worker hung after another ended):\n"
                            + self.logs())
            if any(p.poll() is not None for p in self.procs):
                deadline = min(deadline, time.monotonic() + grace)
            time.sleep(0.2)
        return [p.returncode for p in self.procs]

    def kill(self):
        for p in self.procs:
            if p.poll() is None:
                p.send_signal(signal.SIGKILL)
        for p in self.procs:
            p.wait(timeout=30)

    def logs(self) -> str:
        return "\n".join(f"--- worker {i} ---\n{_tail(self.log(i))}" for i in range(self.n))


def _train_args(data, run_dir, *extra) -> list:
    return ["--preset", "tiny", "--strategy", "multiworker", "--quiet", "--run-dir", str(run_dir),
            "--train-data", str(data / "train"), "--val-data", str(data / "val"), "--hr-patch", "16", *extra]


def _assert_same_weights(cluster: Cluster):
    a, b = cluster.weights(0), cluster.weights(1)
    assert a.keys() == b.keys() and len(a) > 0
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)


def _assert_only_chief_writes(cluster: Cluster, run_dir: Path):
    chief, other = cluster.report(0), cluster.report(1)
    assert chief["chief"] and not other["chief"]
    assert chief["replicas"] == other["replicas"] == 2
    assert all(Path(d).is_relative_to(run_dir) for d in chief["checkpoint_dirs"])
    scratch = Path(other["scratch_dir"])
    assert not scratch.is_relative_to(run_dir) and not scratch.exists()  # removed at the end
    assert all(Path(d).is_relative_to(scratch) for d in other["checkpoint_dirs"])
    assert other["writes_into_run_dir"] == []  # no Python-level write by the other worker
    assert chief["writes_into_run_dir"]  # (the audit does see the chief's writes)


@pytest.fixture(scope="module")
def mirrored(data, tmp_path_factory) -> Path:
    """One process with the CPU split in two: default vs mirrored runs (see _dist_worker.mirrored)."""
    out = tmp_path_factory.mktemp("mirrored")
    log = out / "worker.log"
    with open(log, "w") as f:
        proc = subprocess.Popen([sys.executable, str(WORKER), "mirrored", str(out), str(data / "train"),
                                 str(data / "val")], cwd=ROOT, env=_env(), stdout=f, stderr=subprocess.STDOUT)
    try:
        code = proc.wait(timeout=TIMEOUT)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)
    assert code == 0, _tail(log)
    return out


def test_mirrored_strategy_matches_default_strategy(mirrored):
    info = json.loads((mirrored / "info.json").read_text())
    assert info["replicas"] == 2 and len(info["devices"]) == 2

    # fixed global batches, no BN: same losses and weights, which did move
    fixed = np.load(mirrored / "fixed.npz")
    assert np.abs(fixed["default"] - fixed["initial"]).max() > 1e-3
    np.testing.assert_allclose(fixed["mirrored"], fixed["default"], rtol=0, atol=1e-5)
    np.testing.assert_allclose(info["fixed_losses"]["mirrored"], info["fixed_losses"]["default"], rtol=1e-5)
    assert info["fixed_spread"] == 0.0

    # BN: the first moving-mean update is the mean of the replicas' batch means = the global one;
    # the moving variance averages per-replica variances, so it differs a little
    bn = np.load(mirrored / "bn.npz")
    assert np.abs(bn["default_mean"]).max() > 1e-3
    np.testing.assert_allclose(bn["mirrored_mean"], bn["default_mean"], rtol=0, atol=1e-6)
    assert np.abs(bn["mirrored_var"] - bn["default_var"]).max() < 1e-2
    assert info["bn_weights_finite"]
    assert info["bn_spread"] == 0.0  # the Trainer keeps every replica's copy identical
    assert info["bn_unsynced_spread"] > 1e-4  # which Keras alone does not

    # srgan.train itself (its data pipeline splits the same crops over the replicas)
    assert info["srgan_default_replicas"] == 1 and info["srgan_mirrored_replicas"] == 2
    srgan = np.load(mirrored / "srgan.npz")
    assert np.abs(srgan["default"] - srgan["initial"]).max() > 1e-5
    np.testing.assert_allclose(srgan["mirrored"], srgan["default"], rtol=0, atol=1e-5)


def test_srcnn_under_mirrored_strategy_matches_default(mirrored):
    """srcnn.train (two optimizers on parts of the model), run after the other strategies of the
    same process: a later MirroredStrategy used to fail with "Shape mismatch in the collective
    instance 100" (collective keys reused; see common.training._new_mirrored_strategy)."""
    info = json.loads((mirrored / "info.json").read_text())["srcnn"]
    for name in ("default", "mirrored"):
        assert info[name]["error"] is None, f"{name}: {info[name]['error']}"
    default, mirror = info["default"], info["mirrored"]
    assert default["replicas"] == 1 and mirror["replicas"] == 2
    assert default["step"] == mirror["step"] == 3 and mirror["spread"] == 0.0
    weights = np.load(mirrored / "srcnn.npz")
    np.testing.assert_array_equal(weights["mirrored_initial"], weights["default_initial"])
    assert np.abs(weights["default_weights"] - weights["default_initial"]).max() > 1e-3
    np.testing.assert_allclose(weights["mirrored_weights"], weights["default_weights"], rtol=0, atol=1e-5)
    np.testing.assert_allclose(mirror["losses"], default["losses"], rtol=1e-5)
    assert (mirrored / "srcnn-mirrored" / "checkpoints" / "ckpt-3.index").exists()


def test_two_workers_pretrain_agree_resume_after_kill_and_only_the_chief_writes(data, tmp_path):
    run_dir = tmp_path / "run"
    args = _train_args(data, run_dir, "--stage", "pretrain", "--steps", "6", "--checkpoint-every", "2",
                       "--validate-every", "2", "--export", str(run_dir / "export.h5"))
    # 1. both workers wait after their first checkpoint (step 2): kill both there
    first = Cluster(tmp_path / "first")
    try:
        first.start(args, hold=True)
        first.wait_for(run_dir / "checkpoints" / "checkpoint")
    finally:
        first.kill()
    assert [p.returncode for p in first.procs] == [-signal.SIGKILL] * 2
    assert not (run_dir / "export.h5").exists()

    # 2. the same command again: both resume from step 2 and finish
    second = Cluster(tmp_path / "second")
    try:
        second.start(args)
        assert second.wait() == [0, 0], second.logs()
    finally:
        second.kill()
    for i in range(2):
        report = second.report(i)
        assert report["resumed_from"] == 2 and report["first_logged_step"] == 3
        assert report["step"] == 6 and report["g_iterations"] == 6
    _assert_same_weights(second)  # including the BN moving statistics
    _assert_only_chief_writes(second, run_dir)

    # the run folder holds one copy of everything (the chief's)
    steps = [json.loads(line)["step"] for line in (run_dir / "history.jsonl").read_text().splitlines()]
    assert steps == [1, 2, 3, 4, 5, 6]
    validated = [json.loads(line)["step"] for line in (run_dir / "validation.jsonl").read_text().splitlines()]
    assert validated == [2, 4, 6]
    assert len(list((run_dir / "logs").glob("events.out.tfevents.*"))) == 2  # one per chief launch
    assert json.loads((run_dir / "best.json").read_text())["step"] in (2, 4, 6)
    assert json.loads((run_dir / "config.json").read_text())["strategy"] == "multiworker"
    assert (run_dir / "checkpoints" / "ckpt-6.index").exists() and (run_dir / "export.h5").exists()
    assert json.loads((run_dir / "export.json").read_text())["steps"] in (2, 4, 6)


def test_two_workers_gan_steps_agree_and_sigterm_to_one_stops_both(data, tmp_path):
    run_dir = tmp_path / "gan"
    args = _train_args(data, run_dir, "--stage", "gan", "--content-loss", "vgg22", "--vgg-weights", "random",
                       "--init", "none", "--steps", "4", "--export", str(run_dir / "srgan.h5"))
    cluster = Cluster(tmp_path / "workers")
    try:
        cluster.start(args, hold=True)
        cluster.wait_for(run_dir / "checkpoints" / "checkpoint")  # both hold after step 2
        cluster.procs[1].send_signal(signal.SIGTERM)  # e.g. the other machine is being preempted
        time.sleep(1.0)
        cluster.release()
        assert cluster.wait() == [130, 130], cluster.logs()  # both stopped ("interrupted")
    finally:
        cluster.kill()
    for i in range(2):  # the request went round with step 3: both stopped after it and saved
        assert cluster.report(i)["step"] == 3 and cluster.report(i)["g_iterations"] == 3
    assert any(k.startswith("discriminator/") for k in cluster.weights(0))
    _assert_same_weights(cluster)
    _assert_only_chief_writes(cluster, run_dir)
    assert (run_dir / "checkpoints" / "ckpt-3.index").exists()
    assert not (run_dir / "srgan.h5").exists()  # no export from a stopped run
