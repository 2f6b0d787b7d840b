"""The supply-plan page (供应计划): who sees which part of the plan, the page for every demo
user, and the page in a real browser at desktop and phone width.

The scoping rules are tested on a small hand-made warehouse (three regions with one DC
each, one plant, two SKUs, three transfers and rush runs); the page on the tiny world's
pipeline run.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

import duckdb
import pandas as pd
import pytest
from browser_page import (
    NO_BROWSER,
    browser_fixture,  # noqa: F401 (the `browser` fixture)
    check_both_widths,
    shots_fixture,  # noqa: F401 (the `shots` fixture)
)
from streamlit.testing.v1 import AppTest
from streamlit_server import serve, signed_in

from bclake.dashboards.auth import Scope
from bclake.dashboards.data import PLANT_CAPACITY as CAPACITY
from bclake.dashboards.data import SUPPLY_ALLOCATION as ALLOCATION
from bclake.dashboards.data import SUPPLY_NOTES as NOTES
from bclake.dashboards.data import SUPPLY_PLAN as PLAN
from bclake.dashboards.data import SUPPLY_PROJECTION as PROJECTION
from bclake.dashboards.data import SUPPLY_TRANSFERS, ScopedWarehouse

PAGE = "views/supply.py"
DEMO_USERS = ("hq", "huabei", "d0004", "s000006")
SUPPLY_TABLES = (PLAN, ALLOCATION, PROJECTION, SUPPLY_TRANSFERS, NOTES, CAPACITY)

# -- the scoping rules, on a hand-made warehouse --------------------------------------

AS_OF = date(2025, 6, 2)  # a Monday: the plan's first week
WEEKS = 13
DCS = {"DC-N": "华北", "DC-E": "华东", "DC-S": "华南"}  # warehouse -> region
STORES = {"S1": ("D1", "华北"), "S2": ("D2", "华东"), "S3": ("D3", "华南")}
SKUS = {"K1": ("饮料", 12), "K2": ("饮料", 24)}  # sku -> (category, case pack)
# kind, sku, from warehouse, plant, to warehouse: into 华北's DC, out of it, neither
TRANSFERS = (
    ("transfer", "K1", "DC-E", None, "DC-N"),
    ("transfer", "K2", "DC-N", None, "DC-S"),
    ("rush_run", "K1", None, "P1", "DC-S"),
    ("transfer", "K2", "DC-E", None, "DC-S"),
)


def _table(con: duckdb.DuckDBPyConnection, name: str, frame: pd.DataFrame) -> None:
    con.register("hand_made", frame)
    con.execute(f"create table {name} as select * from hand_made")
    con.unregister("hand_made")


def _week(w: int) -> date:
    return AS_OF + timedelta(weeks=w)


def write_supply_warehouse(path: Path) -> None:
    """A published warehouse with what the supply page and its scoping rules read: three
    regions with one DC each (and a brand warehouse with no region), one plant making two
    SKUs of one category, 13 weeks of plan whose weeks 3-5 bind on capacity, 8 weeks of
    capacity history, every DC's projection (DC-S runs short), the transfers in
    `TRANSFERS` and one note."""
    with duckdb.connect(str(path)) as con:
        for schema in ("marts", "ml"):
            con.execute(f"create schema {schema}")
        _table(
            con,
            "marts.fct_sales_region_sku_week",
            pd.DataFrame({"week_start": [_week(-52), _week(-1)]}),
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
            pd.DataFrame([{"distributor_code": d, "region": r} for d, r in STORES.values()]),
        )
        _table(
            con,
            "marts.dim_product",
            pd.DataFrame(
                [
                    {"sku_code": k, "sku_name": f"产品{k}", "category": c, "case_pack": n}
                    for k, (c, n) in SKUS.items()
                ]
            ),
        )
        _table(
            con,
            "marts.dim_warehouse",
            pd.DataFrame(
                [
                    {"warehouse_code": w, "warehouse_name": f"{r}仓", "warehouse_type": "DC"}
                    | {"region": r, "city": None}
                    for w, r in DCS.items()
                ]
                + [
                    {"warehouse_code": "CW", "warehouse_name": "总仓", "warehouse_type": "CW"}
                    | {"region": None, "city": None}
                ]
            ),
        )
        _table(
            con,
            CAPACITY,
            pd.DataFrame(
                [
                    {
                        "plant_code": "P1",
                        "plant_name": "一厂",
                        "category": "饮料",
                        "week_start": _week(w),
                        "capacity_units": 3000,
                        "output_units": 2400 + 50 * w,
                        "utilisation": (2400 + 50 * w) / 3000,
                        "is_latest": w == -1,
                    }
                    for w in range(-8, 0)
                ]
            ),
        )
        plan = []
        for k, (category, _) in SKUS.items():
            for w in range(WEEKS):
                bound = 2 <= w <= 4
                plan.append(
                    {
                        "plant_code": "P1",
                        "category": category,
                        "sku_code": k,
                        "week": w + 1,
                        "week_start": _week(w),
                        "planned_units": 1500 if bound else 1200,
                        "capacity_units": 3000,
                        "block_planned_units": 3000 if bound else 2400,
                        "capacity_shadow_yuan": 4.5 if bound else 0.0,
                        "expected_lost_units": 30.0 if bound else 0.0,
                        "binding": "capacity" if bound else "demand",
                        "reason_zh": "产能已满" if bound else "按需求计划",
                        "reason_en": "capacity full" if bound else "planned to demand",
                    }
                )
        _table(con, PLAN, pd.DataFrame(plan))
        allocation, projection = [], []
        for k in SKUS:
            for dc, region in DCS.items():
                short = dc == "DC-S"
                for w in range(WEEKS):
                    allocation.append(
                        {
                            "sku_code": k,
                            "plant_code": "P1",
                            "week_start": _week(w),
                            "arrival_week_start": _week(min(w + 1, WEEKS - 1)),
                            "warehouse_code": dc,
                            "region": region,
                            "allocated_units": 400,
                            "cover_weeks": 0.8 if short else 1.6,
                            "short": short,
                            "reason_zh": "按公平分配",
                            "reason_en": "fair share",
                        }
                    )
                    # DC-S runs out, DC-N falls below safety late, DC-E stays stocked
                    stock = {"DC-S": 200.0 - 40 * w, "DC-N": 900.0 - 70 * w}.get(dc, 900.0)
                    projection.append(
                        {
                            "warehouse_code": dc,
                            "region": region,
                            "sku_code": k,
                            "week": w + 1,
                            "week_start": _week(w),
                            "opening_units": stock + 400,
                            "arrivals_units": 400,
                            "demand_p10": 320.0,
                            "demand_p50": 400.0,
                            "demand_p90": 480.0,
                            "stock_low": max(0.0, stock - 150),
                            "stock_p50": max(0.0, stock),
                            "stock_high": max(0.0, stock + 150),
                            "safety_units": 120.0,
                            "expected_lost_units": 25.0 if stock < 0 else 0.0,
                            "status": (
                                "stockout_risk"
                                if stock < 150
                                else ("below_safety" if stock < 300 else "ok")
                            ),
                        }
                    )
        _table(con, ALLOCATION, pd.DataFrame(allocation))
        _table(con, PROJECTION, pd.DataFrame(projection))
        _table(
            con,
            SUPPLY_TRANSFERS,
            pd.DataFrame(
                [
                    {
                        "kind": kind,
                        "sku_code": sku,
                        "from_warehouse": source,
                        "from_region": DCS.get(source),
                        "plant_code": plant,
                        "to_warehouse": to,
                        "to_region": DCS[to],
                        "units": 240,
                        "cases": 240 // SKUS[sku][1],
                        "distance_km": None if plant else 850.0,
                        "cost_yuan": 1200.0 + 100 * i,
                        "avoided_lost_units": 180.0,
                        "avoided_lost_yuan": 5400.0,
                        "arrive_by": _week(1),
                        "reason_zh": f"{to} 低于安全库存",
                        "reason_en": f"{to} falls below safety stock",
                    }
                    for i, (kind, sku, source, plant, to) in enumerate(TRANSFERS)
                ]
            ),
        )
        _table(
            con,
            NOTES,
            pd.DataFrame(
                {
                    "subject": ["DC-X"],
                    "reason_zh": ["DC-X 无补货提前期"],
                    "reason_en": ["DC-X has no lead time"],
                }
            ),
        )


@pytest.fixture(scope="module")
def hand_made(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("supply_rules") / "published.duckdb"
    write_supply_warehouse(path)
    return path


def _rows(wh: ScopedWarehouse, table: str) -> pd.DataFrame:
    return wh.query(f"select * from {table}")


def test_hq_sees_the_whole_plan(hand_made: Path) -> None:
    hq = ScopedWarehouse(hand_made, Scope("hq"))
    assert len(_rows(hq, PLAN)) == len(SKUS) * WEEKS
    assert set(_rows(hq, PROJECTION).warehouse_code) == set(DCS)
    assert len(_rows(hq, SUPPLY_TRANSFERS)) == len(TRANSFERS)
    assert len(_rows(hq, NOTES)) == 1


@pytest.mark.parametrize(
    ("region", "moves"),
    [
        # into its DC or out of it, never between two others
        ("华北", {("DC-E", "DC-N"), ("DC-N", "DC-S")}),
        ("华东", {("DC-E", "DC-N"), ("DC-E", "DC-S")}),
        ("华南", {("DC-N", "DC-S"), ("P1", "DC-S"), ("DC-E", "DC-S")}),
    ],
)
def test_a_region_sees_its_own_dc_and_the_production_that_feeds_it(
    hand_made: Path, region: str, moves: set[tuple[str, str]]
) -> None:
    wh = ScopedWarehouse(hand_made, Scope("region", region))
    own = {w for w, r in DCS.items() if r == region}
    for table in (ALLOCATION, PROJECTION):
        rows = _rows(wh, table)
        assert not rows.empty, table
        assert set(rows.region) == {region}, table
        assert set(rows.warehouse_code) == own, table
    transfers = _rows(wh, SUPPLY_TRANSFERS)
    seen = {
        (r.plant_code if r.kind == "rush_run" else r.from_warehouse, r.to_warehouse)
        for r in transfers.itertuples()
    }
    assert seen == moves
    # production is planned centrally: the whole plan and the plants' history, read-only
    assert len(_rows(wh, PLAN)) == len(SKUS) * WEEKS
    assert not _rows(wh, CAPACITY).empty
    # the plan's notes are HQ's to act on
    assert _rows(wh, NOTES).empty
    # its DC, not the others', in the warehouses it can look up
    assert set(_rows(wh, "marts.dim_warehouse").warehouse_code) == own


@pytest.mark.parametrize("scope", [Scope("distributor", "D1"), Scope("store", "S1")])
def test_distributors_and_stores_see_no_supply_data(hand_made: Path, scope: Scope) -> None:
    wh = ScopedWarehouse(hand_made, scope)
    for table in SUPPLY_TABLES:
        assert _rows(wh, table).empty, f"{scope}: {table}"


def test_the_page_on_the_hand_made_warehouse(
    hand_made: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """HQ sees every DC at risk and the notes; 华北's manager (the demo region user) sees
    no other DC's rows and no notes; the distributor gets a message and no data."""
    home = tmp_path / "home"
    (home / "warehouse").mkdir(parents=True)
    (home / "warehouse" / "published.duckdb").write_bytes(hand_made.read_bytes())
    monkeypatch.setenv("BCLAKE_HOME", str(home))
    at = signed_in(PAGE, "hq", "en")
    assert not at.exception, at.exception
    texts = _texts(at)
    risk = next(d.value for d in at.dataframe if "DC" in d.value.columns)
    assert set(risk["DC"]) == {"DC-N 华北", "DC-S 华南"}, "HQ sees every DC at risk"
    assert risk["DC"].iloc[0] == "DC-S 华南", "the most expected lost units first"
    picker = next(s for s in at.selectbox if s.label == "DC × SKU")
    assert str(picker.value).startswith("DC-S|"), "the projection opens on the riskiest DC"
    assert any("DC-X has no lead time" in s for s in texts), "HQ sees the notes"
    tiles = {m.label: m.value for m in at.metric}
    # weeks 3-5 of 13 bind; three transfers and one rush run; the plan's horizon in labels
    assert tiles["At capacity"] == "3 / 13" and tiles["Transfers / rush runs"] == "3 / 1"
    assert f"Planned units ({WEEKS} wk)" in tiles
    at = signed_in(PAGE, "huabei", "en")
    assert not at.exception, at.exception
    texts = _texts(at)
    assert not any("DC-X" in s for s in texts), "no notes for a region"
    # its own DC's projection only; other DCs appear only as the far end of a move
    picker = next(s for s in at.selectbox if s.label == "DC × SKU")
    assert picker.options and all(o.startswith("DC-N ") for o in picker.options)
    routes = [e.value for e in at.text if "→" in e.value]
    assert routes and all("DC-N" in r for r in routes), routes
    assert not any("DC-E 华东 → DC-S" in s for s in texts), "a move between two other DCs"
    risk = next(d.value for d in at.dataframe if "DC" in d.value.columns)
    assert set(risk["DC"]) == {"DC-N 华北"}, "its own DC at risk, no other"
    at = signed_in(PAGE, "d0004", "en")
    assert not at.exception, at.exception
    assert not at.dataframe and not at.metric
    assert any("HQ and the regions" in i.value for i in at.info)


def test_the_page_with_an_empty_plan(
    hand_made: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Supply tables with no rows (no SKU could be planned): every section says so."""
    home = tmp_path / "home"
    (home / "warehouse").mkdir(parents=True)
    path = home / "warehouse" / "published.duckdb"
    path.write_bytes(hand_made.read_bytes())
    with duckdb.connect(str(path)) as con:
        for table in SUPPLY_TABLES:
            con.execute(f"delete from {table}")
    monkeypatch.setenv("BCLAKE_HOME", str(home))
    for username in ("hq", "huabei"):
        at = signed_in(PAGE, username, "en")
        assert not at.exception, at.exception
        infos = {i.value for i in at.info}
        assert {"No production plan.", "No DC stock projection."} <= infos, infos


def _texts(at: AppTest) -> list[str]:
    """Every text on screen: tables' cells and headers, markdown, captions, titles,
    selectbox options."""
    out = [str(v) for d in at.dataframe for v in d.value.astype(str).to_numpy().ravel()]
    out += [str(c) for d in at.dataframe for c in d.value.columns]
    out += [e.value for e in (*at.markdown, *at.caption, *at.subheader, *at.info, *at.text)]
    out += [str(o) for s in at.selectbox for o in s.options]
    return out


# -- the page, on the tiny world -----------------------------------------------------


@pytest.mark.usefixtures("empty_home")
def test_the_page_without_a_published_warehouse() -> None:
    at = signed_in(PAGE, "hq")
    assert not at.exception
    assert any("还没有发布" in i.value for i in at.info)


def test_the_tiny_world_has_a_supply_plan(tiny_home: Path) -> None:
    """The page tests below mean something only if the world plans production and DCs."""
    with duckdb.connect(str(tiny_home / "warehouse" / "published.duckdb"), read_only=True) as con:
        for table in (PLAN, PROJECTION, CAPACITY):
            assert con.execute(f"select count(*) from {table}").fetchone()[0] > 0, table


@pytest.mark.parametrize("username", DEMO_USERS)
def test_the_page_renders_for_every_demo_user(
    tiny_home: Path, monkeypatch: pytest.MonkeyPatch, username: str
) -> None:
    monkeypatch.setenv("BCLAKE_HOME", str(tiny_home))
    for lang, title, capacity in (("zh", "供应计划", "产能与计划"), ("en", "Supply", "Capacity")):
        at = signed_in(PAGE, username, lang)
        assert not at.exception, f"{username}: {at.exception[0].value}"
        assert at.title[0].value == title
        subheaders = [s.value for s in at.subheader]
        if username in ("hq", "huabei"):
            assert any(s.startswith(capacity) for s in subheaders), subheaders
            assert at.metric, "the KPIs"
            picker = next(s for s in at.selectbox if s.label in ("区域仓 × 产品", "DC × SKU"))
            if username == "huabei":  # its own DC's projection only
                assert picker.options and all(" 华北 · " in o for o in picker.options)
        else:
            assert not at.dataframe and not at.metric and not subheaders, username


# -- in a real browser -------------------------------------------------------------


@pytest.fixture(scope="module")
def supply_url(tiny_home: Path) -> Iterator[str]:
    """`streamlit run` over the tiny world, with the demo users."""
    with serve({"BCLAKE_HOME": str(tiny_home)}, unset=("BCLAKE_USERS",)) as url:
        yield url


@pytest.mark.skipif(bool(NO_BROWSER), reason=NO_BROWSER or "chromium")
@pytest.mark.parametrize("user", DEMO_USERS)
def test_the_page_in_a_browser(browser, supply_url: str, shots: Path, user: str) -> None:
    """Desktop (screenshot 1280 px wide) and phone (390 px): it renders without an error,
    HQ and the region get the plan, the distributor and the store a message; nothing is
    wider than the phone."""

    def check(_page: object, body: str) -> None:
        if user in ("hq", "huabei"):
            assert "产能与计划" in body and "区域仓库存预测" in body, body[:800]
        else:
            assert "供应计划仅对总部和大区开放" in body and "产能与计划" not in body, body[:800]

    check_both_widths(browser, supply_url, user, "供应计划", shots, "supply", check, width=1280)
