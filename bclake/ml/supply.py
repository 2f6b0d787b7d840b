"""Supply plan (供应链联动): weekly production per plant x SKU against capacity, fair-share
allocation of each week's output to the regional DCs, DC stock projections with bands,
and emergency cross-region transfers (跨区域调货) or rush runs (紧急生产).

The method, in order:

0. **Demand at a DC** is its region's forecast (of reported sell-through) times the
   region x SKU's ratio of distributors' new orders to reported sell-through over the 13 weeks
   before the plan (`marts.fct_dc_demand_ratios`): the DC ships to every store, not
   only those that report. Its P10-P90 is widened to the spread the DC's orders showed
   around the forecast in its backtest (`dc_band_factors`).
1. **Production** (柔性生产) is a linear programme per plant x category (the unit the
   ERP reports capacity in), solved with HiGHS (`scipy.optimize.linprog`). Demand at
   each DC is its region's forecast as six comonotone paths: a split normal through the
   P10, P50 and P90, discretised by the bracket-median method (`PATH_LEVELS`,
   `PATH_WEIGHTS`; Clemen, *Making Hard Decisions*, ch. 8). The production of a week is
   shared by every path; each path has its own DC stock and lost sales. The objective is
   the expected cost of lost sales and holding plus a changeover penalty on the
   week-to-week change of each SKU's output (a linear stand-in for set-up costs, which
   favours steady runs); the weekly capacity of the plant and category binds. The stock
   kept above the P50 is what pays in expectation: with a lost sale at 100x a week's
   holding, about the 99th percentile of a week's demand. The capacity
   constraint's dual value is reported as the yuan one more unit of capacity would save.
2. **Allocation** (区域分仓): each week's rounded output is split between the DCs by fair
   share, the distribution-requirements-planning rule that equalises cover: every DC is
   brought to the same number of weeks of its need, need = P50 + z x sigma of the week it
   receives the goods (z from the DC's service target, sigma from the P10-P90 spread).
   When supply is short every DC runs out at about the same time instead of one first.
3. **Projection**: each DC's stock week by week under the three demand paths, with the
   safety stock z x sigma and the expected lost units.
4. **Transfers and rush runs**: over the next `transfer_window_weeks`, a DC whose P50
   position (stock + arrivals - P50 demand) falls below its safety stock needs units; a
   DC whose position stays above its own safety stock can give the surplus of what it has
   on hand. Needs are met nearest donor first, in whole cases, when the expected lost
   sales avoided are worth more than the transfer (per case-km plus a fixed charge) and
   the donor's added risk. A need no DC can meet becomes a rush run at the SKU's plant,
   checked against the plan's headroom in week 1.

Inputs are polars frames read from the warehouse marts and `ml.forecast_region_sku_week`;
nothing here reads the simulator's truth. Every planned quantity carries the constraint
that set it (`binding`) and a reason in Chinese and English; every input the plan cannot
use is named in `notes`, never silently dropped.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from datetime import date, timedelta

import numpy as np
import polars as pl
from scipy import sparse
from scipy.optimize import linprog
from scipy.stats import norm

from bclake.core.calendar import week_start
from bclake.core.supply import SupplyConfig

BANDS = ("p10", "p50", "p90")
# the programme's demand paths: a split normal through P10/P50/P90 (sigma below the median
# from P50 - P10, above it from P90 - P50), discretised by the bracket-median method into
# six brackets of probability (0-0.1, 0.1-0.4, 0.4-0.6, 0.6-0.9, 0.9-0.98, 0.98-1), so
# a lost sale dear enough can justify stock beyond the P90
PATH_LEVELS = np.array([0.05, 0.25, 0.5, 0.75, 0.94, 0.99])
PATH_WEIGHTS = np.array([0.1, 0.3, 0.2, 0.3, 0.08, 0.02])
Z_P90 = float(norm.ppf(0.9))
SIGMA_PER_P10_P90 = 2 * Z_P90  # P90 - P10 of a normal, in sigmas (2.563)


class SupplyPlanError(ValueError):
    """The inputs cannot give any plan (e.g. no forecast, no DC), with what to fix."""


@dataclass(frozen=True)
class SupplyInputs:
    """What the plan reads, one frame per mart.

    forecast: region, sku_code, week_start, p10, p50, p90 (units a week, the next weeks).
    dcs: warehouse_code, region.
    stock: warehouse_code, sku_code, on_hand_units (latest snapshot; may be negative).
    products: sku_code, category, case_pack, list_price (yuan).
    sku_plants: sku_code, plant_code (the plant that makes it, from output history).
    capacity: plant_code, category, capacity_units (units a week, latest reported).
    last_output: sku_code, output_units (units made in the latest reported week).
    in_transit: warehouse_code, sku_code, week_start, units (arriving in that week).
    demand_ratios: region, sku_code, ratio (DC shipments per unit of forecast
      sell-through; a pair without a row keeps the forecast as it is).
    band_factors: horizon, low, high (`dc_band_factors`: the P10 and P90 a DC's demand
      reaches, as multiples of the P50, per week ahead; none: the forecast's own band).
    distances: from_warehouse, to_warehouse, distance_km (`marts.fct_dc_distances`; a pair
      without a distance gets no transfer).
    """

    forecast: pl.DataFrame
    dcs: pl.DataFrame
    stock: pl.DataFrame
    products: pl.DataFrame
    sku_plants: pl.DataFrame
    capacity: pl.DataFrame
    last_output: pl.DataFrame
    in_transit: pl.DataFrame = field(
        default_factory=lambda: pl.DataFrame(
            schema={
                "warehouse_code": pl.String,
                "sku_code": pl.String,
                "week_start": pl.Date,
                "units": pl.Int64,
            }
        )
    )
    demand_ratios: pl.DataFrame = field(
        default_factory=lambda: pl.DataFrame(
            schema={"region": pl.String, "sku_code": pl.String, "ratio": pl.Float64}
        )
    )
    band_factors: pl.DataFrame = field(
        default_factory=lambda: pl.DataFrame(
            schema={"horizon": pl.Int64, "low": pl.Float64, "high": pl.Float64}
        )
    )
    distances: pl.DataFrame = field(
        default_factory=lambda: pl.DataFrame(
            schema={
                "from_warehouse": pl.String,
                "to_warehouse": pl.String,
                "distance_km": pl.Float64,
            }
        )
    )


@dataclass
class SupplyPlan:
    """The plan's tables (see `plan_supply`)."""

    production: pl.DataFrame
    allocation: pl.DataFrame
    projection: pl.DataFrame
    transfers: pl.DataFrame
    notes: pl.DataFrame
    solve_seconds: float


@dataclass
class _Dc:
    code: str
    region: str
    lead_weeks: int
    z: float


@dataclass
class _Sku:
    code: str
    category: str
    case_pack: int
    price: float  # yuan a unit, what lost sales, holding and moves are priced at
    plant: str | None
    bands: np.ndarray  # P10 / P50 / P90 x DCs x weeks
    paths: np.ndarray  # PATH_LEVELS x DCs x weeks
    stock0: np.ndarray  # DCs
    transit: np.ndarray  # DCs x weeks
    last_output: float
    arrivals: np.ndarray | None = None  # DCs x weeks, once allocated (transit included)


# --- entry point ---------------------------------------------------------------------------
def plan_supply(inputs: SupplyInputs, config: SupplyConfig, as_of: date) -> SupplyPlan:
    """Plan production, allocation, projections and transfers for the Monday weeks from
    the one holding `as_of` (week 1) on, `config.horizon_weeks` of them.

    Returns a `SupplyPlan` whose frames are:
    production: plant_code, category, sku_code, week, week_start, planned_units,
      capacity_units, block_planned_units, capacity_shadow_yuan, binding (capacity | demand
      | stock | no_plant | no_capacity), reason_zh, reason_en;
    allocation: sku_code, plant_code, week_start (made), arrival_week_start,
      warehouse_code, region, allocated_units, cover_weeks, short, reason_zh, reason_en;
    projection: warehouse_code, region, sku_code, week, week_start, opening_units,
      arrivals_units, demand_p10/p50/p90, stock_p50, stock_low (under P90 demand),
      stock_high (under P10 demand), safety_units, expected_lost_units, status
      (ok | below_safety | stockout_risk), note;
    transfers: kind (transfer | rush_run), sku_code, from_warehouse, from_region,
      plant_code, to_warehouse, to_region, units, cases, distance_km, cost_yuan, avoided_lost_units,
      avoided_lost_yuan, arrive_by, reason_zh, reason_en;
    notes: subject, reason_zh, reason_en (inputs the plan could not use).

    Raises `SupplyPlanError` when there is no forecast for those weeks or no DC to plan
    for.
    """
    started = time.perf_counter()
    notes: list[tuple[str, str, str]] = []
    monday = week_start(as_of)  # forecasts are Monday weeks
    weeks = [monday + timedelta(weeks=w) for w in range(config.horizon_weeks)]
    dcs = _resolve_dcs(inputs, config, notes)
    skus = _resolve_skus(inputs, dcs, weeks, notes)
    if not skus:
        raise SupplyPlanError(
            f"the region forecast has no SKU to plan for the weeks from {monday} (the week "
            f"of {as_of}): run the region forecast on the same data first"
        )
    production = []
    by_block: dict[tuple[str, str], list[_Sku]] = {}
    for sku in skus:
        if sku.plant is None:
            production.append(_unplanned(sku, weeks, "no_plant"))
        else:
            by_block.setdefault((sku.plant, sku.category), []).append(sku)
    capacity = {
        (r["plant_code"], r["category"]): r["capacity_units"]
        for r in inputs.capacity.iter_rows(named=True)
    }
    planned: dict[str, np.ndarray] = {s.code: np.zeros(len(weeks)) for s in skus}
    headroom: dict[tuple[str, str], float] = {}
    for (plant, category), block in sorted(by_block.items()):
        cap = capacity.get((plant, category))
        if cap is None or cap <= 0:
            missing = cap is None
            for sku in block:
                production.append(_unplanned(sku, weeks, "no_capacity", missing=missing))
            headroom[(plant, category)] = 0.0
            continue
        rows, units = _plan_block(block, dcs, weeks, float(cap), config)
        production.append(rows)
        for sku, u in zip(block, units, strict=True):
            planned[sku.code] = u
        headroom[(plant, category)] = float(cap) - float(sum(u[0] for u in units))
    allocation, projection = _allocate_and_project(skus, dcs, weeks, planned)
    transfers = _transfers(skus, dcs, weeks, inputs.distances, headroom, config, as_of)
    return SupplyPlan(
        production=pl.concat(production, how="vertical_relaxed").sort(
            "plant_code", "sku_code", "week"
        ),
        allocation=allocation,
        projection=projection,
        transfers=transfers,
        notes=pl.DataFrame(notes, schema=["subject", "reason_zh", "reason_en"], orient="row").cast(
            pl.String
        ),
        solve_seconds=round(time.perf_counter() - started, 3),
    )


def demand_paths(bands: np.ndarray) -> np.ndarray:
    """PATH_LEVELS x ... of demand from `bands` (P10 / P50 / P90 x ...), through a split
    normal (sigma below the median (P50 - P10) / z90, above it (P90 - P50) / z90), floored
    at 0. A band of zero width gives the P50 on every path."""
    z = norm.ppf(PATH_LEVELS).reshape(-1, *([1] * (bands.ndim - 1)))
    low = (bands[1] - bands[0]) / Z_P90
    high = (bands[2] - bands[1]) / Z_P90
    return np.maximum(0.0, bands[1][None] + z * np.where(z < 0, low[None], high[None]))


def dc_band_factors(
    backtest: pl.DataFrame, shipments: pl.DataFrame, ratios: pl.DataFrame
) -> pl.DataFrame:
    """How far the weekly orders a DC receives stray from the forecast, per week ahead.

    backtest: region, sku_code, cutoff, week_start, horizon, p50 (the region forecast's
    rolling-origin backtest; `cutoff` is the Monday of its last observed week);
    shipments: region, sku_code, week_start, new_order_units (`fct_dc_shipment_weeks`:
    what distributors newly asked of the DC that week, uncut by its stock-outs);
    ratios: region, sku_code, week_start, ratio (`fct_dc_demand_ratios`: each backtest
    origin reads the ratio known at its first forecast week, as the plan does).
    For every backtest row with a forecast, e = new orders / (P50 x ratio); per horizon the
    10th, 50th and 90th percentiles of e, weighted by the forecast's units, give
    low = q10 / q50 and high = q90 / q50 (the spread around the median, not its level,
    which the ratio sets). Returns horizon, low, high, rows. The region forecast's own
    P10-P90 is of sell-through at reporting stores; a DC ships in cases to distributors
    who order in bursts, so its demand spreads wider, and the plan widens each band to
    at least these multiples (never narrows it). Empty when nothing overlaps.
    """
    rows = (
        backtest.select(
            "region",
            "sku_code",
            "week_start",
            "horizon",
            "p50",
            origin=pl.col("cutoff") + pl.duration(weeks=1),
        )
        .join(
            ratios.select("region", "sku_code", origin="week_start", ratio="ratio"),
            on=["region", "sku_code", "origin"],
            how="left",
        )
        .join(
            shipments.select("region", "sku_code", "week_start", "new_order_units"),
            on=["region", "sku_code", "week_start"],
            how="left",
        )
        .with_columns(expected=pl.col("p50") * pl.col("ratio").fill_null(1.0))
        .filter(pl.col("expected") > 0)
        .with_columns(e=pl.col("new_order_units").fill_null(0) / pl.col("expected"))
    )
    out = []
    for (h,), part in rows.partition_by("horizon", as_dict=True).items():
        q10, q50, q90 = _weighted_quantiles(
            part["e"].to_numpy(), part["expected"].to_numpy(), (0.1, 0.5, 0.9)
        )
        if q50 > 0:
            out.append(
                {"horizon": int(h), "low": q10 / q50, "high": q90 / q50, "rows": part.height}
            )
    schema = {"horizon": pl.Int64, "low": pl.Float64, "high": pl.Float64, "rows": pl.Int64}
    return pl.DataFrame(out, schema=schema).sort("horizon")


def _weighted_quantiles(values: np.ndarray, weights: np.ndarray, qs: tuple) -> list[float]:
    order = np.argsort(values, kind="stable")
    v, w = values[order], weights[order]
    cum = (np.cumsum(w) - 0.5 * w) / w.sum()
    return [float(np.interp(q, cum, v)) for q in qs]


def _factors_by_horizon(factors: pl.DataFrame, n_weeks: int) -> pl.DataFrame:
    """`factors` for horizons 1..n_weeks, a horizon without its own taking the nearest
    one below it (or the first one above it)."""
    horizons = pl.DataFrame({"horizon": range(1, n_weeks + 1)}, schema={"horizon": pl.Int64})
    have = factors.select("horizon", "low", "high").sort("horizon")
    below = horizons.join_asof(have, on="horizon", strategy="backward")
    above = horizons.join_asof(have, on="horizon", strategy="forward")
    return below.with_columns(
        low=pl.col("low").fill_null(above["low"]), high=pl.col("high").fill_null(above["high"])
    )


# --- inputs --------------------------------------------------------------------------------
def _resolve_dcs(
    inputs: SupplyInputs, config: SupplyConfig, notes: list[tuple[str, str, str]]
) -> list[_Dc]:
    out: list[_Dc] = []
    seen_regions: set[str] = set()
    for r in inputs.dcs.sort("warehouse_code").iter_rows(named=True):
        code, region = r["warehouse_code"], r["region"]
        lead, service = config.dc(code)
        if lead is None:
            notes.append(
                (
                    code,
                    f"{code} 无补货提前期: 请在供应配置文件中为其填写 lead_days, "
                    "本次计划未包含该仓",
                    f"{code} has no lead time: add lead_days for it to the supply file; "
                    "it is left out of this plan",
                )
            )
            continue
        if region in seen_regions:
            notes.append(
                (
                    code,
                    f"{code}: 区域 {region} 已有区域仓, 本次计划按第一个仓计算",
                    f"{code}: region {region} already has a DC; the plan uses the first one",
                )
            )
            continue
        seen_regions.add(region)
        out.append(
            _Dc(
                code=code,
                region=region,
                lead_weeks=lead // 7,
                z=float(norm.ppf(service)),
            )
        )
    if not out:
        raise SupplyPlanError(
            "no DC to plan for: the ERP warehouse export lists no DC with a region, or none "
            "has a lead time in the supply file"
        )
    return out


def _resolve_skus(
    inputs: SupplyInputs, dcs: list[_Dc], weeks: list[date], notes: list[tuple[str, str, str]]
) -> list[_Sku]:
    if inputs.forecast.is_empty():
        raise SupplyPlanError("no region forecast to plan from: run the region forecast first")
    region_dc = {d.region: i for i, d in enumerate(dcs)}
    week_idx = {w: i for i, w in enumerate(weeks)}
    fc = (
        inputs.forecast.filter(pl.col("week_start").is_in(weeks))
        .join(
            inputs.demand_ratios.select("region", "sku_code", "ratio"),
            on=["region", "sku_code"],
            how="left",
        )
        .with_columns([(pl.col(p) * pl.col("ratio").fill_null(1.0)).alias(p) for p in BANDS])
        .with_columns(
            horizon=pl.col("week_start").replace_strict(
                {w: i + 1 for i, w in enumerate(weeks)}, return_dtype=pl.Int64
            )
        )
        .join(_factors_by_horizon(inputs.band_factors, len(weeks)), on="horizon", how="left")
        .with_columns(
            p10=pl.min_horizontal("p10", pl.col("p50") * pl.col("low").fill_null(1.0)),
            p90=pl.max_horizontal("p90", pl.col("p50") * pl.col("high").fill_null(1.0)),
        )
    )
    for region in sorted(set(fc["region"].unique().to_list()) - set(region_dc)):
        notes.append(
            (
                region,
                f"区域 {region} 有预测但没有区域仓: 其需求未纳入计划, 请在 ERP 仓库表中登记",
                f"region {region} has a forecast but no DC: its demand is not planned; "
                "register its DC in the ERP warehouse export",
            )
        )
    plants = dict(inputs.sku_plants.select("sku_code", "plant_code").iter_rows())
    last = dict(inputs.last_output.select("sku_code", "output_units").iter_rows())
    products = {r["sku_code"]: r for r in inputs.products.iter_rows(named=True)}
    n_d, n_w = len(dcs), len(weeks)
    out: list[_Sku] = []
    for sku_code in sorted(fc["sku_code"].unique().to_list()):
        p = products.get(sku_code)
        if p is None:
            notes.append(
                (
                    sku_code,
                    f"{sku_code} 不在产品主数据中: 无法计划, 请补充 ERP 产品表",
                    f"{sku_code} is not in the product master: it cannot be planned; "
                    "add it to the ERP product export",
                )
            )
            continue
        demand = np.zeros((len(BANDS), n_d, n_w))
        rows = fc.filter(pl.col("sku_code") == sku_code)
        for r in rows.iter_rows(named=True):
            d = region_dc.get(r["region"])
            if d is None:
                continue
            for s, path in enumerate(BANDS):
                demand[s, d, week_idx[r["week_start"]]] = max(0.0, r[path] or 0.0)
        demand = np.sort(demand, axis=0)  # a crossing forecast still gives P10 <= P50 <= P90
        price = float(p["list_price"] or 0.0)
        if price <= 0:
            price = 1.0
            notes.append(
                (
                    sku_code,
                    f"{sku_code} 无标价: 缺货、库存和调拨成本按每件 1 元计算, 请补充 ERP 产品表",
                    f"{sku_code} has no list price: its lost sales, stock and moves are "
                    "costed at 1 yuan a unit; add the price to the ERP product export",
                )
            )
        out.append(
            _Sku(
                code=sku_code,
                category=p["category"],
                case_pack=max(1, int(p["case_pack"] or 1)),
                price=price,
                plant=plants.get(sku_code),
                bands=demand,
                paths=demand_paths(demand),
                stock0=np.zeros(n_d),
                transit=np.zeros((n_d, n_w)),
                last_output=float(last.get(sku_code) or 0.0),
            )
        )
    _load_positions(inputs, out, dcs, weeks, notes)
    return out


def _load_positions(
    inputs: SupplyInputs,
    skus: list[_Sku],
    dcs: list[_Dc],
    weeks: list[date],
    notes: list[tuple[str, str, str]],
) -> None:
    """Opening stock (negative counts as 0, with a note) and in-transit units of each SKU."""
    week_idx = {w: i for i, w in enumerate(weeks)}
    dc_idx = {d.code: i for i, d in enumerate(dcs)}
    by_code = {s.code: s for s in skus}
    for r in inputs.stock.iter_rows(named=True):
        sku, d = by_code.get(r["sku_code"]), dc_idx.get(r["warehouse_code"])
        if sku is None or d is None:
            continue
        units = r["on_hand_units"] or 0
        if units < 0:
            notes.append(
                (
                    f"{r['warehouse_code']} {r['sku_code']}",
                    f"{r['warehouse_code']} {r['sku_code']} 库存为负 ({units}): 按 0 计划, "
                    "请核对盘点",
                    f"{r['warehouse_code']} {r['sku_code']} has negative stock ({units}): "
                    "planned as 0; check the stock count",
                )
            )
        sku.stock0[d] = max(0, units)
    for r in inputs.in_transit.iter_rows(named=True):
        sku, d = by_code.get(r["sku_code"]), dc_idx.get(r["warehouse_code"])
        w = week_idx.get(r["week_start"])
        if sku is not None and d is not None and w is not None:
            sku.transit[d, w] += max(0, r["units"] or 0)


# --- production: one linear programme per plant x category -------------------------------
class _Programme:
    """The variables and rows of one plant x category's linear programme.

    Variables, each >= 0: x (SKU, week) production; a (SKU, DC, week) allocation;
    r (SKU, week) change of output from the week before; stock and lost (path, SKU, DC,
    week)
    end-of-week stock and lost units under each demand path.
    """

    def __init__(self, n_k: int, n_d: int, n_w: int) -> None:
        self.n_k, self.n_d, self.n_w, self.n_s = n_k, n_d, n_w, len(PATH_LEVELS)
        self.off_a = n_k * n_w
        self.off_r = self.off_a + n_k * n_d * n_w
        self.off_i = self.off_r + n_k * n_w
        self.off_l = self.off_i + self.n_s * n_k * n_d * n_w
        self.n_var = self.off_l + self.n_s * n_k * n_d * n_w
        self.cost = np.zeros(self.n_var)
        self.upper = np.full(self.n_var, np.inf)
        self.eq: tuple[list[int], list[int], list[float], list[float]] = ([], [], [], [])
        self.ub: tuple[list[int], list[int], list[float], list[float]] = ([], [], [], [])

    def x(self, k: int, w: int) -> int:
        return k * self.n_w + w

    def a(self, k: int, d: int, w: int) -> int:
        return self.off_a + (k * self.n_d + d) * self.n_w + w

    def r(self, k: int, w: int) -> int:
        return self.off_r + k * self.n_w + w

    def stock(self, s: int, k: int, d: int, w: int) -> int:
        return self.off_i + ((s * self.n_k + k) * self.n_d + d) * self.n_w + w

    def lost(self, s: int, k: int, d: int, w: int) -> int:
        return self.off_l + ((s * self.n_k + k) * self.n_d + d) * self.n_w + w

    def add(self, kind: str, coefs: list[tuple[int, float]], rhs: float) -> int:
        """Add a row (`kind` 'eq' or 'ub') sum(coef x var) = or <= rhs; returns its index."""
        rows, cols, vals, bounds = self.eq if kind == "eq" else self.ub
        row = len(bounds)
        for c, v in coefs:
            rows.append(row)
            cols.append(c)
            vals.append(v)
        bounds.append(rhs)
        return row

    def solve(self):
        def matrix(part: tuple) -> sparse.csr_array:
            rows, cols, vals, bounds = part
            return sparse.csr_array((vals, (rows, cols)), shape=(len(bounds), self.n_var))

        return linprog(
            self.cost,
            A_ub=matrix(self.ub),
            b_ub=np.array(self.ub[3]),
            A_eq=matrix(self.eq),
            b_eq=np.array(self.eq[3]),
            bounds=np.column_stack([np.zeros(self.n_var), self.upper]),
            method="highs-ipm",
        )


def _production_rows(lp: _Programme, k: int, sku: _Sku, config: SupplyConfig) -> None:
    """A SKU's output, its split between DCs and its changeover rows and costs."""
    for w in range(lp.n_w):
        lp.cost[lp.r(k, w)] = config.changeover_cost * sku.price
        lp.add("eq", [(lp.a(k, d, w), 1.0) for d in range(lp.n_d)] + [(lp.x(k, w), -1.0)], 0.0)
        prev = [(lp.x(k, w - 1), -1.0)] if w else []
        const = 0.0 if w else sku.last_output
        lp.add("ub", [(lp.x(k, w), 1.0), *prev, (lp.r(k, w), -1.0)], const)
        lp.add("ub", [(lp.x(k, w), -1.0), *[(c, -v) for c, v in prev], (lp.r(k, w), -1.0)], -const)


def _balance_rows(lp: _Programme, k: int, sku: _Sku, dcs: list[_Dc], config: SupplyConfig) -> None:
    """Stock balance per path, DC and week: stock = last week's + arrivals - demand + lost."""
    holding = PATH_WEIGHTS * config.holding_cost_week * sku.price
    lost = PATH_WEIGHTS * config.lost_sale_cost * sku.price
    for d, dc in enumerate(dcs):
        for w in range(lp.n_w):
            if w + dc.lead_weeks >= lp.n_w:
                lp.upper[lp.a(k, d, w)] = 0.0  # would arrive after the horizon
            src = w - dc.lead_weeks
            for s in range(lp.n_s):
                lp.cost[lp.stock(s, k, d, w)] = holding[s]
                lp.cost[lp.lost(s, k, d, w)] = lost[s]
                coefs = [(lp.stock(s, k, d, w), 1.0), (lp.lost(s, k, d, w), -1.0)]
                if w:
                    coefs.append((lp.stock(s, k, d, w - 1), -1.0))
                if src >= 0:
                    coefs.append((lp.a(k, d, src), -1.0))
                opening = sku.stock0[d] if w == 0 else 0.0
                lp.add("eq", coefs, -sku.paths[s, d, w] + sku.transit[d, w] + opening)


def _plan_block(
    block: list[_Sku], dcs: list[_Dc], weeks: list[date], cap: float, config: SupplyConfig
) -> tuple[pl.DataFrame, list[np.ndarray]]:
    """Solve one plant x category; returns its production rows and each SKU's units."""
    lp = _Programme(len(block), len(dcs), len(weeks))
    for k, sku in enumerate(block):
        _production_rows(lp, k, sku, config)
        _balance_rows(lp, k, sku, dcs, config)
    cap_rows = [
        lp.add("ub", [(lp.x(k, w), 1.0) for k in range(lp.n_k)], cap) for w in range(lp.n_w)
    ]
    res = lp.solve()
    if res.status != 0:
        raise SupplyPlanError(
            f"production plan for {block[0].plant} {block[0].category}: the solver stopped "
            f"({res.message})"
        )
    slack = res.ineqlin.residual[cap_rows]
    shadow = -res.ineqlin.marginals[cap_rows]
    sol = res.x
    raw = sol[: lp.off_a].reshape(lp.n_k, lp.n_w)
    units = _round_to_cases(raw, np.array([s.case_pack for s in block]), cap)
    lost_paths = sol[lp.off_l :].reshape(lp.n_s, lp.n_k, lp.n_d, lp.n_w).sum(axis=2)
    lost = np.tensordot(PATH_WEIGHTS, lost_paths, axes=1)  # SKUs x weeks, expected
    rows = []
    for k, sku in enumerate(block):
        for w in range(lp.n_w):
            full = slack[w] <= 1e-6 * max(1.0, cap) and shadow[w] > 1e-9
            binding = "capacity" if full else ("demand" if units[k, w] > 0 else "stock")
            zh, en = _production_reason(binding, sku, units[k, w], cap, shadow[w], lost[k, w])
            rows.append(
                {
                    "plant_code": sku.plant,
                    "category": sku.category,
                    "sku_code": sku.code,
                    "week": w + 1,
                    "week_start": weeks[w],
                    "planned_units": int(units[k, w]),
                    "capacity_units": int(cap),
                    "block_planned_units": int(units[:, w].sum()),
                    "capacity_shadow_yuan": round(float(max(shadow[w], 0.0)), 4),
                    "expected_lost_units": round(float(lost[k, w]), 2),
                    "binding": binding,
                    "reason_zh": zh,
                    "reason_en": en,
                }
            )
    return pl.DataFrame(rows), [units[k].astype(float) for k in range(lp.n_k)]


def _round_to_cases(raw: np.ndarray, case_pack: np.ndarray, cap: float) -> np.ndarray:
    """SKUs x weeks of units in whole cases: to the nearest case, down where that would
    pass the week's capacity."""
    nearest = np.round(raw / case_pack[:, None]) * case_pack[:, None]
    down = np.floor(raw / case_pack[:, None] + 1e-9) * case_pack[:, None]
    over = nearest.sum(axis=0) > cap + 1e-9
    return np.where(over[None, :], down, nearest)


def _production_reason(
    binding: str, sku: _Sku, units: float, cap: float, shadow: float, lost: float
) -> tuple[str, str]:
    if binding == "capacity":
        return (
            f"产能约束: {sku.plant} {sku.category} 本周产能 {cap:,.0f} 已排满; 每增加 1 单位"
            f"产能约可少损失 ¥{shadow:,.2f}, 预计缺货 {lost:,.0f} 件",
            f"capacity: {sku.plant} {sku.category} is full this week ({cap:,.0f}); one more "
            f"unit of capacity would save about ¥{shadow:,.2f}; expected lost {lost:,.0f}",
        )
    if binding == "demand":
        return (
            f"按需生产 {units:,.0f} 件: 覆盖各区域仓 P50 需求及按预测区间留出的缓冲",
            f"make {units:,.0f} to cover the DCs' P50 demand and a buffer sized by the "
            "forecast's P10-P90 spread",
        )
    return (
        "本周不生产: 区域仓库存和已排产量足以覆盖预期需求",
        "nothing this week: DC stock and earlier runs cover the expected demand",
    )


def _unplanned(sku: _Sku, weeks: list[date], binding: str, missing: bool = False) -> pl.DataFrame:
    if binding == "no_plant":
        zh = f"{sku.code} 无生产工厂记录 (ERP 产量表中从未生产): 无法排产, 请指定工厂"
        en = (
            f"{sku.code} has no plant (never in the ERP output export): it cannot be "
            "planned; assign it to a plant"
        )
    elif missing:
        zh = f"{sku.plant} 没有 {sku.category} 的产能记录: 无法排产, 请补充 ERP 产能表"
        en = (
            f"{sku.plant} reports no capacity for {sku.category}: nothing can be planned; "
            "add it to the ERP capacity export"
        )
    else:
        zh = f"{sku.plant} 的 {sku.category} 产能为 0: 无法排产, 请核对产能或换厂生产"
        en = (
            f"{sku.plant} has zero capacity for {sku.category}: nothing can be planned; "
            "check the capacity or move the SKU to another plant"
        )
    return pl.DataFrame(
        {
            "plant_code": [sku.plant] * len(weeks),
            "category": [sku.category] * len(weeks),
            "sku_code": [sku.code] * len(weeks),
            "week": list(range(1, len(weeks) + 1)),
            "week_start": weeks,
            "planned_units": [0] * len(weeks),
            "capacity_units": [0] * len(weeks),
            "block_planned_units": [0] * len(weeks),
            "capacity_shadow_yuan": [0.0] * len(weeks),
            "expected_lost_units": [float(sku.bands[1, :, w].sum()) for w in range(len(weeks))],
            "binding": [binding] * len(weeks),
            "reason_zh": [zh] * len(weeks),
            "reason_en": [en] * len(weeks),
        },
        schema_overrides={"plant_code": pl.String},
    )


# --- allocation (fair share) and projection ----------------------------------------------
def fair_share(
    supply: float, available: np.ndarray, need: np.ndarray, case_pack: int
) -> np.ndarray:
    """Split `supply` units between DCs so each reaches the same cover, in whole cases.

    available: DCs, units each will hold when the goods arrive; need: DCs, units a week
    each needs (P50 + z x sigma); both >= 0. The cover c solves
    sum(max(0, c x need - available)) = supply rounded down to whole cases (equal
    run-out time, the fair-share rule of distribution requirements planning); the cases
    left by rounding go to the DCs closest to their next case. A DC without need gets
    nothing; with no need anywhere, or under one case of supply, nothing is split (all
    zero). Returns DCs of units.
    """
    n_cases = int(supply // case_pack)
    out = np.zeros(len(need))
    if n_cases <= 0 or need.sum() <= 0:
        return out
    target = float(n_cases * case_pack)
    lo, hi = 0.0, (available.sum() + target) / need[need > 0].min() + 1.0
    for _ in range(100):
        mid = (lo + hi) / 2
        if np.maximum(0.0, mid * need - available).sum() < target:
            lo = mid
        else:
            hi = mid
    share = np.maximum(0.0, hi * need - available)
    share *= target / share.sum()
    cases = np.floor(share / case_pack + 1e-9)
    left = n_cases - int(cases.sum())
    if left > 0:
        order = np.argsort(-(share / case_pack - cases), kind="stable")
        cases[order[:left]] += 1
    return cases * case_pack


def _allocate_and_project(
    skus: list[_Sku],
    dcs: list[_Dc],
    weeks: list[date],
    planned: dict[str, np.ndarray],
) -> tuple[pl.DataFrame, pl.DataFrame]:
    n_d, n_w = len(dcs), len(weeks)
    z = np.array([d.z for d in dcs])
    alloc_rows, proj_rows = [], []
    for sku in skus:
        sigma = (sku.bands[2] - sku.bands[0]) / SIGMA_PER_P10_P90  # DCs x weeks
        need = sku.bands[1] + z[:, None] * sigma
        arrivals = sku.transit.copy()
        # a week's run arrives at each DC lead_weeks later; the split is decided then
        for w in range(n_w):
            units = planned[sku.code][w]
            eligible = np.array([w + d.lead_weeks < n_w for d in dcs])
            if units > 0 and eligible.any():
                t = np.array([min(w + d.lead_weeks, n_w - 1) for d in dcs])
                avail = np.array([_p50_before(sku, arrivals, d, t[d]) for d in range(n_d)])
                nd = np.where(eligible, need[np.arange(n_d), t], 0.0)
                split = fair_share(units, avail, nd, sku.case_pack)
                cover = (avail + split) / np.maximum(nd, 1e-9)
                for d in range(n_d):
                    if split[d] <= 0:
                        continue
                    arrivals[d, t[d]] += split[d]
                    short = bool(cover[d] < 1.0)
                    alloc_rows.append(
                        {
                            "sku_code": sku.code,
                            "plant_code": sku.plant,
                            "week_start": weeks[w],
                            "arrival_week_start": weeks[t[d]],
                            "warehouse_code": dcs[d].code,
                            "region": dcs[d].region,
                            "allocated_units": int(split[d]),
                            "cover_weeks": round(float(cover[d]), 2),
                            "short": short,
                            "reason_zh": (
                                "供应不足, 按公平分配: 各仓覆盖周数拉平"
                                if short
                                else "按公平分配: 各仓补到相同的覆盖周数"
                            ),
                            "reason_en": (
                                "short supply, fair share: every DC reaches the same cover"
                                if short
                                else "fair share: every DC brought to the same weeks of cover"
                            ),
                        }
                    )
        sku.arrivals = arrivals
        bands = _project_paths(sku, sku.bands, arrivals)  # (start, end, lost) P10/P50/P90
        expected = np.tensordot(PATH_WEIGHTS, _project_paths(sku, sku.paths, arrivals)[2], 1)
        for d, dc in enumerate(dcs):
            for w in range(n_w):
                start, end, lost = bands[0][:, d, w], bands[1][:, d, w], bands[2][:, d, w]
                safety = float(z[d] * sigma[d, w])
                exp_lost = float(expected[d, w])
                status = (
                    "stockout_risk"
                    if lost[2] > 0
                    else ("below_safety" if end[1] < safety else "ok")
                )
                proj_rows.append(
                    {
                        "warehouse_code": dc.code,
                        "region": dc.region,
                        "sku_code": sku.code,
                        "week": w + 1,
                        "week_start": weeks[w],
                        "opening_units": round(float(start[1]), 1),
                        "arrivals_units": int(arrivals[d, w]),
                        "demand_p10": round(float(sku.bands[0, d, w]), 2),
                        "demand_p50": round(float(sku.bands[1, d, w]), 2),
                        "demand_p90": round(float(sku.bands[2, d, w]), 2),
                        "stock_p50": round(float(end[1]), 1),
                        "stock_low": round(float(end[2]), 1),
                        "stock_high": round(float(end[0]), 1),
                        "safety_units": round(safety, 1),
                        "expected_lost_units": round(exp_lost, 2),
                        "status": status,
                    }
                )
    alloc_schema = {
        "sku_code": pl.String,
        "plant_code": pl.String,
        "week_start": pl.Date,
        "arrival_week_start": pl.Date,
        "warehouse_code": pl.String,
        "region": pl.String,
        "allocated_units": pl.Int64,
        "cover_weeks": pl.Float64,
        "short": pl.Boolean,
        "reason_zh": pl.String,
        "reason_en": pl.String,
    }
    return pl.DataFrame(alloc_rows, schema=alloc_schema), pl.DataFrame(proj_rows)


def _p50_before(sku: _Sku, arrivals: np.ndarray, d: int, t: int) -> float:
    """Units DC `d` holds at the start of week `t` under P50 demand, with arrivals so far
    (lost sales are lost: stock never goes below zero)."""
    stock = float(sku.stock0[d])
    for w in range(t):
        stock = max(0.0, stock + arrivals[d, w] - sku.bands[1, d, w])
    return stock + float(arrivals[d, t])


def _project_paths(sku: _Sku, demand: np.ndarray, arrivals: np.ndarray) -> tuple[np.ndarray, ...]:
    """(start stock incl. arrivals, end stock, lost units), each paths x DCs x weeks, for
    `demand` (paths x DCs x weeks) and `arrivals` (DCs x weeks)."""
    n_s, n_d, n_w = demand.shape
    start = np.zeros((n_s, n_d, n_w))
    end = np.zeros((n_s, n_d, n_w))
    lost = np.zeros((n_s, n_d, n_w))
    stock = np.repeat(sku.stock0[None, :], n_s, axis=0).astype(float)
    for w in range(n_w):
        stock = stock + arrivals[None, :, w]
        start[:, :, w] = stock
        lost[:, :, w] = np.maximum(0.0, demand[:, :, w] - stock)
        stock = np.maximum(0.0, stock - demand[:, :, w])
        end[:, :, w] = stock
    return start, end, lost


# --- transfers and rush runs -----------------------------------------------------------------
TRANSFER_SCHEMA = {
    "kind": pl.String,
    "sku_code": pl.String,
    "from_warehouse": pl.String,
    "from_region": pl.String,
    "plant_code": pl.String,
    "to_warehouse": pl.String,
    "to_region": pl.String,
    "units": pl.Int64,
    "cases": pl.Int64,
    "distance_km": pl.Float64,
    "cost_yuan": pl.Float64,
    "avoided_lost_units": pl.Float64,
    "avoided_lost_yuan": pl.Float64,
    "arrive_by": pl.Date,
    "reason_zh": pl.String,
    "reason_en": pl.String,
}


@dataclass
class _Window:
    """One SKU over the transfer window at every DC: three-point demand (paths x DCs),
    supply (stock + arrivals), the gap to safety stock and the units each DC can spare."""

    demand: np.ndarray
    supply: np.ndarray
    gap: np.ndarray
    spare: np.ndarray
    weeks: int

    def avoided(self, d: int, units: float) -> float:
        """Expected lost units DC `d` avoids with `units` more (negative: fewer)."""
        return _expected_lost(self.demand[:, d], self.supply[d]) - _expected_lost(
            self.demand[:, d], self.supply[d] + units
        )


def _window(sku: _Sku, dcs: list[_Dc], n_win: int) -> _Window:
    z = np.array([d.z for d in dcs])
    demand = sku.paths[:, :, :n_win].sum(axis=2)  # comonotone sums of the weeks
    sigma = np.sqrt(
        (((sku.bands[2] - sku.bands[0])[:, :n_win] / SIGMA_PER_P10_P90) ** 2).sum(axis=1)
    )
    assert sku.arrivals is not None, "allocate before planning transfers"
    supply = sku.stock0 + sku.arrivals[:, :n_win].sum(axis=1)
    gap = supply - sku.bands[1, :, :n_win].sum(axis=1) - z * sigma
    spare = np.minimum(np.maximum(gap, 0.0), sku.stock0)  # only stock on hand can move
    return _Window(demand, supply, gap, spare, n_win)


def _transfers(
    skus: list[_Sku],
    dcs: list[_Dc],
    weeks: list[date],
    distances: pl.DataFrame,
    headroom: dict[tuple[str, str], float],
    config: SupplyConfig,
    as_of: date,
) -> pl.DataFrame:
    n_win = min(config.transfer_window_weeks, len(weeks))
    dist = _distance_matrix(dcs, distances)
    rows: list[dict] = []
    for sku in skus:
        win = _window(sku, dcs, n_win)
        for d in np.argsort(win.gap, kind="stable"):
            if win.gap[d] >= 0:
                break
            need = _from_donors(sku, int(d), -win.gap[d], win, dist, dcs, config, as_of, rows)
            if need >= sku.case_pack and sku.plant is not None:
                room = headroom.get((sku.plant, sku.category), 0.0)
                rush = _rush_run(sku, dcs[d], int(d), need, win, room, weeks, config)
                if rush:
                    rows.append(rush)
                    headroom[(sku.plant, sku.category)] = room - rush["units"]
    return pl.DataFrame(rows, schema=TRANSFER_SCHEMA)


def _from_donors(
    sku: _Sku,
    d: int,
    need: float,
    win: _Window,
    dist: np.ndarray,
    dcs: list[_Dc],
    config: SupplyConfig,
    as_of: date,
    rows: list[dict],
) -> float:
    """Meet DC `d`'s `need` from the nearest DCs with spare stock, appending a row per
    transfer that pays; returns the need left."""
    lost_cost = config.lost_sale_cost * sku.price
    n_win = win.weeks
    for e in np.argsort(dist[d], kind="stable"):
        if e == d or math.isnan(dist[d, e]) or need < sku.case_pack:
            continue
        cases = int(min(need, win.spare[e]) // sku.case_pack)
        if cases <= 0:
            continue
        units = cases * sku.case_pack
        avoided = win.avoided(d, units) + win.avoided(int(e), -units)
        cost = cases * dist[d, e] * config.transfer_yuan_per_case_km + config.transfer_fixed_yuan
        if avoided * lost_cost <= cost:
            continue
        rows.append(
            {
                "kind": "transfer",
                "sku_code": sku.code,
                "from_warehouse": dcs[e].code,
                "from_region": dcs[e].region,
                "plant_code": sku.plant,
                "to_warehouse": dcs[d].code,
                "to_region": dcs[d].region,
                "units": units,
                "cases": cases,
                "distance_km": round(float(dist[d, e]), 1),
                "cost_yuan": round(cost, 2),
                "avoided_lost_units": round(avoided, 1),
                "avoided_lost_yuan": round(avoided * lost_cost, 2),
                "arrive_by": as_of + timedelta(days=config.transfer_lead_days),
                "reason_zh": (
                    f"{dcs[d].code} 未来 {n_win} 周预计低于安全库存, {dcs[e].code} 有富余: "
                    f"调拨 {cases} 箱 ({dist[d, e]:,.0f} 公里, ¥{cost:,.0f}), "
                    f"预计少损失 {avoided:,.0f} 件"
                ),
                "reason_en": (
                    f"{dcs[d].code} falls below its safety stock in the next {n_win} weeks "
                    f"and {dcs[e].code} has spare: move {cases} cases ({dist[d, e]:,.0f} km, "
                    f"¥{cost:,.0f}), about {avoided:,.0f} fewer units lost"
                ),
            }
        )
        win.supply[d] += units
        win.supply[e] -= units
        win.spare[e] -= units
        need -= units
    return need


def _rush_run(
    sku: _Sku,
    dc: _Dc,
    d: int,
    need: float,
    win: _Window,
    room: float,
    weeks: list[date],
    config: SupplyConfig,
) -> dict | None:
    """A rush production run for what no DC could spare, when it pays; None otherwise."""
    lost_cost = config.lost_sale_cost * sku.price
    units = int(math.ceil(need / sku.case_pack) * sku.case_pack)
    avoided = win.avoided(d, units)
    cost = units * sku.price * config.expedite_premium
    if avoided * lost_cost <= cost:
        return None
    win.supply[d] += units
    fits = room >= units
    zh_room = (
        f"第 1 周产能余量 {room:,.0f} 可容纳"
        if fits
        else f"超出第 1 周产能余量 {max(room, 0):,.0f}: 需加班或外协"
    )
    en_room = (
        f"fits in week 1's spare capacity ({room:,.0f})"
        if fits
        else f"exceeds week 1's spare capacity ({max(room, 0):,.0f}): overtime or a co-packer"
    )
    return {
        "kind": "rush_run",
        "sku_code": sku.code,
        "from_warehouse": None,
        "from_region": None,
        "plant_code": sku.plant,
        "to_warehouse": dc.code,
        "to_region": dc.region,
        "units": units,
        "cases": units // sku.case_pack,
        "distance_km": None,
        "cost_yuan": round(cost, 2),
        "avoided_lost_units": round(avoided, 1),
        "avoided_lost_yuan": round(avoided * lost_cost, 2),
        "arrive_by": weeks[0] + timedelta(days=7 * dc.lead_weeks + 3),
        "reason_zh": f"{dc.code} 将低于安全库存且没有仓可调: 紧急生产 {units:,} 件, {zh_room}",
        "reason_en": (
            f"{dc.code} will fall below its safety stock and no DC can spare stock: rush "
            f"run of {units:,} units, {en_room}"
        ),
    }


def _expected_lost(window: np.ndarray, supply: float) -> float:
    """Expected units short with `supply` for demand `window` (one value per path level)."""
    return float(PATH_WEIGHTS @ np.maximum(0.0, window - supply))


def _distance_matrix(dcs: list[_Dc], distances: pl.DataFrame) -> np.ndarray:
    """DCs x DCs km from `distances` (from_warehouse, to_warehouse, distance_km); NaN for
    a pair it lacks or leaves null."""
    index = {d.code: i for i, d in enumerate(dcs)}
    out = np.full((len(dcs), len(dcs)), np.nan)
    for a, b, km in distances.select("from_warehouse", "to_warehouse", "distance_km").iter_rows():
        if a in index and b in index and km is not None:
            out[index[a], index[b]] = km
    return out
