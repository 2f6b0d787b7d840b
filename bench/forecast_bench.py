"""Forecast benchmark: the pipeline's two forecasts on a built warehouse, and
`bclake forecast` on a generated long table of 10^6 daily rows.

Each measurement runs in a child process so its peak RSS is its own. The reference
for the 10^6-row run is a seasonal-naive forecast of the same file in polars (read,
one lag, write), measured in the same run: the ratio says what the model costs
over the cheapest forecast of the same data.

    python -m bench.forecast_bench --root DIR   # DIR/warehouse/build.duckdb has the marts
    python -m bench.forecast_bench --rows-only  # only the 10^6-row table
    python -m bench.forecast_bench --sizes      # seconds and backtest accuracy by size
    python -m bench.forecast_bench --busy       # the same forecast quiet and beside a CPU hog

`--sizes` times `bclake forecast` (as a user runs it, without `--backtest`; the same
seasonal-naive polars script as the reference time) on tables of 10^3, 10^4 and 10^5
daily rows (5 x 200, 20 x 500 and 100 x 1,000 days) and scores the
same model on a two-origin rolling backtest (WAPE of P50, P10-P90 coverage, and the
seasonal-naive WAPE as the reference for the ratio). `--code DIR` runs another checkout
of bclake (its package directory first on PYTHONPATH) for a before/after comparison.

`--busy` runs `bclake forecast` on the 10^4-row table alone and then beside a CPU hog (one
process spinning in a loop, as another job on the same machine would), for five ways
OpenMP's idle threads wait: bclake's default (3,000 spins, then sleep), 1,000 spins, libgomp's own
default (300,000 spins), sleeping at once (`PASSIVE`) and spinning (`ACTIVE`). It reports
wall seconds, CPU seconds and the slowdown busy / quiet of each.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import polars as pl
from rich.console import Console
from rich.table import Table

CHILD_PLANNING = """
import json, sys, time, duckdb
from bclake.ml.planning import forecast_region_sku_week, forecast_store_sku_week
con = duckdb.connect(sys.argv[1], read_only=True)
q = lambda s: con.sql(s).pl()
last = con.sql("select max(biz_date) from marts.fct_sell_through").fetchall()[0][0]
if sys.argv[2] == "region":
    args = (q("select * from marts.fct_sales_region_sku_week"),
            q("select * from marts.fct_promotions_region_sku_week"),
            q("select * from marts.dim_product"), last)
    run = forecast_region_sku_week
else:
    args = (q("select * from marts.fct_sales_store_sku_week"),
            q("select * from marts.fct_promotions_store_sku_week"), last)
    run = forecast_store_sku_week
con.close()
t = time.perf_counter()
r = run(*args)
s = r.scores.filter(r.scores["horizon"].is_null())
series = r.forecast.select(r.forecast.columns[:2]).n_unique()
wape = dict(zip(s["method"], s["wape"]))
print(json.dumps({"seconds": time.perf_counter() - t, "series": series, "wape": wape}))
"""

CHILD_NAIVE = """
import sys, polars as pl
df = pl.read_csv(sys.argv[1], try_parse_dates=True)
last = df["day"].max()
tail = df.filter(pl.col("day") > last - pl.duration(days=28))
tail = tail.with_columns(pl.col("day") + pl.duration(days=28))
tail.select("store", "item", "day", pl.col("sales").alias("p50")).write_csv(sys.argv[2])
"""


CHILD_BACKTEST = """
import json, sys, polars as pl
from bclake.ml.forecaster import LGBMForecaster
df = pl.read_csv(sys.argv[1], try_parse_dates=True)
model = LGBMForecaster(["store", "item"], "day", "sales", horizon=28, freq="D",
                       future_cols=("price", "promo", "event"), hist_cols=("traffic",),
                       calendar="none", fill="missing")
cv = model.cross_validation(df, n_windows=2)
total = cv["y"].sum()
print(json.dumps({
    "wape": float((cv["y"] - cv["p50"]).abs().sum() / total),
    "seasonal_naive": float((cv["y"] - cv["seasonal_naive"]).abs().sum() / total),
    "coverage": float(((cv["y"] >= cv["p10"]) & (cv["y"] <= cv["p90"])).mean()),
}))
"""

SIZES = ((5, 200), (20, 500), (100, 1000))  # (series, days): 10^3, 10^4, 10^5 rows


def child(
    args: list[str], env: dict[str, str] | None = None, cwd: Path | None = None
) -> tuple[float, float, str]:
    """(seconds, peak RSS MiB, stdout) of one child process, its own rusage via wait4."""
    started = time.perf_counter()
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen(args, stdout=out, stderr=err, text=True, env=env, cwd=cwd)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        seconds = time.perf_counter() - started
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    if proc.returncode != 0:
        raise SystemExit(f"{args[:3]} failed:\n{stdout}\n{stderr}")
    return seconds, usage.ru_maxrss / 1024, stdout


def long_table(path: Path, n_series: int = 1000, n_days: int = 1000, horizon: int = 28) -> Path:
    """10^6 daily rows: weekly and yearly seasonality, promotions with price cuts, events,
    a store-traffic column known only afterwards, and the future file for the horizon."""
    rng = np.random.default_rng(11)
    days = np.array(
        [date(2022, 1, 3) + timedelta(days=i) for i in range(n_days + horizon)],
        dtype="datetime64[D]",
    )
    t = np.arange(n_days + horizon)
    base = rng.gamma(2.0, 3.0, size=n_series)[:, None]
    season = 1 + 0.25 * np.sin(2 * np.pi * t / 365.25)[None, :]
    weekday = np.where((days.astype(int) + 3) % 7 >= 5, 1.3, 1.0)[None, :]  # 1970-01-01: Thu
    promo = (rng.random((n_series, n_days + horizon)) < 0.05).astype(np.int8)
    event = np.isin(t % 365, [40, 41, 42, 130, 131, 270, 271, 272])[None, :].repeat(n_series, 0)
    lam = base * season * weekday * (1 + 0.8 * promo) * (1 + 0.5 * event)
    sales = rng.poisson(lam)
    frame = pl.DataFrame(
        {
            "store": np.repeat([f"ST{i % 50:03d}" for i in range(n_series)], n_days + horizon),
            "item": np.repeat([f"IT{i:04d}" for i in range(n_series)], n_days + horizon),
            "day": np.tile(days, n_series),
            "sales": sales.ravel(),
            "price": np.where(promo, 8.5, 10.0).ravel(),
            "promo": promo.ravel(),
            "event": event.ravel().astype(np.int8),
            "traffic": rng.poisson(lam * 8).ravel(),
        }
    )
    cut = days[n_days - 1].astype(date)
    frame.filter(pl.col("day") <= cut).write_csv(path / "sales.csv")
    frame.filter(pl.col("day") > cut).select(
        "store", "item", "day", "price", "promo", "event"
    ).write_csv(path / "future.csv")
    return path / "sales.csv"


def forecast_cli(data: Path, tmp: Path) -> list[str]:
    """`bclake forecast` of a `long_table` in `tmp` as a user runs it (28 days, its future
    file, no Chinese calendar), through this interpreter."""
    return [
        sys.executable, "-m", "bclake.cli", "forecast", "--input", str(data),
        "--id-cols", "store,item", "--date-col", "day", "--target-col", "sales",
        "--horizon", "28", "--freq", "D", "--future", str(tmp / "future.csv"),
        "--calendar", "none", "--out", str(tmp / "forecast.parquet"),
    ]  # fmt: skip


def by_size(console: Console, code: Path | None) -> None:
    """Seconds of `bclake forecast` and two-origin backtest accuracy per table size."""
    env = dict(os.environ, BCLAKE_QUIET="1")
    if code is not None:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(code), env.get("PYTHONPATH")]))
    table = Table(title=f"bclake forecast by size ({code or 'this checkout'})")
    for col in ("rows", "series x days", "seconds", "x naive time", "peak RSS MiB",
                "backtest s", "WAPE", "seasonal naive", "ratio", "P10-P90"):  # fmt: skip
        table.add_column(col, justify="right")
    for n_series, n_days in SIZES:
        with tempfile.TemporaryDirectory() as tmp:
            tmp = Path(tmp)
            data = long_table(tmp, n_series=n_series, n_days=n_days)
            cli = forecast_cli(data, tmp)
            # run from the temporary folder: `-m` and `-c` put the working directory first
            # on sys.path, ahead of PYTHONPATH (`--code`)
            seconds, rss, _ = child(cli, env, cwd=tmp)
            naive = [sys.executable, "-c", CHILD_NAIVE, str(data), str(tmp / "naive.csv")]
            ref_s, _, _ = child(naive, env, cwd=tmp)
            bt_seconds, _, out = child(
                [sys.executable, "-c", CHILD_BACKTEST, str(data)], env, cwd=tmp
            )
            acc = json.loads(out.strip().splitlines()[-1])
        row = (
            f"{n_series * n_days:,}", f"{n_series} x {n_days}", f"{seconds:.1f}",
            f"{seconds / ref_s:.0f}", f"{rss:,.0f}",
            f"{bt_seconds:.1f}", f"{acc['wape']:.3f}", f"{acc['seasonal_naive']:.3f}",
            f"{acc['wape'] / acc['seasonal_naive']:.2f}", f"{acc['coverage']:.2f}",
        )  # fmt: skip
        console.print(" | ".join(row))
        table.add_row(*row)
    console.print(table)


WAITS = {  # how idle OpenMP threads wait: label -> environment
    "bclake default: 3,000 spins": {},
    "1,000 spins": {"GOMP_SPINCOUNT": "1000"},
    "libgomp default: 300,000 spins": {"GOMP_SPINCOUNT": "300000"},
    "sleep at once (PASSIVE)": {"OMP_WAIT_POLICY": "PASSIVE"},
    "spin (ACTIVE)": {"OMP_WAIT_POLICY": "ACTIVE"},
}
HOG = "import time\nend = time.time() + 900\nwhile time.time() < end:\n    pass\n"


def _cpu_child(args: list[str], env: dict[str, str], cwd: Path) -> tuple[float, float]:
    """(wall seconds, CPU seconds user + system) of one child process."""
    started = time.perf_counter()
    with tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=err, env=env, cwd=cwd)
        _, status, usage = os.wait4(proc.pid, 0)
        if os.waitstatus_to_exitcode(status) != 0:
            err.seek(0)
            raise SystemExit(f"{args[:4]} failed:\n{err.read()}")
    return time.perf_counter() - started, usage.ru_utime + usage.ru_stime


def busy(console: Console) -> None:
    """Slowdown of `bclake forecast` (10^4 rows) beside a CPU hog, per OpenMP wait policy."""
    table = Table(title="bclake forecast on a busy machine (20 series x 500 days)")
    for col in ("idle OpenMP threads", "quiet s", "quiet CPU s", "busy s", "busy CPU s",
                "busy / quiet"):  # fmt: skip
        table.add_column(col, justify="right")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        data = long_table(tmp, n_series=20, n_days=500)
        cli = forecast_cli(data, tmp)
        for label, wait in WAITS.items():
            env = {
                k: v
                for k, v in os.environ.items()
                if k not in ("OMP_NUM_THREADS", "OMP_WAIT_POLICY", "GOMP_SPINCOUNT")
            }
            env.update(BCLAKE_QUIET="1", **wait)
            quiet_s, quiet_cpu = _cpu_child(cli, env, tmp)
            hog = subprocess.Popen([sys.executable, "-c", HOG])
            try:
                time.sleep(1.0)
                busy_s, busy_cpu = _cpu_child(cli, env, tmp)
            finally:
                hog.kill()
                hog.wait()
            row = (label, f"{quiet_s:.1f}", f"{quiet_cpu:.1f}", f"{busy_s:.1f}",
                   f"{busy_cpu:.1f}", f"{busy_s / quiet_s:.2f}")  # fmt: skip
            console.print(" | ".join(row))
            table.add_row(*row)
    console.print(table)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--root", type=Path, default=None)
    parser.add_argument("--rows-only", action="store_true")
    parser.add_argument("--sizes", action="store_true")
    parser.add_argument("--busy", action="store_true")
    parser.add_argument("--code", type=Path, default=None)
    args = parser.parse_args()
    console = Console()
    if args.sizes:
        by_size(console, args.code)
        return
    if args.busy:
        busy(console)
        return
    table = Table(title="forecast benchmark")
    for col in ("run", "seconds", "peak RSS MiB", "notes"):
        table.add_column(col, justify="left" if col in ("run", "notes") else "right")

    if not args.rows_only:
        db = args.root / "warehouse" / "build.duckdb"
        for grain in ("region", "store"):
            seconds, rss, out = child([sys.executable, "-c", CHILD_PLANNING, str(db), grain])
            info = json.loads(out.strip().splitlines()[-1])
            wape = ", ".join(f"{k} {v:.3f}" for k, v in info["wape"].items())
            console.print(f"{grain}: {seconds:.1f}s, peak {rss:,.0f} MiB, {info}")
            table.add_row(
                f"{grain} x SKU x week: backtest + fit + predict",
                f"{seconds:.1f}",
                f"{rss:,.0f}",
                f"{info['series']:,} series; model {info['seconds']:.1f}s; WAPE {wape}",
            )

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        data = long_table(tmp)
        n = pl.scan_csv(data).select(pl.len()).collect().item()
        ref_s, _, _ = child([sys.executable, "-c", CHILD_NAIVE, str(data), str(tmp / "n.csv")])
        cli = [
            str(Path(sys.executable).with_name("bclake")), "forecast", "--input", str(data),
            "--id-cols", "store,item", "--date-col", "day", "--target-col", "sales",
            "--horizon", "28", "--freq", "D", "--future", str(tmp / "future.csv"),
            "--out", str(tmp / "forecast.parquet"),
        ]  # fmt: skip
        seconds, rss, _ = child(cli)
        table.add_row(
            f"bclake forecast, {n:,} daily rows, 1,000 series, 28 days",
            f"{seconds:.1f}",
            f"{rss:,.0f}",
            f"seasonal-naive reference {ref_s:.1f}s; ratio {seconds / ref_s:.0f}x",
        )
    console.print(table)


if __name__ == "__main__":
    main()
