"""Cold start: forecasts for series with too little history, from similar series' launches.

A new SKU (or a new store) has no lags for the global model to read. It gets the
launch curve of its peers instead: series in the same group (category and price
band, or channel and size class) aligned on their age since first sale. The
P10/P50/P90 at each age are quantiles across the peers. A series that has sold for
a few periods is scaled by how it did against its peers over those periods. Every
row is flagged `forecast_source = cold_start` so planners know it is an analogy.
"""

from __future__ import annotations

from datetime import date

import numpy as np
import polars as pl

from bclake.ml.forecaster import quantile_name
from bclake.ml.panel import Freq, periods_between, periods_since, shift_period

MIN_PEERS = 3


def cold_start_forecast(
    history: pl.DataFrame,
    targets: pl.DataFrame,
    id_cols: list[str],
    date_col: str,
    target_col: str,
    group_cols: list[str],
    first_dates: pl.DataFrame,
    horizon: int,
    freq: Freq = "W",
    quantiles: tuple[float, ...] = (0.1, 0.5, 0.9),
    max_age: int = 52,
) -> pl.DataFrame:
    """Forecast `targets` (id columns, group columns, `first_date`) from peers' launch curves.

    `history` is the long sales table with the group columns; `first_dates` gives each
    history series' launch period (id columns + `first_date`), so peers are aligned on
    their own launch, not on when the data starts. A target's `first_date` is its
    launch (past or planned); it is forecast for the `horizon` periods after the last
    period of `history`. Returns id columns, the date column, horizon, the quantile
    columns and `forecast_source`.
    """
    last = history[date_col].cast(pl.Date).max()
    peers = (
        history.join(first_dates, on=id_cols)
        .with_columns(age=periods_since(pl.col(date_col).cast(pl.Date), pl.col("first_date"), freq))
        .filter(pl.col("age").is_between(0, max_age))
    )
    # a peer counts only if its launch falls inside the history (its curve starts at age 0)
    start = history[date_col].cast(pl.Date).min()
    peers = peers.filter(pl.col("first_date") >= start)
    curves = (
        peers.group_by(*group_cols, "age")
        .agg(pl.col(target_col).quantile(q, "linear").alias(quantile_name(q)) for q in quantiles)
        .join(
            peers.group_by(*group_cols, "age").agg(pl.len().alias("peers")), on=[*group_cols, "age"]
        )
    )
    overall = peers.group_by("age").agg(
        pl.col(target_col).quantile(q, "linear").alias(quantile_name(q)) for q in quantiles
    )
    own = (
        history.join(targets.select(id_cols), on=id_cols)
        .group_by(id_cols)
        .agg(pl.col(target_col).sum().alias("own_total"))
    )
    rows = []
    for t in targets.join(own, on=id_cols, how="left").iter_rows(named=True):
        launch: date = t["first_date"]
        group = {c: t[c] for c in group_cols}
        curve = curves.filter(
            pl.all_horizontal(pl.col(c) == v for c, v in group.items())
            & (pl.col("peers") >= MIN_PEERS)
        )
        if curve.height == 0:
            curve = overall
        curve_map = {r["age"]: r for r in curve.iter_rows(named=True)}
        ages_seen = max(0, periods_between(launch, last, freq) + 1)
        scale = 1.0
        if ages_seen and t["own_total"]:
            peer_total = sum(
                curve_map.get(a, {}).get(quantile_name(0.5), 0.0) or 0.0 for a in range(ages_seen)
            )
            if peer_total > 0:
                scale = float(np.clip(t["own_total"] / peer_total, 0.2, 5.0))
        for h in range(1, horizon + 1):
            day = shift_period(last, h, freq)
            age = periods_between(launch, day, freq)
            point = curve_map.get(min(age, max(curve_map, default=0))) if age >= 0 else None
            values = {
                quantile_name(q): (
                    0.0 if point is None else float(point[quantile_name(q)] or 0.0) * scale
                )
                for q in quantiles
            }
            rows.append({**{c: t[c] for c in id_cols}, date_col: day, "horizon": h, **values})
    schema = {c: targets.schema[c] for c in id_cols}
    out = pl.DataFrame(
        rows,
        schema={
            **schema,
            date_col: pl.Date,
            "horizon": pl.Int32,
            **{quantile_name(q): pl.Float64 for q in quantiles},
        },
    )
    return out.with_columns(pl.lit("cold_start").alias("forecast_source"))
