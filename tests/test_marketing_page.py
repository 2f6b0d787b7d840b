"""The precision-marketing page (精准营销): who sees which lists, segments and store plans,
the marketing planner files, the page for every demo user, and the page in a real
browser at desktop and phone width.

The scoping rules are tested on a small hand-made warehouse (two regions, three
distributors, four stores, twelve listed consumers); the page and the planner files on
the tiny world's pipeline run, and on a copy of it whose first listed consumer's reason
starts like a spreadsheet formula (the shared world is never touched).
"""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from bclake.dashboards.auth import Scope
from bclake.dashboards.data import (
    LIST_SEGMENTS,
    MARKETING_BRAND_TABLES,
    MARKETING_CONSUMER_TABLES,
    MIN_SEGMENT_CONSUMERS,
    SEGMENT_DIMENSIONS,
    ScopedWarehouse,
)

ROOT = Path(__file__).resolve().parents[1]
APP = str(ROOT / "bclake" / "dashboards" / "app.py")
PAGE = "pages/marketing.py"
DEMO_USERS = ("hq", "huabei", "d0004", "s000006")
LISTS = "ml.marketing_target_lists"
STORE_PLANS = "marts.fct_store_activity_plans"
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
        assert "consumer_id" not in segments.columns and not segments.empty, scope
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
        # every dimension partitions the same consumers
        assert int(rows.consumers.sum()) == len(listed), (scope, dimension)
        assert (
            int(rows.targets.sum()) == targets and int(rows.holdout.sum()) == len(listed) - targets
        )
        assert rows.expected_cost.sum() == pytest.approx(targets * 1.0)
        assert rows.expected_incremental_revenue.sum() == pytest.approx(targets * 5.0)
        # no named segment narrows to fewer than the minimum: small ones are pooled
        assert (rows.dropna(subset=["segment"]).consumers >= MIN_SEGMENT_CONSUMERS).all()
    if scope.role == "hq":
        tiers = _segments(wh, "city_tier")
        # tier 1: six consumers of S1; tiers 2 (three) and 3 (three) are pooled as one null row
        assert _names(tiers) == ["1", None] and tiers.consumers.tolist() == [6, 6]
        scenarios = _segments(wh, "scenario")
        assert _names(scenarios) == ["学生", None], "学生 7; 银发, 白领 and untagged pooled"
        assert scenarios.consumers.tolist() == [7, 5]
        assert _names(_segments(wh, "region")) == ["华北", None], "华东's 3 are pooled"


def test_store_plans_follow_the_store(hand_made: Path) -> None:
    for scope, stores in (
        (Scope("hq"), set(STORES)),
        (Scope("region", "华北"), {"S1", "S2", "S3"}),
        (Scope("distributor", "D1"), {"S1", "S2"}),
        (Scope("store", "S3"), {"S3"}),
    ):
        seen = ScopedWarehouse(hand_made, scope).query(f"select store_code from {STORE_PLANS}")
        assert set(seen.store_code) == stores, scope


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
