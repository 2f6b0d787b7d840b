"""Precision marketing (一人一推): the uplift learners, the Qini measure, the lists (consent,
budget, hold-out), the plan file, and the assets on the tiny world."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import duckdb
import numpy as np
import polars as pl
import pytest

from bclake.core.marketing import (
    CampaignPlan,
    MarketingConfigError,
    expand_plans,
    load_marketing,
)
from bclake.ml.uplift import (
    LEARNERS,
    RESPONSE,
    UpliftModel,
    build_list,
    holdout_draw,
    plan_campaigns,
    qini_coefficient,
    select_learner,
)

ROOT = Path(__file__).resolve().parents[1]


# --- a hand-made world: uplift depends on `sens`, the response without coupon on `loyal` ---
def _p(sens: np.ndarray, loyal: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    p0 = 0.05 + 0.6 * loyal
    return p0, np.minimum(1.0, p0 + 0.35 * sens)


def _campaigns(n_campaigns: int = 8, size: int = 1500, seed: int = 3) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    frames = []
    for c in range(n_campaigns):
        sens, loyal, noise = rng.random(size), rng.random(size), rng.random(size)
        treated = rng.random(size) < 0.8
        p0, p1 = _p(sens, loyal)
        y = rng.random(size) < np.where(treated, p1, p0)
        frames.append(
            pl.DataFrame(
                {
                    "campaign_id": f"CP{c:04d}",
                    "consumer_id": [f"C{c:02d}{i:07d}" for i in range(size)],
                    "offer_category": ["乳品", "饮料"][c % 2],
                    "coupon_value": 3.0,
                    "start_date": date(2025, 1, 1) + timedelta(days=30 * c),
                    "learnable": True,
                    "fault": pl.Series([None] * size, dtype=pl.String),
                    "treated": treated,
                    "responded": y,
                    "redeemed_coupon": y & treated,
                    "window_orders": y.astype(np.int64),
                    "window_order_amount": np.where(y, 40.0, 0.0),
                    "sens": sens,
                    "loyal": loyal,
                    "noise": noise,
                }
            )
        )
    return pl.concat(frames)


@pytest.fixture(scope="module")
def synthetic() -> pl.DataFrame:
    return _campaigns()


def test_qini_is_one_for_the_perfect_ranking_and_near_zero_for_random() -> None:
    rng = np.random.default_rng(0)
    n = 4000
    t = rng.random(n) < 0.5
    y = (rng.random(n) < np.where(t, 0.4, 0.2)).astype(float)
    perfect = np.where(t, y, -y).astype(float)
    assert qini_coefficient(y, t, perfect) == pytest.approx(1.0)
    assert abs(qini_coefficient(y, t, rng.random(n))) < 0.1
    assert qini_coefficient(y, t, -perfect) < 0
    # ties are one threshold: a constant score is the random line
    assert qini_coefficient(y, t, np.zeros(n)) == pytest.approx(0.0, abs=1e-12)
    assert np.isnan(qini_coefficient(y, np.ones(n, dtype=bool), perfect))


def test_the_chosen_learner_ranks_by_uplift_not_by_response(synthetic: pl.DataFrame) -> None:
    selection = select_learner(synthetic, n_heldout=2)
    scores = {r["learner"]: r["qini"] for r in selection.scores.iter_rows(named=True)}
    assert selection.chosen in LEARNERS
    assert scores[selection.chosen] == max(scores[name] for name in LEARNERS)
    assert scores[selection.chosen] > scores[RESPONSE] + 0.05
    assert selection.campaigns.filter(pl.col("role") == "heldout").height == 2
    # the chosen learner's scores follow `sens` (the true uplift), not `loyal`
    model = UpliftModel(selection.chosen).fit(synthetic)
    fresh = _campaigns(n_campaigns=1, size=3000, seed=99)
    uplift = model.predict(fresh)
    true = np.subtract(*_p(fresh["sens"].to_numpy(), fresh["loyal"].to_numpy())[::-1])
    assert np.corrcoef(uplift, true)[0, 1] > 0.6
    assert abs(np.corrcoef(uplift, fresh["loyal"].to_numpy())[0, 1]) < 0.3
    response = UpliftModel(RESPONSE).fit(synthetic).predict(fresh)
    assert np.corrcoef(response, fresh["loyal"].to_numpy())[0, 1] > 0.6


def test_unlearnable_campaigns_are_skipped_and_named(synthetic: pl.DataFrame) -> None:
    broken = synthetic.with_columns(
        learnable=pl.col("campaign_id") != "CP0001",
        fault=pl.when(pl.col("campaign_id") == "CP0001").then(pl.lit("no_holdout")),
    )
    roles = select_learner(broken, n_heldout=2, learners=("t_learner",)).campaigns
    skipped = roles.filter(pl.col("role") == "skipped")
    assert skipped["campaign_id"].to_list() == ["CP0001"]
    assert skipped["fault"].to_list() == ["no_holdout"]
    with pytest.raises(ValueError, match="no learnable campaign"):
        select_learner(synthetic.with_columns(learnable=pl.lit(False)))


# --- lists ----------------------------------------------------------------------------------
def _plan(**kw: object) -> CampaignPlan:
    base = {
        "plan_id": "NEXT-乳品",
        "name_zh": "下期",
        "name_en": "Next",
        "category": "乳品",
        "coupon_value": 3.0,
        "budget_yuan": 100.0,
        "holdout_share": 0.1,
        "valid_days": 14,
    }
    return CampaignPlan(**{**base, **kw})  # type: ignore[arg-type]


def _scores(n: int = 2000, seed: int = 1) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    return pl.DataFrame(
        {
            "consumer_id": [f"C{i:09d}" for i in range(n)],
            "consent_marketing": True,
            "expected_cost": rng.uniform(0.3, 1.5, n),
            "expected_incremental_revenue": rng.uniform(-1, 6, n),
        }
    )


def test_a_list_spends_at_most_its_budget_and_only_where_the_coupon_pays() -> None:
    scores = _scores()
    for budget in (10.0, 100.0, 400.0):
        listed = build_list(scores, _plan(budget_yuan=budget), margin_rate=0.35)
        target = listed.filter(pl.col("arm") == "target")
        assert target["expected_cost"].sum() <= budget + 1e-9
        assert (0.35 * target["expected_incremental_revenue"] > target["expected_cost"]).all()
        assert listed["rank"].to_list() == list(range(1, listed.height + 1))
    small = build_list(scores, _plan(budget_yuan=100.0), 0.35)
    large = build_list(scores, _plan(budget_yuan=400.0), 0.35)
    # the budget binds here: a larger budget lists more
    assert small.height < large.height
    # with no budget limit the list stops where the coupon stops paying
    plan = _plan(budget_yuan=1e9)
    unbounded = build_list(scores, plan, 0.35)
    paying = scores.filter(0.35 * pl.col("expected_incremental_revenue") > pl.col("expected_cost"))
    drawn_in = holdout_draw(plan.plan_id, paying["consumer_id"].to_list()) >= plan.holdout_share
    assert unbounded.filter(pl.col("arm") == "target").height == int(drawn_in.sum())


def test_every_list_keeps_a_stable_random_holdout() -> None:
    scores = _scores()
    plan = _plan(budget_yuan=200.0)
    listed = build_list(scores, plan, 0.35)
    # the hold-out is exactly the listed consumers whose stable draw falls under the share
    draw = holdout_draw(plan.plan_id, listed["consumer_id"].to_list())
    assert ((listed["arm"] == "holdout").to_numpy() == (draw < plan.holdout_share)).all()
    assert listed.height >= 20 and (listed["arm"] == "holdout").sum() >= 1
    # the same consumers land in the same arm whatever the row order or the budget
    again = build_list(scores.sample(fraction=1.0, shuffle=True, seed=5), plan, 0.35)
    assert (
        again.select("consumer_id", "arm")
        .sort("consumer_id")
        .equals(listed.select("consumer_id", "arm").sort("consumer_id"))
    )
    bigger = build_list(scores, _plan(budget_yuan=400.0), 0.35)
    both = listed.join(bigger, on="consumer_id", suffix="_big")
    assert both.height == listed.height
    assert (both["arm"] == both["arm_big"]).all()
    # the draw depends on the plan, so two plans hold out different consumers
    ids = scores["consumer_id"].to_list()
    assert not np.array_equal(holdout_draw("A", ids) < 0.1, holdout_draw("B", ids) < 0.1)
    # even a list of two keeps one consumer back
    tiny = build_list(scores, _plan(budget_yuan=2.0, holdout_share=0.01), 0.35)
    assert tiny.height >= 2 and (tiny["arm"] == "holdout").sum() >= 1


def test_a_consumer_without_consent_never_lands_in_a_list(synthetic: pl.DataFrame) -> None:
    scores = _scores().with_columns(consent_marketing=pl.col("consumer_id") != "C000000007")
    with pytest.raises(ValueError, match="without marketing consent"):
        build_list(scores, _plan(), 0.35)
    candidates = (
        _campaigns(n_campaigns=1, size=300, seed=8)
        .drop("treated", "responded", "redeemed_coupon", "window_orders", "window_order_amount")
        .with_columns(
            consent_marketing=pl.lit(True),
            snapshot_date=date(2026, 1, 1),
            orders=pl.lit(2),
            avg_order_amount=pl.lit(35.0),
            home_region=pl.lit("华东"),
            home_distributor_code=pl.lit("D0001"),
            home_store_code=pl.lit("S000001"),
            city_tier=pl.lit(2),
            age_band=pl.lit(None, dtype=pl.String),
            register_channel=pl.lit("扫码"),
        )
    )
    training = synthetic.with_columns(
        orders=pl.lit(2),
        avg_order_amount=pl.lit(35.0),
        home_region=pl.lit("华东"),
        city_tier=pl.lit(2),
        age_band=pl.lit(None, dtype=pl.String),
        register_channel=pl.lit("扫码"),
    )
    # a consumer who withdrew in a later export: refused before anything is fitted
    withdrawn = candidates.with_columns(
        consent_marketing=pl.col("consumer_id") != candidates["consumer_id"][0]
    )
    with pytest.raises(ValueError, match="without marketing consent"):
        plan_campaigns(training, withdrawn, [_plan(budget_yuan=50.0)], margin_rate=0.35)


# --- the plan file --------------------------------------------------------------------------
def test_the_shipped_plan_file_is_valid() -> None:
    config = load_marketing(ROOT / "config" / "marketing.yaml")
    plans = expand_plans(config, ["乳品", "饮料"])
    assert [p.plan_id for p in plans] == ["NEXT-乳品", "NEXT-饮料"]


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("holdout_share", 0, "plan NEXT (#1) holdout_share"),
        ("budget_yuan", -5, "plan NEXT (#1) budget_yuan"),
        ("coupon_value", "three", "plan NEXT (#1) coupon_value"),
        ("colour", "red", "plan NEXT (#1) colour"),
    ],
)
def test_a_malformed_plan_file_names_the_plan_and_field(
    tmp_path: Path, field: str, value: object, message: str
) -> None:
    plan = {
        "id": "NEXT",
        "name_zh": "下期",
        "name_en": "Next",
        "category": "each",
        "coupon_value": 3,
        "budget_yuan": 100,
        field: value,
    }
    path = tmp_path / "marketing.yaml"
    import yaml

    path.write_text(yaml.safe_dump({"version": 1, "plans": [plan]}, allow_unicode=True))
    with pytest.raises(MarketingConfigError, match=str(path)) as info:
        load_marketing(path)
    assert message in str(info.value)


def test_an_unknown_category_names_the_categories(tmp_path: Path) -> None:
    path = tmp_path / "marketing.yaml"
    path.write_text(
        "version: 1\nplans:\n  - {id: P, name_zh: 券, name_en: C, category: 酒, "
        "coupon_value: 3, budget_yuan: 10}\n"
    )
    with pytest.raises(MarketingConfigError, match="乳品"):
        expand_plans(load_marketing(path), ["乳品"])


def test_the_plan_file_follows_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "other.yaml"
    path.write_text("version: 1\nplans: []\n")
    monkeypatch.setenv("BCLAKE_MARKETING", str(path))
    with pytest.raises(MarketingConfigError, match=r"other\.yaml: plans"):
        load_marketing()


# --- the tiny world -------------------------------------------------------------------------
def _tiny(tiny_home: Path, sql: str) -> pl.DataFrame:
    con = duckdb.connect(str(tiny_home / "warehouse" / "build.duckdb"), read_only=True)
    try:
        return con.sql(sql).pl()
    finally:
        con.close()


def test_tiny_world_builds_the_marketing_tables(tiny_home: Path) -> None:
    plans = _tiny(tiny_home, "select * from ml.marketing_plans")
    products = _tiny(tiny_home, "select distinct category from marts.dim_product")
    assert plans.height == products.height  # `each`: one plan per category
    assert (plans["expected_cost"] <= plans["budget_yuan"] + 1e-6).all()
    lists = _tiny(tiny_home, "select * from ml.marketing_target_lists")
    assert lists.height > 0
    assert lists["reason_zh"].null_count() == 0 and lists["reason_en"].null_count() == 0
    for plan in plans.filter(pl.col("list_size") >= 2).iter_rows(named=True):
        arms = lists.filter(pl.col("plan_id") == plan["plan_id"])["arm"]
        assert (arms == "holdout").any(), plan["plan_id"]
    unconsented = _tiny(
        tiny_home,
        "select t.consumer_id from ml.marketing_target_lists as t "
        "join marts.dim_consumer as c using (consumer_id) where not c.consent_marketing "
        "union all select consumer_id from ml.marketing_scores "
        "where consumer_id not in (select consumer_id from marts.fct_marketing_candidates)",
    )
    assert unconsented.is_empty()
    scores = _tiny(tiny_home, "select * from ml.marketing_learner_scores")
    assert set(scores["learner"]) == {*LEARNERS, RESPONSE}
    assert scores["chosen"].sum() == 1
    quality = _tiny(tiny_home, "select * from marts.fct_campaign_quality")
    assert quality.filter(~pl.col("learnable"))["reason_en"].null_count() == 0
    roles = _tiny(tiny_home, "select * from ml.marketing_model_campaigns")
    assert set(roles.filter(pl.col("role") == "skipped")["campaign_id"]) == set(
        quality.filter(~pl.col("learnable"))["campaign_id"]
    )


def test_tiny_world_features_are_point_in_time(tiny_home: Path) -> None:
    """Features of a campaign's members use nothing from its window or later."""
    late = _tiny(
        tiny_home,
        "select * from marts.fct_campaign_uplift_training where snapshot_date >= start_date",
    )
    assert late.is_empty()
    # the member's orders before the snapshot are all the feature counts
    check = _tiny(
        tiny_home,
        "select t.campaign_id, t.consumer_id, any_value(f.orders) as orders, "
        "count(s.consumer_id) as n "
        "from marts.fct_campaign_uplift_training as t "
        "join marts.fct_marketing_features as f on t.consumer_id = f.consumer_id "
        "and t.snapshot_date = f.snapshot_date "
        "left join marts.fct_store_scans as s on s.consumer_id = t.consumer_id "
        "and s.scan_date <= f.snapshot_date and s.scan_date >= f.snapshot_date - 179 "
        "group by 1, 2",
    )
    assert check.height > 0
    assert (check["orders"] == check["n"]).all()
