"""Store plans (一店一策): the evaluation's arithmetic on hand-made frames, the world's
display mechanism it scores with, and the marts on the tiny world. The DiD estimator
itself is checked by the dbt unit tests in
dbt_project/models/marts/store_plans/_store_plans_unit_tests.yml."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path
from types import SimpleNamespace

import duckdb
import numpy as np
import polars as pl
import pytest

from bclake.evaluation import store_plans as ev
from bclake.simulator import dynamics


def test_display_compliance_follows_the_constants_the_evaluation_scores_with() -> None:
    n = 20_000
    world = SimpleNamespace(stores=pl.DataFrame({"engagement": [0.0] * n + [1.0] * n}))
    cfg = SimpleNamespace(horizon_days=28 * 3)
    compliant = dynamics.display_compliance(cfg, world, np.random.default_rng(0))
    assert compliant[:, :n].mean() == pytest.approx(dynamics.DISPLAY_P0, abs=0.01)
    assert compliant[:, n:].mean() == pytest.approx(
        dynamics.DISPLAY_P0 + dynamics.DISPLAY_P1, abs=0.01
    )


def _effects(rows: dict[str, tuple[float, float, float, float]]) -> pl.DataFrame:
    """store -> true units of (promotion, display, coupon, group)."""
    return pl.DataFrame(
        [
            {"store_code": s, "activity": a, "true_units": u}
            for s, units in rows.items()
            for a, u in zip(ev.MEASURED, units, strict=True)
        ]
    )


def test_score_choices_against_uniform_random_and_oracle() -> None:
    """S1's plan picks its best activity (display, 8), S2's its second best (promotion, 2
    where display would give 6), S3 has no plan (0). Uniform promotion = 10 + 2 + 4 = 16,
    uniform display = 8 + 6 + 1 = 15, random = (16 + 15) / 4 = 7.75, oracle = 8 + 6 + 4."""
    effects = _effects({"S1": (1, 8, 0, 0), "S2": (2, 6, 0, 0), "S3": (4, 1, 0, 0)})
    effects = effects.with_columns(
        pl.when((pl.col("store_code") == "S1") & (pl.col("activity") == "promotion_signup"))
        .then(10.0)
        .otherwise(pl.col("true_units"))
        .alias("true_units")
    )
    plans = pl.DataFrame(
        {
            "store_code": ["S1", "S1", "S2", "S2"],
            "rank": [1, 2, 1, 2],
            "activity": ["new_product_trial", "display_upgrade", "promotion_signup", "x"],
        }
    )
    got = ev.score_choices(plans, effects)
    assert got["stores"] == 3 and got["stores_with_plan"] == 2
    assert got["plan_units"] == 10.0  # 8 + 2: the trial is not a measured activity
    assert got["uniform_promotion_signup"] == 16.0
    assert got["uniform_display_upgrade"] == 15.0
    assert got["random_units"] == 7.75
    assert got["oracle_units"] == 20.0
    assert got["plan_vs_best_uniform"] == round(10 / 16, 3)
    assert got["best_activity_hit_rate"] == 0.0  # S1's best is promotion (10), S2's display
    # recommended: 8 and 2; the others of S1 and S2: 10, 0, 0, 6, 0, 0
    assert got["recommended_vs_not"] == {
        "recommended_mean_units": 5.0,
        "not_recommended_mean_units": round(16 / 6, 3),
    }


def test_score_trials_compares_chosen_stores_with_all() -> None:
    """Ten stores sell the new SKU at 1..10 a day; the plan trials it at the two best
    (10, 9) and one poor store (1): ratio (20 / 3) / 5.5, two of three in the true top 20%.
    The biggest stores by what they bought are poor sellers of this SKU."""
    rates = pl.DataFrame(
        {"store_code": [f"S{i}" for i in range(1, 11)], "sku_code": "N", "rate": range(1, 11)}
    ).cast({"rate": pl.Float64})
    plans = pl.DataFrame(
        {
            "store_code": ["S10", "S9", "S1", "S5"],
            "activity": ["new_product_trial"] * 3 + ["display_upgrade"],
            "trial_sku_code": ["N", "N", "N", None],
        }
    )
    # the biggest stores by units bought are S1, S2, S3: true rates 1, 2, 3
    sizes = pl.DataFrame({"store_code": ["S1", "S2", "S3", "S4"], "units": [100, 90, 80, 70]})
    got = ev.score_trials(plans, rates, sizes, core_share=0.2)
    assert got["skus"] == 1 and got["stores"] == 3
    assert got["demand_ratio"] == round((20 / 3) / 5.5, 3)
    assert got["precision"] == round(2 / 3, 3)
    assert got["baseline_demand_ratio"] == round(2 / 5.5, 3)
    assert got["baseline_precision"] == 0.0
    assert (
        ev.score_trials(plans.filter(pl.col("activity") != "new_product_trial"), rates)[
            "demand_ratio"
        ]
        is None
    )


def test_true_effects_apply_the_mechanism(tmp_path: Path) -> None:
    """One store in region R demands 2 units a day of SKU A (engagement 0.5). In the 28-day
    window, promotion 1 (20% off, 7 days) is offered and not signed: (1 / 0.8^2 - 1) x 2 x 7
    = 7.875 units; promotion 2 is signed, so it adds nothing. Display: compliant with
    p = 0.3 + 0.6 x 0.5 = 0.6, so (1 - 0.6) x 0.08 x 2 / (1 + 0.08 x 0.6) x 28 units."""
    as_of = date(2025, 3, 2)
    start, end = as_of + timedelta(days=1), as_of + timedelta(days=28)
    truth = tmp_path / "truth"
    (truth / "demand_daily").mkdir(parents=True)
    days = [as_of - timedelta(days=i) for i in range(ev.BASELINE_DAYS)]
    pl.DataFrame(
        {"date": days, "store_code": "S1", "sku_code": "A", "demand": 2, "sales": 2}
    ).write_parquet(truth / "demand_daily" / "2025-02.parquet")
    pl.DataFrame(
        {
            "promo_no": [1, 2],
            "region": ["R", "R"],
            "sku_code": ["A", "A"],
            "start_date": [date(2025, 3, 10), date(2025, 3, 24)],
            "end_date": [date(2025, 3, 16), date(2025, 3, 27)],
            "discount": [0.2, 0.1],
            "signed_stores": [0, 1],
        }
    ).write_parquet(truth / "promotions.parquet")
    pl.DataFrame({"store_code": ["S1"], "engagement": [0.5]}).write_parquet(
        truth / "stores.parquet"
    )
    with duckdb.connect() as con:
        con.execute("create schema marts")
        con.execute("create table marts.dim_store as select 'S1' as store_code, 'R' as region")
        con.execute(
            "create table marts.fct_promotions_store_sku_week as select 'S1' as store_code,"
            " 'A' as sku_code, date '2025-03-24' as week_start, 4 as promo_days"
        )
        got = ev.true_effects(truth, con, as_of, start, end)
    units = dict(zip(got["activity"], got["true_units"], strict=True))
    assert units["promotion_signup"] == pytest.approx((1 / 0.8**2 - 1) * 2 * 7)
    assert units["display_upgrade"] == pytest.approx(0.4 * 0.08 * 2 / 1.048 * 28)
    assert units["coupon_redemption_point"] == 0.0
    assert units["community_group_push"] == 0.0


def test_store_plan_marts_on_the_tiny_world(tiny_home: Path) -> None:
    """Both marts are published; plans rank 1..n per store by expected units (trials last),
    use only significant effects, never re-propose what a store runs, and score against
    truth: recommended activities truly bring more than the rest, and the promotion lift's
    interval holds the world's."""
    published = tiny_home / "warehouse" / "published.duckdb"
    with duckdb.connect(str(published), read_only=True) as con:
        effects = con.sql("select * from marts.fct_store_activity_effects").pl()
        plans = con.sql("select * from marts.fct_store_activity_plans").pl()
    assert set(effects["activity"]) >= {"promotion_signup", "display_upgrade"}
    pooled = effects.filter(pl.col("segment") == "all")
    assert pooled["activity"].n_unique() == pooled.height == effects["activity"].n_unique()
    # the pooled row holds every treated store of its activity's segments
    by_segment = (
        effects.filter(pl.col("segment") != "all")
        .group_by("activity")
        .agg(pl.col("treated_stores").sum().alias("segment_stores"))
    )
    both = pooled.join(by_segment, on="activity")
    assert (both["treated_stores"] == both["segment_stores"]).all()
    assert not plans.is_empty()
    assert (plans["expected_incremental_units"] > 0).all()
    ranks = plans.group_by("store_code").agg(pl.col("rank").sort(), pl.len())
    for r in ranks.iter_rows(named=True):
        assert r["rank"] == list(range(1, r["len"] + 1))
    # measured activities by expected units, then a trial (a sales forecast, not a lift)
    ordered = (
        plans.sort("store_code", "rank")
        .group_by("store_code", maintain_order=True)
        .agg(
            pl.col("expected_incremental_units").filter(pl.col("activity") != "new_product_trial"),
            pl.col("activity"),
        )
    )
    for units, activities in ordered.select("expected_incremental_units", "activity").rows():
        assert units == sorted(units, reverse=True)
        trials = [a == "new_product_trial" for a in activities]
        assert trials == sorted(trials)
    measured = plans.filter(pl.col("activity") != "new_product_trial")
    assert (measured["evidence_ci_low"] > 0).all()
    assert plans["reason_zh"].str.len_chars().min() > 0
    assert plans["reason_en"].str.len_chars().min() > 0
    # a store is never asked to sign up to a promotion of a SKU it is already signed to
    # in the same weeks: every proposed promotion id is one the store has not signed
    with duckdb.connect(str(tiny_home / "warehouse" / "build.duckdb"), read_only=True) as con:
        signups = con.sql(
            "select promo_id, store_code from staging.stg_dms__promotion_signups"
        ).pl()
        group_stores = set(
            con.sql("select store_code from staging.stg_cdp__community_groups").pl()["store_code"]
        )
    proposed = (
        plans.filter(pl.col("activity") == "promotion_signup")
        .select("store_code", promo_id=pl.col("promo_ids").str.split(","))
        .explode("promo_id")
    )
    assert proposed.join(signups, on=["store_code", "promo_id"]).is_empty()
    grouped = plans.filter(pl.col("activity") == "community_group_push")
    assert not set(grouped["store_code"]) & group_stores

    report = ev.evaluate_store_plans(tiny_home / "truth", published)
    choices = report["choices"]
    assert choices["stores_with_plan"] > 0
    rec = choices["recommended_vs_not"]
    assert rec["recommended_mean_units"] > rec["not_recommended_mean_units"]
    promo = next(e for e in report["effects"] if e["activity"] == "promotion_signup")
    assert promo["covered"] is True


def test_promotion_fill_ratio_counts_signed_promotion_days(tmp_path: Path) -> None:
    """S1 is signed up to a promotion of A on 2025-02-03..09 and sells half its demand on
    those days; every other store-day (S1's week before, S2, in the region but not signed)
    sells all of it: fill ratio 0.5 / 1."""
    as_of = date(2025, 2, 9)
    truth = tmp_path / "truth"
    (truth / "demand_daily").mkdir(parents=True)
    days = [date(2025, 1, 27) + timedelta(days=i) for i in range(14)]
    promo = [d >= date(2025, 2, 3) for d in days]
    pl.DataFrame(
        {
            "date": days * 2,
            "store_code": ["S1"] * 14 + ["S2"] * 14,
            "sku_code": "A",
            "demand": [2] * 28,
            "sales": [1 if p else 2 for p in promo] + [2] * 14,
        }
    ).write_parquet(truth / "demand_daily" / "2025-02.parquet")
    pl.DataFrame(
        {
            "region": ["R"],
            "sku_code": ["A"],
            "start_date": [date(2025, 2, 3)],
            "end_date": [date(2025, 2, 9)],
        }
    ).write_parquet(truth / "promotions.parquet")
    with duckdb.connect() as con:
        con.execute("create schema marts")
        con.execute(
            "create table marts.dim_store as select * from (values ('S1', 'R'), ('S2', 'R'))"
            " as t(store_code, region)"
        )
        con.execute(
            "create table marts.fct_promotions_store_sku_week as select 'S1' as store_code,"
            " 'A' as sku_code, date '2025-02-03' as week_start, 7 as promo_days"
        )
        assert ev.promotion_fill_ratio(truth, con, as_of) == pytest.approx(0.5)
