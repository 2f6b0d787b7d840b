"""Model assets: forecasts trained on the working warehouse and stored back into it."""

import dagster as dg

from ml.planning import forecast_region_sku_week as run_forecast
from orchestration.resources import LakehouseResource

WEEKLY_SALES = dg.AssetKey(["marts", "fct_sales_region_sku_week"])
SELL_THROUGH = dg.AssetKey(["marts", "fct_sell_through"])


@dg.asset(
    key=["ml", "forecast_region_sku_week"],
    deps=[WEEKLY_SALES, SELL_THROUGH],
    group_name="models",
    kinds={"lightgbm", "duckdb"},
    description="P10/P50/P90 units by region x SKU x week, 13 weeks ahead, with a holdout "
    "backtest against seasonal-naive and moving-average baselines.",
)
def forecast_region_sku_week(
    context: dg.AssetExecutionContext, lakehouse: LakehouseResource
) -> dg.MaterializeResult:
    with lakehouse.build_db() as con:
        sales = con.sql(
            "select region, sku_code, week_start, qty from marts.fct_sales_region_sku_week"
        ).pl()
        last_day = con.execute("select max(biz_date) from marts.fct_sell_through").fetchone()[0]
        result = run_forecast(sales, last_day)
        con.execute("create schema if not exists ml")
        for name, frame in (
            ("forecast_region_sku_week", result.forecast),
            ("forecast_backtest", result.backtest),
            ("forecast_scores", result.scores),
        ):
            con.register("_frame", frame.to_arrow())
            con.execute(f"create or replace table ml.{name} as select * from _frame")
            con.unregister("_frame")
    scores = {r["method"]: r for r in result.scores.iter_rows(named=True)}
    context.log.info(f"holdout scores:\n{result.scores}")
    return dg.MaterializeResult(
        metadata={
            "rows": result.forecast.height,
            "series": result.forecast.select("region", "sku_code").n_unique(),
            "holdout_wape_lightgbm": scores["lightgbm"]["wape"],
            "holdout_wape_seasonal_naive": scores["seasonal_naive"]["wape"],
            "holdout_wape_moving_average": scores["moving_average"]["wape"],
            "holdout_mase_lightgbm": scores["lightgbm"]["mase"],
            "holdout_mase_seasonal_naive": scores["seasonal_naive"]["mase"],
            "holdout_coverage_p10_p90": scores["lightgbm"]["coverage_p10_p90"],
            "scores": dg.MetadataValue.md(result.scores.to_pandas().to_markdown(index=False)),
        }
    )


@dg.asset_check(
    asset=forecast_region_sku_week,
    description="Warns when the model does not beat seasonal naive on the holdout (WAPE).",
)
def forecast_beats_seasonal_naive(lakehouse: LakehouseResource) -> dg.AssetCheckResult:
    with lakehouse.build_db() as con:
        scores = con.sql("select method, wape from ml.forecast_scores").pl()
    wape = dict(zip(scores["method"], scores["wape"], strict=True))
    return dg.AssetCheckResult(
        passed=bool(wape["lightgbm"] < wape["seasonal_naive"]),
        severity=dg.AssetCheckSeverity.WARN,
        metadata={"wape_lightgbm": wape["lightgbm"], "wape_seasonal_naive": wape["seasonal_naive"]},
    )
