"""Erasure across the platform: the lake step (`ingest.erasure`), then the warehouse files,
the planner export sets and, once the run has ended, the run logs.

The identifiers being erased are kept, until the run logs are scrubbed, in
`<BCLAKE_HOME>/.bclake/erasure_pending.json` (folder 0700, file 0600): written as soon as the
lake step has found the people, before anything is removed, so a run that fails halfway is
finished by the next one (the people may no longer be in the lake to be found again).
`finish` deletes the file only after a `carry_out` that completed.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import polars as pl

from bclake.core.contracts import Contract
from bclake.core.scrub import scrub_tree
from bclake.core.settings import Settings
from bclake.core.warehouse import compact, erase_rows
from bclake.exports.versions import versions_dir
from bclake.ingest.erasure import (
    RECEIPT_SCHEMA,
    REQUESTS,
    Person,
    erase_lake,
    erased_people,
    read_subjects,
    record_receipts,
    take_requests,
)

PENDING = "erasure_pending.json"


@dataclass(frozen=True)
class Outcome:
    """What one run's erasure step did."""

    requests_new: int  # requests taken from the lake this run
    people: int  # people erased this run (found in the lake, or left by a failed run)
    receipts: pl.DataFrame  # `RECEIPT_SCHEMA`, this run's


def _pending_path(settings: Settings) -> Path:
    return settings.private_dir / PENDING


def _read_pending(settings: Settings) -> dict:
    path = _pending_path(settings)
    return json.loads(path.read_text()) if path.exists() else {"people": {}, "complete": True}


def _write_pending(settings: Settings, pending: dict) -> None:
    folder = settings.private_dir
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(folder, 0o700)
    tmp = folder / f".{PENDING}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        json.dump(pending, out)
    os.replace(tmp, _pending_path(settings))


def carry_out(settings: Settings, contracts: dict[str, Contract]) -> Outcome:
    """Take new requests, erase everyone listed from the lake, then from the working and
    published warehouse and the planner export sets; the run logs wait for `finish`.

    Raises `core.scrub.ScrubError` for an export file holding an identifier that cannot be
    rewritten (it names the file), duckdb errors for a warehouse file that cannot be
    rewritten; the pending identifiers stay, and the next run carries the erasure on."""
    now = datetime.now(UTC)
    taken = take_requests(settings, contracts[REQUESTS]) if REQUESTS in contracts else None
    found = erased_people(settings, contracts.values(), read_subjects(settings))
    pending = _read_pending(settings)
    for person in found:
        known = set(pending["people"].get(person.request_id, []))
        pending["people"][person.request_id] = sorted(known | person.needles)
    people = _people(pending)
    n_new = 0 if taken is None else taken["request_id"].n_unique()
    receipts: list[dict] = []
    if taken is not None:
        nowhere = set(taken["request_id"]) - {p.request_id for p in people}
        receipts += [{"request_id": r, "place": "found nowhere", "rows": 0} for r in nowhere]
    if not people:
        return Outcome(n_new, 0, record_receipts(settings, receipts, now))
    pending["complete"] = False
    _write_pending(settings, pending)

    receipts += erase_lake(settings, contracts.values(), people)
    for db in (settings.build_db, settings.published_db):
        if db.exists():
            receipts += _erase_warehouse(db, people)
    exports = versions_dir(settings.exports)
    changed = scrub_tree(exports, _needles(people), rows=True) if exports.exists() else []
    receipts += _files_receipts(people, "exports", changed)
    written = record_receipts(settings, receipts, now)
    pending["complete"] = True
    _write_pending(settings, pending)
    return Outcome(n_new, len(people), written)


def _people(pending: dict) -> list[Person]:
    """The pending people, their identifiers (ids and phones alike) as one set."""
    return [Person(r, frozenset(n), frozenset()) for r, n in pending["people"].items()]


def _files_receipts(people: list[Person], place: str, changed: list) -> list[dict]:
    """One receipt per person for files rewritten in one walk for all of them (none when
    no file changed)."""
    return [
        {"request_id": p.request_id, "place": place, "rows": len(changed)}
        for p in people
        if changed
    ]


def _none() -> pl.DataFrame:
    return pl.DataFrame(schema=RECEIPT_SCHEMA)


def _needles(people: list[Person]) -> frozenset[str]:
    return frozenset().union(*(p.needles for p in people))


def _erase_warehouse(db: Path, people: list[Person]) -> list[dict]:
    """Delete the people's rows from the DuckDB file `db` (`core.warehouse.erase_rows`, one
    pass per person for the receipts) and rewrite it into a fresh file. The published file
    is worked on as a copy renamed into place: readers may hold it open (read-only), and
    keep their old copy until they reopen. Returns receipt rows."""
    published = db.name.startswith("published")
    target = db.with_name(f".{db.name}.erase") if published else db
    if published:
        shutil.copyfile(db, target)
    try:
        receipts: list[dict] = []
        con = duckdb.connect(str(target))
        try:
            for person in people:
                for table, n in erase_rows(con, person.needles).items():
                    place = f"warehouse {db.stem}: {table}"
                    receipts.append({"request_id": person.request_id, "place": place, "rows": n})
        finally:
            con.close()
        if receipts:
            compact(target)
            if published:
                os.replace(target, db)
        return receipts
    finally:
        if published:
            target.unlink(missing_ok=True)


def finish(settings: Settings, dagster_home: Path) -> pl.DataFrame:
    """After a run: scrub the pending identifiers from every file under `dagster_home` (the
    run's own logs included), record receipts and forget the identifiers, when the run's
    `carry_out` completed; otherwise leave them for the next run. Returns the receipts
    written. Raises `core.scrub.ScrubError` for a log file that cannot be rewritten."""
    pending = _read_pending(settings)
    if not pending["people"] or not pending["complete"]:
        return _none()
    people = _people(pending)
    changed = scrub_tree(dagster_home, _needles(people)) if dagster_home.exists() else []
    rows = _files_receipts(people, "run logs", changed)
    written = record_receipts(settings, rows, datetime.now(UTC))
    _pending_path(settings).unlink()
    return written
