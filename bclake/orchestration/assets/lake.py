"""Lake assets: one per source-table contract, landing files -> Parquet with lineage.

`lake_key` names them; the dbt sources map to the same keys (`assets.warehouse`).
"""

import time
import warnings
from collections.abc import Iterator
from datetime import UTC, datetime

import dagster as dg

from bclake.core.contracts import Contract, load_contracts
from bclake.core.progress import track
from bclake.core.settings import Settings
from bclake.ingest.freshness import source_freshness
from bclake.ingest.ledger import FileResult
from bclake.ingest.loader import TableResult, ingest_table, reingest_days
from bclake.ingest.programmes import CONFIG_TABLES, publish_programmes
from bclake.orchestration.assets.tables import throughput
from bclake.orchestration.partitions import is_reingest
from bclake.orchestration.resources import LakehouseResource


def lake_key(system: str, table: str) -> dg.AssetKey:
    """The asset key of a source table in the lake: `lake/<system>/<table>`."""
    return dg.AssetKey(["lake", system, table])


def _lake_asset(
    contract: Contract, partitions: dg.DailyPartitionsDefinition
) -> dg.AssetsDefinition:
    partitioned = contract.event_date is not None
    key = lake_key(contract.system, contract.table)

    @dg.asset(
        key=key,
        group_name="lake",
        kinds={"parquet", "polars"},
        partitions_def=partitions if partitioned else None,
        backfill_policy=dg.BackfillPolicy.single_run() if partitioned else None,
        description=f"{contract.description} Landing: landing/{contract.system}/{contract.table}/."
        + (
            f" Daily partitions by `{contract.event_date}`: every run loads all new files "
            "(each day that receives rows is marked materialised); a backfill re-ingests the "
            "files that fed its days."
            if partitioned
            else ""
        ),
    )
    def _asset(
        context: dg.AssetExecutionContext, lakehouse: LakehouseResource
    ) -> dg.MaterializeResult:
        with lakehouse.writer(f"ingest {contract.system}/{contract.table}", context.log.info):
            return _ingest(context, lakehouse.settings)

    def _ingest(context: dg.AssetExecutionContext, settings: Settings) -> dg.MaterializeResult:
        started = time.perf_counter()
        run_days = list(context.partition_keys) if partitioned else []
        redone = (
            reingest_days(contract, settings, run_days)
            if partitioned and is_reingest(context.run.tags)
            else None
        )
        if redone is not None:
            for f in redone.files:
                if f.status == "kept":
                    context.log.warning(f.message)
            context.log.info(
                f"re-ingested {sum(f.status != 'kept' for f in redone.files)} files feeding "
                f"{run_days[0]}..{run_days[-1]}"
            )
        result = ingest_table(contract, settings)
        new = _log_result(context, result)
        days = {**(redone.days if redone else {}), **result.days}
        if partitioned:
            _mark_partitions(context, key, partitions, days, set(run_days))
        return dg.MaterializeResult(
            metadata={
                "files_new": len(new),
                "files_skipped": len(result.files) - len(new),
                "files_rejected": sum(f.status == "rejected" for f in new),
                "files_reingested": len(redone.files) if redone else 0,
                "orphan_parts_set_aside": len(result.orphans),
                **throughput(started, result.total("rows_in"), "rows_in"),
                "rows_loaded": result.total("rows_loaded"),
                "rows_quarantined": result.total("rows_quarantined"),
                "event_days_written": len(days),
                "first_event_day": min(days) if days else "",
                "last_event_day": max(days) if days else "",
            }
        )

    return _asset


def _log_result(context: dg.AssetExecutionContext, result: TableResult) -> list[FileResult]:
    """Warn about set-aside parts, rejected files and quarantined rows; the files this run
    took (not skipped)."""
    for orphan in result.orphans:
        context.log.warning(
            f"lake/{orphan}: no ledger row accounts for this part (a run killed before it "
            "wrote its ledger?); set aside in lake/_orphans/, its file is loaded again if "
            "it is still in landing"
        )
    new = [f for f in result.files if f.status != "skipped"]
    for f in new:
        if f.status == "rejected":
            context.log.warning(f"{f.file}: rejected ({f.reason}): {f.message}")
        elif f.rows_quarantined:
            context.log.warning(f"{f.file}: {f.rows_quarantined} of {f.rows_in} rows quarantined")
    return new


def _mark_partitions(
    context: dg.AssetExecutionContext,
    key: dg.AssetKey,
    partitions: dg.DailyPartitionsDefinition,
    days: dict[str, int],
    own: set[str],
) -> None:
    """Record a materialisation for every day that received rows outside the run's own days.

    Files are not cut by day (a monthly export spans a month), so one run writes many
    days; marking them keeps Dagster's partition view equal to what is in the lake.
    """
    valid = set(partitions.get_partition_keys())
    outside = {d: n for d, n in days.items() if d not in valid}
    marked = {d: n for d, n in days.items() if d in valid and d not in own}
    if marked:  # one event-log write per day: a long step for a file spanning years
        with track(f"mark {key.to_user_string()} days", total=len(marked), unit="days") as task:
            for day, rows in marked.items():
                context.log_event(
                    dg.AssetMaterialization(
                        asset_key=key, partition=day, metadata={"rows_loaded": rows}
                    )
                )
                task.advance(note=day)
    if outside:
        context.log.warning(
            f"{sum(outside.values())} rows dated {min(outside)}..{max(outside)} were loaded but "
            "fall outside the daily partitions (before BCLAKE_PARTITION_START or in the "
            "future); they are in the lake, with no partition to show them"
        )


def _bronze_check(contract: Contract) -> dg.AssetChecksDefinition:
    @dg.asset_check(
        asset=lake_key(contract.system, contract.table),
        name="bronze_expectations",
        blocking=True,
        description="Great Expectations suite from the contract (required values, id patterns, "
        "allowed values, ranges, lineage, plausible event dates) over the rows this run "
        "loaded; an old part cannot block later runs.",
    )
    def _check(
        context: dg.AssetCheckExecutionContext, lakehouse: LakehouseResource
    ) -> dg.AssetCheckResult:
        from bclake.ingest.expectations import rows_loaded_since, validate_bronze

        settings = lakehouse.settings
        since = _run_started(context)
        frame = rows_loaded_since(settings.lake / contract.system / contract.table, since)
        result = validate_bronze(frame, contract)
        return dg.AssetCheckResult(
            passed=result.success,
            description=None
            if frame.height
            else "nothing loaded by this run; rows loaded before were judged when loaded",
            metadata={
                "loaded_since": since.isoformat(timespec="seconds"),
                "rows_checked": result.rows_checked,
                "failed_expectations": len(result.failures),
                "failures": dg.MetadataValue.json(result.failures),
            },
        )

    return _check


def _run_started(context: dg.AssetCheckExecutionContext) -> datetime:
    """When the run that executes the check started (now, if Dagster has no record)."""
    record = context.instance.get_run_record_by_id(context.run.run_id)
    start = record.start_time if record is not None else None
    return datetime.fromtimestamp(start, UTC) if start else datetime.now(UTC)


def _freshness_check(contract: Contract) -> dg.AssetChecksDefinition:
    @dg.asset_check(
        asset=lake_key(contract.system, contract.table),
        name="freshness",
        blocking=False,
        description=f"A new file arrived in the last {contract.freshness_hours} hours "
        "(the contract's expected cadence); warns, never blocks.",
    )
    def _check(lakehouse: LakehouseResource) -> dg.AssetCheckResult:
        fresh = source_freshness(contract, lakehouse.settings)
        return dg.AssetCheckResult(
            passed=fresh.fresh,
            severity=dg.AssetCheckSeverity.WARN,
            description=fresh.message,
            metadata={
                "hours_since_last_file": fresh.hours_since if fresh.hours_since is not None else -1,
                "allowed_hours": fresh.allowed_hours,
                "newest_event_date": fresh.newest_event_date or "",
            },
        )

    return _check


def lake_assets(partitions: dg.DailyPartitionsDefinition) -> list[dg.AssetsDefinition]:
    """One asset per contract; tables with an event date use `partitions`."""
    with warnings.catch_warnings():  # single-run backfills are what the lake needs, beta or not
        warnings.simplefilter("ignore", dg.BetaWarning)
        return [_lake_asset(c, partitions) for c in load_contracts().values()]


lake_checks = [
    *(_bronze_check(c) for c in load_contracts().values()),
    *(_freshness_check(c) for c in load_contracts().values() if c.freshness_hours is not None),
]


@dg.multi_asset(
    specs=[
        dg.AssetSpec(
            lake_key("config", table),
            group_name="lake",
            kinds={"parquet", "yaml"},
            description=(
                "The brand's incentive programmes (BCLAKE_INCENTIVES, default "
                "config/incentives.yaml), validated and written to lake/config/"
                f"{table}.parquet; an invalid file fails here, naming the field, and the "
                "programmes last written stay in force."
            ),
        )
        for table in CONFIG_TABLES
    ]
)
def incentive_programmes(
    context: dg.AssetExecutionContext, lakehouse: LakehouseResource
) -> Iterator[dg.MaterializeResult]:
    settings = lakehouse.settings
    with lakehouse.writer("incentive programmes", context.log.info):
        programmes = publish_programmes(settings)
    context.log.info(f"{len(programmes.programmes)} programmes from {settings.incentives_file}")
    tiers = sum(len(p.tiers or []) for p in programmes.programmes)
    for table, rows in zip(CONFIG_TABLES, (len(programmes.programmes), tiers), strict=True):
        yield dg.MaterializeResult(
            asset_key=lake_key("config", table),
            metadata={"rows": rows, "file": str(settings.incentives_file)},
        )


ERASURE_KEY = dg.AssetKey(["lake", "erasure"])


@dg.asset(
    key=ERASURE_KEY,
    group_name="lake",
    kinds={"parquet", "duckdb"},
    deps=[lake_key(c.system, c.table) for c in load_contracts().values()],
    description=(
        "Erasure requests (cdp/erasure_requests) carried out: every row about each person "
        "listed leaves the lake, the quarantine, the working and published warehouse, the "
        "planner export sets, and the run logs once the run has ended; the "
        "ledger counts them as erased; receipts without personal data go to "
        "lake/_erasure/receipts.parquet (`bclake.ingest.erasure`)."
    ),
)
def lake_erasure(
    context: dg.AssetExecutionContext, lakehouse: LakehouseResource
) -> dg.MaterializeResult:
    from bclake.orchestration.erasure import carry_out

    settings = lakehouse.settings
    with lakehouse.writer("erasure", context.log.info):
        outcome = carry_out(settings, load_contracts())
    receipts = outcome.receipts
    context.log.info(
        f"erasure: {outcome.requests_new} new requests, {outcome.people} found in the data, "
        f"{int(receipts['rows'].sum()) if receipts.height else 0} rows or files removed"
    )
    return dg.MaterializeResult(
        metadata={
            "requests_new": outcome.requests_new,
            "people_found": outcome.people,
            "places": receipts.height,
        }
    )


RETENTION_KEY = dg.AssetKey(["lake", "retention"])


@dg.asset(
    key=RETENTION_KEY,
    group_name="lake",
    kinds={"parquet"},
    deps=[ERASURE_KEY],
    description=(
        "Retention: consumer-level detail older than BCLAKE_RETENTION_MONTHS (default 36, "
        "counted back from the lake's newest event date; 0 or off keeps it) leaves the "
        "lake: old scans lose their consumer, old coupons, campaign members, interactions "
        "and referrals are dropped, dormant consumers' profiles and memberships too, old "
        "quarantined rows and planner export sets with them; the ledger counts dropped rows "
        "as erased, receipts go to lake/_erasure/receipts.parquet; KPIs of months before "
        "the cutoff keep the values they had (`bclake.ingest.retention`)."
    ),
)
def lake_retention(
    context: dg.AssetExecutionContext, lakehouse: LakehouseResource
) -> dg.MaterializeResult:
    from bclake.orchestration.retention import carry_out

    settings = lakehouse.settings
    with lakehouse.writer("retention", context.log.info):
        outcome = carry_out(settings, load_contracts().values())
    expiry = outcome.lake
    cutoff = expiry.cutoff.isoformat() if expiry.cutoff else ""
    context.log.info(
        f"retention ({settings.retention_months or 'off'} months): cutoff {cutoff or 'none'}, "
        f"{expiry.anonymised} rows anonymised, {expiry.dropped} dropped "
        f"({expiry.dormant} dormant consumers), {outcome.export_sets} export sets deleted"
    )
    return dg.MaterializeResult(
        metadata={
            "retention_months": settings.retention_months,
            "cutoff": cutoff,
            "rows_anonymised": expiry.anonymised,
            "rows_dropped": expiry.dropped,
            "consumers_dormant": expiry.dormant,
            "export_sets_deleted": outcome.export_sets,
        }
    )
