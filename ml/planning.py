"""The planners' forecast: region x SKU x week, 13 weeks ahead, with a holdout score.

Input is the warehouse's weekly sell-through mart; output is what the
pipeline stores and exports. Nothing here reads the simulator's truth.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import polars as pl

from ml import metrics
from ml.forecast import LGBMForecaster

ID_COLS = ["region", "sku_code"]
HORIZON = 13


@dataclass
class PlanningForecast:
    forecast: pl.DataFrame  # region, sku_code, week_start, horizon, p10, p50, p90
    backtest: pl.DataFrame  # per row of the holdout: actual, model quantiles, baselines
    scores: pl.DataFrame  # method x metric


def complete_weeks(sales: pl.DataFrame, last_day: date) -> pl.DataFrame:
    """Drop a trailing week the data does not yet cover to its Sunday."""
    return sales.filter(pl.col("week_start") + timedelta(days=6) <= last_day)


def score_backtest(cv: pl.DataFrame) -> pl.DataFrame:
    """WAPE, MASE and bias of the P50 and each baseline; pinball and coverage of the model."""
    y, scale = cv["y"].to_numpy(), cv["mase_scale"].to_numpy()
    rows = []
    for method, column in (
        ("lightgbm", "p50"),
        ("seasonal_naive", "seasonal_naive"),
        ("moving_average", "moving_average"),
    ):
        f = cv[column].to_numpy()
        rows.append(
            {
                "method": method,
                "wape": metrics.wape(y, f),
                "mase": metrics.mase(y, f, scale),
                "bias": metrics.bias(y, f),
            }
        )
    scores = pl.DataFrame(rows).with_columns(
        pinball_p10=pl.when(pl.col("method") == "lightgbm").then(
            metrics.pinball(y, cv["p10"].to_numpy(), 0.1)
        ),
        pinball_p90=pl.when(pl.col("method") == "lightgbm").then(
            metrics.pinball(y, cv["p90"].to_numpy(), 0.9)
        ),
        coverage_p10_p90=pl.when(pl.col("method") == "lightgbm").then(
            metrics.coverage(y, cv["p10"].to_numpy(), cv["p90"].to_numpy())
        ),
    )
    return scores


def forecast_region_sku_week(sales: pl.DataFrame, last_day: date) -> PlanningForecast:
    """Backtest on the last 13 complete weeks, then refit on everything and forecast 13 weeks."""
    weekly = complete_weeks(sales, last_day).select(*ID_COLS, "week_start", "qty")
    model = LGBMForecaster(ID_COLS, "week_start", "qty", horizon=HORIZON, freq="W")
    backtest = model.cross_validation(weekly, n_windows=1)
    forecast = model.fit(weekly).predict()
    return PlanningForecast(forecast, backtest, score_backtest(backtest))
