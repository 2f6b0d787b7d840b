"""The dashboards: login gate, every page with and without data, scoping in the data layer."""

from __future__ import annotations

import os
import re
import time
from datetime import datetime
from pathlib import Path

import duckdb
import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from bclake.dashboards.auth import Scope, authenticate, hash_password, load_users, verify_password
from bclake.dashboards.data import (
    HQ_ONLY,
    PUBLIC,
    PUBLIC_SCHEMAS,
    SHANGHAI,
    ScopedWarehouse,
    ScopeError,
    warehouse_status,
)
from bclake.dashboards.i18n import catalogue

ROOT = Path(__file__).resolve().parents[1]
APP = str(ROOT / "bclake" / "dashboards" / "app.py")
PAGES = (
    "overview",
    "channel",
    "channel_planning",
    "market_order",
    "incentives",
    "marketing",
    "consumers",
    "products",
    "forecast",
    "quality",
    "supply",
    "downloads",
)
# market-order alerts follow the goods: a distributor also sees alerts about another
# distributor's goods that turned up in its territory (tests/test_market_order_page.py)
ALERT_TABLES = {"marts.fct_market_order_alerts", "marts.fct_market_order_alert_scans"}
DEMO_USERS = ("hq", "huabei", "d0004", "s000006")


def signed_in(username: str) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=120)
    at.session_state["user"] = load_users()[username]
    return at.run()


@pytest.mark.usefixtures("empty_home")
def test_visitors_see_only_the_login_page() -> None:
    at = AppTest.from_file(APP, default_timeout=60).run()
    assert not at.exception
    assert [b.label for b in at.button] == ["登录"]  # the form's submit, nothing else
    assert not at.dataframe and not at.metric
    at.text_input[0].input("hq")
    at.text_input[1].input("wrong")
    at.button[0].click().run()
    assert any("不正确" in e.value for e in at.error)
    assert "user" not in at.session_state


@pytest.mark.usefixtures("empty_home")
def test_login_with_a_demo_password() -> None:
    at = AppTest.from_file(APP, default_timeout=60).run()
    at.text_input[0].input("d0004")
    at.text_input[1].input("d0004-demo")
    at.button[0].click().run()
    assert not at.exception
    assert at.session_state["user"].scope == Scope("distributor", "D0004")
    assert any("Nothing has been published" in i.value or "还没有发布" in i.value for i in at.info)


def test_passwords_are_hashed_and_checked() -> None:
    stored = hash_password("s3cret")
    assert "s3cret" not in stored and verify_password("s3cret", stored)
    assert not verify_password("s3cret ", stored)
    assert authenticate("hq", "hq-demo") is not None
    assert authenticate("hq", "huabei-demo") is None and authenticate("nobody", "x") is None
    assert all(u.password_hash.startswith("pbkdf2_sha256$") for u in load_users().values())


def test_every_label_has_both_languages_and_every_key_exists() -> None:
    labels = catalogue()
    used = set()
    for path in (ROOT / "bclake" / "dashboards").rglob("*.py"):
        used |= set(re.findall(r"\bt\(\s*\"([a-z_]+\.[a-z_]+)\"", path.read_text()))
    assert used, "no label keys found in the pages"
    assert not used - set(labels), f"labels missing from labels.yml: {used - set(labels)}"
    assert all(entry["zh"] and entry["en"] for entry in labels.values())


@pytest.mark.parametrize("page", PAGES)
@pytest.mark.usefixtures("empty_home")
def test_every_page_without_a_published_warehouse(page: str) -> None:
    at = signed_in("hq")
    at.switch_page(f"views/{page}.py").run()
    assert not at.exception
    assert any("还没有发布" in i.value for i in at.info)


@pytest.mark.parametrize("username", DEMO_USERS)
def test_every_page_renders_for_every_demo_user(
    tiny_home: Path, monkeypatch: pytest.MonkeyPatch, username: str
) -> None:
    monkeypatch.setenv("BCLAKE_HOME", str(tiny_home))
    at = signed_in(username)
    for page in PAGES:
        at.switch_page(f"views/{page}.py").run()
        assert not at.exception, f"{username} on {page}: {at.exception[0].value}"
        assert at.title, f"{username} on {page}: no title"
    # English switch: same page, English labels
    at.session_state["lang"] = "en"
    at.switch_page("views/overview.py").run()
    assert not at.exception and at.title[0].value == "Overview"


def _ids(frame: pd.DataFrame, column: str) -> set[str]:
    return set(frame[column].dropna().astype(str)) if column in frame.columns else set()


def test_a_distributor_sees_only_its_own_rows_on_screen(
    tiny_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BCLAKE_HOME", str(tiny_home))
    con = duckdb.connect(str(tiny_home / "warehouse" / "published.duckdb"), read_only=True)
    own_stores = {
        r[0]
        for r in con.execute(
            "select store_code from marts.dim_store where distributor_code = 'D0004'"
        ).fetchall()
    }
    con.close()
    at = signed_in("d0004")
    seen = 0
    for page in PAGES:
        at.switch_page(f"views/{page}.py").run()
        for df in at.dataframe:
            frame = df.value
            assert _ids(frame, "distributor_code") <= {"D0004"}, page
            assert _ids(frame, "store_code") <= own_stores, page
            seen += len(frame)
    assert seen > 0, "the distributor saw no rows at all"


def test_scoped_views_filter_every_table(tiny_home: Path) -> None:
    path = tiny_home / "warehouse" / "published.duckdb"
    hq = ScopedWarehouse(path, Scope("hq"))
    d = ScopedWarehouse(path, Scope("distributor", "D0004"))
    r = ScopedWarehouse(path, Scope("region", "华北"))
    own_stores = set(d.members.stores or ())
    tables = hq.query(
        "select table_schema, table_name from information_schema.tables "
        "where table_catalog = current_database() order by 1, 2"
    )
    assert {"marts", "ml", "reference", "audit"} <= set(tables.table_schema)
    for schema, table in tables.itertuples(index=False):
        if schema in PUBLIC_SCHEMAS or f"{schema}.{table}" in PUBLIC:
            continue  # products, dates, the city list: the same for everyone
        rows = d.query(f'select * from {schema}."{table}"')
        if f"{schema}.{table}" in ALERT_TABLES:
            # own goods, or goods found in its territory (tests/test_market_order_page.py)
            for row in rows.itertuples() if "destination_distributors" in rows else ():
                listed = str(row.destination_distributors or "").split(",")
                assert row.distributor_code == "D0004" or "D0004" in listed, row.alert_id
            continue
        assert _ids(rows, "distributor_code") <= {"D0004"}, f"{schema}.{table}"
        assert _ids(rows, "store_code") <= own_stores, f"{schema}.{table}"
        assert _ids(rows, "region") <= {"华北"}, f"{schema}.{table}"
        if f"{schema}.{table}" in HQ_ONLY or schema == "audit":
            assert rows.empty, f"{schema}.{table} shows consumer or audit rows to a distributor"
        regional = r.query(f'select * from {schema}."{table}"')
        assert _ids(regional, "region") <= {"华北"}, f"{schema}.{table}"
    kpis = d.query("select distinct scope_type, scope_id from marts.kpi_values")
    assert set(kpis.scope_type) <= {"distributor", "store"}
    assert set(kpis[kpis.scope_type == "distributor"].scope_id) == {"D0004"}
    assert not hq.query("select * from marts.dim_store").empty


def test_the_data_layer_refuses_anything_but_a_select(tiny_home: Path) -> None:
    d = ScopedWarehouse(tiny_home / "warehouse" / "published.duckdb", Scope("store", "S000006"))
    for sql in (
        f"select * from {d.alias}.marts.dim_store",
        "attach 'x.duckdb' as y",
        "select * from read_parquet('lake/**/*.parquet')",
        "create table marts.x as select 1",
    ):
        with pytest.raises(ScopeError):
            d.query(sql)
    assert set(d.query("select store_code from marts.dim_store").store_code) == {"S000006"}


def test_the_sidebar_shows_when_the_data_was_published(
    tiny_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BCLAKE_HOME", str(tiny_home))
    mtime = (tiny_home / "warehouse" / "published.duckdb").stat().st_mtime
    shown = f"{datetime.fromtimestamp(mtime, SHANGHAI):%Y-%m-%d %H:%M}"
    at = signed_in("s000006")
    captions = [c.value for c in at.sidebar.caption]
    assert f"数据发布于 {shown}（北京时间）" in captions, captions
    assert not any("更新" in c for c in captions), captions  # the build is older: no run
    # a fresh session: AppTest keeps the sidebar of the first run only
    at = AppTest.from_file(APP, default_timeout=120)
    at.session_state["user"] = load_users()["s000006"]
    at.session_state["lang"] = "en"
    at.run()
    assert f"Data published {shown} (Beijing time)" in [c.value for c in at.sidebar.caption]


def test_the_sidebar_says_when_a_run_is_writing(empty_home: Path) -> None:
    warehouse = empty_home / "warehouse"
    warehouse.mkdir()
    (warehouse / "build.duckdb").write_bytes(b"")  # only its time is read, never its content
    at = signed_in("hq")
    captions = [c.value for c in at.sidebar.caption]
    assert "尚未发布数据" in captions and any("数据更新中" in c for c in captions), captions


def test_warehouse_status_reads_file_times_only(empty_home: Path) -> None:
    warehouse = empty_home / "warehouse"
    warehouse.mkdir()
    assert warehouse_status() == warehouse_status().__class__(None, None, False)
    published, build = warehouse / "published.duckdb", warehouse / "build.duckdb"
    published.write_bytes(b"")
    build.write_bytes(b"not a database: opening it would fail")
    now = time.time()
    os.utime(published, (now - 7200, now - 7200))
    os.utime(build, (now - 60, now - 60))
    status = warehouse_status(now)
    assert status.running and status.build_at is not None
    assert status.published_at == datetime.fromtimestamp(now - 7200, SHANGHAI)
    assert status.published_at.utcoffset().total_seconds() == 8 * 3600
    stopped = warehouse_status(now + 3600)  # no write for an hour: the run stopped
    assert stopped.build_at is not None and not stopped.running
    os.utime(build, (now - 9000, now - 9000))  # older than the published file: nothing pending
    assert warehouse_status(now).build_at is None
