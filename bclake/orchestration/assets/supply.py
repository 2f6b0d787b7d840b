"""Supply-plan assets (供应链联动): the production plan per plant x SKU, the fair-share
allocation of its output to the regional DCs, the DCs' stock projections and the
proposed emergency transfers and rush runs, written to the working warehouse (schema
`ml`). Checks sit beside them.

The asset reads the supply marts and the region forecast whole, the costs and lead times
from config/supply.yaml (`BCLAKE_SUPPLY`), calls `bclake.ml.supply.plan_supply` and
writes its frames.
"""

import time
from collections.abc import Iterator

import dagster as dg
import polars as pl

from bclake.core.calendar import week_start
from bclake.core.settings import Settings
from bclake.core.supply import load_supply
from bclake.core.warehouse import write_tables
from bclake.ml.supply import SupplyInputs, dc_band_factors, plan_supply
from bclake.orchestration.assets.tables import (
    markdown,
    marts_key,
    ml_key,
    ml_specs,
    read_table,
    throughput,
)
from bclake.orchestration.resources import LakehouseResource

GROUP = "supply"
TABLES = {
    "supply_production_plan": "Weekly production per plant x SKU for the next 13 weeks "
    "(柔性生产): planned units in whole cases, the plant x category capacity, its shadow "
    "price (yuan one more unit of capacity would save), expected lost units, the binding "
    "constraint (capacity, demand, stock, no_plant, no_capacity) and the reason in Chinese "
    "and English.",
    "supply_dc_allocation": "How each week's output is split between the regional DCs "
    "(区域分仓), by fair share (every DC brought to the same weeks of cover of its P50 + "
    "safety need): units, arrival week, cover and whether supply was short.",
    "supply_dc_projection": "Each DC x SKU's stock week by week under P10, P50 and P90 "
    "demand (stock_high, stock_p50, stock_low), arrivals, safety stock, expected lost "
    "units and status (ok, below_safety, stockout_risk).",
    "supply_transfers": "Proposed emergency moves (跨区域调货) between DCs and rush "
    "production runs (紧急生产) for DCs that fall below safety stock in the next weeks: "
    "units, cases, distance, cost, the lost sales they avoid, reasons.",
    "supply_demand_bands": "How wide a DC's weekly demand spreads around the forecast, "
    "per week ahead: the P10 and P90 of the distributors' new orders over the region "
    "forecast's backtest (x the demand ratio), as multiples of the median; the plan "
    "widens each week's P10-P90 to at least these.",
    "supply_notes": "Inputs the supply plan could not use (a DC without lead time, a "
    "region without DC, negative stock, a SKU outside the product master), each with "
    "what to fix.",
}
MARTS = [
    "dim_warehouse",
    "fct_dc_stock_positions",
    "fct_plant_capacity_weeks",
    "dim_sku_plant",
    "fct_dc_demand_ratios",
    "fct_dc_shipment_weeks",
    "fct_dc_distances",
    "dim_product",
    "as_of_date",
]


@dg.multi_asset(
    name="supply_plan",
    specs=ml_specs(
        TABLES,
        [
            ml_key("forecast_region_sku_week"),
            ml_key("forecast_region_sku_week_backtest"),
            *[marts_key(m) for m in MARTS],
        ],
        GROUP,
        {"highs", "duckdb"},
    ),
)
def supply_plan(
    context: dg.AssetExecutionContext, lakehouse: LakehouseResource
) -> Iterator[dg.MaterializeResult]:
    started = time.perf_counter()
    config = load_supply()
    with lakehouse.build_db() as con:
        plants = read_table(con, "marts.dim_sku_plant")
        as_of = read_table(con, "marts.as_of_date")["as_of"][0]
        ratios = read_table(con, "marts.fct_dc_demand_ratios")
        bands = dc_band_factors(
            read_table(con, "ml.forecast_region_sku_week_backtest"),
            read_table(con, "marts.fct_dc_shipment_weeks"),
            ratios,
        )
        inputs = SupplyInputs(
            forecast=read_table(con, "ml.forecast_region_sku_week"),
            dcs=read_table(con, "marts.dim_warehouse").filter(pl.col("warehouse_type") == "DC"),
            stock=read_table(con, "marts.fct_dc_stock_positions"),
            products=read_table(con, "marts.dim_product"),
            sku_plants=plants,
            capacity=read_table(con, "marts.fct_plant_capacity_weeks").filter("is_latest"),
            last_output=plants.select("sku_code", output_units="last_output_units"),
            demand_ratios=ratios.filter(pl.col("week_start") == week_start(as_of)),
            band_factors=bands,
            distances=read_table(con, "marts.fct_dc_distances"),
        )
        plan = plan_supply(inputs, config, as_of)
        write_tables(
            con,
            "ml",
            {
                "supply_production_plan": plan.production,
                "supply_dc_allocation": plan.allocation,
                "supply_dc_projection": plan.projection,
                "supply_transfers": plan.transfers,
                "supply_demand_bands": bands,
                "supply_notes": plan.notes,
            },
        )
    production = plan.production
    by_binding = production.group_by("binding").agg(
        pl.len().alias("sku_weeks"), pl.col("planned_units").sum()
    )
    context.log.info(f"supply plan as of {as_of} in {plan.solve_seconds}s:\n{by_binding}")
    yield dg.MaterializeResult(
        asset_key=ml_key("supply_production_plan"),
        metadata={
            "rows": production.height,
            "planned_units": int(production["planned_units"].sum()),
            "capacity_bound_weeks": production.filter(pl.col("binding") == "capacity")
            .select("plant_code", "category", "week")
            .n_unique(),
            "solve_seconds": plan.solve_seconds,
            "file": str(Settings.from_env().supply_file),
            **throughput(started, inputs.forecast.height, "forecast_rows"),
            "by_binding": markdown(by_binding.sort("binding")),
        },
    )
    yield dg.MaterializeResult(
        asset_key=ml_key("supply_dc_allocation"),
        metadata={
            "rows": plan.allocation.height,
            "short_rows": plan.allocation.filter("short").height,
        },
    )
    projection = plan.projection
    yield dg.MaterializeResult(
        asset_key=ml_key("supply_dc_projection"),
        metadata={
            "rows": projection.height,
            "expected_lost_units": round(float(projection["expected_lost_units"].sum()), 1),
            "by_status": markdown(projection.group_by("status").len().sort("status")),
        },
    )
    transfers = plan.transfers
    yield dg.MaterializeResult(
        asset_key=ml_key("supply_transfers"),
        metadata={
            "transfers": transfers.filter(pl.col("kind") == "transfer").height,
            "rush_runs": transfers.filter(pl.col("kind") == "rush_run").height,
            "cost_yuan": round(float(transfers["cost_yuan"].sum()), 2),
            "avoided_lost_yuan": round(float(transfers["avoided_lost_yuan"].sum()), 2),
        },
    )
    yield dg.MaterializeResult(
        asset_key=ml_key("supply_demand_bands"),
        metadata={"horizons": bands.height, "bands": markdown(bands)},
    )
    yield dg.MaterializeResult(
        asset_key=ml_key("supply_notes"),
        metadata={"notes": plan.notes.height, "subjects": ", ".join(plan.notes["subject"])},
    )


@dg.asset_check(
    asset=ml_key("supply_production_plan"),
    description="No plant x category is planned above its capacity in any week.",
)
def production_within_capacity(lakehouse: LakehouseResource) -> dg.AssetCheckResult:
    with lakehouse.build_db() as con:
        over = con.sql(
            "select plant_code, category, week, sum(planned_units) as planned, "
            "any_value(capacity_units) as capacity from ml.supply_production_plan "
            "where binding not in ('no_plant', 'no_capacity') "
            "group by all having sum(planned_units) > any_value(capacity_units)"
        ).pl()
    return dg.AssetCheckResult(
        passed=over.is_empty(),
        metadata={"weeks_over_capacity": over.height, "over": markdown(over.head(10))},
    )


@dg.asset_check(
    asset=ml_key("supply_dc_allocation"),
    description="Each week's allocation to the DCs adds up to no more than the week's "
    "planned production of the SKU (the last weeks' output may arrive after the horizon "
    "and stay unallocated).",
)
def allocation_within_production(lakehouse: LakehouseResource) -> dg.AssetCheckResult:
    with lakehouse.build_db() as con:
        over = con.sql(
            "with a as (select sku_code, week_start, sum(allocated_units) as allocated "
            "from ml.supply_dc_allocation group by all) "
            "select a.*, p.planned_units from a left join ml.supply_production_plan as p "
            "using (sku_code, week_start) "
            "where a.allocated > coalesce(p.planned_units, 0)"
        ).pl()
    return dg.AssetCheckResult(passed=over.is_empty(), metadata={"sku_weeks_over": over.height})


@dg.asset_check(
    asset=ml_key("supply_transfers"),
    description="No DC is asked to give more units of a SKU than it holds on hand.",
)
def transfers_within_stock(lakehouse: LakehouseResource) -> dg.AssetCheckResult:
    with lakehouse.build_db() as con:
        over = con.sql(
            "with t as (select from_warehouse, sku_code, sum(units) as units "
            "from ml.supply_transfers where kind = 'transfer' group by all) "
            "select t.*, s.on_hand_units from t left join marts.fct_dc_stock_positions as s "
            "on t.from_warehouse = s.warehouse_code and t.sku_code = s.sku_code "
            "where t.units > coalesce(s.on_hand_units, 0)"
        ).pl()
    return dg.AssetCheckResult(passed=over.is_empty(), metadata={"over_stock": over.height})


supply_assets = [supply_plan]
supply_checks = [
    production_within_capacity,
    allocation_within_production,
    transfers_within_stock,
]
