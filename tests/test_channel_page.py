"""The channel-planning page (渠道优化) and its planner files: who sees which cities, outlets,
stores and distributors, the page for every demo user, the N slider, and the page in a
real browser at desktop and phone width.

The scoping rules are tested on a small hand-made warehouse (two regions, three
distributors, six cities); the page and the files on the tiny world's pipeline run.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pandas as pd
import polars as pl
import pytest
from browser_page import (
    NO_BROWSER,
    browser_fixture,  # noqa: F401 (the `browser` fixture)
    check_both_widths,
    shots_fixture,  # noqa: F401 (the `shots` fixture)
)
from streamlit_server import serve, signed_in

from bclake.dashboards.auth import Scope
from bclake.dashboards.data import (
    CHANNEL_CELLS,
    CHANNEL_INEFFICIENT,
    CHANNEL_NOTES,
    CHANNEL_PLAN,
    CHANNEL_SCORES,
    CHANNEL_WHITE_SPACE,
    ScopedWarehouse,
)
from bclake.exports.planner import (
    CHANNEL,
    OTHER_DISTRIBUTOR,
    mask_other_distributors,
    territory_keep,
)

PAGE = "views/channel_planning.py"
DEMO_USERS = ("hq", "huabei", "d0004", "s000006")
TABLES = (CHANNEL_SCORES, CHANNEL_INEFFICIENT, CHANNEL_WHITE_SPACE, CHANNEL_PLAN, CHANNEL_CELLS)

# -- the scoping rules, on a hand-made warehouse --------------------------------------

# store -> (distributor, region, province, city)
STORES = {
    "S1": ("D1", "华北", "河北", "石家庄"),
    "S2": ("D1", "华北", "河北", "保定"),
    "S3": ("D2", "华东", "浙江", "杭州"),
}
DISTRIBUTORS = {"D1": "华北", "D2": "华东", "D9": "华北"}
# adcode -> (city, province, region, nearest distributor, stores)
CITIES = {
    "130100": ("石家庄", "河北", "华北", "D1", 1),
    "130600": ("保定", "河北", "华北", "D9", 1),  # D1 has a store there: its territory
    "130200": ("唐山", "河北", "华北", "D1", 0),
    "140100": ("太原", "山西", "华北", "D9", 0),  # another distributor's, in D1's region
    "330100": ("杭州", "浙江", "华东", "D2", 1),
    "330500": ("湖州", "浙江", "华东", "D1", 0),  # nearest D1, across the border: HQ's call
}
PLAN = ("130200", "330500", "140100")  # outlets 1, 2, 3; N = 2 in the plan


def _table(con: duckdb.DuckDBPyConnection, name: str, frame: pd.DataFrame) -> None:
    con.register("hand_made", frame)
    con.execute(f"create table {name} as select * from hand_made")
    con.unregister("hand_made")


def write_channel_warehouse(path: Path) -> None:
    """A published warehouse with what the channel page's scoping rules read."""
    with duckdb.connect(str(path)) as con:
        for schema in ("marts", "ml"):
            con.execute(f"create schema {schema}")
        _table(
            con,
            "marts.fct_sales_region_sku_week",
            pd.DataFrame({"week_start": pd.to_datetime(["2025-01-06", "2025-06-30"]).date}),
        )
        _table(
            con,
            "marts.dim_store",
            pd.DataFrame(
                [
                    {
                        "store_code": s,
                        "store_name": f"店{s}",
                        "distributor_code": d,
                        "region": r,
                        "province": p,
                        "city": c,
                    }
                    for s, (d, r, p, c) in STORES.items()
                ]
            ),
        )
        _table(
            con,
            "marts.dim_distributor",
            pd.DataFrame([{"distributor_code": d, "region": r} for d, r in DISTRIBUTORS.items()]),
        )
        scores = [
            {"entity_type": "store", "code": s, "distributor_code": d, "region": r}
            for s, (d, r, _, _) in STORES.items()
        ] + [
            {"entity_type": "distributor", "code": d, "distributor_code": d, "region": r}
            for d, r in DISTRIBUTORS.items()
        ]
        _table(con, CHANNEL_SCORES, pd.DataFrame(scores))
        _table(con, CHANNEL_INEFFICIENT, pd.DataFrame(scores))
        white = pd.DataFrame(
            [
                {
                    "adcode": a,
                    "city": c,
                    "province": p,
                    "region": r,
                    "nearest_distributor_code": d,
                    "stores": n,
                }
                for a, (c, p, r, d, n) in CITIES.items()
            ]
        )
        _table(con, CHANNEL_WHITE_SPACE, white)
        plan = white.set_index("adcode").loc[list(PLAN)].reset_index()
        plan = plan.rename(columns={"nearest_distributor_code": "serving_distributor_code"})
        plan["outlet"] = range(1, len(plan) + 1)
        plan["in_plan"] = plan.outlet <= 2
        _table(con, CHANNEL_PLAN, plan)
        cells = [{"kind": "city", "cell": f"c{a}", "adcode": a} for a in CITIES]
        cells += [{"kind": "store", "cell": "s1", "adcode": "130100"}]
        _table(con, CHANNEL_CELLS, pd.DataFrame(cells))
        _table(
            con,
            CHANNEL_NOTES,
            pd.DataFrame({"subject": ["store S1"], "issue": ["no_coordinates"]}),
        )


@pytest.fixture(scope="module")
def hand_made(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("channel_rules") / "published.duckdb"
    write_channel_warehouse(path)
    return path


def _seen(path: Path, scope: Scope) -> dict[str, set[str]]:
    wh = ScopedWarehouse(path, scope)
    return {
        "scores": set(wh.query(f"select code from {CHANNEL_SCORES}").code),
        "inefficient": set(wh.query(f"select code from {CHANNEL_INEFFICIENT}").code),
        "white": set(wh.query(f"select city from {CHANNEL_WHITE_SPACE}").city),
        "plan": set(wh.query(f"select city from {CHANNEL_PLAN}").city),
        "cells": set(wh.query(f"select cell from {CHANNEL_CELLS}").cell),
        "notes": set(wh.query(f"select subject from {CHANNEL_NOTES}").subject),
    }


def test_hq_sees_the_whole_channel_plan(hand_made: Path) -> None:
    seen = _seen(hand_made, Scope("hq"))
    assert seen["scores"] == set(STORES) | set(DISTRIBUTORS)
    assert len(seen["white"]) == len(CITIES) and len(seen["plan"]) == len(PLAN)
    assert len(seen["cells"]) == len(CITIES) + 1 and seen["notes"] == {"store S1"}


def test_a_region_sees_its_cities_stores_and_distributors(hand_made: Path) -> None:
    seen = _seen(hand_made, Scope("region", "华北"))
    assert seen["scores"] == seen["inefficient"] == {"S1", "S2", "D1", "D9"}
    assert seen["white"] == {"石家庄", "保定", "唐山", "太原"}
    assert seen["plan"] == {"唐山", "太原"}, "the brand's outlets in its region, none else"
    assert seen["cells"] == {"c130100", "c130600", "c130200", "c140100"}, "no store cells"
    assert not seen["notes"], "the geography notes are HQ's"


def test_a_distributor_sees_its_territory_and_its_own_stores(hand_made: Path) -> None:
    seen = _seen(hand_made, Scope("distributor", "D1"))
    assert seen["scores"] == seen["inefficient"] == {"S1", "S2", "D1"}
    # the cities of its region it would serve (石家庄, 唐山) and its stores' (保定); not 太原,
    # which D9 would serve and where it has no store, nor 湖州 of another region
    assert seen["white"] == {"石家庄", "保定", "唐山"}
    assert seen["plan"] == {"唐山"}
    assert seen["cells"] == {"c130100", "c130600", "c130200"}
    assert not seen["notes"]


def test_a_store_sees_no_channel_plan(hand_made: Path) -> None:
    wh = ScopedWarehouse(hand_made, Scope("store", "S1"))
    for table in (*TABLES, CHANNEL_NOTES):
        assert wh.query(f"select * from {table}").empty, table


def test_the_planner_files_cut_a_territory_as_the_page_does(hand_made: Path) -> None:
    """`territory_keep` (the distributor folders' files) keeps what `channel_filter` (the
    page) shows the same distributor."""
    with duckdb.connect(str(hand_made), read_only=True) as con:
        white = con.sql(f"select * from {CHANNEL_WHITE_SPACE}").pl()
        plan = con.sql(f"select * from {CHANNEL_PLAN}").pl()
        scores = con.sql(f"select * from {CHANNEL_SCORES}").pl()
    for code in DISTRIBUTORS:
        cities = {(p, c) for d, _, p, c in STORES.values() if d == code}
        keep = territory_keep(code, DISTRIBUTORS[code], cities)
        seen = _seen(hand_made, Scope("distributor", code))
        assert set(keep(white)["city"]) == seen["white"], code
        assert set(keep(plan)["city"]) == seen["plan"], code
        assert set(keep(scores)["code"]) == seen["scores"], code
        # another distributor is never named to this one
        named = set(keep(white)["nearest_distributor_code"]) | set(
            keep(plan)["serving_distributor_code"]
        )
        assert named <= {code, OTHER_DISTRIBUTOR}, (code, named)
    d1_white = territory_keep("D1", "华北", {("河北", "石家庄"), ("河北", "保定")})(white)
    assert d1_white.filter(pl.col("city") == "保定")["nearest_distributor_code"].to_list() == [
        OTHER_DISTRIBUTOR
    ], "保定 is D9's to serve: D1 reads 'another distributor'"


def test_a_store_move_names_no_other_distributor_to_its_own() -> None:
    frame = pl.DataFrame(
        {
            "code": ["S1", "S2"],
            "move_to_distributor": ["D0005", None],
            "reason_zh": ["建议改由 D0005 配送", "降低拜访频率"],
            "reason_en": ["move to D0005", "lower visit frequency"],
        }
    )
    masked = mask_other_distributors(frame, "D0004")
    assert masked["move_to_distributor"].to_list() == [OTHER_DISTRIBUTOR, None]
    assert masked["reason_zh"].to_list() == ["建议改由 其他经销商 配送", "降低拜访频率"]
    assert masked["reason_en"].to_list() == ["move to another distributor", "lower visit frequency"]


# -- the page and the files, on the tiny world ----------------------------------------


def test_the_tiny_world_has_a_channel_plan_and_files(tiny_home: Path) -> None:
    """The page tests below mean something only if the world has a plan; the files hold
    each folder's rows only, and the company's plan N outlets."""
    with duckdb.connect(str(tiny_home / "warehouse" / "published.duckdb"), read_only=True) as con:
        for table in (CHANNEL_SCORES, CHANNEL_WHITE_SPACE, CHANNEL_PLAN):
            assert con.execute(f"select count(*) from {table}").fetchone()[0] > 0, table
        planned = con.execute(f"select count(*) from {CHANNEL_PLAN} where in_plan").fetchone()
    exports = tiny_home / "exports"
    company = exports / "company"
    assert (company / CHANNEL.name).exists()
    assert pl.read_parquet(company / "coverage_plan.parquet").height == planned[0]
    region = pl.read_parquet(exports / "region" / "华北" / "white_space.parquet")
    assert region.height and set(region["region"]) == {"华北"}
    inefficient = pl.read_parquet(exports / "region" / "华北" / "inefficient.parquet")
    assert set(inefficient["region"]) <= {"华北"}
    own = pl.read_parquet(exports / "distributor" / "D0004" / "inefficient.parquet")
    assert set(own["distributor_code"]) <= {"D0004"}


@pytest.mark.parametrize("username", DEMO_USERS)
def test_the_page_renders_for_every_demo_user(
    tiny_home: Path, monkeypatch: pytest.MonkeyPatch, username: str
) -> None:
    monkeypatch.setenv("BCLAKE_HOME", str(tiny_home))
    for lang, title, ranking in (
        ("zh", "渠道优化", "空白市场排名"),
        ("en", "Channel planning", "White space ranking"),
    ):
        at = signed_in(PAGE, username, lang)
        assert not at.exception, f"{username}: {at.exception[0].value}"
        assert at.title[0].value == title
        subheaders = [s.value for s in at.subheader]
        if username == "s000006":
            assert not at.dataframe and not at.metric and not subheaders
            assert at.info, "a store is told why it sees nothing"
            continue
        assert ranking in subheaders and at.metric, subheaders
        ranked = next(
            d.value for d in at.dataframe if ("排名" if lang == "zh" else "Rank") in d.value
        )
        if username == "huabei":
            provinces = set(ranked["省份" if lang == "zh" else "Province"])
            assert provinces and "广东" not in provinces, provinces
        if username == "d0004":  # no other distributor named anywhere on the page
            cells = {str(v) for d in at.dataframe for v in d.value.to_numpy().ravel()}
            codes = {c for v in cells for c in re.findall(r"D\d{4}", v)}
            assert codes <= {"D0004"}, codes


def test_the_slider_cuts_the_plan(tiny_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """HQ's plan table holds the first N outlets of the laid-out plan for any N."""
    monkeypatch.setenv("BCLAKE_HOME", str(tiny_home))
    at = signed_in(PAGE, "hq", "en")
    slider = next(s for s in at.slider if s.label.startswith("New outlets N"))
    for n in (1, 3):
        at = slider.set_value(n).run()
        assert not at.exception
        plan = next(d.value for d in at.dataframe if "Outlet" in d.value)
        assert plan["Outlet"].tolist() == list(range(1, n + 1))
        assert f"Plan for N = {n} new outlets" in [s.value for s in at.subheader]
        slider = next(s for s in at.slider if s.label.startswith("New outlets N"))


# -- in a real browser -------------------------------------------------------------


@pytest.fixture(scope="module")
def channel_url(tiny_home: Path) -> Iterator[str]:
    """`streamlit run` over the tiny world, with the demo users."""
    with serve({"BCLAKE_HOME": str(tiny_home)}, unset=("BCLAKE_USERS",)) as url:
        yield url


@pytest.mark.skipif(bool(NO_BROWSER), reason=NO_BROWSER or "chromium")
@pytest.mark.parametrize("user", DEMO_USERS)
def test_the_page_in_a_browser(browser, channel_url: str, shots: Path, user: str) -> None:
    """Desktop (1400 px) and phone (390 px): it renders without an error; HQ, the region
    and the distributor get the map, the ranking and the inefficient list, the store a
    message; nothing is wider than the phone."""

    def check(page: object, body: str) -> None:
        if user == "s000006":
            assert "渠道优化面向总部、大区和经销商" in body and "空白市场排名" not in body
            return
        assert "空白市场地图" in body and "空白市场排名" in body, body[:800]
        assert "低效门店与经销商" in body, body[:800]
        assert page.locator(".vega-embed").count() >= 1, "the map and charts are drawn"

    check_both_widths(browser, channel_url, user, "渠道优化", shots, "channel_planning", check)
