"""The Dagster code location loads the way `dagster dev` loads it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_dagster_definitions_validate(tmp_path: Path) -> None:
    dagster = Path(sys.executable).with_name("dagster")
    proc = subprocess.run(
        [str(dagster), "definitions", "validate", "-m", "bclake.orchestration.definitions"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env={
            **__import__("os").environ,
            "BCLAKE_HOME": str(tmp_path),
            "DAGSTER_HOME": str(tmp_path),
        },
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Validation successful" in proc.stdout + proc.stderr


ML_TABLES = {
    "forecast_region_sku_week",
    "forecast_region_sku_week_backtest",
    "forecast_region_sku_week_scores",
    "forecast_store_sku_week",
    "forecast_store_sku_week_backtest",
    "forecast_store_sku_week_scores",
    "forecast_distributor_sku_week",
    "replenishment_store_sku",
    "replenishment_distributor_sku",
    "marketing_learner_scores",
    "marketing_qini_curves",
    "marketing_model_campaigns",
    "marketing_scores",
    "marketing_target_lists",
    "marketing_plans",
    "supply_production_plan",
    "supply_dc_allocation",
    "supply_dc_projection",
    "supply_transfers",
    "supply_demand_bands",
    "supply_notes",
    "channel_scores",
    "channel_inefficient",
    "channel_white_space",
    "channel_area_cells",
    "channel_coverage_plan",
    "channel_notes",
}


def test_every_contract_has_a_lake_asset_feeding_dbt() -> None:
    from bclake.core.contracts import load_contracts
    from bclake.orchestration.definitions import build_definitions

    defs = build_definitions()
    graph = defs.resolve_asset_graph()
    keys = {k.to_user_string() for k in graph.get_all_asset_keys()}
    for contract in load_contracts().values():
        assert f"lake/{contract.system}/{contract.table}" in keys
    assert {k.removeprefix("ml/") for k in keys if k.startswith("ml/")} == ML_TABLES
    for key in (
        "marts/fct_sell_through",
        "marts/as_of_date",
        "marts/fct_store_stock_positions",
        "marts/fct_distributor_stock_positions",
        "warehouse/published",
        "exports/planner_files",
    ):
        assert key in keys


def test_publish_waits_for_every_table_of_the_build() -> None:
    import dagster as dg

    from bclake.orchestration.definitions import build_definitions

    graph = build_definitions().resolve_asset_graph()
    published = dg.AssetKey(["warehouse", "published"])
    parents = {k.to_user_string() for k in graph.get(published).parent_keys}
    built = {
        k.to_user_string()
        for k in graph.get_all_asset_keys()
        if k.path[0] not in ("lake", "warehouse", "exports")
    }
    assert parents == built
    assert {f"ml/{t}" for t in ML_TABLES} | {"marts/kpi_values", "marts/dim_store"} <= parents


def test_the_dbt_sources_are_the_lake_assets() -> None:
    from bclake.orchestration.assets.lake import lake_key
    from bclake.orchestration.assets.warehouse import LakehouseTranslator

    source = {"resource_type": "source", "source_name": "dms", "name": "sell_through"}
    assert LakehouseTranslator().get_asset_key(source) == lake_key("dms", "sell_through")


def test_partitions_start_where_the_data_root_says(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from bclake.orchestration.definitions import PIPELINE_JOB, build_definitions

    monkeypatch.setenv("BCLAKE_PARTITION_START", "2024-03-01")
    job = build_definitions(tmp_path).resolve_job_def(PIPELINE_JOB)
    assert job.partitions_def is not None
    assert job.partitions_def.get_first_partition_key() == "2024-03-01"


def test_contracts_page_is_up_to_date() -> None:
    from bclake.core.contracts import load_contracts, render_markdown

    page = (ROOT / "docs" / "contracts.md").read_text(encoding="utf-8")
    assert page == render_markdown(load_contracts()) + "\n", (
        "docs/contracts.md is stale: run `bclake contracts --out docs/contracts.md`"
    )


def test_generated_dbt_files_are_up_to_date() -> None:
    from bclake.core.contracts import load_contracts
    from bclake.core.dbt_codegen import render_all
    from bclake.core.settings import DBT_PROJECT_DIR

    for name, text in render_all(list(load_contracts().values())).items():
        path = DBT_PROJECT_DIR / name
        assert path.exists() and path.read_text(encoding="utf-8") == text, (
            f"{path} is stale: run `bclake contracts --dbt`"
        )


def test_kpi_page_is_up_to_date() -> None:
    from bclake.core.kpis import load_kpis, render_markdown

    page = (ROOT / "docs" / "kpis.md").read_text(encoding="utf-8")
    assert page == render_markdown(load_kpis()) + "\n", (
        "docs/kpis.md is stale: run `bclake kpis --out docs/kpis.md`"
    )
