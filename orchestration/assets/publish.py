"""Publish and deliver: the audited build becomes what readers see, then planner files."""

import dagster as dg

from bclake.publish import publish
from exports.planner import write_planner_files
from orchestration.resources import LakehouseResource


@dg.asset(
    key=["warehouse", "published"],
    deps=[
        dg.AssetKey(["ml", "forecast_region_sku_week"]),
        dg.AssetKey(["ml", "replenishment_store_sku"]),
        dg.AssetKey(["ml", "replenishment_distributor_sku"]),
        dg.AssetKey(["marts", "kpi_values"]),
        dg.AssetKey(["marts", "channel_tags"]),
        dg.AssetKey(["marts", "product_tags"]),
        dg.AssetKey(["marts", "user_tags"]),
        dg.AssetKey(["marts", "dim_store"]),
        dg.AssetKey(["marts", "dim_product"]),
    ],
    group_name="publish",
    kinds={"duckdb"},
    description="Atomically replaces warehouse/published.duckdb with the audited build. Runs "
    "only when every upstream asset and blocking check succeeded.",
)
def published_warehouse(lakehouse: LakehouseResource) -> dg.MaterializeResult:
    s = lakehouse.settings
    info = publish(s.build_db, s.published_db)
    return dg.MaterializeResult(
        metadata={
            "path": dg.MetadataValue.path(str(s.published_db)),
            "tables": len(info["tables"]),
            "bytes": info["bytes"],
        }
    )


@dg.asset(
    key=["exports", "planner_files"],
    deps=[published_warehouse],
    group_name="exports",
    kinds={"csv", "excel"},
    description="Forecast files for planners (CSV and XLSX) in exports/, read from the "
    "published warehouse.",
)
def planner_files(lakehouse: LakehouseResource) -> dg.MaterializeResult:
    s = lakehouse.settings
    rows = write_planner_files(s.published_db, s.exports)
    return dg.MaterializeResult(
        metadata={
            "directory": dg.MetadataValue.path(str(s.exports)),
            **{f"rows {name}": n for name, n in rows.items()},
        }
    )
