"""The warehouse: layer order, incremental equals full refresh, write-audit-publish for readers."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import duckdb
import polars as pl
import pytest
from dbt_run import copy_home, dbt, dbt_command

from bclake.core.contracts import load_contracts
from bclake.core.settings import DBT_PROJECT_DIR, Settings
from bclake.ingest.loader import ingest_table

BIG_FACTS = ("fct_sell_through", "fct_store_orders", "fct_product_scans")
# dbt layers in build order: a model may read its own layer and earlier ones (and seeds,
# and sources), never a later one. The layer is the model's first folder under models/.
LAYERS = ("staging", "intermediate", "marts")
LAYER_OF_PREFIX = {"stg_": "staging", "int_": "intermediate"}


def _manifest(tmp_path: Path) -> dict:
    """`dbt parse` of the project into its own target folder (no database needed)."""
    dbt = str(Path(sys.executable).with_name("dbt"))
    target = tmp_path / "dbt_target"
    parsed = subprocess.run(
        [
            dbt,
            "parse",
            "--project-dir",
            str(DBT_PROJECT_DIR),
            "--profiles-dir",
            str(DBT_PROJECT_DIR),
            "--target-path",
            str(target),
            "--log-path",
            str(tmp_path / "dbt_logs"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert parsed.returncode == 0, parsed.stdout
    return json.loads((target / "manifest.json").read_text(encoding="utf-8"))


def test_models_read_only_their_own_and_earlier_layers(tmp_path: Path) -> None:
    """staging -> intermediate -> marts: no model depends on a model of a later layer."""
    models = {
        uid: node
        for uid, node in _manifest(tmp_path)["nodes"].items()
        if node["resource_type"] == "model"
    }
    layer = {uid: node["fqn"][1] for uid, node in models.items()}
    misplaced = {models[uid]["name"]: name for uid, name in layer.items() if name not in LAYERS}
    assert not misplaced, f"models outside {LAYERS}: {misplaced}"
    misnamed = [
        f"{node['name']} in {layer[uid]}"
        for uid, node in models.items()
        if LAYER_OF_PREFIX.get(node["name"][:4], "marts") != layer[uid]
    ]
    assert not misnamed, f"stg_ is staging, int_ intermediate, anything else marts: {misnamed}"
    backwards = [
        f"{models[uid]['name']} ({layer[uid]}) reads {models[dep]['name']} ({layer[dep]})"
        for uid, node in models.items()
        for dep in node["depends_on"]["nodes"]
        if dep in models and LAYERS.index(layer[dep]) > LAYERS.index(layer[uid])
    ]
    assert not backwards, "a model reads a later layer:\n" + "\n".join(backwards)
    assert len(models) > 40, "the manifest holds too few models to be the bclake project"


def test_staging_holds_only_generated_files() -> None:
    """models/staging is generated from the contracts: no hand-written or left-over file."""
    from bclake.core.dbt_codegen import render_all

    generated = set(render_all(list(load_contracts().values())))
    staging = DBT_PROJECT_DIR / "models" / "staging"
    present = {p.relative_to(DBT_PROJECT_DIR).as_posix() for p in staging.rglob("*") if p.is_file()}
    assert present <= generated, (
        f"not generated (run `bclake contracts --dbt`): {sorted(present - generated)}"
    )


def _tables(settings: Settings, names: tuple[str, ...]) -> dict[str, pl.DataFrame]:
    with duckdb.connect(str(settings.build_db), read_only=True) as con:
        out = {}
        for name in names:
            frame = con.sql(f"select * from marts.{name}").pl()
            out[name] = frame.sort(frame.columns)
        return out


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_incremental_run_equals_full_refresh(tiny_home: Path, tmp_path: Path) -> None:
    from bclake.simulator.run import continue_simulation

    settings = copy_home(tiny_home, tmp_path / "home")
    before = _tables(settings, BIG_FACTS)
    continue_simulation(settings.home, days=10, progress=False)
    for contract in load_contracts().values():
        ingest_table(contract, settings)
    select = ["--select", *BIG_FACTS]
    incremental = dbt(settings, tmp_path, "run", *select)
    assert incremental.returncode == 0, incremental.stdout
    after_incremental = _tables(settings, BIG_FACTS)
    full = dbt(settings, tmp_path, "run", "--full-refresh", *select)
    assert full.returncode == 0, full.stdout
    after_full = _tables(settings, BIG_FACTS)
    for name in BIG_FACTS:
        assert after_incremental[name].height > before[name].height, f"{name} got no new rows"
        assert after_incremental[name].equals(after_full[name]), name


def test_failing_blocking_check_leaves_the_published_warehouse_unchanged(
    tiny_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dagster import DagsterInstance

    from bclake.orchestration.run import run_pipeline

    settings = copy_home(tiny_home, tmp_path / "home")
    monkeypatch.setenv("BCLAKE_HOME", str(settings.home))
    published = _sha(settings.published_db)
    exports = {p.name: _sha(p) for p in settings.exports.rglob("*") if p.is_file()}
    # a part rewritten behind ingest's back (a part no ledger row accounts for would be set
    # aside at the start of the run): sell-through from a store no master knows
    lake = settings.lake / "dms/sell_through"
    part = next(lake.glob("biz_date=*/part-*.parquet"))
    original = pl.read_parquet(part)
    bad = original.with_columns(
        pl.lit("S999999").alias("store_code"),
        pl.lit("STBAD").alias("report_id"),
        pl.col("_ingested_at").dt.offset_by("1d"),
    )
    pl.concat([original, bad]).write_parquet(part)
    with DagsterInstance.ephemeral() as instance:
        result = run_pipeline(str(settings.home), instance)
    assert not result.success, "a relationships test should have failed the warehouse step"
    assert _sha(settings.published_db) == published
    assert {p.name: _sha(p) for p in settings.exports.rglob("*") if p.is_file()} == exports


def test_a_reader_keeps_reading_during_a_build_and_then_sees_the_new_version(
    tiny_home: Path, tmp_path: Path
) -> None:
    import json

    from bclake.core.publish import publish

    settings = copy_home(tiny_home, tmp_path / "home")
    reader = duckdb.connect(str(settings.published_db), read_only=True)
    first = reader.execute("select count(*) from marts.kpi_values").fetchone()[0]
    old_stamp = json.loads(settings.published_db.with_suffix(".json").read_text())
    build = subprocess.Popen(
        dbt_command(tmp_path, "build", "--full-refresh", "--select", "marts"),
        env={**os.environ, **settings.dbt_env()},
        stdout=subprocess.DEVNULL,
    )
    reads = 0
    while build.poll() is None:
        assert reader.execute("select count(*) from marts.kpi_values").fetchone()[0] == first
        reads += 1
    assert build.returncode == 0
    assert reads > 0
    with duckdb.connect(str(settings.build_db)) as con:
        con.execute("create or replace table marts.build_marker as select 1 as new_version")
    publish(settings.build_db, settings.published_db)
    # the open connection still reads the version it opened ...
    assert reader.execute("select count(*) from marts.kpi_values").fetchone()[0] == first
    reader.close()
    # ... and a new one sees the new version
    with duckdb.connect(str(settings.published_db), read_only=True) as fresh:
        assert fresh.execute("select new_version from marts.build_marker").fetchone()[0] == 1
    new_stamp = json.loads(settings.published_db.with_suffix(".json").read_text())
    assert new_stamp["published_at"] > old_stamp["published_at"]
