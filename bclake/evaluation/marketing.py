"""How much the marketing engine's target lists earn against random targeting, by the truth.

Reads the engine's `ml.marketing_plans`, `ml.marketing_scores`,
`ml.marketing_target_lists` and `ml.marketing_learner_scores` from the
warehouse, and the simulator's `truth/consumers.parquet` (latent value, price
sensitivity, scenario, marketing consent). Lives outside the pipeline and runs
only from `bclake evaluate`.

Definitions (fixed here, not tuned to the engine):
- Potential outcomes: for each planned campaign (category, coupon value) and
  consumer, p0 and p1 from `simulator.consumers.response_probabilities`, the
  function that drew every simulated campaign. Expected incremental
  conversions are p1 - p0; expected coupon cost is coupon_value x p1 (every
  buyer holding a coupon redeems it, sure things included); expected
  incremental revenue is (p1 - p0) x the expected basket.
- `roi` = incremental revenue / coupon cost: yuan of incremental sales per
  yuan of coupons.
- The model's list is its `target` arm; its true expected cost C sets the
  budget every other list gets ("equal budget").
- `random`: consumers drawn at random from the same pool (the plan's eligible,
  scored consumers) until the expected cost reaches C; computed in
  expectation, so it has no draw noise.
- `response_model`: the pool ranked by the response-only model's score
  (P(buy | coupon)), taken until the true expected cost reaches C.
- `oracle`: the pool ranked by true incremental revenue per yuan of cost,
  same budget: the ceiling any targeting could reach.
- `uplift_ratio` = incremental conversions of the model's list / of the
  random list at equal budget.
- `qini`: normalised Qini coefficient of the model's ranking of the whole
  pool by true uplift: the area between its cumulative true-uplift curve and
  the random line, divided by the same area for the ranking by true uplift
  (1 = perfect, 0 = random). `qini_response` is the same for the
  response-only model's ranking.
- `listed_without_consent`: listed consumers whose consent (as of the
  world's last snapshot) is not given or was withdrawn; must be 0.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import numpy as np
import polars as pl

from bclake.evaluation.incentives import ratio
from bclake.simulator.consumers import expected_basket, response_probabilities
from bclake.simulator.world import SCENARIO_CATEGORY


def potential_outcomes(traits: pl.DataFrame, category: str, coupon_value: float) -> pl.DataFrame:
    """p0, p1, uplift, cost and incremental revenue per consumer for one offer.

    traits: consumer_id, value, price_sensitivity, scenario (truth/consumers.parquet).
    Returns consumer_id, p0, p1, uplift (probability), cost and inc_revenue (yuan).
    """
    match = (
        traits["scenario"].replace_strict(SCENARIO_CATEGORY, default=None) == category
    ).fill_null(False)
    p0, p1 = response_probabilities(
        traits["value"].to_numpy(),
        traits["price_sensitivity"].to_numpy(),
        match.cast(pl.Float64).to_numpy(),
        coupon_value,
    )
    return pl.DataFrame(
        {
            "consumer_id": traits["consumer_id"],
            "p0": p0,
            "p1": p1,
            "uplift": p1 - p0,
            "cost": coupon_value * p1,
            "inc_revenue": (p1 - p0) * expected_basket(coupon_value),
        }
    )


def _take_to_budget(ranked: pl.DataFrame, budget: float) -> pl.DataFrame:
    """The prefix of `ranked` whose cumulative true cost stays within `budget` (yuan)."""
    return ranked.filter(pl.col("cost").cum_sum() <= budget)


def _summary(frame: pl.DataFrame) -> dict:
    cost, revenue = float(frame["cost"].sum()), float(frame["inc_revenue"].sum())
    return {
        "consumers": frame.height,
        "incremental_conversions": round(float(frame["uplift"].sum()), 2),
        "incremental_revenue": round(revenue, 2),
        "cost": round(cost, 2),
        "roi": ratio(revenue, cost),
    }


def true_qini(score: np.ndarray, uplift: np.ndarray) -> float | None:
    """Normalised Qini coefficient of ranking by `score`, judged by the true `uplift`.

    Both arrays have one entry per consumer. The Qini curve is the cumulative
    true uplift of the top-k consumers (Radcliffe 2007); its area above the
    random line (the straight line to the total) is divided by the area of
    the perfect ranking (by `uplift` itself). None when the pool is empty or
    the perfect ranking gains nothing over random.
    """
    n = len(score)
    if n == 0:
        return None
    total = uplift.sum()
    random_area = total * (n + 1) / 2

    def area(order: np.ndarray) -> float:
        return float(np.cumsum(uplift[order]).sum())

    best = area(np.argsort(-uplift, kind="stable")) - random_area
    if best <= 0:
        return None
    return round((area(np.argsort(-score, kind="stable")) - random_area) / best, 4)


def _plan_report(plan: dict, pool: pl.DataFrame, listed: pl.DataFrame) -> dict:
    """One plan: model, random, response and oracle lists at the model list's true cost."""
    targets = pool.join(listed.filter(pl.col("arm") == "target"), on="consumer_id", how="semi")
    model = _summary(targets)
    budget = model["cost"]
    mean_cost = float(pool["cost"].mean()) if pool.height else 0.0
    n_random = budget / mean_cost if mean_cost else 0.0
    random = {
        "consumers": round(n_random, 1),
        "incremental_conversions": round(n_random * float(pool["uplift"].mean()), 2),
        "incremental_revenue": round(n_random * float(pool["inc_revenue"].mean()), 2),
        "cost": round(budget, 2),
        "roi": ratio(float(pool["inc_revenue"].mean()), mean_cost) if pool.height else None,
    }
    response = _summary(_take_to_budget(pool.sort("response", descending=True), budget))
    oracle = _summary(
        _take_to_budget(
            pool.with_columns(per_yuan=pl.col("inc_revenue") / pl.col("cost")).sort(
                "per_yuan", descending=True
            ),
            budget,
        )
    )
    holdout = int((listed["arm"] == "holdout").sum())
    return {
        "plan_id": plan["plan_id"],
        "category": plan["category"],
        "coupon_value": plan["coupon_value"],
        "pool": pool.height,
        "model": model,
        "random": random,
        "response_model": response,
        "oracle": oracle,
        "uplift_ratio": ratio(model["incremental_conversions"], random["incremental_conversions"]),
        "qini": true_qini(pool["score"].to_numpy(), pool["uplift"].to_numpy()),
        "qini_response": true_qini(pool["response"].to_numpy(), pool["uplift"].to_numpy()),
        "holdout_share": ratio(holdout, listed.height),
    }


def _total(plans: list[dict], key: str) -> dict:
    conv = sum(p[key]["incremental_conversions"] for p in plans)
    revenue = sum(p[key]["incremental_revenue"] for p in plans)
    cost = sum(p[key]["cost"] for p in plans)
    return {
        "incremental_conversions": round(conv, 2),
        "incremental_revenue": round(revenue, 2),
        "cost": round(cost, 2),
        "roi": ratio(revenue, cost),
    }


def evaluate_marketing(truth_dir: Path, warehouse: Path) -> dict:
    """The marketing engine's lists against random, response-only and oracle targeting.

    Returns `plans` (one dict per planned campaign, see the module docstring),
    the totals over plans (`model`, `random`, `response_model`, `oracle`),
    `roi_model`, `roi_random`, `roi_response_model`, `roi_lift_vs_random`
    (roi_model / roi_random - 1), `uplift_ratio`, `qini` and `qini_response`
    (means over plans), `listed_without_consent`, and `learners` (the engine's
    own Qini per learner on its held-out campaigns).
    Raises FileNotFoundError without truth consumers.
    """
    traits_path = truth_dir / "consumers.parquet"
    if not traits_path.exists():
        raise FileNotFoundError(f"{traits_path}: no truth consumers (simulate a world first)")
    traits = pl.read_parquet(traits_path)
    with duckdb.connect(str(warehouse), read_only=True) as con:
        plans = con.sql("select * from ml.marketing_plans order by plan_id").pl()
        scores = con.sql(
            "select plan_id, consumer_id, uplift as score, response from ml.marketing_scores"
        ).pl()
        lists = con.sql("select plan_id, consumer_id, arm from ml.marketing_target_lists").pl()
        learners = con.sql("select * from ml.marketing_learner_scores").pl()
    consent = traits.select("consumer_id", "consent_marketing")
    listed_without = lists.join(consent, on="consumer_id", how="left").filter(
        ~pl.col("consent_marketing").fill_null(False)
    )
    reports = []
    for plan in plans.iter_rows(named=True):
        truth = potential_outcomes(traits, plan["category"], float(plan["coupon_value"]))
        pool = scores.filter(pl.col("plan_id") == plan["plan_id"]).join(
            truth, on="consumer_id", how="inner"
        )
        listed = lists.filter(pl.col("plan_id") == plan["plan_id"])
        reports.append(_plan_report(plan, pool, listed))
    totals = {k: _total(reports, k) for k in ("model", "random", "response_model", "oracle")}
    roi_model, roi_random = totals["model"]["roi"], totals["random"]["roi"]
    qinis = [p["qini"] for p in reports if p["qini"] is not None]
    qinis_r = [p["qini_response"] for p in reports if p["qini_response"] is not None]
    return {
        "plans": reports,
        **totals,
        "roi_model": roi_model,
        "roi_random": roi_random,
        "roi_response_model": totals["response_model"]["roi"],
        "roi_oracle": totals["oracle"]["roi"],
        "roi_lift_vs_random": (
            round(roi_model / roi_random - 1, 4) if roi_model and roi_random else None
        ),
        "uplift_ratio": ratio(
            totals["model"]["incremental_conversions"],
            totals["random"]["incremental_conversions"],
        ),
        "qini": round(float(np.mean(qinis)), 4) if qinis else None,
        "qini_response": round(float(np.mean(qinis_r)), 4) if qinis_r else None,
        "listed_without_consent": listed_without.height,
        "learners": learners.to_dicts(),
    }
