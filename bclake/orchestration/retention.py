"""Retention across the platform: the lake step (`ingest.retention`), then the planner export
sets written before the same period by the wall clock (`exports.versions`). The warehouse
follows when the run's dbt build rebuilds it from the lake (the cutoff goes to dbt as the
var `retention_cutoff`: `assets.warehouse`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from datetime import UTC, date, datetime

import polars as pl

from bclake.core.contracts import Contract
from bclake.core.settings import Settings
from bclake.exports.versions import delete_sets_before
from bclake.ingest.erasure import record_receipts
from bclake.ingest.retention import RECEIPT_PREFIX, Expiry, expire, months_back


@dataclasses.dataclass(frozen=True)
class Outcome:
    """What one run's retention step did: the lake's `Expiry` and the export sets deleted;
    `receipts` (`RECEIPT_SCHEMA`) holds both."""

    lake: Expiry
    export_sets: int
    receipts: pl.DataFrame


def carry_out(
    settings: Settings, contracts: Iterable[Contract], today: date | None = None
) -> Outcome:
    """Expire the lake's consumer-level detail, then delete the export sets written before
    `months_back(today, retention_months)` (today: UTC by default), with a receipt
    `exports: sets deleted` under `retention <that day>` when any went. Nothing at all
    when `retention_months` is 0."""
    lake = expire(settings, contracts)
    if settings.retention_months <= 0:
        return Outcome(lake, 0, lake.receipts)
    now = datetime.now(UTC)
    before = months_back(today or now.date(), settings.retention_months)
    sets = delete_sets_before(settings.exports, before)
    receipt = {"request_id": f"{RECEIPT_PREFIX}{before.isoformat()}", "rows": sets}
    rows = [{**receipt, "place": "exports: sets deleted"}] if sets else []
    written = record_receipts(settings, rows, now)
    return Outcome(lake, sets, pl.concat([lake.receipts, written]))
