"""Training backends: `LGBMForecaster` fitted locally and on Dask, on one synthetic panel.

    python -m bench.train_backend_bench                      # 500 series x 150 weeks
    python -m bench.train_backend_bench --series 2000 --weeks 150
    python -m bench.train_backend_bench --rounds 300  # no early stopping: 300 rounds each

The panel: weekly Poisson series with a yearly season, a promotion (known in advance) that
doubles demand and a category; the last 13 weeks are held out. The model has the default
settings (horizon 13, up to 300 rounds with early stopping, conformal band), so each fit
trains six models (three quantiles, calibration and final). Timed, best of `--repeat`:

- `local`: the default backend;
- `dask, cluster started by fit`: `backend="dask"` without an address, as
  `BCLAKE_TRAIN_BACKEND=dask` runs: a LocalCluster of one worker per usable CPU is
  started, used and closed inside `fit`;
- `dask, running cluster`: the same on a LocalCluster started beforehand (`dask_address`),
  the cost of the distributed fit alone;
- `cluster start and stop`: the LocalCluster alone.

It prints the seconds, the WAPE of the Dask P50 against the local P50, and each model's
WAPE against the held-out actuals. Early stopping may choose different rounds for the two
backends, so `--rounds N` (every model N rounds, no early stopping) compares the same work.
Asserts nothing.
"""

from __future__ import annotations

import argparse
import time
from datetime import date, timedelta

import numpy as np
import polars as pl

from bclake.core.cpus import model_threads
from bclake.ml import dask_backend
from bclake.ml.forecaster import LGBMForecaster

HORIZON = 13


def panel(n_series: int, n_weeks: int, seed: int = 0) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    base = rng.uniform(5, 40, n_series)[:, None]
    t = np.arange(n_weeks)[None, :]
    promo = (rng.random((n_series, n_weeks)) < 0.2).astype(np.int8)
    qty = rng.poisson(base * (1 + 0.3 * np.sin(2 * np.pi * t / 52)) * (1 + promo))
    weeks = [date(2023, 1, 2) + timedelta(weeks=int(w)) for w in range(n_weeks)]
    return pl.DataFrame(
        {
            "item": np.repeat([f"i{s}" for s in range(n_series)], n_weeks),
            "week": weeks * n_series,
            "qty": qty.ravel(),
            "promo": promo.ravel(),
            "category": np.repeat([f"c{s % 7}" for s in range(n_series)], n_weeks),
        }
    )


def fit_predict(
    train: pl.DataFrame, future: pl.DataFrame, **kw
) -> tuple[float, pl.DataFrame, dict[float, int]]:
    model = LGBMForecaster(
        ["item"], "week", "qty", horizon=HORIZON, future_cols=("promo", "category"), **kw
    )
    start = time.perf_counter()
    model.fit(train)
    seconds = time.perf_counter() - start
    return seconds, model.predict(future), model.rounds_


def wape(a: pl.Series, b: pl.Series) -> float:
    return float((a - b).abs().sum() / b.abs().sum())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--series", type=int, default=500)
    parser.add_argument("--weeks", type=int, default=150)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=0, help="fixed rounds (0: early stopping)")
    args = parser.parse_args()
    fixed = {"num_boost_round": args.rounds, "early_stopping_rounds": None} if args.rounds else {}
    df = panel(args.series, args.weeks)
    cut = sorted(df["week"].unique())[-HORIZON]
    train, test = df.filter(pl.col("week") < cut), df.filter(pl.col("week") >= cut)
    future = test.select("item", "week", "promo", "category")
    threads = model_threads()
    print(f"{args.series} series x {args.weeks} weeks, {threads} threads / Dask workers")

    def best(**kw) -> tuple[float, pl.DataFrame, dict[float, int]]:
        runs = [fit_predict(train, future, **fixed, **kw) for _ in range(args.repeat)]
        return min(runs, key=lambda r: r[0])

    rows = {"local": best(backend="local")}
    rows["dask, cluster started by fit"] = best(backend="dask", dask_address=None)
    with dask_backend.dask_client(None, threads) as client:
        rows["dask, running cluster"] = best(backend="dask", dask_address=client.scheduler.address)
    starts = []
    for _ in range(args.repeat):
        start = time.perf_counter()
        with dask_backend.dask_client(None, threads):
            pass
        starts.append(time.perf_counter() - start)

    truth = test.select("item", "week", "qty")
    local = rows["local"][1].join(truth, on=["item", "week"])
    print(
        f"{'fit':<30} {'seconds':>8} {'vs local':>9} {'P50 vs local':>13} {'P50 WAPE':>9}  rounds"
    )
    for name, (seconds, fc, rounds) in rows.items():
        fc = fc.join(truth, on=["item", "week"])
        ratio = seconds / rows["local"][0]
        print(
            f"{name:<30} {seconds:8.1f} {ratio:8.2f}x {wape(fc['p50'], local['p50']):13.3f} "
            f"{wape(fc['p50'], fc['qty']):9.3f}  {rounds}"
        )
    print(f"{'cluster start and stop':<30} {min(starts):8.1f}")


if __name__ == "__main__":
    main()
