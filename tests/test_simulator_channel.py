"""The simulated world holds the answer to channel optimisation (issue 19).

Planted white space, residents scanning at home, visitors buying nearby, and
the true cost to serve, on `tiny` worlds without dirt (a few seconds each). A
world with `white_space_cities=0` has no pull cities, no residents and no
visitors: it is the world as it was before the channel mechanisms, but for the
distributors' seats, and the mechanisms are checked against it.
"""

from __future__ import annotations

import pickle
from dataclasses import replace
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from bclake.simulator import config
from bclake.simulator.economics import ACTIONS
from bclake.simulator.geography import HOME_SCAN_SHARE, PLANT_MAX_STORES, PLANT_TIERS
from bclake.simulator.run import STATE, continue_simulation, simulate
from bclake.simulator.state import StaleStateError

SEED = 7
UNPROFITABLE_STORES = (0.03, 0.35)  # tiny: 36 stores, so much wider than demo's 10-15%


def _world(root: Path, seed: int = SEED, **overrides: object) -> Path:
    """Simulate a clean tiny world into `root`, its scale changed by `overrides`."""
    tiny = config.SCALES["tiny"]
    with pytest.MonkeyPatch.context() as mp:
        mp.setitem(config.SCALES, "tiny", replace(tiny, **overrides))
        simulate(root, "tiny", seed=seed, progress=False, dirt=0)
    return root


@pytest.fixture(scope="module")
def worlds(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The full world, one without visitors, one without the mechanisms, and a re-run."""
    base = tmp_path_factory.mktemp("channel")
    return {
        "full": _world(base / "full"),
        "again": _world(base / "again"),
        "residents": _world(base / "residents", visitor_share=0.0),
        "off": _world(base / "off", white_space_cities=0),
    }


def _truth(root: Path, name: str) -> pl.DataFrame:
    return pl.read_parquet(root / "truth" / f"{name}.parquet")


def _landing(root: Path, folder: str) -> pl.DataFrame:
    files = sorted((root / "landing" / folder).glob("*"))
    frames = [
        pl.read_ndjson(p) if p.suffix == ".ndjson" else pl.read_csv(p, infer_schema=False)
        for p in files
        if p.stat().st_size
    ]
    return pl.concat(frames, how="diagonal_relaxed")


def test_channel_truth_is_deterministic_by_seed(worlds: dict[str, Path], tmp_path: Path) -> None:
    other = _world(tmp_path / "other", seed=SEED + 1)
    for name in ("channel_areas", "channel_economics", "channel_residents"):
        assert _truth(worlds["full"], name).equals(_truth(worlds["again"], name)), name
    assert not _truth(worlds["full"], "channel_areas").equals(_truth(other, "channel_areas"))


def test_areas_have_sane_ranges_and_planted_white_space(worlds: dict[str, Path]) -> None:
    areas = _truth(worlds["full"], "channel_areas")
    assert areas.columns == [
        "adcode",
        "city",
        "province",
        "tier",
        "population",
        "income_index",
        "potential_units_week",
        "stores",
        "true_coverage",
        "untapped_units_week",
        "planted",
        "deserved_rank",
        "lat",
        "lon",
    ]
    assert areas["adcode"].is_unique().all()
    assert (areas["population"] > 0).all() and (areas["potential_units_week"] > 0).all()
    assert areas["true_coverage"].is_between(0, 1).all()
    expected = areas["potential_units_week"] * (1 - areas["true_coverage"])
    assert ((areas["untapped_units_week"] - expected).abs() <= 0.1 + 1e-3 * expected).all()
    assert sorted(areas["deserved_rank"].to_list()) == list(range(1, areas.height + 1))
    by_rank = areas.sort("deserved_rank")["untapped_units_week"]
    assert (by_rank.diff().drop_nulls() <= 0).all()
    stores = _truth(worlds["full"], "stores")
    assert areas["stores"].sum() == stores.height
    planted = areas.filter("planted")
    assert planted.height == config.SCALES["tiny"].white_space_cities
    assert planted["tier"].is_in(PLANT_TIERS).all()
    assert (planted["stores"] <= PLANT_MAX_STORES).all()
    seats = set(_truth(worlds["full"], "distributors")["city"].to_list())
    assert not set(planted["city"].to_list()) & seats
    # high potential: above the 85th percentile of every city's, ranked among the most untapped
    assert (planted["potential_units_week"] >= areas["potential_units_week"].quantile(0.85)).all()
    assert planted["deserved_rank"].max() <= 0.15 * areas.height
    assert not _truth(worlds["off"], "channel_areas")["planted"].any()


def test_distributors_sit_in_their_provinces_busiest_cities(worlds: dict[str, Path]) -> None:
    dists = _truth(worlds["full"], "distributors")
    stores = _truth(worlds["full"], "stores")
    assert dists["lat"].is_not_null().all() and dists["lon"].is_not_null().all()
    counts = stores.group_by("province", "city").len()
    for prov, group in dists.group_by("province"):
        cities = counts.filter(pl.col("province") == prov[0])
        assert set(group["city"]) <= set(cities["city"]), prov
        # the first distributor of a province sits in its city with most stores
        first = group.sort("distributor_code")["city"][0]
        assert cities.filter(pl.col("city") == first)["len"][0] == cities["len"].max()
    # stores keep the distributor they had: some are now served from another city
    assert (
        stores.join(dists.select("distributor_code", d_city="city"), on="distributor_code")
        .filter(pl.col("city") != pl.col("d_city"))
        .height
    )


def test_residents_live_near_their_store_and_scan_at_home(worlds: dict[str, Path]) -> None:
    full, off = worlds["residents"], worlds["off"]
    residents = _truth(full, "channel_residents")
    assert residents.height > 0
    areas = _truth(full, "channel_areas")
    stores = _truth(full, "stores")
    placed = residents.join(stores.select("store_code", "province"), on="store_code").join(
        areas.select(home_city="city", home_province="province", rank="deserved_rank"),
        on="home_city",
    )
    assert (placed["province"] == placed["home_province"]).all()  # territory unchanged
    assert (placed["home_city"] != placed["store_city"]).all()
    assert placed["rank"].max() <= 2 * config.SCALES["tiny"].white_space_cities
    # their CDP city is their home
    cdp = _landing(full, "cdp/consumers").select("consumerId", pl.col("profile"))
    cities = cdp.with_columns(city=pl.col("profile").struct.field("city")).select(
        consumer_id="consumerId", city="city"
    )
    moved = residents.join(cities, on="consumer_id")
    assert moved.height and (moved["city"] == moved["home_city"]).all()

    # without visitors the sales are those of the world without the mechanisms, so every
    # scan is the same but for where residents scanned: most at home
    a = _landing(full, "code/product_scans").sort("scan_id")
    b = _landing(off, "code/product_scans").sort("scan_id")
    assert a.select(pl.exclude("lat", "lon")).equals(b.select(pl.exclude("lat", "lon")))
    is_res = a["consumer_id"].is_in(residents["consumer_id"].implode())
    same = (a["lat"] == b["lat"]) & (a["lon"] == b["lon"])
    assert same.filter(~is_res).all()
    share = 1 - same.filter(is_res).mean()
    assert abs(share - HOME_SCAN_SHARE) < 0.15, share
    home = (
        a.filter(is_res & ~same)
        .join(residents, on="consumer_id")
        .join(areas.select(home_city="city", c_lat="lat", c_lon="lon"), on="home_city")
    )
    lat = home["lat"].cast(pl.Float64) - home["c_lat"]
    lon = home["lon"].cast(pl.Float64) - home["c_lon"]
    assert ((lat**2 + lon**2).sqrt() < 0.3).all()  # at the home city, within ~30 km


def test_visitors_add_demand_only_near_untapped_cities(worlds: dict[str, Path]) -> None:
    full, off = worlds["full"], worlds["off"]
    a = pl.read_parquet(full / "truth/demand_daily/*.parquet")
    b = pl.read_parquet(off / "truth/demand_daily/*.parquet")
    both = a.join(b, on=["date", "store_code", "sku_code"], how="full", suffix="_off").fill_null(0)
    per_store = both.group_by(pl.coalesce("store_code", "store_code_off").alias("s")).agg(
        extra=(pl.col("demand") - pl.col("demand_off")).sum(),
        changed=(pl.col("demand") != pl.col("demand_off")).sum(),
    )
    visited = per_store.filter(pl.col("changed") > 0)
    assert 0 < visited.height < per_store.height
    assert (visited["extra"] > 0).all()  # visitors only add demand
    # and only at the stores the geography sends visitors to: every other store's demand
    # is bit-identical
    with (full / "truth" / STATE).open("rb") as fh:
        state = pickle.load(fh)
    near = set(state.world.stores["store_code"].gather(state.geography.visited).to_list())
    assert set(visited["s"].to_list()) <= near
    # the store master is untouched
    assert _landing(full, "dms/stores").equals(_landing(off, "dms/stores"))


def test_economics_are_consistent_and_some_are_unprofitable(worlds: dict[str, Path]) -> None:
    econ = _truth(worlds["full"], "channel_economics")
    stores = _truth(worlds["full"], "stores")
    dists = _truth(worlds["full"], "distributors")
    assert set(econ.filter(pl.col("entity_type") == "store")["code"]) == set(stores["store_code"])
    assert set(econ.filter(pl.col("entity_type") == "distributor")["code"]) == set(
        dists["distributor_code"]
    )
    costs = ["delivery_cost", "visit_cost", "rebates", "promo_cost"]
    assert econ.select((pl.col([*costs, "revenue"]) >= 0).all()).row(0) == (True,) * 5
    assert (econ["gross_margin"] < econ["revenue"]).all()
    spent = econ.select(pl.sum_horizontal(costs)).to_series()
    identity = econ["gross_margin"] - spent - econ["contribution"]
    assert (identity.abs() < 0.05).all()
    assert (econ["unprofitable"] == (econ["contribution"] < 0)).all()
    assert econ["deserved_action"].is_in(ACTIONS).all()
    assert ((econ["deserved_action"] != "none") == econ["unprofitable"]).all()
    share = econ.filter(pl.col("entity_type") == "store")["unprofitable"].mean()
    assert UNPROFITABLE_STORES[0] <= share <= UNPROFITABLE_STORES[1], share
    assert econ.filter(pl.col("entity_type") == "distributor")["unprofitable"].any()
    # the rebates are those the programmes truly earned
    earned = pl.read_parquet(worlds["full"] / "truth/incentive_earned/*.parquet")
    total = econ.filter(pl.col("entity_type") == "store")["rebates"].sum()
    paid = earned.filter(pl.col("payee_code").str.starts_with("S"))["amount"].sum()
    assert np.isclose(total, paid, rtol=1e-6, atol=1.0)


def test_a_state_from_an_older_simulator_is_refused(tmp_path: Path) -> None:
    root = _world(tmp_path / "old")
    path = root / "truth" / STATE
    with path.open("rb") as fh:
        state = pickle.load(fh)
    del state.__dict__["version"]  # as pickled before the layout had a version
    with path.open("wb") as fh:
        pickle.dump(state, fh)
    with pytest.raises(StaleStateError, match="older simulator"):
        continue_simulation(root, 3, progress=False)
