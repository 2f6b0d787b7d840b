"""Progress of long steps: log lines off a terminal, silence when quiet, bars never fail."""

from __future__ import annotations

import logging
import threading

import pytest

from bclake.core import progress
from bclake.core.progress import describe, set_interactive, set_quiet, track
from bclake.orchestration.resources import LakehouseResource  # a real annotation for Dagster


class FakeClock:
    """A monotonic clock the test moves by hand (seconds)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    fake = FakeClock()
    monkeypatch.setattr(progress, "_clock", fake)
    monkeypatch.delenv("BCLAKE_QUIET", raising=False)
    monkeypatch.delenv("BCLAKE_PROGRESS_SECONDS", raising=False)
    set_quiet(False)
    set_interactive(False)
    yield fake
    set_quiet(False)
    set_interactive(None)


def lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "bclake.progress"]


def test_log_lines_start_throttled_and_end(clock, caplog):
    caplog.set_level(logging.INFO, logger="bclake.progress")
    with track("forecast region × SKU", total=3, unit="fits") as task:
        clock.now += 2.5
        task.advance(note="origin 1")  # 2.5 s after the start line: within 10 s, no line
        clock.now += 2.6
        task.advance(note="origin 2")  # 5.1 s: still within 10 s
        clock.now += 5.0
        task.advance(note="origin 3")  # 10.1 s: one line
    assert lines(caplog) == [
        "forecast region × SKU: 0/3 fits (0%), 0.0 s elapsed",
        "forecast region × SKU: 3/3 fits (100%), 0.297 fits/s, 10.1 s elapsed — origin 3",
        "forecast region × SKU: 3/3 fits (100%), 0.297 fits/s, 10.1 s elapsed — done, origin 3",
    ]


def test_interval_from_environment_zero_logs_every_advance(clock, caplog, monkeypatch):
    monkeypatch.setenv("BCLAKE_PROGRESS_SECONDS", "0")
    caplog.set_level(logging.INFO, logger="bclake.progress")
    with track("forecast region × SKU", total=3, unit="fits") as task:
        clock.now += 2.5
        task.advance(note="origin 1")
        clock.now += 2.6
        task.advance(note="origin 2")
    assert lines(caplog)[1:] == [
        "forecast region × SKU: 1/3 fits (33%), 0.4 fits/s, ETA 5 s, 2.5 s elapsed — origin 1",
        "forecast region × SKU: 2/3 fits (67%), 0.392 fits/s, ETA 3 s, 5.1 s elapsed — origin 2",
        "forecast region × SKU: 2/3 fits (67%), 0.392 fits/s, ETA 3 s, 5.1 s elapsed — done, "
        "origin 2",
    ]


def test_unknown_total_then_update(clock, caplog, monkeypatch):
    monkeypatch.setenv("BCLAKE_PROGRESS_SECONDS", "0")
    caplog.set_level(logging.INFO, logger="bclake.progress")
    with track("ingest sales", unit="rows") as task:
        clock.now += 2.0
        task.advance(25_000)
        task.update(total=100_000, note="day 2")
        clock.now += 90.0
        task.update(completed=100_000)
    assert lines(caplog) == [
        "ingest sales: 0 rows, 0.0 s elapsed",
        "ingest sales: 25,000 rows, 12,500 rows/s, 2.0 s elapsed",
        # a 0 s interval logs every update, also one that only sets the total
        "ingest sales: 25,000/100,000 rows (25%), 12,500 rows/s, ETA 6 s, 2.0 s elapsed — day 2",
        "ingest sales: 100,000/100,000 rows (100%), 1,087 rows/s, 1 min 32 s elapsed — day 2",
        "ingest sales: 100,000/100,000 rows (100%), 1,087 rows/s, 1 min 32 s elapsed — done, day 2",
    ]


def test_describe_eta_and_rate_text():
    assert describe("fit", 1, 4, "fits", 30.0) == (
        "fit: 1/4 fits (25%), 0.0333 fits/s, ETA 1 min 30 s, 30.0 s elapsed"
    )
    assert describe("fit", 0, 4, "fits", 30.0) == "fit: 0/4 fits (0%), 30.0 s elapsed"
    assert describe("load", 7_200, 7_200, "rows", 3_700.0, "x.csv") == (
        "load: 7,200/7,200 rows (100%), 1.95 rows/s, 1 h 01 min elapsed — x.csv"
    )
    assert describe("load", 2.5, None, "GB", 0.5) == "load: 2.5 GB, 5.00 GB/s, 0.5 s elapsed"


@pytest.mark.usefixtures("clock")
def test_quiet_is_silent(caplog, capsys, monkeypatch):
    monkeypatch.setenv("BCLAKE_PROGRESS_SECONDS", "0")
    caplog.set_level(logging.INFO, logger="bclake.progress")
    set_quiet(True)
    with track("publish", total=2, unit="tables") as task:
        task.advance(note="a")
        task.update(completed=2)
    set_quiet(False)
    monkeypatch.setenv("BCLAKE_QUIET", "1")
    set_interactive(True)  # even a terminal shows nothing when quiet
    with track("publish", total=2, unit="tables") as task:
        task.advance(note="a")
    assert lines(caplog) == []
    assert capsys.readouterr() == ("", "")


def test_exception_ends_the_task_and_is_reraised(clock, caplog):
    caplog.set_level(logging.INFO, logger="bclake.progress")
    with pytest.raises(KeyError, match="missing"), track("ingest", total=4, unit="files") as task:
        clock.now += 1.0
        task.advance(note="a.csv")
        raise KeyError("missing")
    assert lines(caplog)[-1] == (
        "ingest: 1/4 files (25%), 1.00 files/s, ETA 3 s, 1.0 s elapsed — failed (KeyError)"
    )


@pytest.mark.usefixtures("clock")
def test_no_handler_writes_to_stderr(capsys, monkeypatch):
    """A plain run into a pipe (nothing configured logging) still sees the lines."""
    monkeypatch.setattr(progress.LOGGER, "hasHandlers", lambda: False)
    with track("export", total=1, unit="files") as task:
        task.advance()
    err = capsys.readouterr().err.splitlines()
    assert err[0] == "export: 0/1 files (0%), 0.0 s elapsed"
    assert err[-1].endswith("— done")


@pytest.mark.usefixtures("clock")
def test_live_display_nested_and_threads_never_raise(capsys):
    """Bars on a (forced) terminal: nested tasks, advances from threads, a finished line."""
    set_interactive(True)
    with track("outer", total=2, unit="tables") as outer:
        for name in ("a", "b"):
            with track(f"inner {name}", total=40, unit="files") as inner:
                workers = [
                    threading.Thread(target=lambda t=inner: [t.advance() for _ in range(10)])
                    for _ in range(4)
                ]
                for worker in workers:
                    worker.start()
                for worker in workers:
                    worker.join()
                assert inner.completed == 40
            outer.advance(note=name)
    assert progress._live is None  # the shared display stopped with the last task
    err = capsys.readouterr().err
    assert "inner a: 40/40 files (100%)" in err
    assert "outer: 2/2 tables (100%)" in err


@pytest.mark.usefixtures("clock")
def test_broken_display_falls_back_to_log_lines(caplog, monkeypatch):
    def broken() -> None:
        raise OSError("no terminal")

    monkeypatch.setattr(progress, "_new_live", broken)
    monkeypatch.setattr(progress, "_display_broken", False)
    caplog.set_level(logging.INFO, logger="bclake.progress")
    set_interactive(True)
    with track("publish", total=1, unit="tables") as task:
        task.advance()
    assert lines(caplog)[0] == "publish: 0/1 tables (0%), 0.0 s elapsed"
    assert lines(caplog)[-1].endswith("— done")


def test_dagster_run_log_keeps_the_lines(monkeypatch):
    """With the instance settings `bclake` writes (`cli.DAGSTER_DEFAULTS`), the lines of a
    step are in the run's log, and a run shows no live display even on a terminal."""
    import dagster as dg

    from bclake.cli import DAGSTER_DEFAULTS

    monkeypatch.setenv("BCLAKE_PROGRESS_SECONDS", "0")
    monkeypatch.delenv("BCLAKE_QUIET", raising=False)
    set_quiet(False)
    set_interactive(True)

    @dg.asset
    def fits(lakehouse: LakehouseResource) -> None:
        assert lakehouse.home
        with track("forecast region × SKU", total=2, unit="fits") as task:
            task.advance(note="origin 1")
            task.advance(note="origin 2")

    try:
        with dg.DagsterInstance.ephemeral(
            settings={"python_logs": DAGSTER_DEFAULTS["python_logs"]}
        ) as instance:
            result = dg.materialize(
                [fits], instance=instance, resources={"lakehouse": LakehouseResource(home=".")}
            )
            messages = [e.user_message for e in instance.all_logs(result.run_id)]
    finally:
        set_interactive(None)
    assert result.success
    ours = [m for m in messages if m.startswith("forecast region × SKU: ")]
    assert len(ours) == 4  # start, two advances (0 s interval), end
    assert ours[2].startswith("forecast region × SKU: 2/2 fits (100%)")
    assert ours[3].endswith("— done, origin 2")


def test_cli_quiet_option(monkeypatch):
    from typer.testing import CliRunner

    from bclake.cli import app

    monkeypatch.setattr(progress, "_quiet", None)
    result = CliRunner().invoke(app, ["--quiet", "kpis"])
    assert result.exit_code == 0, result.output
    assert progress._is_quiet()
    set_quiet(False)


@pytest.mark.usefixtures("clock")
def test_ingest_reports_each_file_without_the_personal_data_in_its_name(
    caplog, monkeypatch, tmp_path
):
    """One line per file (0 s interval): files done of total, rows read, the file's name
    pseudonymised as the ledger keeps it (a phone number in a name never reaches a log)."""
    import json

    from bclake.core.contracts import load_contracts
    from bclake.core.settings import Settings
    from bclake.ingest.loader import ingest_table

    monkeypatch.setenv("BCLAKE_PROGRESS_SECONDS", "0")
    monkeypatch.setenv("BCLAKE_PII_KEY", "a-secret-key-for-tests")
    folder = tmp_path / "landing/cdp/consumers"
    folder.mkdir(parents=True)
    consumer = {
        "consumerId": "C000000001",
        "phone": "13812345678",
        "profile": {"gender": "F", "birthYear": 1990, "city": "杭州"},
        "registerChannel": "扫码",
        "registerDate": "2025-01-02",
        "consents": {"marketing": True, "profile": True},
    }
    for name in ("a.ndjson", "from_13900001111.ndjson"):
        (folder / name).write_text(json.dumps(consumer, ensure_ascii=False) + "\n")
        consumer = {**consumer, "consumerId": "C000000002"}
    caplog.set_level(logging.INFO, logger="bclake.progress")
    ingest_table(load_contracts()["cdp.consumers"], Settings.from_env(tmp_path))
    ours = lines(caplog)
    assert ours[0] == "ingest cdp.consumers: 0/2 files (0%), 0.0 s elapsed"
    assert ours[1].startswith("ingest cdp.consumers: 1/2 files (50%)")
    assert ours[1].endswith("cdp/consumers/a.ndjson; 1 rows read")  # the fake clock stood still
    assert ours[2].startswith("ingest cdp.consumers: 2/2 files (100%)")
    assert "; 2 rows read" in ours[2]
    assert ours[3].endswith("— done, " + ours[2].split(" — ", 1)[1])
    assert len(ours) == 4
    assert not any("13900001111" in line for line in ours)
