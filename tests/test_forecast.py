"""The forecasting library on synthetic tables: no leakage, exogenous inputs, intervals,
cold start, the any-table CLI, and the scores."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from typer.testing import CliRunner

from bclake.cli import app
from bclake.core.calendar import period_calendar_features
from bclake.ml.cold_start import cold_start_forecast
from bclake.ml.forecaster import LGBMForecaster
from bclake.ml.metrics import score_cv
from bclake.ml.panel import (
    Panel,
    period_date,
    period_days,
    periods_between,
    shift_period,
    to_panel,
)

FAST = {"num_boost_round": 40}


def weekly_table(n_series: int = 12, n_weeks: int = 120, seed: int = 0) -> pl.DataFrame:
    """Seasonal Poisson series with a promotion that doubles demand and a scan signal."""
    rng = np.random.default_rng(seed)
    rows = []
    for s in range(n_series):
        base = rng.uniform(5, 40)
        for t in range(n_weeks):
            promo = int(rng.random() < 0.2)
            y = rng.poisson(base * (1 + 0.3 * np.sin(2 * np.pi * t / 52)) * (1 + promo))
            rows.append(
                {
                    "shop": f"s{s % 3}",
                    "item": f"i{s}",
                    "week": date(2023, 1, 2) + timedelta(weeks=t),
                    "qty": y,
                    "promo": promo,
                    "channel": "online" if s % 2 else "store",
                    "scans": y * 0.3,
                }
            )
    return pl.DataFrame(rows)


def model(**kw) -> LGBMForecaster:
    return LGBMForecaster(["shop", "item"], "week", "qty", horizon=4, freq="W", **{**FAST, **kw})


def test_features_at_an_origin_ignore_everything_after_it() -> None:
    df = weekly_table()
    spec = model(hist_cols=("scans",)).feature_spec
    panel = to_panel(df, ["shop", "item"], "week", "qty", "W", ["scans"])
    origin = 80
    changed = to_panel(
        df.with_columns(
            pl.when(pl.col("week") > panel.dates[origin])
            .then(pl.col("qty") * 100 + 7)
            .otherwise(pl.col("qty"))
            .alias("qty"),
            pl.when(pl.col("week") > panel.dates[origin])
            .then(-1.0)
            .otherwise(pl.col("scans"))
            .alias("scans"),
        ),
        ["shop", "item"],
        "week",
        "qty",
        "W",
        ["scans"],
    )
    for h in (1, 4):
        a, _ = spec.build(panel, np.array([origin]), h)
        b, _ = spec.build(changed, np.array([origin]), h)
        for name in a:
            np.testing.assert_array_equal(a[name], b[name], err_msg=name)


def test_daily_features_ignore_the_future_when_the_horizon_spans_seasons() -> None:
    """Daily data: the season is 7 days and a 21-day horizon crosses it three times."""
    rng = np.random.default_rng(2)
    days = [date(2024, 1, 1) + timedelta(days=i) for i in range(200)]
    df = pl.DataFrame(
        {"k": ["a"] * 200 + ["b"] * 200, "d": days * 2, "y": rng.poisson(9, 400).astype(float)}
    )
    spec = LGBMForecaster(["k"], "d", "y", horizon=21, freq="D", **FAST).feature_spec
    panel = to_panel(df, ["k"], "d", "y", "D")
    origin = 150
    changed = panel.values.copy()
    changed[:, origin + 1 :] = 1e6
    other = Panel(panel.keys, panel.dates, changed, {})
    for h in range(1, 22):
        a, _ = spec.build(panel, np.array([origin]), h)
        b, _ = spec.build(other, np.array([origin]), h)
        for name in a:
            np.testing.assert_array_equal(a[name], b[name], err_msg=f"{name} at h={h}")


def test_changing_targets_after_the_origin_cannot_change_the_forecast() -> None:
    df = weekly_table()
    cv = model().cross_validation(df, n_windows=1)
    cutoff = cv["cutoff"][0]
    altered = df.with_columns(
        pl.when(pl.col("week") > cutoff).then(pl.col("qty") * 50).otherwise(pl.col("qty"))
    )
    cv2 = model().cross_validation(altered, n_windows=1)
    for col in ("p10", "p50", "p90"):
        np.testing.assert_allclose(cv[col].to_numpy(), cv2[col].to_numpy())
    assert not np.allclose(cv["y"].to_numpy(), cv2["y"].to_numpy())  # the truth did change


def test_known_future_columns_are_required_and_used() -> None:
    df = weekly_table()
    m = model(future_cols=("promo", "channel"), hist_cols=("scans",)).fit(df)
    with pytest.raises(ValueError, match="promo"):
        m.predict()
    keys = df.select("shop", "item", "channel").unique()
    weeks = [df["week"].max() + timedelta(weeks=h) for h in range(1, 5)]
    future = keys.join(pl.DataFrame({"week": weeks}), how="cross")
    on = m.predict(future.with_columns(promo=pl.lit(1)))
    off = m.predict(future.with_columns(promo=pl.lit(0)))
    # the synthetic promotion doubles demand: the model must have learnt it (x2 within 20%)
    assert on["p50"].sum() / off["p50"].sum() == pytest.approx(2.0, rel=0.2)
    assert on.height == keys.height * 4


def test_quantiles_are_ordered_non_negative_and_cover_about_their_band() -> None:
    df = weekly_table(n_series=20, seed=3)
    cv = model(future_cols=("promo",)).cross_validation(df, n_windows=2)
    assert (cv["p10"] <= cv["p50"]).all() and (cv["p50"] <= cv["p90"]).all()
    assert (cv["p10"] >= 0).all()
    assert cv.height == 20 * 2 * 4  # every series at both cutoffs and all four horizons
    scores = score_cv(cv, {"lightgbm": {0.1: "p10", 0.5: "p50", 0.9: "p90"}}, ("seasonal_naive",))
    overall = {r["method"]: r for r in scores.filter(pl.col("horizon").is_null()).to_dicts()}
    # P10-P90 is an 80% band; on 160 backtest rows sampling alone moves coverage by ~0.03
    # (one standard deviation), so within 0.1 of nominal
    assert overall["lightgbm"]["coverage"] == pytest.approx(0.8, abs=0.1)
    assert overall["lightgbm"]["wape"] < overall["seasonal_naive"]["wape"]
    assert set(scores["horizon"].drop_nulls()) == {1, 2, 3, 4}


def test_rounds_scale_with_the_table_by_early_stopping() -> None:
    """A small table stops well below the ceiling, the final model keeps the rounds that
    scored best on the held-out periods, and the backtest is as good as at the ceiling."""
    df = weekly_table(n_series=20, seed=3)
    ceiling = {"num_boost_round": 300}
    stopped = model(**ceiling)
    full = model(**ceiling, early_stopping_rounds=None)
    scores = {}
    for name, m in (("stopped", stopped), ("full", full)):
        cv = m.cross_validation(df, n_windows=2)
        scores[name] = (cv["y"] - cv["p50"]).abs().sum() / cv["y"].sum()
        m.fit(df)
    assert full.rounds_ == {0.1: 300, 0.5: 300, 0.9: 300}
    # these series are noisy (the promotion is not an input): few rounds score best
    assert max(stopped.rounds_.values()) < 150, stopped.rounds_
    assert [m.num_trees() for m in stopped.models_.values()] == list(stopped.rounds_.values())
    assert scores["stopped"] <= scores["full"] * 1.05, scores


@pytest.mark.parametrize("conformal", [True, False])
@pytest.mark.parametrize("n_weeks", [5, 20])
def test_a_short_table_trains_every_model_to_the_ceiling_on_every_period(
    n_weeks: int, conformal: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Too little history to judge rounds on (a season before the last horizon): no early
    stopping, no error, and the final models learn from every period, the last ones too."""
    learnt_from: list[int] = []  # periods of the panel each fit's training rows come from
    rows = LGBMForecaster._training_rows

    def spy(self: LGBMForecaster, panel: Panel, spec: object) -> object:
        learnt_from.append(panel.values.shape[1])
        return rows(self, panel, spec)

    monkeypatch.setattr(LGBMForecaster, "_training_rows", spy)
    df = weekly_table(n_series=6, n_weeks=n_weeks, seed=5)
    m = model(conformal=conformal).fit(df)
    assert m.rounds_ == {0.1: 40, 0.5: 40, 0.9: 40}
    if n_weeks > 5:  # on 5 weeks LightGBM finds no split to make and stops by itself
        assert [b.num_trees() for b in m.models_.values()] == [40, 40, 40]
    assert learnt_from[-1] == n_weeks  # the final fit, on the whole panel


@pytest.mark.parametrize("early_stopping_rounds", [20, None])
def test_a_tight_row_budget_still_calibrates(early_stopping_rounds: int | None) -> None:
    """Origins thinned to one or two per horizon: the calibration fit thins from its own
    cutoff, so it still has rows to learn from and a band."""
    df = weekly_table(n_series=10, n_weeks=70, seed=2)
    m = model(max_train_rows=50, early_stopping_rounds=early_stopping_rounds).fit(df)
    assert m.widen_ is not None and m.predict().height == 10 * 4


def test_bad_settings_and_tables_are_named_by_argument_and_column() -> None:
    with pytest.raises(ValueError, match=r"freq must be one of \['D', 'W', 'M', 'Q'\] .*'H'"):
        LGBMForecaster(["k"], "d", "y", freq="H")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"calendar must be one of \['cn', 'none'\]"):
        LGBMForecaster(["k"], "d", "y", calendar="us")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="early_stopping_rounds must be at least 1"):
        LGBMForecaster(["k"], "d", "y", early_stopping_rounds=0)
    df = weekly_table(n_series=2, n_weeks=10)
    with pytest.raises(ValueError, match=r"lacks columns \['price'\]"):
        model(future_cols=("price",)).fit(df)
    with pytest.raises(ValueError, match="'qty' is String, not a number"):
        model().fit(df.with_columns(pl.col("qty").cast(pl.String)))
    with pytest.raises(ValueError, match="no series has two periods"):
        model().fit(df.filter(pl.col("week") == pl.col("week").min()))


def test_scores_match_hand_computed_values() -> None:
    cv = pl.DataFrame(
        {
            "horizon": [1, 1, 2, 2],
            "y": [10.0, 0.0, 5.0, 5.0],
            "p10": [8.0, 0.0, 1.0, 4.0],
            "p50": [9.0, 1.0, 5.0, 5.0],
            "p90": [12.0, 2.0, 6.0, 9.0],
            "naive": [10.0, 0.0, 0.0, 0.0],
            "mase_scale": [1.0, 1.0, 1.0, 1.0],
        }
    )
    s = score_cv(cv, {"m": {0.1: "p10", 0.5: "p50", 0.9: "p90"}}, ("naive",))
    m = s.filter((pl.col("method") == "m") & pl.col("horizon").is_null()).row(0, named=True)
    assert m["wape"] == pytest.approx(2 / 20)
    assert m["bias"] == pytest.approx(0.0)
    assert m["coverage"] == pytest.approx(1.0)
    naive = s.filter((pl.col("method") == "naive") & pl.col("horizon").is_null()).row(0, named=True)
    assert naive["wape"] == pytest.approx(10 / 20) and naive["coverage"] is None


def test_cold_start_follows_peers_launch_curves_and_is_flagged() -> None:
    rows = []
    launches = {}
    for s in range(6):  # six launched peers in one category, ramping up over 10 weeks
        launch = date(2024, 1, 1) + timedelta(weeks=5 * s)
        launches[f"p{s}"] = launch
        for a in range(40):
            rows.append(
                {
                    "sku": f"p{s}",
                    "cat": "tea",
                    "week": launch + timedelta(weeks=a),
                    "qty": float(min(a + 1, 10) * 10),
                }
            )
    history = pl.DataFrame(rows).filter(pl.col("week") <= date(2024, 12, 30))
    last = history["week"].max()
    firsts = pl.DataFrame({"sku": list(launches), "first_date": list(launches.values())})
    target = pl.DataFrame(
        {"sku": ["new"], "cat": ["tea"], "first_date": [last + timedelta(weeks=2)]}
    )
    fc = cold_start_forecast(history, target, ["sku"], "week", "qty", ["cat"], firsts, horizon=6)
    assert fc["forecast_source"].unique().to_list() == ["cold_start"]
    assert fc.filter(pl.col("horizon") == 1)["p50"][0] == 0  # not launched yet
    after = fc.filter(pl.col("horizon") >= 2).sort("horizon")["p50"].to_list()
    assert after == sorted(after) and after[0] == pytest.approx(10.0)  # the ramp, from week 1


def test_forecast_cli_on_a_daily_table(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    days = [date(2024, 1, 1) + timedelta(days=i) for i in range(120)]
    rows = [
        {
            "store": f"S{s}",
            "item": f"I{s % 2}",
            "day": d,
            "sales": int(rng.poisson(5 + 3 * (d.weekday() >= 5))),
            "price": 9.9,
            "dept": "food" if s % 2 else "drink",
            "visits": int(rng.poisson(40)),
        }
        for s in range(5)
        for d in days
    ]
    df = pl.DataFrame(rows)
    df.filter(pl.col("day") <= days[99]).write_csv(tmp_path / "sales.csv")
    df.filter(pl.col("day") > days[99]).filter(pl.col("day") <= days[106]).select(
        "store", "item", "day", "price", "dept"
    ).write_parquet(tmp_path / "future.parquet")
    out = tmp_path / "out" / "forecast.csv"
    args = [
        "forecast", "--input", str(tmp_path / "sales.csv"), "--id-cols", "store,item",
        "--date-col", "day", "--target-col", "sales", "--horizon", "7", "--freq", "D",
        "--future", str(tmp_path / "future.parquet"), "--quantiles", "0.05,0.5,0.95",
        "--out", str(out),
    ]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "historical only: ['visits']" in result.output.replace("\n", "")
    fc = pl.read_csv(out, try_parse_dates=True)
    assert fc.columns == ["store", "item", "day", "p05", "p50", "p95", "method"]
    assert fc.height == 5 * 7 and fc["day"].min() == days[100]
    assert (fc["p05"] <= fc["p95"]).all()

    bad = CliRunner().invoke(app, [*args[:8], "units", *args[9:]])
    assert bad.exit_code == 2 and "units" in bad.output


# --- months and quarters ------------------------------------------------------------------
PERIOD_MONTHS = {"M": 1, "Q": 3}


def calendar_table(freq: str, n_series: int = 8, years: int = 9, day: int = 1, seed: int = 0):
    """Series with a trend and a yearly season, one row per month or quarter, dated `day`
    of its first month (2015-01 on)."""
    rng = np.random.default_rng(seed)
    step = PERIOD_MONTHS[freq]
    rows = []
    for s in range(n_series):
        base = rng.uniform(50, 200)
        for t in range(years * 12 // step):
            month = t * step  # months since 2015-01
            season = 1 + 0.4 * np.sin(2 * np.pi * (month % 12) / 12)
            y = base * (1 + 0.02 * t) * season + rng.normal(0, 0.03 * base)
            start = date(2015 + month // 12, month % 12 + 1, day)
            rows.append({"k": f"s{s}", "d": start, "y": max(y, 0.0)})
    return pl.DataFrame(rows)


def test_months_and_quarters_move_by_the_calendar() -> None:
    assert shift_period(date(2024, 1, 31), 1, "M") == date(2024, 2, 29)  # clamped, leap year
    assert shift_period(date(2024, 1, 1), -1, "M") == date(2023, 12, 1)
    assert shift_period(date(2023, 10, 1), 2, "Q") == date(2024, 4, 1)
    assert periods_between(date(2023, 11, 1), date(2024, 2, 1), "M") == 3
    assert periods_between(date(2023, 10, 1), date(2024, 4, 1), "Q") == 2
    assert [period_days(date(2024, m, 1), "M") for m in (1, 2, 4)] == [31, 29, 30]
    assert period_days(date(2024, 1, 1), "Q") == 91
    # dates inside a month or quarter count for it: the panel is on period starts
    df = pl.DataFrame(
        {
            "k": ["a"] * 4,
            "d": [date(2023, 12, 31), date(2024, 1, 15), date(2024, 1, 20), date(2024, 3, 5)],
            "y": [1.0, 2.0, 3.0, 4.0],
        }
    )
    months = to_panel(df, ["k"], "d", "y", "M")
    assert months.dates == [date(2023, 12, 1), date(2024, 1, 1), date(2024, 2, 1), date(2024, 3, 1)]
    np.testing.assert_array_equal(months.values[0], [1.0, 5.0, 0.0, 4.0])
    assert period_date(months, 13, "M") == date(2025, 1, 1)
    quarters = to_panel(df, ["k"], "d", "y", "Q")
    assert quarters.dates == [date(2023, 10, 1), date(2024, 1, 1)]
    np.testing.assert_array_equal(quarters.values[0], [1.0, 9.0])


@pytest.mark.parametrize("freq", ["M", "Q"])
def test_calendar_features_of_months_and_quarters(freq: str) -> None:
    """Month or quarter of the year, no weekday (every period starts on the 1st), the value
    one year back as the seasonal lag, and with --calendar cn the holiday days counted over
    the whole month or quarter."""
    df = calendar_table(freq, n_series=2, years=4)
    m = LGBMForecaster(["k"], "d", "y", horizon=2, freq=freq, calendar="cn", **FAST)
    panel = to_panel(df, ["k"], "d", "y", freq)
    origin = len(panel.dates) - 3  # target periods: the last two
    cols, level = m.feature_spec.build(panel, np.array([origin]), 1)
    target = panel.dates[origin + 1]
    assert "weekday" not in cols
    position = target.month if freq == "M" else (target.month - 1) // 3 + 1
    assert set(cols["period_of_year"]) == {position}
    season = 12 // PERIOD_MONTHS[freq]
    np.testing.assert_allclose(
        cols["same_period_last_season"] * level, panel.values[:, origin + 1 - season]
    )
    length = lambda d: period_days(d, freq)  # noqa: E731
    # 2024: New Year's Day, Spring Festival 10-17 February, National Day 1-7 October
    first = {"M": date(2024, 2, 1), "Q": date(2024, 1, 1)}[freq]
    holidays = period_calendar_features([first, date(2024, 10, 1)], length)
    expected = {"M": [8, 7], "Q": [1 + 8, 7]}[freq]
    assert holidays.sort("period_start")["holiday_days"].to_list() == expected


@pytest.mark.parametrize("freq", ["M", "Q"])
def test_monthly_and_quarterly_backtests_score_against_seasonal_baselines(freq: str) -> None:
    """Seasonal naive is the value a year back (12 months, 4 quarters), the MASE scale the
    mean absolute yearly difference; the model, which reads the trend too, beats both
    seasonal naive and the flat baselines on trend x season."""
    df = calendar_table(freq)
    season = 12 // PERIOD_MONTHS[freq]
    horizon = season
    m = LGBMForecaster(["k"], "d", "y", horizon=horizon, freq=freq, calendar="none", **FAST)
    cv = m.cross_validation(df)
    assert cv.height == 8 * horizon and (cv["d"].dt.day() == 1).all()
    actual = {(r["k"], r["d"]): r["y"] for r in df.iter_rows(named=True)}
    for r in cv.head(3).iter_rows(named=True):
        assert r["seasonal_naive"] == actual[(r["k"], shift_period(r["d"], -season, freq))]
    one = df.filter(pl.col("k") == "s0").sort("d")["y"].to_numpy()
    train = one[: len(one) - horizon]
    scale = cv.filter(pl.col("k") == "s0")["mase_scale"][0]
    assert scale == pytest.approx(np.mean(np.abs(train[season:] - train[:-season])))
    assert (cv["p10"] <= cv["p50"]).all() and (cv["p50"] <= cv["p90"]).all()
    scores = score_cv(cv, {"lightgbm": {0.1: "p10", 0.5: "p50", 0.9: "p90"}},
                      ("seasonal_naive", "moving_average", "exp_smoothing"))  # fmt: skip
    mase = dict(scores.filter(pl.col("horizon").is_null()).select("method", "mase").iter_rows())
    assert mase["lightgbm"] < min(mase["seasonal_naive"], mase["moving_average"])


def test_cold_start_counts_a_launch_curve_in_months() -> None:
    rows = [
        {"sku": f"p{s}", "cat": "tea", "month": shift_period(date(2022, 1, 1), 3 * s + a, "M"),
         "qty": float(min(a + 1, 5) * 10)}
        for s in range(4) for a in range(20)
    ]  # fmt: skip
    history = pl.DataFrame(rows).filter(pl.col("month") <= date(2023, 12, 1))
    firsts = pl.DataFrame(
        {"sku": [f"p{s}" for s in range(4)],
         "first_date": [shift_period(date(2022, 1, 1), 3 * s, "M") for s in range(4)]}
    )  # fmt: skip
    target = pl.DataFrame({"sku": ["new"], "cat": ["tea"], "first_date": [date(2024, 2, 1)]})
    fc = cold_start_forecast(
        history, target, ["sku"], "month", "qty", ["cat"], firsts, horizon=4, freq="M"
    )
    assert fc["month"].to_list() == [date(2024, m, 1) for m in (1, 2, 3, 4)]
    assert fc["p50"].to_list() == pytest.approx([0.0, 10.0, 20.0, 30.0])  # launched in February
