"""The pipeline's forecasts: region x SKU x week for planners, store x SKU x week for
replenishment, each with a rolling-origin backtest against baselines.

Inputs are warehouse marts (as polars frames); outputs are what the pipeline stores
and exports. Nothing here reads the simulator's truth.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date, timedelta

import polars as pl

from bclake.ml.baselines import BASELINES
from bclake.ml.cold_start import cold_start_forecast
from bclake.ml.forecaster import DEFAULT_PARAMS, LGBMForecaster
from bclake.ml.metrics import score_cv

REGION_KEYS = ["region", "sku_code"]
STORE_KEYS = ["store_code", "sku_code"]
REGION_HORIZON = 13
STORE_HORIZON = 4
# known in advance (planned promotions) vs known once they happen
REGION_FUTURE = ("promo_days", "promo_discount", "promo_stores")
REGION_HIST = ("avg_price", "order_units", "consumer_scans")
SCAN_FEATURES = ("consumer_scans",)  # the C-side signal, ablated in every run
STORE_FUTURE = ("promo_days",)
STORE_HIST = ("order_units",)
MIN_HISTORY_WEEKS = 8  # fewer weeks than this: forecast from similar items (cold start)
QUANTILE_COLS = {0.1: "p10", 0.5: "p50", 0.9: "p90"}


@dataclass
class PlanningForecast:
    forecast: pl.DataFrame  # keys, week_start, horizon, p10, p50, p90, forecast_source
    backtest: pl.DataFrame  # per row of the holdout: actual, model quantiles, baselines
    scores: pl.DataFrame  # method x horizon (null = all) x metric


def complete_weeks(sales: pl.DataFrame, last_day: date) -> pl.DataFrame:
    """Drop a trailing week the data does not yet cover to its Sunday."""
    return sales.filter(pl.col("week_start") + timedelta(days=6) <= last_day)


def future_frame(
    keys: pl.DataFrame, last_week: date, horizon: int, known: pl.DataFrame, cols: tuple[str, ...]
) -> pl.DataFrame:
    """Every series x the next `horizon` weeks, with the known-in-advance columns (0 if none)."""
    weeks = pl.DataFrame(
        {"week_start": [last_week + timedelta(weeks=h) for h in range(1, horizon + 1)]}
    )
    join_keys = [c for c in keys.columns if c in known.columns]
    return (
        keys.join(weeks, how="cross")
        .join(
            known.select(*join_keys, "week_start", *cols), on=[*join_keys, "week_start"], how="left"
        )
        .with_columns(pl.col(c).fill_null(0) for c in cols)
    )


def _windows(n_weeks: int, horizon: int, season: int = 52) -> int:
    """Two rolling origins when the history allows, else one."""
    return 2 if n_weeks - 1 - 2 * horizon >= season else 1


def forecast_region_sku_week(
    sales: pl.DataFrame,
    promotions: pl.DataFrame,
    products: pl.DataFrame,
    last_day: date,
    horizon: int = REGION_HORIZON,
) -> PlanningForecast:
    """Backtest (with and without the scan features), then refit on all weeks and forecast.

    `sales`: fct_sales_region_sku_week; `promotions`: fct_promotions_region_sku_week
    (future weeks included); `products`: dim_product (category, price_band, launch_date).
    """
    weekly = complete_weeks(sales, last_day).select(
        *REGION_KEYS, "week_start", "qty", *REGION_FUTURE, *REGION_HIST
    )
    model = LGBMForecaster(
        REGION_KEYS,
        "week_start",
        "qty",
        horizon=horizon,
        freq="W",
        future_cols=REGION_FUTURE,
        hist_cols=REGION_HIST,
        label="region × SKU forecast",
    )
    n_weeks = weekly["week_start"].n_unique()
    windows = _windows(n_weeks, horizon)
    backtest = model.cross_validation(weekly, n_windows=windows)
    no_scans = replace(
        model,
        hist_cols=tuple(c for c in REGION_HIST if c not in SCAN_FEATURES),
        label="region × SKU forecast without scans",
    ).cross_validation(weekly.drop(SCAN_FEATURES), n_windows=windows)
    backtest = backtest.join(
        no_scans.select(
            *REGION_KEYS,
            "week_start",
            "cutoff",
            *[pl.col(c).alias(f"no_scans_{c}") for c in ("p10", "p50", "p90")],
        ),
        on=[*REGION_KEYS, "week_start", "cutoff"],
        how="left",
    )
    scores = score_cv(
        backtest,
        {
            "lightgbm": QUANTILE_COLS,
            "lightgbm_no_scans": {q: f"no_scans_{c}" for q, c in QUANTILE_COLS.items()},
        },
        BASELINES,
    )
    forecast = _fit_and_forecast(model, weekly, promotions)
    forecast = _with_cold_start(forecast, weekly, products, weekly["week_start"].max(), horizon)
    return PlanningForecast(forecast, backtest, scores)


def _fit_and_forecast(
    model: LGBMForecaster, weekly: pl.DataFrame, promotions: pl.DataFrame
) -> pl.DataFrame:
    """Refit on every complete week and forecast the next `model.horizon` weeks."""
    model.fit(weekly)
    future = future_frame(
        model.panel_.keys,
        weekly["week_start"].max(),
        model.horizon,
        promotions,
        model.future_cols,
    )
    return model.predict(future).with_columns(pl.lit("model").alias("forecast_source"))


def _with_cold_start(
    forecast: pl.DataFrame,
    weekly: pl.DataFrame,
    products: pl.DataFrame,
    last_week: date,
    horizon: int,
) -> pl.DataFrame:
    """Replace young series' model rows by launch-curve rows; add SKUs launching in the horizon."""
    attrs = products.select(
        "sku_code", "category", "price_band", pl.col("launch_date").cast(pl.Date)
    ).with_columns(
        first_date=pl.col("launch_date").dt.truncate("1w"),
    )
    age = (
        weekly.filter(pl.col("qty") > 0)
        .group_by(REGION_KEYS)
        .agg(pl.col("week_start").n_unique().alias("weeks"))
    )
    regions = weekly.select("region").unique()
    horizon_end = last_week + timedelta(weeks=horizon)
    launching = attrs.filter(
        (pl.col("first_date") > last_week - timedelta(weeks=MIN_HISTORY_WEEKS))
        & (pl.col("first_date") <= horizon_end)
    )
    targets = (
        regions.join(launching, how="cross")
        .join(age, on=REGION_KEYS, how="left")
        .filter(pl.col("weeks").fill_null(0) < MIN_HISTORY_WEEKS)
    )
    if targets.height == 0:
        return forecast
    history = weekly.join(attrs.select("sku_code", "category", "price_band"), on="sku_code")
    first_dates = (
        history.select(REGION_KEYS)
        .unique()
        .join(attrs.select("sku_code", "first_date"), on="sku_code")
    )
    cold = cold_start_forecast(
        history.select(*REGION_KEYS, "category", "price_band", "week_start", "qty"),
        targets.select(*REGION_KEYS, "category", "price_band", "first_date"),
        REGION_KEYS,
        "week_start",
        "qty",
        ["category", "price_band"],
        first_dates,
        horizon,
    )
    kept = forecast.join(cold.select(REGION_KEYS).unique(), on=REGION_KEYS, how="anti")
    return pl.concat([kept, cold.select(kept.columns)]).sort(*REGION_KEYS, "week_start")


def forecast_store_sku_week(
    sales: pl.DataFrame,
    promotions: pl.DataFrame,
    last_day: date,
    horizon: int = STORE_HORIZON,
    backtest_windows: int = 2,
) -> PlanningForecast:
    """Store x SKU weekly quantiles for replenishment, with `backtest_windows` rolling
    origins `horizon` weeks apart (the last 8 weeks by default), which the closed-loop
    replenishment evaluation replays.

    `sales`: fct_sales_store_sku_week; `promotions`: fct_promotions_store_sku_week.
    """
    weekly = complete_weeks(sales, last_day).select(
        *STORE_KEYS, "week_start", "qty", *STORE_FUTURE, *STORE_HIST
    )
    model = LGBMForecaster(
        STORE_KEYS,
        "week_start",
        "qty",
        horizon=horizon,
        freq="W",
        future_cols=STORE_FUTURE,
        hist_cols=STORE_HIST,
        num_boost_round=150,
        max_train_rows=600_000,
        label="store × SKU forecast",
        params={**DEFAULT_PARAMS, "min_data_in_leaf": 200},
    )
    backtest = model.cross_validation(weekly, n_windows=backtest_windows, step=horizon)
    scores = score_cv(backtest, {"lightgbm": QUANTILE_COLS}, BASELINES)
    return PlanningForecast(_fit_and_forecast(model, weekly, promotions), backtest, scores)
