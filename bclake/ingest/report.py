"""What the lake can say about itself: ledger, quarantine reasons and source freshness.

Publishing copies these into the warehouse's `audit` schema, so the data-quality
dashboard reads one published file like every other page and never the lake. Their text
goes through `core.pii.redact_frame` once more on the way out, so a phone or identity
number a lake written by an older version kept in clear is not published either.
"""

from __future__ import annotations

from datetime import UTC, datetime

import polars as pl

from bclake.core.contracts import load_contracts
from bclake.core.pii import redact_frame
from bclake.core.settings import Settings
from bclake.ingest.erasure import read_receipts
from bclake.ingest.freshness import source_freshness
from bclake.ingest.ledger import read_ledger
from bclake.ingest.paths import quarantine_dir

EXAMPLES_PER_REASON = 3


def quarantine_reasons(settings: Settings) -> pl.DataFrame:
    """Quarantined rows per table and reason, with a few example messages and raw rows.

    Whole files rejected before any row was read appear through the ledger instead.
    """
    frames = []
    for contract in load_contracts().values():
        folder = quarantine_dir(settings.lake, contract)
        parts = sorted(folder.glob("*.parquet"))
        if not parts:
            continue
        rows = pl.read_parquet(parts, columns=["reason", "message", "raw", "_source_file"])
        frames.append(
            rows.group_by("reason")
            .agg(
                pl.len().alias("rows"),
                pl.col("_source_file").n_unique().alias("files"),
                pl.col("message").head(EXAMPLES_PER_REASON).alias("examples"),
                pl.col("raw").first().alias("example_raw"),
            )
            .with_columns(
                pl.lit(contract.system).alias("system"),
                pl.lit(contract.table).alias("table"),
                pl.col("examples").list.join("\n"),
            )
        )
    schema = {
        "system": pl.String,
        "table": pl.String,
        "reason": pl.String,
        "rows": pl.Int64,
        "files": pl.Int64,
        "examples": pl.String,
        "example_raw": pl.String,
    }
    if not frames:
        return pl.DataFrame(schema=schema)
    return (
        pl.concat(frames, how="diagonal_relaxed")
        .select(list(schema))
        .cast(schema)  # type: ignore[arg-type]
        .sort("system", "table", "rows", descending=[False, False, True])
    )


def freshness_table(settings: Settings, now: datetime | None = None) -> pl.DataFrame:
    """One row per source table: when it last received a file, against its cadence."""
    now = now or datetime.now(UTC)
    rows = []
    for contract in load_contracts().values():
        f = source_freshness(contract, settings, now)
        rows.append(
            {
                "system": contract.system,
                "table": contract.table,
                "fresh": f.fresh,
                "last_arrival": f.last_arrival,
                "hours_since": f.hours_since,
                "allowed_hours": f.allowed_hours,
                "newest_event_date": f.newest_event_date,
                "message": f.message,
                "checked_at": now,
            }
        )
    return pl.DataFrame(rows, infer_schema_length=None).sort("system", "table")


def lake_audit(settings: Settings) -> dict[str, pl.DataFrame]:
    """The lake's audit tables, keyed by the name they get in the warehouse, their text with
    phones and identity numbers pseudonymised under `settings.pii_keys`."""
    tables = {
        "ingest_ledger": read_ledger(settings).sort("system", "table", "file"),
        "quarantine_reasons": quarantine_reasons(settings),
        "source_freshness": freshness_table(settings),
        "erasure_receipts": read_receipts(settings).sort("erased_at", "request_id", "place"),
    }
    return {name: redact_frame(frame, settings.pii_keys) for name, frame in tables.items()}
