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


lake_assets = [_lake_asset(c) for c in load_contracts().values()]
