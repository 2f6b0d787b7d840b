"""One writer per data root: an advisory lock every writing step holds while it writes.

DuckDB lets one process write a database file, and the lake, the ledger, the build
database, the published copy and the export folder must change together. Every step
that writes under a data root holds `writer_lock(root)` (an exclusive `flock` on
`<root>/.bclake/writer.lock`): a pipeline run started from the command line holds it
for the whole run; a step run by Dagster in its own process holds it for the step.
A second writer waits or stops with a message naming the holder (its pid, host,
purpose and start time, written into the lock file).

The lock is released by the kernel when its holder dies, so a killed run never leaves
a stale lock. Within one process the lock is re-entrant: a step of a run that already
holds it passes straight through.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

LOCK_DIR = ".bclake"
LOCK_FILE = "writer.lock"
POLL_SECONDS = 0.5


class DataRootBusy(RuntimeError):
    """Another process is writing to the data root; the message names it."""


_held: dict[Path, int] = {}
_guard = threading.RLock()


def lock_path(root: Path) -> Path:
    return Path(root) / LOCK_DIR / LOCK_FILE


def holder(root: Path) -> dict | None:
    """Who holds (or last held) the lock of `root`: pid, host, purpose, started_at; or None."""
    try:
        return json.loads(lock_path(root).read_text() or "null")
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def describe(info: dict | None) -> str:
    if not info:
        return "another process"
    return (
        f"process {info.get('pid')} on {info.get('host')} ({info.get('purpose')}, "
        f"started {info.get('started_at')})"
    )


@contextmanager
def writer_lock(
    root: Path,
    purpose: str,
    wait: float | None = None,
    log: Callable[[str], None] | None = None,
) -> Iterator[None]:
    """Hold the writer lock of data root `root` for the duration of the block.

    purpose: what the holder does, shown to whoever waits ("bclake pipeline", "dbt build").
    wait: seconds to wait for the current holder; None waits as long as it takes, 0 does
    not wait. log: told once, with the holder, when the block has to wait.
    Raises DataRootBusy when the lock is still held after `wait` seconds.
    Re-entrant within a process (threads of one run share it).
    """
    root = Path(os.path.realpath(root))
    path = lock_path(root)
    with _guard:
        if _held.get(path):
            _held[path] += 1
            try:
                yield
            finally:
                _held[path] -= 1
            return
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
    try:
        _acquire(fd, root, wait, log)
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(_me(purpose)).encode(), 0)
        with _guard:
            _held[path] = 1
        try:
            yield
        finally:
            with _guard:
                _held.pop(path, None)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def _acquire(fd: int, root: Path, wait: float | None, log: Callable[[str], None] | None) -> None:
    deadline = None if wait is None else time.monotonic() + wait
    told = False
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if log is not None and not told and wait != 0:
                log(f"waiting for {describe(holder(root))} to finish writing {root}")
                told = True
            if deadline is not None and time.monotonic() >= deadline:
                raise DataRootBusy(
                    f"{root} is being written by {describe(holder(root))}. Wait for it to "
                    "finish (or stop it) and run again; `bclake pipeline --wait` waits for it."
                ) from None
            time.sleep(POLL_SECONDS)


def _me(purpose: str) -> dict:
    return {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "purpose": purpose,
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def process_alive(pid: int) -> bool:
    """True when a process with this id exists on this host (signal 0 probes it)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
