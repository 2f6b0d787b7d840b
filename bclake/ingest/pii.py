"""Pseudonymise personal data at the door: no clear phone number reaches the lake.

Columns flagged `pii: true` in a contract are replaced, before validation and
quarantine, by HMAC-SHA256 of the normalised value under `BCLAKE_PII_KEY`, so
the same person keeps the same pseudonym across files and systems while the
clear value cannot be recovered without the key.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re

import polars as pl

from bclake.core.contracts import Contract
from bclake.core.parsing import clean


def pseudonym(value: str, key: str) -> str:
    """Keyed hash in base32 (letters and digits 2-7), so it can never look like a phone number."""
    normalised = "".join(ch for ch in value if ch.isdigit() or ch.isalpha())
    digest = hmac.new(key.encode(), normalised.encode(), hashlib.sha256).digest()
    return base64.b32encode(digest).decode().rstrip("=").lower()


# a mainland mobile number not inside a longer run of digits (no look-around: the same
# pattern serves Python, polars and DuckDB)
PHONE_PATTERN = r"(^|[^0-9])1[3-9][0-9]{9}([^0-9]|$)"
PHONE = re.compile(PHONE_PATTERN)


def redact_text(text: str, key: str) -> str:
    """Pseudonymise phone numbers in free text (raw lines of a file that could not be parsed)."""
    return re.sub(r"(?<![0-9])1[3-9][0-9]{9}(?![0-9])", lambda m: pseudonym(m.group(0), key), text)


def pseudonymise(frame: pl.DataFrame, contract: Contract, key: str) -> pl.DataFrame:
    """Replace every PII column of a raw (string) frame by its keyed hash.

    A null token (`NULL`, `\\N`, empty, ...: the column's list in the contract) stays null:
    it is nobody, and a pseudonym of it would look like a person."""
    for col in contract.all_columns:
        if col.pii and col.name in frame.columns:
            frame = frame.with_columns(clean(pl.col(col.name), contract.tokens(col)))
            values = frame[col.name].unique().drop_nulls().to_list()
            mapping = {v: pseudonym(v, key) for v in values}
            frame = frame.with_columns(
                pl.col(col.name).replace_strict(mapping, default=None, return_dtype=pl.String)
            )
    return frame
