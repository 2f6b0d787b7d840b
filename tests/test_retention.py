"""Retention: consumer-level detail older than the period leaves the lake and the warehouse,
while aggregates and KPIs keep their history.

The tiny world spans about 18 months. Its session run used the default (36 months) and cut
nothing; a copy is then run again with `BCLAKE_RETENTION_MONTHS=12`, which cuts its first
half year: old scans lose their consumer, old coupons, campaign members, interactions and
referrals go, and so do consumers who did nothing in the last 12 months.
"""

from __future__ import annotations

import os
import shutil
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import duckdb
import polars as pl
import pytest

from bclake.core.contracts import load_contracts
from bclake.core.settings import DEFAULT_RETENTION_MONTHS, Settings, _retention_months
from bclake.exports.versions import VERSIONS_DIR, delete_sets_before
from bclake.ingest.erasure import _parts, read_receipts
from bclake.ingest.ledger import read_ledger
from bclake.ingest.paths import quarantine_dir, table_dir
from bclake.ingest.retention import (
    PROFILES,
    RECEIPT_PREFIX,
    _personal,
    _subject_tables,
    cutoff,
    expire,
    months_back,
    newest_event_date,
)
from bclake.orchestration.retention import carry_out

MONTHS = 12
KPI_KEY = ["kpi", "grain", "period_start", "scope_type", "scope_id"]


def _published(settings: Settings, sql: str) -> pl.DataFrame:
    with duckdb.connect(str(settings.published_db), read_only=True) as con:
        return con.sql(sql).pl()


def _kpis(settings: Settings, table: str, before: date) -> pl.DataFrame:
    return _published(
        settings,
        f"select * from marts.{table} where period_start < '{before}' order by all",
    )


def _lake_state(settings: Settings) -> dict[str, tuple[int, int]]:
    """Every Parquet file under the lake: path -> (size, mtime in ns)."""
    return {
        str(p.relative_to(settings.lake)): (p.stat().st_size, p.stat().st_mtime_ns)
        for p in settings.lake.rglob("*.parquet")
    }


@pytest.fixture(scope="module")
def retained(tiny_home: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A copy of the tiny root run again with a 12-month period."""
    from dagster import DagsterInstance

    from bclake.orchestration.run import run_pipeline

    home = tmp_path_factory.mktemp("retention") / "home"
    shutil.copytree(tiny_home, home, symlinks=True)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("BCLAKE_HOME", str(home))
        mp.setenv("BCLAKE_RETENTION_MONTHS", str(MONTHS))
        settings = Settings.from_env(home)
        contracts = load_contracts()
        cut = cutoff(settings, contracts.values())
        ledger_before = read_ledger(settings)
        (home / "dagster").mkdir(exist_ok=True)
        instance = DagsterInstance.local_temp(str(home / "dagster"))
        result = run_pipeline(str(home), instance)
        assert result.success, "the retention run failed"
        again = carry_out(settings, contracts.values())
    materialised = [
        e.materialization
        for e in result.get_asset_materialization_events()
        if e.asset_key.path == ["lake", "retention"]
    ]
    return {
        "home": home,
        "settings": settings,
        "contracts": contracts,
        "cutoff": cut,
        "ledger_before": ledger_before,
        "materialised": materialised,
        "again": again,
    }


def test_months_back_gives_the_first_day_of_an_earlier_month() -> None:
    assert months_back(date(2026, 11, 30), 36) == date(2023, 11, 1)
    assert months_back(date(2024, 1, 15), 1) == date(2023, 12, 1)
    assert months_back(date(2024, 3, 1), 0) == date(2024, 3, 1)
    assert months_back(date(2024, 12, 31), 12) == date(2023, 12, 1)
    with pytest.raises(ValueError):
        months_back(date(2024, 3, 1), -1)


def test_the_period_setting() -> None:
    assert _retention_months(None) == _retention_months("") == DEFAULT_RETENTION_MONTHS == 36
    assert _retention_months("off") == _retention_months("0") == 0
    assert _retention_months(" 24 ") == 24
    for bad in ("-3", "1.5", "forever"):
        with pytest.raises(ValueError, match="BCLAKE_RETENTION_MONTHS"):
            _retention_months(bad)


def test_the_cutoff_counts_back_from_the_newest_event_date(tiny_settings: Settings) -> None:
    contracts = load_contracts().values()
    newest = newest_event_date(tiny_settings, contracts)
    last_scan = _published(tiny_settings, "select max(scan_date) as d from marts.fct_product_scans")
    assert newest is not None and newest >= last_scan["d"][0]
    short = Settings(home=tiny_settings.home, retention_months=MONTHS)
    assert cutoff(short, contracts) == months_back(newest, MONTHS)
    off = Settings(home=tiny_settings.home, retention_months=0)
    assert cutoff(off, contracts) is None


def test_the_default_period_keeps_every_event_on_tiny(tiny_settings: Settings) -> None:
    """The session's run used 36 months: the tiny world's events are younger, none was
    touched; only accounts registered before the cutoff and never active since went."""
    assert tiny_settings.retention_months == 36
    first = _published(tiny_settings, "select min(scan_date) as d from marts.fct_product_scans")
    cut = cutoff(tiny_settings, load_contracts().values())
    assert cut is not None and cut < first["d"][0]
    receipts = read_receipts(tiny_settings).filter(
        pl.col("request_id").str.starts_with(RECEIPT_PREFIX)
    )
    assert set(receipts["place"]) <= {"lake/cdp/consumers: dropped (dormant)"}
    ledger = read_ledger(tiny_settings)
    assert ledger["rows_erased"].fill_null(0).sum() == receipts["rows"].sum()


def test_no_personal_value_before_the_cutoff_in_the_lake(retained: dict) -> None:
    settings, cut = retained["settings"], retained["cutoff"]
    assert cut is not None and cut > date(2000, 1, 1)
    for contract in _subject_tables(retained["contracts"].values()):
        if contract.key in PROFILES:
            continue
        parts = _parts(table_dir(settings.lake, contract))
        frame = pl.scan_parquet(parts, missing_columns="insert")
        columns = [c for c in _personal(contract) if c in frame.collect_schema()]
        held = (
            frame.filter(pl.col(contract.event_date) < cut)
            .filter(pl.any_horizontal([pl.col(c).is_not_null() for c in columns]))
            .select(pl.len())
            .collect()
            .item()
        )
        assert held == 0, contract.key
    # the quarantine keeps no file whose rows are all older than the cutoff
    for contract in _subject_tables(retained["contracts"].values()):
        last = dict(
            read_ledger(settings, contract)
            .filter(pl.col("sha256").is_not_null())
            .select(pl.col("sha256").str.slice(0, 16), "last_event_date")
            .iter_rows()
        )
        for part in _parts(quarantine_dir(settings.lake, contract)):
            newest = last.get(part.stem.removeprefix("part-"))
            assert newest is None or date.fromisoformat(newest) >= cut, part


def test_old_scans_stay_anonymous_and_old_coupons_go(retained: dict) -> None:
    """Counts of scans hold (rows kept), coupons before the cutoff are gone (dropped)."""
    settings, cut = retained["settings"], retained["cutoff"]
    scans = _published(
        settings,
        f"select count(*) as n, count(consumer_id) as named from marts.fct_product_scans "
        f"where scan_date < '{cut}'",
    ).row(0)
    assert scans[0] > 0 and scans[1] == 0
    store = _published(
        settings,
        f"select count(consumer_id) as named from marts.fct_store_scans where scan_date < '{cut}'",
    )
    assert store["named"][0] == 0
    coupons = _published(
        settings, f"select count(*) as n from marts.fct_coupons where issued_date < '{cut}'"
    )
    assert coupons["n"][0] == 0
    members = _published(
        settings,
        f"select count(*) as n from marts.fct_campaign_responses where assigned_date < '{cut}'",
    )
    assert members["n"][0] == 0


def test_scan_counts_before_the_cutoff_are_unchanged(
    tiny_settings: Settings, retained: dict
) -> None:
    cut = retained["cutoff"]
    sql = (
        "select scan_date, count(*) as n from marts.fct_product_scans "
        f"where scan_date < '{cut}' group by 1 order by 1"
    )
    assert _published(retained["settings"], sql).equals(_published(tiny_settings, sql))


def test_dormant_consumers_are_gone(tiny_settings: Settings, retained: dict) -> None:
    settings, cut = retained["settings"], retained["cutoff"]
    # every consumer registered before the cutoff has a detail row on or after it
    consumers = pl.read_parquet(_parts(settings.lake / "cdp" / "consumers"))
    old = set(consumers.filter(pl.col("register_date") < cut)["consumer_id"])
    named: set[str] = set()
    for contract in _subject_tables(retained["contracts"].values()):
        if contract.key == "cdp.consumers":
            continue
        frame = pl.read_parquet(_parts(table_dir(settings.lake, contract)))
        recent = frame.filter(pl.col(contract.event_date) >= cut)
        for col in contract.all_columns:
            if col.subject and not col.pii:
                named |= set(recent[col.name].drop_nulls())
    assert old and old <= named
    before = _published(tiny_settings, "select count(*) as n from marts.dim_consumer")["n"][0]
    after = _published(settings, "select count(*) as n from marts.dim_consumer")["n"][0]
    dormant = retained["materialised"][0].metadata["consumers_dormant"].value
    assert dormant > 0 and after == before - dormant


def test_the_ledger_balances_per_file(retained: dict) -> None:
    ledger = read_ledger(retained["settings"]).with_columns(pl.col("rows_erased").fill_null(0))
    balance = pl.col("rows_loaded") + pl.col("rows_quarantined") + pl.col("rows_erased")
    assert ledger.filter(pl.col("rows_in") != balance).is_empty()
    receipts = read_receipts(retained["settings"]).filter(
        pl.col("request_id").str.starts_with(RECEIPT_PREFIX)
    )
    dropped = receipts.filter(
        pl.col("place").str.contains(": dropped")
        & ~pl.col("place").str.starts_with("lake/_orphans")
    )["rows"].sum()
    assert dropped > 0 and ledger["rows_erased"].sum() == dropped
    assert set(receipts["place"]) >= {
        "lake/code/product_scans: anonymised",
        "lake/cdp/coupons: dropped",
        "lake/cdp/consumers: dropped (dormant)",
    }


def test_kpis_before_the_cutoff_keep_their_values(tiny_settings: Settings, retained: dict) -> None:
    cut = retained["cutoff"]
    for table in ("kpi_monthly", "kpi_values"):
        before = _kpis(tiny_settings, table, cut)
        after = _kpis(retained["settings"], table, cut)
        assert before.height > 0
        assert after.equals(before), table
    # the detail they were built from is gone: a recomputation could not give them back
    assert (
        _kpis(tiny_settings, "kpi_monthly", cut).filter(pl.col("kpi") == "repurchase_rate").height
        > 0
    )


def test_the_step_reports_and_a_second_run_changes_nothing(retained: dict) -> None:
    [event] = retained["materialised"]
    meta = {k: v.value for k, v in event.metadata.items()}
    assert meta["cutoff"] == retained["cutoff"].isoformat()
    assert meta["rows_anonymised"] > 0 and meta["rows_dropped"] > 0
    again = retained["again"]
    lake = again.lake
    assert (lake.anonymised, lake.dropped, lake.dormant, again.export_sets) == (0, 0, 0, 0)
    assert again.receipts.is_empty()


def test_a_second_run_leaves_every_file_alone(retained: dict) -> None:
    settings = retained["settings"]
    state = _lake_state(settings)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("BCLAKE_RETENTION_MONTHS", str(MONTHS))
        expiry = expire(Settings.from_env(retained["home"]), retained["contracts"].values())
    assert expiry.receipts.is_empty()
    assert _lake_state(settings) == state


def test_old_export_sets_are_deleted(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path, retention_months=MONTHS)
    versions = tmp_path / VERSIONS_DIR
    today = date(2026, 11, 30)
    old = today - timedelta(days=500)
    names = {
        "old": f"{old:%Y%m%d}T010203.000000-aaaaaa",
        "new": f"{today:%Y%m%d}T010203.000000-bbbbbb",
    }
    for name in names.values():
        (versions / name / "company").mkdir(parents=True)
    legacy = versions / "00000000T000000.000000-before-sets"
    legacy.mkdir()
    stamp = datetime(2020, 1, 1, tzinfo=UTC).timestamp()
    os.utime(legacy, (stamp, stamp))
    os.symlink(Path(VERSIONS_DIR) / names["old"], tmp_path / "exports")
    assert delete_sets_before(settings.exports, months_back(today, MONTHS)) == 2
    assert sorted(p.name for p in versions.iterdir()) == [names["new"]]
    assert not (tmp_path / "exports").is_symlink(), "the link to a deleted set goes too"
