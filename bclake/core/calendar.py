"""The Chinese retail calendar: public holidays on their lunar dates and shopping festivals.

Public holidays and make-up working days come from `chinesecalendar` (which
follows the State Council's yearly notice); 618 and Double 11 are fixed dates.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta
from functools import lru_cache

import chinese_calendar
import numpy as np
import polars as pl

SHOPPING_FESTIVALS = {(6, 18): "618", (11, 11): "Double 11"}


def holiday_name(day: date) -> str | None:
    """The public holiday a day belongs to, or None (also None outside the package's years)."""
    try:
        on_holiday, name = chinese_calendar.get_holiday_detail(day)
    except NotImplementedError:
        return None
    return name if on_holiday and name is not None else None


def week_start(day: date) -> date:
    """The Monday of the week holding `day`: the key of every weekly table and forecast."""
    return day - timedelta(days=day.weekday())


def is_workday(day: date) -> bool:
    try:
        return chinese_calendar.is_workday(day)
    except NotImplementedError:
        return day.weekday() < 5


def build_calendar(start: date, n_days: int) -> pl.DataFrame:
    """One row per day with the flags demand reacts to."""
    days = [start + timedelta(days=i) for i in range(n_days)]
    names = [holiday_name(d) for d in days]
    festivals = [SHOPPING_FESTIVALS.get((d.month, d.day)) for d in days]
    frame = pl.DataFrame(
        {
            "date": days,
            "weekday": [d.weekday() for d in days],
            "day_of_year": [d.timetuple().tm_yday for d in days],
            "holiday": names,
            "workday": [is_workday(d) for d in days],
            "festival": festivals,
        }
    )
    return frame.with_columns(
        days_to_spring_festival=_days_to_next(days, names, "Spring Festival"),
        days_to_mid_autumn=_days_to_next(days, names, "Mid-autumn Festival"),
    )


def _days_to_next(days: list[date], names: list[str | None], holiday: str) -> pl.Series:
    """Days until the first day of the next occurrence of `holiday` (large if none ahead)."""
    starts = [
        d for i, d in enumerate(days) if names[i] == holiday and (i == 0 or names[i - 1] != holiday)
    ]
    # look a year past the window so the last weeks also see the next festival
    for year in range(days[-1].year, days[-1].year + 2):
        for probe in (date(year, 1, 15) + timedelta(days=i) for i in range(300)):
            if probe > days[-1] and holiday_name(probe) == holiday:
                starts.append(probe)
                break
    out = np.full(len(days), 999, dtype=np.int32)
    for i, d in enumerate(days):
        ahead = [(s - d).days for s in starts if s >= d]
        if ahead:
            out[i] = min(ahead)
    return pl.Series(out)


def period_calendar_features(
    starts: list[date], days_per_period: int | Callable[[date], int]
) -> pl.DataFrame:
    """Holiday features of periods (a day, a week, a month or a quarter) starting at `starts`.

    `days_per_period` is the periods' length in days, or a function of a start giving it
    (months and quarters differ in length). Returns one row per start with the count of
    public-holiday days in the period, the count of make-up working weekend days,
    shopping-festival days, and the days from the period start to the next Spring
    Festival (capped at 60), so a model can see the lunar festival move between years.
    """
    span = sorted(set(starts))
    if not span:
        return pl.DataFrame(schema={"period_start": pl.Date})
    length = days_per_period if callable(days_per_period) else (lambda _: days_per_period)
    last = span[-1] + timedelta(days=length(span[-1]) + 400)
    first_day, cols = _daily_flags(span[0].year, last.year)
    rows = []
    for s in span:
        i = (s - first_day).days
        window = slice(i, i + length(s))
        rows.append(
            {
                "period_start": s,
                "holiday_days": int(cols["holiday_day"][window].sum()),
                "makeup_workdays": int(cols["makeup_workday"][window].sum()),
                "festival_days": int(cols["festival_day"][window].sum()),
                "days_to_spring_festival": int(cols["days_to_spring_festival"][i]),
            }
        )
    return pl.DataFrame(rows)


@lru_cache(maxsize=8)
def _daily_flags(first_year: int, last_year: int) -> tuple[date, dict[str, np.ndarray]]:
    """(1 January of `first_year`, per-day flags to `last_year`'s end) for
    `period_calendar_features`: built once per span of years, as a model reads the same
    years at every horizon and origin (the arrays are shared: read them, never write)."""
    first = date(first_year, 1, 1)
    cal = build_calendar(first, (date(last_year, 12, 31) - first).days + 1)
    daily = cal.select(
        holiday_day=pl.col("holiday").is_not_null().cast(pl.Int8),
        makeup_workday=((pl.col("weekday") >= 5) & pl.col("workday")).cast(pl.Int8),
        festival_day=pl.col("festival").is_not_null().cast(pl.Int8),
        days_to_spring_festival=pl.col("days_to_spring_festival").clip(upper_bound=60),
    )
    return first, {name: daily[name].to_numpy() for name in daily.columns}
