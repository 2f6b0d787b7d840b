"""Named supply shocks: planted where and when the truth says, and nowhere before."""

from __future__ import annotations

import re
import shutil
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from bclake.simulator.config import SCENARIOS, get_scale
from bclake.simulator.dynamics import DIST_LEAD_DAYS, RING, Effects
from bclake.simulator.run import STATE, _new_state, continue_simulation, simulate
from bclake.simulator.scenarios import (
    DAYS_BEFORE_END,
    FRAME_SCHEMA,
    OUTAGE_CAPACITY,
    SPIKE_DAYS,
    SPIKE_PEAK,
    SPIKE_RAMP_DAYS,
    WEATHER_STOP_DAYS,
    Shock,
    plan_scenario,
)
from bclake.simulator.state import SimState

SEED = 42
SHOCKS = [s for s in SCENARIOS if s != "none"]
MONTH_LABEL = re.compile(r"_(\d{4}-\d{2})(?:_p\d+)?\.")


@pytest.fixture(scope="module")
def worlds(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One clean tiny world per scenario (`none` included), all of the same seed."""
    base = tmp_path_factory.mktemp("scenarios")
    for name in SCENARIOS:
        simulate(base / name, "tiny", seed=SEED, progress=False, dirt=0, scenario=name)
    return {name: base / name for name in SCENARIOS}


def _files(root: Path) -> dict[str, bytes]:
    """Every landing and truth file but the pickled state, by path relative to `root`."""
    return {
        str(p.relative_to(root)): p.read_bytes()
        for folder in ("landing", "truth")
        for p in sorted((root / folder).rglob("*"))
        if p.is_file() and p.name != STATE
    }


def _shock(world: Path) -> pl.DataFrame:
    return pl.read_parquet(world / "truth/scenario.parquet")


def _csv(world: Path, folder: str) -> pl.DataFrame:
    files = sorted((world / "landing" / folder).glob("*.csv"))
    return pl.concat([pl.read_csv(p) for p in files if p.stat().st_size], how="diagonal_relaxed")


def _demand(world: Path) -> pl.DataFrame:
    """Truth demand and sales per store, SKU and day, with the store's region and category."""
    stores = pl.read_parquet(world / "truth/stores.parquet").select("store_code", "region")
    skus = pl.read_parquet(world / "truth/products.parquet").select("sku_code", "category")
    return (
        pl.read_parquet(world / "truth/demand_daily/*.parquet")
        .join(stores, on="store_code")
        .join(skus, on="sku_code")
    )


def _total(frame: pl.DataFrame, column: str, *where: pl.Expr) -> int:
    return int(frame.filter(*where)[column].sum())


def test_none_is_the_world_without_a_scenario(worlds: dict[str, Path], tmp_path: Path) -> None:
    simulate(tmp_path / "default", "tiny", seed=SEED, progress=False, dirt=0)
    default, none = _files(tmp_path / "default"), _files(worlds["none"])
    assert default.keys() == none.keys()
    assert [k for k in default if default[k] != none[k]] == []
    assert "truth/scenario.parquet" not in none
    assert SimState.load(worlds["none"] / "truth" / STATE).scenario is None


def test_neutral_effects_run_the_day_as_without_any() -> None:
    """Identity multipliers, no closed DC and no extra lead days leave every number as it is."""
    cfg = get_scale("tiny")
    plain, neutral = _new_state(cfg, 1), _new_state(cfg, 1)
    n_s, n_k = plain.channel.base.shape
    n_w = plain.channel.dc_stock.shape[0]
    effects = Effects(
        demand=np.ones((n_s, n_k)),
        capacity=np.ones(n_k),
        dc_closed=np.zeros(n_w, dtype=bool),
        dc_extra_lead=np.zeros(n_w, dtype=np.int64),
    )
    for t in range(21):
        a = plain.channel.step(t, plain.streams.channel)
        b = neutral.channel.step(t, neutral.streams.channel, effects)
        for name in ("demand", "sales", "store_orders", "dist_orders"):
            for x, y in zip(getattr(a, name), getattr(b, name), strict=True):
                np.testing.assert_array_equal(x, y)
        np.testing.assert_array_equal(a.dc_stock, b.dc_stock)
        assert (a.production is None) == (b.production is None)
        if a.production is not None:
            np.testing.assert_array_equal(a.production, b.production)
            np.testing.assert_array_equal(a.capacity, b.capacity)
    np.testing.assert_array_equal(plain.channel.dist_arrivals, neutral.channel.dist_arrivals)


def test_extra_lead_days_delay_the_distributors_arrivals() -> None:
    cfg = get_scale("tiny")
    state = _new_state(cfg, 1)
    ch = state.channel
    n_w = ch.dc_stock.shape[0]
    late = Effects(dc_extra_lead=np.full(n_w, 3, dtype=np.int64))
    for t in range(14):
        before = ch.dist_arrivals.copy()
        record = ch.step(t, state.streams.channel, late)
        shipped = int(record.dist_orders[3].sum())
        on_time = ch.dist_arrivals[(t + DIST_LEAD_DAYS) % RING].sum()
        delayed = ch.dist_arrivals[(t + DIST_LEAD_DAYS + 3) % RING].sum()
        assert on_time == before[(t + DIST_LEAD_DAYS) % RING].sum()
        assert delayed == before[(t + DIST_LEAD_DAYS + 3) % RING].sum() + shipped


@pytest.mark.parametrize("name", SHOCKS)
def test_the_truth_lists_the_shock_in_the_last_weeks(worlds: dict[str, Path], name: str) -> None:
    shocks = _shock(worlds[name])
    assert shocks.schema == pl.Schema(FRAME_SCHEMA)
    assert shocks.height >= 1
    assert (shocks["scenario"] == name).all()
    assert shocks["description"].str.len_chars().min() > 20
    cfg = get_scale("tiny")
    last = cfg.start + timedelta(days=cfg.n_days - 1)
    start = shocks["start_date"].min()
    assert last - timedelta(days=DAYS_BEFORE_END[0]) <= start
    assert start <= last - timedelta(days=DAYS_BEFORE_END[1])
    assert (shocks["end_date"] >= shocks["start_date"]).all()
    assert shocks["end_date"].max() <= last - timedelta(days=14), "the recovery is seen too"
    # the same seed plans the same shock
    again = _new_state(cfg, SEED, name).scenario
    assert again is not None
    assert again.frame(cfg.start, SimState.load(worlds[name] / "truth" / STATE).world).equals(
        shocks
    )


@pytest.mark.parametrize("name", SHOCKS)
def test_nothing_changes_before_the_shock(worlds: dict[str, Path], name: str) -> None:
    start = _shock(worlds[name])["start_date"].min()
    none, shocked = _files(worlds["none"]), _files(worlds[name])
    before = [k for k in none if (m := MONTH_LABEL.search(k)) and m.group(1) < f"{start:%Y-%m}"]
    assert len(before) > 100
    assert [k for k in before if shocked.get(k) != none[k]] == []
    assert any(shocked.get(k) != v for k, v in none.items() if k not in before)
    truth_none = _demand(worlds["none"]).filter(pl.col("date") < start)
    assert truth_none.height
    assert _demand(worlds[name]).filter(pl.col("date") < start).equals(truth_none)


def test_plant_outage_cuts_that_plants_capacity_and_output(worlds: dict[str, Path]) -> None:
    shock = _shock(worlds["plant_outage"]).row(0, named=True)
    plant, start, end = shock["plant_code"], shock["start_date"], shock["end_date"]
    assert shock["magnitude"] == OUTAGE_CAPACITY
    key = ["周开始日期", "工厂编码", "品类"]
    cap = (
        _csv(worlds["none"], "erp/plant_capacity")
        .join(_csv(worlds["plant_outage"], "erp/plant_capacity"), on=key, suffix="_shock")
        .with_columns(pl.col("周开始日期").str.to_date())
    )
    during = pl.col("周开始日期").is_between(start, end)
    hit = cap.filter(during, pl.col("工厂编码") == plant)
    assert hit["周开始日期"].n_unique() == 3, "three production weeks"
    n_skus = get_scale("tiny").n_skus
    reduced = hit["产能"] * OUTAGE_CAPACITY
    assert (hit["产能_shock"] <= reduced).all() and (hit["产能_shock"] > reduced - n_skus).all()
    untouched = cap.filter(~(during & (pl.col("工厂编码") == plant)))
    assert (untouched["产能"] == untouched["产能_shock"]).all()

    output = [
        _csv(worlds[w], "erp/plant_output")
        .filter(
            pl.col("工厂编码") == plant, pl.col("周开始日期").str.to_date().is_between(start, end)
        )["产量"]
        .sum()
        for w in ("none", "plant_outage")
    ]
    assert output[1] <= hit["产能_shock"].sum(), "the plant makes no more than it can"
    assert output[1] <= OUTAGE_CAPACITY * output[0] * 1.5
    # the plant's categories run short in the stores from a week on
    assert plant in shock["description"]
    cats = _csv(worlds["none"], "erp/plant_capacity").filter(pl.col("工厂编码") == plant)
    mine = pl.col("category").is_in(cats["品类"].unique().to_list())
    later = pl.col("date").is_between(start + timedelta(days=7), end + timedelta(days=14))
    fill = []
    for w in ("none", "plant_outage"):
        d = _demand(worlds[w])
        fill.append(_total(d, "sales", mine, later) / _total(d, "demand", mine, later))
    assert fill[1] < fill[0] - 0.1


def test_demand_spike_multiplies_one_skus_demand_in_one_region(worlds: dict[str, Path]) -> None:
    shock = _shock(worlds["demand_spike"]).row(0, named=True)
    assert shock["magnitude"] == SPIKE_PEAK
    sku, region = pl.col("sku_code") == shock["sku_code"], pl.col("region") == shock["region"]
    window = pl.col("date").is_between(shock["start_date"], shock["end_date"])
    none, spiked = _demand(worlds["none"]), _demand(worlds["demand_spike"])
    here = [_total(d, "demand", sku, region, window) for d in (none, spiked)]
    planned = SimState.load(worlds["demand_spike"] / "truth" / STATE).scenario
    assert planned is not None
    spike = planned.shocks[0]
    mean = np.mean([spike.factor(t) for t in range(spike.start_day, spike.end_day + 1)])
    assert 0.8 * mean <= here[1] / here[0] <= 1.2 * mean, (here, mean)
    elsewhere = [_total(d, "demand", sku, ~region, window) for d in (none, spiked)]
    assert 0.75 * elsewhere[0] <= elsewhere[1] <= 1.33 * elsewhere[0]
    # the stores sell out: many more of the wanted units go unsold
    lost = [
        _total(d, "demand", sku, region, window) - _total(d, "sales", sku, region, window)
        for d in (none, spiked)
    ]
    assert lost[1] > 3 * max(lost[0], 10)


def test_a_scenario_name_without_shocks_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    """A name added to the list but not to `plan_scenario` fails instead of planting weather."""
    import bclake.simulator.scenarios as scenarios

    cfg = get_scale("tiny")
    state = _new_state(cfg, 1)
    monkeypatch.setattr(scenarios, "SCENARIOS", (*SCENARIOS, "heatwave"))
    with pytest.raises(ValueError, match="'heatwave' has no shocks"):
        plan_scenario("heatwave", cfg, 1, state.world, state.channel, state.calendar)
    with pytest.raises(ValueError, match="unknown scenario 'hail'"):
        plan_scenario("hail", cfg, 1, state.world, state.channel, state.calendar)


def test_a_spike_ramps_up_and_down() -> None:
    spike = Shock(
        "demand_spike",
        10,
        10 + SPIKE_DAYS - 1,
        SPIKE_PEAK,
        "demand_factor",
        "x",
        region=0,
        sku=0,
        ramp_days=SPIKE_RAMP_DAYS,
    )
    factors = [spike.factor(t) for t in range(10, 10 + SPIKE_DAYS)]
    assert factors[:4] == [1.5, 2.0, 2.5, 3.0] and factors[-4:] == [3.0, 2.5, 2.0, 1.5]
    assert max(factors) == SPIKE_PEAK and min(factors) > 1


def test_weather_stops_the_regions_deliveries_and_shifts_demand(
    worlds: dict[str, Path],
) -> None:
    shocks = _shock(worlds["weather"])
    stop = shocks.filter(pl.col("kind") == "delivery_stop").row(0, named=True)
    assert shocks.filter(pl.col("kind") == "delivery_delay")["magnitude"].item() > 0
    dc = pl.col("仓库编码") == stop["warehouse_code"]
    stopped = pl.col("订单日期").str.to_date().is_between(stop["start_date"], stop["end_date"])
    ship = {w: _csv(worlds[w], "erp/shipments") for w in ("none", "weather")}
    assert ship["weather"].filter(dc, stopped)["订货数量"].sum() > 0, "orders still came in"
    assert ship["weather"].filter(dc, stopped)["发货数量"].sum() == 0
    assert ship["none"].filter(dc, stopped)["发货数量"].sum() > 0
    assert ship["weather"].filter(~dc, stopped)["发货数量"].sum() > 0, "other DCs ship"
    assert (stop["end_date"] - stop["start_date"]).days + 1 == WEATHER_STOP_DAYS
    # the distributors of the region deliver less to their stores in the weeks after
    window = pl.col("date").is_between(stop["start_date"], stop["end_date"] + timedelta(days=14))
    region = pl.col("region") == stop["region"]
    sold = [_total(_demand(worlds[w]), "sales", region, window) for w in ("none", "weather")]
    assert sold[1] < sold[0]
    # demand of the weather-sensitive categories moves the way the truth says
    for shift in shocks.filter(pl.col("kind") == "demand_shift").iter_rows(named=True):
        where = (
            pl.col("region") == shift["region"],
            pl.col("category") == shift["category"],
            pl.col("date").is_between(shift["start_date"], shift["end_date"]),
        )
        ratio = _total(_demand(worlds["weather"]), "demand", *where) / _total(
            _demand(worlds["none"]), "demand", *where
        )
        assert abs(ratio / shift["magnitude"] - 1) < 0.2, (shift["category"], ratio)


def test_continue_carries_the_scenario_on(worlds: dict[str, Path], tmp_path: Path) -> None:
    home = tmp_path / "world"
    shutil.copytree(worlds["plant_outage"], home)
    path = home / "truth" / STATE
    state = SimState.load(path)
    assert state.scenario is not None and state.scenario.name == "plant_outage"
    with pytest.raises(ValueError, match="plant_outage"):
        continue_simulation(home, 1, progress=False, scenario="weather")
    # move the outage to the days a continued run adds: it must still apply there
    first = state.next_day
    assert state.channel.weekdays[first] == 0, "the tiny window ends on a Sunday"
    outage = replace(state.scenario.shocks[0], start_day=first, end_day=first + 13)
    state.scenario = replace(state.scenario, shocks=(outage,))
    state.save(path)
    continue_simulation(home, 8, progress=False, scenario="plant_outage")
    plant = _shock(home)["plant_code"].item()
    assert _shock(home)["start_date"].item() == get_scale("tiny").start + timedelta(days=first)
    capacity = _csv(home, "erp/plant_capacity").with_columns(pl.col("周开始日期").str.to_date())
    mine = capacity.filter(pl.col("工厂编码") == plant)
    weeks = mine.group_by("周开始日期").agg(pl.col("产能").sum()).sort("周开始日期")
    added = pl.col("周开始日期") >= get_scale("tiny").start + timedelta(days=first)
    during, before = weeks.filter(added)["产能"], weeks.filter(~added)["产能"]
    assert len(during) == 2, "the two Mondays of the 8 days added"
    assert (during <= OUTAGE_CAPACITY * before[-1]).all()
    assert SimState.load(path).scenario == state.scenario


def test_the_cli_plants_a_scenario(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from bclake.cli import app

    runner = CliRunner()
    root = tmp_path / "cli"
    args = ["--quiet", "simulate", "--scale", "tiny", "--seed", "5", "--out", str(root)]
    assert runner.invoke(app, [*args, "--scenario", "flood"]).exit_code == 2
    result = runner.invoke(app, [*args, "--scenario", "weather"])
    assert result.exit_code == 0, result.output
    assert (_shock(root)["scenario"] == "weather").all()
    again = runner.invoke(
        app, ["--quiet", "simulate", "--continue", "--out", str(root), "--scenario", "none"]
    )
    assert again.exit_code == 2 and "weather" in again.output
