"""Product-code signatures of the one-item-one-code platform.

A product code is a 13-digit body (3-digit SKU index + 10-digit serial) and a
5-digit keyed check value. The brand's code platform holds the key; a code
whose check value does not match its body was never issued (forged). The
check is a keyed 64-bit mix, vectorised so hundreds of millions of codes can
be signed or verified in seconds.
"""

from __future__ import annotations

import hashlib
import os

import numpy as np
import polars as pl

DEMO_CODE_KEY = "bclake-demo-code-key"
BODY_DIGITS = 13
CHECK_DIGITS = 5
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)


def _key() -> np.uint64:
    raw = os.environ.get("BCLAKE_CODE_KEY", DEMO_CODE_KEY).encode()
    return np.uint64(int.from_bytes(hashlib.sha256(raw).digest()[:8], "little"))


def check_values(bodies: np.ndarray) -> np.ndarray:
    """Keyed check value (0..99999) for each integer code body."""
    with np.errstate(over="ignore"):
        z = bodies.astype(np.uint64) ^ _key()
        z = (z ^ (z >> np.uint64(30))) * _M1
        z = (z ^ (z >> np.uint64(27))) * _M2
        z = z ^ (z >> np.uint64(31))
    return (z % np.uint64(10**CHECK_DIGITS)).astype(np.int64)


def make_codes(bodies: np.ndarray) -> pl.Series:
    """Full printed codes: zero-padded body followed by its check value."""
    body = pl.Series(bodies.astype(np.int64)).cast(pl.String).str.zfill(BODY_DIGITS)
    check = pl.Series(check_values(bodies)).cast(pl.String).str.zfill(CHECK_DIGITS)
    return (body + check).alias("product_code")


def code_body(sku_index: np.ndarray, serial: np.ndarray) -> np.ndarray:
    return sku_index.astype(np.int64) * 10**10 + serial.astype(np.int64)


def signature_ok(codes: pl.Series) -> pl.Series:
    """Whether each printed code's check value matches its body under the brand's key.

    `codes`: strings; a code that is not 18 digits is not a valid signature
    (False); a null stays null. Returns a Boolean series of the same length. A
    code that fails was never issued by the code platform: it is forged.
    """
    digits = codes.str.contains(rf"^\d{{{BODY_DIGITS + CHECK_DIGITS}}}$")
    body = codes.str.slice(0, BODY_DIGITS).cast(pl.Int64, strict=False)
    check = codes.str.slice(BODY_DIGITS, CHECK_DIGITS).cast(pl.Int64, strict=False)
    well_formed = digits.fill_null(False).to_numpy()
    expected = np.full(len(codes), -1, dtype=np.int64)
    if well_formed.any():
        expected[well_formed] = check_values(body.to_numpy()[well_formed])
    ok = pl.Series(well_formed & (check.fill_null(-2).to_numpy() == expected))
    return pl.select(pl.when(codes.is_null()).then(None).otherwise(ok)).to_series().alias("ok")
