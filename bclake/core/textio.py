"""Decode exported text files and normalise their header names.

Shared by ingest and `bclake forecast`, so that both read the same encodings and
headers. The rules, in order (a rule is applied only where its meaning is certain):

- A byte-order mark decides: UTF-8 (`EF BB BF`), UTF-16 LE (`FF FE`), UTF-16 BE (`FE FF`).
  Excel's "Unicode text" export is UTF-16 LE with a BOM and tabs between fields.
- Otherwise UTF-8; then, where the caller allows GBK, GB18030 (a superset of GBK: every
  GBK file decodes the same way, and the characters only GB18030 has decode too).
- When nothing decodes, the error names the byte offset (in the file, BOM included), the
  line, the bytes there and the encodings tried.
- Header names lose a leading BOM, zero-width characters and surrounding whitespace
  (spaces, tabs, NBSP `U+00A0`, full-width space `U+3000`); inner runs of such spaces
  become one space.
"""

from __future__ import annotations

import codecs
import re
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

BOMS = (  # longest first
    (b"\xef\xbb\xbf", "utf-8-sig", "utf-8"),
    (b"\xff\xfe", "utf-16-le", "utf-16-le"),
    (b"\xfe\xff", "utf-16-be", "utf-16-be"),
)
GBK_NAMES = ("gbk", "gb2312", "gb18030", "cp936")
DELIMITERS = (",", "\t", ";", "|")
_DELIMITER_NAMES = dict(zip(DELIMITERS, ("comma", "tab", "semicolon", "pipe"), strict=True))


def delimiter_name(sep: str) -> str:
    """`comma`, `tab`, `semicolon` or `pipe` for one of `DELIMITERS`; any other as its repr."""
    return _DELIMITER_NAMES.get(sep, repr(sep))


_INVISIBLE = re.compile("[\ufeff\u200b\u200c\u200d\u2060]")
_SPACES = re.compile(r"[\s\u00a0\u3000]+")


class UndecodableText(ValueError):
    """No allowed encoding decodes the bytes; `offset` is the first failing byte in the file."""

    def __init__(self, message: str, offset: int) -> None:
        super().__init__(message)
        self.offset = offset


@dataclass(frozen=True)
class Decoded:
    text: str  # without the BOM
    encoding: str  # utf-8, utf-8-sig, utf-16-le, utf-16-be or gb18030
    bom: int  # bytes of BOM skipped at the start
    # lenient decoding only: file offsets of the bytes replaced by U+FFFD (damaged bytes)
    damaged: tuple[int, ...] = ()


MAX_DAMAGED = 1000  # more damaged bytes than this and the file is not in that encoding
_recorded = threading.local()


def _record(error: UnicodeDecodeError) -> tuple[str, int]:
    offsets = _recorded.offsets
    offsets.append(error.start)
    if len(offsets) > MAX_DAMAGED:
        raise error
    return "\ufffd", error.end


codecs.register_error("bclake-record-damaged", _record)


def line_of(data: bytes, offset: int) -> int:
    """1-based line number of byte `offset`."""
    return data.count(b"\n", 0, offset) + 1


def decode_bytes(
    data: bytes, allowed: Iterable[str] = ("utf-8",), lenient: bool = False
) -> Decoded:
    """Decode a whole exported file; `allowed` names the encodings its source may use.

    A BOM is always honoured (its meaning is certain). GB18030 is tried only when `allowed`
    names GBK, GB2312, GB18030 or CP936, and only when no UTF-8 text precedes the first
    byte that is not UTF-8 (else the file is UTF-8 with a damaged byte, and GB18030 would
    turn its Chinese into other characters). Raises `UndecodableText` naming the failing
    byte; with `lenient`, a file in a known encoding with at most `MAX_DAMAGED` damaged
    bytes decodes with U+FFFD in their place and their offsets in `Decoded.damaged`
    (the caller quarantines the rows that hold them).
    """
    with_bom = _decode_with_bom(data)
    if with_bom is not None:
        return with_bom
    try:
        return Decoded(data.decode("utf-8"), "utf-8", 0)
    except UnicodeDecodeError as error:
        offset = error.start
    allowed = {a.lower() for a in allowed}
    utf8_text = max(data[:offset], default=0) >= 0x80  # UTF-8 multibyte text before it
    codec, tried, why = "utf-8", ["UTF-8"], ""
    if allowed & set(GBK_NAMES):
        if utf8_text:
            why = " (the text before it is UTF-8, so it was not read as GBK/GB18030)"
        else:
            try:
                return Decoded(data.decode("gb18030"), "gb18030", 0)
            except UnicodeDecodeError as error:
                tried.append("GB18030 (the superset of GBK)")
                if error.start >= offset:
                    codec, offset = "gb18030", error.start
    if lenient and (damaged := _decode_damaged(data, codec)) is not None:
        return damaged
    hint = ""
    if data[1:200:2].count(0) > 40 or data[0:200:2].count(0) > 40:
        hint = " It looks like UTF-16 without a byte-order mark: export it with one, or as UTF-8."
    raise UndecodableText(
        damaged_message(data, offset, " or ".join(tried)) + why + "; re-export the file as "
        f"UTF-8 (allowed: {', '.join(sorted(allowed))}).{hint}",
        offset,
    )


def _decode_with_bom(data: bytes) -> Decoded | None:
    """The text of a file that starts with a BOM (None when it does not); a BOM is
    certain, so a byte its encoding cannot read is an error."""
    for bom, name, codec in BOMS:
        if data.startswith(bom):
            try:
                return Decoded(data[len(bom) :].decode(codec), name, len(bom))
            except UnicodeDecodeError as error:
                offset = len(bom) + error.start
                raise UndecodableText(
                    f"the file starts with a {name} byte-order mark but byte {offset} "
                    f"({_show(data, offset)}) is not valid {codec}; the file is damaged or "
                    "was cut, re-export it",
                    offset,
                ) from None
    return None


def _decode_damaged(data: bytes, codec: str) -> Decoded | None:
    """`data` in `codec` with its damaged bytes as U+FFFD; None past `MAX_DAMAGED`."""
    _recorded.offsets = []
    try:
        text = data.decode(codec, errors="bclake-record-damaged")
    except UnicodeDecodeError:
        return None
    else:
        return Decoded(text, codec, 0, tuple(_recorded.offsets))
    finally:
        del _recorded.offsets


def damaged_message(data: bytes, offset: int, encoding: str) -> str:
    """`byte 212 (line 3: 0x80 0xFF after 'SH9') is not valid UTF-8`."""
    where = f"line {line_of(data, offset)}: {_show(data, offset)}"
    return f"byte {offset} ({where}) is not valid {encoding}"


def _show(data: bytes, offset: int) -> str:
    """The bytes at `offset` in hex, with a little context: `0x81 0x30 after 'SKU0101,'`."""
    bad = " ".join(f"0x{b:02X}" for b in data[offset : offset + 4])
    before = data[max(0, offset - 12) : offset].decode("utf-8", errors="ignore")
    before = before.rsplit("\n", 1)[-1]
    return f"{bad} after {before!r}" if before else bad


def normalise_header(name: str) -> str:
    """A header as its author meant it: no BOM, zero-width or surrounding (NBSP, full-width)
    spaces; inner space runs as one space."""
    return _SPACES.sub(" ", _INVISIBLE.sub("", name)).strip()


def find_header(found: Sequence[str], wanted: Sequence[str]) -> tuple[str | None, str]:
    """The header in `found` that carries a column accepted under any of `wanted` names.

    Returns (header as found, how): how is `exact`, `whitespace` (matched once normalised)
    or `case` (matched ignoring ASCII case, only when one header does); (None, "") when none.
    """
    for name in wanted:
        if name in found:
            return name, "exact"
    normal = {h: normalise_header(h) for h in found}
    for name in wanted:
        hits = [h for h, n in normal.items() if n == name]
        if len(hits) == 1:
            return hits[0], "whitespace"
    for name in wanted:
        hits = [h for h, n in normal.items() if n.casefold() == name.casefold()]
        if len(hits) == 1:
            return hits[0], "case"
    return None, ""


def sniff_delimiter(text: str, lines: int = 20) -> str:
    """The field separator of delimited text: `,` `\t` `;` or `|`.

    A candidate must occur in the header line and the same number of times in at least
    half of the sampled lines without quotes (so one ragged row does not change the
    answer); of those, the one most lines agree with wins, then the one that splits the
    header into most fields, then the comma. No candidate: the comma.
    """
    sample = [ln for ln in text[:65536].splitlines()[:lines] if ln.strip()]
    if not sample:
        return ","
    header = sample[0]
    plain = [ln for ln in sample[1:-1] if '"' not in ln] or sample[1:]
    agree = {
        d: sum(ln.count(d) == header.count(d) for ln in plain) / len(plain) if plain else 1.0
        for d in DELIMITERS
        if header.count(d) > 0
    }
    fits = [d for d, share in agree.items() if share >= 0.5]
    if not fits:
        return ","
    return max(fits, key=lambda d: (agree[d], header.count(d), d == ","))
