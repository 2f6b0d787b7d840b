"""How good the store plans (一店一策) are, against the simulated world's own mechanism.

Reads the simulator's truth, so it lives outside the pipeline and runs only from
`bclake evaluate`. The plan window lies after the last simulated day, so nothing in
it is observed; each store's potential outcomes come from the mechanism that
generates demand (`bclake/simulator/dynamics.py`) applied to the store's true,
uncensored demand rate (`truth/demand_daily`, the trailing `BASELINE_DAYS`):

- `promotion_signup`: signing up to a promotion multiplies the SKU's demand by
  `(1 - discount) ** -ELASTICITY` on its days. True units = the sum over the
  region's promotions in the plan window the store has not signed up to (truth
  `promotions.parquet`, sign-ups as `marts.fct_promotions_store_sku_week` shows
  them) of `((1 - d) ** -ELASTICITY - 1) x rate(store, SKU) x promotion days`.
- `display_upgrade`: a compliant month multiplies every SKU's demand by
  `DISPLAY_UPLIFT`; a store is compliant in a month with probability
  `DISPLAY_P0 + DISPLAY_P1 x engagement` (truth `stores.parquet`). True units =
  `(1 - p) x (DISPLAY_UPLIFT - 1) x rate(store) x window days`, the rate taken
  net of the display uplift the store already earns.
- `coupon_redemption_point`, `community_group_push`: the world's coupons and
  groups do not move sell-through (coupon purchases are store-code scans outside
  the channel's demand; groups only talk), so their true units are 0.
- `new_product_trial`: every store stocks every SKU in the world and a trial has
  no effect of its own, so its incremental units cannot be judged; what can be is
  the choice of core stores: the true demand rate of the trial SKU at the chosen
  stores against all stores (`trials`), over as many trailing days as the plan window
  has, and the share of them in the SKU's true top `store_plan_core_store_share` (the
  dbt var the plans choose core stores with).

The as-of date and the plan window are the plans' own (`as_of_date`, `plan_start`,
`plan_end` of `marts.fct_store_activity_plans`).

Definitions (fixed here, not tuned to the plans):
- `plan_units`: the true units of each store's first measured activity in the
  plan (0 where the plan proposes none), summed over every store with a demand
  rate. Baselines on the same stores: `uniform_<activity>` (every store runs that
  activity: what a brand does today), `random` (each store one of the four at
  random, in expectation) and `oracle` (each store its truly best activity).
- `recommended_vs_not`: mean true units of the recommended (rank-1 measured)
  activity against the mean of the other measured activities, same stores.
- `effects`: each pooled estimate of `marts.fct_store_activity_effects` next to
  the true relative lift of demand (promotions: mean over the signed promotions'
  discounts) and `covered` (the estimate's 95% interval holds it). Sales are censored
  by stock, and more so on promotion: for promotions `true_sell_through_lift` = (1 +
  demand lift) x the fill rate (sales / demand) of signed promotion days / that of the
  other days (truth, last `FILL_DAYS`) - 1 approximates what sell-through can show
  (`covered_sell_through`).
"""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path
from typing import Any, TypeVar

import duckdb
import numpy as np
import polars as pl
import yaml

from bclake.core.settings import DBT_PROJECT_DIR
from bclake.simulator.dynamics import DISPLAY_P0, DISPLAY_P1, DISPLAY_UPLIFT, ELASTICITY

BASELINE_DAYS = 91
FILL_DAYS = 182
MEASURED = (
    "promotion_signup",
    "display_upgrade",
    "coupon_redemption_point",
    "community_group_push",
)


Lift = TypeVar("Lift", pl.Expr, pl.Series)


def dbt_var(name: str) -> Any:
    """The value of dbt var `name` in dbt_project/dbt_project.yml; KeyError when it has none."""
    project = yaml.safe_load((DBT_PROJECT_DIR / "dbt_project.yml").read_text(encoding="utf-8"))
    return project["vars"][name]


def promotion_lift(discount: Lift) -> Lift:
    """The world's relative lift of a SKU's demand on promotion days at `discount` (a
    fraction off the price): `(1 - discount) ** -ELASTICITY - 1`."""
    return (1 - discount) ** -ELASTICITY - 1


def _plans(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    return con.sql(
        """
        select store_code, rank, activity, expected_incremental_units, trial_sku_code,
            as_of_date, plan_start, plan_end
        from marts.fct_store_activity_plans
        """
    ).pl()


def _plan_window(con: duckdb.DuckDBPyConnection, plans: pl.DataFrame) -> tuple[date, date, date]:
    """(as_of, plan_start, plan_end) of the plans. Without a plan row: the as-of date the
    model takes (the last order day) and the next `store_plan_horizon_weeks` weeks."""
    if plans.height:
        return plans["as_of_date"].max(), plans["plan_start"].min(), plans["plan_end"].max()
    as_of = con.execute("select max(order_date) from marts.fct_store_orders").fetchall()[0][0]
    days = 7 * int(dbt_var("store_plan_horizon_weeks"))
    return as_of, as_of + timedelta(days=1), as_of + timedelta(days=days)


def _stores_and_signups(con: duckdb.DuckDBPyConnection) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(store_code, region of every store; distinct store_code, sku_code, week_start of the
    weeks a store is signed up to a promotion of the SKU)."""
    stores = con.sql("select store_code, region from marts.dim_store").pl()
    signed = con.sql(
        "select distinct store_code, sku_code, week_start"
        " from marts.fct_promotions_store_sku_week where promo_days > 0"
    ).pl()
    return stores, signed


def demand_rates(truth: Path, as_of: date, days: int = BASELINE_DAYS) -> pl.DataFrame:
    """store_code, sku_code, rate: mean true daily demand over the `days` up to `as_of`."""
    since = as_of - timedelta(days=days)
    return (
        pl.scan_parquet(truth / "demand_daily" / "*.parquet")
        .filter((pl.col("date") > since) & (pl.col("date") <= as_of))
        .group_by("store_code", "sku_code")
        .agg((pl.col("demand").sum() / days).alias("rate"))
        .collect()
    )


def true_effects(
    truth: Path,
    con: duckdb.DuckDBPyConnection,
    as_of: date,
    plan_start: date,
    plan_end: date,
) -> pl.DataFrame:
    """store_code, activity, true_units: each measured activity's true incremental units
    in [plan_start, plan_end] for every store with a demand rate (4 rows per store)."""
    rates = demand_rates(truth, as_of)
    stores, signed = _stores_and_signups(con)
    promos = (
        pl.read_parquet(truth / "promotions.parquet")
        .filter((pl.col("end_date") >= plan_start) & (pl.col("start_date") <= plan_end))
        .with_columns(
            days=(
                pl.min_horizontal(pl.col("end_date"), pl.lit(plan_end))
                - pl.max_horizontal(pl.col("start_date"), pl.lit(plan_start))
            ).dt.total_days()
            + 1,
            lift=promotion_lift(pl.col("discount")),
        )
    )
    offered = promos.join(stores, on="region").with_columns(
        first_week=pl.col("start_date").dt.truncate("1w"),
        last_week=pl.col("end_date").dt.truncate("1w"),
    )
    taken = (
        offered.join(signed, on=["store_code", "sku_code"])
        .filter(pl.col("week_start").is_between(pl.col("first_week"), pl.col("last_week")))
        .select("promo_no", "store_code")
        .unique()
    )
    promo_units = (
        offered.join(taken, on=["promo_no", "store_code"], how="anti")
        .join(rates, on=["store_code", "sku_code"])
        .group_by("store_code")
        .agg((pl.col("lift") * pl.col("rate") * pl.col("days")).sum().alias("promotion_signup"))
    )
    engagement = pl.read_parquet(truth / "stores.parquet").select("store_code", "engagement")
    window = (plan_end - plan_start).days + 1
    p = DISPLAY_P0 + DISPLAY_P1 * pl.col("engagement")
    display = (
        rates.group_by("store_code")
        .agg(pl.col("rate").sum())
        .join(engagement, on="store_code")
        .select(
            "store_code",
            display_upgrade=(1 - p)
            * (DISPLAY_UPLIFT - 1)
            * pl.col("rate")
            / (1 + (DISPLAY_UPLIFT - 1) * p)
            * window,
        )
    )
    wide = display.join(promo_units, on="store_code", how="left").with_columns(
        pl.col("promotion_signup").fill_null(0.0),
        coupon_redemption_point=pl.lit(0.0),
        community_group_push=pl.lit(0.0),
    )
    return wide.unpivot(
        index="store_code", on=list(MEASURED), variable_name="activity", value_name="true_units"
    )


def true_relative_lifts(truth: Path) -> dict[str, float]:
    """Per measured activity, the world's relative lift of sell-through while it runs."""
    promos = pl.read_parquet(truth / "promotions.parquet").filter(pl.col("signed_stores") > 0)
    lift = promotion_lift(promos["discount"])
    weights = promos["signed_stores"]
    return {
        "promotion_signup": float((lift * weights).sum() / weights.sum()),
        "display_upgrade": DISPLAY_UPLIFT - 1,
        "coupon_redemption_point": 0.0,
        "community_group_push": 0.0,
    }


def promotion_fill_ratio(truth: Path, con: duckdb.DuckDBPyConnection, as_of: date) -> float:
    """Fill rate (sales / demand, truth) of store-SKU-days on a signed promotion over that of
    the other days, in the `FILL_DAYS` up to `as_of`: stock-outs during promotions make the
    sell-through lift smaller than the demand lift by this factor (1.0 without data)."""
    since = as_of - timedelta(days=FILL_DAYS)
    stores, signed = _stores_and_signups(con)
    days = (
        pl.read_parquet(truth / "promotions.parquet")
        .filter((pl.col("end_date") > since) & (pl.col("start_date") <= as_of))
        .select("region", "sku_code", date=pl.date_ranges("start_date", "end_date"))
        .explode("date")
        .join(stores, on="region")
        .with_columns(week_start=pl.col("date").dt.truncate("1w"))
        .join(signed, on=["store_code", "sku_code", "week_start"], how="semi")
        .select("store_code", "sku_code", "date", promo=pl.lit(True))
        .unique()
    )
    fill = (
        pl.scan_parquet(truth / "demand_daily" / "*.parquet")
        .filter((pl.col("date") > since) & (pl.col("date") <= as_of))
        .join(days.lazy(), on=["store_code", "sku_code", "date"], how="left")
        .group_by(pl.col("promo").fill_null(False))
        .agg(pl.col("sales").sum() / pl.col("demand").sum())
        .collect()
    )
    rates = dict(fill.iter_rows())
    return rates[True] / rates[False] if rates.get(True) and rates.get(False) else 1.0


def _covered(estimate: dict, true: float | None) -> bool | None:
    if true is None or estimate["ci_low"] is None:
        return None
    return bool(estimate["ci_low"] <= true <= estimate["ci_high"])


def _effects(con: duckdb.DuckDBPyConnection, truth: Path, as_of: date) -> list[dict]:
    pooled = con.sql(
        """
        select activity, relative_lift, ci_low, ci_high, treated_stores, control_stores
        from marts.fct_store_activity_effects where segment = 'all' order by activity
        """
    ).pl()
    lifts = true_relative_lifts(truth)
    fill = promotion_fill_ratio(truth, con, as_of)
    rows = []
    for r in pooled.iter_rows(named=True):
        true = lifts.get(r["activity"])
        row = {**r, "true_relative_lift": None if true is None else round(true, 4)}
        row["covered"] = _covered(r, true)
        if true is not None and r["activity"] == "promotion_signup":
            # what sell-through can show: the demand lift after the extra stock-outs
            row["true_sell_through_lift"] = round((1 + true) * fill - 1, 4)
            row["covered_sell_through"] = _covered(r, row["true_sell_through_lift"])
        rows.append(row)
    return rows


def score_choices(plans: pl.DataFrame, effects: pl.DataFrame) -> dict:
    """Plan against the baselines at one activity per store (definitions: module docstring).

    plans: store_code, rank, activity (any activities; only measured ones count);
    effects: store_code, activity, true_units (every measured activity of every store).
    """
    stores = effects["store_code"].unique()
    first = (
        plans.filter(pl.col("activity").is_in(MEASURED))
        .sort("store_code", "rank")
        .group_by("store_code", maintain_order=True)
        .first()
        .select("store_code", "activity")
    )
    chosen = first.join(effects, on=["store_code", "activity"])
    plan_units = float(chosen["true_units"].sum())
    per_activity = effects.group_by("activity").agg(pl.col("true_units").sum())
    uniform = {f"uniform_{a}": round(float(u), 2) for a, u in per_activity.iter_rows()}
    random = float(effects["true_units"].sum()) / len(MEASURED)
    best_per_store = effects.group_by("store_code").agg(pl.col("true_units").max())
    oracle = float(best_per_store["true_units"].sum())
    best_uniform = max(uniform.values()) if uniform else 0.0
    others = effects.join(first, on=["store_code", "activity"], how="anti").join(
        first.select("store_code"), on="store_code"
    )
    best = (
        effects.sort("true_units", descending=True)
        .group_by("store_code", maintain_order=True)
        .first()
        .select("store_code", best="activity")
    )
    hits = first.join(best, on="store_code").filter(pl.col("activity") == pl.col("best")).height
    return {
        "stores": len(stores),
        "stores_with_plan": first.height,
        "plan_units": round(plan_units, 2),
        "random_units": round(random, 2),
        "oracle_units": round(oracle, 2),
        **uniform,
        "plan_vs_random": round(plan_units / random, 3) if random else None,
        "plan_vs_best_uniform": round(plan_units / best_uniform, 3) if best_uniform else None,
        "share_of_oracle": round(plan_units / oracle, 3) if oracle else None,
        "best_activity_hit_rate": round(hits / first.height, 3) if first.height else None,
        "recommended_vs_not": {
            "recommended_mean_units": round(float(chosen["true_units"].mean()), 3)
            if chosen.height
            else None,
            "not_recommended_mean_units": round(float(others["true_units"].mean()), 3)
            if others.height
            else None,
        },
    }


def _calibration(plans: pl.DataFrame, effects: pl.DataFrame) -> dict:
    rows = plans.filter(pl.col("activity").is_in(MEASURED)).join(
        effects, on=["store_code", "activity"]
    )
    if rows.is_empty():
        return {"rows": 0}
    corr = rows.select(pl.corr("expected_incremental_units", "true_units", method="spearman"))
    return {
        "rows": rows.height,
        "expected_units": round(float(rows["expected_incremental_units"].sum()), 2),
        "true_units": round(float(rows["true_units"].sum()), 2),
        "spearman": round(float(corr.item()), 3) if corr.item() is not None else None,
    }


def score_trials(
    plans: pl.DataFrame,
    rates: pl.DataFrame,
    store_units: pl.DataFrame | None = None,
    core_share: float | None = None,
) -> dict:
    """Core stores of the new-product trials against the trial SKUs' true demand.

    `rates`: store_code, sku_code, rate (true daily demand; a store absent for a SKU
    sold none of it); `store_units`: store_code, units (what each store bought lately),
    for the baseline a brand uses today: per SKU, as many of the biggest stores as the
    plan chose, among those the plan gave no other SKU's trial. Returns the number of
    trial SKUs and stores, `demand_ratio` (mean true rate of the SKU at the chosen stores
    / over every store: a random choice gets 1.0), `precision` (share of chosen stores in
    the SKU's true top `core_share` of stores; default the dbt var
    `store_plan_core_store_share`), the same two for the biggest-stores baseline
    (`baseline_*`), and all of them per SKU (`per_sku`).
    """
    if core_share is None:
        core_share = float(dbt_var("store_plan_core_store_share"))
    trials = plans.filter(pl.col("activity") == "new_product_trial").select(
        "store_code", sku_code="trial_sku_code"
    )
    empty = {"demand_ratio": None, "precision": None}
    if trials.is_empty():
        return {"skus": 0, "stores": 0, **empty, **{f"baseline_{k}": v for k, v in empty.items()}}
    n_stores = rates["store_code"].n_unique()
    sku_rates = rates.join(trials.select("sku_code").unique(), on="sku_code").with_columns(
        top=pl.col("rate").rank(descending=True, method="ordinal").over("sku_code")
        <= int(np.ceil(n_stores * core_share))
    )
    mean_all = sku_rates.group_by("sku_code").agg((pl.col("rate").sum() / n_stores).alias("mean"))

    def _score(chosen: pl.DataFrame) -> dict:
        scored = (
            chosen.join(sku_rates, on=["store_code", "sku_code"], how="left")
            .with_columns(pl.col("rate").fill_null(0.0), pl.col("top").fill_null(False))
            .join(mean_all, on="sku_code")
        )
        ratio = (scored["rate"] / scored["mean"]).mean() if scored.height else None
        return {
            "demand_ratio": round(float(ratio), 3) if ratio is not None else None,
            "precision": round(float(scored["top"].mean()), 3) if scored.height else None,
        }

    baseline = dict(empty)
    picks = None
    if store_units is not None:
        # the same number of stores per SKU, from the stores the plan did not give another
        # SKU's trial (one trial per store, as in the plan)
        biggest = store_units.sort("units", descending=True)["store_code"].to_list()
        rows = []
        for sku, n in trials.group_by("sku_code").len().sort("sku_code").iter_rows():
            taken = set(trials.filter(pl.col("sku_code") != sku)["store_code"])
            rows += [(store, sku) for store in [b for b in biggest if b not in taken][:n]]
        picks = pl.DataFrame(rows, schema=["store_code", "sku_code"], orient="row")
        baseline = _score(picks)
    per_sku = []
    for sku in sorted(trials["sku_code"].unique()):
        row = {"sku_code": sku, "stores": trials.filter(pl.col("sku_code") == sku).height}
        row.update(_score(trials.filter(pl.col("sku_code") == sku)))
        if picks is not None:
            got = _score(picks.filter(pl.col("sku_code") == sku))
            row.update({f"baseline_{k}": v for k, v in got.items()})
        per_sku.append(row)
    return {
        "skus": trials["sku_code"].n_unique(),
        "stores": trials.height,
        **_score(trials),
        **{f"baseline_{k}": v for k, v in baseline.items()},
        "per_sku": per_sku,
    }


def evaluate_store_plans(truth: Path, warehouse: Path) -> dict:
    """Score `marts.fct_store_activity_plans` of the DuckDB file `warehouse` against truth.

    Returns {as_of_date, plan_start, plan_end, choices (score_choices), calibration
    (expected vs true units of every measured plan row, Spearman), effects (pooled
    estimates vs true lifts), trials (score_trials), not_judged}. Raises
    duckdb.CatalogException when the warehouse has no store plans.
    """
    with duckdb.connect(str(warehouse), read_only=True) as con:
        plans = _plans(con)
        as_of, plan_start, plan_end = _plan_window(con, plans)
        effects = true_effects(truth, con, as_of, plan_start, plan_end)
        estimates = _effects(con, truth, as_of)
        store_units = con.sql(
            "select store_code, sum(qty_delivered) as units from marts.fct_store_orders"
            f" where order_date > date '{as_of - timedelta(days=BASELINE_DAYS)}' group by 1"
        ).pl()
    # the trial SKUs' demand over the trailing days, as many as the plan window has
    trial_rates = demand_rates(truth, as_of, (plan_end - plan_start).days + 1)
    return {
        "as_of_date": str(as_of),
        "plan_start": str(plan_start),
        "plan_end": str(plan_end),
        "choices": score_choices(plans, effects),
        "calibration": _calibration(plans, effects),
        "effects": estimates,
        "trials": score_trials(plans, trial_rates, store_units),
        "not_judged": [
            "new_product_trial incremental units (the world has no trial effect)",
            "coupon_redemption_point and community_group_push beyond sell-through "
            "(their true effect on channel demand is 0)",
        ],
    }
