"""Landing -> lake for one source table: read, validate, write Parquet, record the ledger.

The promise: for every file, `rows_in = rows_loaded + rows_quarantined`; a file
already seen (same content hash) adds nothing; a file that cannot be read is
quarantined whole and never stops the other files.
"""

from __future__ import annotations

import hashlib
import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import polars as pl

from bclake.core.contracts import Contract
from bclake.core.settings import Settings
from bclake.ingest.pii import pseudonymise, redact_text
from bclake.ingest.read import UnreadableFile, read_file
from bclake.ingest.validate import validate

WRITERS = 2  # parallel partition writers per file
SCHEMA_FILE = "_schema.parquet"

LEDGER_SCHEMA = {
    "file": pl.String,
    "system": pl.String,
    "table": pl.String,
    "sha256": pl.String,
    "rows_in": pl.Int64,
    "rows_loaded": pl.Int64,
    "rows_quarantined": pl.Int64,
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


@dataclass
class FileResult:
    file: str
    system: str
    table: str
    sha256: str
    rows_in: int
    rows_loaded: int
    rows_quarantined: int
    status: str  # loaded | partial | rejected | skipped | kept (backfill without its source)
    reason: str | None = None
    message: str | None = None
    encoding: str | None = None
    extra_columns: str | None = None
    first_event_date: str | None = None
    last_event_date: str | None = None
    first_seen: datetime = field(default_factory=lambda: datetime.now(UTC))
    duration_s: float = 0.0
    # rows loaded per event date (ISO day); not a ledger column
    days: dict[str, int] = field(default_factory=dict, repr=False)


@dataclass
class TableResult:
    table: str
    files: list[FileResult]

    def total(self, name: str, include_skipped: bool = False) -> int:
        return sum(getattr(f, name) for f in self.files if include_skipped or f.status != "skipped")

    @property
    def days(self) -> dict[str, int]:
        """Rows written per event date by this run, over all its files."""
        out: dict[str, int] = {}
        for f in self.files:
            for day, rows in f.days.items():
                out[day] = out.get(day, 0) + rows
        return dict(sorted(out.items()))


def table_dir(root: Path, contract: Contract) -> Path:
    return root / contract.system / contract.table


def ledger_path(settings: Settings, contract: Contract) -> Path:
    return settings.lake / "_ledger" / f"{contract.system}__{contract.table}.parquet"


def read_ledger(settings: Settings, contract: Contract | None = None) -> pl.DataFrame:
    """The ledger of one table, or of every table when `contract` is None."""
    paths = (
        [ledger_path(settings, contract)]
        if contract
        else sorted((settings.lake / "_ledger").glob("*.parquet"))
    )
    frames = [pl.read_parquet(p) for p in paths if p.exists()]
    empty = pl.DataFrame(schema=LEDGER_SCHEMA)
    # diagonal: ledgers written before a column existed still read, with nulls there
    return pl.concat([empty, *frames], how="diagonal_relaxed").select(list(LEDGER_SCHEMA))


def _atomic_parquet(frame: pl.DataFrame, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    frame.write_parquet(tmp)
    os.replace(tmp, path)


def ingest_table(contract: Contract, settings: Settings) -> TableResult:
    """Load every new landing file of one source table into the lake."""
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
                    rel,
                    contract.system,
                    contract.table,
                    digest,
                    0,
                    0,
                    0,
                    "skipped",
                    "already_ingested",
                )
            )
            continue
        seen.add(digest)
        results.append(_ingest_file(path, data, rel, digest, contract, settings))
    _append_ledger(settings, contract, ledger, [r for r in results if r.status != "skipped"])
    schema_file = table_dir(settings.lake, contract) / SCHEMA_FILE
    if not schema_file.exists():
        _atomic_parquet(empty_lake_frame(contract), schema_file)
    return TableResult(contract.key, results)


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


def _append_ledger(
    settings: Settings, contract: Contract, ledger: pl.DataFrame, results: list[FileResult]
) -> None:
    if results:
        rows = pl.DataFrame(
            [{k: v for k, v in asdict(r).items() if k in LEDGER_SCHEMA} for r in results],
            schema=LEDGER_SCHEMA,
        )
        _atomic_parquet(pl.concat([ledger, rows]), ledger_path(settings, contract))


def reingest_days(contract: Contract, settings: Settings, days: list[str]) -> TableResult:
    """Rebuild the lake partitions of `days` from the landing files that fed them.

    A backfill: every file whose event dates (in the ledger) reach into those days is read again
    with today's contract and code, and all of its rows are written again (its other
    days too, so a file is always wholly in one version). New parts replace old ones
    by atomic rename; parts a file no longer produces are removed afterwards. The
    ledger keeps one row per file, so `rows_in = rows_loaded + rows_quarantined`
    still holds. A file that has left landing/ or changed since is reported and its
    partitions are kept as they are: nothing is lost for want of a source.
    """
    settings.require_pii_key()
    if not contract.event_date or not days:
        return TableResult(contract.key, [])
    out_dir = table_dir(settings.lake, contract)
    ledger = read_ledger(settings, contract)
    # the ledger knows which days each file fed, even when those parts are gone
    fed = ledger.filter(
        pl.col("status").is_in(["loaded", "partial"])
        & (pl.col("first_event_date") <= max(days))
        & (pl.col("last_event_date") >= min(days))
    )
    results: list[FileResult] = []
    for row in fed.iter_rows(named=True):
        path = settings.landing / row["file"]
        data = path.read_bytes() if path.is_file() else None
        if data is None or hashlib.sha256(data).hexdigest() != row["sha256"]:
            why = "source_missing" if data is None else "source_changed"
            results.append(
                FileResult(
                    row["file"],
                    contract.system,
                    contract.table,
                    row["sha256"],
                    0,
                    0,
                    0,
                    "kept",
                    why,
                    f"{row['file']}: cannot re-ingest ({why.replace('_', ' ')}); its lake "
                    "partitions are kept unchanged",
                )
            )
            continue
        old_parts = set(out_dir.glob(f"*/part-{row['sha256'][:16]}.parquet"))
        quarantine = table_dir(settings.lake / "_quarantine", contract)
        old_quarantine = quarantine / f"part-{row['sha256'][:16]}.parquet"
        result = _ingest_file(path, data, row["file"], row["sha256"], contract, settings)
        written = {
            out_dir / f"{contract.event_date}={day}" / f"part-{row['sha256'][:16]}.parquet"
            for day in result.days
        }
        for stale in old_parts - written:
            stale.unlink()
        if not result.rows_quarantined and result.status != "rejected":
            old_quarantine.unlink(missing_ok=True)
        result.first_seen = row["first_seen"]
        results.append(result)
    redone = {r.sha256 for r in results if r.status != "kept"}
    if redone:
        kept = ledger.filter(~pl.col("sha256").is_in(sorted(redone)))
        _append_ledger(settings, contract, kept, [r for r in results if r.status != "kept"])
    return TableResult(contract.key, results)


def _ingest_file(
    path: Path, data: bytes, rel: str, digest: str, contract: Contract, settings: Settings
) -> FileResult:
    started = time.perf_counter()
    lineage = [
        pl.lit(rel).alias("_source_file"),
        pl.lit(digest).alias("_file_sha256"),
        pl.lit(datetime.now(UTC)).alias("_ingested_at"),
    ]
    part = f"part-{digest[:16]}.parquet"
    result = FileResult(rel, contract.system, contract.table, digest, 0, 0, 0, "loaded")
    try:
        raw = read_file(path, contract, data)
    except UnreadableFile as error:
        lines = [redact_text(line, settings.pii_key) for line in _data_lines(path, contract)]
        quarantined = pl.DataFrame(
            {
                "_source_row": list(
                    range(
                        1 + (contract.format == "csv"), len(lines) + 1 + (contract.format == "csv")
                    )
                ),
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
        _atomic_parquet(
            quarantined.with_columns(lineage),
            table_dir(settings.lake / "_quarantine", contract) / part,
        )
        result.rows_in = result.rows_quarantined = len(lines)
        result.status, result.reason, result.message = "rejected", error.reason, str(error)
        result.duration_s = time.perf_counter() - started
        return result

    loaded, quarantined = validate(pseudonymise(raw.frame, contract, settings.pii_key), contract)
    loaded = loaded.with_columns(lineage)
    out_dir = table_dir(settings.lake, contract)
    if contract.event_date:
        chunks = loaded.partition_by(contract.event_date, as_dict=True)
        # polars releases the GIL while it encodes, so two writers keep both cores busy
        with ThreadPoolExecutor(max_workers=WRITERS) as pool:
            list(
                pool.map(
                    lambda item: _atomic_parquet(
                        item[1], out_dir / f"{contract.event_date}={item[0][0]}" / part
                    ),
                    chunks.items(),
                )
            )
        result.days = {str(day): chunk.height for (day,), chunk in chunks.items()}
        if result.days:
            result.first_event_date, result.last_event_date = min(result.days), max(result.days)
    elif loaded.height:
        _atomic_parquet(loaded, out_dir / part)
    if quarantined.height:
        quarantined = quarantined.with_columns(
            pl.concat_str(  # not pl.format: it panics on some filtered frames (polars 2.1)
                pl.lit(f"{rel}: row "),
                pl.col("_source_row").cast(pl.String),
                pl.lit(": "),
                pl.col("message"),
            ).alias("message")
        )
        _atomic_parquet(
            quarantined.with_columns(lineage),
            table_dir(settings.lake / "_quarantine", contract) / part,
        )
    result.rows_in = raw.frame.height
    result.rows_loaded, result.rows_quarantined = loaded.height, quarantined.height
    result.status = "loaded" if not quarantined.height else "partial"
    result.encoding = raw.encoding
    result.extra_columns = ",".join(raw.extra_columns) or None
    result.duration_s = time.perf_counter() - started
    return result


def _data_lines(path: Path, contract: Contract) -> list[str]:
    """The non-empty data lines of a file that could not be parsed, as text."""
    text = path.read_bytes().decode("utf-8", errors="replace")
    lines = [line for line in text.splitlines() if line.strip()]
    return lines[1:] if contract.format == "csv" else lines


@dataclass
class Freshness:
    """How recently a source table received a new file, against its contract's cadence."""

    fresh: bool
    last_arrival: datetime | None
    hours_since: float | None
    allowed_hours: int
    newest_event_date: str | None
    message: str


def source_freshness(
    contract: Contract, settings: Settings, now: datetime | None = None
) -> Freshness:
    """Freshness from the ledger (when files arrived) and the lake (which days they cover)."""
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
    if ledger.is_empty():
        return Freshness(
            False,
            None,
            None,
            allowed,
            newest_day,
            f"no file has landed in landing/{contract.system}/{contract.table}/ yet",
        )
    last = ledger["first_seen"].max()
    hours = (now - last).total_seconds() / 3600
    fresh = hours <= allowed
    message = (
        f"last new file {hours:.1f} h ago (expected at least every {allowed} h)"
        + (f"; newest event date {newest_day}" if newest_day else "")
        + ("" if fresh else f": check the {contract.system} export job")
    )
    return Freshness(fresh, last, round(hours, 2), allowed, newest_day, message)
