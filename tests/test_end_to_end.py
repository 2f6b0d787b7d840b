"""The whole flow on the tiny world: landing, lake, warehouse, forecast, publish, files."""

from __future__ import annotations

import hashlib
from pathlib import Path

import duckdb
import openpyxl
import polars as pl
import pytest

from bclake.contracts import load_contracts
from bclake.settings import Settings
from ingest.load import ingest_table, read_ledger


def test_every_landing_row_is_loaded_or_quarantined(tiny_settings: Settings) -> None:
    ledger = read_ledger(tiny_settings)
    assert (ledger["rows_in"] == ledger["rows_loaded"] + ledger["rows_quarantined"]).all()
    for contract in load_contracts().values():
        lake_rows = (
            pl.scan_parquet(tiny_settings.lake / contract.system / contract.table / "**/*.parquet")
            .select(pl.len())
            .collect()
            .item()
        )
        entries = ledger.filter(
            pl.col("system") == contract.system, pl.col("table") == contract.table
        )
        assert lake_rows == entries["rows_loaded"].sum(), contract.key


def test_planted_faults_end_where_the_manifest_says(tiny_settings: Settings) -> None:
    manifest = pl.read_parquet(tiny_settings.truth / "fault_manifest.parquet")
    ledger = read_ledger(tiny_settings)
    quarantine = pl.read_parquet(
        tiny_settings.lake / "_quarantine/**/*.parquet", hive_partitioning=False
    )
    caught = set(zip(quarantine["_source_file"], quarantine["_source_row"], strict=True))
    for fault in manifest.iter_rows(named=True):
        entry = ledger.filter(pl.col("file") == fault["file"])
        if fault["expected"] == "quarantined":
            assert (fault["file"], fault["row"]) in caught, fault
        elif fault["expected"] == "rejected":
            assert entry["status"].to_list() == ["rejected"], fault
        elif fault["expected"] == "skipped":  # same bytes twice: ingested once
            digest = hashlib.sha256((tiny_settings.landing / fault["file"]).read_bytes())
            assert (ledger["sha256"] == digest.hexdigest()).sum() == 1, fault
        else:
            assert entry["status"][0] in ("loaded", "partial"), fault
            assert (fault["file"], fault["row"]) not in caught, fault


def test_a_clean_world_loads_every_row(tmp_path: Path) -> None:
    from simulator.run import simulate

    written = simulate(tmp_path, "tiny", seed=2, progress=False, dirt=0)
    settings = Settings.from_env(tmp_path)
    for key, contract in load_contracts().items():
        result = ingest_table(contract, settings)
        assert result.total("rows_quarantined") == 0, key
        assert result.total("rows_loaded") == written[key], key


def test_lake_rows_carry_lineage(tiny_settings: Settings) -> None:
    scans = pl.read_parquet(tiny_settings.lake / "code/product_scans/**/*.parquet")
    assert {"_source_file", "_source_row", "_file_sha256", "_ingested_at"} <= set(scans.columns)
    assert scans["_source_file"].str.starts_with("code/product_scans/").all()
    assert scans["_source_row"].min() >= 2  # CSV row 1 is the header


def test_reingesting_adds_nothing(tiny_settings: Settings) -> None:
    for contract in load_contracts().values():
        result = ingest_table(contract, tiny_settings)
        assert result.total("rows_loaded") == 0
        assert all(f.status == "skipped" for f in result.files)


def test_forecast_covers_every_region_and_sku_for_13_weeks(tiny_settings: Settings) -> None:
    con = duckdb.connect(str(tiny_settings.published_db), read_only=True)
    forecast = con.sql("select * from ml.forecast_region_sku_week").pl()
    series = con.execute(
        "select count(distinct region || sku_code) from marts.fct_sales_region_sku_week"
    ).fetchone()[0]
    con.close()
    per_series = forecast.group_by("region", "sku_code").agg(
        pl.len().alias("weeks"), pl.col("week_start").n_unique().alias("distinct_weeks")
    )
    assert per_series.height == series
    assert (per_series["weeks"] == 13).all() and (per_series["distinct_weeks"] == 13).all()
    for col in ("p10", "p50", "p90"):
        assert forecast[col].is_nan().sum() == 0 and forecast[col].null_count() == 0
        assert (forecast[col] >= 0).all()
    assert (forecast["p10"] <= forecast["p50"]).all() and (forecast["p50"] <= forecast["p90"]).all()
    assert forecast["week_start"].dt.weekday().unique().to_list() == [1]  # Mondays


def test_backtest_scores_model_and_baselines(tiny_settings: Settings) -> None:
    con = duckdb.connect(str(tiny_settings.published_db), read_only=True)
    scores = con.sql("select * from ml.forecast_scores").pl()
    con.close()
    assert set(scores["method"]) == {"lightgbm", "seasonal_naive", "moving_average"}
    assert scores["wape"].is_finite().all()


def test_planner_files_agree(tiny_settings: Settings) -> None:
    csv_path = tiny_settings.exports / "forecast_region_sku_week.csv"
    xlsx_path = tiny_settings.exports / "forecast_region_sku_week.xlsx"
    csv = pl.read_csv(csv_path)
    sheet = openpyxl.load_workbook(xlsx_path, read_only=True)["forecast"]
    rows = list(sheet.iter_rows(values_only=True))
    assert len(rows) - 1 == csv.height > 0
    assert rows[0][0].startswith("region")
    assert csv_path.read_bytes().startswith(b"\xef\xbb\xbf")  # Excel-friendly UTF-8


def test_published_warehouse_opens_read_only(tiny_settings: Settings) -> None:
    con = duckdb.connect(str(tiny_settings.published_db), read_only=True)
    schemas = {
        r[0]
        for r in con.execute(
            "select distinct table_schema from information_schema.tables"
        ).fetchall()
    }
    with pytest.raises(duckdb.Error):
        con.execute("create table marts.should_fail as select 1")
    con.close()
    assert {"marts", "ml"} <= schemas
    assert "staging" not in schemas  # views over the lake are not published


def test_truth_is_not_read_by_the_pipeline() -> None:
    root = Path(__file__).resolve().parents[1]
    for package in ("ingest", "orchestration", "ml", "exports", "dashboards", "dbt_project"):
        for path in (root / package).rglob("*"):
            if path.suffix in {".py", ".sql", ".yml"} and "target" not in path.parts:
                text = path.read_text(encoding="utf-8")
                assert ".truth" not in text and "truth/" not in text, path


def test_no_clear_phone_number_leaves_landing(tiny_settings: Settings) -> None:
    from ingest.pii import PHONE, PHONE_PATTERN

    landing_phones = pl.read_ndjson(
        tiny_settings.landing / "cdp/consumers/consumers_opening.ndjson"
    )
    assert landing_phones["phone"].str.contains(PHONE_PATTERN).any()  # the source has them
    for root in (tiny_settings.lake, tiny_settings.warehouse_dir, tiny_settings.exports):
        for path in root.rglob("*"):
            if path.suffix == ".parquet":
                frame = pl.read_parquet(path)
                for col, dtype in frame.schema.items():
                    if dtype == pl.String and not col.endswith("sha256"):  # file digests
                        assert not frame[col].str.contains(PHONE_PATTERN).any(), (path, col)
            elif path.suffix == ".duckdb":
                con = duckdb.connect(str(path), read_only=True)
                for schema, table in con.execute(
                    "select table_schema, table_name from information_schema.tables"
                ).fetchall():
                    cols = [
                        r[0]
                        for r in con.execute(
                            "select column_name from information_schema.columns"
                            " where table_schema = ? and table_name = ?"
                            " and data_type = 'VARCHAR'",
                            [schema, table],
                        ).fetchall()
                    ]
                    for col in (c for c in cols if not c.endswith("sha256")):
                        hit = con.execute(
                            f"select count(*) from {schema}.{table}"
                            f' where regexp_matches("{col}", ?)',
                            [PHONE_PATTERN],
                        ).fetchone()[0]
                        assert hit == 0, (path, schema, table, col)
                con.close()
            elif path.suffix in (".csv", ".json"):
                assert not PHONE.search(path.read_text(encoding="utf-8-sig")), path
