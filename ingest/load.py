"""Landing -> lake for one source table: read, validate, write Parquet, record the ledger.

The promise: for every file, `rows_in = rows_loaded + rows_quarantined`; a file
already seen (same content hash) adds nothing; a file that cannot be read is
quarantined whole and never stops the other files.
"""

from __future__ import annotations

import hashlib
import os
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import polars as pl

from bclake.contracts import Contract
from bclake.settings import Settings
from ingest.pii import pseudonymise, redact_text
from ingest.read import UnreadableFile, read_file
from ingest.validate import validate

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
    status: str  # loaded | partial | rejected | skipped
    reason: str | None = None
    message: str | None = None
    encoding: str | None = None
    extra_columns: str | None = None
    first_seen: datetime = field(default_factory=lambda: datetime.now(UTC))
    duration_s: float = 0.0


@dataclass
class TableResult:
    table: str
    files: list[FileResult]

    def total(self, name: str, include_skipped: bool = False) -> int:
        return sum(getattr(f, name) for f in self.files if include_skipped or f.status != "skipped")


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
    return pl.concat(frames) if frames else pl.DataFrame(schema=LEDGER_SCHEMA)


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
    new = [r for r in results if r.status != "skipped"]
    if new:
        rows = pl.DataFrame([asdict(r) for r in new], schema=LEDGER_SCHEMA)
        _atomic_parquet(pl.concat([ledger, rows]), ledger_path(settings, contract))
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
        for (day,), chunk in loaded.partition_by(contract.event_date, as_dict=True).items():
            _atomic_parquet(chunk, out_dir / f"{contract.event_date}={day}" / part)
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
