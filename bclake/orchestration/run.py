"""Run the pipeline job in this process: the one entry point of the CLI and the tests.

An ordinary run is for the latest daily partition and loads every new file; a
backfill is one run over a range of days that re-ingests the files feeding them
(the single-run backfill policy of the lake assets).

A run holds the data root's writer lock (`core.locks`) from start to end, so a second
run waits or stops with a message naming the first. Runs are tagged with the process
that runs them; a run whose process died (killed, machine restarted) is still STARTED in
Dagster's records, so the next run marks it failed before it starts.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import dagster as dg

from bclake.core.locks import process_alive, writer_lock
from bclake.core.settings import Settings
from bclake.orchestration.definitions import PIPELINE_JOB, build_definitions
from bclake.orchestration.erasure import finish as finish_erasure
from bclake.orchestration.partitions import (
    RANGE_END_TAG,
    RANGE_START_TAG,
    REINGEST_TAG,
    latest_partition,
)


def backfill_tags(partitions: dg.PartitionsDefinition, start: str, end: str) -> dict[str, str]:
    """Run tags for a one-run backfill of the days `start..end` (inclusive) of `partitions`.

    Raises ValueError when a day is not a partition or `start` is after `end`.
    """
    keys = partitions.get_partition_keys()
    for day in (start, end):
        if day not in keys:
            raise ValueError(
                f"{day} is not a lake partition (they run {keys[0]}..{keys[-1]}; set "
                "BCLAKE_PARTITION_START for earlier data)"
            )
    if start > end:
        raise ValueError(f"backfill start {start} is after its end {end}")
    return {RANGE_START_TAG: start, RANGE_END_TAG: end, REINGEST_TAG: "true"}


PID_TAG = "bclake/pid"
HOST_TAG = "bclake/host"
UNFINISHED = (dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.STARTED)


def run_pipeline(
    home: str,
    instance: dg.DagsterInstance,
    *,
    backfill: tuple[str, str] | None = None,
    run_config: Mapping[str, Any] | None = None,
    wait: float | None = 0,
    assets: Sequence[dg.AssetKey] | None = None,
) -> dg.ExecuteInProcessResult:
    """Materialise every asset; `backfill=(start, end)` re-ingests those days first;
    `assets` materialises only those (with their checks), e.g. the lake stage
    (`lake_stage`).

    wait: seconds to wait for a run already writing to `home` (None: as long as it
    takes; 0: stop at once). Raises `core.locks.DataRootBusy` when it is still running.

    Long steps report progress as log lines (`core.progress`), never as a live display
    (`LakehouseResource.setup_for_execution` says so for every run): Dagster's own log
    lines share the terminal, and its run log (the `bclake` logger is one of the
    instance's managed Python loggers) keeps them.
    """
    job = build_definitions(home).resolve_job_def(PIPELINE_JOB)
    partitions = job.partitions_def
    if partitions is None:  # the lake assets of dated tables are partitioned by day
        raise RuntimeError(f"{PIPELINE_JOB} has no partitions")
    where: dict[str, Any] = (
        {"tags": backfill_tags(partitions, *backfill)}
        if backfill
        else {"partition_key": latest_partition(partitions)}
    )
    where["tags"] = {
        **where.get("tags", {}),
        PID_TAG: str(os.getpid()),
        HOST_TAG: socket.gethostname(),
    }
    with writer_lock(Path(home), "bclake pipeline", wait=wait):
        fail_interrupted_runs(instance)
        result = job.execute_in_process(
            instance=instance,
            raise_on_error=False,
            run_config=run_config,
            asset_selection=list(assets) if assets is not None else None,
            **where,
        )
        # the run's own logs may name a person the run erased: scrubbed now that it ended
        finish_erasure(Settings.from_env(home), Path(instance.root_directory))
        return result


def lake_stage(tables: Sequence[str] = ()) -> list[dg.AssetKey]:
    """The assets of the lake stage: the lake table of every contract (or of `tables`, keys
    `system.table`), then the erasure and retention steps, which every lake load needs
    before anyone reads it. Raises ValueError naming an unknown table and the known ones."""
    from bclake.core.contracts import load_contracts
    from bclake.orchestration.assets.lake import ERASURE_KEY, RETENTION_KEY, lake_key

    contracts = load_contracts()
    unknown = [t for t in tables if t not in contracts]
    if unknown:
        raise ValueError(
            f"no contract for {', '.join(unknown)}: tables are SYSTEM.TABLE, one of "
            f"{', '.join(contracts)}"
        )
    chosen = [contracts[t] for t in tables] if tables else list(contracts.values())
    return [*(lake_key(c.system, c.table) for c in chosen), ERASURE_KEY, RETENTION_KEY]


def fail_interrupted_runs(instance: dg.DagsterInstance) -> list[str]:
    """Mark failed every unfinished run of this host whose process is gone; returns their ids.

    Their concurrency slots are freed. Only runs started by `run_pipeline` carry the
    process tags; runs launched by the Dagster daemon are watched by its own run monitoring.
    """
    host = socket.gethostname()
    failed = []
    for run in instance.get_runs(dg.RunsFilter(statuses=list(UNFINISHED))):
        pid = run.tags.get(PID_TAG)
        if run.tags.get(HOST_TAG) != host or not pid or not pid.isdigit():
            continue
        if int(pid) != os.getpid() and not process_alive(int(pid)):
            instance.report_run_failed(
                run, f"interrupted: process {pid} that ran it is gone (killed or restarted)"
            )
            # the concurrency slots (model pool) its steps held die with it
            if instance.event_log_storage.supports_global_concurrency_limits:
                instance.event_log_storage.free_concurrency_slots_for_run(run.run_id)
            failed.append(run.run_id)
    return failed
