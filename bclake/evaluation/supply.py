"""Closed-loop replay of the supply plan against the brand's current rule.

Over the weeks of the region forecast's last backtest (13 weeks the forecast had not
seen), the regional DCs are replayed week by week from their real stock at the start,
with each plant's real weekly capacity (the ERP capacity export: an outage shows there
as it happened), against two demands:

- the units distributors newly ordered from each DC
  (`marts.fct_dc_shipment_weeks.new_order_units`, by ship week): the demand a DC
  faces, and the comparison reported first. A distributor whose order was cut short
  asks again for the shortfall; those repeats are netted out, else a DC short for
  months in the world's own history would face a demand that grew every week by what
  it failed to ship, the same for every policy, whatever it shipped.
- `consumer_demand`: the true consumer demand of the region's stores
  (`truth/demand_daily`, lost sales included) served straight from the DC, a stress
  test: without the distributors' and stores' stock in between, every spike of the
  shelves (a golden week) reaches the DC at once.

Three policies, same start, same demand:

- `bclake`: every Monday `ml.supply.plan_supply` re-plans from what was known then:
  the backtest's P10/P50/P90 for the weeks left, widened to the DC demand bands
  calibrated on the backtest's earlier cutoffs (`dc_band_factors`), the replayed DC
  stock, each plant's capacity reported for that week (or its latest), the ratio of new
  orders to reported sell-through over the 13 weeks before that week, re-levelled by
  the DC's new orders over the last four replayed weeks (`_relevelled_ratios`: the
  backtest was made once, at its cutoff, where the pipeline re-forecasts every week).
  The first week's changeover starts from what the plants really made the week before
  the window (`fct_plant_output_weeks`).
  Week 1 of the plan is carried out: its production (cut pro rata to the week's real
  capacity), its fair-share split, its transfers (from stock on hand) and its rush runs
  (only within the week's real spare capacity).
- `bclake_no_transfers`: the same without transfers and rush runs.
- `baseline`: the rule the simulated brand uses today (the simulator's own plant
  policy): each DC asks for 3 weeks of its trailing 4-week average outflow minus its
  stock; a plant short of capacity cuts every request pro rata; no transfers. The same
  rule at 1 to 5 weeks of cover (`baseline_frontier`) gives its lost units at bclake's
  inventory.

Goods made on a Monday reach the DCs within the week (lead times under 7 days) and
demand is served from the week's stock; what a DC cannot serve is lost. Reported per
policy: `ordered_units` (the same for every policy), `dc_fill_rate` (units served /
ordered), `lost_units`, `avg_inventory` (mean
end-of-week units over all DCs), the same two at list price (`lost_value`,
`avg_inventory_value`, yuan: the plan minimises lost value, not lost units, so when
capacity is short it protects dear SKUs first), `transfer_cost` (yuan: transfers and
rush premiums)
and, in a world with a shock (`truth/scenario.parquet`), `recovery_days`: days from
the shock's start to the end of the first week from which the shocked scope's fill
rate is back within 2 points of its level before the shock (0 when it never dipped,
null when it does not recover inside the window).
"""

from __future__ import annotations

import time
from datetime import date, timedelta
from pathlib import Path

import duckdb
import numpy as np
import polars as pl

from bclake.core.supply import SupplyConfig, load_supply
from bclake.ml.supply import SupplyInputs, dc_band_factors, plan_supply

POLICIES = ("bclake", "bclake_no_transfers", "baseline")
BASELINE_COVER_WEEKS = 3.0  # the simulator's plants refill each DC to 21 days of outflow
# the same rule with other cover targets: lost units against inventory, to compare at
# equal inventory
BASELINE_FRONTIER = (1.0, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0)
BASELINE_TRAILING_WEEKS = 4
RECOVERY_POINTS = 0.02
MIN_HORIZON = 4  # the plan looks at least this many weeks ahead (forecast weeks repeat)


class _World:
    """Everything the replay reads, as arrays over weeks x DCs x SKUs."""

    def __init__(self, truth_dir: Path, published_db: Path) -> None:
        con = duckdb.connect(str(published_db), read_only=True)
        try:
            self._read(con)
        finally:
            con.close()
        self.consumer_demand = _true_demand(
            truth_dir,
            self.weeks[0] - timedelta(weeks=BASELINE_TRAILING_WEEKS),
            self.weeks[-1] + timedelta(days=7),
        )
        path = truth_dir / "scenario.parquet"
        self.scenario = pl.read_parquet(path) if path.exists() else None

    def _read(self, con: duckdb.DuckDBPyConnection) -> None:
        bt = con.sql("select * from ml.forecast_region_sku_week_backtest").pl()
        self.cutoff = bt["cutoff"].max()
        self.earlier = bt.filter(pl.col("cutoff") < self.cutoff)
        self.backtest = bt.filter(pl.col("cutoff") == self.cutoff).select(
            "region", "sku_code", "week_start", "p10", "p50", "p90"
        )
        self.weeks: list[date] = sorted(self.backtest["week_start"].unique().to_list())
        start = self.weeks[0]
        self.dcs = con.sql("select * from marts.dim_warehouse where warehouse_type = 'DC'").pl()
        self.dcs = self.dcs.sort("warehouse_code")
        self.products = con.sql("select * from marts.dim_product").pl()
        self.plants = con.sql("select * from marts.dim_sku_plant").pl()
        self.skus: list[str] = sorted(
            set(self.backtest["sku_code"]) & set(self.products["sku_code"])
        )
        self.capacity = con.sql("select * from marts.fct_plant_capacity_weeks").pl()
        # the DCs' weekly new orders and shipments (by ship week); the replay's demand is
        # what distributors newly ordered, the baseline's history what the DCs shipped
        shipments = con.sql("select * from marts.fct_dc_shipment_weeks").pl()
        self.shipped_before = shipments.select(
            "region", "sku_code", "week_start", units=pl.col("shipped_units").cast(pl.Float64)
        )
        self.dc_orders = shipments.select(
            "region", "sku_code", "week_start", units=pl.col("new_order_units").cast(pl.Float64)
        )
        # what each SKU's plants made in the week before the window: where the plan's
        # changeover penalty starts (a plan starting from nothing would ramp up slowly)
        made = dict(
            con.execute(
                "select sku_code, sum(output_units) from marts.fct_plant_output_weeks "
                "where week_start = ? group by sku_code",
                [start - timedelta(weeks=1)],
            ).fetchall()
        )
        self.stock = con.sql(
            "select warehouse_code, sku_code, on_hand_units from marts.fct_dc_inventory "
            "where snapshot_date = (select max(snapshot_date) from marts.fct_dc_inventory "
            "where snapshot_date < ?)",
            params=[start],
        ).pl()
        # the demand ratio known at each week of the window (from the weeks before it),
        # as the plan of that Monday reads it; 1 where a pair has none
        all_ratios = con.sql("select * from marts.fct_dc_demand_ratios").pl()
        ratios = all_ratios.select("region", "sku_code", "week_start", units="ratio")
        known = self.cube(ratios.with_columns(units=pl.lit(1.0)), self.weeks)
        self.ratio = np.where(known > 0, self.cube(ratios, self.weeks), 1.0)
        self.distances = con.sql("select * from marts.fct_dc_distances").pl()
        self.p50 = self.cube(self.backtest.rename({"p50": "units"}), self.weeks)
        pre = [
            start - timedelta(weeks=BASELINE_TRAILING_WEEKS - i)
            for i in range(BASELINE_TRAILING_WEEKS)
        ]
        self.history = list(self.cube(self.shipped_before, pre))  # weeks before the window
        # the DC demand's spread, calibrated as the pipeline does but only on the
        # backtest's earlier cutoffs (the window's own orders are the future here)
        self.bands = dc_band_factors(self.earlier, shipments, all_ratios)
        # per SKU, in `skus` order: case pack, list price (yuan) and plant x category
        prod = self.products.filter(pl.col("sku_code").is_in(self.skus)).sort("sku_code")
        self.case = np.maximum(1, prod["case_pack"].fill_null(1).to_numpy())
        self.made_before = np.array([float(made.get(k) or 0.0) for k in self.skus])
        self.price = prod["list_price"].fill_null(1.0).to_numpy()
        plant_of = dict(self.plants.select("sku_code", "plant_code").iter_rows())
        self.block = [
            (plant_of.get(k), c) for k, c in zip(self.skus, prod["category"], strict=True)
        ]

    # --- arrays -------------------------------------------------------------------------
    def cube(self, frame: pl.DataFrame, weeks: list[date]) -> np.ndarray:
        """weeks x DCs x SKUs of `frame`'s units (region, sku_code, week_start, units)."""
        region_dc = {r: i for i, r in enumerate(self.dcs["region"])}
        sku_i = {k: i for i, k in enumerate(self.skus)}
        week_i = {w: i for i, w in enumerate(weeks)}
        out = np.zeros((len(weeks), len(region_dc), len(self.skus)))
        for r in frame.iter_rows(named=True):
            w, d, k = (
                week_i.get(r["week_start"]),
                region_dc.get(r["region"]),
                sku_i.get(r["sku_code"]),
            )
            if w is not None and d is not None and k is not None:
                out[w, d, k] += r["units"]
        return out

    def opening_stock(self) -> np.ndarray:
        dc_i = {c: i for i, c in enumerate(self.dcs["warehouse_code"])}
        sku_i = {k: i for i, k in enumerate(self.skus)}
        out = np.zeros((len(dc_i), len(self.skus)))
        for r in self.stock.iter_rows(named=True):
            d, k = dc_i.get(r["warehouse_code"]), sku_i.get(r["sku_code"])
            if d is not None and k is not None:
                out[d, k] = max(0, r["on_hand_units"] or 0)
        return out

    def true_capacity(self, week: date) -> dict[tuple[str, str], float]:
        rows = self.capacity.filter(pl.col("week_start") == week)
        return {
            (r["plant_code"], r["category"]): r["capacity_units"]
            for r in rows.iter_rows(named=True)
        }

    def known_capacity(self, week: date) -> pl.DataFrame:
        """Each plant x category's capacity reported for `week`, or its latest before: on
        Monday a plant knows what it can make that week (a breakdown, a repair), and the
        plan assumes it for the weeks after. Planning a repaired plant at last week's
        outage capacity would hold its output down for a week after the repair."""
        return (
            self.capacity.filter(pl.col("week_start") <= week)
            .sort("week_start")
            .group_by("plant_code", "category")
            .last()
        )


def _true_demand(truth_dir: Path, start: date, end: date) -> pl.DataFrame:
    """region, sku_code, week_start, units: the consumers' true demand at the stores
    (`truth/demand_daily`, lost sales included) from `start` to before `end`, by week."""
    stores = pl.read_parquet(truth_dir / "stores.parquet").select("store_code", "region")
    return (
        pl.scan_parquet(truth_dir / "demand_daily" / "*.parquet")
        .filter((pl.col("date") >= start) & (pl.col("date") < end))
        .join(stores.lazy(), on="store_code")
        .group_by("region", "sku_code", week_start=pl.col("date").dt.truncate("1w"))
        .agg(units=pl.col("demand").sum().cast(pl.Float64))
        .collect()
    )


def evaluate_supply(
    truth_dir: Path, published_db: Path, config: SupplyConfig | None = None
) -> dict:
    """Replay the window under each policy (`POLICIES`) and compare them; see the module.

    Returns {"window": {...}, "scenario": [...shocks], "shock_scope", then the comparison
    on the distributors' orders (the demand a DC faces): "policies": {policy: metrics},
    "lost_vs_baseline", "inventory_vs_baseline", "baseline_frontier" (the rule at other
    cover targets), "baseline_lost_at_equal_inventory",
    "lost_vs_baseline_at_equal_inventory" (against the frontier interpolated at
    bclake's inventory), "plan_seconds_per_week", and "consumer_demand": the same
    comparison with the stores' true consumer demand served straight from the DCs};
    a dict with a `skipped` reason when the warehouse lacks the backtest or DC data.
    """
    config = config or load_supply()
    try:
        world = _World(truth_dir, published_db)
    except duckdb.CatalogException as exc:
        return {"skipped": f"the warehouse lacks what the replay reads ({exc})"}
    if not world.weeks or world.dcs.is_empty():
        return {"skipped": "no backtest weeks or no DC to replay"}
    scope = _shock_scope(world)
    primary = _compare(world, world.cube(world.dc_orders, world.weeks), config, scope)
    stress = _compare(world, world.cube(world.consumer_demand, world.weeks), config, scope)
    stress.pop("baseline_frontier")
    return {
        "window": {
            "start": str(world.weeks[0]),
            "end": str(world.weeks[-1] + timedelta(days=6)),
            "weeks": len(world.weeks),
            "dcs": world.dcs.height,
            "skus": len(world.skus),
        },
        "scenario": []
        if world.scenario is None
        else world.scenario.select(
            "kind", "start_date", "end_date", "region", "plant_code", "sku_code", "magnitude"
        ).to_dicts(),
        "shock_scope": scope["label"] if scope else None,
        **primary,
        "consumer_demand": stress,
    }


def _compare(world: _World, demand: np.ndarray, config: SupplyConfig, scope: dict | None) -> dict:
    """Every policy replayed on `demand` (weeks x DCs x SKUs), the baseline's frontier
    and the ratios of `evaluate_supply`."""
    results, seconds = {}, []
    for policy in POLICIES:
        started = time.perf_counter()
        results[policy] = _replay(world, demand, policy, config)
        if policy == "bclake":
            seconds.append((time.perf_counter() - started) / len(world.weeks))
    for policy in POLICIES:
        weekly = results[policy].pop("_weekly")
        results[policy]["recovery_days"] = _recovery_days(world, weekly, scope)
    base = results["baseline"]
    frontier = [
        {
            "cover_weeks": c,
            **{
                k: v
                for k, v in _replay(world, demand, "baseline", config, c).items()
                if k != "_weekly"
            },
        }
        for c in BASELINE_FRONTIER
    ]
    matched = _lost_at_inventory(frontier, results["bclake"]["avg_inventory"])
    matched_v = _lost_at_inventory(
        frontier, results["bclake"]["avg_inventory_value"], "avg_inventory_value", "lost_value"
    )
    return {
        "policies": results,
        "lost_vs_baseline": _ratio(results["bclake"]["lost_units"], base["lost_units"]),
        "inventory_vs_baseline": _ratio(results["bclake"]["avg_inventory"], base["avg_inventory"]),
        "baseline_frontier": frontier,
        "baseline_lost_at_equal_inventory": matched,
        "lost_vs_baseline_at_equal_inventory": _ratio(results["bclake"]["lost_units"], matched)
        if matched
        else None,
        "lost_value_vs_baseline_at_equal_inventory_value": _ratio(
            results["bclake"]["lost_value"], matched_v
        )
        if matched_v
        else None,
        "plan_seconds_per_week": round(float(np.mean(seconds)), 3) if seconds else None,
    }


def _lost_at_inventory(
    frontier: list[dict],
    inventory: float,
    x: str = "avg_inventory",
    y: str = "lost_units",
) -> float | None:
    """The baseline's `y` (lost units) at `inventory` of `x` (average units held),
    interpolated linearly along its frontier (None outside the frontier's range)."""
    points = sorted((p[x], p[y]) for p in frontier)
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    if not xs or inventory < xs[0] or inventory > xs[-1]:
        return None
    return round(float(np.interp(inventory, xs, ys)), 1)


def _ratio(a: float, b: float | None) -> float | None:
    return round(a / b, 3) if b else None


def _replay(
    world: _World,
    demand: np.ndarray,
    policy: str,
    config: SupplyConfig,
    cover: float = BASELINE_COVER_WEEKS,
) -> dict:
    history = list(world.history)  # what each DC shipped, weekly
    stock = world.opening_stock()
    n_d, n_k = stock.shape
    case, price, block = world.case, world.price, world.block
    served_t = lost_t = lost_v = 0.0
    inventory, inventory_v, cost = [], [], 0.0
    made = world.made_before.copy()  # what each SKU's plants made the week before
    weekly = np.zeros((len(world.weeks), 2, n_d, n_k))  # served, ordered
    for t, week in enumerate(world.weeks):
        cap = world.true_capacity(week)
        if policy == "baseline":
            recent = np.array(history[-BASELINE_TRAILING_WEEKS:])
            arrivals = _baseline_orders(recent, stock, block, cap, case, cover)
            moved = 0.0
        else:
            arrivals, made, moved = _bclake_week(
                world, t, stock, list(demand[:t]), made, cap, config, policy == "bclake"
            )
        stock = stock + arrivals
        want = demand[t]
        served = np.minimum(want, stock)
        history.append(served)
        stock = stock - served
        weekly[t, 0], weekly[t, 1] = served, want
        served_t += served.sum()
        lost_t += (want - served).sum()
        lost_v += ((want - served) * price[None, :]).sum()
        inventory.append(stock.sum())
        inventory_v.append((stock * price[None, :]).sum())
        cost += moved
    ordered = served_t + lost_t
    return {
        "ordered_units": round(float(ordered), 1),
        "dc_fill_rate": round(served_t / ordered, 4) if ordered else None,
        "lost_units": round(float(lost_t), 1),
        "avg_inventory": round(float(np.mean(inventory)), 1),
        "lost_value": round(float(lost_v), 0),
        "avg_inventory_value": round(float(np.mean(inventory_v)), 0),
        "transfer_cost": round(float(cost), 2),
        "_weekly": weekly,
    }


def _baseline_orders(
    history: np.ndarray,
    stock: np.ndarray,
    block: list[tuple[str | None, str]],
    cap: dict[tuple[str, str], float],
    case: np.ndarray,
    cover: float,
) -> np.ndarray:
    """DCs x SKUs delivered this week under the brand's current rule (see the module),
    refilling each DC to `cover` weeks of its trailing average outflow."""
    need = np.maximum(0.0, cover * history.mean(axis=0) - stock)
    return _cut_to_capacity(need, block, cap, case)


def _cut_to_capacity(
    want: np.ndarray,
    block: list[tuple[str | None, str]],
    cap: dict[tuple[str, str], float],
    case: np.ndarray,
) -> np.ndarray:
    """DCs x SKUs of `want` in whole cases, cut pro rata where a plant x category's
    total passes its capacity this week (no plant or no capacity: nothing)."""
    out = np.floor(want / case[None, :]) * case[None, :]
    for key in set(block):
        cols = [k for k, b in enumerate(block) if b == key]
        room = float(cap.get(key, 0.0)) if key[0] is not None else 0.0
        total = out[:, cols].sum()
        if total > room:
            scale = room / total if total else 0.0
            out[:, cols] = np.floor(out[:, cols] * scale / case[None, cols]) * case[None, cols]
    return out


def _bclake_week(
    world: _World,
    t: int,
    stock: np.ndarray,
    ordered: list[np.ndarray],
    last_made: np.ndarray,
    cap: dict[tuple[str, str], float],
    config: SupplyConfig,
    with_transfers: bool,
) -> tuple[np.ndarray, np.ndarray, float]:
    """(DCs x SKUs arriving this week, SKUs made this week, yuan spent on transfers and
    rush runs) when week `t` is planned by `plan_supply` and its first week carried out.
    `last_made`: SKUs made the week before (the plan's changeover starts from it)."""
    week = world.weeks[t]
    dc_codes = world.dcs["warehouse_code"].to_list()
    horizon = max(MIN_HORIZON, len(world.weeks) - t)
    forecast = _forecast_from(world, t, horizon)
    inputs = SupplyInputs(
        forecast=forecast,
        dcs=world.dcs,
        stock=pl.DataFrame(
            {
                "warehouse_code": [c for c in dc_codes for _ in world.skus],
                "sku_code": world.skus * len(dc_codes),
                "on_hand_units": stock.reshape(-1).astype(np.int64),
            }
        ),
        products=world.products,
        sku_plants=world.plants,
        capacity=world.known_capacity(week),
        last_output=pl.DataFrame({"sku_code": world.skus, "output_units": last_made}),
        demand_ratios=_relevelled_ratios(world, t, ordered),
        band_factors=world.bands,
        distances=world.distances,
    )
    plan = plan_supply(inputs, config.model_copy(update={"horizon_weeks": horizon}), week)
    sku_i = {k: i for i, k in enumerate(world.skus)}
    dc_i = {c: i for i, c in enumerate(dc_codes)}
    planned = np.zeros((len(dc_codes), len(world.skus)))
    for r in plan.allocation.filter(pl.col("arrival_week_start") == week).iter_rows(named=True):
        planned[dc_i[r["warehouse_code"]], sku_i[r["sku_code"]]] += r["allocated_units"]
    made = _cut_to_capacity(planned, world.block, cap, world.case)
    arrivals = made.copy()
    spent = 0.0
    if with_transfers:
        spent = _carry_out_moves(world, plan.transfers, stock, arrivals, made, cap, config)
    return arrivals, made.sum(axis=0), spent


def _carry_out_moves(
    world: _World,
    moves: pl.DataFrame,
    stock: np.ndarray,
    arrivals: np.ndarray,
    made: np.ndarray,
    cap: dict[tuple[str, str], float],
    config: SupplyConfig,
) -> float:
    """Carry out the plan's transfers (from stock on hand) and rush runs (within the
    week's real spare capacity) into `arrivals` and `made`; returns the yuan spent."""
    sku_i = {k: i for i, k in enumerate(world.skus)}
    dc_i = {c: i for i, c in enumerate(world.dcs["warehouse_code"])}
    block, case = world.block, world.case
    spent = 0.0
    for r in moves.iter_rows(named=True):
        k, to = sku_i.get(r["sku_code"]), dc_i.get(r["to_warehouse"])
        if k is None or to is None:
            continue
        if r["kind"] == "transfer":
            frm = dc_i[r["from_warehouse"]]
            units = min(r["units"], stock[frm, k])
            stock[frm, k] -= units
            arrivals[to, k] += units
            spent += r["cost_yuan"] * (units / r["units"]) if r["units"] else 0.0
        else:  # rush run: only within this week's real spare capacity
            key = block[k]
            cols = [j for j, b in enumerate(block) if b == key]
            room = cap.get(key, 0.0) - made[:, cols].sum() if key[0] is not None else 0.0
            units = max(0.0, min(r["units"], np.floor(room / case[k]) * case[k]))
            arrivals[to, k] += units
            made[to, k] += units
            spent += units * world.price[k] * config.expedite_premium
    return spent


def _forecast_from(world: _World, t: int, horizon: int) -> pl.DataFrame:
    """The backtest's forecast for the window's weeks from `t` on, the last week repeated
    to make `horizon` weeks (the backtest ends with the window)."""
    weeks = world.weeks[t:]
    fc = world.backtest.filter(pl.col("week_start").is_in(weeks))
    last = fc.filter(pl.col("week_start") == world.weeks[-1])
    extra = [
        last.with_columns(pl.lit(world.weeks[-1] + timedelta(weeks=i)).alias("week_start"))
        for i in range(1, horizon - len(weeks) + 1)
    ]
    return pl.concat([fc, *extra])


RELEVEL_WEEKS = 4  # the replay re-levels the forecast to the DC's last four weeks


def _relevelled_ratios(world: _World, t: int, ordered: list[np.ndarray]) -> pl.DataFrame:
    """region, sku_code, ratio: the demand ratio known at week `t` times how the units
    newly ordered from the DC over the last `RELEVEL_WEEKS` weeks replayed (its order
    book, which a stock-out does not shrink, unlike its outflow) compare with the
    forecast's P50 x that ratio for them (clipped to 0.5-2; 1 before any week is
    replayed). A forecast made once, at the backtest's cutoff, keeps the level it had
    then; the pipeline re-forecasts every week from lags of the latest weeks, and this is
    the replay's stand-in for that."""
    ratio = world.ratio[t]  # DCs x SKUs
    lo = max(0, t - RELEVEL_WEEKS)
    factor = np.ones(ratio.shape)
    if t:
        seen = np.array(ordered[lo:t]).sum(axis=0)
        base = world.p50[lo:t].sum(axis=0) * ratio
        factor = np.clip(np.where(base > 0, seen / np.maximum(base, 1e-9), 1.0), 0.5, 2.0)
    regions = world.dcs["region"].to_list()
    return pl.DataFrame(
        [
            {"region": reg, "sku_code": sku, "ratio": float(ratio[d, k] * factor[d, k])}
            for d, reg in enumerate(regions)
            for k, sku in enumerate(world.skus)
        ]
    )


def _shock_scope(world: _World) -> dict | None:
    """The shocked DCs x SKUs (a mask) and a label, for the first shock of the world."""
    if world.scenario is None or world.scenario.is_empty():
        return None
    shock = world.scenario.sort("start_date").row(0, named=True)
    n_d, n_k = world.dcs.height, len(world.skus)
    mask = np.zeros((n_d, n_k), dtype=bool)
    regions = world.dcs["region"].to_list()
    plant_of = dict(world.plants.select("sku_code", "plant_code").iter_rows())
    cats = dict(world.products.select("sku_code", "category").iter_rows())
    d_sel = [regions.index(shock["region"])] if shock.get("region") in regions else range(n_d)
    for k, sku in enumerate(world.skus):
        hit = (
            (shock.get("plant_code") is None or plant_of.get(sku) == shock["plant_code"])
            and (shock.get("sku_code") is None or sku == shock["sku_code"])
            and (shock.get("category") is None or cats.get(sku) == shock["category"])
        )
        if hit:
            for d in d_sel:
                mask[d, k] = True
    label = ", ".join(
        f"{c}={shock[c]}"
        for c in ("kind", "plant_code", "region", "sku_code", "category")
        if shock.get(c) is not None
    )
    return {"mask": mask, "start": shock["start_date"], "label": label}


def _recovery_days(world: _World, weekly: np.ndarray, scope: dict | None) -> int | None:
    if scope is None:
        return None
    mask = scope["mask"]
    served = (weekly[:, 0] * mask[None]).sum(axis=(1, 2))
    ordered = (weekly[:, 1] * mask[None]).sum(axis=(1, 2))
    fill = np.where(ordered > 0, served / np.maximum(ordered, 1e-9), 1.0)
    start: date = scope["start"]
    before = [i for i, w in enumerate(world.weeks) if w + timedelta(days=6) < start]
    if not before:
        return None
    normal = served[before].sum() / max(ordered[before].sum(), 1e-9)
    after = [i for i, w in enumerate(world.weeks) if w + timedelta(days=6) >= start]
    if all(fill[i] >= normal - RECOVERY_POINTS for i in after):
        return 0
    dipped = False
    for i in after:
        if fill[i] < normal - RECOVERY_POINTS:
            dipped = True
        elif dipped:
            return (world.weeks[i] + timedelta(days=6) - start).days
    return None
