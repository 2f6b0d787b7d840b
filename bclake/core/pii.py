"""Find personal identifiers in any text and replace them: one masking function for the project.

Two kinds of value are personal wherever they sit (a store name, a city, an id column, a
quarantined row, a header, a file name):

- a mainland mobile number: `1[3-9]` and nine more digits, alone or after a `+86`, `0086`
  or `86` prefix, written straight (`13800000020`), grouped 3-4-4 with a space, dash or
  dot (`138 0000 0020`, `138-0000-0020`), digit by digit (`1 3 8 0 0 0 0 0 0 2 0`), two
  run together (`1380000002013900000021`) or side by side;
- a resident identity card number: 18 characters (six-digit area opening with a province
  code, a plausible birth date from 1800 on, three digits, a check digit or `X` that
  matches the ISO 7064 MOD 11-2 check), optionally grouped 6-8-4; or the old 15-digit form
  (area, YYMMDD, three digits).

A match must not sit inside a longer run of digits, so a 20-digit shipment id, a GTIN-13
or -14, an 18-digit product code whose check does not hold, dates, times and amounts are
left alone. Each match is replaced by its keyed pseudonym (`pseudonym`): HMAC-SHA256 of
the canonical value (a phone's eleven digits without its country prefix, an identity
number's digits with an upper-case `X`) under `BCLAKE_PII_KEY`, so the same person keeps
one pseudonym across files and columns and a join on a value that was an identifier
still works; without a key (`key=None`, the exports' last line) it is replaced by the
fixed mask `[phone]` or `[id]`.

The work is vectorised: polars regular expressions find and bracket the matches over
whole columns, Python computes one pseudonym per distinct match, and an Aho-Corasick
`replace_many` puts them back. The patterns avoid look-around, so they also run in
DuckDB (`regexp_matches`) for scans of what was published.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
import unicodedata
from collections.abc import Callable, Iterable, Sequence

import polars as pl

from bclake.core.parsing import non_ascii

PHONE_MASK = "[phone]"
ID_MASK = "[id]"

# a mainland mobile number not inside a longer run of digits, straight (the form of a
# contract's phone column and of the simulator's exports); no look-around: the same pattern
# serves Python, polars and DuckDB
PHONE_PATTERN = r"(^|[^0-9])1[3-9][0-9]{9}([^0-9]|$)"
PHONE = re.compile(PHONE_PATTERN)

_OPEN, _CLOSE = "\ue000", "\ue001"  # private-use brackets around a match while it is replaced
_SEP = r"[ .\-]"  # between the groups of a written-out number
_PREFIX = r"(?:(?:\+ ?|00)86[ \-]?|86[ \-]?)"  # country code before a mobile number
_MOBILE = r"1[3-9][0-9]{9}"
_BIRTH = r"(?:18|19|20)[0-9]{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12][0-9]|3[01])"
# the six-digit area code (GB/T 2260) opens with a province: 11-15, 21-23, 31-37, 41-46,
# 50-54, 61-65, Taiwan 71, Hong Kong, Macao and their residence permits 81-83, and 91 for
# foreigners' permanent residence; so a date-time stamp inside an id (`RV20261130080342…`,
# its digits opening with 19 or 20) is not read as an identity number
_AREA = r"(?:1[1-5]|2[1-3]|3[1-7]|4[1-6]|5[0-4]|6[1-5]|71|8[1-3]|91)[0-9]{4}"
_ID18 = rf"{_AREA}{_SEP}?{_BIRTH}{_SEP}?[0-9]{{3}}[0-9Xx]"
_ID15 = rf"{_AREA}[0-9]{{2}}(?:0[1-9]|1[0-2])(?:0[1-9]|[12][0-9]|3[01])[0-9]{{3}}"
_GROUPED = rf"1[3-9][0-9]{_SEP}[0-9]{{4}}{_SEP}[0-9]{{4}}"  # 3-4-4
_PHONE_BODY = rf"{_PREFIX}?(?:{_MOBILE}{_MOBILE}|{_MOBILE}|{_GROUPED})"
_SPACED_BODY = r"(?:(?:\+|00)?86 )?1 [3-9](?: [0-9]){9}"

# (left boundary, body, right boundary) of each shape, in the order they are bracketed. A
# number stands alone: no digit beside it, and no `<digit>.` before it (the fraction of a
# decimal, e.g. a longitude 114.13512345678, is not a phone)
_LEFT = rf"(^\.?|[^0-9.{_OPEN}{_CLOSE}]\.?)"
_RIGHT = r"([^0-9]|$)"
_SHAPES = (
    (_LEFT, f"{_ID18}|{_ID15}", _RIGHT),
    (_LEFT, _PHONE_BODY, _RIGHT),
    # digit by digit: no digit one space away either, or the run is a longer number
    (rf"((?:^|[^0-9 {_OPEN}{_CLOSE}]) ?)", _SPACED_BODY, r"( ?[^0-9 ]| ?$)"),
)
# hashes and UUIDs (a photo hash `26afc16451464218`, a SHA-256): hex, not people; bracketed
# first and given back unchanged, so no phone or identity number is read inside them
_HEX = "|".join(
    [f"[0-9a-f]{{{n}}}|[0-9A-F]{{{n}}}" for n in (16, 24, 32, 40, 64)]
    + [r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"]
)
_NOT_ALNUM = f"[^0-9A-Za-z{_OPEN}{_CLOSE}]"
_HASH = (f"(^|{_NOT_ALNUM})", _HEX, "([^0-9A-Za-z]|$)")
_IS_HASH = re.compile(_HEX)
# a match right after another (its left boundary was the other's right one), second pass
_AFTER = rf"({_CLOSE}[^0-9{_OPEN}{_CLOSE}]{{1,2}})"
# any shape, as a test (no look-around, RE2-compatible: DuckDB `regexp_matches` takes it)
PII_PATTERN = "|".join(
    f"(?:{left.replace(_OPEN, '').replace(_CLOSE, '')}(?:{body}){right})"
    for left, body, right in _SHAPES
)
_FULL_WIDTH = "[０-９＋]"  # text holding these is read through NFKC
_ANY = re.compile(PII_PATTERN)
_MARKED = f"{_OPEN}[^{_CLOSE}]*{_CLOSE}"
_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)


_CANONICAL_MOBILE = re.compile(rf"(?:0086|86)?({_MOBILE})")


PiiKey = str | Sequence[str]
"""A pseudonymisation key, or a chain of them oldest first (after `bclake rotate-pii-key`):
the first key hashes the clear value, each later one the pseudonym before it."""

SEAL_LABEL = b"bclake/erasure-seal/"


def rekeyer(key: str) -> Callable[[str], str]:
    """One link of a key chain: a pseudonym (52 base32 characters, as written) to its
    HMAC-SHA256 under `key`, in the same form. `pseudonymiser([k1, k2])(v)` equals
    `rekeyer(k2)(pseudonymiser(k1)(v))`: how `bclake rotate-pii-key` moves stored
    pseudonyms to a new key without their clear values."""
    keyed = hmac.new(key.encode(), digestmod=hashlib.sha256)

    def hashed(value: str) -> str:
        mac = keyed.copy()
        mac.update(value.encode())
        return base64.b32encode(mac.digest()).decode().rstrip("=").lower()

    return hashed


def pseudonymiser(key: PiiKey) -> Callable[[str], str]:
    """`pseudonym` under one key or a chain (`PiiKey`), with each key's HMAC state computed
    once (for many values). Raises ValueError for an empty chain."""
    keys = [key] if isinstance(key, str) else list(key)
    if not keys:
        raise ValueError("no pseudonymisation key")
    keyed = hmac.new(keys[0].encode(), digestmod=hashlib.sha256)
    links = [rekeyer(k) for k in keys[1:]]

    def hashed(value: str) -> str:
        if not (value.isascii() and value.isdigit()):
            text = unicodedata.normalize("NFKC", value)
            value = "".join(ch for ch in text if ch.isdigit() or ch.isalpha())
        mobile = _CANONICAL_MOBILE.fullmatch(value)
        mac = keyed.copy()
        mac.update((mobile.group(1) if mobile else value).encode())
        out = base64.b32encode(mac.digest()).decode().rstrip("=").lower()
        for link in links:
            out = link(out)
        return out

    return hashed


def pseudonym(value: str, key: PiiKey) -> str:
    """Keyed hash in base32 (52 lower-case letters and digits 2-7), so it can never look like
    a phone or identity number: HMAC-SHA256 under `key` of the value's letters and digits
    (NFKC). A phone-shaped value is hashed in its canonical form (eleven digits, no `+86`),
    so `+86 138-0000-0020` and `13800000020` are one person. A chain of keys (`PiiKey`)
    hashes the pseudonym again under each later key."""
    return pseudonymiser(key)(value)


def _seal_pad(key: str, nonce: bytes) -> bytes:
    return hmac.new(key.encode(), SEAL_LABEL + nonce, hashlib.sha256).digest()


def seal(value: str, key: str) -> str:
    """A pseudonym (52 base32 characters) encrypted under `key` (the newest key of the
    chain): 16 random bytes, then the pseudonym's 32 bytes XOR HMAC-SHA256(key, label +
    nonce), in base32 (77 characters, so never a pseudonym's length). For lists that must
    outlive a key rotation without holding the pseudonym in clear (the erasure list).
    Raises ValueError for a value that is not a pseudonym."""
    try:
        raw = base64.b32decode(value.upper() + "====")
    except ValueError:
        raw = b""
    if len(raw) != 32 or base64.b32encode(raw).decode().rstrip("=").lower() != value:
        raise ValueError("not a pseudonym: 52 base32 characters expected")
    nonce = os.urandom(16)
    body = bytes(a ^ b for a, b in zip(raw, _seal_pad(key, nonce), strict=True))
    return base64.b32encode(nonce + body).decode().rstrip("=").lower()


def unseal(sealed: str, key: str) -> str:
    """The pseudonym `seal` encrypted under `key`. Raises ValueError for a malformed value."""
    data = base64.b32decode(sealed.upper() + "===")
    if len(data) != 48:
        raise ValueError("not a sealed pseudonym: 77 base32 characters expected")
    nonce, body = data[:16], data[16:]
    raw = bytes(a ^ b for a, b in zip(body, _seal_pad(key, nonce), strict=True))
    return base64.b32encode(raw).decode().rstrip("=").lower()


def id_check_holds(number: str) -> bool:
    """Whether an 18-character identity number's last character is its ISO 7064 MOD 11-2
    check (`X` for 10); the 15-digit form has no check and always holds."""
    if len(number) == 15:
        return True
    total = sum(int(d) * w for d, w in zip(number[:17], _ID_WEIGHTS, strict=True))
    return "10X98765432"[total % 11] == number[17].upper()


def _replacement(text: str, hashed: Callable[[str], str] | None) -> str:
    """What one match (ASCII: full-width text was read through NFKC) becomes: pseudonyms
    (`hashed`) or masks (None) of the numbers in it; a hash, or an 18-character candidate
    whose check fails (not an identity number), is given back as it is."""
    if len(text) == 11 and text.isdigit():  # the common case: a phone written straight
        return PHONE_MASK if hashed is None else hashed(text)
    if _IS_HASH.fullmatch(text):
        return text
    digits = "".join(ch for ch in text.upper() if ch.isdigit() or ch == "X")
    if len(digits) in (15, 18) and not _CANONICAL_MOBILE.fullmatch(digits):
        if not id_check_holds(digits):
            return text
        return ID_MASK if hashed is None else hashed(digits)
    if len(digits) % 11:  # a country prefix before the number(s)
        digits = digits.removeprefix("0086") if digits.startswith("0086") else digits[2:]
    phones = [digits[i : i + 11] for i in range(0, len(digits), 11)]
    return " ".join(PHONE_MASK if hashed is None else hashed(p) for p in phones)


def _combined(left_of: Callable[[str], str]) -> tuple[str, str]:
    """(pattern, replacement template): every shape as one alternation, so a scan never
    looks inside what it already matched; each shape's left boundary from `left_of`."""
    shapes = (_HASH, *_SHAPES)
    pattern = "|".join(f"{left_of(left)}({body}){right}" for left, body, right in shapes)
    groups = [range(3 * i + 1, 3 * i + 4) for i in range(len(shapes))]
    left, body, right = ("".join(f"${{{g[j]}}}" for g in groups) for j in range(3))
    return pattern, f"{left}{_OPEN}{body}{_CLOSE}{right}"


_FIRST_PASS = _combined(lambda left: left)
_SECOND_PASS = _combined(lambda _: _AFTER)


def _bracket(expr: pl.Expr) -> pl.Expr:
    """`expr` (text) with every match bracketed by the private-use marks: a second scan
    takes the matches whose left boundary was the right one of the match before them
    (consumed by the first: the patterns have no look-around)."""
    out = expr.str.replace_all(f"[{_OPEN}{_CLOSE}]", "")
    for pattern, template in (_FIRST_PASS, _SECOND_PASS):
        out = out.str.replace_all(pattern, template)
    return out


def has_pii(expr: pl.Expr) -> pl.Expr:
    """Boolean expression: the text holds a phone- or identity-number-shaped value (before
    the check digit is tested, so a few 18-digit candidates it flags are kept by `redact`)."""
    return expr.str.contains(PII_PATTERN)


def _substitute(marked: pl.Series, key: PiiKey | None) -> pl.Series:
    """`marked` (bracketed by `_bracket`) with each bracketed match replaced (`_replacement`,
    computed once per distinct match): the values with a match are cut at the brackets,
    their matches swapped through a join and the pieces joined again."""
    rows = (
        marked.to_frame("t")
        .with_row_index("i")
        .filter(pl.col("t").str.contains(_OPEN, literal=True))
    )
    if not rows.height:
        return marked
    pieces = (
        rows.select("i", pl.col("t").str.split(_OPEN))
        .explode("t")
        .with_columns(pl.col("t").str.split_exact(_CLOSE, 1).struct.rename_fields(["m", "rest"]))
        .unnest("t")
    )
    found = pieces["m"].filter(pieces["rest"].is_not_null()).unique().to_list()
    hashed = None if key is None else pseudonymiser(key)
    mapping = pl.DataFrame(
        {"m": found, "r": [_replacement(m, hashed) for m in found]},
        schema={"m": pl.String, "r": pl.String},
    )
    joined = (
        pieces.join(mapping, on="m", how="left", maintain_order="left")
        .group_by("i", maintain_order=True)
        .agg(
            pl.when(pl.col("rest").is_null())
            .then(pl.col("m"))
            .otherwise(pl.col("r") + pl.col("rest"))
            .str.join("")
        )
    )
    return marked.scatter(joined["i"], joined["m"])


def redact_frame(
    frame: pl.DataFrame, key: PiiKey | None, columns: Iterable[str] | None = None
) -> pl.DataFrame:
    """`frame` with every phone and identity number in its text columns (or in `columns`,
    those of them that are text) replaced by its keyed pseudonym, or by `[phone]` / `[id]`
    when `key` is None. Other columns, nulls and values without a match are unchanged; a
    value whose match is written in full-width digits comes back in NFKC form."""
    wanted = set(frame.columns if columns is None else columns)
    text = [c for c, t in frame.schema.items() if c in wanted and t == pl.String]
    if not text or not frame.height:
        return frame
    flags = frame.select(
        *[has_pii(pl.col(c)).any().alias(c) for c in text],
        *[non_ascii(pl.col(c)).any().alias(f"wide {c}") for c in text],
    ).row(0, named=True)
    sources = {c: pl.col(c) for c in text if flags[c]}
    # full-width digits are not ASCII: the pattern runs only on columns that are not ASCII
    maybe_wide = [c for c in text if flags[f"wide {c}"]]
    wide = (
        frame.select(pl.col(c).str.contains(_FULL_WIDTH).any() for c in maybe_wide).row(0)
        if maybe_wide
        else ()
    )
    for c in (c for c, found in zip(maybe_wide, wide, strict=True) if found):
        nfkc = pl.col(c).str.normalize("NFKC")
        if frame.select(has_pii(nfkc).any()).item():
            sources[c] = pl.when(has_pii(nfkc) & ~has_pii(pl.col(c))).then(nfkc).otherwise(c)
    if not sources:
        return frame
    marked = frame.select(_bracket(expr).alias(c) for c, expr in sources.items())
    return frame.with_columns(_substitute(marked[c], key) for c in sources)


def redact_texts(texts: Sequence[str | None], key: PiiKey | None) -> list[str | None]:
    """`redact_frame` over a list of strings (lines, messages, names), in their order."""
    frame = pl.DataFrame({"t": list(texts)}, schema={"t": pl.String})
    return redact_frame(frame, key)["t"].to_list()


def redact_text(text: str, key: PiiKey | None) -> str:
    """One string (a file name, a header, a message) with its phones and identity numbers
    replaced (see `redact_frame`)."""
    if not _ANY.search(unicodedata.normalize("NFKC", text)):
        return text
    return redact_texts([text], key)[0] or ""


def pseudonyms_in(text: str, key: PiiKey) -> list[str]:
    """The pseudonyms `redact_text(text, key)` puts in place of the phones and identity
    numbers in `text`, in order (none for a text without one)."""
    if not _ANY.search(unicodedata.normalize("NFKC", text)):
        return []
    source = pl.Series([text], dtype=pl.String)
    if not source.str.contains(PII_PATTERN).item():
        source = source.str.normalize("NFKC")
    marked = source.to_frame("t").select(_bracket(pl.col("t")))["t"].item()
    hashed = pseudonymiser(key)
    found: list[str] = []
    for piece in marked.split(_OPEN)[1:]:
        match, _, _ = piece.partition(_CLOSE)
        found += [p for p in _replacement(match, hashed).split(" ") if len(p) == 52]
    return found
