"""The supply plan: the production programme on hand-made cases with known optima, fair
share under shortage, transfers and rush runs that must fire, inputs it cannot use, the
planning file's errors and the tables the tiny world builds."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import duckdb
import numpy as np
import polars as pl
import pytest

from bclake.core.supply import SupplyConfig, SupplyConfigError, load_supply
from bclake.ml.supply import SupplyInputs, SupplyPlanError, fair_share, plan_supply

AS_OF = date(2025, 7, 14)  # a Monday
WEEKS = 13


def _config(**overrides: object) -> SupplyConfig:
    base = {"version": 1, "changeover_cost": 0.0, "default_lead_days": 3}
    return SupplyConfig.model_validate({**base, **overrides})


def _forecast(region: str, sku: str, p50: float, spread: float = 0.0) -> list[dict]:
    return [
        {
            "region": region,
            "sku_code": sku,
            "week_start": AS_OF + timedelta(weeks=w),
            "p10": p50 - spread,
            "p50": p50,
            "p90": p50 + spread,
        }
        for w in range(WEEKS)
    ]


DCS = pl.DataFrame({"warehouse_code": ["DC01", "DC02"], "region": ["华东", "华南"]})
SHANGHAI_GUANGZHOU_KM = 1213.0
DISTANCES = pl.DataFrame(
    {
        "from_warehouse": ["DC01", "DC02"],
        "to_warehouse": ["DC02", "DC01"],
        "distance_km": [SHANGHAI_GUANGZHOU_KM] * 2,
    }
)


def _inputs(
    forecast: list[dict],
    products: dict[str, tuple[str, float]],
    capacity: dict[tuple[str, str], int],
    stock: dict[tuple[str, str], int] | None = None,
    plants: dict[str, str] | None = None,
    last: dict[str, int] | None = None,
    dcs: pl.DataFrame = DCS,
) -> SupplyInputs:
    """products: sku -> (category, list price); case pack 1 throughout."""
    plants = plants if plants is not None else dict.fromkeys(products, "P01")
    stock = stock or {}
    return SupplyInputs(
        forecast=pl.DataFrame(forecast),
        dcs=dcs,
        stock=pl.DataFrame(
            [
                {"warehouse_code": w, "sku_code": k, "on_hand_units": u}
                for (w, k), u in stock.items()
            ],
            schema={"warehouse_code": pl.String, "sku_code": pl.String, "on_hand_units": pl.Int64},
        ),
        products=pl.DataFrame(
            [
                {"sku_code": k, "category": c, "case_pack": 1, "list_price": p}
                for k, (c, p) in products.items()
            ]
        ),
        sku_plants=pl.DataFrame(
            [{"sku_code": k, "plant_code": p} for k, p in plants.items()],
            schema={"sku_code": pl.String, "plant_code": pl.String},
        ),
        capacity=pl.DataFrame(
            [
                {"plant_code": p, "category": c, "capacity_units": u}
                for (p, c), u in capacity.items()
            ],
            schema={"plant_code": pl.String, "category": pl.String, "capacity_units": pl.Int64},
        ),
        last_output=pl.DataFrame(
            [{"sku_code": k, "output_units": u} for k, u in (last or {}).items()],
            schema={"sku_code": pl.String, "output_units": pl.Int64},
        ),
        distances=DISTANCES,
    )


def _units(plan_frame: pl.DataFrame, sku: str) -> list[int]:
    return plan_frame.filter(pl.col("sku_code") == sku).sort("week")["planned_units"].to_list()


def test_ample_capacity_makes_exactly_the_demand() -> None:
    """Certain demand of 100 a week at one DC, no stock: the optimum makes 100 every week,
    loses nothing and holds nothing."""
    plan = plan_supply(
        _inputs(_forecast("华东", "A", 100), {"A": ("饮料", 10.0)}, {("P01", "饮料"): 500}),
        _config(),
        AS_OF,
    )
    assert _units(plan.production, "A") == [100] * WEEKS
    assert set(plan.production["binding"]) == {"demand"}
    east = plan.projection.filter(pl.col("warehouse_code") == "DC01")
    assert east["expected_lost_units"].sum() == 0
    assert east["stock_p50"].max() == 0
    assert plan.transfers.is_empty()


def test_capacity_binds_with_its_shadow_price() -> None:
    """Capacity 60 against demand 100: make 60 a week; one more unit of capacity saves one
    lost sale, worth lost_sale_cost x list price (0.5 x 10 = 5 yuan)."""
    plan = plan_supply(
        _inputs(_forecast("华东", "A", 100), {"A": ("饮料", 10.0)}, {("P01", "饮料"): 60}),
        _config(),
        AS_OF,
    )
    prod = plan.production
    assert _units(prod, "A") == [60] * WEEKS
    assert set(prod["binding"]) == {"capacity"}
    assert prod["capacity_shadow_yuan"].to_list() == pytest.approx([5.0] * WEEKS, abs=1e-6)
    assert prod["expected_lost_units"].to_list() == pytest.approx([40.0] * WEEKS)
    assert "P01" in prod["reason_en"][0] and "产能" in prod["reason_zh"][0]


def test_scarce_capacity_goes_to_the_dearer_lost_sale() -> None:
    """Two SKUs of one category share 100 units a week, each wants 80: the one whose lost
    sale costs more (price 10 vs 5) gets its 80, the other the remaining 20."""
    plan = plan_supply(
        _inputs(
            _forecast("华东", "A", 80) + _forecast("华东", "B", 80),
            {"A": ("饮料", 10.0), "B": ("饮料", 5.0)},
            {("P01", "饮料"): 100},
        ),
        _config(),
        AS_OF,
    )
    assert _units(plan.production, "A") == [80] * WEEKS
    assert _units(plan.production, "B") == [20] * WEEKS


def test_stock_on_hand_is_used_before_making_more() -> None:
    """1,000 units in stock against 100 a week: nothing is made for the first ten weeks."""
    plan = plan_supply(
        _inputs(
            _forecast("华东", "A", 100),
            {"A": ("饮料", 10.0)},
            {("P01", "饮料"): 500},
            stock={("DC01", "A"): 1000},
        ),
        _config(),
        AS_OF,
    )
    units = _units(plan.production, "A")
    assert units[:10] == [0] * 10 and units[10:] == [100] * 3
    first = plan.production.filter(pl.col("week") == 1).row(0, named=True)
    assert first["binding"] == "stock"


def test_uncertain_demand_is_covered_above_the_median_when_lost_sales_cost_more() -> None:
    """With P10/P50/P90 of 50/100/150 and a lost sale worth 100x a week's holding, the
    programme keeps stock for the P90 path: more than the P50 over the horizon."""
    plan = plan_supply(
        _inputs(_forecast("华东", "A", 100, 50), {"A": ("饮料", 10.0)}, {("P01", "饮料"): 1000}),
        _config(),
        AS_OF,
    )
    assert sum(_units(plan.production, "A")) > 100 * WEEKS


def test_fair_share_equalises_cover_when_supply_is_short() -> None:
    """100 units for two DCs needing 100 each, one already holding 50: equal cover 0.75 ->
    75 and 25."""
    split = fair_share(100, np.array([0.0, 50.0]), np.array([100.0, 100.0]), 1)
    assert split.tolist() == [75.0, 25.0]
    # whole cases, all of them handed out
    split = fair_share(100, np.array([0.0, 0.0, 0.0]), np.array([10.0, 10.0, 10.0]), 12)
    assert split.sum() == 96 and (split % 12 == 0).all() and split.max() - split.min() <= 12
    assert fair_share(5, np.array([0.0]), np.array([10.0]), 12).tolist() == [0.0]


def test_allocation_under_shortage_gives_both_dcs_the_same_cover() -> None:
    plan = plan_supply(
        _inputs(
            _forecast("华东", "A", 100) + _forecast("华南", "A", 100),
            {"A": ("饮料", 10.0)},
            {("P01", "饮料"): 100},
        ),
        _config(),
        AS_OF,
    )
    week1 = plan.allocation.filter(pl.col("week_start") == AS_OF)
    assert week1["allocated_units"].to_list() == [50, 50]
    assert week1["short"].all() and "fair share" in week1["reason_en"][0]


def test_a_transfer_fires_from_the_dc_with_spare_stock() -> None:
    """DC02 holds 2,000 units and sells 10 a week; DC01 holds none and sells 100 a week;
    the plant has no capacity. DC01 gets stock from DC02 (1,200 km) rather than a rush run."""
    plan = plan_supply(
        _inputs(
            _forecast("华东", "A", 100, 20) + _forecast("华南", "A", 10, 2),
            {"A": ("饮料", 20.0)},
            {("P01", "饮料"): 0},
            stock={("DC02", "A"): 2000},
        ),
        _config(),
        AS_OF,
    )
    moves = plan.transfers
    assert moves["kind"].to_list() == ["transfer"]
    move = moves.row(0, named=True)
    assert (move["from_warehouse"], move["to_warehouse"]) == ("DC02", "DC01")
    assert move["units"] >= 200  # two weeks of P50 demand and safety stock
    # per case-km plus the fixed charge of config/supply.yaml's defaults
    assert move["cost_yuan"] == pytest.approx(
        move["cases"] * SHANGHAI_GUANGZHOU_KM * 0.004 + 300, abs=0.01
    )
    assert move["avoided_lost_yuan"] > move["cost_yuan"]
    assert set(plan.production["binding"]) == {"no_capacity"}
    # without a distance for the pair the move cannot be costed: a rush run instead
    far = plan_supply(
        SupplyInputs(
            **{
                **_inputs(
                    _forecast("华东", "A", 100, 20) + _forecast("华南", "A", 10, 2),
                    {"A": ("饮料", 20.0)},
                    {("P01", "饮料"): 0},
                    stock={("DC02", "A"): 2000},
                ).__dict__,
                "distances": DISTANCES.clear(),
            }
        ),
        _config(),
        AS_OF,
    )
    assert far.transfers["kind"].to_list() == ["rush_run"]


def test_a_rush_run_fires_when_no_dc_can_spare_stock() -> None:
    plan = plan_supply(
        _inputs(_forecast("华东", "A", 100, 20), {"A": ("饮料", 20.0)}, {("P01", "饮料"): 0}),
        _config(),
        AS_OF,
    )
    rush = plan.transfers.filter(pl.col("kind") == "rush_run")
    assert rush.height == 1 and rush["to_warehouse"][0] == "DC01"
    assert "co-packer" in rush["reason_en"][0]  # no headroom at a plant with no capacity


def test_inputs_it_cannot_use_are_named_not_dropped() -> None:
    dcs = DCS.vstack(pl.DataFrame({"warehouse_code": ["DC09"], "region": ["西北"]}))
    config = _config(
        default_lead_days=None, dcs=[{"id": "DC01", "lead_days": 3}, {"id": "DC02", "lead_days": 3}]
    )
    plan = plan_supply(
        _inputs(
            _forecast("华东", "A", 10) + _forecast("华东", "B", 10) + _forecast("华北", "A", 5),
            {"A": ("饮料", 10.0), "B": ("零食", 0.0)},
            {("P01", "饮料"): 100},
            stock={("DC01", "A"): -7},
            plants={"A": "P01"},
            dcs=dcs,
        ),
        config,
        AS_OF,
    )
    notes = " | ".join(plan.notes["reason_en"])
    assert "DC09 has no lead time" in notes
    assert "region 华北 has a forecast but no DC" in notes
    assert "negative stock (-7)" in notes
    assert "B has no list price" in notes
    b = plan.production.filter(pl.col("sku_code") == "B")
    assert set(b["binding"]) == {"no_plant"} and "assign it to a plant" in b["reason_en"][0]
    assert "DC09" not in set(plan.projection["warehouse_code"])
    with pytest.raises(SupplyPlanError, match="no DC to plan for"):
        plan_supply(
            _inputs(_forecast("华东", "A", 10), {"A": ("饮料", 10.0)}, {}),
            _config(default_lead_days=None),
            AS_OF,
        )


def test_supply_file_errors_name_the_dc_and_field(tmp_path: Path) -> None:
    path = tmp_path / "supply.yaml"
    path.write_text(
        "version: 1\ndcs:\n  - id: DC01\n    lead_days: 3\n    service_level: 1.5\n",
        encoding="utf-8",
    )
    with pytest.raises(SupplyConfigError, match=r"DC DC01 \(#1\) service_level"):
        load_supply(path)
    path.write_text("version: 1\nholding_cost_week: 0.9\nlost_sale_cost: 0.5\n", "utf-8")
    with pytest.raises(SupplyConfigError, match="keeping stock never pays"):
        load_supply(path)
    assert load_supply().horizon_weeks == WEEKS  # the shipped file is valid


def test_tiny_world_builds_the_supply_tables(tiny_home: Path) -> None:
    con = duckdb.connect(str(tiny_home / "warehouse" / "build.duckdb"), read_only=True)
    try:
        prod = con.sql("select * from ml.supply_production_plan").pl()
        proj = con.sql("select * from ml.supply_dc_projection").pl()
        n_skus = con.execute(
            "select count(distinct sku_code) from ml.forecast_region_sku_week"
        ).fetchall()[0][0]
        distances = con.sql("select * from marts.fct_dc_distances").pl()
        ratios_now = con.execute(
            "select count(*) from marts.fct_dc_demand_ratios as r join marts.as_of_date as a "
            "on r.week_start = date_trunc('week', a.as_of)"
        ).fetchall()[0][0]
        over = con.execute(
            "select plant_code, category, week from ml.supply_production_plan "
            "group by all having sum(planned_units) > any_value(capacity_units)"
        ).fetchall()
    finally:
        con.close()
    assert prod["sku_code"].n_unique() == n_skus and prod["week"].max() == WEEKS
    assert prod["reason_zh"].null_count() == 0 and prod["binding"].null_count() == 0
    assert not over
    assert ratios_now > 0  # the plan of as_of finds the shipment ratios of its week
    km = {
        (r["from_warehouse"], r["to_warehouse"]): r["distance_km"]
        for r in distances.iter_rows(named=True)
    }
    assert all(km[(a, a)] == 0 for a, _ in km)
    assert all(km[(a, b)] == pytest.approx(km[(b, a)]) for a, b in km)
    # the tiny world's DC01 is in Shanghai and DC02 in Guangzhou (the cities' seats)
    assert km[("DC01", "DC02")] == pytest.approx(SHANGHAI_GUANGZHOU_KM, rel=0.01)
    assert set(proj["status"]) <= {"ok", "below_safety", "stockout_risk"}
    assert (proj["stock_low"] <= proj["stock_p50"]).all()
    assert (proj["stock_p50"] <= proj["stock_high"]).all()
    files = tiny_home / "exports" / "company"
    assert (files / "supply.xlsx").exists() and (files / "production_plan.csv").exists()
    region = next((tiny_home / "exports" / "region").iterdir())
    assert (region / "dc_projection.csv").exists() and not (region / "production_plan.csv").exists()


def test_replay_helpers_cut_interpolate_and_time_the_recovery() -> None:
    from bclake.evaluation import supply as replay

    # two SKUs of one plant x category share 100 units: 120 + 80 asked, cut pro rata
    want = np.array([[120.0, 80.0]])
    cut = replay._cut_to_capacity(
        want, [("P01", "饮料")] * 2, {("P01", "饮料"): 100}, np.array([1, 1])
    )
    assert cut.tolist() == [[60.0, 40.0]]
    # a SKU without a plant gets nothing
    none = replay._cut_to_capacity(want, [(None, "饮料")] * 2, {}, np.array([1, 1]))
    assert none.sum() == 0
    frontier = [
        {"avg_inventory": 100.0, "lost_units": 50.0},
        {"avg_inventory": 300.0, "lost_units": 10.0},
    ]
    assert replay._lost_at_inventory(frontier, 200.0) == 30.0
    assert replay._lost_at_inventory(frontier, 400.0) is None  # outside the frontier

    from types import SimpleNamespace

    world = SimpleNamespace(weeks=[AS_OF + timedelta(weeks=w) for w in range(6)])

    # fill 1.0, 1.0, then 0.5 from the shock's week, back to 0.99 in week 5
    weekly = np.zeros((6, 2, 1, 1))
    weekly[:, 1] = 100
    weekly[:, 0, 0, 0] = [100, 100, 50, 60, 99, 100]
    shock = AS_OF + timedelta(weeks=2)
    scope = {"mask": np.ones((1, 1), bool), "start": shock}
    assert replay._recovery_days(world, weekly, scope) == 2 * 7 + 6  # end of week 5
    weekly[:, 0, 0, 0] = 100
    assert replay._recovery_days(world, weekly, scope) == 0  # never dipped
    weekly[:, 0, 0, 0] = [100, 100, 50, 50, 50, 50]
    assert replay._recovery_days(world, weekly, scope) is None  # not within the window


def test_the_shocked_scope_is_the_plant_s_skus_or_the_region_s_dc() -> None:
    from types import SimpleNamespace

    from bclake.evaluation import supply as replay

    def world(shock: dict) -> SimpleNamespace:
        base = {"region": None, "plant_code": None, "sku_code": None, "category": None}
        return SimpleNamespace(
            scenario=pl.DataFrame([{**base, "kind": "x", "start_date": AS_OF, **shock}]),
            dcs=DCS,
            skus=["A", "B"],
            plants=pl.DataFrame({"sku_code": ["A", "B"], "plant_code": ["P01", "P03"]}),
            products=pl.DataFrame({"sku_code": ["A", "B"], "category": ["饮料", "零食"]}),
        )

    outage = replay._shock_scope(world({"kind": "plant_outage", "plant_code": "P03"}))
    assert outage["mask"].tolist() == [[False, True], [False, True]]
    assert "P03" in outage["label"]
    spike = replay._shock_scope(world({"kind": "demand_spike", "region": "华南", "sku_code": "A"}))
    assert spike["mask"].tolist() == [[False, False], [True, False]]
    assert replay._shock_scope(SimpleNamespace(scenario=None)) is None


def test_an_as_of_mid_week_plans_from_that_monday() -> None:
    """The data can end on any weekday; the forecast's weeks start on Mondays."""
    thursday = AS_OF + timedelta(days=3)
    plan = plan_supply(
        _inputs(_forecast("华东", "A", 100), {"A": ("饮料", 10.0)}, {("P01", "饮料"): 500}),
        _config(),
        thursday,
    )
    assert plan.production["week_start"].min() == AS_OF
    assert _units(plan.production, "A") == [100] * WEEKS
    with pytest.raises(SupplyPlanError, match="no SKU to plan for the weeks from"):
        plan_supply(
            _inputs(_forecast("华东", "A", 100), {"A": ("饮料", 10.0)}, {("P01", "饮料"): 500}),
            _config(),
            AS_OF + timedelta(weeks=30),
        )


def test_band_factors_measure_how_far_dc_shipments_stray_from_the_forecast() -> None:
    """Half the weeks a DC ships 60% of P50 x ratio, half 140%: the band becomes 0.6-1.4
    of the median (1.0), and the plan widens a narrower forecast band to it. Each origin
    reads the ratio known at its first forecast week, not a later one."""
    from bclake.ml.supply import dc_band_factors

    weeks = [AS_OF + timedelta(weeks=w) for w in range(10)]
    backtest = pl.DataFrame(
        {
            "region": ["华东"] * 10,
            "sku_code": ["A"] * 10,
            "week_start": weeks,
            "cutoff": [w - timedelta(weeks=1) for w in weeks],
            "horizon": [1] * 10,
            "p50": [50.0] * 10,
        }
    )
    ordered = [60, 140] * 5  # P50 50 x ratio 2 = 100 expected
    shipments = pl.DataFrame(
        {
            "region": ["华东"] * 10,
            "sku_code": ["A"] * 10,
            "week_start": weeks,
            "new_order_units": ordered,
        }
    )
    later = weeks[-1] + timedelta(weeks=1)  # known only after every origin: never read
    ratios = pl.DataFrame(
        {
            "region": ["华东"] * 11,
            "sku_code": ["A"] * 11,
            "week_start": [*weeks, later],
            "ratio": [2.0] * 10 + [9.0],
        }
    )
    bands = dc_band_factors(backtest, shipments, ratios)
    row = bands.row(0, named=True)
    assert row["horizon"] == 1 and row["rows"] == 10
    assert row["low"] == pytest.approx(0.6, abs=0.05) and row["high"] == pytest.approx(
        1.4, abs=0.05
    )
    inputs = _inputs(_forecast("华东", "A", 100, 10), {"A": ("饮料", 10.0)}, {("P01", "饮料"): 500})
    wide = SupplyInputs(**{**inputs.__dict__, "band_factors": bands})
    proj = plan_supply(wide, _config(), AS_OF).projection.filter(pl.col("week") == 1)
    east = proj.filter(pl.col("warehouse_code") == "DC01").row(0, named=True)
    assert east["demand_p90"] == pytest.approx(100 * row["high"])  # widened from 110
    assert east["demand_p10"] == pytest.approx(100 * row["low"])  # widened from 90


def test_a_region_s_planner_files_keep_moves_into_and_out_of_its_dc() -> None:
    from bclake.exports.planner import _of_region

    moves = pl.DataFrame(
        {
            "kind": ["transfer", "transfer", "rush_run", "transfer"],
            "from_region": ["华东", "华北", None, "华东"],
            "to_region": ["华北", "华南", "华南", "华南"],
        }
    )
    kept = _of_region("华北")(moves)
    assert kept.select("from_region", "to_region").rows() == [("华东", "华北"), ("华北", "华南")]
    projection = pl.DataFrame({"region": ["华北", "华南"], "units": [1, 2]})
    assert _of_region("华南")(projection)["units"].to_list() == [2]
