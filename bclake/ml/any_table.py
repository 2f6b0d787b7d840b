"""Forecast any long sales table read from CSV or Parquet (`bclake forecast`).

The table has series key columns, a date column and a target; every other column is
an exogenous input. Columns that also appear in the `future` table are known in
advance (their values for the horizon are given there); the rest are historical only.
String columns are categorical. Weekly forecasts of daily rows aggregate to Monday
weeks first, monthly and quarterly forecasts aggregate to calendar months and quarters
dated their first day (target summed, inputs averaged; `to_periods`).

What a real export needs, and what this module does about it (each step is counted in
the `ForecastReport` written beside the forecast; nothing changes silently):

- files and values are read as ingest reads them: encodings, delimiters and headers by
  `bclake.core.textio`, null tokens, dates and formatted numbers in the target by
  `bclake.core.parsing`; a value whose meaning is not certain stops the run with its row.
- dates: a timestamp with an offset (`2024-03-01T00:00:00+08:00`, `...Z`) is read as
  the calendar date it has in the time zone `tz` (default Asia/Shanghai), never as
  its UTC date; a timestamp without an offset is taken as local. A date that cannot
  be read stops the run with its row; a row without a date is dropped and counted.
- duplicates: several rows with one series key and date are an error by default
  (the message gives the count and an example); `duplicates="sum"` adds them up (rows
  are parts of one total), `"last"` keeps the last one in file order (later rows
  correct earlier ones). Rows of different dates in one week, month or quarter are not
  duplicates: they are summed into the period, and the report says how many.
- gaps: a period missing inside a series' life is unknown by default
  (`fill="missing"`: not a zero sale, not a training target); `fill="zero"` reads it
  as nothing sold. Series that stopped reporting before the table's last period
  ("silent") are named either way.
- short history: a table with no more periods than the horizon, or a series with
  fewer than `MIN_MODEL_PERIODS` observed periods, is forecast by the mean fallback
  (`mean_fallback`: the mean of its last periods, with a band from the scale-free
  spread of every series); a series with fewer than the model's `n_lags` periods is
  forecast by the model with the lags it has (`model_short_history`).
- new series: a series only in `future` is forecast by cold start from the launch
  curves of series that launched inside the history (`cold_start`, at least
  `MIN_PEERS` of them) or listed as skipped.
- columns: what each column was used as (ids, date, target, inputs known in advance,
  inputs known only in history) is stated in the report. A known-in-advance column
  that is the date in disguise (a day index, an ISO date string, a week id, the year
  once the horizon reaches a new one: `dates_in_disguise`) is dropped and named with
  the reason, as the model builds its own calendar; a text column whose horizon values
  the history never had is kept and warned of (`unseen_levels`).
"""

from __future__ import annotations

import dataclasses
import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal, get_args
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
import polars as pl

from bclake.core import parsing, textio
from bclake.core.xlsx import write_csv, write_xlsx
from bclake.ml import selection
from bclake.ml.baselines import BASELINES
from bclake.ml.cold_start import MIN_PEERS, cold_start_forecast
from bclake.ml.forecaster import LGBMForecaster, quantile_name
from bclake.ml.metrics import score_cv
from bclake.ml.panel import (
    FREQ_NAMES,
    Calendar,
    Fill,
    Freq,
    check_calendar,
    check_fill,
    check_freq,
    period_start,
    periods_between,
    periods_since,
    shift_period,
)

Duplicates = Literal["error", "sum", "last"]
"""What to do with several rows of one series key and date: stop, add them up, keep the
last one (file order)."""

DUPLICATES: tuple[Duplicates, ...] = get_args(Duplicates)
DEFAULT_TZ = "Asia/Shanghai"
MIN_MODEL_PERIODS = 4  # fewer observed periods: the mean fallback, not the model
NAMED = 10  # series named in a printed warning; the report lists them all
QUANTILE_COLUMN = re.compile(r"p\d{2}")  # `quantile_name`: p10, p50, p90


class InputError(ValueError):
    """A problem with the user's files, worded so they can fix it."""


@dataclass
class ForecastReport:
    """What `bclake forecast` read, changed or assumed; JSON-ready (`to_dict`).

    Series are given as {id column: value} dicts; dates as ISO strings.
    """

    input: str = ""
    encoding: str = ""  # of the input: e.g. "gb18030, comma-separated", "parquet"
    tz: str = DEFAULT_TZ
    rows_read: int = 0
    rows_dropped: dict[str, int] = field(default_factory=dict)  # reason -> rows
    timestamps_with_offset: int = 0  # read as their local date in `tz`
    null_targets: int = 0  # rows kept, their period is missing unless another row has it
    # policy; rows beyond the first of each series x date; keys; exact_copies; example
    duplicates: dict = field(default_factory=dict)
    fill: str = "missing"
    week_anchor: str = ""  # weekly forecasts: the weekday every period starts on
    # weekly, monthly, quarterly forecasts: how rows became periods (`to_periods`): freq,
    # dates_moved (rows dated inside a period, moved to its start), dates_summed (series
    # x dates summed into a period holding another date of the series), periods_summed
    periods: dict = field(default_factory=dict)
    gaps: dict = field(default_factory=dict)  # series_with_gaps, missing_periods
    silent_series: list[dict] = field(default_factory=list)  # + last_date, periods_silent
    short_series: list[dict] = field(default_factory=list)  # + periods, forecast_source
    new_series: list[dict] = field(default_factory=list)  # + forecast_source or skipped reason
    # what each column was used as: ids, date, target, known_in_advance, history_only
    columns: dict = field(default_factory=dict)
    dropped_columns: dict[str, str] = field(default_factory=dict)  # column -> why
    calibration: str = ""
    rounds: dict[str, int] = field(default_factory=dict)  # quantile -> boosting rounds
    # model or baseline per series group by backtest (`bclake.ml.selection`): windows,
    # groups [{group, series, rows, mase: {candidate: MASE}, chosen}]
    choice: dict = field(default_factory=dict)
    series: dict[str, int] = field(default_factory=dict)  # forecast_source -> series
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)

    def lines(self) -> list[str]:
        """The short report printed by `bclake forecast`."""
        out = [
            f"read {self.rows_read:,} rows ({self.encoding or 'a table'}); dropped: "
            + (", ".join(f"{n:,} {why}" for why, n in self.rows_dropped.items()) or "none"),
        ]
        c = self.columns
        if c:
            out.append(f"columns: ids {c['ids']}, date {c['date']!r}, target {c['target']!r}")
            out.append(
                f"inputs known in advance (--future): {c['known_in_advance'] or 'none'}; "
                f"historical only: {c['history_only'] or 'none'}"
            )
        out.extend(f"dropped column {name!r}: {why}" for name, why in self.dropped_columns.items())
        if self.dropped_columns:
            out.append(
                "dropped columns: the model cannot learn what values it never saw mean, and "
                "builds its own calendar of each target period (weekday, day, week, month or "
                "quarter of the year, holidays with --calendar cn) and the series' age"
            )
        if self.timestamps_with_offset:
            out.append(
                f"{self.timestamps_with_offset:,} timestamps with an offset read as their "
                f"calendar date in {self.tz}"
            )
        if self.null_targets:
            out.append(f"{self.null_targets:,} rows with no target value (missing, not zero)")
        if self.week_anchor:
            out.append(f"weeks start on {self.week_anchor}")
        if self.periods and (line := _periods_line(self.periods)):
            out.append(line)
        d = self.duplicates
        if d.get("rows"):
            out.append(
                f"duplicates: {d['rows']:,} repeated rows on {d['keys']:,} series x dates "
                f"({d['exact_copies']:,} exact copies), policy {d['policy']}"
            )
        g = self.gaps
        out.append(
            f"gaps (--fill {self.fill}): {g.get('missing_periods', 0):,} missing periods in "
            f"{g.get('series_with_gaps', 0):,} series; {len(self.silent_series)} silent at the end"
        )
        out.append(
            "series by forecast source: "
            + ", ".join(f"{n} {src}" for src, n in sorted(self.series.items()))
        )
        if self.calibration:
            out.append(f"intervals: {self.calibration}")
        if self.rounds:
            out.append(
                "boosting rounds per quantile: "
                + ", ".join(f"{q} {n}" for q, n in self.rounds.items())
            )
        out.extend(_choice_lines(self.choice))
        out.extend(f"warning: {w}" for w in self.warnings)
        return out

    def write(self, out: Path) -> Path:
        """Write the report as `<out>.report.json` beside the forecast; returns its path."""
        path = out.with_name(out.name + ".report.json")
        path.write_text(json.dumps(self.to_dict(), ensure_ascii=False, indent=2, default=str))
        return path


def read_table(
    path: Path,
    date_col: str,
    role: str,
    tz: str = DEFAULT_TZ,
    report: ForecastReport | None = None,
    target_col: str | None = None,
) -> pl.DataFrame:
    """CSV/TSV (any encoding and delimiter ingest reads, headers trimmed: `_read_text`) or
    Parquet by extension, with the date column as local calendar dates and the target
    column (when named) as numbers.

    Values are read by `bclake.core.parsing` as ingest reads them: null tokens (`NULL`,
    `\\N`, `-`, `N/A`, empty, ...) are null; dates in any of its `DATE_FORMS`, a
    timestamp with an offset as its calendar date in `tz` (`local_dates`); the target in
    any of its `NUMBER_FORMS` (`1,234`, `¥1,234.50`, full-width digits). Rows without a
    date are dropped (counted in `report`, when given); a null target is kept (its
    period is missing). Raises InputError for a missing file, another suffix, bytes no
    allowed encoding decodes (naming the byte offset), a missing column (naming the
    headers found), an unknown time zone, and a date or target value that cannot be read with
    certainty (naming the row, the value and why).
    """
    if not path.exists():
        raise InputError(f"{role} file {path} does not exist")
    suffix = path.suffix.lower()
    encoding = "parquet"
    if suffix == ".parquet":
        df = pl.read_parquet(path)
    elif suffix in (".csv", ".txt", ".tsv"):
        df, encoding = _read_text(path, [c for c in (date_col, target_col) if c], role)
    else:
        raise InputError(
            f"{role} file {path}: use .csv, .tsv or .parquet (got {suffix or 'no suffix'})"
        )
    if report is not None and role == "input":
        report.encoding = encoding
    if date_col not in df.columns:
        raise InputError(f"{role} file {path} has no date column {date_col!r}; it has {df.columns}")
    where = f"{role} file {path}"
    dates, with_offset = local_dates(df[date_col], tz, where)
    df = df.with_columns(dates)
    if target_col is not None and target_col in df.columns:
        df = df.with_columns(read_numbers(df[target_col], where))
    no_date = df[date_col].is_null()
    if report is not None:
        report.timestamps_with_offset += with_offset
        if role == "input":
            report.rows_read = df.height
            report.input = str(path)
            if no_date.any():
                report.rows_dropped["no date"] = int(no_date.sum())
    return df.filter(~no_date)


def _read_text(path: Path, as_text: list[str], role: str) -> tuple[pl.DataFrame, str]:
    """A delimited text file as `bclake.core.textio` reads it for ingest: encoding by BOM,
    else UTF-8, else GB18030 (the superset of GBK); delimiter sniffed (`,` tab `;` `|`);
    header names without BOM, zero-width characters or surrounding spaces (NBSP and
    full-width included). Columns named in `as_text` (after normalising) stay strings.
    Returns (table, "<encoding>, <delimiter name>")."""
    data = path.read_bytes()
    try:
        decoded = textio.decode_bytes(data, allowed=("utf-8", "gb18030"))
    except textio.UndecodableText as error:
        raise InputError(f"{role} file {path}: {error}") from error
    text = decoded.text.encode("utf-8")
    separator = textio.sniff_delimiter(decoded.text)
    try:
        raw = pl.read_csv(text, separator=separator, n_rows=0).columns
        names = {h: textio.normalise_header(h) for h in raw}
        if len(set(names.values())) < len(names):
            raise InputError(f"{role} file {path}: two headers are the same once trimmed: {raw}")
        overrides = {h: pl.String for h, n in names.items() if n in as_text}
        df = pl.read_csv(
            text, separator=separator, infer_schema_length=100_000, schema_overrides=overrides
        ).rename(names)
    except pl.exceptions.PolarsError as error:
        raise InputError(f"{role} file {path} ({decoded.encoding}): {error}") from error
    return df, f"{decoded.encoding}, {textio.delimiter_name(separator)}-separated"


def read_numbers(values: pl.Series, where: str) -> pl.Series:
    """A target column as Float64 (`parsing.parse_number` after `parsing.clean`); numbers
    stay as they are. Raises InputError naming the first value that is not null and not
    a number with certainty (a decimal comma, a percent sign, parentheses, text)."""
    if values.dtype.is_numeric():
        return values
    name = values.name
    frame = values.cast(pl.String).to_frame()
    text = parsing.clean(pl.col(name))
    out = frame.select(parsing.parse_number(text).alias("value"), text.is_not_null().alias("given"))
    bad = out["given"] & out["value"].is_null()
    if bad.any():
        row = int(bad.arg_max())
        why = _refusal(
            frame.slice(row, 1),
            [
                (
                    parsing.ambiguous_number(text),
                    "a comma that is not a thousands separator (a decimal comma?)",
                ),
                (parsing.percent_refused(text, share=False), "a percent sign"),
                (
                    parsing.parens_refused(text, negative_parens=False),
                    "parentheses (a negative quantity?)",
                ),
            ],
            "not a number",
        )
        raise InputError(
            f"{where}, row {row + 2}: {name}={values[row]!r} is {why}; "
            f"{int(bad.sum()):,} values like it. Numbers read: {parsing.NUMBER_FORMS}"
        )
    return out["value"].alias(name)


def local_dates(values: pl.Series, tz: str, where: str) -> tuple[pl.Series, int]:
    """A column of dates, datetimes or strings -> (calendar dates in `tz`, how many
    strings had an offset, or datetimes a zone).

    Strings are read by `parsing.parse_date` (null tokens null; `DATE_FORMS`): a value
    with an offset (`+08:00`, `Z`) becomes the date it has in `tz`, never its UTC date;
    one without is already local. An aware datetime (a Parquet column with a zone) is
    converted the same way; a naive one, or a date, is already local. Raises InputError
    naming the first row (1-based, after the header) whose value is not a date or is
    ambiguous in day/month order, and an unknown `tz`.
    """
    try:
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError) as error:
        raise InputError(
            f"unknown time zone {tz!r}; use an IANA name like Asia/Shanghai"
        ) from error
    name = values.name
    if values.dtype == pl.Date:
        return values, 0
    if isinstance(values.dtype, pl.Datetime):
        if values.dtype.time_zone is None:
            return values.dt.date(), 0
        return values.dt.convert_time_zone(tz).dt.date(), int(values.is_not_null().sum())
    text = parsing.clean(pl.col(name))
    frame = values.cast(pl.String).to_frame()
    out = frame.select(
        parsing.parse_date(text, tz).alias("date"),
        text.is_not_null().alias("given"),
        text.str.contains(_WITH_OFFSET).fill_null(False).alias("offset"),
    )
    bad = out["given"] & out["date"].is_null()
    if bad.any():
        row = int(bad.arg_max())
        why = _refusal(
            frame.slice(row, 1),
            [
                (
                    parsing.ambiguous_day_month(text),
                    "ambiguous: day and month could be either way round",
                )
            ],
            "not a date",
        )
        raise InputError(
            f"{where}, row {row + 2}: {name}={values[row]!r} is {why}; use YYYY-MM-DD or an "
            "ISO timestamp with its offset (2024-03-01T00:00:00+08:00); dates read: "
            f"{parsing.DATE_FORMS}"
        )
    return out["date"].alias(name), int(out["offset"].sum())


def _refusal(row: pl.DataFrame, causes: list[tuple[pl.Expr, str]], otherwise: str) -> str:
    """Why the one-row frame `row`'s value was refused: the text of the first cause
    (a `parsing` refusal test, with its reason) that holds, else `otherwise`. Evaluated on
    the refused row only, so the clean path pays for no cause."""
    flags = row.select(flag.alias(str(i)) for i, (flag, _) in enumerate(causes)).row(0)
    return next((why for held, (_, why) in zip(flags, causes, strict=True) if held), otherwise)


_WITH_OFFSET = r"\d:\d{2}(?::\d{2}(?:\.\d+)?)?\s*(?:[zZ]|[+-]\d{2}:?\d{2})$"


def resolve_duplicates(
    df: pl.DataFrame,
    keys: list[str],
    policy: Duplicates,
    target_col: str,
    report: ForecastReport | None = None,
    role: str = "input",
) -> pl.DataFrame:
    """Rows sharing a series key and date, by `policy` (see `Duplicates`).

    "error" raises InputError with the count and an example; "sum" leaves the rows to
    be added up per period (`to_panel` sums them); "last" keeps the last row of each.
    The count, exact copies and an example go to `report` whatever the policy.
    """
    if policy not in DUPLICATES:
        raise InputError(f"duplicates must be one of {list(DUPLICATES)}, not {policy!r}")
    dup = df.select(keys).is_duplicated()  # every row of a repeated key
    if not dup.any():
        if report is not None and role == "input":
            report.duplicates = {"policy": policy, "rows": 0, "keys": 0, "exact_copies": 0}
        return df
    dups = df.filter(dup)
    n_keys = dups.select(keys).n_unique()
    n_rows = dups.height - n_keys  # rows beyond the first of each series and date
    exact = df.height - df.unique().height  # of which exact copies of another row
    first = dups.row(0, named=True)
    example_rows = dups.filter(pl.all_horizontal(pl.col(k) == first[k] for k in keys)).get_column(
        target_col
    )
    example = {
        **{k: str(first[k]) for k in keys},
        f"{target_col} values": example_rows.to_list(),
    }
    if report is not None and role == "input":
        report.duplicates = {
            "policy": policy,
            "rows": n_rows,
            "keys": n_keys,
            "exact_copies": exact,
            "example": example,
        }
    if policy == "error":
        where = ", ".join(f"{k}={first[k]}" for k in keys)
        raise InputError(
            f"{role} file: {n_rows:,} rows repeat the series and date of another row "
            f"({n_keys:,} series x dates, {exact:,} of the rows exact copies); e.g. {where} "
            "has "
            f"{len(example_rows)} rows with {target_col} {example_rows.to_list()}. "
            "If the rows are parts of one total, pass --duplicates sum; if later rows "
            "correct earlier ones, --duplicates last; if the file was exported twice, "
            "remove the repeated part"
        )
    if policy == "last":
        return df.unique(subset=keys, keep="last", maintain_order=True)
    return df


@dataclass(frozen=True, kw_only=True)
class TableForecast:
    """What `forecast_table` returns."""

    forecast: pl.DataFrame  # id columns, date column, one column per quantile (p10, p50, ...)
    backtest_scores: pl.DataFrame | None  # `score_cv` of the last-horizon holdout, if asked
    future_cols: list[str]  # inputs known in advance (from the future table)
    hist_cols: list[str]  # inputs known only once they happen
    series: int  # number of series forecast
    report: ForecastReport = field(default_factory=ForecastReport)
    # id columns + forecast_source (model, model_short_history, mean_fallback, cold_start)
    sources: pl.DataFrame | None = None


WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


def week_anchor(dates: pl.Series) -> int:
    """The weekday weekly periods start on (0 = Monday .. 6 = Sunday).

    A table whose dates all fall on one weekday is already weekly: its own anchor is kept
    (a retailer's Sunday-ending or Saturday-starting weeks come back on the same day).
    Daily or irregular dates become ISO weeks, which start on Monday."""
    days = dates.drop_nulls().dt.weekday().unique()  # polars: 1 = Monday .. 7 = Sunday
    return int(days[0]) - 1 if days.len() == 1 else 0


def period_key(date_col: str, freq: Freq, anchor: int = 0) -> pl.Expr:
    """The start of the period holding each date of `date_col`: the week starting on weekday
    `anchor` (0 = Monday), the first day of the month or quarter; a day is its own."""
    day = pl.col(date_col).cast(pl.Date)
    if freq == "W":
        return day.dt.offset_by(f"-{anchor}d").dt.truncate("1w").dt.offset_by(f"{anchor}d")
    return period_start(day, freq)


def to_periods(
    df: pl.DataFrame,
    id_cols: list[str],
    date_col: str,
    target_col: str,
    freq: Freq,
    anchor: int = 0,
) -> pl.DataFrame:
    """Daily, weekly (or irregular) rows -> one row per series and period (`period_key`:
    weeks starting on weekday `anchor`, calendar months or quarters dated their first day):
    target summed (null when every row of the period is null), other columns averaged
    (strings: the period's first value)."""
    others = [c for c in df.columns if c not in (*id_cols, date_col, target_col)]
    target = pl.col(target_col)
    aggs = [pl.when(target.is_not_null().any()).then(target.sum()).alias(target_col)]
    for c in others:
        numeric = df.schema[c].is_numeric() or df.schema[c] == pl.Boolean
        aggs.append(pl.col(c).cast(pl.Float64).mean() if numeric else pl.col(c).first())
    key = period_key(date_col, freq, anchor).alias(date_col)
    return df.with_columns(key).group_by(*id_cols, date_col).agg(aggs)


def period_counts(
    df: pl.DataFrame, id_cols: list[str], date_col: str, freq: Freq, anchor: int = 0
) -> dict[str, int]:
    """What `to_periods` will do to `df`: `dates_moved`, rows dated inside a period (not
    on its start); `dates_summed`, the series x dates that share a period with another
    date of their series, and `periods_summed`, those periods (daily rows becoming
    months: 31 dates into one period)."""
    dates = df.select(
        *id_cols,
        pl.col(date_col).cast(pl.Date).alias("__date"),
        period_key(date_col, freq, anchor).alias("__period"),
    )
    per_period = (
        dates.unique(subset=[*id_cols, "__date"])
        .group_by(*id_cols, "__period")
        .len()
        .filter(pl.col("len") > 1)
    )
    return {
        "dates_moved": int((dates["__date"] != dates["__period"]).sum()),
        "dates_summed": int(per_period["len"].sum()),
        "periods_summed": per_period.height,
    }


def _choice_lines(choice: dict) -> list[str]:
    """The report's lines on the choice of model or baseline per series group."""
    if not choice.get("groups"):
        return []
    out = [
        f"method by backtest ({choice['windows']} rolling origins inside the history, "
        f"{choice['horizon']} periods apart; mean MASE per series group, groups by "
        f"{choice['rule']}):"
    ]
    for g in choice["groups"]:
        scores = ", ".join(f"{c} {'-' if v is None else f'{v:.3f}'}" for c, v in g["mase"].items())
        out.append(f"  {g['group']} ({g['series']} series): {scores} -> {g['chosen']}")
    return out


def _periods_line(periods: dict) -> str | None:
    """The report's line on how rows became periods (`ForecastReport.periods`); None for
    weeks when nothing moved (their anchor has its own line)."""
    freq = periods["freq"]
    name = FREQ_NAMES[freq]
    head = {
        "W": "weeks",
        "M": "periods are calendar months dated their first day",
        "Q": "periods are calendar quarters (Jan, Apr, Jul, Oct) dated their first day",
    }[freq]
    parts = []
    if periods.get("dates_moved"):
        parts.append(
            f"{periods['dates_moved']:,} rows dated inside their {name} moved to its start"
        )
    if periods.get("future_dates_moved"):
        parts.append(
            f"{periods['future_dates_moved']:,} --future rows moved to their {name}'s start"
        )
    if periods.get("dates_summed"):
        parts.append(
            f"{periods['dates_summed']:,} dates summed into {periods['periods_summed']:,} "
            f"series x {name}s (target summed, inputs averaged)"
        )
    if not parts:
        if freq == "W":
            return None
        return f"{head}: every date already was one, one row per series and {name}"
    return f"{head}: " + "; ".join(parts)


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
    fill: Fill = "missing",
    duplicates: Duplicates = "error",
    report: ForecastReport | None = None,
    choose: bool = False,
    **model_options,
) -> TableForecast:
    """Fit one global model over the table and forecast `horizon` periods per series.

    `freq` is the period (`panel.Freq`): D days, W weeks (the table's own weekday when
    every date falls on one, else Monday weeks), M or Q calendar months or quarters. Rows
    of a series in one week, month or quarter are summed into it (`to_periods`) and
    forecasts are dated the period's start (the 1st for months and quarters); the
    report's `periods` says how many dates were moved and summed. The future table's
    dates are bucketed the same way.

    `df` is the long table `LGBMForecaster.fit` takes; its columns other than the
    keys, date and target are inputs: known in advance when `future` (id columns,
    date column, their values over the horizon) has them too, historical otherwise.
    `fill` and `duplicates` are the policies in the module docstring; `report` (filled
    in and returned as `TableForecast.report`) may already hold what `read_table`
    found. `model_options` go to `LGBMForecaster`. Raises InputError (a ValueError)
    naming the column or argument at fault.

    `choose` (off by default; README) makes the model earn its place (`bclake.ml.selection`): the
    model is backtested on up to `selection.CHOICE_WINDOWS` rolling origins (`horizon`
    apart) next to the baselines (seasonal naive, moving average, exponential
    smoothing) and the mean of the model and seasonal naive; per series group (volume
    groups of the series with a full history, still reporting) the candidate with the
    lowest mean MASE forecasts the group: a baseline from the full history, with a band
    from its own backtest errors. The choice never looks at the future: every origin and
    every actual scored lies inside the history. A table too short for one origin keeps
    the model, with a warning. The forecast's `method` column names what produced each
    series (model, model+seasonal_naive, a baseline, model_short_history, mean_fallback,
    cold_start); `report.choice` holds every group's scores.
    """
    report = report or ForecastReport(rows_read=df.height)
    freq, calendar, fill = _check_arguments(
        df, id_cols, date_col, target_col, horizon, freq, calendar, fill
    )
    report.fill = fill
    df = df.with_columns(read_numbers(df[target_col], "input"))  # text as ingest reads it
    report.null_targets = int(df[target_col].is_null().sum())
    df = resolve_duplicates(df, [*id_cols, date_col], duplicates, target_col, report)
    future_cols = _future_columns(df, future, id_cols, date_col)
    if future is not None:
        future = resolve_duplicates(
            future, [*id_cols, date_col], "last" if duplicates == "sum" else duplicates,
            target_col=future_cols[0] if future_cols else date_col, role="future",
        )  # fmt: skip
        future_cols = _screen_future_columns(df, future, future_cols, date_col, report)
        df, future = df.drop(*report.dropped_columns), future.drop(*report.dropped_columns)
    hist_cols = [c for c in df.columns if c not in (*id_cols, date_col, target_col, *future_cols)]
    report.columns = {
        "ids": id_cols,
        "date": date_col,
        "target": target_col,
        "known_in_advance": future_cols,
        "history_only": hist_cols,
    }
    if freq != "D":  # weeks, months, quarters: rows dated inside a period count for it
        df, future = _bucket(df, future, id_cols, date_col, target_col, freq, report)
    model_options = {"fill": fill, **model_options}
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
    stats = _series_stats(df, id_cols, date_col, target_col, freq, fill, report)
    if stats.height == 0:
        raise InputError(f"no row of the input has a value of {target_col!r}")
    n_periods = int(stats["n_periods"][0])
    use_model = n_periods > horizon and (stats["observed"] >= MIN_MODEL_PERIODS).any()
    stats = stats.with_columns(
        forecast_source=pl.when(~pl.lit(use_model) | (pl.col("observed") < MIN_MODEL_PERIODS))
        .then(pl.lit("mean_fallback"))
        .when(pl.col("observed") < model.n_lags)
        .then(pl.lit("model_short_history"))
        .otherwise(pl.lit("model"))
    )
    _note_short_series(stats, id_cols, horizon, n_periods, model.n_lags, report)
    quantile_cols = [quantile_name(q) for q in model.quantiles]
    scores = None
    parts = []
    if use_model:
        fc, scores = _fit_model(model, df, future, stats, backtest, choose, report)
        parts.append(fc)
        chosen = fc.filter(pl.col("method") != "model").select(*id_cols, "method").unique()
        stats = (
            stats.join(chosen, on=id_cols, how="left")
            .with_columns(forecast_source=pl.coalesce("method", "forecast_source"))
            .drop("method")
        )
    elif backtest:
        report.warnings.append("no backtest: the table is too short for the model")
    fallback = stats.filter(pl.col("forecast_source") == "mean_fallback")
    if fallback.height:
        parts.append(
            mean_fallback(df, fallback.select(id_cols), id_cols, date_col, target_col, freq,
                          horizon, model.quantiles, model.level_window)
        )  # fmt: skip
    sources = stats.select(*id_cols, "forecast_source")
    if future is not None:
        cold, cold_sources = _new_series(
            df, future, stats, id_cols, date_col, target_col, freq, horizon, model.quantiles,
            report,
        )  # fmt: skip
        if cold is not None:
            parts.append(cold)
            sources = pl.concat([sources, cold_sources])
    forecast = (
        pl.concat([p.select(*id_cols, date_col, *quantile_cols) for p in parts], how="vertical")
        .join(sources.rename({"forecast_source": "method"}), on=id_cols, how="left")
        .sort(*id_cols, date_col)
    )  # fmt: skip
    report.series = dict(sources.group_by("forecast_source").len().iter_rows())
    return TableForecast(
        forecast=forecast,
        backtest_scores=scores,
        future_cols=future_cols,
        hist_cols=hist_cols,
        series=sources.height,
        report=report,
        sources=sources,
    )


def _check_arguments(
    df: pl.DataFrame,
    id_cols: list[str],
    date_col: str,
    target_col: str,
    horizon: int,
    freq: str,
    calendar: str,
    fill: str,
) -> tuple[Freq, Calendar, Fill]:
    """The settings checked against the table; InputError naming the one at fault."""
    missing = [c for c in (*id_cols, date_col, target_col) if c not in df.columns]
    if missing:
        raise InputError(f"input lacks columns {missing}; it has {df.columns}")
    try:
        checked = check_freq(freq), check_calendar(calendar), check_fill(fill)
    except ValueError as error:
        raise InputError(str(error)) from error
    if horizon < 1:
        raise InputError(f"horizon must be at least 1 period, not {horizon}")
    if not (df.schema[target_col].is_numeric() or df.schema[target_col] == pl.String):
        raise InputError(f"target column {target_col!r} is {df.schema[target_col]}, not a number")
    return checked


def _bucket(
    df: pl.DataFrame,
    future: pl.DataFrame | None,
    id_cols: list[str],
    date_col: str,
    target_col: str,
    freq: Freq,
    report: ForecastReport,
) -> tuple[pl.DataFrame, pl.DataFrame | None]:
    """The table and the future table on weeks (the table's own anchor, `week_anchor`),
    months or quarters (`to_periods`), with what moved and what was summed in
    `report.week_anchor` and `report.periods`."""
    anchor = 0
    if freq == "W":
        anchor = week_anchor(df[date_col])
        report.week_anchor = WEEKDAYS[anchor]
    report.periods = {"freq": freq, **period_counts(df, id_cols, date_col, freq, anchor)}
    df = to_periods(df, id_cols, date_col, target_col, freq, anchor)
    if future is not None:
        moved = period_counts(future, id_cols, date_col, freq, anchor)["dates_moved"]
        report.periods["future_dates_moved"] = moved
        future = _future_periods(future, id_cols, date_col, freq, anchor)
    return df, future


def _future_periods(
    future: pl.DataFrame, id_cols: list[str], date_col: str, freq: Freq, anchor: int
) -> pl.DataFrame:
    """The future table on the history's periods (inputs averaged)."""
    with_y = future.with_columns(pl.lit(0.0).alias("__y"))
    return to_periods(with_y, id_cols, date_col, "__y", freq, anchor).drop("__y")


def _fit_model(
    model: LGBMForecaster,
    df: pl.DataFrame,
    future: pl.DataFrame | None,
    stats: pl.DataFrame,
    backtest: bool,
    choose: bool,
    report: ForecastReport,
) -> tuple[pl.DataFrame, pl.DataFrame | None]:
    """The forecast of the series the model serves (not `mean_fallback`), with `method`
    (`model`, or the baseline its series group chose by backtest when `choose`:
    `_choose`), and the holdout scores when `backtest` (None when not asked or the table
    is too short)."""
    id_cols, date_col = model.id_cols, model.date_col
    scores = cv = None
    n_periods = int(stats["n_periods"][0])
    if choose and 0.5 not in model.quantiles:
        choose = False
        report.warnings.append("no choice of method by backtest: it needs 0.5 in --quantiles")
    windows = selection.choice_windows(n_periods, model.horizon, model.season) if choose else 0
    if choose and not windows:
        report.warnings.append(
            f"no choice of method by backtest: the table has {n_periods} periods, a rolling "
            f"origin needs more than {model.season + model.horizon}; every series the model "
            "serves keeps the model"
        )
    if backtest or windows:
        # the choice needs only P50; a backtest asked for scores every quantile
        tester = model if backtest else dataclasses.replace(model, quantiles=(0.5,))
        try:
            cv = tester.cross_validation(df, n_windows=max(windows, 1), step=model.horizon)
        except ValueError as error:
            report.warnings.append(f"no backtest: {error}")
        if cv is not None and backtest:
            last = cv.filter(pl.col("cutoff") == pl.col("cutoff").max())
            qcols = {q: quantile_name(q) for q in model.quantiles}
            scores = score_cv(last, {"lightgbm": qcols}, BASELINES)
    model.fit(df)
    future_cols = list(model.future_cols)
    fc = model.predict(
        future.select(*id_cols, date_col, *future_cols) if future_cols and future is not None
        else None
    )  # fmt: skip
    served = stats.filter(pl.col("forecast_source") != "mean_fallback").select(id_cols)
    fc = fc.join(served, on=id_cols, how="semi")
    if windows and cv is not None:
        full = stats.filter((pl.col("forecast_source") == "model") & (pl.col("silent") == 0))
        full = full.select(id_cols)
        fc = _choose(model, df, fc, cv, full, windows, report)
    else:
        fc = fc.with_columns(pl.lit("model").alias("method"))
    report.rounds = {quantile_name(q): n for q, n in model.rounds_.items()}
    report.calibration = (
        "split-conformal band from level-scaled residuals of the series with at least "
        f"{model.n_lags} observed periods at the calibration cutoff"
        if model.widen_ is not None
        else "quantile models only (too little history to calibrate: need more than "
        f"{model.season + model.horizon} periods)"
    )
    return fc.drop("horizon"), scores


def _choose(
    model: LGBMForecaster,
    df: pl.DataFrame,
    fc: pl.DataFrame,
    cv: pl.DataFrame,
    full: pl.DataFrame,
    windows: int,
    report: ForecastReport,
) -> pl.DataFrame:
    """The model's forecast `fc` with each group of the series in `full` (a full
    history) forecast by the candidate its backtest `cv` scored best
    (`bclake.ml.selection`), the scores in `report.choice`."""
    id_cols = model.id_cols
    groups = selection.volume_groups(df, full, id_cols, model.date_col, model.target_col)
    scores = selection.score_groups(cv, groups, id_cols)
    choice = dict(zip(scores["group"], scores["chosen"], strict=True))
    report.choice = {
        "windows": windows,
        "horizon": model.horizon,
        "rule": (
            f"recent level: mean of the last {selection.LEVEL_WINDOW} periods, "
            f"min({selection.MAX_GROUPS}, series // {selection.SERIES_PER_GROUP}) groups "
            "of equal count"
        ),
        "groups": [
            {
                "group": r["group"],
                "series": r["series"],
                "rows": r["rows"],
                "mase": {c: r[c] for c in selection.CANDIDATES},
                "chosen": r["chosen"],
            }
            for r in scores.iter_rows(named=True)
        ],
    }
    panel = model.panel_
    nonnegative = bool(df[model.target_col].drop_nulls().min() >= 0)
    return selection.baseline_forecast(
        fc, panel.values, panel.keys, cv, groups, choice, id_cols, model.horizon,
        model.season, model.quantiles, nonnegative,
    )  # fmt: skip


def _series_stats(
    df: pl.DataFrame,
    id_cols: list[str],
    date_col: str,
    target_col: str,
    freq: Freq,
    fill: Fill,
    report: ForecastReport,
) -> pl.DataFrame:
    """Per series: observed periods, first and last, gaps inside, silent periods at the end.

    Also fills `report.gaps`, `report.silent_series` and a warning naming the silent
    series. Series with no target value at all are left out (and named in a warning).
    """
    known = df.filter(pl.col(target_col).is_not_null())
    periods = known.select(*id_cols, pl.col(date_col).cast(pl.Date)).unique()
    if periods.is_empty():
        return pl.DataFrame()
    table_first, table_last = periods[date_col].min(), periods[date_col].max()
    stats = (
        periods.group_by(id_cols)
        .agg(
            pl.len().alias("observed"),
            pl.col(date_col).min().alias("first_date"),
            pl.col(date_col).max().alias("last_date"),
        )
        .with_columns(
            span=periods_since(pl.col("last_date"), pl.col("first_date"), freq) + 1,
            silent=periods_since(pl.lit(table_last), pl.col("last_date"), freq),
            n_periods=pl.lit(periods_between(table_first, table_last, freq) + 1),
        )
        .with_columns(gaps=pl.col("span") - pl.col("observed"))
        .sort(id_cols)
    )
    empty = df.select(id_cols).unique().join(stats, on=id_cols, how="anti")
    if empty.height:
        report.rows_dropped["series with no target value"] = int(
            df.join(empty, on=id_cols, how="semi").height
        )
        report.warnings.append(
            f"{empty.height} series have no {target_col} value at all and are not forecast: "
            + _name_series(empty, id_cols)
        )
    gapped = stats.filter(pl.col("gaps") > 0)
    report.gaps = {
        "series_with_gaps": gapped.height,
        "missing_periods": int(gapped["gaps"].sum()),
        "series": [
            {**_key(r, id_cols), "missing_periods": r["gaps"]} for r in gapped.iter_rows(named=True)
        ],
    }
    silent = stats.filter(pl.col("silent") > 0)
    report.silent_series = [
        {**_key(r, id_cols), "last_date": str(r["last_date"]), "periods_silent": r["silent"]}
        for r in silent.iter_rows(named=True)
    ]
    if silent.height:
        meaning = (
            "read as zero sales (--fill zero)"
            if fill == "zero"
            else "left missing, not zero (--fill missing); forecast from their last reports"
        )
        report.warnings.append(
            f"{silent.height} series stopped reporting before {table_last}, their periods "
            f"since {meaning}: "
            + _name_series(silent, id_cols, lambda r: f"silent since {r['last_date']}")
        )
    if gapped.height and fill == "zero":
        report.warnings.append(
            f"{int(gapped['gaps'].sum()):,} missing periods inside {gapped.height} series read "
            "as zero sales (--fill zero)"
        )
    return stats


def _note_short_series(
    stats: pl.DataFrame,
    id_cols: list[str],
    horizon: int,
    n_periods: int,
    n_lags: int,
    report: ForecastReport,
) -> None:
    short = stats.filter(pl.col("forecast_source") != "model")
    report.short_series = [
        {**_key(r, id_cols), "periods": r["observed"], "forecast_source": r["forecast_source"]}
        for r in short.iter_rows(named=True)
    ]
    if n_periods <= horizon:
        report.warnings.append(
            f"the table has {n_periods} periods, no more than the horizon ({horizon}): every "
            "series is forecast by the mean fallback (mean of its last periods, band from the "
            "spread of all series), not by the model"
        )
    elif short.height:
        report.warnings.append(
            f"{short.height} series have fewer than {n_lags} periods of history "
            f"(mean fallback below {MIN_MODEL_PERIODS}, else the model with the lags they "
            "have): " + _name_series(short, id_cols, lambda r: f"{r['observed']} observed periods")
        )


def mean_fallback(
    df: pl.DataFrame,
    series: pl.DataFrame,
    id_cols: list[str],
    date_col: str,
    target_col: str,
    freq: Freq,
    horizon: int,
    quantiles: tuple[float, ...],
    window: int = 13,
) -> pl.DataFrame:
    """The forecast for series too short for the model: P50 flat at the mean of the last
    (up to) 4 observed periods; quantile q is that mean times the q-quantile of every
    series' value / its own recent mean (last `window` periods) over the median of that
    ratio: a scale-free spread pooled over the table (1 when nothing varies).

    Returns id columns, date (the `horizon` periods after the table's last date) and
    one column per quantile, in the target's units per period, non-negative.
    """
    known = (
        df.filter(pl.col(target_col).is_not_null())
        .group_by(*id_cols, date_col)
        .agg(pl.col(target_col).sum().cast(pl.Float64))
        .sort(*id_cols, date_col)
    )
    last = known[date_col].max()
    recent = known.group_by(id_cols, maintain_order=True).tail(window)
    ratios = (
        recent.with_columns(pl.col(target_col).mean().over(id_cols).alias("_mean"))
        .filter(pl.col("_mean") > 0)
        .select((pl.col(target_col) / pl.col("_mean")).alias("r"))["r"]
        .to_numpy()
    )
    # quantiles of the ratio relative to its median: P50 is the mean itself
    median = float(np.quantile(ratios, 0.5)) if len(ratios) > 1 else 0.0
    spread = {q: (float(np.quantile(ratios, q)) / median if median > 0 else 1.0) for q in quantiles}
    means = (
        known.join(series, on=id_cols, how="semi")
        .group_by(id_cols, maintain_order=True)
        .tail(4)
        .group_by(id_cols)
        .agg(pl.col(target_col).mean().alias("_level"))
    )
    days = pl.Series(date_col, [shift_period(last, h, freq) for h in range(1, horizon + 1)])
    return (
        means.join(days.to_frame(), how="cross")
        .with_columns(
            pl.max_horizontal(pl.col("_level") * spread[q], pl.lit(0.0)).alias(quantile_name(q))
            for q in quantiles
        )
        .drop("_level")
    )


def _new_series(
    df: pl.DataFrame,
    future: pl.DataFrame,
    stats: pl.DataFrame,
    id_cols: list[str],
    date_col: str,
    target_col: str,
    freq: Freq,
    horizon: int,
    quantiles: tuple[float, ...],
    report: ForecastReport,
) -> tuple[pl.DataFrame | None, pl.DataFrame | None]:
    """Series only in `future`: cold start from series launched inside the history, or
    skipped (listed in the report with the reason)."""
    new = (
        future.join(stats.select(id_cols), on=id_cols, how="anti")
        .group_by(id_cols)
        .agg(pl.col(date_col).cast(pl.Date).min().alias("first_date"))
        .sort(id_cols)
    )
    if new.is_empty():
        return None, None
    table_first = stats["first_date"].min()
    launched = stats.filter(pl.col("first_date") > table_first).select(*id_cols, "first_date")
    if launched.height < MIN_PEERS:
        reason = (
            f"skipped: only {launched.height} series launched inside the history "
            f"(cold start needs {MIN_PEERS} launch curves to learn from)"
        )
        report.new_series = [
            {**_key(r, id_cols), "first_date": str(r["first_date"]), "forecast_source": reason}
            for r in new.iter_rows(named=True)
        ]
        report.warnings.append(
            f"{new.height} series only in --future are not forecast ({reason}): "
            + _name_series(new, id_cols)
        )
        return None, None
    history = df.filter(pl.col(target_col).is_not_null()).with_columns(_all=pl.lit(1))
    cold = cold_start_forecast(
        history,
        new.with_columns(_all=pl.lit(1)),
        id_cols,
        date_col,
        target_col,
        ["_all"],
        launched,
        horizon,
        freq,
        quantiles,
    )
    report.new_series = [
        {**_key(r, id_cols), "first_date": str(r["first_date"]), "forecast_source": "cold_start"}
        for r in new.iter_rows(named=True)
    ]
    report.warnings.append(
        f"{new.height} series only in --future forecast by cold start from "
        f"{launched.height} launches in the history: " + _name_series(new, id_cols)
    )
    return cold, new.select(id_cols).with_columns(forecast_source=pl.lit("cold_start"))


def _key(row: dict, id_cols: list[str]) -> dict:
    return {c: row[c] for c in id_cols}


def _name_series(frame: pl.DataFrame, id_cols: list[str], detail=None) -> str:
    """`a/b (detail), c/d (detail)` for the first `NAMED` series, `and N more`."""
    names = []
    for r in frame.head(NAMED).iter_rows(named=True):
        name = "/".join(str(r[c]) for c in id_cols)
        names.append(f"{name} ({detail(r)})" if detail else name)
    more = f" and {frame.height - NAMED} more" if frame.height > NAMED else ""
    return ", ".join(names) + more


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


CATEGORICAL = (pl.String, pl.Categorical, pl.Boolean)  # as `panel.encode_categories` reads
ONE_VALUE_PER_DATE = 0.9  # distinct values / distinct dates of a column that names the date
EXAMPLES = 3  # values quoted in a message


def _is_categorical(dtype: pl.DataType) -> bool:
    return dtype in CATEGORICAL or isinstance(dtype, pl.Enum)


def dates_in_disguise(
    df: pl.DataFrame, future: pl.DataFrame, columns: list[str], date_col: str
) -> dict[str, str]:
    """The known-in-advance `columns` that are the date in disguise -> why, in words.

    A column is the date in disguise when, over the history (`df`) and `future` rows
    together, it is a function of the date alone (one value on each date, whatever the
    series), the horizon brings values the history never had, and either

    (a) it is categorical (text) with nearly one value per date: at least
        `ONE_VALUE_PER_DATE` x as many distinct values as distinct dates (day indices
        `d_1, d_2, ...`, ISO date strings, period ids); or
    (b) it grows with the date: numbers, or text whose digits read as one integer
        (`d_17` -> 17, `2016-W05` -> 201605), non-decreasing in date order, taking at
        least two values and given on at least `ONE_VALUE_PER_DATE` of the dates (week
        ids, a running index, the year once the horizon reaches a new one).

    Columns whose values repeat (weekday, month, a 0/1 flag, a sparse event name) are
    neither, nor is one that equals a part of the date that repeats each year (month,
    quarter, ISO week, day of year or month, weekday: `_calendar_part`) where a table
    shorter than a year shows it only growing; numbers that go up and down (a global
    price) are kept. Both tables hold `date_col` (dates) and `columns`; a number or a date
    is compared as a number, anything else as text.
    """
    out: dict[str, str] = {}
    if not columns:
        return out
    text = {c: _is_categorical(df.schema[c]) or _is_categorical(future.schema[c]) for c in columns}
    hist, fut = (
        t.select(
            pl.col(date_col).cast(pl.Date),
            *(pl.col(c).cast(pl.String if text[c] else pl.Float64, strict=False) for c in columns),
        )
        for t in (df, future)
    )
    # one pass over the rows: per date and column, how many values and the value
    per_date = (
        pl.concat([hist, fut])
        .group_by(date_col)
        .agg(
            *(pl.col(c).drop_nulls().n_unique().alias(f"n{i}") for i, c in enumerate(columns)),
            *(pl.col(c).drop_nulls().first().alias(f"v{i}") for i, c in enumerate(columns)),
        )
        .with_columns(pl.col(date_col).is_in(hist[date_col].unique().implode()).alias("__hist"))
        .sort(date_col)
    )
    n_dates = per_date.height
    for i, c in enumerate(columns):
        one = per_date.select(
            date_col, "__hist", pl.col(f"n{i}").alias("n"), pl.col(f"v{i}").alias("v")
        )
        if n_dates == 0 or one["n"].max() != 1:
            continue  # not a function of the date, or never given
        seen = one.filter("__hist")["v"].drop_nulls()
        new = one.filter(~pl.col("__hist") & pl.col("v").is_not_null())
        new = new.filter(~pl.col("v").is_in(seen.implode()))
        if new.is_empty():
            continue  # the horizon's values all occur in the history
        examples = ", ".join(repr(v) for v in _plain(new["v"].unique(maintain_order=True)))
        values = one["v"]
        levels = values.drop_nulls().n_unique()
        if text[c] and levels >= ONE_VALUE_PER_DATE * n_dates:
            out[c] = (
                f"a new value on nearly every date ({levels:,} values over {n_dates:,} "
                f"dates), its horizon values ({examples}) never in the history"
            )
            continue
        key = values.str.replace_all(r"\D", "").cast(pl.Int64, strict=False) if text[c] else values
        given = one.with_columns(key.alias("key")).drop_nulls("key")
        if (
            given.height >= ONE_VALUE_PER_DATE * n_dates
            and given["key"].n_unique() >= 2
            and (given["key"].diff().drop_nulls() >= 0).all()
            and _counts_time(given[date_col], given["key"])
            and not _calendar_part(given[date_col], given["key"])
        ):
            first, last = given.row(0, named=True), given.row(-1, named=True)
            latest = one.filter("__hist").drop_nulls("v")["v"][-1]
            out[c] = (
                f"grows with the date ({_plain([first['v']])[0]!r} on {first[date_col]} to "
                f"{_plain([last['v']])[0]!r} on {last[date_col]}), its horizon values "
                f"({examples}) beyond the history's last ({_plain([latest])[0]!r})"
            )
    return out


def _counts_time(dates: pl.Series, key: pl.Series) -> bool:
    """Whether a growing `key` counts time rather than measures something that grows: whole
    numbers that are the year of the date, or that take a new value at least every week
    (a day index, a week id). A promotion's depth, a rising price or a price step that
    holds for months are inputs, not the date, and are kept."""
    as_float = key.cast(pl.Float64)
    if not (as_float == as_float.round()).all():
        return False
    if (key.cast(pl.Int64) == dates.dt.year().cast(pl.Int64)).all():
        return True
    weeks = dates.cast(pl.Date).dt.truncate("1w").n_unique()
    return key.n_unique() >= ONE_VALUE_PER_DATE * weeks


def _calendar_part(dates: pl.Series, values: pl.Series) -> str | None:
    """The part of the date (month, quarter, ISO week, day of year or month, weekday) that
    `values` equal on every date, if any: such a column repeats with the calendar even
    where a short table shows it only growing (January to June)."""
    d = pl.col(dates.name)
    parts = {
        "month": d.dt.month(),
        "quarter": d.dt.quarter(),
        "ISO week": d.dt.week(),
        "day of year": d.dt.ordinal_day(),
        "day of month": d.dt.day(),
        "weekday": d.dt.weekday(),  # 1 = Monday
        "weekday from 0": d.dt.weekday() - 1,
    }
    frame = dates.to_frame().with_columns(values.cast(pl.Float64).alias("__v"))
    same = frame.select(
        (p.cast(pl.Float64) == pl.col("__v")).all().alias(n) for n, p in parts.items()
    )
    return next((n for n, held in same.row(0, named=True).items() if held), None)


def unseen_levels(df: pl.DataFrame, future: pl.DataFrame, columns: list[str]) -> dict[str, dict]:
    """Categorical (text) known-in-advance `columns` whose values in `future` never occur
    in the history `df` -> {"rows": future rows carrying such a value, "values": how many
    distinct ones, "examples": up to `EXAMPLES` of them}. Numeric columns are skipped
    (the model reads a number by its size, not by having seen it)."""
    out: dict[str, dict] = {}
    for c in columns:
        if not _is_categorical(df.schema[c]):
            continue
        seen = df[c].cast(pl.String).drop_nulls().unique()
        values = future[c].cast(pl.String)
        new = values.filter(values.is_not_null() & ~values.is_in(seen.implode()))
        if new.len():
            distinct = new.unique(maintain_order=True)
            out[c] = {
                "rows": new.len(),
                "values": distinct.len(),
                "examples": distinct.head(EXAMPLES).to_list(),
            }
    return out


def _plain(values: pl.Series | list) -> list:
    """Up to `EXAMPLES` values as plain Python (whole floats as ints: 11613.0 -> 11613)."""
    out = list(values)[:EXAMPLES]
    return [int(v) if isinstance(v, float) and v.is_integer() else v for v in out]


def _screen_future_columns(
    df: pl.DataFrame,
    future: pl.DataFrame,
    future_cols: list[str],
    date_col: str,
    report: ForecastReport,
) -> list[str]:
    """The known-in-advance columns kept: those that are the date in disguise
    (`dates_in_disguise`) are dropped and named in `report.dropped_columns` (the model
    builds its own calendar of the target period, `panel.FeatureSpec`); text columns
    whose horizon values the history never had (`unseen_levels`) are kept and warned of."""
    for c, why in dates_in_disguise(df, future, future_cols, date_col).items():
        report.dropped_columns[c] = f"known in advance, the date in disguise: {why}"
    kept = [c for c in future_cols if c not in report.dropped_columns]
    for c, u in unseen_levels(df, future, kept).items():
        report.warnings.append(
            f"known-in-advance column {c!r}: {u['rows']:,} of {future.height:,} future rows "
            f"carry values the history never had ({u['values']:,} distinct, e.g. "
            f"{', '.join(map(repr, u['examples']))}); the model reads them as unknown"
        )
    return kept


def forecast_headers(df: pl.DataFrame) -> dict[str, tuple[str, str]]:
    """Bilingual spreadsheet headers (`bclake.core.xlsx.Headers`) for a forecast table:
    its date column ("week_start 日期", a date cell), quantile columns ("P50 预测中位数
    (units)", "P10 预测 10% 分位数 (units)") and what produced each series ("method
    预测方法"); id columns keep their own names."""
    headers = {}
    for col, dtype in df.schema.items():
        if dtype == pl.Date:
            headers[col] = (f"{col} 日期", "date")
        elif col == "method":
            headers[col] = ("method 预测方法", "")
        elif QUANTILE_COLUMN.fullmatch(col) and dtype.is_numeric():
            pct = int(col[1:])
            zh = "预测中位数" if pct == 50 else f"预测 {pct}% 分位数"
            headers[col] = (f"P{pct:02d} {zh}", "units")
    return headers


def write_table(df: pl.DataFrame, path: Path, report: ForecastReport | None = None) -> None:
    """CSV, Parquet or XLSX by extension; InputError for any other. CSV and XLSX have
    formula-like text defused (`bclake.core.xlsx` writers), the Parquet is as is.

    XLSX has the planner files' layout (`bclake.core.xlsx.write_xlsx`): sheet "forecast"
    with the bilingual headers of `forecast_headers`, dates as date cells and quantiles
    as numbers; and, when `report` is given, sheet "report" with its lines
    (`ForecastReport.lines`), one a row.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        df.write_parquet(path)
    elif suffix == ".csv":
        write_csv(df, path, bom=False)
    elif suffix == ".xlsx":
        sheets = {"forecast": df}
        headers = forecast_headers(df)
        if report is not None:
            sheets["report"] = pl.DataFrame(
                {"report": report.lines()}, schema={"report": pl.String}
            )
            headers["report"] = ("report 运行报告", "")
        write_xlsx(sheets, path, headers)
    else:
        raise InputError(f"output file {path}: use .csv, .parquet or .xlsx")
