"""`bclake check FILE`: what ingest would do with one export, without writing anything.

Finds the contract (from `--table`, the `landing/<system>/<table>/` folder, the file
name and the header), then reads and validates the file exactly as ingest does
(`read.read_file`, `validate.validate`) and reports: encoding and delimiter, how each
header maps, rows in / would load / would be quarantined, and a sample of the
quarantined rows with their reasons. Nothing is written to the lake or the ledger.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl
from rich.console import Group, RenderableType
from rich.table import Table

from bclake.core.contracts import Contract, load_contracts
from bclake.core.textio import (
    UndecodableText,
    decode_bytes,
    delimiter_name,
    normalise_header,
    sniff_delimiter,
)
from bclake.ingest.pii import pseudonymise
from bclake.ingest.read import (
    HeaderMatch,
    RawFile,
    UnreadableFile,
    container,
    plan_headers,
    read_file,
)
from bclake.ingest.validate import validate

# PII columns are hashed before validation, as ingest does, so no clear value is printed;
# this key never reaches the lake
_CHECK_KEY = "bclake-check-dry-run-only"


@dataclass
class CheckReport:
    """What `check_file` found; `contract` is None when no contract fits."""

    path: Path
    contract: Contract | None
    matched_by: str  # --table, folder, file name, header, or file name and header
    raw: RawFile | None = None
    error: UnreadableFile | None = None
    rows_loaded: int = 0
    quarantined: pl.DataFrame = field(default_factory=pl.DataFrame)  # _source_row, reason, message
    first_event_date: str | None = None
    last_event_date: str | None = None
    note: str = ""  # why no contract matched

    @property
    def rows_in(self) -> int:
        return self.raw.rows_in if self.raw else 0

    @property
    def loadable(self) -> bool:
        """Whether ingest would load the file (wholly or in part)."""
        return self.contract is not None and self.error is None

    @property
    def reasons(self) -> dict[str, int]:
        """Quarantined rows per reason, most frequent first."""
        if not self.quarantined.height:
            return {}
        return dict(Counter(self.quarantined["reason"].to_list()).most_common())


def peek_headers(data: bytes) -> tuple[str, list[str]]:
    """(format, header names) of a file, cheaply: `xlsx` (every text cell of the first
    rows, so a header below title rows counts), `ndjson` (dotted keys of the first
    object, with those of its first nested line) or `csv` (the first line)."""
    kind = container(data)
    if kind == "xlsx":
        from io import BytesIO

        from openpyxl import load_workbook

        try:
            book = load_workbook(BytesIO(data), read_only=True, data_only=True)
        except Exception:
            return "xlsx", []
        cells = [
            str(v)
            for sheet in book.worksheets
            for row in sheet.iter_rows(max_row=30, values_only=True)
            for v in row
            if isinstance(v, str)
        ]
        book.close()
        return "xlsx", cells
    if kind != "text":
        return kind, []
    try:
        text = decode_bytes(data[:262144], ("gb18030",)).text
    except UndecodableText:
        text = data[:262144].decode("utf-8", errors="replace")
    first = next((ln for ln in text.splitlines() if ln.strip()), "")
    if first.lstrip().startswith("{"):
        try:
            doc = json.loads(first)
        except json.JSONDecodeError:
            return "ndjson", re.findall(r'"([^"\\]+)"\s*:', first)
        return "ndjson", _keys(doc)
    sep = sniff_delimiter(text)
    return "csv", [normalise_header(h) for h in first.split(sep)]


def _keys(doc: object, prefix: str = "") -> list[str]:
    """Dotted keys of a JSON object; for an array of objects, the keys of its first one."""
    if isinstance(doc, list):
        return _keys(doc[0], "") if doc and isinstance(doc[0], dict) else []
    if not isinstance(doc, dict):
        return []
    out = []
    for k, v in doc.items():
        out.append(prefix + k)
        if isinstance(v, dict):
            out += _keys(v, f"{prefix}{k}.")
        elif isinstance(v, list):
            out += _keys(v)
    return out


def match_contract(
    path: Path, data: bytes, contracts: dict[str, Contract], table: str | None = None
) -> tuple[Contract | None, str, str]:
    """(contract, how it was chosen, a note when none was) for one file."""
    if table:
        if table in contracts:
            return contracts[table], "--table", ""
        return None, "", f"no contract {table!r}; known: {', '.join(contracts)}"
    parts = path.resolve().parts
    if "landing" in parts[:-3]:
        at = len(parts) - 1 - parts[::-1].index("landing")
        key = ".".join(parts[at + 1 : at + 3])
        if key in contracts:
            return contracts[key], "folder", ""
    return _by_name_and_header(path, data, contracts)


def _by_name_and_header(
    path: Path, data: bytes, contracts: dict[str, Contract]
) -> tuple[Contract | None, str, str]:
    """A contract whose table is in the file name and whose required headers are all
    present; else the one contract the header alone fits; else the name alone."""
    fmt, headers = peek_headers(data)
    fits = [c for c in contracts.values() if c.format == ("ndjson" if fmt == "ndjson" else "csv")]
    stem = path.stem.lower()
    named = [c for c in fits if re.search(rf"(^|[^a-z]){re.escape(c.table)}([^a-z]|$)", stem)]
    if named:
        longest = max(len(c.table) for c in named)
        named = [c for c in named if len(c.table) == longest]

    scores = {c.key: _header_score(headers, c) for c in fits}

    def score(c: Contract) -> tuple[int, int]:
        return scores[c.key]

    complete = [c for c in fits if score(c)[0] == 0 and score(c)[1] > 0]
    by_name = [c for c in named if c in complete]
    if by_name:
        return max(by_name, key=score), "file name and header", ""
    if complete:
        best = max(complete, key=score)
        ties = [c.key for c in complete if score(c) == score(best)]
        if len(ties) == 1:
            return best, "header", ""
        return None, "", f"the header fits {', '.join(ties)} equally; name one with --table"
    if len(named) == 1:
        return named[0], "file name", ""
    return (
        None,
        "",
        "no contract matches the file name or header "
        f"(headers found: {', '.join(repr(h) for h in headers[:20]) or 'none'}); "
        "name one with --table SYSTEM.TABLE",
    )


def _header_score(headers: list[str], contract: Contract) -> tuple[int, int]:
    """(-required columns missing, columns found) of `headers` against `contract`."""
    plan = plan_headers(headers, contract)
    missing = sum(m.how == "missing" and m.required for m in plan)
    return (-missing, sum(m.header is not None for m in plan))


def check_file(path: Path, table: str | None = None) -> CheckReport:
    """Read and validate `path` as ingest would, writing nothing. Never raises for a bad
    file: the report says what is wrong."""
    data = path.read_bytes()
    contract, how, note = match_contract(path, data, load_contracts(), table)
    report = CheckReport(path=path, contract=contract, matched_by=how, note=note)
    if contract is None:
        return report
    try:
        raw = read_file(path, contract, data)
    except UnreadableFile as error:
        report.error = error
        return report
    report.raw = raw
    loaded, quarantined = validate(pseudonymise(raw.frame, contract, _CHECK_KEY), contract)
    report.rows_loaded = loaded.height
    unit = "line" if raw.format != "xlsx" else "sheet row"
    quarantined = quarantined.select(
        "_source_row",
        "reason",
        pl.concat_str(
            pl.lit(f"{unit} "), pl.col("_source_row").cast(pl.String), pl.lit(": "), "message"
        ).alias("message"),
    )
    report.quarantined = pl.concat([raw.rejected.drop("raw"), quarantined]).sort("_source_row")
    if contract.event_date and loaded.height:
        days = loaded[contract.event_date].drop_nulls()
        if days.len():
            report.first_event_date = str(days.min())
            report.last_event_date = str(days.max())
    return report


def render(report: CheckReport, sample: int = 10) -> RenderableType:
    """The report as Rich tables: summary, header map, quarantine sample."""
    parts: list[RenderableType] = [_summary(report)]
    headers = _header_table(report)
    if headers is not None:
        parts.append(headers)
    if report.quarantined.height:
        shown = min(sample, report.quarantined.height)
        table = Table(title=f"would be quarantined (first {shown})")
        table.add_column("row", justify="right")
        table.add_column("reason")
        table.add_column("message")
        for r in report.quarantined.head(sample).iter_rows(named=True):
            table.add_row(str(r["_source_row"]), r["reason"], r["message"])
        parts.append(table)
    return Group(*parts)


def _summary(report: CheckReport) -> Table:
    summary = Table(title=f"bclake check {report.path.name}", show_header=False)
    summary.add_column("what", style="bold")
    summary.add_column("value")
    c = report.contract
    summary.add_row("contract", f"{c.key} (by {report.matched_by})" if c else "none")
    if report.note:
        summary.add_row("note", report.note)
    raw = report.raw
    if raw is not None:
        where = f", sheet '{raw.sheet}', header on row {raw.header_row}" if raw.sheet else ""
        summary.add_row("format", f"{raw.format}{where}")
        summary.add_row("encoding", raw.encoding)
        if raw.delimiter:
            summary.add_row("delimiter", delimiter_name(raw.delimiter))
        summary.add_row("rows in", f"{report.rows_in:,}")
        summary.add_row("would load", f"{report.rows_loaded:,}")
        summary.add_row("would quarantine", f"{report.quarantined.height:,}")
        for reason, n in report.reasons.items():
            summary.add_row(f"  {reason}", f"{n:,}")
        if c is not None and report.first_event_date:
            days = f"{report.first_event_date} .. {report.last_event_date}"
            summary.add_row(f"event dates ({c.event_date})", days)
    if report.error is not None:
        summary.add_row("would reject the file", f"{report.error.reason}: {report.error}")
    return summary


def _header_table(report: CheckReport) -> Table | None:
    """Each contract column and the header it maps from, then the extra headers."""
    raw, c, error = report.raw, report.contract, report.error
    plan: list[HeaderMatch] = raw.headers if raw else []
    if error is not None and c is not None and error.headers:
        plan = plan_headers(error.headers, c)
    if not plan:
        return None
    table = Table(title="headers")
    for col in ("header in file", "lake column", "match", "required"):
        table.add_column(col)
    for m in plan:
        how = m.how
        if how == "missing":
            how = "[red]missing[/red]" if m.required else "absent (optional)"
        header = repr(m.header) if m.header is not None else "-"
        table.add_row(header, m.column, how, "yes" if m.required else "")
    mapped = {m.header for m in plan}
    extra = raw.extra_columns if raw else [h for h in error.headers if h not in mapped]
    for h in extra:
        table.add_row(repr(h), "_extra", "extra (kept as JSON)", "")
    return table
