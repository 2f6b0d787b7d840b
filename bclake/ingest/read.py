"""Read one landing file into a frame of strings with lake column names.

Every value comes out as a string so that type validation is one mechanism
for CSV, NDJSON and XLSX alike; `ingest.validate` does the casting.

Row-level, not file-level: polars reads the whole file first (the fast path); only a
file it refuses, or a CSV with a short row, is split line by line, and each line that
cannot be a row (a malformed or truncated NDJSON line, a CSV row with more or fewer
fields than the header) goes to `RawFile.rejected` with its line number while the
other rows load. A file is rejected whole (`UnreadableFile`) only when no row can be
trusted: undecodable bytes, no header the contract knows, or no well-formed row.
"""

from __future__ import annotations

import csv
import io
import json
import re
import zipfile
from dataclasses import dataclass, field
from datetime import date, datetime, time
from pathlib import Path

import polars as pl

from bclake.core.contracts import Contract
from bclake.core.textio import (
    Decoded,
    UndecodableText,
    damaged_message,
    decode_bytes,
    delimiter_name,
    find_header,
    line_of,
    sniff_delimiter,
)

REJECTED_SCHEMA = {
    "_source_row": pl.Int64,
    "reason": pl.String,
    "message": pl.String,
    "raw": pl.String,
}
XLSX_MAGIC = b"PK\x03\x04"
OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # legacy .xls, or an encrypted workbook
HEADER_SCAN_ROWS = 30  # rows of a sheet searched for its header row
SHOWN_HEADERS = 20  # headers a message quotes, at most
SHOWN_HEADER_CHARS = 40  # characters of each quoted header, at most


class UnreadableFile(Exception):
    """The file as a whole cannot be loaded; the message says why and how to fix it.

    `headers` holds the header names found, when the file got that far.
    """

    def __init__(self, reason: str, message: str, headers: list[str] | None = None) -> None:
        super().__init__(message)
        self.reason = reason
        self.headers = headers or []


@dataclass(frozen=True)
class HeaderMatch:
    """How one contract column was found in a file's header."""

    column: str  # lake name
    header: str | None  # as written in the file; None when missing
    how: str  # native, alias or lake name, "+ whitespace fixed" / "+ case"; or "missing"
    required: bool


@dataclass
class RawFile:
    frame: pl.DataFrame  # lake column names, all strings, plus _source_row and _extra
    encoding: str  # utf-8, utf-8-sig, utf-16-le, utf-16-be, gb18030, or xlsx
    extra_columns: list[str]
    format: str = "csv"  # csv, ndjson or xlsx (as read, which may differ from the contract's)
    delimiter: str | None = None  # CSV field separator
    sheet: str | None = None  # XLSX sheet read
    header_row: int = 1  # line (CSV) or sheet row (XLSX) of the header
    headers: list[HeaderMatch] = field(default_factory=list)
    # lines that could not be split into a row: _source_row (line), reason, message, raw
    rejected: pl.DataFrame = field(default_factory=lambda: pl.DataFrame(schema=REJECTED_SCHEMA))

    @property
    def rows_in(self) -> int:
        """Rows the file holds: those read plus the lines rejected by the reader."""
        return self.frame.height + self.rejected.height


def decode(data: bytes, path: Path, contract: Contract, lenient: bool = False) -> Decoded:
    """The file's text under the contract's encodings (see `bclake.core.textio`).

    Raises UnreadableFile (`unknown_encoding`) naming the byte offset that failed; with
    `lenient`, a few damaged bytes are left as U+FFFD for `read_file` to quarantine.
    """
    try:
        return decode_bytes(data, contract.encodings, lenient=lenient)
    except UndecodableText as error:
        raise UnreadableFile("unknown_encoding", f"{path}: {error}") from None


def container(data: bytes) -> str:
    """`xlsx` for a zip workbook, `xls` for an OLE one, else `text`."""
    if data.startswith(XLSX_MAGIC):
        return "xlsx"
    if data.startswith(OLE_MAGIC):
        return "xls"
    return "text"


def read_file(path: Path, contract: Contract, data: bytes | None = None) -> RawFile:
    """Read a landing file (its bytes may be passed in when the caller already has them)."""
    data = path.read_bytes() if data is None else data
    if not data or data.isspace():
        raise UnreadableFile("empty_file", f"{path}: the file is empty; re-export it.")
    kind = container(data)
    if kind == "xls":
        raise UnreadableFile(
            "unsupported_format",
            f"{path}: a legacy .xls (or password-protected) workbook; save it as .xlsx "
            "without a password, or export CSV.",
        )
    if kind == "xlsx":
        if contract.format != "csv":
            raise UnreadableFile(
                "unsupported_format",
                f"{path}: a workbook, but {contract.key} takes {contract.format}; export that.",
            )
        raw = _read_xlsx(data, path, contract)
    else:
        decoded = decode(data, path, contract, lenient=True)
        encoding = decoded.encoding
        if decoded.damaged:
            _check_damage(data, decoded, path, contract)
        utf8 = _utf8(data, decoded)
        if contract.format == "csv":
            delimiter = sniff_delimiter(decoded.text[:65536])
            frame, rejected = _read_csv(utf8, path, delimiter)
            raw = RawFile(frame, encoding, [], delimiter=delimiter, rejected=rejected)
        elif contract.format == "ndjson":
            frame, rejected = _read_ndjson(utf8, path, contract)
            raw = RawFile(frame, encoding, [], format="ndjson", rejected=rejected)
        else:
            raise UnreadableFile("unknown_format", f"{path}: contract format {contract.format!r}")
        if decoded.damaged:
            _reject_damaged(raw, data, decoded, path)
    raw.frame, raw.extra_columns, raw.headers = _map_headers(raw.frame, path, contract)
    return raw


def _utf8(data: bytes, decoded: Decoded) -> bytes:
    """The file as UTF-8 bytes for polars (which parses bytes fastest): its own bytes when
    they are clean UTF-8 (without the BOM), else its decoded text encoded again."""
    if not decoded.damaged and decoded.encoding == "utf-8":
        return data
    if not decoded.damaged and decoded.encoding == "utf-8-sig":
        return data[3:]
    return decoded.text.encode()


def _damaged_lines(data: bytes, decoded: Decoded) -> dict[int, int]:
    """Line -> its first damaged byte."""
    lines: dict[int, int] = {}
    for offset in decoded.damaged:
        lines.setdefault(line_of(data, offset), offset)
    return lines


def _check_damage(data: bytes, decoded: Decoded, path: Path, contract: Contract) -> None:
    """Refuse the whole file when its header is damaged, or so many lines are that it is
    evidently not in that encoding (then even its other non-ASCII text is suspect)."""
    lines = _damaged_lines(data, decoded)
    header_line = 1 if contract.format == "csv" else 0
    if header_line in lines or len(lines) > max(3, data.count(b"\n") // 100):
        enc = decoded.encoding.upper()
        first = damaged_message(data, decoded.damaged[0], enc)
        why = (
            "in the header line"
            if header_line in lines
            else f"{len(decoded.damaged)} bytes on {len(lines)} lines are not valid {enc} "
            f"either, so the file is not {enc} (or is badly damaged)"
        )
        raise UnreadableFile(
            "unknown_encoding",
            f"{path}: {first}; {why}; re-export it as UTF-8 "
            f"(allowed: {', '.join(contract.encodings)}).",
        )


def _reject_damaged(raw: RawFile, data: bytes, decoded: Decoded, path: Path) -> None:
    """Move the rows that hold damaged bytes (U+FFFD) to `raw.rejected` as `bad_encoding`."""
    lines = _damaged_lines(data, decoded)
    first = decoded.damaged[0]
    whole = damaged_message(data, first, decoded.encoding.upper())
    columns = [c for c, t in raw.frame.schema.items() if t == pl.String]
    flag = pl.any_horizontal(
        [pl.col(c).str.contains("\ufffd", literal=True).fill_null(False) for c in columns]
    )
    bad = raw.frame.filter(flag)
    raw.frame = raw.frame.filter(~flag)
    text_lines = decoded.text.split("\n")
    rows = []
    for row in bad["_source_row"].unique(maintain_order=True).to_list():
        at = lines.get(row, first)
        rows.append(
            (
                row,
                "bad_encoding",
                f"line {row}: {damaged_message(data, at, decoded.encoding.upper())}; the rest "
                "of the file is, so this row was damaged: fix it at the source and resend it",
                text_lines[row - 1] if row - 1 < len(text_lines) else "",
            )
        )
    raw.rejected = pl.concat([raw.rejected, _rejected(rows)]).sort("_source_row")
    if not raw.frame.height:
        raise UnreadableFile(
            "unknown_encoding", f"{path}: no row can be trusted: {whole}; re-export it."
        )


def _numbered(frame: pl.DataFrame, first: int) -> pl.DataFrame:
    return frame.with_row_index("_source_row", offset=first).with_columns(
        pl.col("_source_row").cast(pl.Int64)
    )


def _rejected(rows: list[tuple[int, str, str, str]]) -> pl.DataFrame:
    return pl.DataFrame(rows, schema=REJECTED_SCHEMA, orient="row")


def _read_csv(text: bytes, path: Path, sep: str) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(rows, rejected lines); polars first, line by line only when it refuses or a row
    is short."""
    try:
        frame = pl.read_csv(
            io.BytesIO(text), separator=sep, infer_schema=False, truncate_ragged_lines=False
        )
    except pl.exceptions.PolarsError as error:
        return _read_csv_by_line(text.decode("utf-8"), path, sep, str(error).split("\n")[0])
    if frame.width > 1 and frame[frame.columns[-1]].null_count() and _has_short_row(text, sep):
        return _read_csv_by_line(text.decode("utf-8"), path, sep, "")
    return _numbered(frame, 2), _rejected([])  # row 1 is the header


def _has_short_row(text: bytes, sep: str) -> bool:
    """Whether a line without quotes has fewer separators than the header (polars pads such
    a row with nulls instead of refusing it)."""
    try:
        lines = pl.read_csv(
            io.BytesIO(text),
            has_header=False,
            separator="\x00",
            quote_char=None,
            infer_schema=False,
        ).to_series()
    except pl.exceptions.PolarsError:
        return True  # the line-by-line reader decides
    lines = lines.str.strip_chars_end("\r")
    counts = lines.str.count_matches(sep, literal=True)
    plain = lines.str.len_chars().gt(0) & ~lines.str.contains('"', literal=True)
    return bool((plain & (counts < counts[0])).any())


def _read_csv_by_line(
    text: str, path: Path, sep: str, fast_error: str
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Split a CSV record by record (quoted newlines kept); a record whose field count is not
    the header's is rejected as `ragged_row` with its line number."""
    lines = text.splitlines()
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=sep)
    header: list[str] | None = None
    good: list[tuple[int, list[str]]] = []
    bad: list[tuple[int, str, str, str]] = []
    last_line = 0
    try:
        for record in reader:
            start, last_line = last_line + 1, reader.line_num
            if not record or all(not v.strip() for v in record):
                continue
            if header is None:
                header = record
                continue
            if len(record) == len(header):
                good.append((start, record))
                continue
            more = len(record) > len(header)
            bad.append(
                (
                    start,
                    "ragged_row",
                    f"line {start}: {len(record)} fields where the header has {len(header)}; "
                    + (
                        f"an unquoted {delimiter_name(sep)} inside a value? Quote that value or "
                        "remove the separator at the source, and resend the row"
                        if more
                        else "a value or separator is missing, or the line was cut; fix the "
                        "row at the source and resend it"
                    ),
                    "\n".join(lines[start - 1 : last_line]),
                )
            )
    except csv.Error as error:  # an unterminated quote: the rest of the file is one field
        bad.append(
            (
                last_line + 1,
                "malformed_csv",
                f"line {last_line + 1}: {error} (an unclosed quote?); every line from here "
                "is held back; fix the quoting and resend",
                "\n".join(lines[last_line:]),
            )
        )
    if header is None:
        raise UnreadableFile("malformed_csv", f"{path}: no header line found; re-export it.")
    if not good and bad:
        why = f" (polars: {fast_error})" if fast_error else ""
        raise UnreadableFile(
            bad[0][1],
            f"{path}: no row can be trusted: none of the {len(bad)} data lines has the "
            f"{len(header)} fields of the header, read with {delimiter_name(sep)} as the separator"
            f"{why}; first: {bad[0][2]}. Check the delimiter and quoting, or re-export it.",
            headers=header,
        )
    names = _dedupe(header)
    frame = pl.DataFrame(
        {n: [r[i] or None for _, r in good] for i, n in enumerate(names)},
        schema=dict.fromkeys(names, pl.String),
    ).with_columns(pl.Series("_source_row", [line for line, _ in good], dtype=pl.Int64))
    return frame.select("_source_row", *names), _rejected(bad)


def _dedupe(names: list[str]) -> list[str]:
    out: list[str] = []
    for i, n in enumerate(names):
        out.append(n if n not in out else f"{n}_duplicated_{i}")
    return out


def _read_ndjson(text: bytes, path: Path, contract: Contract) -> tuple[pl.DataFrame, pl.DataFrame]:
    try:
        docs = _numbered(pl.read_ndjson(io.BytesIO(text), infer_schema_length=None), 1)
        rejected = _rejected([])
    except pl.exceptions.PolarsError as error:
        docs, rejected = _read_ndjson_by_line(text.decode("utf-8"), path, str(error))
    docs = _flatten_structs(docs)
    lines = contract.lines_source
    if lines:
        if lines not in docs.columns:
            raise UnreadableFile(
                "missing_column",
                f"{path}: documents have no '{lines}' array of "
                f"lines; the contract {contract.key} requires it.",
                headers=[c for c in docs.columns if c != "_source_row"],
            )
        docs = docs.explode(lines).unnest(lines) if docs.schema[lines] != pl.Null else docs
    frame = docs.select(
        pl.col("_source_row"),
        *[
            _as_string(pl.col(c), docs.schema[c]).alias(c)
            for c in docs.columns
            if c != "_source_row"
        ],
    )
    return frame, rejected


def _read_ndjson_by_line(
    text: str, path: Path, fast_error: str
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Parse NDJSON one line at a time: a line that is not a JSON object is rejected as
    `malformed_json` with its line number; the others are read by polars."""
    lines = [ln.removesuffix("\r") for ln in text.split("\n")]
    last = max((i for i, ln in enumerate(lines) if ln.strip()), default=-1)
    good: list[tuple[int, str]] = []
    bad: list[tuple[int, str, str, str]] = []
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            doc = json.loads(line)
            problem = (
                None if isinstance(doc, dict) else f"a JSON {type(doc).__name__}, not an object"
            )
        except json.JSONDecodeError as error:
            problem = _json_problem(line, error, i == last)
        except (RecursionError, ValueError) as error:  # nested too deep, a 5,000-digit number
            problem = f"not a record ({str(error)[:80]}); fix the line at the source and resend it"
        if problem is None:
            good.append((i + 1, line))
        else:
            bad.append((i + 1, "malformed_json", f"line {i + 1}: {problem}", line))
    if not good:
        raise UnreadableFile(
            "malformed_json",
            f"{path}: no line is a JSON object ({bad[0][2] if bad else fast_error}); one JSON "
            "object per line is expected, re-export the file.",
        )
    try:
        docs = pl.read_ndjson(
            io.BytesIO("\n".join(ln for _, ln in good).encode()), infer_schema_length=None
        )
    except pl.exceptions.PolarsError as error:
        raise UnreadableFile(
            "malformed_json",
            f"{path}: not valid NDJSON ({str(error).splitlines()[0]}); one JSON object per "
            "line is expected, re-export the file.",
        ) from None
    docs = docs.with_columns(pl.Series("_source_row", [n for n, _ in good], dtype=pl.Int64))
    return docs.select("_source_row", *[c for c in docs.columns if c != "_source_row"]), _rejected(
        bad
    )


def _json_problem(line: str, error: json.JSONDecodeError, is_last: bool) -> str:
    """What is wrong with one NDJSON line, and the fix."""
    before = line[: error.pos].rstrip()
    if is_last and not line.rstrip().endswith("}"):
        return (
            f"truncated: the last line ends mid-record ({error.msg}, column {error.colno}); "
            "the file was cut while being written or sent, resend the complete file"
        )
    if before.endswith(",") and line[error.pos : error.pos + 1] in "]}":
        return (
            f"not valid JSON: a trailing comma before '{line[error.pos]}' at column "
            f"{error.colno}; remove it at the source and resend the line"
        )
    return f"not valid JSON ({error.msg}, column {error.colno}); fix the line and resend it"


def _read_xlsx(data: bytes, path: Path, contract: Contract) -> RawFile:
    """The sheet named like the table (else the first), header row found among its first
    rows, every cell as the text Excel displays (codes keep their leading zeros).

    A workbook is a zip: one that unpacks to more than the contract's `max_file_bytes` (a
    zip bomb, or simply too big) is refused before a sheet is read."""
    from openpyxl import load_workbook

    _check_unpacked_size(data, path, contract)
    try:
        book = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception as error:  # a damaged zip or not a workbook
        raise UnreadableFile(
            "unsupported_format", f"{path}: not a readable .xlsx workbook ({error}); re-save it."
        ) from None
    try:
        wanted = {contract.table.casefold(), contract.key.casefold()}
        sheet = next(
            (n for n in book.sheetnames if n.strip().casefold() in wanted), book.sheetnames[0]
        )
        rows = [
            (i, [_cell_text(c) for c in row])
            for i, row in enumerate(book[sheet].iter_rows(min_row=1), start=1)
        ]
    finally:
        book.close()
    rows = [(i, r) for i, r in rows if any(v is not None and v.strip() for v in r)]
    if not rows:
        raise UnreadableFile("empty_file", f"{path}: sheet '{sheet}' is empty; re-export it.")
    accepted = [c.accepted_headers for c in contract.all_columns]

    def score(values: list[str | None]) -> int:
        found = [v for v in values if v]
        return sum(find_header(found, names)[0] is not None for names in accepted)

    scores = [score(r) for _, r in rows[:HEADER_SCAN_ROWS]]
    at = scores.index(max(scores))
    header_row, header = rows[at]
    width = max(len(r) for _, r in rows)
    names = _dedupe(
        [(header[j] if j < len(header) and header[j] else f"column_{j + 1}") for j in range(width)]
    )
    body = [(i, r + [None] * (width - len(r))) for i, r in rows[at + 1 :]]
    keep = [
        j for j in range(width) if (j < len(header) and header[j]) or any(r[j] for _, r in body)
    ]
    frame = pl.DataFrame(
        {names[j]: [r[j] for _, r in body] for j in keep},
        schema={names[j]: pl.String for j in keep},
    ).with_columns(pl.Series("_source_row", [i for i, _ in body], dtype=pl.Int64))
    frame = frame.select("_source_row", *[names[j] for j in keep])
    return RawFile(frame, "xlsx", [], format="xlsx", sheet=sheet, header_row=header_row)


def _check_unpacked_size(data: bytes, path: Path, contract: Contract) -> None:
    """Raise UnreadableFile (`file_too_large`) when the zip's members add up to more than
    `contract.max_file_bytes` (their declared sizes: Python's zip reader never unpacks a
    member past its declared size)."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            unpacked = sum(member.file_size for member in archive.infolist())
    except (zipfile.BadZipFile, ValueError):
        return  # openpyxl says what is wrong with it
    if unpacked > contract.max_file_bytes:
        raise UnreadableFile(
            "file_too_large",
            f"{path}: the workbook unpacks to {unpacked:,} bytes, above the "
            f"{contract.max_file_bytes:,}-byte limit of {contract.key} (contract `max_file_mb: "
            f"{contract.max_file_mb:g}`); export it as CSV or split it.",
        )


def _cell_text(cell: object) -> str | None:
    """A cell as text: dates ISO, whole numbers without `.0`, a number with a zero-padded
    format (`000000`) padded as shown, and a number past float precision as Excel shows it
    (`1.23457E+17`), so that a mangled code is never loaded as a plausible one."""
    value = getattr(cell, "value", None)
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return value.date().isoformat() if value.time() == time(0) else value.isoformat(" ")
    if isinstance(value, date | time):
        return value.isoformat()
    if isinstance(value, int | float):
        fmt = (getattr(cell, "number_format", None) or "General").strip()
        if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
            value = int(value)
        if abs(value) >= 1e15:
            return f"{value:.5E}"
        if isinstance(value, int) and re.fullmatch(r"0+", fmt):
            return str(value).zfill(len(fmt))
        decimals = re.fullmatch(r"(?:#,##)?0\.(0+)", fmt)
        if decimals and isinstance(value, float | int):
            return f"{value:.{len(decimals.group(1))}f}"
        return str(value)
    return str(value) or None  # as the CSV reader: spaces kept, `validate` strips them


def _flatten_structs(frame: pl.DataFrame) -> pl.DataFrame:
    """Nested objects become dotted columns (`profile.gender`); arrays are left alone."""
    while any(isinstance(t, pl.Struct) for t in frame.schema.values()):
        exprs = []
        for name, dtype in frame.schema.items():
            if isinstance(dtype, pl.Struct):
                exprs += [
                    pl.col(name).struct.field(f.name).alias(f"{name}.{f.name}")
                    for f in dtype.fields
                ]
            else:
                exprs.append(pl.col(name))
        frame = frame.select(exprs)
    return frame


def _as_string(expr: pl.Expr, dtype: pl.DataType) -> pl.Expr:
    """Scalars as text; a leftover array (not the contract's lines) as its JSON."""
    if dtype == pl.String:
        return expr
    if isinstance(dtype, pl.List):
        return pl.struct(expr).struct.json_encode()
    return expr.cast(pl.String)


def shown_headers(found: list[str], most: int = SHOWN_HEADERS) -> str:
    """The headers of a file as a message quotes them: the first `most`, each cut to
    `SHOWN_HEADER_CHARS`, so a file's content never reaches a message whole through its
    header line."""
    if not found:
        return "none"
    shown = [
        repr(h if len(h) <= SHOWN_HEADER_CHARS else h[: SHOWN_HEADER_CHARS - 1] + "…")
        for h in found[:most]
    ]
    more = f" and {len(found) - most} more" if len(found) > most else ""
    return ", ".join(shown) + more


def plan_headers(found: list[str], contract: Contract) -> list[HeaderMatch]:
    """How each contract column maps onto the headers `found` (missing ones included)."""
    used: set[str] = set()
    plan = []
    for col in contract.all_columns:
        header, how = find_header([h for h in found if h not in used], col.accepted_headers)
        if header is None:
            plan.append(HeaderMatch(col.name, None, "missing", not col.nullable))
            continue
        used.add(header)
        clean = (
            header
            if how == "exact"
            else next(n for n in col.accepted_headers if find_header([header], [n])[0] is not None)
        )
        kind = "native" if clean == col.source else "lake name" if clean == col.name else "alias"
        fixed = {"whitespace": " + whitespace fixed", "case": " + case ignored"}.get(how, "")
        plan.append(HeaderMatch(col.name, header, kind + fixed, not col.nullable))
    return plan


def _map_headers(
    frame: pl.DataFrame, path: Path, contract: Contract
) -> tuple[pl.DataFrame, list[str], list[HeaderMatch]]:
    """Map native or alias headers to lake names; report unknown ones; fail on missing required."""
    found = [c for c in frame.columns if c != "_source_row"]
    plan = plan_headers(found, contract)
    missing = [m for m in plan if m.how == "missing" and m.required]
    if missing:
        accepted = {
            c.name: ", ".join(dict.fromkeys(c.accepted_headers)) for c in contract.all_columns
        }
        names = ", ".join(f"'{m.column}' (accepted headers: {accepted[m.column]})" for m in missing)
        raise UnreadableFile(
            "missing_column",
            f"{path}: required column {names} not found; the headers found are "
            f"{shown_headers(found)}; add it to the export.",
            headers=found,
        )
    renames = {m.header: m.column for m in plan if m.header is not None}
    extra = [c for c in found if c not in renames]
    # columns the contract does not know are kept, as one JSON object per row
    frame = frame.with_columns(
        (
            pl.struct([pl.col(c).cast(pl.String) for c in extra]).struct.json_encode()
            if extra
            else pl.lit(None, pl.String)
        ).alias("_extra")
    )
    # an unknown column may hold personal data: mask anything shaped like a mobile number
    frame = frame.with_columns(
        pl.col("_extra").str.replace_all(r"(^|[^0-9])1[3-9][0-9]{9}([^0-9]|$)", "${1}[phone]${2}")
    )
    frame = frame.rename(renames)
    for col in contract.all_columns:
        if col.name not in frame.columns:
            frame = frame.with_columns(pl.lit(None, pl.String).alias(col.name))
    return frame, extra, plan
