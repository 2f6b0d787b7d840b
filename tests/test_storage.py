"""Publishing to object storage: versions behind a pointer, on a local S3-compatible server
(moto in server mode, reached over HTTP by s3fs like a real bucket) and on a local folder."""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import boto3
import duckdb
import polars as pl
import pytest
from dbt_run import copy_home, dbt_command
from moto.server import ThreadedMotoServer

from bclake.core import storage
from bclake.core.settings import Settings
from bclake.core.storage import Store

KEY, SECRET, BUCKET = "test-key", "test-secret", "bclake-test"


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id=KEY,
        aws_secret_access_key=SECRET,
        region_name="us-east-1",
    ).create_bucket(Bucket=BUCKET)
    yield endpoint
    server.stop()


def _options(endpoint: str) -> dict:
    return {"key": KEY, "secret": SECRET, "endpoint_url": endpoint}


@pytest.fixture(params=["s3", "file"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Store:
    if request.param == "file":
        return Store.from_uri(f"file://{tmp_path / 'store'}", {})
    endpoint = request.getfixturevalue("s3_endpoint")
    return Store.from_uri(f"s3://{BUCKET}/{tmp_path.name}", _options(endpoint))


def _table(folder: Path, day: str, rows: int) -> None:
    part = folder / "erp" / "shipments" / f"ship_date={day}" / "part-0.parquet"
    part.parent.mkdir(parents=True, exist_ok=True)
    pl.DataFrame({"qty": list(range(rows)), "day": [day] * rows}).write_parquet(part)


def _count(store: Store, url: str) -> int:
    con = duckdb.connect()
    storage.register_store(con, store)
    query = f"select count(*) from read_parquet('{url}/erp/shipments/**/*.parquet')"
    return con.execute(query).fetchone()[0]


def test_versions_behind_a_pointer(store: Store, tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    _table(lake, "2025-01-01", 3)
    _table(lake, "2025-01-02", 4)
    (lake / "_quarantine").mkdir()
    (lake / "_quarantine" / "raw.parquet").write_bytes(b"raw rows")
    (lake / "erp" / ".part.tmp").write_bytes(b"half")
    assert storage.current(store, "lake") is None

    first = storage.publish_tree(store, "lake", lake, include=lambda rel: not rel.startswith("_"))
    assert (first.files, first.uploaded, first.copied) == (2, 2, 0)
    assert storage.current(store, "lake") == first
    assert _count(store, first.url) == 7
    listed = store.fs.find(store.path("lake", "_versions", first.version))
    assert not any("_quarantine" in p or ".part.tmp" in p for p in listed)

    _table(lake, "2025-01-02", 10)  # a day rewritten, the other unchanged
    second = storage.publish_tree(store, "lake", lake, include=lambda r: not r.startswith("_"))
    assert (second.uploaded, second.copied) == (1, 1)
    assert storage.current(store, "lake").version == second.version
    assert _count(store, second.url) == 13
    # a reader that resolved the pointer before keeps reading its whole version
    assert _count(store, first.url) == 7


def test_a_failed_publication_leaves_the_pointer(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lake = tmp_path / "lake"
    _table(lake, "2025-01-01", 3)
    good = storage.publish_tree(store, "lake", lake)
    _table(lake, "2025-01-01", 5)

    def broken(*_args: object, **_kwargs: object) -> None:
        raise OSError("connection reset")

    monkeypatch.setattr(store.fs, "put", broken)
    with pytest.raises(OSError, match="connection reset"):
        storage.publish_tree(store, "lake", lake)
    monkeypatch.undo()
    assert storage.current(store, "lake") == good
    assert _count(store, good.url) == 3
    # the next publication succeeds; prune removes the failed folder, never the current one
    store.fs.makedirs(
        store.path("lake", "_versions", "00000000T000000000000Z-failed"), exist_ok=True
    )
    store.fs.pipe_file(store.path("lake", "_versions", "00000000T000000000000Z-failed", "x"), b"")
    latest = storage.publish_tree(store, "lake", lake)
    assert _count(store, latest.url) == 5
    deleted = storage.prune(store, "lake", keep=1)
    assert "00000000T000000000000Z-failed" in deleted  # and the broken run's folder, if any
    assert storage.versions(store, "lake") == sorted([good.version, latest.version])
    # a version published before an erasure is deleted at once, whatever `keep` says
    assert storage.prune(store, "lake", keep=5, stale_before=datetime.now(UTC)) == [good.version]
    assert storage.versions(store, "lake") == [latest.version]


def test_fetch_current_downloads_each_version_once(store: Store, tmp_path: Path) -> None:
    db = tmp_path / "build" / "published.duckdb"
    db.parent.mkdir()
    duckdb.connect(str(db)).execute("create table t as select 1 as x").close()
    version = storage.publish_file(store, "warehouse", db)
    target = tmp_path / "reader" / "published.duckdb"
    assert storage.fetch_current(store, "warehouse", "published.duckdb", target) == version
    with duckdb.connect(str(target), read_only=True) as con:
        assert con.execute("select x from t").fetchone() == (1,)
    mtime = target.stat().st_mtime_ns
    storage.fetch_current(store, "warehouse", "published.duckdb", target)
    assert target.stat().st_mtime_ns == mtime  # same version: not downloaded again


def test_bad_options_are_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(storage.OPTIONS_ENV, "endpoint=http://x")
    with pytest.raises(ValueError, match="BCLAKE_STORE_OPTIONS is not JSON"):
        Store.from_uri("memory://bclake")


def test_dbt_reads_a_lake_published_to_s3(
    tiny_settings: Settings, s3_endpoint: str, tmp_path: Path
) -> None:
    """The warehouse's staging models over the tiny lake published to S3 read the same rows
    as over the local lake: dbt's connections get the store's file system from bclake's
    plugin (`BCLAKE_STORE`, `BCLAKE_STORE_OPTIONS`)."""
    settings = copy_home(tiny_settings.home, tmp_path / "home")
    shutil.rmtree(settings.warehouse_dir)
    settings.build_db.parent.mkdir(parents=True)
    uri, options = f"s3://{BUCKET}/tiny", _options(s3_endpoint)
    store = Store.from_uri(uri, options)
    version = storage.publish_tree(
        store, "lake", settings.lake, include=lambda rel: not rel.startswith("_")
    )
    shutil.rmtree(settings.lake)  # only the store holds the lake now
    models = ["stg_erp__shipments", "stg_code__product_scans", "stg_dms__store_orders"]
    env = {
        **os.environ,
        **settings.dbt_env(),
        "BCLAKE_LAKE": version.url,
        "BCLAKE_STORE": uri,
        storage.OPTIONS_ENV: json.dumps(options),
    }
    run = subprocess.run(
        dbt_command(tmp_path, "run", "--select", *models),
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stdout[-3000:]
    with duckdb.connect(str(settings.build_db), read_only=True) as built:
        storage.register_store(built, store)
        with duckdb.connect(str(tiny_settings.build_db), read_only=True) as local:
            for model in models:
                remote_rows = built.execute(f"select count(*) from staging.{model}").fetchone()[0]
                local_rows = local.execute(f"select count(*) from staging.{model}").fetchone()[0]
                assert remote_rows == local_rows > 0, model
