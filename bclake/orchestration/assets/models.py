"""Model assets: forecasts and replenishment suggestions, trained on the working warehouse
and stored back into it (schema `ml`). Every table written is an asset; checks sit beside
the assets they check.

Each asset reads whole tables (`select * from <table>`), calls `bclake.ml` and writes the
frames it gets back: the SQL lives in dbt, the models and the reason wording in `bclake.ml`.
"""

import time
from collections.abc import Iterator
from datetime import date

import dagster as dg
import duckdb
import polars as pl

from bclake.core.warehouse import write_tables
from bclake.ml.planning import REGION_KEYS, STORE_KEYS, PlanningForecast
from bclake.ml.planning import forecast_region_sku_week as run_region_forecast
from bclake.ml.planning import forecast_store_sku_week as run_store_forecast
from bclake.ml.replenishment import pool_forecasts, replenish, suggestion_faults
from bclake.orchestration.assets.tables import (
    MODEL_POOL,
    markdown,
    marts_key,
    ml_key,
    read_table,
    throughput,
)
from bclake.orchestration.resources import LakehouseResource

GROUP = "models"
DISTRIBUTOR_KEYS = ["distributor_code", "sku_code"]


def _last_day(con: duckdb.DuckDBPyConnection) -> date:
    """The last day of sell-through (marts.as_of_date): forecasts end their history there."""
    return read_table(con, "marts.as_of_date")["last_sell_through_date"][0]


# --- forecasts: the forecast, its backtest and its scores, three assets ------------------
def _forecast_specs(name: str, deps: list[dg.AssetKey], description: str) -> list[dg.AssetSpec]:
    common = {"deps": deps, "group_name": GROUP, "kinds": {"lightgbm", "duckdb"}}
    return [
        dg.AssetSpec(ml_key(name), description=description, **common),
        dg.AssetSpec(
            ml_key(f"{name}_backtest"),
            description=f"Rolling-origin backtest of ml/{name}: for each cutoff and week ahead "
            "(horizon), the actual units (y), the model's P10/P50/P90 and the seasonal naive, "
            "moving average and exponential smoothing baselines, with the MASE scale.",
            **common,
        ),
        dg.AssetSpec(
            ml_key(f"{name}_scores"),
            description=f"Scores of the ml/{name} backtest per method and horizon (null "
            "horizon: all horizons): WAPE, MASE, bias, pinball loss, P10-P90 coverage, rows. "
            "Read by the forecast explorer and the evaluation.",
            **common,
        ),
    ]


def _store_forecast(
    context: dg.AssetExecutionContext,
    con: duckdb.DuckDBPyConnection,
    name: str,
    result: PlanningForecast,
    keys: list[str],
    pace: tuple[float, int],
) -> Iterator[dg.MaterializeResult]:
    """Write a forecast, its backtest and its scores (`name`, `_backtest`, `_scores`) and
    yield one materialisation per table; `pace` is (`time.perf_counter()` at the start, rows
    read), reported on the forecast as `duration_s`, `rows_read` and `rows_read_per_s`."""
    write_tables(
        con,
        "ml",
        {
            name: result.forecast,
            f"{name}_backtest": result.backtest,
            f"{name}_scores": result.scores,
        },
    )
    overall = result.scores.filter(pl.col("horizon").is_null())
    context.log.info(f"backtest scores:\n{overall}")
    cold = result.forecast.filter(pl.col("forecast_source") == "cold_start")
    yield dg.MaterializeResult(
        asset_key=ml_key(name),
        metadata={
            "rows": result.forecast.height,
            "series": result.forecast.select(keys).n_unique(),
            "cold_start_series": cold.select(keys).n_unique(),
            **throughput(*pace, "rows_read"),
            **_score_metadata(overall),
        },
    )
    yield dg.MaterializeResult(
        asset_key=ml_key(f"{name}_backtest"),
        metadata={
            "rows": result.backtest.height,
            "cutoffs": result.backtest["cutoff"].n_unique(),
        },
    )
    yield dg.MaterializeResult(
        asset_key=ml_key(f"{name}_scores"),
        metadata={
            "rows": result.scores.height,
            "scores": markdown(overall),
        },
    )


def _score_metadata(overall: pl.DataFrame) -> dict:
    meta: dict = {}
    for r in overall.iter_rows(named=True):
        meta[f"wape_{r['method']}"] = r["wape"]
        meta[f"mase_{r['method']}"] = r["mase"]
    lgbm = overall.filter(pl.col("method") == "lightgbm").row(0, named=True)
    meta["coverage_p10_p90"] = lgbm["coverage"]
    meta["pinball_lightgbm"] = lgbm["pinball"]
    return meta


@dg.multi_asset(
    name="forecast_region_sku_week",
    pool=MODEL_POOL,
    specs=_forecast_specs(
        "forecast_region_sku_week",
        [
            marts_key("fct_sales_region_sku_week"),
            marts_key("fct_promotions_region_sku_week"),
            marts_key("dim_product"),
            marts_key("as_of_date"),
        ],
        "P10/P50/P90 units by region x SKU x week, 13 weeks ahead, for planners; new SKUs "
        "from similar items' launch curves (forecast_source = cold_start). Its backtest "
        "(_backtest) is scored per horizon (_scores) against seasonal naive, moving average "
        "and exponential smoothing, and without the C-side scan features.",
    ),
)
def forecast_region_sku_week(
    context: dg.AssetExecutionContext, lakehouse: LakehouseResource
) -> Iterator[dg.MaterializeResult]:
    started = time.perf_counter()
    with lakehouse.build_db() as con:
        sales = read_table(con, "marts.fct_sales_region_sku_week")
        promotions = read_table(con, "marts.fct_promotions_region_sku_week")
        result = run_region_forecast(
            sales, promotions, read_table(con, "marts.dim_product"), _last_day(con)
        )
        pace = (started, sales.height + promotions.height)
        yield from _store_forecast(
            context, con, "forecast_region_sku_week", result, REGION_KEYS, pace
        )


@dg.multi_asset(
    name="forecast_store_sku_week",
    pool=MODEL_POOL,
    specs=_forecast_specs(
        "forecast_store_sku_week",
        [
            marts_key("fct_sales_store_sku_week"),
            marts_key("fct_promotions_store_sku_week"),
            marts_key("as_of_date"),
        ],
        "P10/P50/P90 units by store x SKU x week, 4 weeks ahead, for replenishment (stores "
        "that report sell-through). The backtest (_backtest) covers the last 8 weeks from two "
        "origins; the closed-loop evaluation replays it.",
    ),
)
def forecast_store_sku_week(
    context: dg.AssetExecutionContext, lakehouse: LakehouseResource
) -> Iterator[dg.MaterializeResult]:
    started = time.perf_counter()
    with lakehouse.build_db() as con:
        sales = read_table(con, "marts.fct_sales_store_sku_week")
        promotions = read_table(con, "marts.fct_promotions_store_sku_week")
        result = run_store_forecast(sales, promotions, _last_day(con))
        pace = (started, sales.height + promotions.height)
        yield from _store_forecast(
            context, con, "forecast_store_sku_week", result, STORE_KEYS, pace
        )


def _read_overall_scores(lakehouse: LakehouseResource, table: str) -> pl.DataFrame:
    """The all-horizon rows (null horizon) of `ml.<table>`: one row per method."""
    with lakehouse.build_db() as con:
        return read_table(con, f"ml.{table}").filter(pl.col("horizon").is_null())


def _beats_seasonal_naive_check(name: str) -> dg.AssetChecksDefinition:
    """A WARN check on `ml/<name>_scores`: LightGBM's WAPE below seasonal naive's."""
    prefix = name.removeprefix("forecast_").split("_")[0]

    @dg.asset_check(
        asset=ml_key(f"{name}_scores"),
        name=f"{prefix}_forecast_beats_seasonal_naive",
        description="Warns when the model does not beat seasonal naive on the backtest (WAPE).",
    )
    def _check(lakehouse: LakehouseResource) -> dg.AssetCheckResult:
        scores = _read_overall_scores(lakehouse, f"{name}_scores")
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

    return _check


region_forecast_beats_seasonal_naive = _beats_seasonal_naive_check("forecast_region_sku_week")
store_forecast_beats_seasonal_naive = _beats_seasonal_naive_check("forecast_store_sku_week")


@dg.asset_check(
    asset=ml_key("forecast_region_sku_week_scores"),
    description="Warns when the backtest's P10-P90 coverage strays from the nominal 80% by "
    "more than 10 points: the ranges planners see would mislead them.",
)
def region_forecast_interval_coverage(lakehouse: LakehouseResource) -> dg.AssetCheckResult:
    scores = _read_overall_scores(lakehouse, "forecast_region_sku_week_scores")
    cov = scores.filter(pl.col("method") == "lightgbm")["coverage"][0]
    return dg.AssetCheckResult(
        passed=bool(0.7 <= cov <= 0.9),
        severity=dg.AssetCheckSeverity.WARN,
        metadata={"coverage_p10_p90": cov, "nominal": 0.8},
    )


@dg.asset(
    key=ml_key("forecast_distributor_sku_week"),
    deps=[ml_key("forecast_store_sku_week"), marts_key("dim_store")],
    group_name=GROUP,
    kinds={"duckdb"},
    description="P10/P50/P90 units by distributor x SKU x week, 4 weeks ahead: the "
    "distributor's stores' forecasts pooled (medians added, spreads added as independent); "
    "cold_start when any store's is. The distributor replenishment and planner files read it.",
)
def forecast_distributor_sku_week(lakehouse: LakehouseResource) -> dg.MaterializeResult:
    started = time.perf_counter()
    with lakehouse.build_db() as con:
        stores = read_table(con, "marts.dim_store").select("store_code", "distributor_code")
        pooled = pool_forecasts(
            read_table(con, "ml.forecast_store_sku_week"), stores, "distributor_code", ["sku_code"]
        )
        write_tables(con, "ml", {"forecast_distributor_sku_week": pooled})
    return dg.MaterializeResult(
        metadata={
            **throughput(started, pooled.height),
            "series": pooled.select(DISTRIBUTOR_KEYS).n_unique(),
        }
    )


# --- replenishment ----------------------------------------------------------------------
def _suggestion_metadata(out: pl.DataFrame, started: float) -> dict:
    """Rows and pace (`throughput` since `started`), ordering rows, units, rows per rule."""
    by_rule = out.group_by("rule").agg(pl.len().alias("n"), pl.col("suggested_qty").sum())
    return {
        **throughput(started, out.height),
        "ordering_rows": int((out["suggested_qty"] > 0).sum()),
        "suggested_units": float(out["suggested_qty"].sum()),
        "by_rule": markdown(by_rule.sort("n", descending=True)),
    }


@dg.asset(
    key=ml_key("replenishment_store_sku"),
    deps=[ml_key("forecast_store_sku_week"), marts_key("fct_store_stock_positions")],
    group_name=GROUP,
    kinds={"duckdb"},
    description="Suggested store orders (以销定补) per store x SKU for the day after the data: "
    "order-up-to level from the store forecast over lead time + a weekly review at 95% "
    "service (98% over holidays, 97% with a promotion), minus counted stock (last count + "
    "deliveries - sales since) and orders in transit, rounded to the store's pack. Every row "
    "names its rule and reason; without a stock count in the last 14 days, no order.",
)
def replenishment_store_sku(lakehouse: LakehouseResource) -> dg.MaterializeResult:
    started = time.perf_counter()
    with lakehouse.build_db() as con:
        out = replenish(
            read_table(con, "ml.forecast_store_sku_week"),
            read_table(con, "marts.fct_store_stock_positions"),
            STORE_KEYS,
            ["region", "distributor_code"],
        )
        write_tables(con, "ml", {"replenishment_store_sku": out})
    return dg.MaterializeResult(metadata=_suggestion_metadata(out, started))


@dg.asset(
    key=ml_key("replenishment_distributor_sku"),
    deps=[ml_key("forecast_distributor_sku_week"), marts_key("fct_distributor_stock_positions")],
    group_name=GROUP,
    kinds={"duckdb"},
    description="Suggested distributor orders per distributor x SKU: order-up-to from the "
    "pooled distributor forecast over the ERP lead time + a weekly review, minus the "
    "flow-balance stock estimate, in whole cases.",
)
def replenishment_distributor_sku(lakehouse: LakehouseResource) -> dg.MaterializeResult:
    started = time.perf_counter()
    with lakehouse.build_db() as con:
        out = replenish(
            read_table(con, "ml.forecast_distributor_sku_week"),
            read_table(con, "marts.fct_distributor_stock_positions"),
            DISTRIBUTOR_KEYS,
            ["region"],
            note="flow_balance",
        )
        write_tables(con, "ml", {"replenishment_distributor_sku": out})
    return dg.MaterializeResult(metadata=_suggestion_metadata(out, started))


def _suggestions_are_explained(lakehouse: LakehouseResource, table: str) -> dg.AssetCheckResult:
    with lakehouse.build_db() as con:
        faults = suggestion_faults(read_table(con, f"ml.{table}"))
    return dg.AssetCheckResult(passed=sum(faults.values()) == 0, metadata=faults)


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
    forecast_distributor_sku_week,
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
