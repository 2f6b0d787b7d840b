"""Landing -> lake for one source table: read, validate, write Parquet parts and quarantine.

The promise: for every file, `rows_in = rows_loaded + rows_quarantined`; a file
already seen (same content hash) adds nothing; a line the reader cannot split into
a row (`ragged_row`, `malformed_json`, `bad_encoding`) is quarantined with its line
number beside the rows that break the contract; a file no row of which can be trusted
is quarantined whole and never stops the other files. CSV, TSV (UTF-16 "Unicode
text" too), NDJSON and, for CSV contracts, XLSX workbooks are read (`ingest.read`).
Every run records its files in the ledger (`bclake.ingest.ledger`).
"""

from __future__ import annotations

import hashlib
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

import polars as pl

from bclake.core.contracts import Contract
from bclake.core.settings import Settings
from bclake.core.textio import UndecodableText, decode_bytes
from bclake.ingest.ledger import FileResult, read_ledger, write_ledger
from bclake.ingest.paths import quarantine_dir, table_dir, write_parquet_atomic
from bclake.ingest.pii import pseudonymise, redact_text
from bclake.ingest.read import UnreadableFile, container, read_file
from bclake.ingest.validate import validate

WRITERS = 2  # parallel partition writers per file
SCHEMA_FILE = "_schema.parquet"

RowCount = Literal["rows_in", "rows_loaded", "rows_quarantined"]


@dataclass(frozen=True, kw_only=True)
class TableResult:
    """What one run did with one source table's landing files."""

    table: str  # the contract's key, `<system>.<table>`
    files: list[FileResult]

    def total(self, name: RowCount, include_skipped: bool = False) -> int:
        """Rows of one kind over the run's files (files already ingested left out)."""
        return sum(getattr(f, name) for f in self.files if include_skipped or f.status != "skipped")

    @property
    def days(self) -> dict[str, int]:
        """Rows written per event date by this run, over all its files."""
        out: dict[str, int] = {}
        for f in self.files:
            for day, rows in f.days.items():
                out[day] = out.get(day, 0) + rows
        return dict(sorted(out.items()))


def ingest_table(contract: Contract, settings: Settings) -> TableResult:
    """Load every new landing file of one source table into the lake.

    Raises RuntimeError when landing/ holds real exports and no PII key is set.
    """
    settings.require_pii_key()
    for stale in table_dir(settings.lake, contract).rglob(".*.tmp"):  # left by a killed run
        stale.unlink()
    landing = table_dir(settings.landing, contract)
    ledger = read_ledger(settings, contract)
    seen = set(ledger["sha256"].to_list())
    files = sorted(p for p in landing.glob("*") if p.is_file() and not p.name.startswith("."))
    results: list[FileResult] = []
    for path in files:
        data = path.read_bytes()
        digest = hashlib.sha256(data).hexdigest()
        rel = str(path.relative_to(settings.landing))
        if digest in seen:
            results.append(
                FileResult(
                    file=rel,
                    system=contract.system,
                    table=contract.table,
                    sha256=digest,
                    status="skipped",
                    reason="already_ingested",
                )
            )
            continue
        seen.add(digest)
        results.append(_ingest_file(path, data, rel, digest, contract, settings))
    write_ledger(settings, contract, ledger, [r for r in results if r.status != "skipped"])
    schema_file = table_dir(settings.lake, contract) / SCHEMA_FILE
    if not schema_file.exists():
        write_parquet_atomic(empty_lake_frame(contract), schema_file)
    return TableResult(table=contract.key, files=results)


def empty_lake_frame(contract: Contract) -> pl.DataFrame:
    """Zero rows with the lake's columns and types.

    Written once per table as `_schema.parquet`, so a source that has sent nothing
    yet still reads as an empty, typed table downstream instead of a missing path.
    """
    raw = pl.DataFrame(
        {"_source_row": pl.Series([], dtype=pl.Int64)}
        | {c.name: pl.Series([], dtype=pl.String) for c in contract.all_columns}
        | {"_extra": pl.Series([], dtype=pl.String)}
    )
    loaded, _ = validate(raw, contract)
    return loaded.with_columns(
        pl.lit(None, pl.String).alias("_source_file"),
        pl.lit(None, pl.String).alias("_file_sha256"),
        pl.lit(None, pl.Datetime("us", "UTC")).alias("_ingested_at"),
    ).clear()


def reingest_days(contract: Contract, settings: Settings, days: list[str]) -> TableResult:
    """Rebuild the lake partitions of `days` (ISO dates) from the landing files that fed them.

    A backfill: every file whose event dates (in the ledger) reach into those days is read again
    with today's contract and code, and all of its rows are written again (its other
    days too, so a file is always wholly in one version). New parts replace old ones
    by atomic rename; parts a file no longer produces are removed afterwards. The
    ledger keeps one row per file, so `rows_in = rows_loaded + rows_quarantined`
    still holds. A file that has left landing/ or changed since is reported
    (status `kept`) and its partitions are kept as they are: nothing is lost for want
    of a source.
    """
    settings.require_pii_key()
    if not contract.event_date or not days:
        return TableResult(table=contract.key, files=[])
    ledger = read_ledger(settings, contract)
    # the ledger knows which days each file fed, even when those parts are gone
    fed = ledger.filter(
        pl.col("status").is_in(["loaded", "partial"])
        & (pl.col("first_event_date") <= max(days))
        & (pl.col("last_event_date") >= min(days))
    )
    results = [_reingest_file(row, contract, settings) for row in fed.iter_rows(named=True)]
    redone = {r.sha256 for r in results if r.status != "kept"}
    if redone:
        kept = ledger.filter(~pl.col("sha256").is_in(sorted(redone)))
        write_ledger(settings, contract, kept, [r for r in results if r.status != "kept"])
    return TableResult(table=contract.key, files=results)


def _reingest_file(row: dict, contract: Contract, settings: Settings) -> FileResult:
    """Load one ledger row's file again, replacing its parts; `kept` if its source is gone."""
    path = settings.landing / row["file"]
    data = path.read_bytes() if path.is_file() else None
    if data is None or hashlib.sha256(data).hexdigest() != row["sha256"]:
        why = "source_missing" if data is None else "source_changed"
        return FileResult(
            file=row["file"],
            system=contract.system,
            table=contract.table,
            sha256=row["sha256"],
            status="kept",
            reason=why,
            message=f"{row['file']}: cannot re-ingest ({why.replace('_', ' ')}); its lake "
            "partitions are kept unchanged",
        )
    out_dir = table_dir(settings.lake, contract)
    part = f"part-{row['sha256'][:16]}.parquet"
    old_parts = set(out_dir.glob(f"*/{part}"))
    result = _ingest_file(path, data, row["file"], row["sha256"], contract, settings)
    written = {out_dir / f"{contract.event_date}={day}" / part for day in result.days}
    for stale in old_parts - written:
        stale.unlink()
    if not result.rows_quarantined and result.status != "rejected":
        (quarantine_dir(settings.lake, contract) / part).unlink(missing_ok=True)
    return replace(result, first_seen=row["first_seen"])


def _ingest_file(
    path: Path, data: bytes, rel: str, digest: str, contract: Contract, settings: Settings
) -> FileResult:
    """Read, validate and write one landing file: lake parts, quarantined rows, its result."""
    started = time.perf_counter()
    lineage = [
        pl.lit(rel).alias("_source_file"),
        pl.lit(digest).alias("_file_sha256"),
        pl.lit(datetime.now(UTC)).alias("_ingested_at"),
    ]
    part = f"part-{digest[:16]}.parquet"
    identity = {"file": rel, "system": contract.system, "table": contract.table, "sha256": digest}
    try:
        raw = read_file(path, contract, data)
    except UnreadableFile as error:
        lines = _quarantine_unreadable(data, error, lineage, part, contract, settings)
        return FileResult(
            **identity,
            status="rejected",
            rows_in=lines,
            rows_quarantined=lines,
            reason=error.reason,
            message=str(error),
            duration_s=time.perf_counter() - started,
        )

    loaded, quarantined = validate(pseudonymise(raw.frame, contract, settings.pii_key), contract)
    days = _write_parts(loaded.with_columns(lineage), part, contract, settings)
    quarantined = quarantined.with_columns(
        pl.concat_str(  # not pl.format: it panics on some filtered frames (polars 2.1)
            pl.lit(f"{rel}: row "),
            pl.col("_source_row").cast(pl.String),
            pl.lit(": "),
            pl.col("message"),
        ).alias("message")
    )
    if raw.rejected.height:  # lines the reader could not split into a row
        rejected = raw.rejected.with_columns(
            (pl.lit(f"{rel}: ") + pl.col("message")).alias("message"),
            pl.col("raw").map_elements(
                lambda line: redact_text(line, settings.pii_key), return_dtype=pl.String
            ),
        )
        quarantined = pl.concat([rejected, quarantined]).sort("_source_row")
    if quarantined.height:
        write_parquet_atomic(
            quarantined.with_columns(lineage), quarantine_dir(settings.lake, contract) / part
        )
    return FileResult(
        **identity,
        status="partial" if quarantined.height else "loaded",
        rows_in=raw.rows_in,
        rows_loaded=loaded.height,
        rows_quarantined=quarantined.height,
        encoding=raw.encoding,
        extra_columns=",".join(raw.extra_columns) or None,
        first_event_date=min(days) if days else None,
        last_event_date=max(days) if days else None,
        days=days,
        duration_s=time.perf_counter() - started,
    )


def _write_parts(
    loaded: pl.DataFrame, part: str, contract: Contract, settings: Settings
) -> dict[str, int]:
    """The file's valid rows into the lake: one part per event date (returns rows per ISO
    day), or one part for a table without event dates (returns {})."""
    out_dir = table_dir(settings.lake, contract)
    if not contract.event_date:
        if loaded.height:
            write_parquet_atomic(loaded, out_dir / part)
        return {}
    chunks = loaded.partition_by(contract.event_date, as_dict=True)
    # polars releases the GIL while it encodes, so two writers keep both cores busy
    with ThreadPoolExecutor(max_workers=WRITERS) as pool:
        list(
            pool.map(
                lambda item: write_parquet_atomic(
                    item[1], out_dir / f"{contract.event_date}={item[0][0]}" / part
                ),
                chunks.items(),
            )
        )
    return {str(day): chunk.height for (day,), chunk in chunks.items()}


def _quarantine_unreadable(
    data: bytes,
    error: UnreadableFile,
    lineage: list[pl.Expr],
    part: str,
    contract: Contract,
    settings: Settings,
) -> int:
    """Quarantine every data line of a file (its bytes, as hashed) that could not be parsed;
    returns their count."""
    lines = [redact_text(line, settings.pii_key) for line in _data_lines(data, contract)]
    first_row = 1 + (contract.format == "csv")  # a CSV's row 1 is its header
    quarantined = pl.DataFrame(
        {
            "_source_row": list(range(first_row, len(lines) + first_row)),
            "reason": [error.reason] * len(lines),
            "message": [str(error)] * len(lines),
            "raw": lines,
        },
        schema={
            "_source_row": pl.Int64,
            "reason": pl.String,
            "message": pl.String,
            "raw": pl.String,
        },
    )
    write_parquet_atomic(
        quarantined.with_columns(lineage), quarantine_dir(settings.lake, contract) / part
    )
    return len(lines)


def _data_lines(data: bytes, contract: Contract) -> list[str]:
    """The non-empty data lines of a file's bytes that could not be parsed, as text (none
    for a workbook: its bytes are not lines)."""
    if container(data) != "text":
        return []
    try:
        text = decode_bytes(data, contract.encodings).text
    except UndecodableText:
        text = data.decode("utf-8", errors="replace")
    lines = [line for line in text.splitlines() if line.strip()]
    return lines[1:] if contract.format == "csv" else lines
