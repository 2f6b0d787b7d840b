"""Market order control: each signal on hand-made scans, alerts, the review loop over runs.

The scans are added to a copy of the tiny world as ordinary landing files, so they
go through ingest (and its quarantine) like any export. One distributor's goods:
a diversion into a far province, a traveller, a border city, impossible travel, a
consumer scanning twice, a forged code, a scan before its case's activation, a scan
with no position, and an activation file that arrives after its scans.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from pathlib import Path

import duckdb
import numpy as np
import polars as pl
import pytest
from dbt_run import copy_home, dbt

from bclake.core.codes import code_body, make_codes
from bclake.core.contracts import load_contracts
from bclake.core.settings import DBT_PROJECT_DIR, Settings
from bclake.ingest.loader import ingest_table

SKU = "SKU0001"
BASE = 9_000_000_000  # serials far above anything the world activated
MONDAY = datetime(2025, 6, 2)
FAR = (39.9042, 116.4074)  # Beijing city seat
TRIPS = (
    (31.2304, 121.4737),
    (30.5728, 104.0668),
    (23.1291, 113.2644),
)  # Shanghai, Chengdu, Guangzhou
MARKET_ORDER_MODELS = (
    "int_scan_journeys",
    "int_code_repeat_scans",
    "path:models/marts/market_order",
)


def _code(serial: int, forged: bool = False) -> str:
    code = make_codes(np.array([code_body(np.array([0]), np.array([serial]))[0]]))[0]
    if forged:
        return code[:13] + f"{(int(code[13:]) + 1) % 100000:05d}"
    return code


def _km(a: tuple[float, float], b: tuple[float, float]) -> float:
    p1, p2 = math.radians(a[0]), math.radians(b[0])
    h = (
        math.sin((p2 - p1) / 2) ** 2
        + math.cos(p1) * math.cos(p2) * math.sin(math.radians(b[1] - a[1]) / 2) ** 2
    )
    return 2 * 6371.0 * math.asin(math.sqrt(h))


def _setting(settings: Settings) -> tuple[str, tuple[float, float], tuple[float, float]]:
    """A distributor far from Beijing with a store near another province's city.

    Returns (distributor, one of its stores, that neighbouring city).
    """
    cities = pl.read_csv(DBT_PROJECT_DIR / "seeds/geo_cities.csv", schema_overrides={"adcode": str})
    with duckdb.connect(str(settings.published_db), read_only=True) as con:
        stores = con.sql(
            "select s.distributor_code, d.province, s.lat, s.lon from marts.dim_store s "
            "join marts.dim_distributor d using (distributor_code) order by s.store_code"
        ).pl()
    for dist, prov, lat, lon in stores.iter_rows():
        if _km((lat, lon), FAR) < 1000:
            continue
        others = cities.filter(pl.col("province") != prov)
        for c_lat, c_lon in others.select("lat", "lon").iter_rows():
            if _km((lat, lon), (c_lat, c_lon)) < 100:
                return dist, (lat, lon), (c_lat, c_lon)
    pytest.skip("no store of the tiny world lies near a province border")


def _scan_rows(dist_store: tuple[float, float], border: tuple[float, float]) -> list[dict]:
    rows: list[dict] = []

    def add(serial: int, when: datetime, where: tuple | None, consumer: int, forged=False):
        rows.append(
            {
                "scan_id": f"SCX{len(rows) + 1:08d}",
                "code": _code(serial, forged),
                "sku_code": SKU,
                "batch_no": "B2505",
                "scan_time": when.strftime("%Y-%m-%d %H:%M:%S"),
                "lat": "" if where is None else f"{where[0]:.5f}",
                "lon": "" if where is None else f"{where[1]:.5f}",
                "consumer_id": f"C9{consumer:08d}",
                "reward": "0.0",
            }
        )

    for i in range(10):  # diversion: 10 units, 8 consumers, 1,900 km from home, one week
        add(BASE + i, MONDAY + timedelta(hours=10 + 9 * i), (FAR[0] + 0.01 * i, FAR[1]), i % 8)
    trip = next(c for c in TRIPS if _km(c, dist_store) > 500)
    add(BASE + 20, MONDAY + timedelta(days=1), trip, 20)  # a traveller
    for i in range(5):  # a border city next to one of the distributor's stores
        add(BASE + 30 + i, MONDAY + timedelta(days=2, hours=i), border, 30 + i)
    add(BASE + 40, MONDAY + timedelta(days=1, hours=10), dist_store, 40)  # impossible travel:
    add(BASE + 40, MONDAY + timedelta(days=1, hours=11), FAR, 41)  # 1,900 km in an hour
    add(BASE + 50, MONDAY + timedelta(days=3, hours=9), dist_store, 50)  # scanned twice by
    add(BASE + 50, MONDAY + timedelta(days=3, hours=10), dist_store, 50)  # the same consumer
    add(BASE + 60, MONDAY + timedelta(days=1), dist_store, 60, forged=True)  # never issued
    add(BASE + 150, MONDAY + timedelta(days=1), dist_store, 70)  # before its activation
    add(BASE + 80, MONDAY + timedelta(days=1), None, 80)  # no position
    add(BASE + 300, MONDAY + timedelta(days=1), dist_store, 90)  # its case arrives a run later
    return rows


def _cases(dist: str, *ranges: tuple[int, int, datetime]) -> pl.DataFrame:
    return pl.DataFrame(
        [
            {
                "case_code": f"X000{first:010d}"[-14:],
                "sku_code": SKU,
                "first_serial": first % 10**10,
                "last_serial": last % 10**10,
                "distributor_code": dist,
                "warehouse_code": "DC01",
                "activation_time": when.strftime("%Y-%m-%d %H:%M:%S"),
            }
            for first, last, when in ranges
        ]
    )


def _land(settings: Settings, table: str, name: str, frame: pl.DataFrame) -> None:
    contract = load_contracts()[table]
    folder = settings.landing / contract.system / contract.table
    folder.mkdir(parents=True, exist_ok=True)
    frame.write_csv(folder / name)
    ingest_table(contract, settings)


def _build(settings: Settings, tmp_path: Path) -> pl.DataFrame:
    # staging views hold the lake path they were built with: rebuild everything upstream
    # in the copy, then build (models and tests) what market order control owns
    upstream = dbt(settings, tmp_path, "run", "--select", "+path:models/marts/market_order")
    assert upstream.returncode == 0, upstream.stdout[-3000:]
    run = dbt(settings, tmp_path, "build", "--select", *MARKET_ORDER_MODELS)
    assert run.returncode == 0, run.stdout[-3000:]
    with duckdb.connect(str(settings.build_db), read_only=True) as con:
        return con.sql("select * from marts.fct_market_order_alerts").pl()


def _journeys(settings: Settings) -> pl.DataFrame:
    with duckdb.connect(str(settings.build_db), read_only=True) as con:
        return con.sql(
            "select * from intermediate.int_scan_journeys where scan_id like 'SCX%'"
        ).pl()


@pytest.fixture(scope="module")
def world(tiny_home: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    tmp = tmp_path_factory.mktemp("market_order")
    settings = copy_home(tiny_home, tmp / "home")
    dist, store, border = _setting(settings)
    week = MONDAY - timedelta(days=20)
    _land(
        settings,
        "code.case_activations",
        "handmade_cases.csv",
        _cases(
            dist, (BASE, BASE + 99, week), (BASE + 100, BASE + 199, MONDAY + timedelta(days=20))
        ),
    )
    _land(
        settings,
        "code.product_scans",
        "handmade_scans.csv",
        pl.DataFrame(_scan_rows(store, border)),
    )
    alerts = _build(settings, tmp)
    return {"settings": settings, "tmp": tmp, "dist": dist, "store": store, "alerts": alerts}


def _mine(world: dict) -> pl.DataFrame:
    return world["alerts"].filter(pl.col("week_start") == MONDAY.date(), pl.col("sku_code") == SKU)


def test_a_wide_flow_out_of_territory_is_a_diversion_alert(world: dict) -> None:
    diversion = _mine(world).filter(pl.col("kind") == "diversion")
    assert diversion.height == 1
    row = diversion.row(0, named=True)
    assert row["distributor_code"] == world["dist"]
    assert row["destination_provinces"] == "北京"
    assert (row["scans"], row["consumers"], row["codes"]) == (10, 8, 10)
    assert row["km_from_territory"] > 1000 and row["status"] == "open"
    assert row["case_codes"] == f"X000{BASE:010d}"[-14:]
    assert world["dist"] in row["reason_zh"] and "北京" in row["reason_zh"]
    assert 0 < row["score"] <= 1 and row["estimated_units"] >= 10


def test_travellers_border_cities_and_repeat_scans_raise_nothing(world: dict) -> None:
    j = _journeys(world["settings"])
    serial = j["product_code"].str.slice(3, 10).cast(pl.Int64)
    j = j.with_columns(serial=serial)
    border = j.filter(pl.col("serial").is_between(BASE + 30, BASE + 34))
    assert border["km_to_territory"].max() < 150 and not border["out_of_territory"].any()
    assert (border["scan_province"] != border["distributor_province"]).all()
    traveller = j.filter(pl.col("serial") == BASE + 20)
    assert traveller["out_of_territory"].all()  # out of territory, yet alone: no alert
    provinces = set(_mine(world).filter(pl.col("kind") == "diversion")["destination_provinces"])
    assert provinces == {"北京"}
    cloned = _mine(world).filter(pl.col("kind") == "cloned_code")
    with duckdb.connect(str(world["settings"].build_db), read_only=True) as con:
        repeat = con.execute(
            "select is_cloned from intermediate.int_code_repeat_scans where product_code = ?",
            [_code(BASE + 50)],
        ).fetchone()
    assert repeat == (False,)
    assert cloned["codes"].sum() == 1


def test_impossible_travel_is_a_cloned_code(world: dict) -> None:
    with duckdb.connect(str(world["settings"].build_db), read_only=True) as con:
        scans, consumers, kmh, cloned = con.execute(
            "select scans, consumers, max_kmh, is_cloned from intermediate.int_code_repeat_scans "
            "where product_code = ?",
            [_code(BASE + 40)],
        ).fetchone()
    assert (scans, consumers, cloned) == (2, 2, True) and kmh > 1000
    alert = _mine(world).filter(pl.col("kind") == "cloned_code").row(0, named=True)
    assert alert["distributor_code"] == world["dist"] and alert["scans"] == 2


def test_a_code_failing_its_keyed_check_is_forged(world: dict) -> None:
    j = _journeys(world["settings"])
    forged = j.filter(pl.col("product_code") == _code(BASE + 60, forged=True))
    assert forged["signature_ok"].to_list() == [False]
    assert j.filter(pl.col("product_code") != _code(BASE + 60, forged=True))["signature_ok"].all()
    alert = _mine(world).filter(pl.col("kind") == "forged_code")
    assert alert.height == 1 and alert["distributor_code"].to_list() == [None]
    assert "校验失败" in alert["reason_zh"][0]


def test_scans_before_activation_without_position_or_case_are_kept_and_flagged(
    world: dict,
) -> None:
    j = _journeys(world["settings"]).with_columns(
        serial=pl.col("product_code").str.slice(3, 10).cast(pl.Int64)
    )
    assert j.height == 24  # every hand-made scan loaded
    assert j.filter(pl.col("serial") == BASE + 150)["before_activation"].to_list() == [True]
    no_position = j.filter(pl.col("serial") == BASE + 80)
    assert no_position["lat"].is_null().all() and not no_position["out_of_territory"].any()
    late = j.filter(pl.col("serial") == BASE + 300)
    assert late["code_known"].to_list() == [False] and late["signature_ok"].to_list() == [True]


def test_positions_outside_china_and_malformed_codes_are_quarantined_with_a_reason(
    world: dict,
) -> None:
    settings = world["settings"]
    rows = _scan_rows(world["store"], world["store"])[:2]
    rows[0] |= {"scan_id": "SCY00000001", "lat": "-33.86", "lon": "151.2"}
    rows[1] |= {"scan_id": "SCY00000002", "code": "ABC123"}
    _land(settings, "code.product_scans", "bad_scans.csv", pl.DataFrame(rows))
    q = pl.read_parquet(settings.lake / "_quarantine" / "code" / "product_scans" / "*.parquet")
    mine = q.filter(pl.col("_source_file").str.contains("bad_scans")).sort("_source_row")
    assert mine["reason"].to_list() == ["out_of_range", "bad_id"]
    assert all("bad_scans.csv" in m for m in mine["message"])


def test_reviews_follow_alerts_across_runs_and_new_evidence_reopens(world: dict) -> None:
    settings, tmp = world["settings"], world["tmp"]
    alert = _mine(world).filter(pl.col("kind") == "diversion").row(0, named=True)
    decision = pl.DataFrame(
        [
            {
                "decision_id": "RV20250610120000abc123",
                "alert_id": alert["alert_id"],
                "decision": "dismissed",
                "reason": "调货经总部批准 approved transfer",
                "penalty_amount": "",
                "decided_by": "hq",
                "decided_at": "2025-06-10 12:00:00",
                "evidence_scans": str(alert["scans"]),
            }
        ]
    )
    _land(settings, "review.alert_decisions", "decisions_1.csv", decision)
    # the late activation file arrives in the same run
    late = _cases(world["dist"], (BASE + 300, BASE + 311, MONDAY - timedelta(days=5)))
    _land(settings, "code.case_activations", "late_cases.csv", late)
    second = _build(settings, tmp / "run2")
    again = second.filter(pl.col("alert_id") == alert["alert_id"]).row(0, named=True)
    assert again["status"] == "dismissed" and again["decided_by"] == "hq"
    assert again["scans_at_decision"] == again["scans"] == alert["scans"]
    j = _journeys(settings)
    assert j.filter(pl.col("product_code") == _code(BASE + 300))["code_known"].to_list() == [True]
    # two more units of the same flow that week: the evidence grew, so it comes back
    more = pl.DataFrame(_scan_rows(world["store"], world["store"])[:2]).with_columns(
        scan_id=pl.Series(["SCX90000001", "SCX90000002"]),
        code=pl.Series([_code(BASE + 97), _code(BASE + 98)]),
        consumer_id=pl.Series(["C900000097", "C900000098"]),
    )
    _land(settings, "code.product_scans", "more_scans.csv", more)
    third = _build(settings, tmp / "run3")
    reopened = third.filter(pl.col("alert_id") == alert["alert_id"]).row(0, named=True)
    assert reopened["status"] == "reopened" and reopened["scans"] == alert["scans"] + 2
    assert "dismissed" in reopened["decision_history"]
