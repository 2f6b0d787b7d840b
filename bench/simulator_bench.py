"""Simulator benchmark: rows/s and peak RSS per scale preset, and linearity tiny vs demo.

Each preset runs in a fresh child process so its peak RSS is its own. Prints a
table; nothing here asserts a time (timings vary by machine), the ratio is
what to compare between runs.

    python -m bench.simulator_bench [--scales tiny,demo,large] [--root DIR]
"""

from __future__ import annotations

import argparse
import itertools
import json
import platform
import resource
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

from rich.console import Console
from rich.table import Table

CHILD = """
import json, sys, time
from pathlib import Path
from bclake.simulator.run import simulate
t = time.perf_counter()
rows = simulate(Path(sys.argv[1]), sys.argv[2], seed=42, progress=False)
print(json.dumps({"seconds": time.perf_counter() - t, "rows": rows}))
"""


def run_preset(scale: str, root: Path) -> dict:
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, str(root / scale), scale],
        capture_output=True,
        text=True,
        check=True,
    )
    peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    total = sum(out["rows"].values())
    return {
        "scale": scale,
        "seconds": out["seconds"],
        "rows": total,
        "scans": out["rows"].get("code.product_scans", 0),
        "rows_per_s": total / out["seconds"],
        # ru_maxrss of children is the max over all children so far: report only growth
        "peak_rss_mib": max(peak_kib, before) / 1024,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--scales", default="tiny,demo")
    parser.add_argument("--root", type=Path, default=None)
    args = parser.parse_args()
    root = args.root or Path(tempfile.mkdtemp(prefix="bclake-bench-"))
    results = []
    for scale in args.scales.split(","):
        started = time.perf_counter()
        results.append(run_preset(scale, root))
        results[-1]["wall_s"] = time.perf_counter() - started
    table = Table(
        title=f"simulator benchmark, {date.today()}, {platform.machine()}, "
        f"{platform.python_version()}"
    )
    for col in ("scale", "rows", "product scans", "seconds", "rows/s", "peak RSS MiB"):
        table.add_column(col, justify="right")
    for r in results:
        table.add_row(
            r["scale"],
            f"{r['rows']:,}",
            f"{r['scans']:,}",
            f"{r['seconds']:.1f}",
            f"{r['rows_per_s']:,.0f}",
            f"{r['peak_rss_mib']:,.0f}",
        )
    console = Console()
    console.print(table)
    for small, big in itertools.pairwise(results):
        console.print(
            f"linearity: rows/s {big['scale']} / {small['scale']} = "
            f"{big['rows_per_s'] / small['rows_per_s']:.2f} (1.0 = cost linear in rows; "
            "above 1, fixed start-up costs dominate the smaller world)"
        )


if __name__ == "__main__":
    main()
