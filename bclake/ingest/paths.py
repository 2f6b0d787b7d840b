"""Where a source table lives under landing/, the lake and its quarantine, and how
files are written there (atomically, so a reader never sees half a file)."""

from __future__ import annotations

import os
from pathlib import Path

import polars as pl

from bclake.core.contracts import Contract


def table_dir(root: Path, contract: Contract) -> Path:
    """`root/<system>/<table>`: the table's folder under landing/, the lake or its quarantine."""
    return root / contract.system / contract.table


def quarantine_dir(lake: Path, contract: Contract) -> Path:
    """The folder of a table's quarantined rows: `lake/_quarantine/<system>/<table>`."""
    return table_dir(lake / "_quarantine", contract)


def write_parquet_atomic(frame: pl.DataFrame, path: Path) -> None:
    """Write `frame` to a hidden temporary file beside `path`, then rename it into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    frame.write_parquet(tmp)
    os.replace(tmp, path)
