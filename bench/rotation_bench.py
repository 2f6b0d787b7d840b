"""Key rotation benchmark: `bclake rotate-pii-key` on a copy of a materialised data root.

The root (lake, warehouse, export sets, `DAGSTER_HOME`) is copied into a scratch folder
beside it, so the root itself keeps its key. Measured in the same run: the reference,
what moving everything by rebuilding would cost at the least (every lake part read and
written again, plus a byte copy of both warehouse files), and the rotation, step by step
from its log.

    python -m bench.rotation_bench --root DIR
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import polars as pl
from rich.console import Console
from rich.table import Table

from bclake.core.settings import Settings
from bclake.orchestration.rotation import rotate

NEW_KEY = "bench-rotation-key-2f9c41d7"


def rewrite_reference(settings: Settings, scratch: Path) -> float:
    """Seconds to read and write again every Parquet file of the lake and copy both
    warehouse files into `scratch`."""
    started = time.perf_counter()
    for i, part in enumerate(sorted(settings.lake.rglob("*.parquet"))):
        pl.read_parquet(part).write_parquet(scratch / f"{i}.parquet")
    for db in (settings.build_db, settings.published_db):
        if db.exists():
            shutil.copyfile(db, scratch / db.name)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, required=True)
    root = parser.parse_args().root.resolve()
    with tempfile.TemporaryDirectory(dir=root.parent, prefix=".rotation-bench-") as tmp:
        home = Path(tmp) / "home"
        home.mkdir()
        for name in ("lake", "warehouse", "exports", "dagster", ".bclake"):
            if (root / name).exists():
                shutil.copytree(root / name, home / name, symlinks=True)
        (home / "landing").mkdir()  # the names of the sources' files stay with the root
        settings = Settings.from_env(home)
        scratch = Path(tmp) / "reference"
        scratch.mkdir()
        reference = rewrite_reference(settings, scratch)
        shutil.rmtree(scratch)
        marks: list[tuple[float, str]] = []
        started = time.perf_counter()
        done = rotate(
            settings,
            NEW_KEY,
            home / "dagster",
            log=lambda m: marks.append((time.perf_counter() - started, m)),
        )
    table = Table(title=f"key rotation of {root}: {done.pseudonyms:,} pseudonyms")
    for col in ("step", "seconds", "vs reference"):
        table.add_column(col, justify="left" if col == "step" else "right")
    table.add_row("reference: rewrite every lake part + copy warehouse", f"{reference:.1f}", "1.00")
    steps = [m for m in marks if "lake parts checked" not in m[1]]  # progress lines aside
    for (at, what), (end, _) in zip(steps, [*steps[1:], (done.seconds, "")], strict=True):
        table.add_row(what, f"{end - at:.1f}", f"{(end - at) / reference:.2f}")
    table.add_row("whole rotation", f"{done.seconds:.1f}", f"{done.seconds / reference:.2f}")
    Console().print(table)
    Console().print(
        f"{done.lake_parts:,} lake parts rewritten, {done.warehouse_values} warehouse values, "
        f"{done.files} export and run-log files"
    )


if __name__ == "__main__":
    main()
