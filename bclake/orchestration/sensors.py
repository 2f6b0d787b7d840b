"""Automation: a daily schedule and a sensor that starts the pipeline when exports land."""

import hashlib
from pathlib import Path

import dagster as dg

from bclake.orchestration.jobs import pipeline_job
from bclake.orchestration.partitions import latest_partition
from bclake.orchestration.resources import LakehouseResource

daily_pipeline = dg.build_schedule_from_partitioned_job(
    pipeline_job,
    name="daily_pipeline",
    hour_of_day=6,
    minute_of_hour=0,
    description="Every morning at 06:00 China time (the partitions' time zone), after the "
    "nightly exports: loads every new file and marks the days it covers.",
)


def landing_fingerprint(landing: Path) -> str:
    """Names, sizes and modification times of every file under `landing`: changes when
    files land (SHA-256 hex digest)."""
    digest = hashlib.sha256()
    for path in sorted(p for p in landing.rglob("*") if p.is_file()):
        stat = path.stat()
        digest.update(f"{path.relative_to(landing)}|{stat.st_size}|{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def landing_sensor(partitions: dg.PartitionsDefinition) -> dg.SensorDefinition:
    """The sensor over the `lakehouse` resource's landing/, requesting runs for the latest
    of `partitions`."""

    @dg.sensor(
        name="landing_sensor",
        job=pipeline_job,
        minimum_interval_seconds=60,
        description="Runs the pipeline when files are added to or changed in landing/.",
    )
    def _sensor(
        context: dg.SensorEvaluationContext, lakehouse: LakehouseResource
    ) -> dg.SensorResult | dg.SkipReason:
        fingerprint = landing_fingerprint(lakehouse.settings.landing)
        if fingerprint == context.cursor:
            return dg.SkipReason("no new or changed files in landing/")
        return dg.SensorResult(
            run_requests=[
                dg.RunRequest(run_key=fingerprint, partition_key=latest_partition(partitions))
            ],
            cursor=fingerprint,
        )

    return _sensor
