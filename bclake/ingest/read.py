"""Read one landing file into a frame of strings with lake column names.

Every value comes out as a string so that type validation is one mechanism
for CSV and NDJSON alike; `ingest.validate` does the casting.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from bclake.core.contracts import Contract


class UnreadableFile(Exception):
    """The file as a whole cannot be loaded; the message says why and how to fix it."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass
class RawFile:
    frame: pl.DataFrame  # lake column names, all strings, plus _source_row
    encoding: str
    extra_columns: list[str]


def decode(data: bytes, path: Path, contract: Contract) -> tuple[str, str]:
    """Return (text, encoding): UTF-8 (with or without BOM), then GBK if the contract allows."""
    if data.startswith(b"\xef\xbb\xbf"):
        return data[3:].decode("utf-8"), "utf-8-sig"
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError as utf8_error:
        if "gbk" in contract.encodings:
            try:
                return data.decode("gbk"), "gbk"
            except UnicodeDecodeError:
                pass
        raise UnreadableFile(
            "unknown_encoding",
            f"{path}: byte {utf8_error.start} is not valid UTF-8"
            f"{' or GBK' if 'gbk' in contract.encodings else ''}; "
            f"re-export the file as UTF-8 (allowed: {', '.join(contract.encodings)}).",
        ) from None


def read_file(path: Path, contract: Contract, data: bytes | None = None) -> RawFile:
    """Read a landing file (its bytes may be passed in when the caller already has them)."""
    data = path.read_bytes() if data is None else data
    if not data or data.isspace():
        raise UnreadableFile("empty_file", f"{path}: the file is empty; re-export it.")
    text, encoding = decode(data, path, contract)
    # polars parses bytes fastest: hand it UTF-8 bytes, re-encoding only what was not UTF-8
    utf8 = {"utf-8": data, "utf-8-sig": data[3:]}.get(encoding) or text.encode("utf-8")
    del text
    if contract.format == "csv":
        frame = _read_csv(utf8, path)
    elif contract.format == "ndjson":
        frame = _read_ndjson(utf8, path, contract)
    else:
        raise UnreadableFile("unknown_format", f"{path}: contract format {contract.format!r}")
    frame, extra = _map_headers(frame, path, contract)
    return RawFile(frame, encoding, extra)


def _read_csv(text: bytes, path: Path) -> pl.DataFrame:
    try:
        frame = pl.read_csv(io.BytesIO(text), infer_schema=False, truncate_ragged_lines=False)
    except pl.exceptions.PolarsError as error:
        raise UnreadableFile(
            "malformed_csv",
            f"{path}: not a well-formed CSV ({error}); "
            "check the delimiter and quoting, or re-export it.",
        ) from None
    return frame.with_row_index("_source_row", offset=2).with_columns(  # row 1 is the header
        pl.col("_source_row").cast(pl.Int64)
    )


def _read_ndjson(text: bytes, path: Path, contract: Contract) -> pl.DataFrame:
    try:
        docs = pl.read_ndjson(io.BytesIO(text), infer_schema_length=None)
    except pl.exceptions.PolarsError as error:
        raise UnreadableFile(
            "malformed_json",
            f"{path}: not valid NDJSON ({error}); one JSON "
            "object per line is expected, re-export the file.",
        ) from None
    docs = _flatten_structs(
        docs.with_row_index("_source_row", offset=1).with_columns(
            pl.col("_source_row").cast(pl.Int64)
        )
    )
    lines = contract.lines_source
    if lines:
        if lines not in docs.columns:
            raise UnreadableFile(
                "missing_column",
                f"{path}: documents have no '{lines}' array of "
                f"lines; the contract {contract.key} requires it.",
            )
        docs = docs.explode(lines).unnest(lines) if docs.schema[lines] != pl.Null else docs
    return docs.select(
        pl.col("_source_row"),
        *[
            _as_string(pl.col(c), docs.schema[c]).alias(c)
            for c in docs.columns
            if c != "_source_row"
        ],
    )


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


def _map_headers(
    frame: pl.DataFrame, path: Path, contract: Contract
) -> tuple[pl.DataFrame, list[str]]:
    """Map native or alias headers to lake names; report unknown ones; fail on missing required."""
    present = set(frame.columns)
    renames, missing = {}, []
    for col in contract.all_columns:
        found = next((h for h in col.accepted_headers if h in present), None)
        if found is None:
            if not col.nullable:
                missing.append(col)
            continue
        renames[found] = col.name
    if missing:
        names = ", ".join(
            f"'{c.name}' (accepted headers: {', '.join(c.accepted_headers)})" for c in missing
        )
        raise UnreadableFile(
            "missing_column", f"{path}: required column {names} not found; add it to the export."
        )
    extra = [c for c in frame.columns if c not in renames and c != "_source_row"]
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
    return frame, extra
