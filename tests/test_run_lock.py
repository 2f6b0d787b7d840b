"""One writer per data root: the lock, a second run, interrupted runs, dbt dying with its run."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import dagster as dg
import pytest
from dagster._core.execution.plan.instance_concurrency_context import InstanceConcurrencyContext
from dagster._core.instance.config import PoolGranularity
from dagster._core.storage.dagster_run import DagsterRun

from bclake.cli import dagster_home
from bclake.core.locks import DataRootBusy, holder, process_alive, writer_lock
from bclake.core.settings import Settings
from bclake.orchestration.assets.tables import MODEL_POOL
from bclake.orchestration.definitions import build_definitions
from bclake.orchestration.run import HOST_TAG, PID_TAG, fail_interrupted_runs, run_pipeline

HOLD = """
import sys, time
from pathlib import Path
from bclake.core.locks import writer_lock
with writer_lock(Path(sys.argv[1]), "nightly run"):
    print("held", flush=True)
    time.sleep(60)
"""


@pytest.fixture
def held(tmp_path: Path):
    """A second process holding the writer lock of tmp_path until it is killed."""
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(tmp_path)], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
    yield proc
    proc.kill()
    proc.wait()


def test_second_writer_stops_with_the_holders_name(tmp_path: Path, held) -> None:
    started = time.monotonic()
    with pytest.raises(DataRootBusy) as error, writer_lock(tmp_path, "second", wait=0.6):
        pass
    assert time.monotonic() - started >= 0.5  # it waited as long as it was told
    message = str(error.value)
    assert f"process {held.pid}" in message and "nightly run" in message
    assert str(tmp_path) in message and "--wait" in message


def test_lock_is_released_when_its_holder_is_killed(tmp_path: Path, held) -> None:
    told: list[str] = []
    held.send_signal(signal.SIGKILL)
    with writer_lock(tmp_path, "after the kill", wait=5, log=told.append):
        assert holder(tmp_path)["pid"] == os.getpid()
        assert holder(tmp_path)["purpose"] == "after the kill"


def test_a_waiting_writer_says_whom_it_waits_for_and_goes_on_when_free(
    tmp_path: Path, held
) -> None:
    told: list[str] = []

    def release_soon(message: str) -> None:
        told.append(message)
        held.kill()

    with writer_lock(tmp_path, "waiting run", wait=10, log=release_soon):
        pass
    assert len(told) == 1 and f"process {held.pid}" in told[0]


def test_lock_is_reentrant_within_a_process(tmp_path: Path) -> None:
    with writer_lock(tmp_path, "run", wait=0), writer_lock(tmp_path, "dbt build", wait=0):
        assert holder(tmp_path)["purpose"] == "run"
    # released: another process can take it at once
    probe = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from pathlib import Path; from bclake.core.locks import writer_lock\n"
            "with writer_lock(Path(sys.argv[1]), 'probe', wait=0): print('ok')",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert probe.stdout.strip() == "ok"


@pytest.mark.usefixtures("held")
def test_a_second_pipeline_run_stops_before_it_starts(tmp_path: Path) -> None:
    instance = dg.DagsterInstance.ephemeral()
    with pytest.raises(DataRootBusy, match="nightly run"):
        run_pipeline(str(tmp_path), instance, wait=0)
    assert instance.get_runs() == []
    assert not (tmp_path / "lake").exists() and not (tmp_path / "warehouse").exists()


def _started_run(instance: dg.DagsterInstance, pid: int, host: str) -> DagsterRun:
    run = DagsterRun(
        job_name="bclake_pipeline",
        run_id=str(uuid.uuid4()),
        status=dg.DagsterRunStatus.STARTED,
        tags={PID_TAG: str(pid), HOST_TAG: host},
    )
    return instance.add_run(run)


def test_runs_whose_process_died_are_marked_failed() -> None:
    instance = dg.DagsterInstance.ephemeral()
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    gone = _started_run(instance, dead.pid, socket.gethostname())
    alive = _started_run(instance, os.getppid(), socket.gethostname())
    elsewhere = _started_run(instance, dead.pid, "another-host")

    assert fail_interrupted_runs(instance) == [gone.run_id]

    def status(run: DagsterRun) -> dg.DagsterRunStatus:
        return instance.get_run_by_id(run.run_id).status

    assert status(gone) == dg.DagsterRunStatus.FAILURE
    assert status(alive) == dg.DagsterRunStatus.STARTED
    assert status(elsewhere) == dg.DagsterRunStatus.STARTED


PARENT = """
import subprocess, sys, time
child = subprocess.Popen([sys.executable, "-c", sys.argv[1], "30"])
print(child.pid, flush=True)
time.sleep(60)
"""
# bclake-dbt's own entry point, with `sleep` in place of dbt
THROUGH_BCLAKE_DBT = (
    "from bclake.orchestration import dbt_child\n"
    "dbt_child.dbt_path = lambda: '/bin/sleep'\n"
    "dbt_child.main()"
)
PLAIN = "import os, sys; os.execv('/bin/sleep', ['sleep', *sys.argv[1:]])"


def _orphan_survives(child_code: str) -> bool:
    """Start a parent that starts `child_code`, kill the parent, say if the child lives on."""
    parent = subprocess.Popen(
        [sys.executable, "-c", PARENT, child_code], stdout=subprocess.PIPE, text=True
    )
    assert parent.stdout is not None
    child = int(parent.stdout.readline())
    time.sleep(0.5)  # the child has exec'd
    parent.kill()
    parent.wait()
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and _running(child):
        time.sleep(0.1)
    survived = _running(child)
    if survived:
        os.kill(child, signal.SIGKILL)
    return survived


def _running(pid: int) -> bool:
    if not process_alive(pid):
        return False
    status = Path(f"/proc/{pid}/status")
    return not status.exists() or "\nState:\tZ" not in status.read_text()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="parent-death signal is Linux")
def test_dbt_dies_with_the_run_that_started_it() -> None:
    assert _orphan_survives(PLAIN), "control: an ordinary child outlives its killed parent"
    assert not _orphan_survives(THROUGH_BCLAKE_DBT)


def test_model_fits_share_one_concurrency_pool(tmp_path: Path) -> None:
    """Every asset that fits a LightGBM model is in the model pool, and only those."""
    defs = build_definitions(str(tmp_path))
    pools = {}
    for assets in defs.resolve_all_asset_specs():
        pools[assets.key] = (assets.kinds, defs.resolve_assets_def(assets.key).op.pool)
    fits = {k for k, (kinds, _) in pools.items() if "lightgbm" in kinds}
    assert {k.path[-1] for k in fits} >= {"forecast_region_sku_week", "marketing_target_lists"}
    assert {k for k, (_, pool) in pools.items() if pool == MODEL_POOL} == fits


def test_the_model_pool_queues_runs_never_steps_and_a_dead_runs_slot_is_freed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The dagster.yaml bclake writes limits each pool to one run at a time, enforced by the
    run queue: a step of an in-process run never waits for a slot (the writer lock orders
    them). A slot claimed by a run whose process died is given back when the next run
    marks it failed."""
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster"))
    home = dagster_home(Settings.from_env(tmp_path))
    with dg.DagsterInstance.from_config(str(home)) as instance:
        storage = instance.event_log_storage
        config = storage.get_pool_config()
        assert config.default_pool_limit == 1
        assert config.pool_granularity == PoolGranularity.RUN
        dead = subprocess.Popen([sys.executable, "-c", "pass"])
        dead.wait()
        first = _started_run(instance, dead.pid, socket.gethostname())
        second = _started_run(instance, os.getpid(), socket.gethostname())
        for run in (first, second):  # both at once: nothing in a step waits for the pool
            with InstanceConcurrencyContext(instance, run) as slots:
                assert slots.claim(MODEL_POOL, "forecast_region_sku_week")
        storage.set_concurrency_slots(MODEL_POOL, 1)
        assert storage.claim_concurrency_slot(MODEL_POOL, first.run_id, "fit").is_claimed
        assert not storage.claim_concurrency_slot(MODEL_POOL, second.run_id, "fit").is_claimed
        assert fail_interrupted_runs(instance) == [first.run_id]
        assert storage.claim_concurrency_slot(MODEL_POOL, second.run_id, "fit").is_claimed
