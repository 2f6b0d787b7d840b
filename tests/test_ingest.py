"""Ingest rules that real exports depend on: PII key policy, extra columns kept, automation."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg
import polars as pl
import pytest

from bclake.core.contracts import load_contracts
from bclake.core.settings import Settings
from bclake.ingest.freshness import source_freshness
from bclake.ingest.ledger import read_ledger
from bclake.ingest.loader import ingest_table

CONSUMER = {
    "consumerId": "C000000001",
    "phone": "13812345678",
    "profile": {"gender": "F", "birthYear": 1990, "city": "杭州"},
    "registerChannel": "扫码",
    "registerDate": "2025-01-02",
    "consents": {"marketing": True, "profile": True},
    "wechat": "13900001111",
}


def _real_landing(home: Path) -> None:
    folder = home / "landing/cdp/consumers"
    folder.mkdir(parents=True)
    (folder / "export.ndjson").write_text(json.dumps(CONSUMER, ensure_ascii=False) + "\n")


def test_real_exports_need_a_pii_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("BCLAKE_PII_KEY", raising=False)
    _real_landing(tmp_path)
    contract = load_contracts()["cdp.consumers"]
    with pytest.raises(RuntimeError, match="BCLAKE_PII_KEY"):
        ingest_table(contract, Settings.from_env(tmp_path))
    monkeypatch.setenv("BCLAKE_PII_KEY", "a-secret-key-for-tests")
    result = ingest_table(contract, Settings.from_env(tmp_path))
    assert result.total("rows_loaded") == 1
    lake = pl.read_parquet(tmp_path / "lake/cdp/consumers/**/*.parquet", hive_partitioning=False)
    assert lake["phone"][0] != CONSUMER["phone"] and len(lake["phone"][0]) == 52
    # the unknown `wechat` field is kept, with the phone-shaped value masked
    extra = json.loads(lake["_extra"][0])
    assert extra == {"wechat": "[phone]"}


def test_added_columns_are_kept_not_dropped(tiny_settings: Settings) -> None:
    manifest = pl.read_parquet(tiny_settings.truth / "fault_manifest.parquet")
    ledger = read_ledger(tiny_settings)
    faults = manifest.filter(pl.col("fault") == "added_column")
    assert faults.height, "the tiny world injects added columns"
    for fault in faults.iter_rows(named=True):
        system, table = fault["file"].split("/")[:2]
        lake = pl.read_parquet(
            tiny_settings.lake / system / table / "**/*.parquet", hive_partitioning=False
        )
        rows = lake.filter(pl.col("_source_file") == fault["file"])
        loaded = ledger.filter(pl.col("file") == fault["file"])["rows_loaded"].sum()
        # every row the file loaded is in the lake, each with the added column kept
        assert loaded and rows.height == loaded, fault
        assert rows["_extra"].is_not_null().all(), fault
        assert fault["detail"] in json.loads(rows["_extra"][0])


def test_landing_sensor_fires_only_on_new_files(tmp_path: Path) -> None:
    from bclake.orchestration.partitions import lake_partitions
    from bclake.orchestration.resources import LakehouseResource
    from bclake.orchestration.sensors import landing_sensor

    sensor = landing_sensor(lake_partitions("2023-01-01"))
    resources = {"lakehouse": LakehouseResource(home=str(tmp_path))}
    _real_landing(tmp_path)
    first = sensor(dg.build_sensor_context(resources=resources))
    assert isinstance(first, dg.SensorResult) and len(first.run_requests) == 1
    again = sensor(dg.build_sensor_context(cursor=first.cursor, resources=resources))
    assert isinstance(again, dg.SkipReason)
    (tmp_path / "landing/cdp/consumers/more.ndjson").write_text("{}\n")
    later = sensor(dg.build_sensor_context(cursor=first.cursor, resources=resources))
    assert isinstance(later, dg.SensorResult) and later.cursor != first.cursor


def test_schedule_and_sensor_are_defined() -> None:
    from bclake.orchestration.definitions import build_definitions

    defs = build_definitions()
    assert defs.resolve_schedule_def("daily_pipeline").cron_schedule == "0 6 * * *"
    assert defs.resolve_sensor_def("landing_sensor").job_name == "bclake_pipeline"


def test_bronze_suite_passes_on_the_lake_and_catches_a_bad_part(tiny_settings: Settings) -> None:
    from bclake.ingest.expectations import rows_loaded_since, validate_bronze

    contract = load_contracts()["dms.stores"]
    lake = rows_loaded_since(tiny_settings.lake / "dms/stores", datetime(2000, 1, 1, tzinfo=UTC))
    assert lake.height and validate_bronze(lake, contract).success
    broken = lake.with_columns(pl.lit("bad id").alias("store_code"))
    result = validate_bronze(broken, contract)
    assert not result.success
    assert {"expect_column_values_to_match_regex"} <= {f["expectation"] for f in result.failures}


def test_the_bronze_check_judges_what_the_run_loaded_not_an_old_part(tmp_path: Path) -> None:
    from bclake.ingest.expectations import rows_loaded_since, validate_bronze

    contract = load_contracts()["dms.stores"]
    table = tmp_path / "lake/dms/stores"
    table.mkdir(parents=True)
    good = {
        "store_code": ["S000001"],
        "_source_file": ["dms/stores/stores.ndjson"],
        "_source_row": [1],
        "_file_sha256": ["a" * 64],
    }
    last_week = datetime.now(UTC) - timedelta(days=7)
    old_bad = pl.DataFrame({**good, "store_code": ["bad id"], "_ingested_at": [last_week]})
    old_bad.write_parquet(table / "part-old.parquet")
    os.utime(table / "part-old.parquet", (last_week.timestamp(), last_week.timestamp()))
    run_start = datetime.now(UTC)
    # a run that loaded nothing new is not stopped by last week's bad part
    assert rows_loaded_since(table, run_start).is_empty()
    # a run that loads a good part passes; one that loads a bad part fails, and only its
    # own rows are judged
    pl.DataFrame({**good, "_ingested_at": [datetime.now(UTC)]}).write_parquet(table / "p1.parquet")
    new = rows_loaded_since(table, run_start)
    assert new["store_code"].to_list() == ["S000001"]
    assert validate_bronze(new, contract).success
    bad = {**good, "store_code": ["also bad"], "_ingested_at": [datetime.now(UTC)]}
    pl.DataFrame(bad).write_parquet(table / "p2.parquet")
    assert sorted(rows_loaded_since(table, run_start)["store_code"]) == ["S000001", "also bad"]
    assert not validate_bronze(rows_loaded_since(table, run_start), contract).success


def _lake_rows(home: Path) -> dict[str, pl.DataFrame]:
    """Every lake table without the ingest timestamp, in a stable order."""
    out = {}
    for contract in load_contracts().values():
        folder = home / "lake" / contract.system / contract.table
        if any(folder.rglob("*.parquet")):
            frame = pl.read_parquet(folder / "**/*.parquet", hive_partitioning=False)
            frame = frame.drop("_ingested_at")
            out[contract.key] = frame.sort(frame.columns)
    return out


def test_killed_ingest_recovers_to_the_clean_result(tmp_path: Path) -> None:
    import shutil
    import signal
    import subprocess
    import sys
    import time

    from bclake.simulator.run import simulate

    clean, killed = tmp_path / "clean", tmp_path / "killed"
    simulate(clean, "tiny", seed=11, progress=False)
    shutil.copytree(clean / "landing", killed / "landing")
    shutil.copytree(clean / ".bclake", killed / ".bclake")  # the simulator's key: a demo
    for contract in load_contracts().values():
        ingest_table(contract, Settings.from_env(clean))

    script = (
        "import sys\nfrom bclake.core.contracts import load_contracts\n"
        "from bclake.core.settings import Settings\nfrom bclake.ingest.loader import ingest_table\n"
        "s = Settings.from_env(sys.argv[1])\n"
        "for c in load_contracts().values():\n    ingest_table(c, s)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", script, str(killed)])
    target = killed / "lake/dms/sell_through"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if target.exists() and any(target.rglob("*.parquet")):
            break
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "ingest finished before it could be killed"
    for contract in load_contracts().values():  # the next run recovers
        ingest_table(contract, Settings.from_env(killed))
    assert not list((killed / "lake").rglob("*.tmp"))
    clean_rows, killed_rows = _lake_rows(clean), _lake_rows(killed)
    assert clean_rows.keys() == killed_rows.keys()
    for key, frame in clean_rows.items():
        assert frame.equals(killed_rows[key]), key


def test_parts_no_ledger_row_accounts_for_are_set_aside(tmp_path: Path) -> None:
    """A run killed after writing a file's parts and before its ledger row, whose file was
    then removed from landing, leaves rows no ledger accounts for: the next run sets them
    aside and reports them, so the lake again equals what the ledger says was loaded."""
    import shutil

    from bclake.simulator.run import simulate

    simulate(tmp_path, "tiny", seed=11, progress=False)
    settings = Settings.from_env(tmp_path)
    contract = load_contracts()["dms.sell_through"]
    assert ingest_table(contract, settings).orphans == []
    lake = tmp_path / "lake/dms/sell_through"
    some_part = sorted(lake.rglob("part-*.parquet"))[0]
    orphan = some_part.with_name("part-0123456789abcdef.parquet")
    shutil.copyfile(some_part, orphan)
    quarantined = tmp_path / "lake/_quarantine/dms/sell_through/part-fedcba9876543210.parquet"
    quarantined.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(some_part, quarantined)

    result = ingest_table(contract, settings)
    assert sorted(result.orphans) == [
        "_quarantine/dms/sell_through/part-fedcba9876543210.parquet",
        orphan.relative_to(tmp_path / "lake").as_posix(),
    ]
    assert not orphan.exists() and not quarantined.exists()
    assert (tmp_path / "lake/_orphans" / orphan.relative_to(tmp_path / "lake")).exists()
    lake_rows = pl.read_parquet(lake / "**/*.parquet", hive_partitioning=False).height
    assert lake_rows == read_ledger(settings, contract)["rows_loaded"].sum()
    assert ingest_table(contract, settings).orphans == []  # nothing left to set aside


@pytest.fixture(scope="module")
def small_world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny world's landing, not yet ingested (each test copies it)."""
    from bclake.simulator.run import simulate

    root = tmp_path_factory.mktemp("small_world")
    simulate(root, "tiny", seed=13, progress=False)
    return root


def _copy_landing(world: Path, home: Path) -> Settings:
    import shutil

    shutil.copytree(world / "landing", home / "landing")
    shutil.copytree(world / ".bclake", home / ".bclake")  # the simulator's key: a demo
    return Settings.from_env(home)


def test_runs_mark_every_day_they_load_and_a_backfill_rebuilds_lost_days(
    small_world: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from bclake.orchestration.assets.lake import lake_assets, lake_key
    from bclake.orchestration.partitions import lake_partitions, latest_partition
    from bclake.orchestration.resources import LakehouseResource
    from bclake.orchestration.run import backfill_tags

    settings = _copy_landing(small_world, tmp_path)
    monkeypatch.setenv("BCLAKE_HOME", str(settings.home))
    contract = load_contracts()["dms.sell_through"]
    partitions = lake_partitions(settings.partition_start)
    key = lake_key(contract.system, contract.table)
    asset = next(a for a in lake_assets(partitions) if a.key == key)
    resources = {"lakehouse": LakehouseResource(home=str(settings.home))}
    lake = settings.lake / "dms/sell_through"
    with dg.DagsterInstance.ephemeral() as instance:
        run = dg.materialize(
            [asset],
            partition_key=latest_partition(partitions),
            instance=instance,
            resources=resources,
        )
        assert run.success
        days = {p.name.split("=")[1] for p in lake.glob("biz_date=*")}
        marked = instance.get_materialized_partitions(asset.key)
        assert days and marked == days | {latest_partition(partitions)}
        before = _lake_rows(settings.home)[contract.key]

        lost = sorted(days)[3:5]
        for day in lost:  # a day's partition is deleted by mistake
            for part in (lake / f"biz_date={day}").glob("*"):
                part.unlink()
        backfill = dg.materialize(
            [asset],
            instance=instance,
            resources=resources,
            tags=backfill_tags(partitions, *lost),
        )
        assert backfill.success
    assert _lake_rows(settings.home)[contract.key].equals(before)
    ledger = read_ledger(settings, contract)
    assert ledger.height == ledger["sha256"].n_unique(), "a backfill adds no ledger rows"
    assert (ledger["rows_in"] == ledger["rows_loaded"] + ledger["rows_quarantined"]).all()


def test_backfill_outside_the_partitions_names_the_range() -> None:
    from bclake.orchestration.partitions import lake_partitions
    from bclake.orchestration.run import backfill_tags

    with pytest.raises(ValueError, match="not a lake partition"):
        backfill_tags(lake_partitions("2023-01-01"), "1999-01-01", "1999-01-02")


def test_freshness_follows_the_contract_cadence(small_world: Path, tmp_path: Path) -> None:
    from datetime import timedelta

    settings = _copy_landing(small_world, tmp_path)
    contract = load_contracts()["code.product_scans"]
    empty = source_freshness(contract, settings)
    assert not empty.fresh and "no file has landed" in empty.message
    ingest_table(contract, settings)
    last = read_ledger(settings, contract)["first_seen"].max()
    assert source_freshness(contract, settings, now=last + timedelta(hours=1)).fresh
    stale = source_freshness(contract, settings, now=last + timedelta(hours=37))
    assert not stale.fresh and "check the code export job" in stale.message
    # the newest day in the lake is the last event date the loaded files reached
    newest = read_ledger(settings, contract)["last_event_date"].max()
    assert stale.newest_event_date == newest and newest in stale.message


def test_readers_can_query_the_lake_while_ingest_runs(small_world: Path, tmp_path: Path) -> None:
    """Parts appear by atomic rename, so a reader never sees a half-written file."""
    import subprocess
    import sys

    import duckdb

    settings = _copy_landing(small_world, tmp_path)
    # a first file per table is in the lake before the reader starts
    script = (
        "import sys\nfrom bclake.core.contracts import load_contracts\n"
        "from bclake.core.settings import Settings\nfrom bclake.ingest.loader import ingest_table\n"
        "s = Settings.from_env(sys.argv[1])\n"
        "for c in load_contracts().values():\n    ingest_table(c, s)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", script, str(settings.home)])
    pattern = str(settings.lake / "dms/sell_through/**/*.parquet")
    counts: list[int] = []
    con = duckdb.connect()
    try:
        while proc.poll() is None:
            if any((settings.lake / "dms/sell_through").rglob("*.parquet")):
                counts.append(
                    con.execute(f"select count(*) from read_parquet('{pattern}')").fetchone()[0]
                )
    finally:
        proc.wait()
    assert proc.returncode == 0
    final = con.execute(f"select count(*) from read_parquet('{pattern}')").fetchone()[0]
    assert len(counts) > 3 and counts[0] < final, "the reader never overlapped the ingest"
    assert counts == sorted(counts) and counts[-1] <= final
    assert final == read_ledger(settings, load_contracts()["dms.sell_through"])["rows_loaded"].sum()
