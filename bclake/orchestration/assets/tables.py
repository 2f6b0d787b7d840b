"""What the model assets share: the keys of warehouse tables, reading them whole, and the
concurrency pool of the heavy model fits."""

from __future__ import annotations

import time

import dagster as dg
import duckdb
import polars as pl

# Dagster concurrency pool of the assets that fit models (LightGBM uses every CPU the process
# may use). The dagster.yaml `bclake` writes limits each pool to one run at a time
# (`concurrency.pools`: granularity `run`, default_limit 1): the run queue holds a second
# run that would fit models until the first ends, so it neither runs nor waits inside a
# step. Step granularity is not used: a step waiting for a slot polls without sleeping in
# Dagster 1.13, and a step holding a slot while it waits for the data root's writer lock
# could deadlock with a `bclake pipeline` run that holds the lock (in-process runs never
# wait for a pool; the writer lock orders their writing steps).
MODEL_POOL = "models"


def ml_key(name: str) -> dg.AssetKey:
    """The asset key of a table the models write (`ml.<name>`)."""
    return dg.AssetKey(["ml", name])


def marts_key(name: str) -> dg.AssetKey:
    """The asset key of a dbt mart (`marts.<name>`)."""
    return dg.AssetKey(["marts", name])


def ml_specs(
    tables: dict[str, str],
    deps: list[dg.AssetKey],
    group: str,
    kinds: set[str],
) -> list[dg.AssetSpec]:
    """One `AssetSpec` per `ml.<name>` table an engine's multi-asset writes (`tables`:
    name -> description), each depending on `deps`, in `group`, with `kinds`."""
    return [
        dg.AssetSpec(
            ml_key(name), description=description, deps=deps, group_name=group, kinds=kinds
        )
        for name, description in tables.items()
    ]


def read_table(con: duckdb.DuckDBPyConnection, table: str) -> pl.DataFrame:
    """A whole warehouse table (`schema.name`) as a frame."""
    return con.sql(f"select * from {table}").pl()


def markdown(frame: pl.DataFrame) -> dg.MetadataValue:
    """A small frame as a Markdown table for materialisation metadata."""
    return dg.MetadataValue.md(frame.to_pandas().to_markdown(index=False))


def throughput(started: float, rows: int, name: str = "rows") -> dict[str, float | int]:
    """Materialisation metadata of a step's duration and pace: `duration_s` (seconds since
    `started`, a `time.perf_counter()` reading), `<name>` (rows) and `<name>_per_s`."""
    seconds = time.perf_counter() - started
    return {
        "duration_s": round(seconds, 2),
        name: rows,
        f"{name}_per_s": round(rows / seconds, 1) if seconds > 0 else 0.0,
    }
