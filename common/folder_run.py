"""Safe, resumable runs over many images: per-output locks, atomic publishing, a JSONL manifest,
and stopping cleanly on Ctrl-C.

- `claim(dst)` takes an exclusive lock on a hidden `.NAME.lock` file beside the output (flock: the
  kernel drops it when a process dies, even by kill -9, so no stale lock ever blocks a rerun). A
  second process that wants the same output while the first writes it is told so (`Busy`).
- `publish(dst, data)` (called while holding the claim) writes `.NAME.part`, fsyncs it and renames
  it over `dst`: an output under its final name is always complete, so "exists" means "done".
- `Manifest` appends one JSON line per image and flushes it at once.
- `StopAfterCurrent` turns the first Ctrl-C into a request to stop after the current image.
"""
import fcntl
import json
import os
import signal
import threading
from contextlib import contextmanager
from pathlib import Path


class Busy(Exception):
    """Another process is writing this output right now."""


def _hidden(dst: Path, suffix: str) -> Path:
    return dst.with_name(f".{dst.name}.{suffix}")


def lock_path(dst) -> Path:
    return _hidden(Path(dst), "lock")


def part_path(dst) -> Path:
    return _hidden(Path(dst), "part")


@contextmanager
def claim(dst):
    """Hold the output's lock for the block; raises Busy if another process holds it.

    OSError (e.g. a missing or read-only folder) propagates. The lock file is removed afterwards.
    """
    path = lock_path(dst)
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise Busy(f"being written by another process (lock {path.name})") from None
        # The holder before us may have unlinked the file between our open and flock: then we
        # hold a lock nobody else can see; take the file that is there now instead.
        try:
            same = os.fstat(fd).st_ino == os.stat(path).st_ino
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)
    try:
        yield
    finally:
        try:
            os.unlink(path)  # while still locked, so no one else can hold this inode meanwhile
        except FileNotFoundError:
            pass
        os.close(fd)


def publish(dst, data: bytes) -> None:
    """Write `dst` atomically (hold `claim(dst)`): `.NAME.part`, fsync, rename.

    A `.part` left by a killed run is simply overwritten; a reader never sees a partial `dst`.
    """
    dst = Path(dst)
    part = part_path(dst)
    fd = os.open(part, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666)  # the umask applies
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())  # content on disk before the name is: power loss safe
        os.replace(part, dst)
    except BaseException:
        try:
            os.unlink(part)
        except FileNotFoundError:
            pass
        raise


def is_complete(dst) -> bool:
    """Outputs are only ever published whole, so existing under the final name means complete."""
    return Path(dst).is_file()


class Manifest:
    """JSON lines, one per image: input, output, sizes, model, backend, seconds, status, error.

    Appends (a resumed run adds its lines to the first run's), one flushed line at a time.
    """

    def __init__(self, path, **common):
        self.path = Path(path)
        self.common = common
        self.file = open(self.path, "a", encoding="utf-8")  # OSError goes to the caller

    def record(self, input, output, status, input_size=None, output_size=None, seconds=None,
               error=None):
        entry = {
            "input": str(input),
            "output": None if output is None else str(output),
            "input_size": list(input_size) if input_size else None,
            "output_size": list(output_size) if output_size else None,
            **self.common,
            "seconds": None if seconds is None else round(seconds, 3),
            "status": status,
            "error": error,
        }
        self.file.write(json.dumps(entry, ensure_ascii=False) + "\n")
        self.file.flush()

    def close(self):
        self.file.close()


class NoManifest:
    def record(self, *args, **kwargs):
        pass

    def close(self):
        pass


def open_manifest(path, **common):
    return Manifest(path, **common) if path else NoManifest()


class StopAfterCurrent:
    """While active, the first SIGINT only sets `requested`; a second one interrupts at once."""

    def __init__(self):
        self.requested = False
        self._previous = None

    def _handler(self, signum, frame):
        self.requested = True
        signal.signal(signal.SIGINT, self._previous or signal.default_int_handler)

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.getsignal(signal.SIGINT)
            signal.signal(signal.SIGINT, self._handler)
        return self

    def __exit__(self, *exc):
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
        return False
