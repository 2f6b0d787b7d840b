"""Automation: a daily schedule and a sensor that starts the pipeline when exports land."""

import hashlib

import dagster as dg

from bclake.core.settings import get_settings
from bclake.orchestration.jobs import pipeline_job
from bclake.orchestration.partitions import latest_partition

daily_pipeline = dg.build_schedule_from_partitioned_job(
    pipeline_job,
    name="daily_pipeline",
    hour_of_day=6,
    minute_of_hour=0,
    description="Every morning at 06:00 China time (the partitions' time zone), after the "
    "nightly exports: loads every new file and marks the days it covers.",
)


def landing_fingerprint() -> str:
    """Names, sizes and modification times of every landing file: changes when files land."""
    landing = get_settings().landing
    digest = hashlib.sha256()
    for path in sorted(p for p in landing.rglob("*") if p.is_file()):
        stat = path.stat()
        digest.update(f"{path.relative_to(landing)}|{stat.st_size}|{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()


@dg.sensor(
    job=pipeline_job,
    minimum_interval_seconds=60,
    description="Runs the pipeline when files are added to or changed in landing/.",
)
def landing_sensor(context: dg.SensorEvaluationContext) -> dg.SensorResult | dg.SkipReason:
    fingerprint = landing_fingerprint()
    if fingerprint == context.cursor:
        return dg.SkipReason("no new or changed files in landing/")
    return dg.SensorResult(
        run_requests=[dg.RunRequest(run_key=fingerprint, partition_key=latest_partition())],
        cursor=fingerprint,
    )
