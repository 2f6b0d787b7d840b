"""Dashboard benchmark: how long each page's script takes per demo user (target <= 2 s).

Runs the app with `streamlit.testing` over a published warehouse, signed in as each
demo user, and times every page cold (caches cleared, as after a new publish) and
warm (the same page again). The reference, measured in the same run, is a page that
only writes a title: the ratio says how much of a page's time is ours.

    python -m bench.dashboard_bench --root DIR   # a data root with a published warehouse

Set BENCH_USERS=hq,d0004 to time some users only.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import streamlit as st
from rich.console import Console
from rich.table import Table
from streamlit.testing.v1 import AppTest

APP = str(Path(__file__).resolve().parents[1] / "bclake" / "dashboards" / "app.py")
PAGES = ("overview", "channel", "consumers", "products", "forecast", "quality", "downloads")
USERS = tuple(os.environ.get("BENCH_USERS", "hq,huabei,d0004,s000006").split(","))
TARGET_S = 2.0


def reference_seconds(repeats: int = 5) -> float:
    """A script that renders a title only: Streamlit's own cost per page run."""
    with tempfile.NamedTemporaryFile("w", suffix=".py", delete=False) as f:
        f.write("import streamlit as st\nst.title('reference')\n")
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        AppTest.from_file(f.name, default_timeout=60).run()
        times.append(time.perf_counter() - started)
    os.unlink(f.name)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--root", type=Path, required=True)
    args = parser.parse_args()
    os.environ["BCLAKE_HOME"] = str(args.root.resolve())
    published = args.root / "warehouse" / "published.duckdb"
    if not published.exists():
        raise SystemExit(
            f"{published} does not exist: run `BCLAKE_HOME={args.root} bclake pipeline` first"
        )
    from bclake.dashboards.auth import load_users

    users = load_users()
    reference = reference_seconds()
    console = Console()
    table = Table(title=f"page script seconds over {args.root} (reference {reference:.3f}s)")
    table.add_column("user")
    for page in PAGES:
        table.add_column(page, justify="right")
    worst = 0.0
    for username in USERS:
        cold, warm = [], []
        for page in PAGES:
            at = AppTest.from_file(APP, default_timeout=300)
            at.session_state["user"] = users[username]
            at.run()
            st.cache_data.clear()  # as after a new publish
            st.cache_resource.clear()
            started = time.perf_counter()
            at.switch_page(f"views/{page}.py").run()
            cold.append(time.perf_counter() - started)
            if at.exception:
                raise SystemExit(f"{username} {page}: {at.exception[0].value}")
            started = time.perf_counter()
            at.switch_page(f"views/{page}.py").run()
            warm.append(time.perf_counter() - started)
        worst = max(worst, *cold)
        table.add_row(f"{username} cold", *(f"{s:.2f}" for s in cold))
        table.add_row(f"{username} warm", *(f"{s:.2f}" for s in warm))
        table.add_row(f"{username} cold/ref", *(f"{s / reference:.0f}x" for s in cold))
    console.print(table)
    verdict = "met" if worst <= TARGET_S else "NOT met"
    console.print(f"slowest cold page {worst:.2f}s (target <= {TARGET_S:.0f}s: {verdict})")


if __name__ == "__main__":
    main()
