"""Data contracts: the YAML files in `contracts/` read into typed objects.

The simulator writes exports from these and ingest validates against them, so
there is exactly one description of every source table.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from functools import cache
from pathlib import Path

import yaml

from bclake.core.parsing import DATE_FORMS, DATE_ORDERS, DEFAULT_ZONE, NULL_TOKENS, NUMBER_FORMS
from bclake.core.settings import CONTRACTS_DIR

TYPES = ("string", "int", "float", "date", "timestamp", "bool")
# largest landing file ingest reads (MiB), unless a contract sets `max_file_mb`; a file is
# read whole into memory, so this bounds what one dropped file can cost
DEFAULT_MAX_FILE_MB = 1024
# the plausible window of event dates: none before this day, none more days ahead of
# the day of ingest than this (a contract may set its own)
DEFAULT_PLAUSIBLE_FROM = date(2000, 1, 1)
DEFAULT_MAX_DAYS_AHEAD = 7


@dataclass(frozen=True)
class Column:
    name: str
    source: str
    type: str
    nullable: bool = True
    aliases: tuple[str, ...] = ()
    pii: bool = False
    # the value names one consumer (an id, or a PII column's pseudonym): an erasure request
    # removes the rows that hold an erased person's (`ingest.erasure`)
    subject: bool = False
    pattern: str | None = None  # regular expression a string value must match in full
    allowed: tuple[str, ...] | None = None
    min: float | None = None
    max: float | None = None
    # values read as null in this column; None: the contract's list (or parsing.NULL_TOKENS)
    null_tokens: tuple[str, ...] | None = None
    share: bool = False  # a number that is a share (0.15): `15%` reads as 0.15
    negative_parens: bool = False  # `(1,234.00)` reads as -1234.0 (accounting exports)

    @property
    def accepted_headers(self) -> tuple[str, ...]:
        """Every header under which a source file may carry this column."""
        return (self.source, self.name, *self.aliases)


@dataclass(frozen=True)
class Derived:
    name: str
    source: str
    type: str


@dataclass(frozen=True)
class Contract:
    system: str
    table: str
    description: str
    format: str
    encodings: tuple[str, ...]
    primary_key: tuple[str, ...]
    event_date: str | None
    columns: tuple[Column, ...]
    lines_source: str | None = None
    line_columns: tuple[Column, ...] = ()
    derived: tuple[Derived, ...] = field(default_factory=tuple)
    # how long a source may go without a new file before its freshness check warns
    # (None: no cadence, files arrive when people act, e.g. review decisions)
    freshness_hours: int | None = 36
    # zone whose wall time timestamps are stored in and whose calendar dates are taken
    timezone: str = DEFAULT_ZONE
    null_tokens: tuple[str, ...] | None = None  # None: parsing.NULL_TOKENS
    # how the source writes day-and-month-first dates (`dmy`, `mdy`); None: refuse ambiguous
    date_order: str | None = None
    # largest landing file read, in MiB (`max_file_mb`); a larger one is refused unread
    max_file_mb: float = DEFAULT_MAX_FILE_MB
    # event dates outside plausible_from .. (day of ingest + max_days_ahead) are quarantined
    plausible_from: date = DEFAULT_PLAUSIBLE_FROM
    max_days_ahead: int = DEFAULT_MAX_DAYS_AHEAD

    @property
    def max_file_bytes(self) -> int:
        """`max_file_mb` in bytes."""
        return int(self.max_file_mb * 1024 * 1024)

    def plausible_window(self, today: date) -> tuple[date, date]:
        """First and last plausible event date for rows ingested on `today`."""
        return self.plausible_from, today + timedelta(days=self.max_days_ahead)

    def tokens(self, col: Column) -> tuple[str, ...]:
        """The null tokens of one column: its own list, else the contract's, else the default."""
        if col.null_tokens is not None:
            return col.null_tokens
        return self.null_tokens if self.null_tokens is not None else NULL_TOKENS

    @property
    def key(self) -> str:
        """`system.table`, the name used in the lake, ledger and dbt sources."""
        return f"{self.system}.{self.table}"

    @property
    def all_columns(self) -> tuple[Column, ...]:
        """Header columns followed by line columns: the lake row's contract columns."""
        return self.columns + self.line_columns

    @property
    def lake_columns(self) -> list[str]:
        return [c.name for c in self.all_columns] + [d.name for d in self.derived]


def _column(raw: dict) -> Column:
    if raw["type"] not in TYPES:
        raise ValueError(f"column {raw['name']}: unknown type {raw['type']!r}")
    return Column(
        name=raw["name"],
        source=raw.get("source", raw["name"]),
        type=raw["type"],
        nullable=bool(raw.get("nullable", True)),
        aliases=tuple(raw.get("aliases", ())),
        pii=bool(raw.get("pii", False)),
        subject=bool(raw.get("subject", False)),
        pattern=raw.get("pattern"),
        allowed=tuple(str(v) for v in raw["allowed"]) if "allowed" in raw else None,
        min=raw.get("min"),
        max=raw.get("max"),
        null_tokens=_tokens(raw.get("null_tokens")),
        share=bool(raw.get("share", False)),
        negative_parens=bool(raw.get("negative_parens", False)),
    )


def _pii(col: Column) -> str:
    """The PII cell of a column's row in the contracts page."""
    marks = ["pseudonymised"] * col.pii + ["names a consumer: erasure key"] * col.subject
    return "; ".join(marks)


def _date_order(raw: str | None) -> str | None:
    if raw is not None and raw not in DATE_ORDERS:
        raise ValueError(f"date_order {raw!r} is not one of {', '.join(DATE_ORDERS)}")
    return raw


def _tokens(raw: list | None) -> tuple[str, ...] | None:
    return None if raw is None else tuple(str(v) for v in raw)


def load_contract(path: Path) -> Contract:
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    lines = raw.get("lines") or {}
    return Contract(
        system=raw["system"],
        table=raw["table"],
        description=raw.get("description", ""),
        format=raw["format"],
        encodings=tuple(raw.get("encodings", ["utf-8"])),
        primary_key=tuple(raw["primary_key"]),
        event_date=raw.get("event_date"),
        columns=tuple(_column(c) for c in raw["columns"]),
        lines_source=lines.get("source"),
        line_columns=tuple(_column(c) for c in lines.get("columns", ())),
        derived=tuple(
            Derived(name=d["name"], source=d["from"], type=d["type"])
            for d in raw.get("derived", ())
        ),
        freshness_hours=(
            None if raw.get("freshness_hours", 36) is None else int(raw.get("freshness_hours", 36))
        ),
        timezone=str(raw.get("timezone", DEFAULT_ZONE)),
        null_tokens=_tokens(raw.get("null_tokens")),
        date_order=_date_order(raw.get("date_order")),
        max_file_mb=_max_file_mb(raw.get("max_file_mb", DEFAULT_MAX_FILE_MB)),
        plausible_from=_plausible_from(raw.get("plausible_from", DEFAULT_PLAUSIBLE_FROM)),
        max_days_ahead=_days_ahead(raw.get("max_days_ahead", DEFAULT_MAX_DAYS_AHEAD)),
    )


def _plausible_from(raw: object) -> date:
    if isinstance(raw, date):
        return raw
    try:
        return date.fromisoformat(str(raw))
    except ValueError:
        raise ValueError(f"plausible_from {raw!r} is not a date (YYYY-MM-DD)") from None


def _days_ahead(raw: object) -> int:
    if isinstance(raw, bool) or not isinstance(raw, int) or raw < 0:
        raise ValueError(f"max_days_ahead {raw!r} is not a whole number of days >= 0")
    return raw


def _max_file_mb(raw: object) -> float:
    if isinstance(raw, bool) or not isinstance(raw, int | float) or not raw > 0:
        raise ValueError(f"max_file_mb {raw!r} is not a positive number of MiB")
    return raw


@cache
def load_contracts(directory: Path = CONTRACTS_DIR) -> dict[str, Contract]:
    """All contracts, keyed by `system.table`, in a stable order."""
    contracts = [load_contract(p) for p in sorted(directory.glob("*/*.yaml"))]
    return {c.key: c for c in contracts}


def _rule(col: Column) -> str:
    parts = []
    if col.pattern:
        parts.append(f"matches `{col.pattern}`")
    if col.allowed:
        parts.append("one of " + ", ".join(f"`{v}`" for v in col.allowed))
    if col.min is not None:
        parts.append(f">= {col.min:g}")
    if col.max is not None:
        parts.append(f"<= {col.max:g}")
    if col.share:
        parts.append("a share (`15%` reads 0.15)")
    if col.negative_parens:
        parts.append("`(1.00)` reads -1.0")
    if col.null_tokens is not None:
        parts.append("null tokens: " + (", ".join(f"`{t}`" for t in col.null_tokens) or "none"))
    return "; ".join(parts)


def _cadence(hours: int | None) -> str:
    if hours is None:
        return "none (files arrive when people act; no freshness check)"
    return (
        f"a new file at least every {hours} hours"
        if hours < 72
        else (f"a new file at least every {hours // 24} days")
    )


def render_markdown(contracts: dict[str, Contract]) -> str:
    """The human-readable contracts page (docs/contracts.md), generated from the YAML."""
    out = [
        "# Source data contracts",
        "",
        "Generated from `contracts/*/*.yaml` by `bclake contracts`; do not edit by hand.",
        "",
        "Drop exports into `landing/<system>/<table>/` (any file name, one or many files).",
        "Headers may be the native name or any alias; extra columns are kept and reported;",
        "a missing required column rejects the file and lists the headers found; a row that",
        "breaks a rule (a ragged CSV row, a malformed NDJSON line, a bad value) is quarantined",
        "with its line number and the reason, and every other row still loads. CSV may be",
        "UTF-8 (with or without BOM), UTF-16 with a BOM (Excel's tab-separated Unicode text) or,",
        "where GBK is listed, GB18030 (its superset); the delimiter (comma, tab, semicolon, pipe)",
        "is detected; XLSX is read for CSV contracts (the sheet named like the table, else the",
        "first; title rows above the header skipped). NDJSON nested objects are addressed with",
        "dotted paths (`profile.gender`); an array of lines becomes one lake row per line.",
        "`bclake check FILE` shows all of this for one file without loading it.",
        "",
        "Values are read where their meaning is certain and quarantined, with a reason that",
        "names the cause, where it is not (`bclake.core.parsing`):",
        "",
        f"- null: empty, whitespace, {', '.join(f'`{t}`' for t in NULL_TOKENS)} (a contract or",
        "  column may replace the list with `null_tokens`);",
        f"- dates and timestamps: {DATE_FORMS}. A timestamp with an offset is stored as wall time",
        "  in the contract's zone and a date column takes that zone's calendar date;",
        "  `03/04/2024` is quarantined as `ambiguous_date`;",
        f"- numbers: {NUMBER_FORMS}; `1.234,5` or `12,34` is quarantined as `ambiguous_number`;",
        "- codes: every id and code column has a pattern; a code Excel turned into a number",
        "  (`1.62618E+11`, or all digits and too short: leading zeros lost) is quarantined as",
        "  `excel_mangled_code`; full-width characters are read as ASCII (NFKC).",
        "",
    ]
    systems: dict[str, list[Contract]] = {}
    for c in contracts.values():
        systems.setdefault(c.system, []).append(c)
    for system, tables in systems.items():
        out += [f"## {system}", ""]
        for c in tables:
            out += [
                f"### `{c.system}.{c.table}`",
                "",
                c.description,
                "",
                f"- landing folder: `landing/{c.system}/{c.table}/`",
                f"- format: {c.format}; encodings: {', '.join(c.encodings)}",
                f"- key: {', '.join(f'`{k}`' for k in c.primary_key)}",
                f"- time zone (offsets converted to its wall time): {c.timezone}",
                *(
                    [f"- day-and-month-first dates are written {c.date_order}"]
                    if c.date_order
                    else []
                ),
                f"- event date (lake partition): {f'`{c.event_date}`' if c.event_date else 'none'}"
                + (
                    f"; plausible from {c.plausible_from} to {c.max_days_ahead} days after the "
                    "day of ingest, else quarantined as `implausible_date`"
                    if c.event_date
                    else ""
                ),
                f"- largest file read: {c.max_file_mb:g} MiB",
                f"- expected cadence: {_cadence(c.freshness_hours)}",
            ]
            if c.lines_source:
                out.append(f"- nested lines: array `{c.lines_source}`")
            if c.null_tokens is not None:
                out.append("- null tokens: " + ", ".join(f"`{t}`" for t in c.null_tokens))
            out += [
                "",
                "| lake column | export field | aliases | type | required | rule | PII |",
                "|---|---|---|---|---|---|---|",
            ]
            for col in c.all_columns:
                field = (
                    f"`{c.lines_source}[].{col.source}`"
                    if col in c.line_columns
                    else f"`{col.source}`"
                )
                out.append(
                    f"| `{col.name}` | {field} | {', '.join(col.aliases)} | {col.type} | "
                    f"{'yes' if not col.nullable else ''} | {_rule(col)} | "
                    f"{_pii(col)} |"
                )
            for d in c.derived:
                out.append(f"| `{d.name}` | derived from `{d.source}` |  | {d.type} |  |  |  |")
            out.append("")
    return "\n".join(out)
