"""The Chinese retail calendar: public holidays on their lunar dates and shopping festivals.

Public holidays and make-up working days come from `chinesecalendar` (which
follows the State Council's yearly notice); 618 and Double 11 are fixed dates.
"""

from __future__ import annotations

from datetime import date, timedelta

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


def period_calendar_features(starts: list[date], days_per_period: int) -> pl.DataFrame:
    """Holiday features of periods (a day or a week) starting at `starts`.

    Returns one row per start with the count of public-holiday days, the count
    of make-up working weekend days, shopping-festival days, and the days from
    the period start to the next Spring Festival (capped at 60), so a model
    can see the lunar festival move between years.
    """
    span = sorted(set(starts))
    if not span:
        return pl.DataFrame(schema={"period_start": pl.Date})
    first, last = span[0], span[-1] + timedelta(days=days_per_period + 400)
    n_days = (last - first).days + 1
    cal = build_calendar(first, n_days)
    daily = cal.select(
        "date",
        holiday_day=pl.col("holiday").is_not_null().cast(pl.Int8),
        makeup_workday=((pl.col("weekday") >= 5) & pl.col("workday")).cast(pl.Int8),
        festival_day=pl.col("festival").is_not_null().cast(pl.Int8),
        days_to_spring_festival=pl.col("days_to_spring_festival").clip(upper_bound=60),
    )
    index = {d: i for i, d in enumerate(daily["date"].to_list())}
    cols = {name: daily[name].to_numpy() for name in daily.columns if name != "date"}
    rows = []
    for s in span:
        i = index[s]
        window = slice(i, i + days_per_period)
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
