"""Writing polars frames into a DuckDB warehouse file as tables."""

from __future__ import annotations

import duckdb
import polars as pl


def write_tables(
    con: duckdb.DuckDBPyConnection, schema: str, tables: dict[str, pl.DataFrame]
) -> None:
    """Create (or replace) `schema.<name>` from each frame, through Arrow without copies."""
    con.execute(f"create schema if not exists {schema}")
    for name, frame in tables.items():
        con.register("_frame", frame.to_arrow())
        try:
            con.execute(f"create or replace table {schema}.{name} as select * from _frame")
        finally:
            con.unregister("_frame")
