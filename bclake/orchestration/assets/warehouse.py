"""Warehouse assets: the dbt project, every model an asset and every test an asset check."""

import json
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import dagster as dg
from dagster_dbt import DagsterDbtTranslator, DbtCliResource, DbtProject, dbt_assets

from bclake.core.channel import load_channel
from bclake.core.contracts import load_contracts
from bclake.core.progress import track
from bclake.core.settings import DBT_PROJECT_DIR, Settings
from bclake.ingest.retention import cutoff as retention_cutoff
from bclake.orchestration.assets.lake import RETENTION_KEY, lake_key
from bclake.orchestration.resources import LakehouseResource

dbt_project = DbtProject(project_dir=DBT_PROJECT_DIR, profiles_dir=DBT_PROJECT_DIR)


class LakehouseTranslator(DagsterDbtTranslator):
    """dbt sources are the lake assets (`lake/<system>/<table>`); models keep `<schema>/<name>`."""

    def get_asset_key(self, dbt_resource_props: Mapping[str, Any]) -> dg.AssetKey:
        if dbt_resource_props["resource_type"] == "source":
            return lake_key(dbt_resource_props["source_name"], dbt_resource_props["name"])
        return super().get_asset_key(dbt_resource_props)

    def get_asset_spec(
        self, manifest: Mapping[str, Any], unique_id: str, project: DbtProject | None
    ) -> dg.AssetSpec:
        """Models and seeds wait for the retention step (`lake/retention`, itself after
        `lake/erasure`): the warehouse is built from a lake the erased people and the
        expired detail have left."""
        spec = super().get_asset_spec(manifest, unique_id, project)
        if unique_id.split(".")[0] in ("model", "seed", "snapshot"):
            return spec.merge_attributes(deps=[RETENTION_KEY])
        return spec

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
    """`dbt build` into the working database; a failing blocking test stops publishing.
    Progress: one unit per model, seed or test dbt reports.

    The retention cutoff (`ingest.retention.cutoff`) goes to dbt as the var
    `retention_cutoff`: the KPI models keep their rows of periods before it, and the
    incremental facts lose the consumer of their rows dated before it. The channel unit
    costs and margins (config/channel.yaml, `BCLAKE_CHANNEL`; `ChannelConfig.dbt_vars`)
    go as vars too: an invalid file stops the build here, naming the key."""
    settings = lakehouse.settings
    cutoff = retention_cutoff(settings, load_contracts().values())
    dbt_vars: dict[str, object] = load_channel(settings.channel_file).dbt_vars()
    if cutoff is not None:
        dbt_vars["retention_cutoff"] = cutoff.isoformat()
    args = ["build", "--vars", json.dumps(dbt_vars, ensure_ascii=False)]
    settings.build_db.parent.mkdir(parents=True, exist_ok=True)
    nodes = len(context.selected_asset_keys) + len(context.selected_asset_check_keys)
    with lakehouse.writer("dbt build", context.log.info):
        with _environment(settings.dbt_env()):
            invocation = dbt.cli(args, context=context, target_path=dbt_target(settings))
        with track("dbt build", total=nodes, unit="nodes") as task:
            for event in invocation.stream():
                task.advance(note=_node_name(event))
                yield event


def dbt_target(settings: Settings) -> Path:
    """The dbt target folder of a data root's pipeline runs (`<home>/dbt_target`): each run
    writes its artefacts (run_results.json, manifest.json, partial parse) over the last
    run's, so a nightly run leaves one folder, not one more per run in the project."""
    return settings.home / "dbt_target"


def _node_name(event: Any) -> str:
    """The asset (or asset check) a dbt event is about, as `schema/name[:check]`."""
    key = getattr(event, "asset_key", None)
    check = getattr(event, "check_name", None)
    if isinstance(key, dg.AssetKey):
        name = key.to_user_string()
    else:  # an Output names its asset by its output name
        name = getattr(event, "output_name", None) or type(event).__name__
    return f"{name}:{check}" if check else name


@contextmanager
def _environment(values: Mapping[str, str]) -> Iterator[None]:
    """`values` in this process's environment while dbt is started, restored after.

    `DbtCliResource.cli` (dagster-dbt 0.29) takes no environment: it hands the dbt
    subprocess a copy of `os.environ` when it starts it, inside the call. The data root
    comes from the `lakehouse` resource and lives in the environment only that long.
    """
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
