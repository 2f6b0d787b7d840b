"""Pseudonymise personal data at the door: no clear phone or identity number reaches the lake.

Columns flagged `pii: true` in a contract are replaced whole, before validation and
quarantine, by their keyed pseudonym (`bclake.core.pii.pseudonym`: HMAC-SHA256 of the
normalised value under `BCLAKE_PII_KEY`), so the same person keeps the same pseudonym
across files and systems while the clear value cannot be recovered without the key.
Every other text column of the raw frame (ids, names, cities, the unknown columns kept in
`_extra`) has the phone- and identity-number-shaped values inside it replaced by the same
pseudonyms (`bclake.core.pii.redact_frame`), so a phone typed into a store name or an id
column never reaches the lake, the quarantine or a message either.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import polars as pl

from bclake.core.contracts import Contract
from bclake.core.parsing import clean
from bclake.core.pii import (
    PHONE,
    PHONE_PATTERN,
    PII_PATTERN,
    PiiKey,
    pseudonym,
    pseudonymiser,
    redact_frame,
    redact_text,
    redact_texts,
)
from bclake.ingest.ledger import FileResult

__all__ = [
    "PHONE",
    "PHONE_PATTERN",
    "PII_PATTERN",
    "find_landing_file",
    "pseudonym",
    "pseudonymise",
    "redact_frame",
    "redact_result",
    "redact_text",
    "redact_texts",
]


def pseudonymise(frame: pl.DataFrame, contract: Contract, key: PiiKey) -> pl.DataFrame:
    """A raw (string) frame with every PII column replaced by its keyed hash and every phone
    or identity number inside its other text columns by its pseudonym.

    A null token (`NULL`, `\\N`, empty, ...: the column's list in the contract) in a PII
    column stays null: it is nobody, and a pseudonym of it would look like a person."""
    hashed = pseudonymiser(key)
    pii = [c.name for c in contract.all_columns if c.pii and c.name in frame.columns]
    for col in contract.all_columns:
        if col.name in pii:
            frame = frame.with_columns(clean(pl.col(col.name), contract.tokens(col)))
            values = frame[col.name].unique().drop_nulls().to_list()
            mapping = {v: hashed(v) for v in values}
            frame = frame.with_columns(
                pl.col(col.name).replace_strict(mapping, default=None, return_dtype=pl.String)
            )
    return redact_frame(frame, key, [c for c in frame.columns if c not in pii])


def find_landing_file(landing: Path, name: str, key: PiiKey) -> Path | None:
    """The landing file a ledger row's `file` (its path under `landing`, with any phone or
    identity number in it pseudonymised under `key`) names; None when it is gone."""
    path = landing / name
    if path.is_file():
        return path
    folder = (landing / name).parent
    if not folder.is_dir():
        return None
    for candidate in sorted(folder.iterdir()):
        if candidate.is_file() and redact_text(str(candidate.relative_to(landing)), key) == name:
            return candidate
    return None


def redact_result(result: FileResult, key: PiiKey) -> FileResult:
    """A file's ledger row with the phones and identity numbers in its file name, message
    and extra header names pseudonymised under `key` (the ledger is published)."""
    return replace(
        result,
        file=redact_text(result.file, key),
        message=None if result.message is None else redact_text(result.message, key),
        extra_columns=None
        if result.extra_columns is None
        else redact_text(result.extra_columns, key),
    )
