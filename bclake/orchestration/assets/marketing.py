"""Precision-marketing assets (精准营销, 一人一推): the uplift model's comparison of learners,
the scores of every consented consumer and the budgeted target lists of the next
campaigns, written to the working warehouse (schema `ml`). Checks sit beside them.

The asset reads the marketing marts whole, the plans from config/marketing.yaml
(`BCLAKE_MARKETING`), calls `bclake.ml.uplift.plan_campaigns` and writes its frames.
"""

import time
from collections.abc import Iterator

import dagster as dg
import duckdb
import polars as pl

from bclake.core.marketing import expand_plans, load_marketing
from bclake.core.settings import Settings
from bclake.core.warehouse import write_tables
from bclake.ml.uplift import LEARNERS, RESPONSE, plan_campaigns
from bclake.orchestration.assets.tables import (
    MODEL_POOL,
    markdown,
    marts_key,
    ml_key,
    ml_specs,
    read_table,
    throughput,
)
from bclake.orchestration.resources import LakehouseResource

GROUP = "marketing"
HOLDOUT_CHECK_MIN_LIST = 20  # lists this long must keep at least half the planned hold-out
TABLES = {
    "marketing_learner_scores": "Each learner (t_learner, x_learner, dr_learner and the "
    "response-only model) scored on the last learnable campaigns held out in time: Qini "
    "coefficient, AUUC, which campaigns, fit seconds; `chosen` marks the uplift learner "
    "with the best Qini, the one that scores the lists.",
    "marketing_qini_curves": "Qini curves of every learner on the held-out campaigns: "
    "incremental responses against the share targeted (0-1, 101 points), with the random "
    "line.",
    "marketing_model_campaigns": "Every past campaign and its role in the model: train, "
    "heldout (scored for the learner comparison) or skipped (not learnable, with the "
    "fault from marts.fct_campaign_quality).",
    "marketing_scores": "One row per plan x consented consumer: expected uplift (chosen "
    "learner, probability points), the response model's P(buy | coupon), P(redeem | "
    "coupon), expected basket, expected cost and incremental revenue (yuan).",
    "marketing_target_lists": "The target list of each plan (一人一推): rank, arm "
    "('target' gets the coupon, 'holdout' is the stable random hold-out), expected "
    "uplift, incremental revenue and cost (yuan), reason in Chinese and English, home "
    "store's region, distributor and store for aggregation. Pseudonymous ids only.",
    "marketing_plans": "One row per plan (config/marketing.yaml, `each` expanded per "
    "category): list size, targets and hold-out, expected cost, incremental revenue, "
    "expected ROI and the ROI a random list would expect.",
}
MARTS = [
    "fct_campaign_uplift_training",
    "fct_marketing_candidates",
    "fct_campaign_quality",
    "dim_product",
    "dim_consumer",
]


@dg.multi_asset(
    name="marketing_targeting",
    pool=MODEL_POOL,
    specs=ml_specs(TABLES, [marts_key(m) for m in MARTS], GROUP, {"lightgbm", "duckdb"}),
)
def marketing_targeting(
    context: dg.AssetExecutionContext, lakehouse: LakehouseResource
) -> Iterator[dg.MaterializeResult]:
    started = time.perf_counter()
    config = load_marketing()
    with lakehouse.build_db() as con:
        categories = read_table(con, "marts.dim_product")["category"].unique().to_list()
        plans = expand_plans(config, categories)
        training = read_table(con, "marts.fct_campaign_uplift_training")
        candidates = read_table(con, "marts.fct_marketing_candidates")
        result = plan_campaigns(training, candidates, plans, margin_rate=config.margin_rate)
        write_tables(
            con,
            "ml",
            {
                "marketing_learner_scores": result.learner_scores,
                "marketing_qini_curves": result.qini_curves,
                "marketing_model_campaigns": result.model_campaigns,
                "marketing_scores": result.scores,
                "marketing_target_lists": result.target_lists,
                "marketing_plans": result.plans,
            },
        )
    scores = result.learner_scores
    context.log.info(f"learners on the held-out campaigns:\n{scores}")
    roles = result.model_campaigns
    skipped = roles.filter(pl.col("role") == "skipped")
    qini = {r["learner"]: r["qini"] for r in scores.iter_rows(named=True)}
    yield dg.MaterializeResult(
        asset_key=ml_key("marketing_learner_scores"),
        metadata={
            "chosen_learner": result.chosen,
            **{f"qini_{name}": qini.get(name) for name in (*LEARNERS, RESPONSE)},
            "heldout_campaigns": scores["heldout_campaigns"][0] if scores.height else "",
            "campaigns_used": roles.filter(pl.col("role") != "skipped").height,
            "campaigns_skipped": ", ".join(
                f"{r['campaign_id']} ({r['fault']})" for r in skipped.iter_rows(named=True)
            ),
            "fit_seconds": result.fit_seconds,
            **throughput(started, training.height + candidates.height, "rows_read"),
            "file": str(Settings.from_env().marketing_file),
            "scores": markdown(scores),
        },
    )
    yield dg.MaterializeResult(
        asset_key=ml_key("marketing_qini_curves"), metadata={"rows": result.qini_curves.height}
    )
    yield dg.MaterializeResult(
        asset_key=ml_key("marketing_model_campaigns"),
        metadata={
            "rows": roles.height,
            "by_role": markdown(roles.group_by("role").len().sort("role")),
        },
    )
    yield dg.MaterializeResult(
        asset_key=ml_key("marketing_scores"), metadata={"rows": result.scores.height}
    )
    yield dg.MaterializeResult(
        asset_key=ml_key("marketing_target_lists"),
        metadata={"rows": result.target_lists.height, "plans": result.plans.height},
    )
    yield dg.MaterializeResult(
        asset_key=ml_key("marketing_plans"),
        metadata={
            "plans": markdown(
                result.plans.select(
                    "plan_id",
                    "list_size",
                    "holdout",
                    "expected_cost",
                    "expected_incremental_revenue",
                    "expected_roi",
                    "expected_roi_random",
                )
            )
        },
    )


@dg.asset_check(
    asset=ml_key("marketing_target_lists"),
    description="No consumer in a target list lacks marketing consent (their latest consent "
    "in dim_consumer): a withdrawal removes them from every list.",
)
def target_lists_honour_consent(lakehouse: LakehouseResource) -> dg.AssetCheckResult:
    with lakehouse.build_db() as con:
        bad = con.sql(
            "select count(*) as n from ml.marketing_target_lists as t "
            "left join marts.dim_consumer as c on t.consumer_id = c.consumer_id "
            "where not coalesce(c.consent_marketing, false)"
        ).fetchall()[0][0]
    return dg.AssetCheckResult(passed=bad == 0, metadata={"listed_without_consent": bad})


def _list_totals(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    """Per plan, from the lists themselves: rows, hold-out rows and the target arm's cost,
    next to the plan's budget and hold-out share."""
    return con.sql(
        """
        select p.plan_id, p.budget_yuan, p.holdout_share,
               count(t.consumer_id) as listed,
               count(t.consumer_id) filter (where t.arm = 'holdout') as holdout,
               coalesce(sum(t.expected_cost) filter (where t.arm = 'target'), 0) as cost
        from ml.marketing_plans as p
        left join ml.marketing_target_lists as t on p.plan_id = t.plan_id
        group by all
        """
    ).pl()


@dg.asset_check(
    asset=ml_key("marketing_target_lists"),
    description="Every list's expected coupon cost, summed over its target arm, is within "
    "its plan's budget.",
)
def plans_within_budget(lakehouse: LakehouseResource) -> dg.AssetCheckResult:
    with lakehouse.build_db() as con:
        totals = _list_totals(con)
    over = totals.filter(pl.col("cost") > pl.col("budget_yuan") + 1e-6)
    return dg.AssetCheckResult(
        passed=over.is_empty(),
        metadata={"plans": totals.height, "over_budget": ", ".join(over["plan_id"].to_list())},
    )


@dg.asset_check(
    asset=ml_key("marketing_target_lists"),
    description="Every list keeps a random hold-out that gets no coupon, so the campaign's "
    "real uplift can be measured: at least one consumer in a list of two or more, and at "
    f"least half the plan's hold-out share in a list of {HOLDOUT_CHECK_MIN_LIST} or more.",
)
def target_lists_keep_a_holdout(lakehouse: LakehouseResource) -> dg.AssetCheckResult:
    with lakehouse.build_db() as con:
        totals = _list_totals(con)
    share = pl.col("holdout") / pl.col("listed")
    short = totals.filter(
        ((pl.col("listed") >= 2) & (pl.col("holdout") == 0))
        | ((pl.col("listed") >= HOLDOUT_CHECK_MIN_LIST) & (share < 0.5 * pl.col("holdout_share")))
    )
    return dg.AssetCheckResult(
        passed=short.is_empty(),
        metadata={
            "plans_short_of_holdout": ", ".join(short["plan_id"].to_list()),
            "holdout_share": float(totals["holdout"].sum() / max(totals["listed"].sum(), 1)),
        },
    )


@dg.asset_check(
    asset=ml_key("marketing_learner_scores"),
    description="The chosen uplift learner ranks the held-out campaigns better (Qini) than "
    "the response-only model; a warning when it does not (the lists then add little over "
    "targeting the likely buyers).",
)
def uplift_beats_response_model(lakehouse: LakehouseResource) -> dg.AssetCheckResult:
    with lakehouse.build_db() as con:
        scores = read_table(con, "ml.marketing_learner_scores")
    chosen = scores.filter("chosen")["qini"]
    response = scores.filter(pl.col("learner") == RESPONSE)["qini"]
    ok = chosen.len() == 1 and response.len() == 1 and chosen[0] > response[0]
    return dg.AssetCheckResult(
        passed=bool(ok),
        severity=dg.AssetCheckSeverity.WARN,
        metadata={
            "chosen": ", ".join(scores.filter("chosen")["learner"].to_list()),
            "chosen_qini": chosen[0] if chosen.len() else None,
            "response_model_qini": response[0] if response.len() else None,
        },
    )


marketing_assets = [marketing_targeting]
marketing_checks = [
    target_lists_honour_consent,
    plans_within_budget,
    target_lists_keep_a_holdout,
    uplift_beats_response_model,
]
