"""Write entity and event frames as the source systems would export them.

Column names, header language and nesting come from the data contracts, so
the exports are exactly what ingest expects from a real system. `Landing`
places each file under `landing/<system>/<table>/` and, in continued runs,
holds back a share of event rows that arrive one run later as `_late` files.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import polars as pl

from bclake.core.contracts import Contract, load_contracts

LATE_TABLES = ("dms.sell_through", "dms.store_orders", "code.product_scans")
LATE_SHARE = 0.05  # in continued runs, rows of these tables that arrive a run late


@dataclass
class LateRows:
    """Rows held back for the next run: (table key, rows, file name without extension)."""

    share: float = 0.0  # share of rows of `LATE_TABLES` held back, 0 in a fresh simulation
    pending: list[tuple[str, pl.DataFrame, str]] = field(default_factory=list)


class Landing:
    """Writes export files under `root` (the landing folder) and counts lake rows per table.

    `late` is part of the saved simulation state; `rng` draws which rows are held back.
    """

    def __init__(self, root: Path, late: LateRows, rng: np.random.Generator) -> None:
        self.root, self.late, self.rng = root, late, rng
        self.contracts = load_contracts()
        self.rows: dict[str, int] = {}  # table key -> lake rows written by this run

    def write(self, table: str, frame: pl.DataFrame, name: str, header: str = "source") -> None:
        """Export `frame` (lake column names) as `name`.<csv|ndjson> of contract `table`.

        An empty frame writes nothing: systems export nothing rather than an empty file.
        """
        if self.late.share and table in LATE_TABLES and frame.height:
            late = pl.Series(self.rng.random(frame.height) < self.late.share)
            self.late.pending.append((table, frame.filter(late), f"{name}_late"))
            frame = frame.filter(~late)
        self._write(table, frame, name, header)

    def deliver_late(self) -> None:
        """Deliver the rows held back last run, each file under its own event day."""
        for table, frame, name in self.late.pending:
            self._write(table, frame, name)
        self.late.pending = []

    def _write(self, table: str, frame: pl.DataFrame, name: str, header: str = "source") -> None:
        if frame.is_empty():
            return
        contract = self.contracts[table]
        ext = "csv" if contract.format == "csv" else "ndjson"
        path = self.root / contract.system / contract.table / f"{name}.{ext}"
        self.rows[table] = self.rows.get(table, 0) + write_export(contract, frame, path, header)


def to_source_shape(
    contract: Contract, frame: pl.DataFrame, header: str = "source"
) -> pl.DataFrame:
    """Rename lake columns to the export's native names and nest lines where the contract does.

    `header="zh"` uses each column's first alias (the Chinese header) where it has one.
    """

    def native(col) -> str:
        return col.aliases[0] if header == "zh" and col.aliases else col.source

    out = frame.select([c.name for c in contract.all_columns])
    for col in contract.all_columns:
        if col.type == "date":
            out = out.with_columns(pl.col(col.name).dt.strftime("%Y-%m-%d"))
        elif col.type == "timestamp":
            out = out.with_columns(pl.col(col.name).dt.strftime("%Y-%m-%d %H:%M:%S"))
    if contract.lines_source:
        heads = [c.name for c in contract.columns]
        lines = pl.struct([pl.col(c.name).alias(c.source) for c in contract.line_columns])
        out = out.group_by(heads, maintain_order=True).agg(lines.alias(contract.lines_source))
        return _nest(out.rename({c.name: native(c) for c in contract.columns}))
    return _nest(out.rename({c.name: native(c) for c in contract.all_columns}))


def _nest(frame: pl.DataFrame) -> pl.DataFrame:
    """Turn dotted native names (`profile.gender`) into nested objects, in column order."""
    groups: dict[str, list[str]] = {}
    for col in frame.columns:
        if "." in col:
            groups.setdefault(col.split(".", 1)[0], []).append(col)
    if not groups:
        return frame
    exprs, done = [], set()
    for col in frame.columns:
        head = col.split(".", 1)[0]
        if "." not in col:
            exprs.append(pl.col(col))
        elif head not in done:
            done.add(head)
            exprs.append(
                pl.struct([pl.col(c).alias(c.split(".", 1)[1]) for c in groups[head]]).alias(head)
            )
    return frame.select(exprs)


def write_export(
    contract: Contract, frame: pl.DataFrame, path: Path, header: str = "source"
) -> int:
    """Write one export file atomically; returns the number of lake rows (lines, not documents)."""
    shaped = to_source_shape(contract, frame, header)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    if contract.format == "csv":
        shaped.write_csv(tmp)
    elif contract.format == "ndjson":
        shaped.write_ndjson(tmp)
    else:
        raise ValueError(f"{contract.key}: cannot write format {contract.format!r}")
    os.replace(tmp, path)
    return frame.height
