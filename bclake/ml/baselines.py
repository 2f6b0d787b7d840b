"""Baseline forecasts every backtest is scored against, and the MASE scale.

Each function takes `hist`, a series x periods matrix of the target (NaN before a
series starts, in the target's units per period) and forecasts from its last period.
"""

from __future__ import annotations

import warnings

import numpy as np

# the baseline columns of a backtest, in the order reports show them
BASELINES = ("seasonal_naive", "moving_average", "exp_smoothing")


def baselines(hist: np.ndarray, horizon: int, season: int) -> dict[str, np.ndarray]:
    """Seasonal naive (same period one season back), the mean of the last 4 periods, and
    simple exponential smoothing with each series' smoothing weight fitted in-sample.

    Returns one series x `horizon` matrix per name in `BASELINES`; a series with no
    value to read forecasts 0.
    """
    n = hist.shape[1]
    # target n + h, same phase in the last complete season
    idx = np.array([n + h - season * (1 + h // season) for h in range(horizon)])
    seasonal = np.nan_to_num(hist[:, idx], nan=0.0)
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # series not yet born
        ma = np.nan_to_num(np.nanmean(hist[:, -4:], axis=1), nan=0.0)
    ses = exponential_smoothing(hist)
    return {
        "seasonal_naive": seasonal,
        "moving_average": np.repeat(ma[:, None], horizon, 1),
        "exp_smoothing": np.repeat(ses[:, None], horizon, 1),
    }


def exponential_smoothing(
    hist: np.ndarray, alphas: tuple[float, ...] = (0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 0.9)
) -> np.ndarray:
    """Simple exponential smoothing level per series; alpha minimises one-step squared error.

    A missing period (NaN) inside a series, as `fill="missing"` leaves a gap, holds the
    level and adds no error.
    """
    y = np.nan_to_num(hist, nan=0.0)
    known = ~np.isnan(hist)
    start = np.argmax(known, axis=1)
    best_err = np.full(y.shape[0], np.inf)
    best_level = np.zeros(y.shape[0])
    for a in alphas:
        level = y[np.arange(y.shape[0]), start].copy()
        err = np.zeros(y.shape[0])
        for t in range(y.shape[1]):
            live = (t > start) & known[:, t]
            err += np.where(live, (y[:, t] - level) ** 2, 0.0)
            level = np.where(live, a * y[:, t] + (1 - a) * level, level)
        better = err < best_err
        best_err = np.where(better, err, best_err)
        best_level = np.where(better, level, best_level)
    return best_level


def seasonal_naive_mae(hist: np.ndarray, season: int) -> np.ndarray:
    """Each series' in-sample mean absolute error of the seasonal naive forecast (MASE's
    scale), in the target's units; NaN for a series younger than a season."""
    with warnings.catch_warnings():  # a series younger than a season has no scale
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmean(np.abs(hist[:, season:] - hist[:, :-season]), axis=1)
