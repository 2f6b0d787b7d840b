"""Data contracts: the YAML files in `contracts/` read into typed objects.

The simulator writes exports from these and ingest validates against them, so
there is exactly one description of every source table.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import yaml

from bclake.settings import CONTRACTS_DIR

TYPES = ("string", "int", "float", "date", "timestamp", "bool")


@dataclass(frozen=True)
class Column:
    name: str
    source: str
    type: str
    nullable: bool = True
    aliases: tuple[str, ...] = ()
    pii: bool = False
    pattern: str | None = None  # regular expression a string value must match in full
    allowed: tuple[str, ...] | None = None
    min: float | None = None
    max: float | None = None

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
        pattern=raw.get("pattern"),
        allowed=tuple(str(v) for v in raw["allowed"]) if "allowed" in raw else None,
        min=raw.get("min"),
        max=raw.get("max"),
    )


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
    )


@cache
def load_contracts(directory: Path = CONTRACTS_DIR) -> dict[str, Contract]:
    """All contracts, keyed by `system.table`, in a stable order."""
    contracts = [load_contract(p) for p in sorted(directory.glob("*/*.yaml"))]
    return {c.key: c for c in contracts}
