"""The bclake code location: one Definitions object for `dagster dev` and the CLI."""

from __future__ import annotations

import sys
from pathlib import Path

import dagster as dg
from dagster_dbt import DbtCliResource

from bclake.core.settings import Settings
from bclake.orchestration.assets.channel import channel_assets, channel_checks
from bclake.orchestration.assets.lake import (
    incentive_programmes,
    lake_assets,
    lake_checks,
    lake_erasure,
    lake_retention,
)
from bclake.orchestration.assets.marketing import marketing_assets, marketing_checks
from bclake.orchestration.assets.models import model_assets, model_checks
from bclake.orchestration.assets.publish import (
    market_order_alert_delivery,
    planner_files,
    published_warehouse,
)
from bclake.orchestration.assets.supply import supply_assets, supply_checks
from bclake.orchestration.assets.warehouse import dbt_project, warehouse_dbt_assets
from bclake.orchestration.dbt_child import dbt_path
from bclake.orchestration.jobs import PIPELINE_JOB, pipeline_job
from bclake.orchestration.partitions import lake_partitions
from bclake.orchestration.resources import LakehouseResource
from bclake.orchestration.sensors import daily_pipeline, landing_sensor

# dbt from this environment even when it is not activated (e.g. `make` calls .venv/bin/dagster),
# through `bclake-dbt` (orchestration/dbt_child.py) so that it dies with the run that started it
DBT_EXECUTABLE = (
    str(Path(sys.executable).with_name("bclake-dbt"))
    if Path(sys.executable).with_name("bclake-dbt").exists()
    else dbt_path()
)


def build_definitions(home: str | Path | None = None) -> dg.Definitions:
    """Definitions bound to a data root (default: `BCLAKE_HOME` from the environment).

    The root's settings are read once, here: the `lakehouse` resource carries the root to
    every asset, check and sensor, and the lake's daily partitions start at its
    `partition_start`.
    """
    settings = Settings.from_env(home)
    partitions = lake_partitions(settings.partition_start)
    # everything the working database holds
    built = [
        warehouse_dbt_assets,
        *model_assets,
        *marketing_assets,
        *supply_assets,
        *channel_assets,
    ]
    return dg.Definitions(
        assets=[
            *lake_assets(partitions),
            incentive_programmes,
            lake_erasure,
            lake_retention,
            *built,
            published_warehouse(built),
            planner_files,
            market_order_alert_delivery,
        ],
        asset_checks=[
            *lake_checks,
            *model_checks,
            *marketing_checks,
            *supply_checks,
            *channel_checks,
        ],
        jobs=[pipeline_job],
        schedules=[daily_pipeline],
        sensors=[landing_sensor(partitions)],
        resources={
            "lakehouse": LakehouseResource(home=str(settings.home)),
            "dbt": DbtCliResource(project_dir=dbt_project, dbt_executable=DBT_EXECUTABLE),
        },
    )


defs = build_definitions()

__all__ = ["PIPELINE_JOB", "build_definitions", "defs"]
