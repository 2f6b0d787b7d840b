"""The Dagster code location loads the way `dagster dev` loads it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

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


def test_every_contract_has_a_lake_asset_feeding_dbt() -> None:
    from bclake.core.contracts import load_contracts
    from bclake.orchestration.definitions import build_definitions

    defs = build_definitions()
    graph = defs.resolve_asset_graph()
    keys = {k.to_user_string() for k in graph.get_all_asset_keys()}
    for contract in load_contracts().values():
        assert f"lake/{contract.system}/{contract.table}" in keys
    for key in (
        "marts/fct_sell_through",
        "ml/forecast_region_sku_week",
        "ml/forecast_store_sku_week",
        "ml/replenishment_store_sku",
        "ml/replenishment_distributor_sku",
        "warehouse/published",
        "exports/planner_files",
    ):
        assert key in keys


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
