"""Publish and deliver: the audited build becomes what readers see, then planner files."""

import json
import time
from collections.abc import Iterable
from datetime import UTC, datetime

import dagster as dg
import polars as pl

from bclake.core.locks import LOCK_DIR as STATE_DIR
from bclake.core.publish import publish
from bclake.exports.alerts import deliver_alerts
from bclake.exports.planner import write_planner_files
from bclake.exports.versions import current_version, write_export_set
from bclake.ingest.report import lake_audit
from bclake.orchestration.assets.tables import throughput
from bclake.orchestration.resources import LakehouseResource

CHECK_SCHEMA = {
    "asset": pl.String,
    "check_name": pl.String,
    "status": pl.String,
    "passed": pl.Boolean,
    "severity": pl.String,
    "blocking": pl.Boolean,
    "description": pl.String,
    "metadata": pl.String,
    "run_id": pl.String,
    "evaluated_at": pl.Datetime("us", "UTC"),
}


def check_results(context: dg.AssetExecutionContext) -> pl.DataFrame:
    """The latest evaluation of every asset check this run's job knows, as one table."""
    graph = context.job_def.asset_layer.asset_graph
    keys = sorted(graph.asset_check_keys, key=lambda k: (k.asset_key.to_user_string(), k.name))
    summaries = context.instance.event_log_storage.get_asset_check_summary_records(keys)
    rows = []
    for key in keys:
        summary = summaries.get(key)
        record = summary.last_check_execution_record if summary else None
        # a check that failed to run has only its planned event: no evaluation
        evaluation = getattr(record, "evaluation", None) if record else None
        if not isinstance(evaluation, dg.AssetCheckEvaluation):
            evaluation = None
        spec = graph.get_check_spec(key)
        rows.append(
            {
                "asset": key.asset_key.to_user_string(),
                "check_name": key.name,
                "status": record.status.value if record else "never_run",
                "passed": evaluation.passed if evaluation else None,
                "severity": evaluation.severity.value if evaluation else None,
                "blocking": spec.blocking,
                "description": (evaluation.description if evaluation else None) or spec.description,
                "metadata": json.dumps(
                    {k: str(v.value) for k, v in evaluation.metadata.items()},
                    ensure_ascii=False,
                )
                if evaluation
                else None,
                "run_id": record.run_id if record else None,
                "evaluated_at": datetime.fromtimestamp(record.create_timestamp, UTC)
                if record
                else None,
            }
        )
    return pl.DataFrame(rows, schema=CHECK_SCHEMA)


PUBLISHED = dg.AssetKey(["warehouse", "published"])


def published_warehouse(upstream: Iterable[dg.AssetsDefinition]) -> dg.AssetsDefinition:
    """The publish asset, downstream of every asset in `upstream` (what the build holds:
    the dbt models and every ml table), so that it runs last and only when they succeeded."""
    deps = sorted({key for assets in upstream for key in assets.keys}, key=str)

    @dg.asset(
        key=PUBLISHED,
        deps=deps,
        group_name="publish",
        kinds={"duckdb"},
        description="Atomically replaces warehouse/published.duckdb with the audited build. "
        "Runs only when every upstream asset and blocking check succeeded.",
    )
    def _published(
        context: dg.AssetExecutionContext, lakehouse: LakehouseResource
    ) -> dg.MaterializeResult:
        s = lakehouse.settings
        started = time.perf_counter()
        with lakehouse.writer("publish", context.log.info):
            audit = {**lake_audit(s), "asset_checks": check_results(context)}
            info = publish(s.build_db, s.published_db, audit)
        return dg.MaterializeResult(
            metadata={
                "path": dg.MetadataValue.path(str(s.published_db)),
                "tables": len(info["tables"]),
                "bytes": info["bytes"],
                **throughput(started, info["rows"]),
            }
        )

    return _published


@dg.asset(
    key=["exports", "planner_files"],
    deps=[PUBLISHED],
    group_name="exports",
    kinds={"csv", "excel"},
    description="Forecast, replenishment, marketing, supply and channel files for planners "
    "(CSV, Parquet and XLSX) in exports/, read from the published warehouse and swapped in "
    "as one set (exports/ links to .exports/<version>/).",
)
def planner_files(
    context: dg.AssetExecutionContext, lakehouse: LakehouseResource
) -> dg.MaterializeResult:
    s = lakehouse.settings
    started = time.perf_counter()
    with lakehouse.writer("planner files", context.log.info):
        rows = write_export_set(
            s.exports, s.published_db, lambda folder: write_planner_files(s.published_db, folder)
        )
    context.log.info(f"exports/ now shows set {current_version(s.exports)}")
    return dg.MaterializeResult(
        metadata={
            "directory": dg.MetadataValue.path(str(s.exports)),
            "folders": len(rows),
            **throughput(started, sum(rows.values())),
            **{f"rows {name}": n for name, n in rows.items()},
        }
    )


@dg.asset(
    key=["exports", "market_order_alert_delivery"],
    deps=[PUBLISHED],
    group_name="exports",
    kinds={"webhook"},
    description="New market-order alerts posted to the chat bot webhook in "
    "BCLAKE_ALERT_WEBHOOK (off when unset); a failed post is retried next run.",
)
def market_order_alert_delivery(
    context: dg.AssetExecutionContext, lakehouse: LakehouseResource
) -> dg.MaterializeResult:
    s = lakehouse.settings
    with lakehouse.writer("alert delivery", context.log.info):
        result = deliver_alerts(s.published_db, s.home / STATE_DIR, s.alert_webhook)
    if result.error:
        context.log.warning(f"alert delivery failed, retried next run: {result.error}")
    return dg.MaterializeResult(
        metadata={
            "enabled": s.alert_webhook is not None,
            "alerts due": result.due,
            "alerts posted": result.posted,
            "error": result.error or "",
        }
    )
