"""Erasure benchmark: erase the consumer with the most scans from a materialised data root.

Measures, on a root the pipeline has run over (`make bench` runs it after the demo
pipeline): the request (`bclake erase` + ingest of the request file), the erasure step
(`orchestration.erasure.carry_out`: lake, both warehouse files, exports), the run-log
scrub (`finish`) and the step on the next run, when no one is left to find. The
reference, measured in the same run, is what erasing by rebuilding would cost: every
Parquet part of the tables that hold consumers read and written again, plus a plain copy
of both warehouse files. The root is changed: run it last.

With `--lake-only` (a root simulated at `large`, whose warehouse is not built here) every
source is ingested first when the lake is empty, the consumer is chosen from the lake, and
the step covers the lake (and export sets, if any); the reference is the lake part alone.

`--consumer ID` erases that consumer instead of the one with the most scans (the worst
case: a person in nearly every day's part).

    python -m bench.erasure_bench --root DIR [--lake-only] [--consumer ID]
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

import duckdb
import polars as pl
from rich.console import Console
from rich.table import Table

from bclake.core.contracts import load_contracts
from bclake.core.settings import Settings
from bclake.ingest.erasure import write_request
from bclake.ingest.loader import ingest_table
from bclake.ingest.paths import table_dir
from bclake.orchestration.erasure import carry_out, finish


def rebuild_reference(settings: Settings) -> float:
    """Seconds to read and write again every lake part of the tables with subject columns,
    plus copying both warehouse files: erasure by rebuilding."""
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(dir=settings.home) as scratch:
        for contract in load_contracts().values():
            if not any(c.subject for c in contract.all_columns):
                continue
            for i, part in enumerate(table_dir(settings.lake, contract).rglob("part-*.parquet")):
                pl.read_parquet(part).write_parquet(Path(scratch) / f"{contract.table}-{i}.pq")
        for db in (settings.build_db, settings.published_db):
            if db.exists():
                shutil.copyfile(db, Path(scratch) / db.name)
    return time.perf_counter() - started


def most_scanned_in_lake(settings: Settings, consumer: str | None = None) -> tuple[str, int]:
    """(consumer id, scans) of `consumer`, or of the consumer with the most product scans
    in the lake."""
    parts = table_dir(settings.lake, load_contracts()["code.product_scans"])
    chosen = pl.col("consumer_id") == consumer if consumer else pl.lit(True)
    return (
        pl.scan_parquet(parts / "**" / "part-*.parquet")
        .select("consumer_id")
        .drop_nulls()
        .filter(chosen)
        .group_by("consumer_id")
        .len()
        .sort(["len", "consumer_id"], descending=[True, False])
        .head(1)
        .collect()
        .row(0)
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, required=True)
    parser.add_argument("--lake-only", action="store_true")
    parser.add_argument("--consumer", default=None)
    args = parser.parse_args()
    root = args.root
    os.environ["BCLAKE_LANDING_SETTLE_SECONDS"] = "0"  # the request file is complete
    settings = Settings.from_env(root)
    contracts = load_contracts()
    if args.lake_only:
        if not (settings.lake / "_ledger").exists():
            started = time.perf_counter()
            for contract in contracts.values():
                ingest_table(contract, settings)
            Console().print(f"ingested every source in {time.perf_counter() - started:.0f}s")
        consumer, scans = most_scanned_in_lake(settings, args.consumer)
    else:
        with duckdb.connect(str(settings.published_db), read_only=True) as con:
            consumer, scans = con.execute(
                "select consumer_id, count(*) from marts.fct_product_scans "
                "where consumer_id is not null group by 1 order by 2 desc, 1 limit 1"
            ).fetchall()[0]
    reference = rebuild_reference(settings)
    timings: dict[str, float] = {}
    started = time.perf_counter()
    write_request(settings, consumer, None)
    ingest_table(contracts["cdp.erasure_requests"], settings)
    timings["request (write + ingest)"] = time.perf_counter() - started
    started = time.perf_counter()
    outcome = carry_out(settings, contracts)
    timings["erasure step (lake, warehouse, exports)"] = time.perf_counter() - started
    started = time.perf_counter()
    finish(settings, settings.dagster_home)
    timings["run-log scrub"] = time.perf_counter() - started
    started = time.perf_counter()
    carry_out(settings, contracts)
    timings["next run's step (no one left)"] = time.perf_counter() - started

    rows = int(outcome.receipts.filter(pl.col("place").str.starts_with("lake"))["rows"].sum())
    table = Table(title=f"erasure of one consumer ({scans:,} scans, {rows:,} lake rows) in {root}")
    for col in ("step", "seconds", "vs rebuilding"):
        table.add_column(col, justify="left" if col == "step" else "right")
    what = "rebuild consumer tables" + ("" if args.lake_only else " + copy warehouse")
    table.add_row(f"reference: {what}", f"{reference:.1f}", "1.00")
    for step, seconds in timings.items():
        table.add_row(step, f"{seconds:.1f}", f"{seconds / reference:.2f}")
    Console().print(table)


if __name__ == "__main__":
    main()
