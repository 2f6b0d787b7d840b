"""Model assets: forecasts and replenishment suggestions, trained on the working warehouse
and stored back into it (schema `ml`), with checks beside them."""

from datetime import date, timedelta

import dagster as dg
import duckdb
import polars as pl

from bclake.core.warehouse import write_tables
from bclake.ml.planning import REGION_KEYS, STORE_KEYS, PlanningForecast
from bclake.ml.planning import forecast_region_sku_week as run_region_forecast
from bclake.ml.planning import forecast_store_sku_week as run_store_forecast
from bclake.ml.replenishment import Policy, pool_forecasts, store_order_multiples, suggest
from bclake.orchestration.resources import LakehouseResource


def _key(*parts: str) -> dg.AssetKey:
    return dg.AssetKey(list(parts))


def _store(con: duckdb.DuckDBPyConnection, tables: dict[str, pl.DataFrame]) -> None:
    write_tables(con, "ml", tables)


def _last_day(con: duckdb.DuckDBPyConnection) -> date:
    return con.sql("select max(biz_date) from marts.fct_sell_through").fetchall()[0][0]


def _store_forecast(
    context: dg.AssetExecutionContext,
    con: duckdb.DuckDBPyConnection,
    name: str,
    result: PlanningForecast,
    keys: list[str],
) -> dict:
    """Store a forecast with its backtest and scores (`name`, `_backtest`, `_scores`) and
    return the materialisation metadata."""
    _store(
        con,
        {
            name: result.forecast,
            f"{name}_backtest": result.backtest,
            f"{name}_scores": result.scores,
        },
    )
    context.log.info(f"backtest scores:\n{result.scores.filter(pl.col('horizon').is_null())}")
    cold = result.forecast.filter(pl.col("forecast_source") == "cold_start")
    return {
        "rows": result.forecast.height,
        "series": result.forecast.select(keys).n_unique(),
        "cold_start_series": cold.select(keys).n_unique(),
        **_score_metadata(result.scores),
    }


def _score_metadata(scores: pl.DataFrame) -> dict:
    overall = scores.filter(pl.col("horizon").is_null())
    meta: dict = {}
    for r in overall.iter_rows(named=True):
        meta[f"wape_{r['method']}"] = r["wape"]
        meta[f"mase_{r['method']}"] = r["mase"]
    lgbm = overall.filter(pl.col("method") == "lightgbm").row(0, named=True)
    meta["coverage_p10_p90"] = lgbm["coverage"]
    meta["pinball_lightgbm"] = lgbm["pinball"]
    meta["scores"] = dg.MetadataValue.md(overall.to_pandas().to_markdown(index=False))
    return meta


@dg.asset(
    key=["ml", "forecast_region_sku_week"],
    deps=[
        _key("marts", "fct_sales_region_sku_week"),
        _key("marts", "fct_promotions_region_sku_week"),
        _key("marts", "dim_product"),
        _key("marts", "fct_sell_through"),
    ],
    group_name="models",
    kinds={"lightgbm", "duckdb"},
    description="P10/P50/P90 units by region x SKU x week, 13 weeks ahead, for planners; new "
    "SKUs from similar items' launch curves (forecast_source = cold_start). Also writes the "
    "rolling-origin backtest (_backtest) and its scores per horizon against seasonal naive, "
    "moving average and exponential smoothing, and without the C-side scan features (_scores).",
)
def forecast_region_sku_week(
    context: dg.AssetExecutionContext, lakehouse: LakehouseResource
) -> dg.MaterializeResult:
    with lakehouse.build_db() as con:
        sales = con.sql("select * from marts.fct_sales_region_sku_week").pl()
        promotions = con.sql("select * from marts.fct_promotions_region_sku_week").pl()
        products = con.sql("select * from marts.dim_product").pl()
        result = run_region_forecast(sales, promotions, products, _last_day(con))
        metadata = _store_forecast(context, con, "forecast_region_sku_week", result, REGION_KEYS)
    return dg.MaterializeResult(metadata=metadata)


@dg.asset(
    key=["ml", "forecast_store_sku_week"],
    deps=[
        _key("marts", "fct_sales_store_sku_week"),
        _key("marts", "fct_promotions_store_sku_week"),
        _key("marts", "fct_sell_through"),
    ],
    group_name="models",
    kinds={"lightgbm", "duckdb"},
    description="P10/P50/P90 units by store x SKU x week, 4 weeks ahead, for replenishment "
    "(stores that report sell-through). The backtest (_backtest) covers the last 8 weeks from "
    "two origins; the closed-loop evaluation replays it.",
)
def forecast_store_sku_week(
    context: dg.AssetExecutionContext, lakehouse: LakehouseResource
) -> dg.MaterializeResult:
    with lakehouse.build_db() as con:
        sales = con.sql("select * from marts.fct_sales_store_sku_week").pl()
        promotions = con.sql("select * from marts.fct_promotions_store_sku_week").pl()
        result = run_store_forecast(sales, promotions, _last_day(con))
        metadata = _store_forecast(context, con, "forecast_store_sku_week", result, STORE_KEYS)
    return dg.MaterializeResult(metadata=metadata)


def _beats_seasonal_naive(lakehouse: LakehouseResource, table: str) -> dg.AssetCheckResult:
    with lakehouse.build_db() as con:
        scores = con.sql(
            f"select method, wape, mase, coverage from ml.{table} where horizon is null"
        ).pl()
    wape = dict(zip(scores["method"], scores["wape"], strict=True))
    beaten = [m for m in ("seasonal_naive", "moving_average", "exp_smoothing") if m in wape]
    return dg.AssetCheckResult(
        passed=bool(wape["lightgbm"] < wape["seasonal_naive"]),
        severity=dg.AssetCheckSeverity.WARN,
        metadata={
            "wape_lightgbm": wape["lightgbm"],
            **{f"wape_{m}": wape[m] for m in beaten},
            "beats_every_baseline": all(wape["lightgbm"] < wape[m] for m in beaten),
        },
    )


@dg.asset_check(
    asset=forecast_region_sku_week,
    description="Warns when the model does not beat seasonal naive on the backtest (WAPE).",
)
def region_forecast_beats_seasonal_naive(lakehouse: LakehouseResource) -> dg.AssetCheckResult:
    return _beats_seasonal_naive(lakehouse, "forecast_region_sku_week_scores")


@dg.asset_check(
    asset=forecast_store_sku_week,
    description="Warns when the model does not beat seasonal naive on the backtest (WAPE).",
)
def store_forecast_beats_seasonal_naive(lakehouse: LakehouseResource) -> dg.AssetCheckResult:
    return _beats_seasonal_naive(lakehouse, "forecast_store_sku_week_scores")


@dg.asset_check(
    asset=forecast_region_sku_week,
    description="Warns when the backtest's P10-P90 coverage strays from the nominal 80% by "
    "more than 10 points: the ranges planners see would mislead them.",
)
def region_forecast_interval_coverage(lakehouse: LakehouseResource) -> dg.AssetCheckResult:
    with lakehouse.build_db() as con:
        cov = con.sql(
            "select coverage from ml.forecast_region_sku_week_scores "
            "where horizon is null and method = 'lightgbm'"
        ).fetchall()[0][0]
    return dg.AssetCheckResult(
        passed=bool(0.7 <= cov <= 0.9),
        severity=dg.AssetCheckSeverity.WARN,
        metadata={"coverage_p10_p90": cov, "nominal": 0.8},
    )


# --- replenishment --------------------------------------------------------------------
STORE_POSITIONS = """
with run as (select cast(? as date) as as_of),
counts as (
    select store_code, sku_code, snapshot_date, on_hand_units
    from marts.fct_store_inventory, run
    where snapshot_date between as_of - 14 and as_of - 1
    qualify row_number() over (partition by store_code, sku_code order by snapshot_date desc) = 1
),
delivered as (
    select o.store_code, o.sku_code, sum(o.qty_delivered) as units
    from marts.fct_store_orders as o
    inner join counts as c using (store_code, sku_code)
    where o.delivery_date > c.snapshot_date
    group by 1, 2
),
sold as (
    select f.store_code, f.sku_code, sum(f.qty) as units
    from marts.fct_sell_through as f
    inner join counts as c using (store_code, sku_code)
    where f.biz_date > c.snapshot_date
    group by 1, 2
),
on_order as (
    select store_code, sku_code, sum(qty_delivered) as units
    from marts.fct_store_orders, run
    where order_date < as_of and delivery_date >= as_of
    group by 1, 2
),
lead as (
    select distributor_code, median(delivery_date - order_date) as lead_days
    from marts.fct_store_orders
    group by 1
),
promo as (
    select store_code, sku_code, sum(promo_days) as promo_days
    from marts.fct_promotions_store_sku_week, run
    where week_start between as_of - 6 and as_of + 13
    group by 1, 2
)
select
    f.store_code,
    f.sku_code,
    s.region,
    s.distributor_code,
    greatest(0, c.on_hand_units + coalesce(d.units, 0) - coalesce(so.units, 0)) as on_hand,
    c.snapshot_date as counted_on,
    coalesce(oo.units, 0) as on_order,
    coalesce(l.lead_days, 2) as lead_days,
    coalesce(p.promo_days, 0) as promo_days
from (select distinct store_code, sku_code from ml.forecast_store_sku_week) as f
inner join marts.dim_store as s using (store_code)
left join counts as c using (store_code, sku_code)
left join delivered as d using (store_code, sku_code)
left join sold as so using (store_code, sku_code)
left join on_order as oo using (store_code, sku_code)
left join lead as l on s.distributor_code = l.distributor_code
left join promo as p using (store_code, sku_code)
"""


@dg.asset(
    key=["ml", "replenishment_store_sku"],
    deps=[forecast_store_sku_week, _key("marts", "fct_store_inventory")],
    group_name="models",
    kinds={"duckdb"},
    description="Suggested store orders (以销定补) per store x SKU for the day after the data: "
    "order-up-to level from the store forecast over lead time + a weekly review at 95% "
    "service (98% over holidays, 97% with a promotion), minus counted stock (last count + "
    "deliveries - sales since) and orders in transit, rounded to the store's pack. Every row "
    "names its rule and reason; without a stock count in the last 14 days, no order.",
)
def replenishment_store_sku(lakehouse: LakehouseResource) -> dg.MaterializeResult:
    with lakehouse.build_db() as con:
        as_of = _last_day(con) + timedelta(days=1)
        positions = con.sql(STORE_POSITIONS, params=[as_of]).pl()
        positions = positions.join(store_order_multiples(con), on="sku_code", how="left")
        positions = positions.with_columns(
            pl.col("order_multiple").fill_null(1), moq=pl.col("order_multiple").fill_null(1)
        )
        forecast = con.sql("select * from ml.forecast_store_sku_week").pl()
        counted = positions.filter(pl.col("counted_on").is_not_null())
        out = suggest(counted, forecast, ["store_code", "sku_code"], as_of, Policy())
        uncounted = _uncounted(positions.filter(pl.col("counted_on").is_null()), as_of, out)
        out = pl.concat([out, uncounted], how="diagonal_relaxed")
        out = positions.select("store_code", "sku_code", "region", "distributor_code").join(
            out, on=["store_code", "sku_code"]
        )
        _store(con, {"replenishment_store_sku": out})
    return dg.MaterializeResult(metadata=_suggestion_metadata(out))


def _uncounted(positions: pl.DataFrame, as_of: date, like: pl.DataFrame) -> pl.DataFrame:
    """Rows for series whose stock nobody counted lately: no order, and why."""
    return positions.select(
        "store_code",
        "sku_code",
        pl.lit(as_of).alias("as_of"),
        pl.lit(0.0).alias("suggested_qty"),
        pl.lit("no_stock_count").alias("rule"),
        "on_order",
        "lead_days",
        "order_multiple",
        "moq",
        pl.lit(
            "no stock count in the last 14 days: no order suggested; ask the store to count"
        ).alias("reason_en"),
        pl.lit("近14天无库存盘点:不建议补货,请门店先盘点").alias("reason_zh"),
    )


def _suggestion_metadata(out: pl.DataFrame) -> dict:
    by_rule = out.group_by("rule").agg(pl.len().alias("n"), pl.col("suggested_qty").sum())
    return {
        "rows": out.height,
        "ordering_rows": int((out["suggested_qty"] > 0).sum()),
        "suggested_units": float(out["suggested_qty"].sum()),
        "by_rule": dg.MetadataValue.md(
            by_rule.sort("n", descending=True).to_pandas().to_markdown(index=False)
        ),
    }


DISTRIBUTOR_POSITIONS = """
with run as (select cast(? as date) as as_of),
flows as (
    -- the distributor's stock by flow balance (进销存): units shipped in minus units
    -- delivered to stores, over the whole history; DMS exports carry no stock count
    select distributor_code, sku_code, sum(units) as balance
    from (
        select distributor_code, sku_code, qty_shipped_units as units
        from marts.fct_shipments, run where ship_date < as_of
        union all
        select distributor_code, sku_code, -qty_delivered
        from marts.fct_store_orders, run where delivery_date < as_of
    )
    group by 1, 2
),
lead as (
    select distributor_code, median(ship_date - order_date) + 1 as lead_days
    from marts.fct_shipments group by 1
),
promo as (
    select s.distributor_code, p.sku_code, max(p.promo_days) as promo_days
    from marts.fct_promotions_store_sku_week as p
    inner join marts.dim_store as s using (store_code), run
    where p.week_start between as_of - 6 and as_of + 13
    group by 1, 2
)
select
    k.distributor_code,
    k.sku_code,
    d.region,
    greatest(0, coalesce(f.balance, 0)) as on_hand,
    0 as on_order,
    coalesce(l.lead_days, 4) as lead_days,
    p.case_pack as order_multiple,
    p.case_pack as moq,
    coalesce(pr.promo_days, 0) as promo_days
from (select distinct distributor_code, sku_code from _dist_forecast) as k
inner join marts.dim_distributor as d using (distributor_code)
inner join marts.dim_product as p using (sku_code)
left join flows as f using (distributor_code, sku_code)
left join lead as l using (distributor_code)
left join promo as pr using (distributor_code, sku_code)
"""


@dg.asset(
    key=["ml", "replenishment_distributor_sku"],
    deps=[
        forecast_store_sku_week,
        _key("marts", "fct_shipments"),
        _key("marts", "dim_distributor"),
    ],
    group_name="models",
    kinds={"duckdb"},
    description="Suggested distributor orders per distributor x SKU: the distributor's stores' "
    "forecasts summed (spreads added as independent), order-up-to over the ERP lead time + a "
    "weekly review, minus the flow-balance stock estimate, in whole cases.",
)
def replenishment_distributor_sku(lakehouse: LakehouseResource) -> dg.MaterializeResult:
    with lakehouse.build_db() as con:
        as_of = _last_day(con) + timedelta(days=1)
        dist_forecast = pool_forecasts(
            con.sql("select * from ml.forecast_store_sku_week").pl(),
            con.sql("select store_code, distributor_code from marts.dim_store").pl(),
            "distributor_code",
            ["sku_code"],
        )
        con.register("_dist_forecast", dist_forecast.to_arrow())
        positions = con.sql(DISTRIBUTOR_POSITIONS, params=[as_of]).pl()
        con.unregister("_dist_forecast")
        out = suggest(positions, dist_forecast, ["distributor_code", "sku_code"], as_of, Policy())
        out = positions.select("distributor_code", "sku_code", "region").join(
            out, on=["distributor_code", "sku_code"]
        )
        out = out.with_columns(
            reason_en=pl.concat_str(
                pl.col("reason_en"), pl.lit(" (stock estimated from shipments in - deliveries out)")
            ),
            reason_zh=pl.concat_str(pl.col("reason_zh"), pl.lit("(库存按进销存流水估算)")),
        )
        _store(
            con,
            {
                "replenishment_distributor_sku": out,
                "forecast_distributor_sku_week": dist_forecast,
            },
        )
    return dg.MaterializeResult(metadata=_suggestion_metadata(out))


def _suggestions_are_explained(lakehouse: LakehouseResource, table: str) -> dg.AssetCheckResult:
    with lakehouse.build_db() as con:
        bad = con.sql(
            f"""
            select count(*) filter (where rule is null or reason_en is null or reason_zh is null),
                   count(*) filter (where suggested_qty < 0),
                   count(*) filter (where suggested_qty > 0
                                    and suggested_qty % greatest(order_multiple, 1) <> 0)
            from bclake.ml.{table}
            """
        ).fetchall()[0]
    return dg.AssetCheckResult(
        passed=bool(sum(bad) == 0),
        metadata={"unexplained": bad[0], "negative": bad[1], "not_in_packs": bad[2]},
    )


@dg.asset_check(
    asset=replenishment_store_sku,
    description="Every suggestion has a rule and a reason, is not negative and is whole packs.",
)
def store_suggestions_are_explained(lakehouse: LakehouseResource) -> dg.AssetCheckResult:
    return _suggestions_are_explained(lakehouse, "replenishment_store_sku")


@dg.asset_check(
    asset=replenishment_distributor_sku,
    description="Every suggestion has a rule and a reason, is not negative and is whole cases.",
)
def distributor_suggestions_are_explained(lakehouse: LakehouseResource) -> dg.AssetCheckResult:
    return _suggestions_are_explained(lakehouse, "replenishment_distributor_sku")


model_assets = [
    forecast_region_sku_week,
    forecast_store_sku_week,
    replenishment_store_sku,
    replenishment_distributor_sku,
]
model_checks = [
    region_forecast_beats_seasonal_naive,
    store_forecast_beats_seasonal_naive,
    region_forecast_interval_coverage,
    store_suggestions_are_explained,
    distributor_suggestions_are_explained,
]
