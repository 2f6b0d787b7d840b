"""Erasure (删除权, PIPL art. 47): every row about a person who asked to be forgotten leaves the
lake, and the ledger says so.

Requests are a source like any other (`contracts/cdp/erasure_requests.yaml`, written by the CDP
or by `bclake erase`): ingest loads them with both identifiers pseudonymised. Each run then

1. takes the new requests: each identifier's pseudonym is kept *sealed* (encrypted under
   the PII key, `core.pii.seal`) in `lake/_erasure/subjects.parquet`, and the request rows
   lose their identifiers; the list is what keeps the person out of later exports of the
   same sources. Sealed, it names nobody without the key, and `bclake rotate-pii-key` can
   move it to a new key (a one-way hash of the pseudonym could not follow);
2. finds the people the list names (`erased_people`): every consumer id in a `subject`
   column whose pseudonym is listed, every phone pseudonym likewise, and each
   consumer's phone (and each phone's consumers) from `cdp.consumers`;
3. rewrites only the Parquet parts that hold them (`erase_lake`): rows whose subject column
   names them, quarantined and set-aside rows whose text does; each part atomically, an
   emptied part deleted. The ledger moves those rows from loaded (or quarantined) to
   `rows_erased`, so `rows_in = rows_loaded + rows_quarantined + rows_erased` per file
   still holds, and a file ingested again has its rows erased again, not loaded.

The warehouse, the planner exports and the run logs are cleared from the same identifiers
(`core.warehouse.erase_rows`, `core.scrub`); `Receipt` rows record what was removed where,
per request, with counts and no identifier. The landing files are the sources' own copies:
bclake never deletes them; the brand deletes them at the source.
"""

from __future__ import annotations

import csv
import io
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import polars as pl

from bclake.core.contracts import Contract
from bclake.core.pii import pseudonymiser, seal, unseal
from bclake.core.settings import Settings
from bclake.core.warehouse import word_pattern
from bclake.ingest.ledger import ledger_path, read_ledger
from bclake.ingest.paths import quarantine_dir, table_dir, write_parquet_atomic

REQUESTS = "cdp.erasure_requests"
ERASURE_DIR = "_erasure"  # lake/_erasure/: the erasure list and the receipts
CONSUMERS = "cdp.consumers"
REQUEST_FOLDER = "cdp/erasure_requests/"  # under landing/
OWN_REQUEST = re.compile(r"ER\d{14}[0-9a-f]{6}\.csv")  # the files `write_request` names
SUBJECTS_SCHEMA = {
    "sealed": pl.String,  # the identifier's pseudonym, `core.pii.seal`ed under the PII key
    "kind": pl.String,  # consumer_id or phone
    "request_id": pl.String,
    "requested_at": pl.Datetime("us", "UTC"),
    "reason": pl.String,
    "received_at": pl.Datetime("us", "UTC"),
}
RECEIPT_SCHEMA = {
    "request_id": pl.String,
    "erased_at": pl.Datetime("us", "UTC"),
    "place": pl.String,  # lake/<system>/<table>, quarantine/..., warehouse, exports, run logs
    "rows": pl.Int64,  # rows removed, or files rewritten for exports and run logs
}


def listed(settings: Settings, subjects: pl.DataFrame) -> list[tuple[str, str]]:
    """The (kind, pseudonym) each row of the erasure list `subjects` names, unsealed in
    memory under the PII key. Raises RuntimeError for a list from before sealing (its one-way
    tokens cannot be matched any more: carry out those requests again)."""
    if "sealed" not in subjects.columns:
        raise RuntimeError(
            f"{subjects_path(settings)} holds one-way tokens of an earlier bclake: write the "
            "requests it lists again (`bclake erase`), then delete it"
        )
    return [
        (kind, unseal(value, settings.pii_key))
        for value, kind in zip(subjects["sealed"], subjects["kind"], strict=True)
    ]


def subjects_path(settings: Settings) -> Path:
    return settings.lake / ERASURE_DIR / "subjects.parquet"


def receipts_path(settings: Settings) -> Path:
    return settings.lake / ERASURE_DIR / "receipts.parquet"


def read_subjects(settings: Settings) -> pl.DataFrame:
    """The sealed pseudonyms of everyone erased so far (`SUBJECTS_SCHEMA`)."""
    path = subjects_path(settings)
    return pl.read_parquet(path) if path.exists() else pl.DataFrame(schema=SUBJECTS_SCHEMA)


def read_receipts(settings: Settings) -> pl.DataFrame:
    """Every erasure receipt so far (`RECEIPT_SCHEMA`): no identifier, counts only."""
    path = receipts_path(settings)
    return pl.read_parquet(path) if path.exists() else pl.DataFrame(schema=RECEIPT_SCHEMA)


def _parts(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("part-*.parquet") if p.is_file())


def take_requests(settings: Settings, contract: Contract) -> pl.DataFrame:
    """New requests' identifiers appended, sealed, to the erasure list, then blanked in
    the request rows of the lake, then the request files `bclake erase` wrote deleted from
    landing (they hold the identifiers in clear; a source's own files are the source's).
    Returns the new list rows (`SUBJECTS_SCHEMA`). Safe to repeat after a crash: the list
    is written before anything is blanked."""
    now = datetime.now(UTC)
    new: list[pl.DataFrame] = []
    held_parts: list[tuple[Path, pl.DataFrame]] = []
    for part in _parts(table_dir(settings.lake, contract)):
        rows = pl.read_parquet(part)
        held = rows.filter(pl.col("consumer_id").is_not_null() | pl.col("phone").is_not_null())
        if held.is_empty():
            continue
        held_parts.append((part, rows))
        for kind in ("consumer_id", "phone"):
            named = held.filter(pl.col(kind).is_not_null())
            new.append(
                pl.DataFrame(
                    {
                        "sealed": [seal(v, settings.pii_key) for v in named[kind]],
                        "kind": kind,
                        "request_id": named["request_id"],
                        "requested_at": _utc(named["requested_at"], contract.timezone),
                        "reason": named["reason"],
                        "received_at": now,
                    },
                    schema=SUBJECTS_SCHEMA,
                )
            )
    taken = pl.concat(new) if new else pl.DataFrame(schema=SUBJECTS_SCHEMA)
    if taken.is_empty():
        return taken
    subjects = pl.concat([read_subjects(settings), taken])
    names = pl.Series([name for _, name in listed(settings, subjects)], dtype=pl.String)
    subjects = (
        subjects.with_columns(_name=names)
        .unique(["_name", "kind", "request_id"], keep="first", maintain_order=True)
        .drop("_name")
    )
    write_parquet_atomic(subjects, subjects_path(settings))
    blank = pl.lit(None, pl.String)
    for part, rows in held_parts:
        write_parquet_atomic(rows.with_columns(consumer_id=blank, phone=blank), part)
        for file in rows["_source_file"].unique().drop_nulls():
            if OWN_REQUEST.fullmatch(Path(file).name) and file.startswith(REQUEST_FOLDER):
                (settings.landing / file).unlink(missing_ok=True)
    return taken


def _utc(times: pl.Series, zone: str) -> pl.Series:
    """Timestamps as UTC instants; a naive lake timestamp is the contract's local time."""
    dtype = times.dtype
    if not (isinstance(dtype, pl.Datetime) and dtype.time_zone is not None):
        times = times.cast(pl.Datetime("us")).dt.replace_time_zone(zone)
    return times.dt.convert_time_zone("UTC").dt.cast_time_unit("us")


@dataclass(frozen=True)
class Person:
    """One request's erased identifiers as the lake holds them: consumer ids (clear) and
    phone pseudonyms."""

    request_id: str
    consumer_ids: frozenset[str]
    phones: frozenset[str]

    @property
    def needles(self) -> frozenset[str]:
        return self.consumer_ids | self.phones


def erased_people(
    settings: Settings, contracts: Iterable[Contract], subjects: pl.DataFrame
) -> list[Person]:
    """The people the erasure list names, one per request that finds anyone in the lake now
    (a request that names someone an earlier request named finds them too).

    Reads the subject columns of every lake part (those columns only) and hashes each
    distinct value once, over all tables. A consumer id brings the phones it registered
    with, and a phone the consumer ids registered with it, until nothing new comes: under
    real-name mobile registration one phone is one person, and ids sharing it are that
    person's accounts."""
    if subjects.is_empty():
        return []
    requests: dict[tuple[str, str], list[str]] = {}
    for named, request in zip(listed(settings, subjects), subjects["request_id"], strict=True):
        requests.setdefault(named, []).append(request)
    hashed = pseudonymiser(settings.pii_keys)
    values, link = _subject_values(settings, contracts)
    found: dict[str, tuple[set[str], set[str]]] = {}  # request -> (consumer ids, phones)
    for is_pii, column in values.items():
        # a PII column holds the pseudonym already; an id column is hashed here
        kind = "phone" if is_pii else "consumer_id"
        for value in column:
            for request in requests.get((kind, value if is_pii else hashed(value)), ()):
                found.setdefault(request, (set(), set()))[is_pii].add(value)
    people = []
    for request, (cids, phones) in found.items():
        while not link.is_empty():
            more_phones = set(link.filter(pl.col("consumer_id").is_in(list(cids)))["phone"])
            more_ids = set(
                link.filter(pl.col("phone").is_in(list(phones | more_phones)))["consumer_id"]
            )
            if more_phones <= phones and more_ids <= cids:
                break
            phones |= more_phones
            cids |= more_ids
        people.append(Person(request, frozenset(cids), frozenset(phones)))
    return people


def _subject_values(
    settings: Settings, contracts: Iterable[Contract]
) -> tuple[dict[bool, pl.Series], pl.DataFrame]:
    """The distinct values of the lake's subject columns, id columns (False) and PII
    columns (True) apart, and the consumer id -> phone pseudonym pairs of `cdp.consumers`."""
    columns: dict[bool, list[pl.LazyFrame]] = {False: [], True: []}
    link = pl.DataFrame(schema={"consumer_id": pl.String, "phone": pl.String})
    for contract in contracts:
        subject = [c for c in contract.all_columns if c.subject]
        parts = _parts(table_dir(settings.lake, contract))
        if contract.key == REQUESTS or not subject or not parts:
            continue
        frame = pl.scan_parquet(parts, missing_columns="insert")
        if contract.key == CONSUMERS:
            link = frame.select("consumer_id", "phone").unique().drop_nulls().collect()
        for col in subject:
            columns[col.pii].append(frame.select(pl.col(col.name).alias("value")).unique())
    values = {
        pii: pl.concat(frames).unique().drop_nulls().collect()["value"]
        if frames
        else pl.Series("value", [], pl.String)
        for pii, frames in columns.items()
    }
    return values, link


def erase_lake(
    settings: Settings, contracts: Iterable[Contract], people: list[Person]
) -> list[dict]:
    """Remove the people's rows from the lake, the quarantine and the set-aside parts,
    rewriting only the parts that hold them, and move the counts in the ledger.

    A lake row goes when a `subject` column names a person, or when the columns a contract
    does not know (`_extra`, free text from the source) hold one of their identifiers as a
    word; a quarantined or set-aside row when its text does. Other id columns are not
    searched: a coupon id could be spelled like a consumer id. Returns receipt rows
    (`RECEIPT_SCHEMA` without `erased_at`)."""
    receipts: list[dict] = []
    if not people:
        return receipts
    everyone = frozenset().union(*(p.needles for p in people))
    for contract in contracts:
        exact = [c.name for c in contract.all_columns if c.subject]
        text = ["_extra"]
        counts: dict[str, dict[tuple[str, str], int]] = {"loaded": {}, "quarantined": {}}
        places = (
            (table_dir(settings.lake, contract), exact, text, "lake", "loaded"),
            (
                quarantine_dir(settings.lake, contract),
                [],
                ["raw", "message"],
                "quarantine",
                "quarantined",
            ),
        )
        for folder, by_id, by_text, layer, count in places:
            place = f"{layer}/{contract.system}/{contract.table}"
            for part in _holding(folder, by_id, by_text, everyone):
                _erase_part(part, people, by_id, by_text, place, counts[count], receipts)
        _move_ledger(settings, contract, counts["loaded"], counts["quarantined"])
    for part in _parts(settings.lake / "_orphans"):
        texts = [c for c, t in pl.read_parquet_schema(part).items() if t == pl.String]
        _erase_part(part, people, [], texts, "lake/_orphans", {}, receipts)
    return receipts


def _mask(needles: frozenset[str], exact: list[str], text: list[str]) -> pl.Expr:
    """Rows whose `exact` columns equal a needle or whose `text` columns hold one as a word."""
    terms = [pl.col(c).is_in(list(needles)) for c in exact]
    if text:
        regex = word_pattern(needles)
        terms += [pl.col(c).str.contains(regex) for c in text]
    return pl.any_horizontal(terms).fill_null(False)


def _holding(
    folder: Path, exact: list[str], text: list[str], needles: frozenset[str]
) -> list[Path]:
    """The parts under `folder` holding a needle (`_mask`): one scan over the folder's parts,
    reading those columns only."""
    parts = _parts(folder)
    if not parts:
        return []
    try:
        found = (
            pl.scan_parquet(parts, include_file_paths="_part", missing_columns="insert")
            .select(*exact, *text, "_part")
            .filter(_mask(needles, exact, text))
            .select(pl.col("_part").unique())
            .collect()
        )
    except (pl.exceptions.SchemaError, pl.exceptions.ColumnNotFoundError):
        return parts  # parts of differing layouts: each is read on its own
    return sorted(Path(p) for p in found["_part"])


def _erase_part(
    part: Path,
    people: list[Person],
    exact: list[str],
    text: list[str],
    place: str,
    per_file: dict[tuple[str, str], int],
    receipts: list[dict],
) -> None:
    """Rewrite `part` without the rows `_mask` finds for any of `people`; rows removed are
    counted per (source file, its sha256) in `per_file` and per request in `receipts`."""
    schema = pl.read_parquet_schema(part)
    exact = [c for c in exact if c in schema]
    text = [c for c in text if schema.get(c) == pl.String]
    if not exact and not text:
        return
    keys = pl.read_parquet(part, columns=[*exact, *text])
    hit = pl.repeat(False, keys.height, dtype=pl.Boolean, eager=True)
    owner = pl.repeat(None, keys.height, dtype=pl.String, eager=True)
    for person in people:
        mine = keys.select(_mask(person.needles, exact, text)).to_series() & ~hit
        owner = owner.zip_with(~mine, pl.repeat(person.request_id, keys.height, eager=True))
        hit = hit | mine
    if not hit.any():
        return
    rows = pl.read_parquet(part)
    gone = rows.filter(hit).with_columns(_request=owner.filter(hit))
    kept = rows.filter(~hit)
    if kept.is_empty():
        part.unlink()
    else:
        write_parquet_atomic(kept, part)
    if {"_source_file", "_file_sha256"} <= set(gone.columns):
        for file, sha, n in gone.group_by("_source_file", "_file_sha256").len().iter_rows():
            if file is not None and sha is not None:
                per_file[file, sha] = per_file.get((file, sha), 0) + n
    for request, n in gone.group_by("_request").len().iter_rows():
        receipts.append({"request_id": request, "place": place, "rows": n})


def _move_ledger(
    settings: Settings,
    contract: Contract,
    loaded: dict[tuple[str, str], int],
    quarantined: dict[tuple[str, str], int],
) -> None:
    """Rows erased from each (file, sha256) move from loaded or quarantined to
    `rows_erased` on the latest ledger row of that file's content."""
    if not loaded and not quarantined:
        return
    ledger = read_ledger(settings, contract).with_row_index("_i")
    moved = pl.DataFrame(
        [
            {"file": f, "sha256": sha, "_loaded": loaded.get((f, sha), 0),
             "_quarantined": quarantined.get((f, sha), 0)}
            for f, sha in {*loaded, *quarantined}
        ],
        schema={"file": pl.String, "sha256": pl.String, "_loaded": pl.Int64,
                "_quarantined": pl.Int64},
    )  # fmt: skip
    latest = (
        ledger.group_by("file", "sha256").agg(pl.col("_i").max()).join(moved, on=["file", "sha256"])
    )
    ledger = (
        ledger.join(latest.select("_i", "_loaded", "_quarantined"), on="_i", how="left")
        .with_columns(pl.col("_loaded", "_quarantined").fill_null(0))
        .with_columns(
            rows_loaded=pl.col("rows_loaded") - pl.col("_loaded"),
            rows_quarantined=pl.col("rows_quarantined") - pl.col("_quarantined"),
            rows_erased=pl.when(pl.col("_loaded") + pl.col("_quarantined") > 0)
            .then(pl.col("rows_erased").fill_null(0) + pl.col("_loaded") + pl.col("_quarantined"))
            .otherwise("rows_erased"),
        )
        .sort("_i")
        .drop("_i", "_loaded", "_quarantined")
    )
    write_parquet_atomic(ledger, ledger_path(settings, contract))


def record_receipts(settings: Settings, rows: list[dict], at: datetime) -> pl.DataFrame:
    """Append receipt rows (summed per request and place) stamped `at`; returns them."""
    if not rows:
        return pl.DataFrame(schema=RECEIPT_SCHEMA)
    new = (
        pl.DataFrame(rows, schema={k: v for k, v in RECEIPT_SCHEMA.items() if k != "erased_at"})
        .group_by("request_id", "place", maintain_order=True)
        .agg(pl.col("rows").sum())
        .with_columns(erased_at=pl.lit(at, RECEIPT_SCHEMA["erased_at"]))
        .select(list(RECEIPT_SCHEMA))
    )
    write_parquet_atomic(pl.concat([read_receipts(settings), new]), receipts_path(settings))
    return new


REASONS = ("erasure_request", "consent_withdrawn", "account_closed", "other")


def write_request(
    settings: Settings,
    consumer_id: str | None,
    phone: str | None,
    reason: str = "erasure_request",
    now: datetime | None = None,
) -> tuple[Path, str]:
    """Write one erasure request as a CSV in `landing/cdp/erasure_requests/` (the contract's
    layout), through a hidden temporary name; returns (path, request id). Raises ValueError
    for no identifier or an unknown reason, before anything is written."""
    consumer_id, phone = (consumer_id or "").strip(), (phone or "").strip()
    if not consumer_id and not phone:
        raise ValueError("give --consumer or --phone (or both): whom to erase")
    if reason not in REASONS:
        raise ValueError(f"reason {reason!r} is not one of {', '.join(REASONS)}")
    at = (now or datetime.now(UTC)).astimezone(UTC)
    request_id = f"ER{at:%Y%m%d%H%M%S}{os.urandom(3).hex()}"
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["request_id", "consumer_id", "phone", "requested_at", "reason"])
    writer.writerow([request_id, consumer_id, phone, at.isoformat(timespec="seconds"), reason])
    folder = settings.landing / "cdp" / "erasure_requests"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{request_id}.csv"
    tmp = folder / f".{path.name}.tmp"
    tmp.write_text(buffer.getvalue(), encoding="utf-8")
    os.replace(tmp, path)
    return path, request_id
