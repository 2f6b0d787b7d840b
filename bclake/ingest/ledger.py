"""The ingest ledger: one row per landing file and what happened to its rows.

Kept per source table in `lake/_ledger/<system>__<table>.parquet`. For every file
`rows_in = rows_loaded + rows_quarantined`; its `sha256` is how a file already seen
is recognised (null for a file refused unread, recognised by its path and reason).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

import polars as pl

from bclake.core.contracts import Contract
from bclake.core.settings import Settings
from bclake.ingest.paths import write_parquet_atomic

FileStatus = Literal["loaded", "partial", "rejected", "skipped", "kept"]
"""loaded: every row; partial: some rows quarantined (rows that break the contract, or
lines the reader could not split into a row: `ragged_row`, `malformed_json`,
`bad_encoding`); rejected: no row could be trusted, the file is quarantined whole (one row
per line, a short excerpt kept), or the file was refused unread (a link, FIFO, socket,
device, second hard link or a file above the contract's size limit: no sha256); skipped:
already ingested (same content) or already refused, or still being written (`not_settled`:
never ledgered, the next run reads it); kept: a backfill found its source missing, changed
or refused and left its lake parts as they were."""

LEDGER_SCHEMA = {
    "file": pl.String,
    "system": pl.String,
    "table": pl.String,
    "sha256": pl.String,
    "rows_in": pl.Int64,
    "rows_loaded": pl.Int64,
    "rows_quarantined": pl.Int64,
    # rows removed since under the privacy rules: an erasure request (`ingest.erasure`) or
    # the retention period (`ingest.retention`)
    "rows_erased": pl.Int64,
    "status": pl.String,
    "reason": pl.String,
    "message": pl.String,
    "encoding": pl.String,
    "extra_columns": pl.String,
    "first_event_date": pl.String,
    "last_event_date": pl.String,
    "first_seen": pl.Datetime("us", "UTC"),
    "duration_s": pl.Float64,
}


@dataclass(frozen=True, kw_only=True)
class FileResult:
    """What one run did with one landing file: a ledger row, and the days it wrote."""

    file: str  # path under landing/
    system: str
    table: str
    sha256: str | None  # of the file's bytes; None for a file refused unread
    status: FileStatus
    rows_in: int = 0  # rows read plus lines the reader could not split into a row
    rows_loaded: int = 0
    rows_quarantined: int = 0
    rows_erased: int = 0  # of this file's rows, how many erasure or retention removed since
    reason: str | None = None  # why rows or the file were quarantined, or why it was kept
    message: str | None = None
    encoding: str | None = None  # utf-8, utf-8-sig, utf-16-le, utf-16-be, gb18030 or xlsx
    extra_columns: str | None = None  # comma-separated columns the contract does not know
    first_event_date: str | None = None  # ISO day
    last_event_date: str | None = None
    first_seen: datetime = field(default_factory=lambda: datetime.now(UTC))
    duration_s: float = 0.0  # seconds spent reading, validating and writing
    # rows loaded per event date (ISO day); not a ledger column
    days: dict[str, int] = field(default_factory=dict, repr=False)


def ledger_path(settings: Settings, contract: Contract) -> Path:
    return settings.lake / "_ledger" / f"{contract.system}__{contract.table}.parquet"


def read_ledger(settings: Settings, contract: Contract | None = None) -> pl.DataFrame:
    """The ledger of one table, or of every table when `contract` is None.

    Columns and types: `LEDGER_SCHEMA`; no rows when nothing was ingested yet.
    """
    paths = (
        [ledger_path(settings, contract)]
        if contract
        else sorted((settings.lake / "_ledger").glob("*.parquet"))
    )
    frames = [pl.read_parquet(p) for p in paths if p.exists()]
    empty = pl.DataFrame(schema=LEDGER_SCHEMA)
    # diagonal: ledgers written before a column existed still read, with nulls there
    return pl.concat([empty, *frames], how="diagonal_relaxed").select(list(LEDGER_SCHEMA))


def write_ledger(
    settings: Settings, contract: Contract, ledger: pl.DataFrame, results: list[FileResult]
) -> None:
    """Write `ledger` (rows kept from the table's ledger) followed by `results`; nothing is
    written when `results` is empty."""
    if results:
        rows = pl.DataFrame(
            [{k: v for k, v in asdict(r).items() if k in LEDGER_SCHEMA} for r in results],
            schema=LEDGER_SCHEMA,
        )
        write_parquet_atomic(pl.concat([ledger, rows]), ledger_path(settings, contract))
