"""The precision-marketing page (精准营销): who sees which lists, segments and store plans,
the marketing planner files, the page for every demo user, and the page in a real
browser at desktop and phone width.

The scoping rules are tested on a small hand-made warehouse (two regions, three
distributors, four stores, twelve listed consumers); the page and the planner files on
the tiny world's pipeline run, and on a copy of it whose first listed consumer's reason
starts like a spreadsheet formula (the shared world is never touched).
"""

from __future__ import annotations

import csv
import io
import re
import shutil
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import duckdb
import openpyxl
import pandas as pd
import polars as pl
import pytest
from browser_page import (
    NO_BROWSER,
    assert_fits_phone,
    browser_fixture,  # noqa: F401 (the `browser` fixture)
    desktop_screenshot,
    open_page,
    phone_screenshot,
    shots_fixture,  # noqa: F401 (the `shots` fixture)
)
from streamlit.testing.v1 import AppTest
from streamlit_server import serve, signed_in

from bclake.dashboards import data
from bclake.dashboards.auth import Scope
from bclake.dashboards.data import (
    HQ_ONLY,
    LIST_SEGMENTS,
    MARKETING_BRAND_TABLES,
    MARKETING_CONSUMER_TABLES,
    MIN_SEGMENT_CONSUMERS,
    SEGMENT_DIMENSIONS,
    ScopedWarehouse,
)
from bclake.exports.planner import HEADERS, MARKETING_BOOK, write_planner_files

ROOT = Path(__file__).resolve().parents[1]
APP = str(ROOT / "bclake" / "dashboards" / "app.py")
PAGE = "views/marketing.py"
DEMO_USERS = ("hq", "huabei", "d0004", "s000006")
LISTS = "ml.marketing_target_lists"
STORE_PLANS = "marts.fct_store_activity_plans"
STORE = "S000006"  # the demo store, of D0004 in 华北
CONSUMER_ID = re.compile(r"\bC\d{9}\b")  # the simulator's pseudonymous consumer ids
FORMULA_REASON = '=HYPERLINK("http://example.com","x") 手工样例'

# -- the scoping rules, on a hand-made warehouse --------------------------------------

STORES = {  # store -> (distributor, region)
    "S1": ("D1", "华北"),
    "S2": ("D1", "华北"),
    "S3": ("D2", "华北"),
    "S4": ("D3", "华东"),
}
# consumer -> (home store, city tier, scenario tag or None, arm)
LISTED = {
    **{f"C{i:09d}": ("S1", 1, "学生", "target") for i in range(1, 6)},
    "C000000006": ("S1", 1, "银发", "holdout"),
    **{f"C{i:09d}": ("S2", 2, "学生", "target") for i in range(7, 9)},
    "C000000009": ("S3", 2, None, "target"),
    **{f"C{i:09d}": ("S4", 3, "白领", "target") for i in range(10, 13)},
}


def _table(con: duckdb.DuckDBPyConnection, name: str, frame: pd.DataFrame) -> None:
    con.register("hand_made", frame)
    con.execute(f"create table {name} as select * from hand_made")
    con.unregister("hand_made")


@pytest.fixture(scope="module")
def hand_made(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A published warehouse with just what the marketing scoping rules read."""
    path = tmp_path_factory.mktemp("mk_rules") / "published.duckdb"
    with duckdb.connect(str(path)) as con:
        for schema in ("marts", "ml"):
            con.execute(f"create schema {schema}")
        _table(
            con, "marts.fct_sales_region_sku_week", pd.DataFrame({"week_start": [date(2025, 1, 6)]})
        )
        _table(
            con,
            "marts.dim_store",
            pd.DataFrame(
                [
                    {"store_code": s, "store_name": f"店{s}", "distributor_code": d, "region": r}
                    for s, (d, r) in STORES.items()
                ]
            ),
        )
        _table(
            con,
            "marts.dim_distributor",
            pd.DataFrame(
                [{"distributor_code": d, "region": r} for d, r in sorted(set(STORES.values()))]
            ),
        )
        rows = [
            {
                "plan_id": "NEXT-饮料",
                "consumer_id": cid,
                "rank": i + 1,
                "arm": arm,
                "expected_uplift": 0.1,
                "expected_incremental_revenue": 5.0,
                "expected_cost": 1.0,
                "reason_zh": "历史核销率高",
                "reason_en": "Past coupon redemption rate: high",
                "region_code": STORES[store][1],
                "distributor_code": STORES[store][0],
                "store_code": store,
                "city_tier": tier,
                "age_band": "18-29",
            }
            for i, (cid, (store, tier, _, arm)) in enumerate(LISTED.items())
        ]
        _table(con, LISTS, pd.DataFrame(rows))
        _table(
            con,
            "ml.marketing_scores",
            pd.DataFrame({"plan_id": "NEXT-饮料", "consumer_id": list(LISTED), "uplift": 0.1}),
        )
        _table(
            con,
            "marts.fct_marketing_features",
            pd.DataFrame(
                [
                    {"consumer_id": c, "home_region": STORES[s][1], "store_code": s}
                    for c, (s, *_) in LISTED.items()
                ]
            ),
        )
        _table(
            con,
            "marts.user_tags",
            pd.DataFrame(
                [
                    {
                        "entity_type": "user",
                        "entity_id": c,
                        "tag": f"scenario_user:{tag}",
                        "score": 0.9,
                    }
                    for c, (_, _, tag, _) in LISTED.items()
                    if tag
                ]
            ),
        )
        _table(
            con,
            "ml.marketing_plans",
            pd.DataFrame({"plan_id": ["NEXT-饮料"], "list_size": [12], "expected_roi": [2.0]}),
        )
        _table(
            con,
            STORE_PLANS,
            pd.DataFrame(
                [
                    {
                        "store_code": s,
                        "region_code": r,
                        "distributor_code": d,
                        "rank": 1,
                        "activity": "display_upgrade",
                    }
                    for s, (d, r) in STORES.items()
                ]
            ),
        )
    return path


def _segments(wh: ScopedWarehouse, dimension: str) -> pd.DataFrame:
    """One dimension's rows, named segments first."""
    return wh.query(
        f"select * from {LIST_SEGMENTS} where dimension = ? order by segment nulls last",
        (dimension,),
    )


def _names(rows: pd.DataFrame) -> list[str | None]:
    """The segments' names, a pooled segment as None."""
    return [s if isinstance(s, str) else None for s in rows.segment]


def test_consumer_level_tables_are_hq_only_and_the_plans_brand_wide(hand_made: Path) -> None:
    hq = ScopedWarehouse(hand_made, Scope("hq"))
    assert len(hq.query(f"select * from {LISTS}")) == len(LISTED)
    assert len(hq.query("select * from ml.marketing_scores")) == len(LISTED)
    for scope in (Scope("region", "华北"), Scope("distributor", "D1"), Scope("store", "S1")):
        wh = ScopedWarehouse(hand_made, scope)
        for table in ("ml.marketing_target_lists", "ml.marketing_scores"):
            assert wh.query(f"select * from {table}").empty, f"{scope}: {table}"
        # a consumer table with a store column is still HQ's only
        assert wh.query("select * from marts.fct_marketing_features").empty, scope
        assert len(wh.query("select * from ml.marketing_plans")) == 1, "plans are brand-wide"
        # the segments carry no consumer, whatever the scope
        segments = wh.query(f"select * from {LIST_SEGMENTS}")
        assert not segments.empty, scope
        assert not any(
            CONSUMER_ID.search(str(v)) for v in segments.astype(str).to_numpy().ravel()
        ), scope
    assert {"ml.marketing_target_lists", "ml.marketing_scores"} <= MARKETING_CONSUMER_TABLES
    assert not MARKETING_BRAND_TABLES & MARKETING_CONSUMER_TABLES


@pytest.mark.parametrize(
    ("scope", "homes"),
    [
        (Scope("hq"), {"S1", "S2", "S3", "S4"}),
        (Scope("region", "华北"), {"S1", "S2", "S3"}),
        (Scope("distributor", "D1"), {"S1", "S2"}),
        (Scope("store", "S1"), {"S1"}),
        (Scope("store", "S9"), set()),
    ],
)
def test_segments_sum_the_listed_consumers_whose_home_store_is_in_scope(
    hand_made: Path, scope: Scope, homes: set[str]
) -> None:
    wh = ScopedWarehouse(hand_made, scope)
    listed = {c: v for c, v in LISTED.items() if v[0] in homes}
    targets = sum(v[3] == "target" for v in listed.values())
    for dimension in SEGMENT_DIMENSIONS:
        rows = _segments(wh, dimension)
        # every dimension partitions the same consumers, but for a pooled remainder too
        # small to show (it would single out a small segment)
        hidden = len(listed) - int(rows.consumers.sum())
        assert 0 <= hidden < MIN_SEGMENT_CONSUMERS, (scope, dimension)
        if hidden == 0:
            assert int(rows.targets.sum()) == targets
            assert int(rows.holdout.sum()) == len(listed) - targets
            assert rows.expected_cost.sum() == pytest.approx(targets * 1.0)
            assert rows.expected_incremental_revenue.sum() == pytest.approx(targets * 5.0)
        # no segment, named or pooled, narrows to fewer than the minimum
        assert (rows.consumers >= MIN_SEGMENT_CONSUMERS).all()
    if scope.role == "hq":
        tiers = _segments(wh, "city_tier")
        # tier 1: six consumers of S1; tiers 2 (three) and 3 (three) are pooled as one null row
        assert _names(tiers) == ["1", None] and tiers.consumers.tolist() == [6, 6]
        scenarios = _segments(wh, "scenario")
        assert _names(scenarios) == ["学生", None], "学生 7; 银发, 白领 and untagged pooled"
        assert scenarios.consumers.tolist() == [7, 5]
        assert _names(_segments(wh, "region")) == ["华北"], "华东's 3 are too few, even pooled"


def test_store_plans_follow_the_store(hand_made: Path) -> None:
    for scope, stores in (
        (Scope("hq"), set(STORES)),
        (Scope("region", "华北"), {"S1", "S2", "S3"}),
        (Scope("distributor", "D1"), {"S1", "S2"}),
        (Scope("store", "S3"), {"S3"}),
    ):
        seen = ScopedWarehouse(hand_made, scope).query(f"select store_code from {STORE_PLANS}")
        assert set(seen.store_code) == stores, scope


def test_segments_without_scenario_tags(hand_made: Path, tmp_path: Path) -> None:
    """A warehouse without user tags: every listed consumer in one unknown scenario."""
    path = tmp_path / "published.duckdb"
    shutil.copy(hand_made, path)
    with duckdb.connect(str(path)) as con:
        con.execute("drop table marts.user_tags")
    rows = _segments(ScopedWarehouse(path, Scope("hq")), "scenario")
    assert _names(rows) == [None] and rows.consumers.tolist() == [len(LISTED)]


def test_no_segments_view_without_lists(tmp_path: Path) -> None:
    path = tmp_path / "published.duckdb"
    with duckdb.connect(str(path)) as con:
        con.execute("create schema marts")
        con.execute(
            "create table marts.fct_sales_region_sku_week as select date '2025-01-06' as week_start"
        )
        con.execute(
            "create table marts.dim_store "
            "(store_code varchar, region varchar, distributor_code varchar)"
        )
        con.execute("create table marts.dim_distributor (distributor_code varchar, region varchar)")
    wh = ScopedWarehouse(path, Scope("region", "华北"))
    found = wh.query(
        "select count(*) as n from information_schema.tables where table_name = ?",
        (LIST_SEGMENTS.split(".")[1],),
    )
    assert int(found.n.iloc[0]) == 0


# -- the page and the files, on the tiny world ----------------------------------------


@pytest.fixture(scope="module")
def mk_home(tiny_home: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the tiny world's published warehouse whose first listed consumer and
    S000006's first activity have a reason that starts like a formula, with the planner
    files written from it."""
    home = tmp_path_factory.mktemp("mk_home")
    (home / "warehouse").mkdir()
    path = home / "warehouse" / "published.duckdb"
    shutil.copy(tiny_home / "warehouse" / "published.duckdb", path)
    with duckdb.connect(str(path)) as con:
        con.execute(
            f"update {LISTS} set reason_zh = ?, reason_en = ? "
            f"where rank = 1 and plan_id = (select min(plan_id) from {LISTS})",
            [FORMULA_REASON, FORMULA_REASON],
        )
        con.execute(
            f"update {STORE_PLANS} set reason_zh = ?, reason_en = ? "
            "where store_code = ? and rank = 1",
            [FORMULA_REASON, FORMULA_REASON, STORE],
        )
    write_planner_files(path, home / "exports")
    return home


def _published(home: Path) -> duckdb.DuckDBPyConnection:
    return duckdb.connect(str(home / "warehouse" / "published.duckdb"), read_only=True)


def test_the_tiny_world_has_lists_and_store_plans(mk_home: Path) -> None:
    """The fixtures below mean something only if the world lists someone and plans S000006."""
    with _published(mk_home) as con:
        assert con.execute(f"select count(*) from {LISTS}").fetchone()[0] > 0
        assert con.execute(
            f"select count(*) from {STORE_PLANS} where store_code = ?", [STORE]
        ).fetchone()[0]


def test_every_consumer_level_marketing_table_is_hq_only(mk_home: Path) -> None:
    """A marketing table with a row per consumer is HQ's whatever store columns it has: a
    new one must be named in `MARKETING_CONSUMER_TABLES` before a region can read it."""
    with _published(mk_home) as con:
        tables = con.execute(
            "select table_schema || '.' || table_name, list(column_name) "
            "from information_schema.columns where table_schema in ('marts', 'ml') "
            "and (table_name like '%marketing%' or table_name like '%campaign%') group by 1"
        ).fetchall()
    consumer_level = {name for name, columns in tables if "consumer_id" in columns}
    assert LISTS in consumer_level
    assert consumer_level <= HQ_ONLY, consumer_level - HQ_ONLY
    region = ScopedWarehouse(mk_home / "warehouse" / "published.duckdb", Scope("region", "华北"))
    for name in consumer_level:
        assert region.query(f"select * from {name}").empty, name


def test_planner_files_list_consumers_in_the_company_folder_only(mk_home: Path) -> None:
    exports = mk_home / "exports"
    with _published(mk_home) as con:
        listed = con.execute(f"select count(*) from {LISTS}").fetchone()[0]
        plans = con.execute(
            f"select region_code, distributor_code, store_code from {STORE_PLANS}"
        ).df()
        consent = dict(
            con.execute("select consumer_id, consent_marketing from marts.dim_consumer").fetchall()
        )
    company = exports / "company"
    lists = pl.read_csv(company / "target_lists.csv", infer_schema_length=0)
    assert lists.height == listed == pl.read_parquet(company / "target_lists.parquet").height
    assert (company / "target_lists.csv").read_bytes().startswith(b"\xef\xbb\xbf")
    assert all(CONSUMER_ID.fullmatch(c) for c in lists["consumer_id"]), "pseudonymous ids only"
    assert all(consent.get(c) for c in lists["consumer_id"]), "consented consumers only"
    assert not {"name", "phone", "mobile", "openid", "unionid"} & set(lists.columns)
    # formula-like text defused in the CSV, kept as is in the Parquet
    assert "'" + FORMULA_REASON in set(lists["reason_zh"])
    raw = pl.read_parquet(company / "target_lists.parquet")
    assert FORMULA_REASON in set(raw["reason_zh"])

    book = openpyxl.load_workbook(company / MARKETING_BOOK)
    assert book.sheetnames == ["marketing_plans", "target_lists", "store_plans"]
    sheet = book["target_lists"]
    header = [c.value for c in sheet[1]]
    assert sheet.freeze_panes == "A2" and header[:3] == [
        "plan_id 营销计划",
        "rank 排名",
        "consumer_id 消费者（假名）",
    ]
    assert all(c.data_type != "f" for ws in book for row in ws for c in row), "no formula cell"
    first = [c.value for c in sheet[2]]
    assert first[header.index("reason_zh 原因")] == "'" + FORMULA_REASON
    assert isinstance(first[header.index("valid_from 券生效")], date)
    assert isinstance(first[header.index("expected_cost 预期券成本 (CNY)")], float)

    for folder in (*(exports / "region").iterdir(), *(exports / "distributor").iterdir()):
        assert not (folder / "target_lists.csv").exists(), folder
        assert not (folder / "target_lists.parquet").exists(), folder
        names = openpyxl.load_workbook(folder / MARKETING_BOOK, read_only=True).sheetnames
        assert names == ["store_plans"], folder
        rows = pl.read_parquet(folder / "store_plans.parquet")
        column = "region" if folder.parent.name == "region" else "distributor_code"
        assert set(rows[column]) <= {folder.name}, folder
        own = plans.region_code if column == "region" else plans.distributor_code
        assert rows.height == int((own == folder.name).sum()), folder
    assert pl.read_csv(company / "store_plans.csv").height == len(plans)


def _texts(at: AppTest) -> list[str]:
    """Every text on screen: tables' cells and headers, markdown, captions, titles."""
    out = [str(v) for d in at.dataframe for v in d.value.astype(str).to_numpy().ravel()]
    out += [str(c) for d in at.dataframe for c in d.value.columns]
    out += [e.value for e in (*at.markdown, *at.caption, *at.subheader, *at.info, *at.text)]
    return out


@pytest.mark.usefixtures("empty_home")
def test_the_page_without_a_published_warehouse() -> None:
    at = signed_in(PAGE, "hq")
    assert not at.exception
    assert any("还没有发布" in i.value for i in at.info)


@pytest.mark.parametrize("username", DEMO_USERS)
def test_the_page_renders_for_every_demo_user(
    mk_home: Path, monkeypatch: pytest.MonkeyPatch, username: str
) -> None:
    monkeypatch.setenv("BCLAKE_HOME", str(mk_home))
    for lang, title, lists in (("zh", "精准营销", "发券名单"), ("en", "Marketing", "Target lists")):
        at = signed_in(PAGE, username, lang)
        assert not at.exception, f"{username}: {at.exception[0].value}"
        assert at.title[0].value == title
        texts = _texts(at)
        ids = {m for text in texts for m in CONSUMER_ID.findall(text)}
        subheaders = {s.value for s in at.subheader}
        assert lists in subheaders, subheaders
        if username == "hq":
            assert ids, "HQ sees the list by pseudonymous id"
            assert any("Qini" in s for s in texts), "the learners' comparison"
        else:
            assert not ids, f"{username} sees consumer ids: {sorted(ids)[:3]}"
        if username == "s000006":
            # its own plan, first, as cards: no store picker, no brand-wide model
            assert at.subheader[0].value.startswith("一店一策" if lang == "zh" else "Store plans")
            assert not any("Qini" in s for s in texts)
            assert not [s for s in at.selectbox if s.label in ("门店", "Store")]
            # the reason as plain text: no Markdown turns its URL into a link
            assert FORMULA_REASON in [e.value for e in at.text], "the store's own reason"


def test_the_downloads_hq_gets_and_a_store_gets(
    mk_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BCLAKE_HOME", str(mk_home))
    with monkeypatch.context() as mp:
        mp.setattr(data, "current_scope", lambda: Scope("store", STORE))
        plans = data.marketing_file("store_plans")
        assert data.marketing_file("target_lists").is_empty(), "no list rows for a store"
    assert plans.height >= 1 and set(plans["store_code"]) == {STORE}
    assert plans.schema["plan_start"] == pl.Date
    text = data.safe_csv(plans).decode("utf-8-sig")
    first = next(csv.DictReader(io.StringIO(text)))
    assert first["reason_zh"] == "'" + FORMULA_REASON and first["rank"] == "1"
    book = openpyxl.load_workbook(io.BytesIO(data.safe_xlsx({"store_plans": plans}, HEADERS)))
    assert all(c.data_type != "f" for row in book["store_plans"] for c in row)

    with monkeypatch.context() as mp:
        mp.setattr(data, "current_scope", lambda: Scope("hq"))
        plan_id = data.marketing_file("marketing_plans")["plan_id"][0]
        listed = data.marketing_file("target_lists", "plan_id = ?", (plan_id,))
    assert listed.height and listed["rank"].to_list() == sorted(listed["rank"].to_list())
    assert listed.schema["valid_from"] == pl.Date
    hq_csv = next(csv.DictReader(io.StringIO(data.safe_csv(listed).decode("utf-8-sig"))))
    assert hq_csv["rank"] == "1" and hq_csv["reason_zh"] == "'" + FORMULA_REASON


# -- in a real browser -------------------------------------------------------------


@pytest.fixture(scope="module")
def mk_url(mk_home: Path) -> Iterator[str]:
    """`streamlit run` over the copy, with the demo users."""
    with serve({"BCLAKE_HOME": str(mk_home)}, unset=("BCLAKE_USERS",)) as url:
        yield url


@pytest.mark.skipif(bool(NO_BROWSER), reason=NO_BROWSER or "chromium")
@pytest.mark.parametrize("user", DEMO_USERS)
def test_the_page_in_a_browser(browser, mk_url: str, shots: Path, user: str) -> None:
    """Desktop (1400 px) and phone (390 px): it renders without an error, a consumer id
    shows to HQ only (the download of the list too), nothing is wider than the phone."""
    for phone in (False, True):
        context, page, body, errors = open_page(browser, mk_url, user, "精准营销", phone)
        assert "精准营销" in body and "Traceback" not in body, body[:500]
        assert not page.locator("[data-testid='stException']").count(), f"{user}: raised"
        assert "一店一策" in body and "发券名单" in body, body[:800]
        assert ("下载名单（假名编号）" in body) == (user == "hq"), body[:800]
        if user != "hq":
            assert not CONSUMER_ID.search(body), f"{user}: a consumer id on screen"
        if phone:
            assert_fits_phone(page, user)
            phone_screenshot(page, shots / f"phone_{user}_marketing.png")
        else:
            desktop_screenshot(page, shots / f"{user}_marketing.png")
        assert not errors, f"{user}: browser errors {errors[:3]}"
        context.close()
