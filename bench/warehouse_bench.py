"""Warehouse benchmark: a full dbt build against an incremental daily run.

On a data root whose lake is loaded (the ingest benchmark leaves one): time
`dbt build --full-refresh`, add one simulated day (`simulate --continue --days 1`),
ingest it, then time the incremental `dbt build`. Prints the ratio (target <= 0.10)
for the whole project and for the incremental facts alone.

    python -m bench.warehouse_bench --root DIR [--full-only]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from bclake.core.contracts import load_contracts
from bclake.core.settings import DBT_PROJECT_DIR, Settings
from bclake.ingest.loader import ingest_table

BIG_FACTS = ("fct_sell_through", "fct_store_orders", "fct_product_scans")


def dbt(settings: Settings, *args: str) -> float:
    """Seconds one dbt command takes; a failure stops the benchmark with dbt's output."""
    started = time.perf_counter()
    proc = subprocess.run(
        [
            str(Path(sys.executable).with_name("dbt")),
            *args,
            "--project-dir",
            str(DBT_PROJECT_DIR),
            "--profiles-dir",
            str(DBT_PROJECT_DIR),
            "--target-path",
            str(settings.home / "bench_dbt_target"),
            "--log-path",
            str(settings.home / "bench_dbt_logs"),
        ],
        env={**os.environ, **settings.dbt_env()},
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        sys.exit(f"dbt {' '.join(args)} failed:\n{proc.stdout[-3000:]}")
    return time.perf_counter() - started


def load_lake(root: Path) -> Settings:
    """Settings of `root`, its warehouse folder made and whatever is not in the lake ingested."""
    settings = Settings.from_env(root)
    settings.warehouse_dir.mkdir(parents=True, exist_ok=True)
    for contract in load_contracts().values():
        ingest_table(contract, settings)
    return settings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--root", type=Path, required=True)
    parser.add_argument("--full-only", action="store_true", help="time the full build only")
    args = parser.parse_args()
    settings = load_lake(args.root)
    console = Console()
    full = dbt(settings, "build", "--full-refresh")
    full_facts = dbt(settings, "run", "--full-refresh", "--select", *BIG_FACTS)
    console.print(f"full build {full:.1f}s; big facts full refresh {full_facts:.1f}s")
    table = Table(title=f"dbt build over {settings.home.name} ({settings.home})")
    table.add_column("run")
    table.add_column("seconds", justify="right")
    table.add_column("ratio to full", justify="right")
    table.add_row("full build (dbt build --full-refresh)", f"{full:.1f}", "1.00")
    if not args.full_only:
        from bclake.simulator.run import continue_simulation

        continue_simulation(settings.home, days=1, progress=False)
        started = time.perf_counter()
        for contract in load_contracts().values():
            ingest_table(contract, settings)
        ingest_s = time.perf_counter() - started
        incremental = dbt(settings, "build")
        table.add_row("ingest of the new day", f"{ingest_s:.1f}", "")
        table.add_row(
            "incremental build (dbt build)", f"{incremental:.1f}", f"{incremental / full:.2f}"
        )
        dbt(settings, "run", "--full-refresh", "--select", *BIG_FACTS)
        continue_simulation(settings.home, days=1, progress=False)
        for contract in load_contracts().values():
            ingest_table(contract, settings)
        facts = dbt(settings, "run", "--select", *BIG_FACTS)
        table.add_row("big facts, full refresh", f"{full_facts:.1f}", "1.00")
        table.add_row("big facts, incremental day", f"{facts:.1f}", f"{facts / full_facts:.2f}")
    console.print(table)


if __name__ == "__main__":
    main()
