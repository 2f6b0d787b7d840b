"""What the model assets share: the keys of warehouse tables and reading them whole."""

from __future__ import annotations

import dagster as dg
import duckdb
import polars as pl


def ml_key(name: str) -> dg.AssetKey:
    """The asset key of a table the models write (`ml.<name>`)."""
    return dg.AssetKey(["ml", name])


def marts_key(name: str) -> dg.AssetKey:
    """The asset key of a dbt mart (`marts.<name>`)."""
    return dg.AssetKey(["marts", name])


def read_table(con: duckdb.DuckDBPyConnection, table: str) -> pl.DataFrame:
    """A whole warehouse table (`schema.name`) as a frame."""
    return con.sql(f"select * from {table}").pl()


def markdown(frame: pl.DataFrame) -> dg.MetadataValue:
    """A small frame as a Markdown table for materialisation metadata."""
    return dg.MetadataValue.md(frame.to_pandas().to_markdown(index=False))
