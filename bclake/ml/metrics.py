"""Forecast accuracy measures, defined once so every report uses the same formulas."""

from __future__ import annotations

import numpy as np
import polars as pl

# the columns `score_cv` reports, in the order reports show them
METRICS = ("wape", "mase", "bias", "pinball", "coverage")


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


def score_cv(
    cv: pl.DataFrame,
    models: dict[str, dict[float, str]],
    point_forecasts: tuple[str, ...] = (),
) -> pl.DataFrame:
    """Scores of a cross-validation table, overall (`horizon` null) and per horizon.

    `models` maps a method to its quantile columns ({0.1: "p10", 0.5: "p50", ...}); its
    point forecast is the median. `point_forecasts` are baseline columns, scored as
    point forecasts and, for pinball, as if every quantile were that point (so a
    method without a distribution pays for it). Columns: method, horizon, wape, mase,
    bias, pinball (mean over the quantiles, scaled by mean |y|), coverage (outer band).
    """
    methods = {**models, **{b: {0.5: b} for b in point_forecasts}}
    quantiles = sorted({q for cols in models.values() for q in cols})
    rows = []
    horizons = [None, *sorted(cv["horizon"].unique().to_list())]
    for h in horizons:
        part = cv if h is None else cv.filter(pl.col("horizon") == h)
        y, scale = part["y"].to_numpy(), part["mase_scale"].to_numpy()
        for method, cols in methods.items():
            point = part[cols.get(0.5, next(iter(cols.values())))].to_numpy()
            qcols = {q: part[cols.get(q, cols.get(0.5))].to_numpy() for q in quantiles}
            lo, hi = (
                (qcols[min(quantiles)], qcols[max(quantiles)]) if method in models else (None, None)
            )
            rows.append(
                {
                    "method": method,
                    "horizon": h,
                    "wape": wape(y, point),
                    "mase": mase(y, point, scale),
                    "bias": bias(y, point),
                    "pinball": float(np.mean([pinball(y, f, q) for q, f in qcols.items()])),
                    "coverage": coverage(y, lo, hi) if lo is not None else None,
                    "rows": len(y),
                }
            )
    return pl.DataFrame(
        rows,
        schema={
            "method": pl.String,
            "horizon": pl.Int32,
            "wape": pl.Float64,
            "mase": pl.Float64,
            "bias": pl.Float64,
            "pinball": pl.Float64,
            "coverage": pl.Float64,
            "rows": pl.Int64,
        },
    )
