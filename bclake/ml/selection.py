"""Choose, per group of series, between the model and the baselines by a rolling-origin backtest.

`bclake forecast --choose` (off by default; README) makes the model earn its place: before
the final fit it backtests the model on `CHOICE_WINDOWS` rolling origins, `horizon`
periods apart, the last one `horizon` periods before the table's end
(`LGBMForecaster.cross_validation`), next to the baselines of `bclake.ml.baselines`
(seasonal naive, moving average, exponential smoothing) computed at the same origins,
and one combination, `COMBINED`: the mean of the model's P50 and seasonal naive (the
model reads the recent level and the inputs, seasonal naive copies last season's shape).
Each candidate is scored per *series group* by its mean MASE over the group's series,
origins and horizon steps (`score_groups`), and the best one serves the group
(`score_groups`; a tie keeps the model).

Never looking at the future: every origin lies inside the history, each candidate sees
only the periods up to its origin, and the actuals scored are the history's own last
periods; nothing after the table's last period is read. The final forecast of a group
whose choice is a baseline (or the combination) is that baseline computed from the
full history (averaged with the final model's P50) (`baseline_forecast`).

Series groups (`volume_groups`): the series the model serves with a full history
(`forecast_source` "model") and still reporting at the table's last period (a silent
series keeps the model, which reads its recent silence; a baseline would read last
year), ranked by their recent level (mean of the last
`LEVEL_WINDOW` observed periods) and cut into `k = min(MAX_GROUPS, n // SERIES_PER_GROUP)`
groups of equal count (at least one): one group below 2 x `SERIES_PER_GROUP` series,
volume quartiles from 4 x `SERIES_PER_GROUP` on. One series is too noisy a sample to
choose by; one choice for thousands of series too coarse.

MASE scale: each series' in-sample seasonal-naive MAE at the origin (`mase_scale`); a
series with none (younger than a season, or one that repeats its season exactly) is
scaled by its mean |actual| over the backtest rows instead, a constant per series that
weighs the series but cannot favour one candidate over another.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from bclake.ml.baselines import BASELINES, baselines, seasonal_naive_mae
from bclake.ml.forecaster import quantile_name

CHOICE_WINDOWS = 2  # rolling origins the choice is scored on
MODEL = "model"  # the candidate name of the model (its P50)
COMBINED = "model+seasonal_naive"  # the mean of the two
CANDIDATES = (MODEL, COMBINED, *BASELINES)
SERIES_PER_GROUP = 8
MAX_GROUPS = 4
LEVEL_WINDOW = 13  # periods whose mean is a series' recent level
MIN_ERRORS = 8  # backtest errors per horizon step for a per-step band; fewer: pooled


def choice_windows(n_periods: int, horizon: int, season: int, wanted: int = CHOICE_WINDOWS) -> int:
    """How many rolling origins (`horizon` apart, the last `horizon` periods before the end)
    leave more than a season of history before the earliest: 0 to `wanted`."""
    room = n_periods - 1 - horizon - season  # periods the earliest origin can move back
    return 0 if room < 0 else min(wanted, 1 + room // horizon)


def volume_groups(
    df: pl.DataFrame, series: pl.DataFrame, id_cols: list[str], date_col: str, target_col: str
) -> pl.DataFrame:
    """`series` (id columns) with `group`: "all series", or "volume i/k" (1 = the lowest
    recent levels) for k groups of equal count by the rule in the module docstring."""
    level = (
        df.join(series, on=id_cols, how="semi")
        .filter(pl.col(target_col).is_not_null())
        .sort(*id_cols, date_col)
        .group_by(id_cols, maintain_order=True)
        .tail(LEVEL_WINDOW)
        .group_by(id_cols, maintain_order=True)
        .agg(pl.col(target_col).cast(pl.Float64).mean().alias("_level"))
        .sort("_level", *id_cols)
    )
    n = level.height
    k = min(MAX_GROUPS, max(1, n // SERIES_PER_GROUP))
    if k == 1:
        return level.select(*id_cols, pl.lit("all series").alias("group"))
    rank = pl.int_range(pl.len())
    return level.select(
        *id_cols,
        pl.format("volume {}/{}", (rank * k // n + 1), pl.lit(k)).alias("group"),
    )


def _scaled(cv: pl.DataFrame, id_cols: list[str]) -> pl.DataFrame:
    """`cv` with `_scale`: `mase_scale`, else the series' mean |y| over its backtest rows."""
    fallback = pl.col("y").abs().mean().over(id_cols)
    scale = pl.when(pl.col("mase_scale") > 0).then(pl.col("mase_scale")).otherwise(fallback)
    return cv.with_columns(scale.alias("_scale")).filter(pl.col("_scale") > 0)


def score_groups(cv: pl.DataFrame, groups: pl.DataFrame, id_cols: list[str]) -> pl.DataFrame:
    """Per group: series, backtest rows and each candidate's mean scaled absolute error
    (MASE, columns `CANDIDATES`; the model by its P50) over its series, origins and
    horizon steps, and `chosen`: the lowest (the model on a tie)."""
    rows = _scaled(_with_combined(cv).join(groups, on=id_cols), id_cols)
    column = {MODEL: "p50", **{c: c for c in CANDIDATES if c != MODEL}}
    scores = (
        rows.group_by("group")
        .agg(
            pl.struct(id_cols).n_unique().alias("series"),
            pl.len().alias("rows"),
            *(
                ((pl.col("y") - pl.col(column[c])).abs() / pl.col("_scale")).mean().alias(c)
                for c in CANDIDATES
            ),
        )
        .sort("group")
    )
    best = [_best(r) for r in scores.iter_rows(named=True)]
    return scores.with_columns(pl.Series("chosen", best, dtype=pl.String))


def _best(scores: dict) -> str:
    """The candidate chosen from one group's scores (see `score_groups`)."""

    def value(c: str) -> float:
        v = scores[c]
        return np.inf if v is None or np.isnan(v) else v

    return min(CANDIDATES, key=value)  # the first of equals: the model


def _with_combined(cv: pl.DataFrame) -> pl.DataFrame:
    """A backtest table with the `COMBINED` candidate's column."""
    return cv.with_columns(((pl.col("p50") + pl.col("seasonal_naive")) / 2).alias(COMBINED))


def baseline_forecast(
    fc: pl.DataFrame,
    values: np.ndarray,
    keys: pl.DataFrame,
    cv: pl.DataFrame,
    groups: pl.DataFrame,
    choice: dict[str, str],
    id_cols: list[str],
    horizon: int,
    season: int,
    quantiles: tuple[float, ...],
    nonnegative: bool,
) -> pl.DataFrame:
    """The model's forecast `fc` (id columns, date, `horizon`, quantile columns) with the
    series of groups whose `choice` is a baseline forecast by it instead, from the full
    history (`values`, the series x periods panel of `keys`).

    P50 is the baseline itself (for `COMBINED`, the mean of `fc`'s P50 and seasonal
    naive); quantile q is P50 plus the series' scale (its in-sample
    seasonal-naive MAE, else its mean |value|) times the q-quantile of the baseline's
    scaled backtest errors (actual - forecast) at that horizon step within the group
    (pooled over every step when a step has fewer than `MIN_ERRORS`). Lower quantiles
    never exceed P50 nor upper ones fall below it, so they never cross; all are floored
    at 0 when `nonnegative` (the target never negative in the history). Adds `method`:
    the baseline's name for those series, "model" for the rest.
    """
    out = fc.with_columns(pl.lit(MODEL).alias("method"))
    chosen = {g: c for g, c in choice.items() if c != MODEL}
    if not chosen:
        return out
    base = baselines(values, horizon, season)
    scale = seasonal_naive_mae(values, season)
    with np.errstate(all="ignore"):
        mean_abs = np.nanmean(np.abs(values), axis=1)
    scale = np.where(scale > 0, scale, np.nan_to_num(mean_abs, nan=0.0))
    panel_keys = keys.with_row_index("_row").join(groups, on=id_cols)
    base[COMBINED] = base["seasonal_naive"]  # averaged with the model's P50 below
    errors = _scaled(_with_combined(cv).join(groups, on=id_cols), id_cols)
    parts = []
    for group, method in chosen.items():
        rows = panel_keys.filter(pl.col("group") == group)
        index = rows["_row"].to_numpy()
        err = errors.filter(pl.col("group") == group).select(
            "horizon", ((pl.col("y") - pl.col(method)) / pl.col("_scale")).alias("e")
        )
        pooled = err["e"].to_numpy()
        for h in range(1, horizon + 1):
            e = err.filter(pl.col("horizon") == h)["e"].to_numpy()
            e = e if len(e) >= MIN_ERRORS else pooled
            point = base[method][index, h - 1]
            if method == COMBINED:
                model = rows.select(id_cols).join(
                    fc.filter(pl.col("horizon") == h).select(*id_cols, "p50"),
                    on=id_cols,
                    how="left",
                    maintain_order="left",
                )
                point = (point + model["p50"].to_numpy()) / 2
            cols = {}
            for q in quantiles:
                shift = float(np.quantile(e, q)) if len(e) else 0.0
                value = point if q == 0.5 else point + scale[index] * shift
                if q < 0.5:
                    value = np.minimum(value, point)
                elif q > 0.5:
                    value = np.maximum(value, point)
                cols[quantile_name(q)] = np.maximum(value, 0.0) if nonnegative else value
            parts.append(
                rows.select(id_cols).with_columns(
                    pl.lit(h).alias("horizon"),
                    *(pl.Series(name, v) for name, v in cols.items()),
                    pl.lit(method).alias("method"),
                )
            )
    replaced = pl.concat(parts)
    qcols = [quantile_name(q) for q in quantiles]
    kept = out.join(replaced.select(*id_cols, "horizon"), on=[*id_cols, "horizon"], how="anti")
    dates = out.select(*id_cols, "horizon", pl.exclude(*id_cols, "horizon", *qcols, "method"))
    replaced = replaced.join(dates, on=[*id_cols, "horizon"], how="left").select(out.columns)
    return pl.concat([kept, replaced.cast(out.schema)])
