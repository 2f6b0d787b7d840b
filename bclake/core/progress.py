"""Progress of long steps: rich bars on a terminal, periodic log lines elsewhere.

    with track("ingest sales", total=len(files), unit="files") as task:
        for path in files:
            load(path)
            task.advance(note=path.name)

On an interactive terminal (stderr is a TTY, not quiet, not CI) every `track` gets a bar
in one shared live display (nested `track` calls add bars under it) with completed/total,
rate, ETA and elapsed time; a finished bar is replaced by one finished line.

Otherwise (CI, Dagster runs, pipes) each task writes INFO lines on the `bclake.progress`
logger: one at the start, at most one every `BCLAKE_PROGRESS_SECONDS` seconds (default 10)
while it advances, and one at the end, e.g.

    forecast region × SKU: 2/3 fits (67%), 0.4 fits/s, ETA 3 s, 5.1 s elapsed — origin 2

When the `bclake` logger tree has no handler at all (a plain CLI run into a pipe), the
lines go straight to stderr instead, so they are never silently lost.

Quiet (`set_quiet(True)`, `bclake --quiet`, or env `BCLAKE_QUIET=1`): nothing at all.

Calls are cheap (a clock read and a comparison per `advance`); call them per file, per
table or per fit, not per row. Tasks may be advanced from several threads. Nothing here
raises because of the terminal: a display error switches the process to log lines.
"""

from __future__ import annotations

import logging
import math
import os
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, suppress
from typing import Any

__all__ = ["Task", "set_interactive", "set_quiet", "track"]

LOGGER = logging.getLogger("bclake.progress")

DEFAULT_INTERVAL_SECONDS = 10.0

# environment variables that mark a continuous-integration run (no live display there)
_CI_VARIABLES = ("CI", "GITHUB_ACTIONS", "GITLAB_CI", "BUILDKITE", "JENKINS_URL", "TF_BUILD")

_clock = time.monotonic  # seconds; tests replace it with a fake clock

_lock = threading.RLock()
_quiet: bool | None = None  # None: follow BCLAKE_QUIET
_interactive: bool | None = None  # None: detect (TTY, not CI)
_display_broken = False
_live: Any = None  # the shared rich Progress while at least one bar is shown
_live_tasks = 0


def set_quiet(quiet: bool) -> None:
    """Show no progress at all (True) or follow the defaults again (False).

    Env `BCLAKE_QUIET=1` (also `true`/`yes`) is honoured as well: either one silences.
    """
    global _quiet
    _quiet = bool(quiet)


def set_interactive(interactive: bool | None) -> bool | None:
    """Force rich bars (True) or log lines (False); None detects from the terminal again.
    Returns the previous setting, to restore it.

    Orchestrated runs call `set_interactive(False)`: their log capture, not a live
    display, is where progress belongs.
    """
    global _interactive
    previous, _interactive = _interactive, interactive
    return previous


def _is_quiet() -> bool:
    if _quiet:
        return True
    return os.environ.get("BCLAKE_QUIET", "").strip().lower() in {"1", "true", "yes", "on"}


def _is_interactive() -> bool:
    if _display_broken:
        return False
    if _interactive is not None:
        return _interactive
    if any(os.environ.get(name) for name in _CI_VARIABLES):
        return False
    if os.environ.get("TERM") == "dumb":
        return False
    try:
        return bool(sys.stderr is not None and sys.stderr.isatty())
    except (AttributeError, ValueError, OSError):
        return False


def _interval_seconds() -> float:
    """`BCLAKE_PROGRESS_SECONDS` (seconds between log lines; 0 logs every advance)."""
    raw = os.environ.get("BCLAKE_PROGRESS_SECONDS", "")
    try:
        value = float(raw) if raw.strip() else DEFAULT_INTERVAL_SECONDS
    except ValueError:
        return DEFAULT_INTERVAL_SECONDS
    return value if math.isfinite(value) and value >= 0 else DEFAULT_INTERVAL_SECONDS


# ---------------------------------------------------------------------------- text


def format_count(value: float) -> str:
    """`1,234` for whole numbers, `12.5` otherwise."""
    if float(value).is_integer():
        return f"{int(value):,}"
    return f"{value:,.1f}"


def format_rate(per_second: float) -> str:
    """Three significant figures: `0.412`, `4.12`, `41.2`, `412`, `4,120`."""
    if per_second >= 100:
        return f"{per_second:,.0f}"
    if per_second >= 10:
        return f"{per_second:.1f}"
    if per_second >= 1:
        return f"{per_second:.2f}"
    return f"{per_second:.3g}"


def format_seconds(seconds: float, precise: bool = True) -> str:
    """`5.1 s` (or `5 s` when not `precise`), `2 min 05 s`, `1 h 02 min`."""
    seconds = max(0.0, seconds)
    if seconds < 60:
        return f"{seconds:.1f} s" if precise else f"{math.ceil(seconds):.0f} s"
    whole = round(seconds)
    if whole < 3600:
        return f"{whole // 60} min {whole % 60:02d} s"
    return f"{whole // 3600} h {whole % 3600 // 60:02d} min"


def describe(
    description: str,
    completed: float,
    total: float | None,
    unit: str,
    elapsed: float,
    note: str | None = None,
) -> str:
    """One progress line: `desc: 2/3 fits (67%), 0.4 fits/s, ETA 3 s, 5.1 s elapsed — note`.

    The rate needs some elapsed time and some work done; the ETA also needs a total.
    """
    if total is not None:
        share = f" ({completed / total:.0%})" if total > 0 else ""
        parts = [f"{format_count(completed)}/{format_count(total)} {unit}{share}"]
    else:
        parts = [f"{format_count(completed)} {unit}"]
    if elapsed > 0 and completed > 0:
        rate = completed / elapsed
        parts.append(f"{format_rate(rate)} {unit}/s")
        if total is not None and total > completed:
            parts.append(f"ETA {format_seconds((total - completed) / rate, precise=False)}")
    parts.append(f"{format_seconds(elapsed)} elapsed")
    line = f"{description}: " + ", ".join(parts)
    return f"{line} — {note}" if note else line


# ---------------------------------------------------------------------------- tasks


class Task:
    """One tracked step. Create it with `track`, not directly."""

    def __init__(self, description: str, total: float | None, unit: str, mode: str) -> None:
        self.description = description
        self.total = total
        self.unit = unit
        self.completed = 0.0
        self.note: str | None = None
        self.mode = mode  # "quiet", "log" or "live"
        self.started = _clock()
        self._last_line = self.started
        self._interval = _interval_seconds()
        self._lock = threading.Lock()
        self._live_id: Any = None

    @property
    def elapsed(self) -> float:
        """Seconds since the task started."""
        return max(0.0, _clock() - self.started)

    def advance(self, n: float = 1, note: str | None = None) -> None:
        """Count `n` more units done; `note` (short, e.g. a file name) replaces the last one."""
        self._change(n, None, None, note)

    def update(
        self, completed: float | None = None, total: float | None = None, note: str | None = None
    ) -> None:
        """Set the units done and/or the total (e.g. once it is known) and/or the note."""
        self._change(0, completed, total, note)

    def _change(
        self, n: float, completed: float | None, total: float | None, note: str | None
    ) -> None:
        if self.mode == "quiet":
            return
        with self._lock:
            self.completed = (self.completed if completed is None else completed) + n
            if total is not None:
                self.total = total
            if self.total is not None and self.completed > self.total:
                self.total = self.completed  # the estimate was low: never above 100%
            if note is not None:
                self.note = note
            if self.mode == "log":
                now = _clock()
                if now - self._last_line < self._interval:
                    return
                self._last_line = now
                line = self.line()
            else:
                line = None
        if line is not None:
            _emit(line)
        else:
            self._refresh_live()

    def line(self, note: str | None = None) -> str:
        """The task's progress as one line of text (the current note unless `note`)."""
        return describe(
            self.description,
            self.completed,
            self.total,
            self.unit,
            self.elapsed,
            note if note is not None else self.note,
        )

    def counts(self) -> str:
        """`2/3 fits · 0.4 fits/s` (the live display's count and rate column)."""
        done = format_count(self.completed)
        text = f"{done}/{format_count(self.total)}" if self.total is not None else done
        elapsed = self.elapsed
        if elapsed > 0 and self.completed > 0:
            return f"{text} {self.unit} · {format_rate(self.completed / elapsed)} {self.unit}/s"
        return f"{text} {self.unit}"

    # -- live display

    def _refresh_live(self) -> None:
        live = _live
        if live is None:  # the display broke (in another task): log lines from now on
            self.mode = "log"
            return
        try:
            live.update(
                self._live_id,
                completed=self.completed,
                total=self.total,
                note=self.note or "",
                counts=self.counts(),
            )
        except Exception:
            _break_display()
            self.mode = "log"


def _emit(line: str) -> None:
    """Log `line` on `bclake.progress`; straight to stderr when no handler would show it."""
    try:
        if LOGGER.hasHandlers():
            LOGGER.info(line)
        elif sys.stderr is not None:
            sys.stderr.write(line + "\n")
            sys.stderr.flush()
    except Exception:  # a closed stream must not fail the step being tracked
        pass


def _break_display() -> None:
    """Give up on the live display for the rest of the process (log lines from now on)."""
    global _display_broken, _live, _live_tasks
    with _lock:
        _display_broken = True
        live, _live, _live_tasks = _live, None, 0
    if live is not None:
        with suppress(Exception):
            live.stop()


def _new_live() -> Any:
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        Progress,
        TaskProgressColumn,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    return Progress(
        TextColumn("{task.description}", markup=False),
        BarColumn(),
        TaskProgressColumn(),
        TextColumn("{task.fields[counts]}", markup=False),
        TimeRemainingColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.fields[note]}", style="dim", markup=False),
        console=Console(stderr=True),
        transient=True,
        refresh_per_second=4,
    )


def _start_live(task: Task) -> bool:
    """Add `task` to the shared display (starting it for the first task); False on failure."""
    global _live, _live_tasks
    try:
        with _lock:
            if _live is None:
                _live = _new_live()
                _live.start()
            task._live_id = _live.add_task(
                task.description, total=task.total, note="", counts=task.counts()
            )
            _live_tasks += 1
        return True
    except Exception:
        _break_display()
        return False


def _finish_live(task: Task, outcome: str | None) -> None:
    """Replace the task's bar by one finished line; stop the display after the last task."""
    global _live, _live_tasks
    from rich.text import Text

    try:
        with _lock:
            live = _live
            if live is None:
                return
            live.remove_task(task._live_id)
            text = task.line(note=outcome or task.note)
            failed = bool(outcome and outcome.startswith("failed"))
            mark = ("✗ ", "red") if failed else ("✓ ", "green")
            live.console.print(Text.assemble(mark, text), highlight=False)
            _live_tasks -= 1
            if _live_tasks <= 0:
                _live, _live_tasks = None, 0
                live.stop()
    except Exception:
        _break_display()


def _mode() -> str:
    if _is_quiet():
        return "quiet"
    return "live" if _is_interactive() else "log"


@contextmanager
def _tracked(description: str, total: float | None, unit: str) -> Iterator[Task]:
    task = Task(description, total, unit, _mode())
    if task.mode == "live" and not _start_live(task):
        task.mode = "log"
    if task.mode == "log":
        _emit(task.line())
    outcome: str | None = None
    try:
        yield task
    except BaseException as error:
        outcome = f"failed ({type(error).__name__})"
        raise
    finally:
        _finish(task, outcome)


def _finish(task: Task, outcome: str | None) -> None:
    if task.mode == "log":
        _emit(task.line(note=outcome or (f"done, {task.note}" if task.note else "done")))
    elif task.mode == "live":
        _finish_live(task, outcome)


def track(
    description: str, total: float | None = None, unit: str = "steps"
) -> AbstractContextManager[Task]:
    """A context manager tracking one long step: `with track(...) as task: task.advance()`.

    `total` is the number of `unit`s expected (None when unknown: no percentage or ETA).
    Leaving the block ends the task (also on an exception, which is re-raised unchanged).
    """
    return _tracked(description, total, unit)
