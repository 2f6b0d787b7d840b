"""`bclake ingest`: the lake stage alone, on a freshly simulated tiny world: the chosen
tables are loaded through the pipeline's own lake assets (ledger, quarantine, checks),
then erasure and retention; no warehouse is built and nothing is published."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from bclake.cli import app
from bclake.core.settings import Settings
from bclake.ingest.ledger import read_ledger
from bclake.orchestration.run import lake_stage
from bclake.simulator.run import simulate


def test_the_lake_stage_names_its_assets() -> None:
    keys = [k.to_user_string() for k in lake_stage(["dms.stores", "cdp.consumers"])]
    assert keys == ["lake/dms/stores", "lake/cdp/consumers", "lake/erasure", "lake/retention"]
    assert len(lake_stage()) > 20, "every contract's table, then erasure and retention"
    with pytest.raises(ValueError, match=r"no contract for dms\.shops: .*dms\.stores"):
        lake_stage(["dms.shops"])


@pytest.fixture
def fresh_tiny(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A tiny world simulated into landing/, nothing ingested yet."""
    home = tmp_path / "home"
    monkeypatch.setenv("BCLAKE_HOME", str(home))
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster"))
    simulate(home, scale="tiny", seed=7, progress=False)
    return home


def test_ingest_loads_only_the_chosen_tables(fresh_tiny: Path) -> None:
    runner = CliRunner()
    unknown = runner.invoke(app, ["ingest", "--table", "dms.shops"])
    assert unknown.exit_code == 2 and "no contract for dms.shops" in unknown.output
    result = runner.invoke(app, ["--quiet", "ingest", "--table", "dms.stores"])
    assert result.exit_code == 0, result.output
    assert "dms.stores" in result.output, result.output  # the lake tables' summary
    settings = Settings.from_env(fresh_tiny)
    ledger = read_ledger(settings)
    assert set(zip(ledger["system"], ledger["table"], strict=True)) == {("dms", "stores")}
    landed = sum(1 for p in (fresh_tiny / "landing" / "dms" / "stores").iterdir() if p.is_file())
    assert ledger.height == landed, "every landing file of the table is in the ledger"
    assert (ledger["rows_in"] == ledger["rows_loaded"] + ledger["rows_quarantined"]).all()
    lake = pl.read_parquet(settings.lake / "dms" / "stores" / "**" / "*.parquet")
    assert lake.height == int(ledger["rows_loaded"].sum()) > 0
    # the lake stage only: no other table, no warehouse, nothing published or exported
    assert not (settings.lake / "cdp" / "consumers").exists()
    assert not settings.build_db.exists() and not settings.published_db.exists()
    assert not settings.exports.exists()
    # a second run finds nothing new
    again = runner.invoke(app, ["--quiet", "ingest", "--table", "dms.stores"])
    assert again.exit_code == 0, again.output
    assert read_ledger(settings).height == ledger.height
