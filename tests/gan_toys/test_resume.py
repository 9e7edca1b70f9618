"""A toy run with --run-dir resumes after kill -9 (or from an earlier checkpoint) and writes the
outputs of an uninterrupted run, bit for bit."""
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import tensorflow as tf

import common  # noqa: F401

from gan_toys.train import main

ROOT = Path(__file__).resolve().parents[2]
TIMINGS = ("train_seconds", "total_seconds", "cpu_seconds")


def _checkpoint_values(checkpoints: Path) -> dict:
    path = tf.train.latest_checkpoint(str(checkpoints))
    reader = tf.train.load_checkpoint(path)
    # (not the save count, nor the object graph, which holds the optimizers' Python names)
    return {n: reader.get_tensor(n) for n, _ in tf.train.list_variables(path)
            if not n.startswith(("save_counter", "_CHECKPOINTABLE"))}


def _without_timings(metrics):
    if isinstance(metrics, dict):
        return {k: _without_timings(v) for k, v in metrics.items() if k not in TIMINGS}
    return metrics


def _assert_same_outputs(out: Path, reference: Path, arrays=("history.npz",)):
    metrics, expected = (_without_timings(json.loads((d / "metrics.json").read_text())) for d in (out, reference))
    assert metrics == expected
    for name in arrays:
        got, want = np.load(out / name), np.load(reference / name)
        if name.endswith(".npy"):
            np.testing.assert_array_equal(got, want, err_msg=name)
            continue
        assert sorted(got.files) == sorted(want.files), name
        for key in want.files:
            np.testing.assert_array_equal(got[key], want[key], err_msg=f"{name}: {key}")


def _assert_same_checkpoint(run: Path, reference: Path):
    got, want = _checkpoint_values(run), _checkpoint_values(reference)
    assert got.keys() == want.keys()
    for name, value in want.items():  # networks, optimizers, random stream, to the bit
        np.testing.assert_array_equal(got[name], value, err_msg=name)


def test_a_toy_run_killed_with_sigkill_resumes_bit_exact(tmp_path):
    """kill -9 after the first checkpoint, the same command again: its metrics, per-step figures,
    snapshots (history.npz) and final checkpoint equal an uninterrupted run's, and those of a run
    kept in memory."""
    steps = 3000

    def args(name, run_dir=True):
        flags = ["gaussian", "--steps", str(steps), "--seed", "3", "--average-last", "500", "--eval-samples", "500",
                 "--out", str(tmp_path / name)]
        return flags + (["--run-dir", str(tmp_path / f"{name}_run"), "--checkpoint-every", "200"] if run_dir else [])

    env = {"TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": "", "PATH": "/usr/bin:/bin"}
    checkpoints = tmp_path / "killed_run" / "checkpoints"
    proc = subprocess.Popen([sys.executable, "-m", "gan_toys.train", *args("killed")], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while not (checkpoints / "checkpoint").exists():
            assert proc.poll() is None and time.monotonic() < deadline, "no checkpoint from the run"
            time.sleep(0.05)
        time.sleep(0.2)  # kill it in the middle of training, maybe while it writes a checkpoint
        assert proc.poll() is None, "the run ended before it could be killed"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    killed_at = int(tf.train.latest_checkpoint(str(checkpoints)).rsplit("-", 1)[1])
    assert 0 < killed_at < steps and not (tmp_path / "killed" / "metrics.json").exists()

    assert main(args("killed")) == 0  # resumes
    assert main(args("clean")) == 0
    _assert_same_outputs(tmp_path / "killed", tmp_path / "clean")
    _assert_same_checkpoint(checkpoints, tmp_path / "clean_run" / "checkpoints")
    assert main(args("memory", run_dir=False)) == 0
    _assert_same_outputs(tmp_path / "memory", tmp_path / "clean")


def _rewind(checkpoints: Path) -> int:
    """Point the run's latest checkpoint at the one before it (as if the run had stopped there)."""
    state = tf.train.get_checkpoint_state(str(checkpoints))
    earlier = state.all_model_checkpoint_paths[:-1]
    tf.compat.v1.train.update_checkpoint_state(str(checkpoints), earlier[-1], all_model_checkpoint_paths=earlier)
    return int(earlier[-1].rsplit("-", 1)[1])


def test_sinusoids_and_mixture_resume_from_an_earlier_checkpoint_bit_exact(tmp_path):
    """A finished run made to resume from its previous checkpoint writes the same outputs again
    (sinusoids: its evaluations, sample images and samples.npy; mixture: both GANs, the dropout
    one's random masks included)."""
    cases = {
        "sinusoids": (["--steps", "130", "--batch-size", "4", "--eval-samples", "16", "--checkpoint-every", "60",
                       "--g-filters", "8", "--d-filters", "8"], ("history.npz", "samples.npy"), [""]),
        "mixture": (["--steps", "40", "--units", "8", "--eval-samples", "300", "--log-every", "5",
                     "--average-last", "10", "--checkpoint-every", "15"],
                    ("history_no_dropout.npz", "history_dropout.npz"), ["no_dropout", "dropout"]),
    }
    for experiment, (flags, arrays, subfolders) in cases.items():
        base = tmp_path / experiment
        first = [experiment, *flags, "--seed", "1", "--out", str(base / "first"), "--run-dir", str(base / "run")]
        assert main(first) == 0
        reference = {sub: _checkpoint_values(base / "run" / sub / "checkpoints") for sub in subfolders}
        for sub in subfolders[-1:]:  # the last GAN resumes (the first one, if two, is finished)
            assert 0 < _rewind(base / "run" / sub / "checkpoints") < int(flags[1])
        again = [*first[:-3], str(base / "again"), *first[-2:]]
        assert main(again) == 0
        _assert_same_outputs(base / "again", base / "first", arrays)
        for sub in subfolders:
            got = _checkpoint_values(base / "run" / sub / "checkpoints")
            assert got.keys() == reference[sub].keys()
            for name, value in reference[sub].items():
                np.testing.assert_array_equal(got[name], value, err_msg=f"{experiment} {sub}: {name}")
