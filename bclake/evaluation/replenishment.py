"""Closed-loop inventory simulation: the replenishment engine vs a min/max policy.

Over the store forecast's backtest weeks, every store x SKU the engine forecasts is
replayed day by day with its true, uncensored demand (from the simulator's truth),
the same starting stock, the same weekly review day and the same true lead time:

- engine: at each review, order up to the level `ml.replenishment.order_quantity`
  computes from the backtest forecast made before that week (the policy the
  pipeline ships, on forecasts it could have had);
- min/max: the rule of thumb it replaces, from the trailing 28 days of observed
  sales d (what a store sees: sales, not lost demand): reorder up to
  max = 2 x d x (lead + review), and at least a pack, when the position is at or
  below min = d x (lead + review), and at least one unit.

Plain min/max may hold more or less stock than the engine, so it is also replayed
with both levels scaled by k, and the smallest k whose fill rate reaches the
engine's is reported as `minmax_matched`: the turnover comparison "at equal or
better fill rate".
"""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import duckdb
import numpy as np
import polars as pl

from bclake.ml.replenishment import (
    Policy,
    order_quantity,
    peak_days,
    week_mean,
    week_sigma,
)
from bclake.simulator.dynamics import STORE_LEAD_DAYS

KEYS = ["store_code", "sku_code"]
TURNOVER_TARGET = 1.25


def _load(truth_dir: Path, published_db: Path) -> dict:
    con = duckdb.connect(str(published_db), read_only=True)
    try:
        bt = con.sql(
            "select store_code, sku_code, week_start, cutoff, p10, p50, p90 "
            "from ml.forecast_store_sku_week_backtest"
        ).pl()
        lead = con.sql("select median(delivery_date - order_date) from marts.fct_store_orders")
        lead_days = float(lead.fetchall()[0][0] or 2)
        multiples = con.sql(
            "select distinct sku_code, order_multiple from marts.fct_store_stock_positions"
        ).pl()
        start = bt["week_start"].min()
    finally:
        con.close()
    pairs = bt.select(KEYS).unique().sort(KEYS).with_row_index("i")
    n_days = (bt["week_start"].max() - start).days + 7
    demand = (
        pl.scan_parquet(truth_dir / "demand_daily" / "*.parquet")
        .filter(
            pl.col("date").is_between(
                start - timedelta(days=28), start + timedelta(days=n_days - 1)
            )
        )
        .join(pairs.lazy(), on=KEYS)
        .collect()
    )
    return {
        "bt": bt.join(pairs, on=KEYS),
        "pairs": pairs,
        "start": start,
        "n_days": n_days,
        "lead_days": lead_days,
        "multiples": pairs.join(multiples, on="sku_code", how="left")["order_multiple"]
        .fill_null(1)
        .to_numpy(),
        "demand": demand,
    }


def _days_since(days: pl.Series, start: date) -> np.ndarray:
    return days.to_frame("d").select((pl.col("d") - pl.lit(start)).dt.total_days())["d"].to_numpy()


def _matrix(
    frame: pl.DataFrame, col: str, n_pairs: int, start, n_days: int, offset: int = 0
) -> np.ndarray:
    out = np.zeros((n_pairs, n_days + offset))
    day = _days_since(frame["date"], start) + offset
    ok = (day >= 0) & (day < n_days + offset)
    out[frame["i"].to_numpy()[ok], day[ok]] = frame[col].to_numpy()[ok]
    return out


def _engine_levels(data: dict, policy: Policy) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per review week: mean and sigma of demand over lead + review days, and z.

    A review in week k reads only the forecast made at the cutoff before week k; when
    its protection interval runs into a week that forecast does not cover, the last
    covered week is carried (a later cutoff's forecast was not available yet).
    """
    bt, n_pairs, start = data["bt"], len(data["pairs"]), data["start"]
    n_weeks = data["n_days"] // 7
    cutoffs = sorted(bt["cutoff"].unique().to_list())
    c = bt["cutoff"].replace_strict({d: i for i, d in enumerate(cutoffs)}).to_numpy()
    w = _days_since(bt["week_start"], start) // 7
    i = bt["i"].to_numpy()
    p10, p90 = bt["p10"].to_numpy(), bt["p90"].to_numpy()
    mean_w = np.zeros((len(cutoffs), n_pairs, n_weeks))
    sigma_w = np.zeros((len(cutoffs), n_pairs, n_weeks))
    covered = np.zeros((len(cutoffs), n_weeks), dtype=bool)
    mean_w[c, i, w] = week_mean(p10, bt["p50"].to_numpy(), p90)
    sigma_w[c, i, w] = np.clip(week_sigma(p10, p90), 0, None)
    covered[c, w] = True
    protection = round(data["lead_days"]) + policy.review_days
    extra = (protection - 7) / 7.0  # share of the next week inside the protection interval
    mean = np.zeros((n_pairs, n_weeks))
    sd = np.zeros((n_pairs, n_weeks))
    for k in range(n_weeks):
        ck = int(np.flatnonzero(covered[:, k])[-1])
        nxt = k + 1 if k + 1 < n_weeks and covered[ck, k + 1] else k
        mean[:, k] = mean_w[ck, :, k] + extra * mean_w[ck, :, nxt]
        sd[:, k] = np.sqrt(sigma_w[ck, :, k] ** 2 + extra * sigma_w[ck, :, nxt] ** 2)
    z = np.array(
        [
            policy.z(
                policy.peak_service_level
                if peak_days(start + timedelta(weeks=k), protection)
                else policy.service_level
            )
            for k in range(n_weeks)
        ]
    )
    return mean, sd, z


def simulate(
    demand: np.ndarray,
    start_stock: np.ndarray,
    order_fn,
    lead: int = STORE_LEAD_DAYS,
) -> dict:
    """Replay days; `order_fn(week, day, on_hand, on_order, sales_so_far)` returns orders at a
    review (day % 7 == 0). Demand above stock is lost (a store cannot backorder)."""
    n_pairs, n_days = demand.shape
    stock = start_stock.astype(float).copy()
    arrivals = np.zeros((n_pairs, n_days + lead + 1))
    on_order = np.zeros(n_pairs)
    sold = np.zeros((n_pairs, n_days))
    end_stock = np.zeros((n_pairs, n_days))
    for t in range(n_days):
        stock += arrivals[:, t]
        on_order -= arrivals[:, t]
        if t % 7 == 0:
            order = order_fn(t // 7, t, stock, on_order, sold[:, :t])
            arrivals[:, t + lead] += order
            on_order += order
        sold[:, t] = np.minimum(demand[:, t], stock)
        stock -= sold[:, t]
        end_stock[:, t] = stock
    total_demand, total_sold = demand.sum(), sold.sum()
    avg_inventory = end_stock.mean(axis=1).sum()
    return {
        "fill_rate": round(float(total_sold / total_demand), 4) if total_demand else None,
        "stockout_days": int(((demand - sold) > 0).sum()),
        "stockout_days_per_item_week": round(
            float(((demand - sold) > 0).sum() / n_pairs / (n_days / 7)), 4
        ),
        "avg_inventory": round(float(avg_inventory), 1),
        "turnover": round(float(total_sold / avg_inventory * 365 / n_days), 3)
        if avg_inventory
        else None,
        "units_sold": int(total_sold),
    }


def _match_fill_rate(run, target: float, low: float = 0.25, high: float = 8.0) -> dict | None:
    """The min/max run with the smallest scale k whose fill rate reaches `target`
    (fill rate grows with k; bisection to 1% of k)."""
    best = run(high)
    if best["fill_rate"] is None or best["fill_rate"] < target:
        return None
    best = {**best, "factor": high}
    while high - low > 0.01 * high:
        mid = (low + high) / 2
        r = run(mid)
        if r["fill_rate"] >= target:
            high, best = mid, {**r, "factor": round(mid, 3)}
        else:
            low = mid
    return best


def evaluate_replenishment(
    truth_dir: Path, published_db: Path, policy: Policy | None = None
) -> dict:
    """Engine vs min/max on the backtest weeks; see the module docstring."""
    policy = policy or Policy()
    data = _load(truth_dir, published_db)
    n_pairs, n_days, start = len(data["pairs"]), data["n_days"], data["start"]
    true = _matrix(data["demand"], "demand", n_pairs, start, n_days, offset=28)
    before, demand = true[:, :28], true[:, 28:]
    observed_before = _matrix(data["demand"], "sales", n_pairs, start, n_days, offset=28)[:, :28]
    # the same starting stock for both: a week of the recent observed sales rate
    start_stock = np.ceil(observed_before.mean(axis=1) * 7)
    multiple = data["multiples"].astype(float)
    mean, sd, z = _engine_levels(data, policy)
    protection = round(data["lead_days"]) + policy.review_days

    def engine(week, _t, stock, on_order, _sold):
        _, order = order_quantity(
            mean[:, week], sd[:, week], z[week], stock + on_order, multiple, multiple
        )
        return order

    def minmax(k: float):
        def rule(_week, _t, stock, on_order, sold):
            window = np.concatenate([observed_before, sold], axis=1)[:, -28:]
            d = window.mean(axis=1)
            # a shelf always keeps something: at least one unit, topped up to a full pack
            low = np.maximum(k * d * protection, 1)
            high = np.maximum(2 * k * d * protection, multiple)
            position = stock + on_order
            need = np.where(position <= low, np.maximum(0, high - position), 0.0)
            return np.ceil(need / np.maximum(multiple, 1)) * multiple

        return rule

    result_engine = simulate(demand, start_stock, engine)
    result_minmax = simulate(demand, start_stock, minmax(1.0))
    matched = _match_fill_rate(
        lambda k: simulate(demand, start_stock, minmax(k)), result_engine["fill_rate"]
    )
    ratio = (
        round(result_engine["turnover"] / matched["turnover"], 3)
        if matched and matched["turnover"]
        else None
    )
    return {
        "window": f"{start} .. {start + timedelta(days=n_days - 1)}",
        "items": n_pairs,
        "days": n_days,
        "true_lead_days": STORE_LEAD_DAYS,
        "engine_lead_days": data["lead_days"],
        "service_level": policy.service_level,
        "true_demand_units": int(demand.sum()),
        "history_demand_units": int(before.sum()),
        "engine": result_engine,
        "minmax": result_minmax,
        "minmax_matched": matched,
        "turnover_ratio_vs_matched": ratio,
        "target_ratio": TURNOVER_TARGET,
        "target_met": bool(ratio is not None and ratio >= TURNOVER_TARGET),
    }
