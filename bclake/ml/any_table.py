"""Forecast any long sales table read from CSV or Parquet (`bclake forecast`).

The table has series key columns, a date column and a target; every other column is
an exogenous input. Columns that also appear in the `future` table are known in
advance (their values for the horizon are given there); the rest are historical only.
String columns are categorical. Weekly forecasts of daily rows aggregate to Monday
weeks first (target summed, inputs averaged).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import polars as pl

from bclake.ml.baselines import BASELINES
from bclake.ml.forecaster import LGBMForecaster, quantile_name
from bclake.ml.metrics import score_cv
from bclake.ml.panel import Calendar, Freq, check_calendar, check_freq


class InputError(ValueError):
    """A problem with the user's files, worded so they can fix it."""


def read_table(path: Path, date_col: str, role: str) -> pl.DataFrame:
    """CSV or Parquet by extension, with the date column parsed to a date."""
    if not path.exists():
        raise InputError(f"{role} file {path} does not exist")
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        df = pl.read_parquet(path)
    elif suffix in (".csv", ".txt"):
        df = pl.read_csv(path, try_parse_dates=True, infer_schema_length=100_000)
    else:
        raise InputError(f"{role} file {path}: use .csv or .parquet (got {suffix or 'no suffix'})")
    if date_col not in df.columns:
        raise InputError(f"{role} file {path} has no date column {date_col!r}; it has {df.columns}")
    if df.schema[date_col] != pl.Date:
        parsed = df[date_col].cast(pl.String).str.to_date(strict=False)
        if df.schema[date_col] == pl.Datetime or isinstance(df.schema[date_col], pl.Datetime):
            parsed = df[date_col].dt.date()
        bad = parsed.is_null() & df[date_col].is_not_null()
        if bad.any():
            row = int(bad.arg_max())
            raise InputError(
                f"{role} file {path}, row {row + 2}: {date_col}={df[date_col][row]!r} is not a "
                "date; use YYYY-MM-DD"
            )
        df = df.with_columns(parsed.alias(date_col))
    return df


@dataclass(frozen=True, kw_only=True)
class TableForecast:
    """What `forecast_table` returns."""

    forecast: pl.DataFrame  # id columns, date column, one column per quantile (p10, p50, ...)
    backtest_scores: pl.DataFrame | None  # `score_cv` of the last-horizon holdout, if asked
    future_cols: list[str]  # inputs known in advance (from the future table)
    hist_cols: list[str]  # inputs known only once they happen
    series: int  # number of series forecast


def to_weeks(df: pl.DataFrame, id_cols: list[str], date_col: str, target_col: str) -> pl.DataFrame:
    """Daily (or irregular) rows -> Monday weeks: target summed, other columns averaged
    (strings: the week's first value)."""
    others = [c for c in df.columns if c not in (*id_cols, date_col, target_col)]
    aggs = [pl.col(target_col).sum()]
    for c in others:
        numeric = df.schema[c].is_numeric() or df.schema[c] == pl.Boolean
        aggs.append(pl.col(c).cast(pl.Float64).mean() if numeric else pl.col(c).first())
    return (
        df.with_columns(pl.col(date_col).dt.truncate("1w")).group_by(*id_cols, date_col).agg(aggs)
    )


def forecast_table(
    df: pl.DataFrame,
    id_cols: list[str],
    date_col: str,
    target_col: str,
    horizon: int,
    freq: Freq,
    future: pl.DataFrame | None = None,
    quantiles: tuple[float, ...] = (0.1, 0.5, 0.9),
    backtest: bool = False,
    calendar: Calendar = "cn",
    **model_options,
) -> TableForecast:
    """Fit one global model over the table and forecast `horizon` periods per series.

    `df` is the long table `LGBMForecaster.fit` takes; its columns other than the
    keys, date and target are inputs: known in advance when `future` (id columns,
    date column, their values over the horizon) has them too, historical otherwise.
    `model_options` go to `LGBMForecaster`. Raises InputError (a ValueError) naming
    the column or argument at fault.
    """
    missing = [c for c in (*id_cols, date_col, target_col) if c not in df.columns]
    if missing:
        raise InputError(f"input lacks columns {missing}; it has {df.columns}")
    try:
        freq = check_freq(freq)
        calendar = check_calendar(calendar)
    except ValueError as error:
        raise InputError(str(error)) from error
    if not df.schema[target_col].is_numeric():
        raise InputError(f"target column {target_col!r} is {df.schema[target_col]}, not a number")
    future_cols = _future_columns(df, future, id_cols, date_col)
    hist_cols = [c for c in df.columns if c not in (*id_cols, date_col, target_col, *future_cols)]
    if freq == "W":
        df = to_weeks(df, id_cols, date_col, target_col)
        if future is not None:
            future = to_weeks(
                future.with_columns(pl.lit(0.0).alias("__y")), id_cols, date_col, "__y"
            ).drop("__y")
    model = LGBMForecaster(
        id_cols,
        date_col,
        target_col,
        horizon=horizon,
        freq=freq,
        quantiles=tuple(sorted(quantiles)),
        future_cols=tuple(future_cols),
        hist_cols=tuple(hist_cols),
        calendar=calendar,
        **model_options,
    )
    scores = None
    if backtest:
        cv = model.cross_validation(df, n_windows=1)
        qcols = {q: quantile_name(q) for q in model.quantiles}
        scores = score_cv(cv, {"lightgbm": qcols}, BASELINES)
    model.fit(df)
    fc = model.predict(future.select(*id_cols, date_col, *future_cols) if future_cols else None)
    return TableForecast(
        forecast=fc.drop("horizon"),
        backtest_scores=scores,
        future_cols=future_cols,
        hist_cols=hist_cols,
        series=model.panel_.values.shape[0],
    )


def _future_columns(
    df: pl.DataFrame, future: pl.DataFrame | None, id_cols: list[str], date_col: str
) -> list[str]:
    """The input columns the future table gives over the horizon (known in advance)."""
    if future is None:
        return []
    lacking = [c for c in (*id_cols, date_col) if c not in future.columns]
    if lacking:
        raise InputError(f"future file lacks columns {lacking}")
    future_cols = [c for c in future.columns if c not in (*id_cols, date_col) and c in df.columns]
    extra = [c for c in future.columns if c not in (*id_cols, date_col, *future_cols)]
    if extra:
        raise InputError(f"future file columns {extra} are not in the input: add their history")
    return future_cols


def write_table(df: pl.DataFrame, path: Path) -> None:
    """CSV or Parquet by extension; InputError for any other."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix.lower() == ".parquet":
        df.write_parquet(path)
    elif path.suffix.lower() == ".csv":
        df.write_csv(path)
    else:
        raise InputError(f"output file {path}: use .csv or .parquet")
