"""Ingest benchmark: bclake ingest against a bare polars CSV -> Parquet copy of the same files.

Both run in this process over the same landing files of the CSV tables; the
ratio (bare seconds / ingest seconds, i.e. ingest speed relative to bare) says
what validation, quarantine, hashing, PII and lineage cost. Target >= 0.5.

    python -m bench.ingest_bench [--scale demo] [--root DIR]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import polars as pl
from rich.console import Console
from rich.table import Table

from bclake.core.contracts import load_contracts
from bclake.core.settings import Settings
from bclake.ingest.loader import ingest_table


def main() -> None:
    # the files were written before the bench starts; it times reading, not the settling wait
    os.environ.setdefault("BCLAKE_LANDING_SETTLE_SECONDS", "0")
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--scale", default="demo")
    parser.add_argument("--root", type=Path, default=None)
    args = parser.parse_args()
    root = args.root or Path(tempfile.mkdtemp(prefix="bclake-ingest-bench-"))
    if not (root / "landing" / "_simulation.json").exists():
        # in a child process, so the peak RSS below is the ingest's alone
        subprocess.run(
            [sys.executable, "-m", "bclake.cli", "simulate", "--scale", args.scale, "--out", root],
            check=True,
            stdout=subprocess.DEVNULL,
        )
    settings = Settings.from_env(root)
    shutil.rmtree(settings.lake, ignore_errors=True)
    console = Console()
    table = Table(title=f"ingest vs bare polars, scale {args.scale}")
    for col in ("table", "rows", "ingest s", "bare s", "ingest rows/s", "ratio bare/ingest"):
        table.add_column(col, justify="right")
    total_ingest = total_bare = 0.0
    total_rows = 0
    for contract in load_contracts().values():
        if contract.format != "csv":
            continue
        files = sorted((settings.landing / contract.system / contract.table).glob("*.csv"))
        started = time.perf_counter()
        result = ingest_table(contract, settings)
        ingest_s = time.perf_counter() - started
        bare_dir = root / "bare" / contract.table
        bare_dir.mkdir(parents=True, exist_ok=True)
        started = time.perf_counter()
        for i, path in enumerate(files):
            # the bare copy skips what it cannot read; ingest quarantines it
            with contextlib.suppress(pl.exceptions.PolarsError):
                pl.scan_csv(path).sink_parquet(bare_dir / f"{i}.parquet")
        bare_s = time.perf_counter() - started
        rows = result.total("rows_in")
        total_ingest += ingest_s
        total_rows += rows
        total_bare += bare_s
        table.add_row(
            contract.key,
            f"{rows:,}",
            f"{ingest_s:.2f}",
            f"{bare_s:.2f}",
            f"{rows / ingest_s:,.0f}",
            f"{bare_s / ingest_s:.2f}",
        )
    console.print(table)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    console.print(
        f"all CSV tables: {total_rows:,} rows, ingest {total_ingest:.1f} s, bare "
        f"{total_bare:.1f} s, ratio bare/ingest = {total_bare / total_ingest:.2f} "
        f"(target >= 0.5); peak RSS {peak:,.0f} MiB"
    )


if __name__ == "__main__":
    main()
