"""Run the pipeline job in this process: the one entry point of the CLI and the tests.

An ordinary run is for the latest daily partition and loads every new file; a
backfill is one run over a range of days that re-ingests the files feeding them
(the single-run backfill policy of the lake assets).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import dagster as dg

from bclake.orchestration.definitions import PIPELINE_JOB, build_definitions
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


def run_pipeline(
    home: str,
    instance: dg.DagsterInstance,
    *,
    backfill: tuple[str, str] | None = None,
    run_config: Mapping[str, Any] | None = None,
) -> dg.ExecuteInProcessResult:
    """Materialise every asset; `backfill=(start, end)` re-ingests those days first."""
    job = build_definitions(home).resolve_job_def(PIPELINE_JOB)
    partitions = job.partitions_def
    if partitions is None:  # the lake assets of dated tables are partitioned by day
        raise RuntimeError(f"{PIPELINE_JOB} has no partitions")
    where: dict[str, Any] = (
        {"tags": backfill_tags(partitions, *backfill)}
        if backfill
        else {"partition_key": latest_partition(partitions)}
    )
    return job.execute_in_process(
        instance=instance, raise_on_error=False, run_config=run_config, **where
    )
