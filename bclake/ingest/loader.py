"""Landing -> lake for one source table: read, validate, write Parquet parts and quarantine.

The promise: for every file, `rows_in = rows_loaded + rows_quarantined`; a file
already seen (same content hash) adds nothing; a line the reader cannot split into
a row (`ragged_row`, `malformed_json`, `bad_encoding`) is quarantined with its line
number beside the rows that break the contract; a file no row of which can be trusted
is quarantined whole and never stops the other files. CSV, TSV (UTF-16 "Unicode
text" too), NDJSON and, for CSV contracts, XLSX workbooks are read (`ingest.read`).
Every run records its files in the ledger (`bclake.ingest.ledger`).

landing/ is untrusted (`bclake.ingest.paths`): a link, FIFO, socket, device, second hard link
or file above the contract's `max_file_mb` is refused unread and ledgered once as `rejected`
with the fix; a file still being written (`BCLAKE_LANDING_SETTLE_SECONDS`) is skipped, unread
and unledgered, for the next run. What the quarantine keeps of a line or file that cannot be
loaded is a short excerpt (`raw_excerpt`: at most `EXCERPT_CHARS`, phone numbers redacted),
never the file's content.
"""

from __future__ import annotations

import hashlib
import os
import re
import time
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

import polars as pl

from bclake.core.contracts import Contract
from bclake.core.pii import PiiKey
from bclake.core.progress import Task, track
from bclake.core.settings import Settings
from bclake.core.textio import UndecodableText, decode_bytes
from bclake.ingest.ledger import FileResult, read_ledger, write_ledger
from bclake.ingest.paths import (
    LandingFile,
    NotSettled,
    Refused,
    list_landing,
    quarantine_dir,
    read_landing,
    settle,
    settle_seconds,
    table_dir,
    write_parquet_atomic,
)
from bclake.ingest.pii import (
    find_landing_file,
    pseudonymise,
    redact_frame,
    redact_result,
    redact_text,
)
from bclake.ingest.read import UnreadableFile, container, read_file
from bclake.ingest.rotation import verify_key
from bclake.ingest.validate import validate

EXCERPT_CHARS = 200  # most characters kept of a raw line that could not be loaded
MESSAGE_CHARS = 1000  # most characters of a quarantine or ledger message
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
# a number cut short at the end of an excerpt: dropped, so no partial phone or ID number
# is left that the redaction could not recognise
_NUMBER_TAIL = re.compile(r"[0-9+\-() ]*[0-9][0-9+\-() ]*[Xx]?$")
SCHEMA_FILE = "_schema.parquet"
ORPHANS = "_orphans"  # lake/_orphans/: parts no ledger row accounts for, set aside

RowCount = Literal["rows_in", "rows_loaded", "rows_quarantined"]


@dataclass(frozen=True, kw_only=True)
class TableResult:
    """What one run did with one source table's landing files."""

    table: str  # the contract's key, `<system>.<table>`
    files: list[FileResult]
    # lake and quarantine parts no ledger row accounted for, moved to lake/_orphans/ at start
    orphans: list[str] = field(default_factory=list)

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

    Files are listed, settled and read by `bclake.ingest.paths`: refused entries are
    ledgered once as `rejected` (never read); files still being written come back as
    `skipped` (`not_settled`) and are not ledgered, so the next run takes them.

    Raises RuntimeError when landing/ holds real exports and no PII key is set, ValueError
    when `BCLAKE_LANDING_SETTLE_SECONDS` is not a number of seconds, `KeyMismatch` when
    the PII keys are not those the lake was written with (`ingest.rotation.verify_key`).
    """
    settings.require_pii_key()
    verify_key(settings)
    for stale in table_dir(settings.lake, contract).rglob(".*.tmp"):  # left by a killed run
        stale.unlink()
    ledger = read_ledger(settings, contract)
    orphans = set_aside_orphans(contract, settings, ledger)
    _scrub_quarantine(contract, settings, ledger)
    seen = set(ledger["sha256"].drop_nulls().to_list())
    refused_before = set(
        ledger.filter(pl.col("sha256").is_null()).select("file", "reason").iter_rows()
    )
    ready, moving = settle(
        settings.landing, list_landing(settings.landing, contract), contract, settle_seconds()
    )
    results: list[FileResult] = [
        FileResult(
            file=f.rel,
            system=contract.system,
            table=contract.table,
            sha256=None,
            status="skipped",
            reason="not_settled",
        )
        for f in moving
    ]
    rows = _RowsNote()
    with track(f"ingest {contract.key}", total=len(ready), unit="files") as task:
        for entry in ready:
            result = _take(entry, contract, settings, seen, refused_before)
            if result is not None:
                results.append(result)
            rows.advance(task, result, redact_text(entry.rel, settings.pii_keys))
    results = [redact_result(r, settings.pii_keys) for r in results]
    write_ledger(settings, contract, ledger, [r for r in results if r.status != "skipped"])
    schema_file = table_dir(settings.lake, contract) / SCHEMA_FILE
    if not schema_file.exists():
        write_parquet_atomic(empty_lake_frame(contract), schema_file)
    return TableResult(table=contract.key, files=results, orphans=orphans)


class _RowsNote:
    """Advances an ingest task by one file with a note naming it and the rows read so far
    with their rate: `sales/2024-03.csv; 120,000 rows read, 45,200 rows/s`."""

    def __init__(self) -> None:
        self.rows = 0

    def advance(self, task: Task, result: FileResult | None, name: str) -> None:
        if result is not None and result.status != "skipped":
            self.rows += result.rows_in
        elapsed = task.elapsed
        rate = f", {self.rows / elapsed:,.0f} rows/s" if elapsed > 0 and self.rows else ""
        task.advance(note=f"{name}; {self.rows:,} rows read{rate}")


def _take(
    entry: LandingFile,
    contract: Contract,
    settings: Settings,
    seen: set[str],
    refused_before: set[tuple[str, str]],
) -> FileResult | None:
    """One settled landing entry read and loaded, or its refusal or skip (None: it vanished
    since it was listed). Adds a loaded file's hash to `seen`."""
    identity = {"system": contract.system, "table": contract.table}
    try:
        if entry.refusal is not None:
            raise entry.refusal
        data = read_landing(settings.landing, entry, contract)
    except Refused as refused:
        return _refused(entry, refused, contract, refused_before, settings.pii_keys)
    except NotSettled:
        return FileResult(
            file=entry.rel, **identity, sha256=None, status="skipped", reason="not_settled"
        )
    except FileNotFoundError:  # removed since it was listed
        return None
    digest = hashlib.sha256(data).hexdigest()
    if digest in seen:
        return FileResult(
            file=entry.rel, **identity, sha256=digest, status="skipped", reason="already_ingested"
        )
    seen.add(digest)
    path = settings.landing / entry.rel
    return _ingest_file(path, data, entry.rel, digest, contract, settings)


def set_aside_orphans(contract: Contract, settings: Settings, ledger: pl.DataFrame) -> list[str]:
    """Move lake and quarantine parts that no ledger row accounts for to `lake/_orphans/`.

    A file's parts are named after its content hash and written before its ledger row,
    so a run killed in between leaves parts the ledger does not know. The next run takes
    the file again (same hash, same part names) if it is still in landing; if it is gone
    or changed, these rows would sit in the lake with no file to account for them. They
    are moved, not deleted, under the same relative path; returns those paths (relative
    to the lake), which the run reports.
    """
    known = {sha[:16] for sha in ledger["sha256"].drop_nulls().to_list()}
    lake = settings.lake
    parts = [
        *table_dir(lake, contract).rglob("part-*.parquet"),
        *quarantine_dir(lake, contract).glob("part-*.parquet"),
    ]
    moved = []
    for part in sorted(parts):
        if part.stem.removeprefix("part-") in known:
            continue
        rel = part.relative_to(lake)
        target = lake / ORPHANS / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        part.replace(target)
        moved.append(rel.as_posix())
    return moved


def _scrub_quarantine(contract: Contract, settings: Settings, ledger: pl.DataFrame) -> None:
    """Bring quarantine parts kept before excerpts were capped down to what is kept today.

    A part holding a raw line longer than `EXCERPT_CHARS` has its lines cut to excerpts;
    one of a file rejected whole keeping more than one line keeps none (such a file may
    have been read through a link, so even its excerpt is not kept). Parts written today
    are only looked at (one column), never rewritten.
    """
    rejected = set(
        ledger.filter((pl.col("status") == "rejected") & pl.col("sha256").is_not_null())[
            "sha256"
        ].str.slice(0, 16)
    )
    for part in sorted(quarantine_dir(settings.lake, contract).glob("part-*.parquet")):
        longest, kept = (
            pl.scan_parquet(part)
            .select(
                pl.col("raw").str.len_chars().max().alias("longest"),
                pl.col("raw").count().alias("kept"),
            )
            .collect()
            .row(0)
        )
        whole_file = part.stem.removeprefix("part-") in rejected
        if (longest or 0) <= EXCERPT_CHARS and not (whole_file and kept > 1):
            continue
        frame = pl.read_parquet(part)
        raw = (
            pl.lit(None, pl.String)
            if whole_file
            else pl.col("raw").map_elements(
                lambda line: raw_excerpt(line, settings.pii_keys), return_dtype=pl.String
            )
        )
        write_parquet_atomic(frame.with_columns(raw.alias("raw")), part)


def _refused(
    entry: LandingFile,
    refused: Refused,
    contract: Contract,
    before: set[tuple[str, str]],
    key: PiiKey,
) -> FileResult:
    """The ledger row of an entry refused unread (no content hash: nothing was read), or
    `skipped` (`already_refused`) when the ledger already holds that refusal (its file
    name as the ledger keeps it, pseudonymised under `key`)."""
    rel = redact_text(refused.rel or entry.rel, key)
    first = (rel, refused.reason) not in before
    before.add((rel, refused.reason))
    return FileResult(
        file=rel,
        system=contract.system,
        table=contract.table,
        sha256=None,
        status="rejected" if first else "skipped",
        reason=refused.reason if first else "already_refused",
        message=_cut(str(refused)),
    )


def raw_excerpt(text: str, key: PiiKey, limit: int = EXCERPT_CHARS) -> str:
    """At most `limit` characters of a raw line, for the quarantine: control characters
    dropped, phone numbers redacted (`pii.redact_text` under `key`), and, when cut, a
    trailing number dropped (it could be part of one the redaction no longer recognises)
    and `…` appended."""
    window = text[: limit * 4]  # bounded work on a huge line
    if len(window) < len(text):
        window = _NUMBER_TAIL.sub("", window)
    shown = redact_text(_CONTROL.sub("", window), key)
    if len(shown) <= limit and len(window) == len(text):
        return shown
    return _NUMBER_TAIL.sub("", shown[: limit - 1]) + "…"


def _cut(text: str, limit: int = MESSAGE_CHARS) -> str:
    """`text` cut to `limit` characters (a trailing number dropped, `…` appended) when longer."""
    return text if len(text) <= limit else _NUMBER_TAIL.sub("", text[: limit - 1]) + "…"


def _capped(column: str, limit: int = MESSAGE_CHARS) -> pl.Expr:
    """A text column cut to `limit` characters, ending in `…` when cut."""
    text = pl.col(column)
    return (
        pl.when(text.str.len_chars() > limit)
        .then(text.str.slice(0, limit - 1).str.replace(_NUMBER_TAIL.pattern, "") + "…")
        .otherwise(text)
        .alias(column)
    )


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
    verify_key(settings)
    if not contract.event_date or not days:
        return TableResult(table=contract.key, files=[])
    ledger = read_ledger(settings, contract)
    # the ledger knows which days each file fed, even when those parts are gone
    fed = ledger.filter(
        pl.col("status").is_in(["loaded", "partial"])
        & (pl.col("first_event_date") <= max(days))
        & (pl.col("last_event_date") >= min(days))
    )
    results = []
    rows = _RowsNote()
    with track(f"re-ingest {contract.key}", total=fed.height, unit="files") as task:
        for row in fed.iter_rows(named=True):
            result = redact_result(_reingest_file(row, contract, settings), settings.pii_keys)
            results.append(result)
            rows.advance(task, result, result.file)
    redone = {r.sha256 for r in results if r.status != "kept"}
    if redone:
        kept = ledger.filter(~pl.col("sha256").is_in(sorted(redone)))
        write_ledger(settings, contract, kept, [r for r in results if r.status != "kept"])
    return TableResult(table=contract.key, files=results)


def _reingest_file(row: dict, contract: Contract, settings: Settings) -> FileResult:
    """Load one ledger row's file again, replacing its parts; `kept` if its source is gone."""
    found = find_landing_file(settings.landing, row["file"], settings.pii_keys)
    rel = str(found.relative_to(settings.landing)) if found else row["file"]
    path = settings.landing / rel
    why, data = "", b""
    try:
        data = read_landing(settings.landing, LandingFile(rel=rel), contract)
    except Refused as refused:
        why = refused.reason
    except (FileNotFoundError, NotSettled):
        why = "source_missing"
    if not why and hashlib.sha256(data).hexdigest() != row["sha256"]:
        why = "source_changed"
    if why:
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
    """Read, validate and write one landing file: lake parts, quarantined rows, its result
    (named by `rel` with any phone or identity number in it pseudonymised)."""
    started = time.perf_counter()
    rel = redact_text(rel, settings.pii_keys)
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
            message=_cut(str(error)),
            duration_s=time.perf_counter() - started,
        )

    loaded, quarantined = validate(pseudonymise(raw.frame, contract, settings.pii_keys), contract)
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
            (pl.lit(f"{rel}: ") + pl.col("message")).alias("message")
        )
        quarantined = pl.concat([rejected, quarantined]).sort("_source_row")
    if quarantined.height:
        kept = redact_frame(quarantined, settings.pii_keys, ["message"]).with_columns(
            _capped("message"),
            pl.col("raw").map_elements(
                lambda line: raw_excerpt(line, settings.pii_keys), return_dtype=pl.String
            ),
            *lineage,
        )
        write_parquet_atomic(kept, quarantine_dir(settings.lake, contract) / part)
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
    day), or one part for a table without event dates (returns {}).

    The day parts are written by one partitioned sink (polars encodes them in parallel) to
    hidden temporary names, then each is renamed into place: a part is whole or absent."""
    out_dir = table_dir(settings.lake, contract)
    if not contract.event_date:
        if loaded.height:
            write_parquet_atomic(loaded, out_dir / part)
        return {}
    if not loaded.height:
        return {}
    key = contract.event_date
    days = {str(day): rows for day, rows in loaded.group_by(key).len().iter_rows()}
    written: list[tuple[Path, Path]] = []

    def temporary(args: pl.io.partition.FileProviderArgs) -> Path:
        final = out_dir / f"{key}={args.partition_keys[key][0]}" / part
        written.append((final.with_name(f".{part}.tmp"), final))
        return written[-1][0]

    loaded.lazy().sink_parquet(
        pl.PartitionBy(out_dir, key=key, include_key=True, file_path_provider=temporary),
        mkdir=True,
    )
    for tmp, final in written:
        os.replace(tmp, final)
    return dict(sorted(days.items()))


def _quarantine_unreadable(
    data: bytes,
    error: UnreadableFile,
    lineage: list[pl.Expr],
    part: str,
    contract: Contract,
    settings: Settings,
) -> int:
    """Quarantine every data line of a file (its bytes, as hashed) that could not be parsed,
    one row per line so the ledger balances, keeping only the first line's excerpt
    (`raw_excerpt`): never the file's content; returns their count."""
    lines = _data_lines(data, contract)
    first_row = 1 + (contract.format == "csv")  # a CSV's row 1 is its header
    raw = [raw_excerpt(lines[0], settings.pii_keys)] if lines else []
    quarantined = pl.DataFrame(
        {
            "_source_row": list(range(first_row, len(lines) + first_row)),
            "reason": [error.reason] * len(lines),
            "message": [_cut(redact_text(str(error), settings.pii_keys))] * len(lines),
            "raw": raw + [None] * (len(lines) - len(raw)),
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
