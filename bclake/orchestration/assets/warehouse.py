"""Warehouse assets: the dbt project, every model an asset and every test an asset check."""

import os
from collections.abc import Iterator, Mapping
from typing import Any

import dagster as dg
from dagster_dbt import DagsterDbtTranslator, DbtCliResource, DbtProject, dbt_assets

from bclake.core.settings import DBT_PROJECT_DIR
from bclake.orchestration.resources import LakehouseResource

dbt_project = DbtProject(project_dir=DBT_PROJECT_DIR, profiles_dir=DBT_PROJECT_DIR)


class LakehouseTranslator(DagsterDbtTranslator):
    """dbt sources are the lake assets (`lake/<system>/<table>`); models keep `<schema>/<name>`."""

    def get_asset_key(self, dbt_resource_props: Mapping[str, Any]) -> dg.AssetKey:
        if dbt_resource_props["resource_type"] == "source":
            return dg.AssetKey(
                ["lake", dbt_resource_props["source_name"], dbt_resource_props["name"]]
            )
        return super().get_asset_key(dbt_resource_props)

    def get_group_name(self, dbt_resource_props: Mapping[str, Any]) -> str | None:
        """One group per layer: warehouse_staging, _intermediate, _marts, _reference (seeds)."""
        schema = dbt_resource_props.get("config", {}).get("schema") or "marts"
        return f"warehouse_{schema}"


if not dbt_project.manifest_path.exists():
    raise FileNotFoundError(
        f"{dbt_project.manifest_path} is missing: run `make env` (it runs `dbt parse`) first."
    )


@dbt_assets(
    manifest=dbt_project.manifest_path,
    project=dbt_project,
    dagster_dbt_translator=LakehouseTranslator(),
)
def warehouse_dbt_assets(
    context: dg.AssetExecutionContext, dbt: DbtCliResource, lakehouse: LakehouseResource
) -> Iterator[Any]:
    """`dbt build` into the working database; a failing blocking test stops publishing."""
    settings = lakehouse.settings
    settings.build_db.parent.mkdir(parents=True, exist_ok=True)
    os.environ.update(settings.dbt_env())
    yield from dbt.cli(["build"], context=context).stream()
