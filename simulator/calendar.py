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
    starts = [d for i, d in enumerate(days) if names[i] == holiday and
              (i == 0 or names[i - 1] != holiday)]
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
