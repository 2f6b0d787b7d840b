"""Retention (PIPL art. 19: personal information kept no longer than its purpose needs):
consumer-level detail older than `BCLAKE_RETENTION_MONTHS` (default 36) leaves the lake at
every run, while the rows that aggregates count stay.

The period is counted on the *data clock*: the cutoff is the first day of the month
`retention_months` before the newest event date of the tables naming consumers (`cutoff`;
planned rows such as promotions dated ahead do not count), which is a live
brand's today and a replayed history's last day, so a replay ages its own data and a
pipeline that stops for a month cuts nothing meanwhile. Rows dated before the cutoff are
treated per table (`expire`):

- event tables (every contract with an event date and a `subject` column but the ones
  below: scans, coupons, campaign members, interactions, referrals): a row whose subject
  columns may all be null (scans) keeps its row and loses its person: subject and `pii`
  columns and `_extra` (source columns the contract does not know) set to null, so counts
  and sums still add up (*anonymised*); a row with a required subject column (a coupon
  is issued to someone) is deleted (*dropped*);
- profiles (`PROFILES`: `cdp.consumers`, `cdp.group_members`): dated by registration or
  joining, they are the consumer's standing relation, not old events. A consumer is
  *dormant* when they registered before the cutoff and no event-table row on or after it
  names them (group joins included); a dormant consumer's profile rows and their
  memberships from before the cutoff are dropped. An active consumer keeps both;
- quarantined rows of those tables go with their file when the file is old: its newest
  loaded event date (ledger) is before the cutoff or, with none, it was ingested before;
- parts set aside in `lake/_orphans/` the same way (no ledger row to move).

Only the Parquet parts holding such rows are rewritten (parts are per day, so mostly whole
old parts), each atomically; an emptied part is deleted. Dropped rows move in the ledger
from loaded (or quarantined) to `rows_erased` (`ingest.erasure._move_ledger`): the column
counts rows removed under the privacy rules, by a request or by this period, and
`rows_in = rows_loaded + rows_quarantined + rows_erased` still holds per file.

Receipts go with the erasure receipts (`RECEIPT_SCHEMA`), request id `retention <cutoff>`,
one place per table and treatment. A second run with the same cutoff finds nothing and
writes no receipt. The planner export sets are aged by `orchestration.retention`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

import polars as pl

from bclake.core.contracts import Contract
from bclake.core.settings import Settings
from bclake.ingest.erasure import (
    CONSUMERS,
    RECEIPT_SCHEMA,
    REQUESTS,
    _move_ledger,
    _parts,
    record_receipts,
)
from bclake.ingest.ledger import read_ledger
from bclake.ingest.paths import quarantine_dir, table_dir, write_parquet_atomic

# dated by the start of a standing relation: kept while the consumer is active
PROFILES = (CONSUMERS, "cdp.group_members")
ORPHANS = "_orphans"  # lake/_orphans/ (`ingest.loader.ORPHANS`)
EXTRA = "_extra"  # the source columns a contract does not know, as JSON text
RECEIPT_PREFIX = "retention "


@dataclass(frozen=True)
class Expiry:
    """What one run's retention step did."""

    cutoff: date | None  # first day kept whole; None: retention off or an empty lake
    anonymised: int  # rows that lost their person, kept
    dropped: int  # rows deleted (lake, quarantine and set-aside rows; dormant profiles too)
    dormant: int  # distinct consumers whose profile was dropped
    receipts: pl.DataFrame  # `RECEIPT_SCHEMA`, this run's


def months_back(day: date, months: int) -> date:
    """The first day of the month `months` before `day`'s month: (2026-11-30, 36) ->
    2023-11-01. Raises ValueError for a negative `months`."""
    if months < 0:
        raise ValueError(f"months must be >= 0, not {months}")
    index = day.year * 12 + day.month - 1 - months
    return date(index // 12, index % 12 + 1, 1)


def _day_of(folder: Path, column: str) -> date | None:
    """The day of a partition folder `<column>=YYYY-MM-DD`; None for any other folder."""
    prefix = f"{column}="
    if not folder.name.startswith(prefix):
        return None
    try:
        return date.fromisoformat(folder.name.removeprefix(prefix))
    except ValueError:
        return None


def _day_folders(root: Path, column: str) -> list[tuple[date, Path]]:
    """The partition folders of one table under `root`, with their day, oldest first."""
    if not root.is_dir():
        return []
    found = [(_day_of(d, column), d) for d in root.iterdir() if d.is_dir()]
    return sorted((day, d) for day, d in found if day is not None)


def newest_event_date(settings: Settings, contracts: Iterable[Contract]) -> date | None:
    """The newest event date in the lake's tables that name consumers (`_subject_tables`:
    scans, coupons, interactions...: things that happened, where a planning table such as
    promotions may be dated months ahead): the newest partition folder holding a part
    (names only, no file is read); None when there is none."""
    newest: date | None = None
    for contract in _subject_tables(contracts):
        folders = _day_folders(table_dir(settings.lake, contract), contract.event_date)
        for day, folder in reversed(folders):
            if newest is not None and day <= newest:
                break
            if next(folder.glob("part-*.parquet"), None) is not None:
                newest = day
                break
    return newest


def cutoff(settings: Settings, contracts: Iterable[Contract]) -> date | None:
    """The first day whose consumer-level detail is kept: `months_back(newest event date,
    retention_months)`; None when retention is off (0 months) or the lake holds no dated
    row."""
    if settings.retention_months <= 0:
        return None
    newest = newest_event_date(settings, contracts)
    return None if newest is None else months_back(newest, settings.retention_months)


def _personal(contract: Contract) -> list[str]:
    """The columns that name or describe a person: subject and PII columns, and `_extra`."""
    own = [c.name for c in contract.all_columns if c.subject or c.pii]
    return [*own, EXTRA]


def _drops(contract: Contract) -> bool:
    """Whether an old row of an event table is dropped (a subject column is required)
    rather than anonymised."""
    return any(c.subject and not c.nullable for c in contract.all_columns)


def _subject_tables(contracts: Iterable[Contract]) -> list[Contract]:
    """The dated tables that name consumers, the erasure requests left out."""
    return [
        c
        for c in contracts
        if c.event_date and c.key != REQUESTS and any(col.subject for col in c.all_columns)
    ]


def _parts_in(folders: Iterable[Path]) -> list[Path]:
    return [p for folder in folders for p in _parts(folder)]


def _holding(parts: list[Path], columns: list[str]) -> list[Path]:
    """The parts with a non-null value in any of `columns` (one scan, those columns only)."""
    if not parts:
        return []
    try:
        found = (
            pl.scan_parquet(parts, include_file_paths="_part", missing_columns="insert")
            .select(*columns, "_part")
            .filter(pl.any_horizontal([pl.col(c).is_not_null() for c in columns]))
            .select(pl.col("_part").unique())
            .collect()
        )
    except (pl.exceptions.SchemaError, pl.exceptions.ColumnNotFoundError):
        return parts  # parts of differing layouts: each is read on its own
    return sorted(Path(p) for p in found["_part"])


def _count(gone: pl.DataFrame, per_file: dict[tuple[str, str], int]) -> None:
    """Add the rows of `gone` to `per_file`, keyed by (source file, its sha256)."""
    if {"_source_file", "_file_sha256"} <= set(gone.columns):
        for file, sha, n in gone.group_by("_source_file", "_file_sha256").len().iter_rows():
            if file is not None and sha is not None:
                per_file[file, sha] = per_file.get((file, sha), 0) + n


def _rewrite(part: Path, rows: pl.DataFrame, gone: pl.Series) -> None:
    """Write `rows` without the rows `gone` marks back to `part` atomically (deleted when
    none is left)."""
    kept = rows.filter(~gone)
    if kept.is_empty():
        part.unlink()
    else:
        write_parquet_atomic(kept, part)


def _retain_part(
    part: Path,
    contract: Contract,
    cut: date,
    drop: bool,
    per_file: dict[tuple[str, str], int],
) -> tuple[int, int]:
    """Anonymise (or, with `drop`, delete) the rows of `part` dated before `cut` that
    hold personal values; returns (rows anonymised, rows dropped). Dropped rows are
    counted in `per_file`."""
    rows = pl.read_parquet(part)
    if contract.event_date not in rows.columns:
        return 0, 0
    personal = [c for c in _personal(contract) if c in rows.columns]
    old = rows.select((pl.col(contract.event_date) < cut).fill_null(False)).to_series()
    if drop:
        if not old.any():
            return 0, 0
        _count(rows.filter(old), per_file)
        _rewrite(part, rows, old)
        return 0, int(old.sum())
    if not personal:
        return 0, 0
    held = rows.select(
        pl.any_horizontal([pl.col(c).is_not_null() for c in personal]).fill_null(False)
    ).to_series()
    hit = old & held
    if not hit.any():
        return 0, 0
    blank = rows.with_columns(_hit=hit).with_columns(
        [pl.when(pl.col("_hit")).then(None).otherwise(pl.col(c)).alias(c) for c in personal]
    )
    write_parquet_atomic(blank.drop("_hit"), part)
    return int(hit.sum()), 0


def _old_quarantine(settings: Settings, contract: Contract, folder: Path, cut: date) -> list[Path]:
    """The quarantine parts under `folder` whose file is older than `cut`: its newest
    loaded event date in the ledger is before it or, with none, its rows were ingested
    before it."""
    parts = _parts(folder)
    if not parts:
        return []
    ledger = read_ledger(settings, contract).filter(pl.col("sha256").is_not_null())
    newest = {
        sha[:16]: last
        for sha, last in ledger.group_by("sha256").agg(pl.col("last_event_date").max()).iter_rows()
    }
    old = []
    for part in parts:
        last = newest.get(part.stem.removeprefix("part-"))
        if last is not None:
            if date.fromisoformat(last) < cut:
                old.append(part)
            continue
        ingested = (
            pl.scan_parquet(part).select(pl.col("_ingested_at").max()).collect().item()
            if "_ingested_at" in pl.read_parquet_schema(part)
            else None
        )
        if ingested is not None and ingested.date() < cut:
            old.append(part)
    return old


def _active(settings: Settings, events: list[Contract], cut: date) -> set[str]:
    """Every consumer id a row of `events` (the event tables and group memberships) dated
    on or after `cut` names (subject columns that are not PII, i.e. not phone pseudonyms)."""
    frames = []
    for contract in events:
        ids = [c.name for c in contract.all_columns if c.subject and not c.pii]
        root = table_dir(settings.lake, contract)
        folders = [d for day, d in _day_folders(root, contract.event_date or "") if day >= cut]
        parts = _parts_in(folders)
        if ids and parts:
            frame = pl.scan_parquet(parts, missing_columns="insert")
            frames += [frame.select(pl.col(c).alias("id")).unique() for c in ids]
    if not frames:
        return set()
    return set(pl.concat(frames).unique().drop_nulls().collect()["id"])


def _dormant_part(
    part: Path, active: set[str], per_file: dict[tuple[str, str], int]
) -> tuple[int, set[str]]:
    """Drop the rows of a profile part whose consumer is not `active`; returns (rows
    dropped, their consumer ids)."""
    ids = pl.read_parquet(part, columns=["consumer_id"])["consumer_id"]
    gone = ids.is_not_null() & ~ids.is_in(list(active))
    if not gone.any():
        return 0, set()
    rows = pl.read_parquet(part)
    _count(rows.filter(gone), per_file)
    _rewrite(part, rows, gone)
    return int(gone.sum()), set(ids.filter(gone))


def _lake_rows(
    settings: Settings,
    contract: Contract,
    cut: date,
    active: Callable[[], set[str]],
    loaded: dict[tuple[str, str], int],
) -> tuple[int, int, set[str]]:
    """The table's lake parts dated before `cut`: an event table's rows anonymised or
    dropped, a profile's dormant rows dropped. Returns (rows anonymised, rows dropped,
    dormant consumer ids); dropped rows are counted in `loaded`."""
    root = table_dir(settings.lake, contract)
    old = [d for day, d in _day_folders(root, contract.event_date or "") if day < cut]
    if contract.key in PROFILES:
        dropped, ids = 0, set()
        parts = _parts_in(old)
        kept = active() if parts else set()
        for part in parts:
            n, gone = _dormant_part(part, kept, loaded)
            dropped, ids = dropped + n, ids | gone
        return 0, dropped, ids if contract.key == CONSUMERS else set()
    drop = _drops(contract)
    parts = _parts_in(old) if drop else _holding(_parts_in(old), _personal(contract))
    anonymised = dropped = 0
    for part in parts:
        a, d = _retain_part(part, contract, cut, drop, loaded)
        anonymised, dropped = anonymised + a, dropped + d
    return anonymised, dropped, set()


def _quarantined_rows(
    settings: Settings,
    contract: Contract,
    folder: Path,
    cut: date,
    per_file: dict[tuple[str, str], int],
) -> int:
    """Delete the quarantine parts under `folder` older than `cut` (`_old_quarantine`);
    returns their rows, counted in `per_file`."""
    n = 0
    for part in _old_quarantine(settings, contract, folder, cut):
        rows = pl.read_parquet(part)
        _count(rows, per_file)
        n += rows.height
        part.unlink()
    return n


def _orphan_rows(settings: Settings, contract: Contract, cut: date) -> tuple[int, int]:
    """The table's parts set aside in `lake/_orphans/`: lake rows dated before `cut`
    anonymised or dropped like the lake's (a profile's dropped), old quarantine parts
    deleted; no ledger row accounts for them. Returns (rows anonymised, rows dropped)."""
    anonymised = dropped = 0
    drop = _drops(contract) or contract.key in PROFILES
    root = table_dir(settings.lake / ORPHANS, contract)
    for _, folder in _day_folders(root, contract.event_date or ""):
        for part in _parts(folder):
            a, d = _retain_part(part, contract, cut, drop, {})
            anonymised, dropped = anonymised + a, dropped + d
    quarantine = table_dir(settings.lake / ORPHANS / "_quarantine", contract)
    dropped += _quarantined_rows(settings, contract, quarantine, cut, {})
    return anonymised, dropped


def expire(settings: Settings, contracts: Iterable[Contract]) -> Expiry:
    """Apply the retention period to the lake, its quarantine and its set-aside parts,
    move the ledger's counts and record receipts (module docstring). Returns what was done;
    nothing at all when `retention_months` is 0 or the lake holds no dated row."""
    contracts = list(contracts)
    if settings.retention_months <= 0:
        return Expiry(None, 0, 0, 0, pl.DataFrame(schema=RECEIPT_SCHEMA))
    now = datetime.now(UTC)
    cut = cutoff(settings, contracts)
    receipts: list[dict] = []
    anonymised = dropped = 0
    dormant: set[str] = set()
    if cut is not None:
        request = f"{RECEIPT_PREFIX}{cut.isoformat()}"
        tables = _subject_tables(contracts)
        active_ids: list[set[str]] = []  # computed once, when a profile needs it

        def active() -> set[str]:
            if not active_ids:
                events = [c for c in tables if c.key != CONSUMERS]
                active_ids.append(_active(settings, events, cut))
            return active_ids[0]

        for contract in tables:
            place = f"{contract.system}/{contract.table}"
            loaded: dict[tuple[str, str], int] = {}
            quarantined: dict[tuple[str, str], int] = {}
            a, d, ids = _lake_rows(settings, contract, cut, active, loaded)
            q = _quarantined_rows(
                settings, contract, quarantine_dir(settings.lake, contract), cut, quarantined
            )
            oa, od = _orphan_rows(settings, contract, cut)
            _move_ledger(settings, contract, loaded, quarantined)
            dropped_as = "dropped (dormant)" if contract.key in PROFILES else "dropped"
            receipts += [
                {"request_id": request, "place": f"lake/{place}: anonymised", "rows": a},
                {"request_id": request, "place": f"lake/{place}: {dropped_as}", "rows": d},
                {"request_id": request, "place": f"quarantine/{place}: dropped", "rows": q},
                {"request_id": request, "place": f"lake/_orphans/{place}", "rows": oa + od},
            ]
            anonymised, dropped, dormant = anonymised + a + oa, dropped + d + q + od, dormant | ids
    written = record_receipts(settings, [r for r in receipts if r["rows"]], now)
    return Expiry(cut, anonymised, dropped, len(dormant), written)
