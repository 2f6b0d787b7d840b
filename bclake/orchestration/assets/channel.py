"""Channel optimisation assets (渠道优化): every store and distributor scored on its
contribution, the inefficient ones with reasons and actions, the white-space ranking of
the reference cities, H3 cells for the map and the plan for N new outlets, written to the
working warehouse (schema `ml`). Checks sit beside them.

The asset reads the channel marts whole, the rules and settings from config/channel.yaml
(`BCLAKE_CHANNEL`), calls `bclake.ml.channel.plan_channel` and writes its frames.
"""

import time
from collections.abc import Iterator

import dagster as dg

from bclake.core.channel import load_channel
from bclake.core.warehouse import write_tables
from bclake.ml.channel import ChannelInputs, plan_channel
from bclake.orchestration.assets.tables import (
    markdown,
    marts_key,
    ml_key,
    ml_specs,
    read_table,
    throughput,
)
from bclake.orchestration.resources import LakehouseResource

GROUP = "channel"
TABLES = {
    "channel_scores": "Every store and distributor with its contribution over the channel "
    "window and the parts of it (margin, delivery, visits, rebates, promotions), its "
    "percentile among its peers (city tier x channel; distributor tier), the rule it "
    "fires (loss, peer_laggard, recovering, none) and whether it is flagged.",
    "channel_inefficient": "The flagged stores and distributors (低效渠道): the inputs, the "
    "rule fired, the suggested action (merge_routes, lower_visit_frequency, "
    "move_distributor, exit), the yuan it saves and the reason in Chinese and English.",
    "channel_white_space": "Every city of the brand's regions ranked by priority (空白市场): "
    "the standardised excess of resident consumers plus the tier gap; with the estimated "
    "untapped units a week (expected demand from tier, market, residents and trips against "
    "what its stores serve), the confidence and the nearest distributor.",
    "channel_area_cells": "H3 cells of the city seats (with their untapped estimate and "
    "rank) and of the stores (counted), with each cell's boundary as GeoJSON, for the map.",
    "channel_coverage_plan": "Where to open the next N new outlets (铺货覆盖计划), by expected "
    "incremental units a week, and the distributor that would serve each; laid out to "
    "plan_outlets_max outlets, the first N marked in_plan.",
    "channel_notes": "Stores and distributors whose geography cannot be trusted (no "
    "coordinates, outside China or in the sea, unknown distributor, unknown city) and "
    "inputs the model estimated, each with what to fix.",
}
MARTS = [
    "fct_store_economics",
    "fct_distributor_economics",
    "fct_area_demand_signals",
    "fct_channel_geo_issues",
]


@dg.multi_asset(
    name="channel_plan",
    specs=ml_specs(TABLES, [marts_key(m) for m in MARTS], GROUP, {"h3", "duckdb"}),
)
def channel_plan(
    context: dg.AssetExecutionContext, lakehouse: LakehouseResource
) -> Iterator[dg.MaterializeResult]:
    started = time.perf_counter()
    settings = lakehouse.settings
    config = load_channel(settings.channel_file)
    with lakehouse.build_db() as con:
        inputs = ChannelInputs(
            stores=read_table(con, "marts.fct_store_economics"),
            distributors=read_table(con, "marts.fct_distributor_economics"),
            areas=read_table(con, "marts.fct_area_demand_signals"),
            geo_issues=read_table(con, "marts.fct_channel_geo_issues"),
        )
        as_of = inputs.stores["window_end"].max() or inputs.areas["window_end"].max()
        plan = plan_channel(inputs, config, as_of)
        write_tables(
            con,
            "ml",
            {
                "channel_scores": plan.scores,
                "channel_inefficient": plan.inefficient,
                "channel_white_space": plan.white_space,
                "channel_area_cells": plan.area_cells,
                "channel_coverage_plan": plan.coverage_plan,
                "channel_notes": plan.notes,
            },
        )
    scores = plan.scores
    by_rule = scores.group_by("entity_type", "rule").len().sort("entity_type", "rule")
    context.log.info(f"channel plan as of {as_of}:\n{by_rule}")
    yield dg.MaterializeResult(
        asset_key=ml_key("channel_scores"),
        metadata={
            "rows": scores.height,
            "file": str(settings.channel_file),
            **throughput(started, scores.height, "entities"),
            "by_rule": markdown(by_rule),
        },
    )
    inefficient = plan.inefficient
    yield dg.MaterializeResult(
        asset_key=ml_key("channel_inefficient"),
        metadata={
            "rows": inefficient.height,
            "by_action": markdown(
                inefficient.group_by("entity_type", "action").len().sort("entity_type", "action")
            ),
            "saving_yuan": round(float(inefficient["saving"].sum() or 0.0), 2),
        },
    )
    white = plan.white_space
    yield dg.MaterializeResult(
        asset_key=ml_key("channel_white_space"),
        metadata={
            "cities": white.height,
            "untapped_units_week": round(float(white["est_untapped_units_week"].sum()), 1),
            "top": markdown(
                white.head(10).select(
                    "rank",
                    "city",
                    "province",
                    "tier",
                    "stores",
                    "est_untapped_units_week",
                    "confidence",
                    "nearest_distributor_code",
                )
            ),
        },
    )
    yield dg.MaterializeResult(
        asset_key=ml_key("channel_area_cells"),
        metadata={"cells": plan.area_cells.height},
    )
    cov = plan.coverage_plan
    yield dg.MaterializeResult(
        asset_key=ml_key("channel_coverage_plan"),
        metadata={
            "outlets": int(cov["in_plan"].sum()),
            "laid_out": cov.height,
            "new_outlets_asked": config.white_space.new_outlets,
            "incremental_units_week": round(
                float(cov.filter("in_plan")["expected_incremental_units_week"].sum() or 0.0), 1
            ),
        },
    )
    yield dg.MaterializeResult(
        asset_key=ml_key("channel_notes"),
        metadata={
            "notes": plan.notes.height,
            "by_issue": markdown(plan.notes.group_by("issue").len().sort("issue")),
        },
    )


@dg.asset_check(
    asset=ml_key("channel_scores"),
    description="Every store of the store economics and every distributor is scored, once.",
)
def every_store_scored(lakehouse: LakehouseResource) -> dg.AssetCheckResult:
    with lakehouse.build_db() as con:
        missing = con.sql(
            "select store_code as code from marts.fct_store_economics "
            "except select code from ml.channel_scores where entity_type = 'store' "
            "union all "
            "select distributor_code from marts.fct_distributor_economics "
            "except select code from ml.channel_scores where entity_type = 'distributor'"
        ).pl()
        repeated = con.sql(
            "select entity_type, code from ml.channel_scores group by all having count(*) > 1"
        ).pl()
    return dg.AssetCheckResult(
        passed=missing.is_empty() and repeated.is_empty(),
        metadata={"missing": missing.height, "repeated": repeated.height},
    )


@dg.asset_check(
    asset=ml_key("channel_white_space"),
    description="White-space ranks are 1..n, unique, and follow the priority score.",
)
def white_space_ranks_unique(lakehouse: LakehouseResource) -> dg.AssetCheckResult:
    with lakehouse.build_db() as con:
        ranks = con.sql("select rank, priority from ml.channel_white_space order by rank").pl()
    unique = ranks["rank"].n_unique() == ranks.height
    dense = ranks["rank"].to_list() == list(range(1, ranks.height + 1))
    ordered = bool((ranks["priority"].diff().drop_nulls() <= 1e-9).all())
    return dg.AssetCheckResult(
        passed=unique and dense and ordered,
        metadata={"cities": ranks.height, "unique": unique, "dense": dense, "ordered": ordered},
    )


@dg.asset_check(
    asset=ml_key("channel_coverage_plan"),
    description="The coverage plan proposes at most N new outlets (`in_plan`, the first N "
    "of the outlets laid out, numbered 1..) and lays out at most plan_outlets_max "
    "(config/channel.yaml).",
)
def coverage_plan_within_n(lakehouse: LakehouseResource) -> dg.AssetCheckResult:
    ws = load_channel(lakehouse.settings.channel_file).white_space
    with lakehouse.build_db() as con:
        rows, planned, first_n = con.execute(
            "select count(*), count(*) filter (where in_plan), "
            "coalesce(bool_and(in_plan = (outlet <= ?)), true) from ml.channel_coverage_plan",
            [ws.new_outlets],
        ).fetchone()
    laid_out = max(ws.new_outlets, ws.plan_outlets_max)
    return dg.AssetCheckResult(
        passed=planned <= ws.new_outlets and rows <= laid_out and bool(first_n),
        metadata={"outlets": planned, "new_outlets": ws.new_outlets, "laid_out": rows},
    )


channel_assets = [channel_plan]
channel_checks = [every_store_scored, white_space_ranks_unique, coverage_plan_within_n]
