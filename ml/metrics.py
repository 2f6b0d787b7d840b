"""Forecast accuracy measures, defined once so every report uses the same formulas."""

from __future__ import annotations

import numpy as np


def wape(actual: np.ndarray, forecast: np.ndarray) -> float:
    """Weighted absolute percentage error: sum |e| / sum |y| (robust to intermittent series)."""
    denom = np.abs(actual).sum()
    return float(np.abs(actual - forecast).sum() / denom) if denom else float("nan")


def bias(actual: np.ndarray, forecast: np.ndarray) -> float:
    """Signed share of over-forecast: sum (f - y) / sum y."""
    denom = np.abs(actual).sum()
    return float((forecast - actual).sum() / denom) if denom else float("nan")


def mase(actual: np.ndarray, forecast: np.ndarray, scale: np.ndarray) -> float:
    """Mean absolute scaled error; `scale` is each row's in-sample seasonal-naive MAE."""
    ok = scale > 0
    return float(np.mean(np.abs(actual - forecast)[ok] / scale[ok])) if ok.any() else float("nan")


def pinball(actual: np.ndarray, forecast: np.ndarray, q: float) -> float:
    """Mean quantile (pinball) loss at level q, divided by mean |y| so levels compare."""
    diff = actual - forecast
    loss = np.maximum(q * diff, (q - 1) * diff).mean()
    denom = np.abs(actual).mean()
    return float(loss / denom) if denom else float("nan")


def coverage(actual: np.ndarray, lower: np.ndarray, upper: np.ndarray) -> float:
    """Share of actuals inside [lower, upper]."""
    return float(np.mean((actual >= lower) & (actual <= upper)))
