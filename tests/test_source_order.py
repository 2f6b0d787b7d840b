"""Rows are resolved in the source's own order: a later export corrects an earlier one even
when the earlier file is re-sent or backfilled afterwards, and every conflict is reported."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import polars as pl
import pytest
from dbt_run import copy_home, dbt

from bclake.core.contracts import load_contracts
from bclake.ingest.loader import ingest_table


def _contract(system: str, table: str):
    return load_contracts()[f"{system}.{table}"]


def _first_record(folder: Path) -> dict:
    path = sorted(folder.glob("*.ndjson"))[0]
    return json.loads(path.read_text(encoding="utf-8").splitlines()[0])


def _land(folder: Path, name: str, record: dict) -> None:
    (folder / name).write_text(json.dumps(record, ensure_ascii=False) + "\n", encoding="utf-8")


def _build(settings, tmp_path: Path, *args: str) -> None:
    result = dbt(settings, tmp_path, "build", *args)
    assert result.returncode == 0, result.stdout[-3000:]


def _query(settings, sql: str) -> pl.DataFrame:
    with duckdb.connect(str(settings.build_db), read_only=True) as con:
        return con.sql(sql).pl()


@pytest.fixture
def home(tiny_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    settings = copy_home(tiny_home, tmp_path / "home")
    monkeypatch.setenv("BCLAKE_HOME", str(settings.home))
    return settings


def test_an_older_export_sent_later_does_not_undo_a_correction(home, tmp_path: Path) -> None:
    folder = home.landing / "dms" / "stores"
    record = _first_record(folder)
    store = record["storeCode"]
    contract = _contract("dms", "stores")
    _land(folder, "stores_2030-02-01.ndjson", {**record, "storeName": "更正店名 corrected"})
    ingest_table(contract, home)
    # the January export arrives after the February correction (re-sent, backfilled)
    _land(folder, "stores_2030-01-01.ndjson", {**record, "storeName": "旧店名 stale"})
    ingest_table(contract, home)

    _build(home, tmp_path, "--select", "stg_dms__stores", "fct_key_conflicts")
    kept = _query(
        home, f"select store_name from staging.stg_dms__stores where store_code = '{store}'"
    )
    assert kept["store_name"].to_list() == ["更正店名 corrected"]

    conflicts = _query(
        home,
        "select key_value, column_name, kept_value, other_value, kept_file, other_file, "
        "decided_by from marts.fct_key_conflicts where source_table = 'dms.stores' "
        "order by other_file",
    )
    assert conflicts.filter(pl.col("key_value") != store).is_empty()
    assert set(conflicts["column_name"]) == {"store_name"}
    assert conflicts["kept_value"].unique().to_list() == ["更正店名 corrected"]
    assert conflicts["kept_file"].unique().to_list() == ["dms/stores/stores_2030-02-01.ndjson"]
    # both losing copies, with their values: the stale January export and the undated
    # opening master; a dated export outranks the undated one
    assert conflicts.select("other_file", "other_value", "decided_by").rows() == [
        ("dms/stores/stores.ndjson", record["storeName"], "export_date"),
        ("dms/stores/stores_2030-01-01.ndjson", "旧店名 stale", "export_date"),
    ]


def test_incremental_facts_keep_the_correction_like_a_full_refresh(home, tmp_path: Path) -> None:
    folder = home.landing / "dms" / "sell_through"
    record = _first_record(folder)
    line = record["lines"][0]
    key = (record["reportId"], line["skuCode"])
    contract = _contract("dms", "sell_through")

    def report(qty: int) -> dict:
        return {**record, "lines": [{**line, "qty": qty}]}

    _land(folder, "sell_through_2030-02-01.ndjson", report(97))
    ingest_table(contract, home)
    _build(home, tmp_path, "--select", "stg_dms__sell_through", "fct_sell_through")
    _land(folder, "sell_through_2030-01-01.ndjson", report(11))
    ingest_table(contract, home)
    _build(
        home, tmp_path, "--select", "stg_dms__sell_through", "fct_sell_through"
    )  # incremental: only the new file

    sql = (
        "select qty, _source_file from marts.fct_sell_through "
        f"where report_id = '{key[0]}' and sku_code = '{key[1]}'"
    )
    incremental = _query(home, sql)
    assert incremental.rows() == [(97, "dms/sell_through/sell_through_2030-02-01.ndjson")]
    everything = "select * exclude (_ingested_at) from marts.fct_sell_through order by all"
    before = _query(home, everything)
    _build(home, tmp_path, "--select", "fct_sell_through", "--full-refresh")
    assert _query(home, sql).rows() == incremental.rows()
    assert _query(home, everything).equals(before)
