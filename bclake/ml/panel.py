"""A long sales table as a dense series x period panel, and the features read from it.

The long table has one row per series key, date and value: series key columns
(`id_cols`), a date column (period start), a target column and optional exogenous
columns. Periods are days, weeks (starting on the table's own weekday), or calendar
months and quarters (starting on their first day; a date inside one counts for it); the
period arithmetic every forecasting module uses is here (`shift_period`,
`periods_between`, `periods_since`, `period_start`). `to_panel` lays the table out as a
series x period matrix; `FeatureSpec.build` turns a panel into model features at chosen
forecast origins, reading nothing after an origin except the calendar and the
known-in-advance columns of the target period.
"""

from __future__ import annotations

import calendar as _calendar
import warnings
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Literal, get_args

import numpy as np
import polars as pl

from bclake.core.calendar import period_calendar_features

Freq = Literal["D", "W", "M", "Q"]
"""Period length: "D" days, "W" weeks (each period starts on the same weekday), "M"
calendar months and "Q" calendar quarters (each period starts on its first day: January,
April, July, October for quarters)."""

Calendar = Literal["cn", "none"]
"""Calendar features of the target period: "cn" Chinese public holidays, make-up
working days, 618 / Double 11 and days to Spring Festival; "none" for other markets
(whose holidays come in as a known-in-advance column)."""

Fill = Literal["zero", "missing"]
"""A period missing inside a series' life (after its first row): "zero" nothing was sold
(tables that only hold rows with sales), "missing" not known (a store that stopped
reporting): NaN, never a training target, and a missing lag for the model."""

FREQS: tuple[Freq, ...] = get_args(Freq)
FILLS: tuple[Fill, ...] = get_args(Fill)
CALENDARS: tuple[Calendar, ...] = get_args(Calendar)
FREQ_DAYS: dict[Freq, int] = {"D": 1, "W": 7}  # periods of a fixed number of days
FREQ_MONTHS: dict[Freq, int] = {"M": 1, "Q": 3}  # calendar periods, in months
FREQ_NAMES: dict[Freq, str] = {"D": "day", "W": "week", "M": "month", "Q": "quarter"}
# periods per season: a week of days, a year of weeks, months or quarters
SEASON: dict[Freq, int] = {"D": 7, "W": 52, "M": 12, "Q": 4}
_TRUNCATE = {"M": "1mo", "Q": "1q"}  # polars: the start of the month / quarter holding a date
CAL_FEATURES = ["holiday_days", "makeup_workdays", "festival_days", "days_to_spring_festival"]


def check_freq(freq: str) -> Freq:
    """`freq` as a `Freq`; ValueError naming the allowed values otherwise."""
    if freq not in FREQS:
        raise ValueError(
            f"freq must be one of {list(FREQS)} (days, weeks, calendar months, calendar "
            f"quarters), not {freq!r}"
        )
    return freq  # type: ignore[return-value]


def shift_period(start: date, n: int, freq: Freq) -> date:
    """`start` moved `n` periods (back when negative). Months and quarters move by the
    calendar (2024-01-31 + 1 month is 2024-02-29: the day is clamped to the month's end;
    a period start, the 1st, stays the 1st)."""
    if freq in FREQ_DAYS:
        return start + timedelta(days=FREQ_DAYS[freq] * int(n))
    months = start.year * 12 + start.month - 1 + FREQ_MONTHS[freq] * int(n)
    year, month = divmod(months, 12)
    return date(year, month + 1, min(start.day, _calendar.monthrange(year, month + 1)[1]))


def periods_between(first: date, last: date, freq: Freq) -> int:
    """Whole periods from `first` to `last`: days or weeks between them (rounded down),
    or months or quarters between the calendar months that hold them."""
    if freq in FREQ_DAYS:
        return (last - first).days // FREQ_DAYS[freq]
    return ((last.year - first.year) * 12 + last.month - first.month) // FREQ_MONTHS[freq]


def periods_since(dates: pl.Expr, start: pl.Expr | date, freq: Freq) -> pl.Expr:
    """`periods_between(start, dates)` as a polars expression (Int64); `start` a date or
    an expression (a column of launch dates)."""
    start = start if isinstance(start, pl.Expr) else pl.lit(start, dtype=pl.Date)
    if freq in FREQ_DAYS:
        return (dates - start).dt.total_days() // FREQ_DAYS[freq]

    def month(d: pl.Expr) -> pl.Expr:
        return d.dt.year().cast(pl.Int64) * 12 + d.dt.month().cast(pl.Int64)

    return (month(dates) - month(start)) // FREQ_MONTHS[freq]


def period_start(dates: pl.Expr, freq: Freq) -> pl.Expr:
    """Months and quarters: the first day of the month / quarter holding each date. Days and
    weeks are returned as they are (a week's weekday is the table's own:
    `any_table.week_anchor`)."""
    return dates.dt.truncate(_TRUNCATE[freq]) if freq in _TRUNCATE else dates


def period_days(start: date, freq: Freq) -> int:
    """Days in the period starting at `start` (28 to 31 for a month, 90 to 92 a quarter)."""
    return (shift_period(start, 1, freq) - start).days


def period_of_year(day: date, freq: Freq) -> int:
    """The period's position in its year: day of year, ISO week, month or quarter."""
    if freq == "D":
        return day.timetuple().tm_yday
    if freq == "W":
        return day.isocalendar()[1]
    return (day.month - 1) // FREQ_MONTHS[freq] + 1


def check_fill(fill: str) -> Fill:
    """`fill` as a `Fill`; ValueError naming the allowed values otherwise."""
    if fill not in FILLS:
        raise ValueError(f"fill must be one of {list(FILLS)}, not {fill!r}")
    return fill  # type: ignore[return-value]


def check_calendar(calendar: str) -> Calendar:
    """`calendar` as a `Calendar`; ValueError naming the allowed values otherwise."""
    if calendar not in CALENDARS:
        raise ValueError(f"calendar must be one of {list(CALENDARS)}, not {calendar!r}")
    return calendar  # type: ignore[return-value]


@dataclass
class Panel:
    """A long table laid out as a dense series x period matrix (NaN before a series starts)."""

    keys: pl.DataFrame  # one row per series, the id columns
    dates: list[date]  # period starts, evenly spaced
    values: np.ndarray  # series x periods
    exog: dict[str, np.ndarray] = field(default_factory=dict)  # series x periods (+ horizon)

    def until(self, index: int) -> Panel:
        """The panel as it was known at period `index` (exogenous columns cut there too)."""
        return Panel(
            self.keys,
            self.dates[: index + 1],
            self.values[:, : index + 1],
            {c: x[:, : index + 1] for c, x in self.exog.items()},
        )


def period_date(panel: Panel, index: int, freq: Freq) -> date:
    """Start of period `index` of the panel (indices past its end continue the grid)."""
    return shift_period(panel.dates[0], index, freq)


def encode_categories(
    df: pl.DataFrame, columns: list[str], known: dict[str, dict[str, int]]
) -> tuple[pl.DataFrame, dict[str, dict[str, int]]]:
    """String columns -> integer codes (stable across fit and predict; unseen -> NaN)."""
    known = dict(known)
    out = []
    for c in columns:
        if df.schema[c] in (pl.String, pl.Categorical, pl.Boolean):
            values = df[c].cast(pl.String)
            if c not in known:
                known[c] = {v: i for i, v in enumerate(sorted(values.drop_nulls().unique()))}
            mapping = known[c]
            out.append(values.replace_strict(mapping, default=None, return_dtype=pl.Float64))
        else:
            out.append(df[c].cast(pl.Float64))
    return df.with_columns(out), known


def to_panel(
    df: pl.DataFrame,
    id_cols: list[str],
    date_col: str,
    target_col: str,
    freq: Freq,
    exog_cols: list[str] | None = None,
    fill: Fill = "zero",
) -> Panel:
    """Dense panel; exogenous columns (already numeric) are averaged within a period.

    Dates are period starts on the `freq` grid of the first one; a date inside a month or
    quarter counts for the period that holds it (`period_start`). The target is summed
    within a period (a null target is skipped; a period whose rows are all null is
    missing); a period missing inside a series' life (after its first
    row) counts as 0 with `fill="zero"` and stays NaN with `fill="missing"`; one before
    it stays NaN either way. ValueError for another `fill`.
    """
    fill = check_fill(fill)
    exog_cols = exog_cols or []
    # one lazy query: the per-period sums, then only integer positions and numbers leave it
    periods = (
        df.lazy()
        .select(
            *id_cols,
            period_start(pl.col(date_col).cast(pl.Date), freq),
            pl.col(target_col).cast(pl.Float64),
            *[pl.col(c).cast(pl.Float64) for c in exog_cols],
        )
        .group_by(*id_cols, date_col)
        .agg(
            # all-null periods stay null (missing), not a sum of nothing (0)
            pl.when(pl.col(target_col).is_not_null().any()).then(pl.col(target_col).sum()),
            *[pl.col(c).mean() for c in exog_cols],
        )
        .collect()
    )
    first, last = periods[date_col].min(), periods[date_col].max()
    n = periods_between(first, last, freq) + 1
    dates = [shift_period(first, i, freq) for i in range(n)]
    keys = periods.select(id_cols).unique().sort(id_cols).with_row_index("_series")
    df = (
        periods.lazy()
        .join(keys.lazy(), on=id_cols)
        .select(
            "_series",
            periods_since(pl.col(date_col), first, freq).alias("_t"),
            target_col,
            *exog_cols,
        )
        .collect()
    )
    del periods
    rows, cols = df["_series"].to_numpy(), df["_t"].to_numpy()
    values = np.full((keys.height, n), np.nan)
    values[rows, cols] = df[target_col].to_numpy()
    if fill == "zero":  # inside a series' life a missing period means nothing sold
        started = np.maximum.accumulate(~np.isnan(values), axis=1)
        values = np.where(started & np.isnan(values), 0.0, values)
    exog = {}
    for c in exog_cols:
        x = np.full((keys.height, n), np.nan)
        x[rows, cols] = df[c].to_numpy()
        exog[c] = x
    return Panel(keys.drop("_series"), dates, values, exog)


@dataclass(frozen=True, kw_only=True)
class FeatureSpec:
    """Which features to read from a panel; `build` reads them.

    `categorical` names the exogenous columns that were strings (integer codes in the
    panel): they are used as they are, without changes or means.
    """

    id_cols: tuple[str, ...]
    freq: Freq
    calendar: Calendar
    future_cols: tuple[str, ...] = ()
    hist_cols: tuple[str, ...] = ()
    categorical: frozenset[str] = frozenset()
    n_lags: int = 8
    level_window: int = 13

    @property
    def season(self) -> int:
        return SEASON[self.freq]

    def build(
        self, panel: Panel, origins: np.ndarray, h: int
    ) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """Features for every series at each origin index, forecasting h periods ahead.

        Returns (columns, level): each column and the level have one value per
        (series, origin), series-major (series 0 at every origin, then series 1, ...).
        The level is the series' mean over the last `level_window` periods + 1, NaN
        before the series starts; target-like features are divided by it. Everything
        is read at or before the origin, except the calendar and the known-in-advance
        columns of the target period.
        """
        with warnings.catch_warnings():  # all-NaN windows before a series starts are expected
            warnings.simplefilter("ignore", RuntimeWarning)
            rows_s = np.repeat(np.arange(panel.values.shape[0]), len(origins))
            rows_o = np.tile(origins, panel.values.shape[0])
            cols, level = self._target_features(panel.values, rows_s, rows_o, h)
            cols |= self._exog_features(panel, rows_s, rows_o, h)
            cols["horizon"] = np.full(len(rows_s), h, dtype=float)
            cols["age"] = (rows_o - np.argmax(~np.isnan(panel.values), axis=1)[rows_s]).astype(
                float
            )
            cols |= self._period_features(panel, origins, h)
            for c in self.id_cols:
                codes = panel.keys[c].cast(pl.String).cast(pl.Categorical).to_physical().to_numpy()
                cols[f"id_{c}"] = codes[rows_s].astype(float)
            return cols, level

    def categorical_features(self, names: list[str]) -> list[str]:
        """The feature names LightGBM should treat as categories."""
        cats = {f"future_{c}" for c in self.categorical} | {f"hist_{c}" for c in self.categorical}
        return [n for n in names if n.startswith("id_") or n in cats]

    def _target_features(
        self, y: np.ndarray, rows_s: np.ndarray, rows_o: np.ndarray, h: int
    ) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """Lags, rolling statistics and last season, divided by the level at the origin."""
        cols: dict[str, np.ndarray] = {}
        lags = np.stack([_take(y, rows_s, rows_o - k) for k in range(self.n_lags)], axis=1)
        window = np.stack([_take(y, rows_s, rows_o - k) for k in range(self.level_window)], axis=1)
        with np.errstate(all="ignore"):
            level = np.nanmean(window, axis=1)
        level = np.where(np.isnan(level), np.nan, level + 1.0)
        for k in range(self.n_lags):
            cols[f"lag_{k + 1}"] = lags[:, k] / level
        with np.errstate(all="ignore"):
            cols["mean_4"] = np.nanmean(lags[:, :4], axis=1) / level
            cols["std_level"] = np.nanstd(window, axis=1) / level
            cols["zero_share"] = np.nanmean(window == 0, axis=1)
            cols["level_log"] = np.log1p(level)
        # the same phase in the latest season that ended by the origin (never after it,
        # also when the horizon is longer than a season, as with daily data)
        seasonal = rows_o + h - self.season * (1 + (h - 1) // self.season)
        cols["same_period_last_season"] = _take(y, rows_s, seasonal) / level
        with np.errstate(all="ignore"):
            around = [_take(y, rows_s, seasonal + d, until=rows_o) for d in (-1, 0, 1)]
            cols["around_last_season"] = np.nanmean(np.stack(around, axis=1), axis=1) / level
            cols["last_season_trend"] = (_take(y, rows_s, seasonal) + 1.0) / (
                _take(y, rows_s, rows_o - self.season) + 1.0
            )
        return cols, level

    def _exog_features(
        self, panel: Panel, rows_s: np.ndarray, rows_o: np.ndarray, h: int
    ) -> dict[str, np.ndarray]:
        cols: dict[str, np.ndarray] = {}
        for c in self.future_cols:  # known in advance: its value in the target period
            x = panel.exog[c]
            cols[f"future_{c}"] = _take(x, rows_s, rows_o + h)
            if c not in self.categorical:
                cols[f"future_{c}_change"] = _take(x, rows_s, rows_o + h) - _take(x, rows_s, rows_o)
        for c in self.hist_cols:  # known once it happened: up to the origin only
            x = panel.exog[c]
            cols[f"hist_{c}"] = _take(x, rows_s, rows_o)
            if c not in self.categorical:
                with np.errstate(all="ignore"):
                    cols[f"hist_{c}_mean_4"] = np.nanmean(
                        np.stack([_take(x, rows_s, rows_o - k) for k in range(4)], axis=1), axis=1
                    )
        return cols

    def _period_features(self, panel: Panel, origins: np.ndarray, h: int) -> dict[str, np.ndarray]:
        """Calendar of the target period (the same for every series at one origin): its
        position in the year (`period_of_year`), the weekday of daily and weekly periods,
        and with `calendar="cn"` its holiday counts (`period_calendar_features`: over the
        days of the period, so a month counts its holiday days)."""
        cols: dict[str, np.ndarray] = {}
        n_series = panel.values.shape[0]
        target_dates = [period_date(panel, o + h, self.freq) for o in origins]
        per_row = np.tile(np.arange(len(origins)), n_series)  # row -> its origin's position
        if self.calendar == "cn":
            cal = period_calendar_features(target_dates, lambda d: period_days(d, self.freq))
            cal_index = {d: i for i, d in enumerate(cal["period_start"].to_list())}
            pos = np.array([cal_index[d] for d in target_dates])[per_row]
            for c in CAL_FEATURES:
                cols[c] = cal[c].to_numpy()[pos].astype(float)
        position = np.array([period_of_year(d, self.freq) for d in target_dates], dtype=float)
        cols["period_of_year"] = position[per_row]
        if self.freq in FREQ_DAYS:  # a month or quarter starts on the 1st: no weekday to read
            cols["weekday"] = np.array([d.weekday() for d in target_dates], dtype=float)[per_row]
        return cols


def _take(
    y: np.ndarray, rows: np.ndarray, cols: np.ndarray, until: np.ndarray | None = None
) -> np.ndarray:
    """y[rows, cols] with NaN where cols falls outside the matrix (or after `until`)."""
    ok = (cols >= 0) & (cols < y.shape[1])
    if until is not None:
        ok &= cols <= until
    out = np.full(len(rows), np.nan)
    out[ok] = y[rows[ok], cols[ok]]
    return out
