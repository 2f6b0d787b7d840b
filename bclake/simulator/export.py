"""Write entity and event frames as the source systems would export them.

Column names, header language and nesting come from the data contracts, so
the exports are exactly what ingest expects from a real system.
"""

from __future__ import annotations

import os
from pathlib import Path

import polars as pl

from bclake.core.contracts import Contract


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
