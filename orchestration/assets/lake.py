"""Lake assets: one per source-table contract, landing files -> Parquet with lineage."""

import dagster as dg

from bclake.contracts import Contract, load_contracts
from ingest.load import ingest_table
from orchestration.resources import LakehouseResource


def lake_key(contract: Contract) -> dg.AssetKey:
    return dg.AssetKey(["lake", contract.system, contract.table])


def _lake_asset(contract: Contract) -> dg.AssetsDefinition:
    @dg.asset(
        key=lake_key(contract),
        group_name="lake",
        kinds={"parquet", "polars"},
        description=f"{contract.description} Landing: landing/{contract.system}/{contract.table}/.",
    )
    def _asset(
        context: dg.AssetExecutionContext, lakehouse: LakehouseResource
    ) -> dg.MaterializeResult:
        result = ingest_table(contract, lakehouse.settings)
        new = [f for f in result.files if f.status != "skipped"]
        for f in new:
            if f.status == "rejected":
                context.log.warning(f"{f.file}: rejected ({f.reason}): {f.message}")
            elif f.rows_quarantined:
                context.log.warning(
                    f"{f.file}: {f.rows_quarantined} of {f.rows_in} rows quarantined"
                )
        return dg.MaterializeResult(
            metadata={
                "files_new": len(new),
                "files_skipped": len(result.files) - len(new),
                "files_rejected": sum(f.status == "rejected" for f in new),
                "rows_in": result.total("rows_in"),
                "rows_loaded": result.total("rows_loaded"),
                "rows_quarantined": result.total("rows_quarantined"),
            }
        )

    return _asset


def _bronze_check(contract: Contract) -> dg.AssetChecksDefinition:
    @dg.asset_check(
        asset=lake_key(contract),
        name="bronze_expectations",
        blocking=True,
        description="Great Expectations suite from the contract (required values, id patterns, "
        "allowed values, ranges, lineage, plausible event dates) over the most recent parts.",
    )
    def _check(lakehouse: LakehouseResource) -> dg.AssetCheckResult:
        from ingest.expectations import recent_rows, validate_bronze

        settings = lakehouse.settings
        frame = recent_rows(settings.lake / contract.system / contract.table)
        result = validate_bronze(frame, contract)
        return dg.AssetCheckResult(
            passed=result.success,
            metadata={
                "rows_checked": result.rows_checked,
                "failed_expectations": len(result.failures),
                "failures": dg.MetadataValue.json(result.failures),
            },
        )

    return _check


lake_assets = [_lake_asset(c) for c in load_contracts().values()]
lake_checks = [_bronze_check(c) for c in load_contracts().values()]
