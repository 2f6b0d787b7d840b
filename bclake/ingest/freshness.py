"""Source freshness: how recently a table received a new file, against its contract's
cadence (`freshness_hours`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import polars as pl

from bclake.core.contracts import Contract
from bclake.core.settings import Settings
from bclake.ingest.ledger import read_ledger
from bclake.ingest.paths import table_dir


@dataclass(frozen=True, kw_only=True)
class Freshness:
    """How recently a source table received a new file, against its contract's cadence."""

    fresh: bool  # a new file arrived within `allowed_hours`
    last_arrival: datetime | None  # when the newest file was first seen (UTC); None: no file
    hours_since: float | None  # hours from `last_arrival` to the check
    allowed_hours: int | None  # the contract's cadence (None: none expected)
    newest_event_date: str | None  # the latest day in the lake (ISO), for partitioned tables
    message: str  # says what is wrong and where to look


def source_freshness(
    contract: Contract, settings: Settings, now: datetime | None = None
) -> Freshness:
    """Freshness from the ledger (when files arrived) and the lake (which days they cover).

    `now` defaults to the current time (UTC); skipped files (already seen) do not count
    as arrivals.
    """
    now = now or datetime.now(UTC)
    ledger = read_ledger(settings, contract).filter(pl.col("status") != "skipped")
    newest_day = None
    if contract.event_date:
        days = [
            p.name.split("=", 1)[1]
            for p in table_dir(settings.lake, contract).glob(f"{contract.event_date}=*")
        ]
        newest_day = max(days) if days else None
    allowed = contract.freshness_hours
    if allowed is None:  # files arrive when people act: never stale
        return Freshness(
            fresh=True,
            last_arrival=ledger["first_seen"].max() if not ledger.is_empty() else None,
            hours_since=None,
            allowed_hours=None,
            newest_event_date=newest_day,
            message="no expected cadence: files arrive when people act",
        )
    if ledger.is_empty():
        return Freshness(
            fresh=False,
            last_arrival=None,
            hours_since=None,
            allowed_hours=allowed,
            newest_event_date=newest_day,
            message=f"no file has landed in landing/{contract.system}/{contract.table}/ yet",
        )
    last = ledger["first_seen"].max()
    hours = (now - last).total_seconds() / 3600
    fresh = hours <= allowed
    message = (
        f"last new file {hours:.1f} h ago (expected at least every {allowed} h)"
        + (f"; newest event date {newest_day}" if newest_day else "")
        + ("" if fresh else f": check the {contract.system} export job")
    )
    return Freshness(
        fresh=fresh,
        last_arrival=last,
        hours_since=round(hours, 2),
        allowed_hours=allowed,
        newest_event_date=newest_day,
        message=message,
    )
