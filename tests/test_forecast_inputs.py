"""`bclake forecast` on real-world sales tables: offsets in timestamps, duplicate rows,
gaps that are not zero sales, short histories, new series, and the report it writes.

The field cases (FC-…) are small made-up inputs in tests/data/field_cases/.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from typer.testing import CliRunner

from bclake.cli import app
from bclake.ml.any_table import (
    ForecastReport,
    InputError,
    dates_in_disguise,
    forecast_table,
    local_dates,
    read_numbers,
    read_table,
    unseen_levels,
)
from bclake.ml.baselines import exponential_smoothing
from bclake.ml.forecaster import LGBMForecaster
from bclake.ml.panel import to_panel

CASES = Path(__file__).parent / "data" / "field_cases"
FC01 = CASES / "FC-01-timezone-suffixed-dates"
FC03 = CASES / "FC-03-duplicate-dates"
FC04 = CASES / "FC-04-short-history"
FC05 = CASES / "FC-05-new-sku-one-row-all-zero"
FC08 = CASES / "FC-08-gaps-missing-weeks"
KEYS = ["region", "sku"]
FAST = {"num_boost_round": 30}


def run(path: Path, date_col: str, horizon: int, freq: str = "W", future: Path | None = None, **kw):
    """forecast_table on a field-case file as the CLI reads it."""
    report = ForecastReport()
    df = read_table(path, date_col, "input", report=report, target_col="qty")
    fut = read_table(future, date_col, "future") if future else None
    return forecast_table(
        df, KEYS, date_col, "qty", horizon, freq, future=fut, report=report, **{**FAST, **kw}
    )


def cli(tmp_path: Path, path: Path, date_col: str, horizon: int, *extra: str):
    out = tmp_path / "fc.csv"
    args = [
        "forecast", "--input", str(path), "--id-cols", "region,sku", "--date-col", date_col,
        "--target-col", "qty", "--horizon", str(horizon), "--out", str(out), *extra,
    ]  # fmt: skip
    result = CliRunner().invoke(app, args)
    return result, out


# --- dates with offsets (FC-01) --------------------------------------------------------
def test_fc01_offset_timestamps_keep_their_local_calendar_date() -> None:
    report = ForecastReport()
    tz = read_table(FC01 / "sales_daily_tz.csv", "date", "input", report=report)
    plain = read_table(FC01 / "sales_daily_plain.csv", "date", "input")
    assert tz["date"].to_list() == plain["date"].to_list()
    assert tz["date"].min() == date(2023, 1, 2)
    assert report.timestamps_with_offset == tz.height == 1920


def test_fc01_forecast_of_offset_file_equals_the_clean_control() -> None:
    a = run(FC01 / "sales_daily_tz.csv", "date", 7, "D").forecast
    b = run(FC01 / "sales_daily_plain.csv", "date", 7, "D").forecast
    assert a.equals(b)
    assert a["date"].min() == date(2024, 4, 26)  # the day after the last local date


@pytest.mark.parametrize(
    ("value", "tz", "expected"),
    [
        ("2024-03-01T00:00:00+08:00", "Asia/Shanghai", date(2024, 3, 1)),
        ("2024-03-01T23:59:59+08:00", "Asia/Shanghai", date(2024, 3, 1)),
        ("2024-03-01T00:00:00Z", "Asia/Shanghai", date(2024, 3, 1)),  # 08:00 in Shanghai
        ("2024-03-01T18:00:00Z", "Asia/Shanghai", date(2024, 3, 2)),  # 02:00 next day
        ("2024-03-01T20:00:00-05:00", "Asia/Shanghai", date(2024, 3, 2)),
        ("2024-03-01T20:00:00-05:00", "America/New_York", date(2024, 3, 1)),
        ("2024-03-01T07:00:00+0800", "UTC", date(2024, 2, 29)),
        ("2024-03-01 23:30:00", "UTC", date(2024, 3, 1)),  # no offset: already local
        ("2024-03-01", "Asia/Shanghai", date(2024, 3, 1)),
        (" 2024-03-01 ", "Asia/Shanghai", date(2024, 3, 1)),
    ],
)
def test_local_dates_take_the_calendar_date_in_the_named_zone(
    value: str, tz: str, expected: date
) -> None:
    out, _ = local_dates(pl.Series("d", [value, None, ""]), tz, "test")
    assert out.to_list() == [expected, None, None]


@pytest.mark.parametrize(
    ("value", "why"),
    [
        ("1,5", "a comma that is not a thousands separator"),
        ("15%", "a percent sign"),
        ("(3)", "parentheses"),
        ("soon", "not a number"),
    ],
)
def test_refused_target_values_are_named_with_their_cause(value: str, why: str) -> None:
    values = pl.Series("qty", ["1,200", value, None, value])
    with pytest.raises(InputError, match=rf"row 3: qty='{re.escape(value)}' is {why}.*; 2 values"):
        read_numbers(values, "input")


def test_parquet_datetimes_with_a_zone_become_local_dates(tmp_path: Path) -> None:
    utc = [datetime(2024, 3, 1, 16, 0, tzinfo=UTC)]  # midnight in Shanghai
    pl.DataFrame({"d": pl.Series(utc), "qty": [1]}).write_parquet(tmp_path / "a.parquet")
    df = read_table(tmp_path / "a.parquet", "d", "input")
    assert df["d"].to_list() == [date(2024, 3, 2)]


def test_unreadable_or_ambiguous_dates_and_unknown_zones_are_named(tmp_path: Path) -> None:
    (tmp_path / "a.csv").write_text("sku,d,qty\na,2024-03-01,1\na,03/04/2024,2\n")
    with pytest.raises(InputError, match=r"row 3: d='03/04/2024' is ambiguous: day and month"):
        read_table(tmp_path / "a.csv", "d", "input")
    (tmp_path / "b.csv").write_text("sku,d,qty\na,2024-03-01,1\na,soon,2\n")
    with pytest.raises(InputError, match=r"row 3: d='soon' is not a date"):
        read_table(tmp_path / "b.csv", "d", "input")
    with pytest.raises(InputError, match="unknown time zone 'Beijing'"):
        read_table(tmp_path / "a.csv", "d", "input", tz="Beijing")


def test_chinese_and_dotted_dates_are_read_as_ingest_reads_them(tmp_path: Path) -> None:
    (tmp_path / "a.csv").write_text(
        "sku,d,qty\na,2024年3月1日,1\na,2024.3.2,2\na,2024/3/3,3\na,25/03/2024,4\n"
    )
    df = read_table(tmp_path / "a.csv", "d", "input")
    assert df["d"].to_list() == [date(2024, 3, d) for d in (1, 2, 3, 25)]


def test_rows_without_a_date_are_dropped_and_counted(tmp_path: Path) -> None:
    (tmp_path / "a.csv").write_text("sku,d,qty\na,2024-03-01,1\na,,2\na,NULL,5\na,2024-03-02,3\n")
    report = ForecastReport()
    df = read_table(tmp_path / "a.csv", "d", "input", report=report)
    assert df["qty"].to_list() == [1, 3]
    assert report.rows_read == 4 and report.rows_dropped == {"no date": 2}


def test_a_formatted_target_with_null_tokens_is_read_as_numbers(tmp_path: Path) -> None:
    (tmp_path / "a.csv").write_text(
        'sku,d,qty\na,2024-03-01,"1,234"\na,2024-03-02,NULL\na,2024-03-03,¥56\n'
        "a,2024-03-04,\\N\na,2024-03-05,-\na,2024-03-06,７\n"
    )
    df = read_table(tmp_path / "a.csv", "d", "input", target_col="qty")
    assert df["qty"].to_list() == [1234.0, None, 56.0, None, None, 7.0]
    (tmp_path / "b.csv").write_text('sku,d,qty\na,2024-03-01,3\na,2024-03-02,"1,5"\n')
    with pytest.raises(InputError, match=r"row 3: qty='1,5' is a comma that is not a thousands"):
        read_table(tmp_path / "b.csv", "d", "input", target_col="qty")
    text = pl.DataFrame({"region": "r", "sku": "a", "d": [date(2024, 3, 1)], "qty": ["1,234"]})
    one = forecast_table(text, KEYS, "d", "qty", 1, "D", **FAST)  # a text target, read
    assert one.forecast["p50"].to_list() == [1234.0]


# --- encodings and headers ------------------------------------------------------------
def test_gb18030_utf16_and_untidy_headers_are_read_as_ingest_reads_them(tmp_path: Path) -> None:
    rows = "region,sku,date,qty\n华东,SKU𠀀,2024-03-01,3\n华东,SKU𠀀,2024-03-02,4\n"
    (tmp_path / "gb.csv").write_bytes(rows.encode("gb18030"))  # 𠀀 is not in GBK
    report = ForecastReport()
    gb = read_table(tmp_path / "gb.csv", "date", "input", report=report, target_col="qty")
    assert gb["sku"].to_list() == ["SKU𠀀"] * 2 and gb["qty"].to_list() == [3.0, 4.0]
    assert report.encoding == "gb18030, comma-separated"
    excel = "\ufeff region\t sku\u00a0\tdate \tqty\r\n华北\tA\t2024/3/1\t1,200\r\n"
    (tmp_path / "unicode.txt").write_bytes(excel.encode("utf-16-le"))
    report = ForecastReport()
    u16 = read_table(tmp_path / "unicode.txt", "date", "input", report=report, target_col="qty")
    assert u16.columns == ["region", "sku", "date", "qty"]
    assert u16.row(0) == ("华北", "A", date(2024, 3, 1), 1200.0)
    assert report.encoding == "utf-16-le, tab-separated"


def test_undecodable_bytes_and_missing_columns_are_named(tmp_path: Path) -> None:
    (tmp_path / "bad.csv").write_bytes(
        "region,date,qty\n华东,2024-03-01,1\n".encode() + b"\xff\xfe\xfa\n"
    )
    with pytest.raises(InputError, match="byte"):
        read_table(tmp_path / "bad.csv", "date", "input")
    (tmp_path / "a.csv").write_text("region,day,qty\nr,2024-03-01,1\n")
    with pytest.raises(
        InputError, match=r"no date column 'date'; it has \['region', 'day', 'qty'\]"
    ):
        read_table(tmp_path / "a.csv", "date", "input")


# --- duplicate series x date rows (FC-03) -----------------------------------------------
def test_fc03_duplicates_stop_the_run_with_count_and_example() -> None:
    with pytest.raises(InputError) as error:
        run(FC03 / "sales_daily_with_dup_month.csv", "date", 7, "D")
    message = str(error.value)
    assert "128 rows repeat the series and date of another row" in message
    assert "128 series x dates" in message and "128 of the rows exact copies" in message
    assert "region=" in message and "--duplicates sum" in message and "--duplicates last" in message


def test_fc03_duplicates_last_gives_the_clean_forecast_and_sum_is_reported() -> None:
    last = run(FC03 / "sales_daily_with_dup_month.csv", "date", 7, "D", duplicates="last")
    clean = run(FC03 / "sales_daily_clean.csv", "date", 7, "D")
    assert last.forecast.equals(clean.forecast)
    assert last.report.duplicates["rows"] == 128 and last.report.duplicates["policy"] == "last"
    summed = run(FC03 / "sales_daily_with_dup_month.csv", "date", 7, "D", duplicates="sum")
    assert summed.report.duplicates["policy"] == "sum"
    assert clean.report.duplicates["rows"] == 0


def test_duplicates_with_different_values_keep_the_last_or_add_up() -> None:
    days = [date(2024, 1, 1) + timedelta(days=i) for i in range(40)]
    df = pl.DataFrame({"region": "r", "sku": "a", "date": days, "qty": 10.0})
    extra = pl.DataFrame({"region": "r", "sku": "a", "date": [days[-1]], "qty": [99.0]})
    both = pl.concat([df, extra])
    report = ForecastReport()
    from bclake.ml.any_table import resolve_duplicates

    kept = resolve_duplicates(both, ["region", "sku", "date"], "last", "qty", report)
    assert kept.height == 40 and kept["qty"][-1] == 99.0
    assert report.duplicates["exact_copies"] == 0
    assert report.duplicates["example"]["qty values"] == [10.0, 99.0]
    assert resolve_duplicates(both, ["region", "sku", "date"], "sum", "qty").height == 41
    with pytest.raises(InputError, match="duplicates must be one of"):
        resolve_duplicates(both, ["region", "sku", "date"], "mean", "qty")  # type: ignore[arg-type]


def test_days_of_one_week_are_not_duplicates_of_a_weekly_forecast() -> None:
    result = run(FC03 / "sales_daily_clean.csv", "date", 4, "W")
    assert result.report.duplicates["rows"] == 0 and result.forecast.height == 4 * 4


def test_fc03_cli_exits_2_with_the_message(tmp_path: Path) -> None:
    result, out = cli(tmp_path, FC03 / "sales_daily_with_dup_month.csv", "date", 7, "--freq", "D")
    assert result.exit_code == 2 and "128 rows repeat" in result.output.replace("\n", " ")
    assert not out.exists()


# --- gaps: missing is not zero (FC-08) --------------------------------------------------
def test_fc08_silent_series_is_named_and_not_read_as_zero_sales() -> None:
    gap = run(FC08 / "sales_weekly_gap_at_end.csv", "week", 4)
    complete = run(FC08 / "sales_weekly_complete.csv", "week", 4)
    assert gap.report.silent_series == [
        {"region": "华东", "sku": "SKU0001", "last_date": "2024-03-25", "periods_silent": 4}
    ]
    assert any("华东/SKU0001 (silent since 2024-03-25)" in w for w in gap.report.warnings)

    def summary(r):
        return r.forecast.group_by(KEYS).agg(
            pl.col("p50").mean(), (pl.col("p90") - pl.col("p10")).mean().alias("width")
        )

    both = summary(gap).join(summary(complete), on=KEYS, suffix="_complete")
    silent = both.filter(pl.col("sku") == "SKU0001", pl.col("region") == "华东").row(0, named=True)
    # its forecast comes from its last reports, not from four weeks of zeros
    assert silent["p50"] == pytest.approx(silent["p50_complete"], rel=0.25)
    # and the other series' bands are not widened by its silence
    others = both.filter(~((pl.col("sku") == "SKU0001") & (pl.col("region") == "华东")))
    assert (others["width"] <= others["width_complete"] * 1.25).all()


def test_fc08_fill_zero_reads_the_silence_as_zero_sales_and_says_so() -> None:
    zero = run(FC08 / "sales_weekly_gap_at_end.csv", "week", 4, fill="zero")
    missing = run(FC08 / "sales_weekly_gap_at_end.csv", "week", 4)
    assert any("read as zero sales (--fill zero)" in w for w in zero.report.warnings)
    p50 = {
        name: r.forecast.filter(pl.col("region") == "华东", pl.col("sku") == "SKU0001")[
            "p50"
        ].mean()
        for name, r in (("zero", zero), ("missing", missing))
    }
    assert p50["zero"] < 0.8 * p50["missing"]


def test_to_panel_keeps_an_inner_gap_missing_or_zero() -> None:
    weeks = [date(2024, 1, 1) + timedelta(weeks=i) for i in (0, 1, 3)]
    df = pl.DataFrame({"k": "a", "w": weeks, "y": [1.0, 2.0, 4.0]})
    missing = to_panel(df, ["k"], "w", "y", "W", fill="missing").values[0]
    zero = to_panel(df, ["k"], "w", "y", "W", fill="zero").values[0]
    assert np.isnan(missing[2]) and missing[3] == 4.0
    assert zero.tolist() == [1.0, 2.0, 0.0, 4.0]
    with pytest.raises(ValueError, match="fill must be one of"):
        to_panel(df, ["k"], "w", "y", "W", fill="gap")  # type: ignore[arg-type]


def test_inner_gaps_and_null_targets_are_counted_not_zeroed() -> None:
    weeks = [date(2023, 1, 2) + timedelta(weeks=i) for i in range(60)]
    rng = np.random.default_rng(1)
    df = pl.DataFrame(
        {
            "region": "r",
            "sku": np.repeat(["a", "b"], 60),
            "week": weeks * 2,
            "qty": rng.poisson(50, 120).astype(float),
        }
    )
    df = df.filter(~((pl.col("sku") == "a") & pl.col("week").is_in(weeks[20:23])))
    df = df.with_columns(
        pl.when((pl.col("sku") == "b") & (pl.col("week") == weeks[30]))
        .then(None)
        .otherwise(pl.col("qty"))
        .alias("qty")
    )
    result = forecast_table(df, KEYS, "week", "qty", 4, "W", **FAST)
    assert result.report.gaps["series_with_gaps"] == 2
    assert result.report.gaps["missing_periods"] == 4
    assert result.report.null_targets == 1
    assert result.forecast["p50"].min() > 20  # gaps did not pull the level towards zero


def test_exponential_smoothing_holds_its_level_over_a_gap() -> None:
    hist = np.array([[10.0, 10.0, np.nan, np.nan, 10.0], [10.0, 10.0, 0.0, 0.0, 10.0]])
    level = exponential_smoothing(hist)
    assert level[0] == pytest.approx(10.0) and level[1] < 10.0


# --- short history (FC-04) --------------------------------------------------------------
def test_fc04_five_weeks_horizon_13_forecasts_every_series_flagged(tmp_path: Path) -> None:
    result, out = cli(tmp_path, FC04 / "sales_weekly_5weeks.csv", "week", 13)
    assert result.exit_code == 0, result.output
    assert "mean fallback" in result.output
    fc = pl.read_csv(out, try_parse_dates=True)
    assert fc.height == 4 * 13 and fc["week"].min() == date(2023, 2, 6)
    src = pl.read_csv(FC04 / "sales_weekly_5weeks.csv")
    last4 = src.filter(pl.col("week") >= "2023-01-09").group_by(KEYS).agg(pl.col("qty").mean())
    check = fc.group_by(KEYS).agg(pl.col("p50").first()).join(last4, on=KEYS)
    assert check["p50"].to_list() == pytest.approx(check["qty"].to_list())
    assert (fc["p10"] <= fc["p50"]).all() and (fc["p50"] <= fc["p90"]).all()
    assert (fc["p10"] < fc["p90"]).all()
    report = json.loads((tmp_path / "fc.csv.report.json").read_text())
    assert {s["forecast_source"] for s in report["short_series"]} == {"mean_fallback"}
    assert len(report["short_series"]) == 4


def test_short_series_beside_long_ones_are_flagged_per_series() -> None:
    weeks = [date(2023, 1, 2) + timedelta(weeks=i) for i in range(40)]
    rng = np.random.default_rng(2)
    long = pl.DataFrame(
        {
            "region": "r",
            "sku": np.repeat(["a", "b", "c"], 40),
            "week": weeks * 3,
            "qty": rng.poisson(30, 120).astype(float),
        }
    )
    young = pl.DataFrame({"region": "r", "sku": "d", "week": weeks[-6:], "qty": 12.0})
    baby = pl.DataFrame({"region": "r", "sku": "e", "week": weeks[-2:], "qty": [5.0, 7.0]})
    result = forecast_table(pl.concat([long, young, baby]), KEYS, "week", "qty", 8, "W", **FAST)
    sources = dict(result.sources.select("sku", "forecast_source").iter_rows())
    assert sources == {
        "a": "model",
        "b": "model",
        "c": "model",
        "d": "model_short_history",
        "e": "mean_fallback",
    }
    assert result.forecast.filter(pl.col("sku") == "e")["p50"].to_list() == [6.0] * 8
    assert result.forecast.height == 5 * 8


def test_a_daily_table_shorter_than_the_horizon_still_forecasts() -> None:
    days = [date(2024, 1, 1) + timedelta(days=i) for i in range(10)]
    df = pl.DataFrame({"region": "r", "sku": "a", "date": days, "qty": [3.0, 5.0] * 5})
    result = forecast_table(df, KEYS, "date", "qty", 14, "D", backtest=True, **FAST)
    assert result.forecast.height == 14 and result.forecast["p50"][0] == pytest.approx(4.0)
    assert result.backtest_scores is None
    assert any("no backtest" in w for w in result.report.warnings)


# --- one odd series never widens the others (FC-05) -------------------------------------
def test_fc05_a_one_row_new_sku_leaves_the_other_series_bands_as_they_were() -> None:
    mixed = run(FC05 / "sales_weekly_mixed.csv", "week", 4)
    without = run(FC05 / "sales_weekly_mixed_without_new_sku.csv", "week", 4)
    established = mixed.forecast.filter(pl.col("sku") != "SKU0009")
    assert established.select(KEYS, "week", "p10", "p50", "p90").equals(
        without.forecast.select(KEYS, "week", "p10", "p50", "p90")
    )
    new = mixed.forecast.filter(pl.col("sku") == "SKU0009")
    assert new.height == 4 and new["p50"].to_list() == [35.0] * 4  # its one row, flat
    assert mixed.report.short_series == [
        {"region": "华东", "sku": "SKU0009", "periods": 1, "forecast_source": "mean_fallback"}
    ]


def test_fc05_a_series_only_in_future_is_listed_as_skipped() -> None:
    result = run(
        FC05 / "sales_weekly_mixed_promo.csv", "week", 4, future=FC05 / "future_with_new_sku.csv"
    )
    assert "SKU0010" not in result.forecast["sku"].to_list()
    assert len(result.report.new_series) == 1
    skipped = result.report.new_series[0]
    assert skipped["sku"] == "SKU0010" and skipped["forecast_source"].startswith("skipped")
    assert any("华东/SKU0010" in w for w in result.report.warnings)
    without = run(FC05 / "sales_weekly_mixed_without_new_sku.csv", "week", 4)
    p90 = result.forecast.filter(pl.col("sku") != "SKU0009")["p90"].mean()
    assert p90 <= 1.5 * without.forecast["p90"].mean()


def test_calibration_ignores_series_too_young_to_scale() -> None:
    weeks = [date(2022, 1, 3) + timedelta(weeks=i) for i in range(80)]
    rng = np.random.default_rng(3)
    df = pl.DataFrame(
        {
            "k": np.repeat([f"s{i}" for i in range(8)], 80),
            "week": weeks * 8,
            "qty": rng.poisson(100, 640).astype(float),
        }
    )
    model = LGBMForecaster(["k"], "week", "qty", horizon=4, **FAST)
    base = model.fit(df).widen_
    spikes = pl.DataFrame({"k": ["new1", "new2"], "week": [weeks[-3], weeks[-1]], "qty": 5000.0})
    odd = LGBMForecaster(["k"], "week", "qty", horizon=4, **FAST).fit(pl.concat([df, spikes]))
    assert base is not None and odd.widen_ is not None
    np.testing.assert_allclose(odd.widen_, base, atol=1e-9)


def test_series_only_in_future_get_a_cold_start_when_launches_exist() -> None:
    weeks = [date(2023, 1, 2) + timedelta(weeks=i) for i in range(40)]
    rows = [
        {"region": "r", "sku": f"old{i}", "week": w, "qty": 50.0} for i in range(3) for w in weeks
    ]
    for i, start in enumerate((10, 15, 20)):  # three launches inside the history
        rows += [
            {"region": "r", "sku": f"new{i}", "week": w, "qty": float(min(a + 1, 5) * 4)}
            for a, w in enumerate(weeks[start:])
        ]
    future_weeks = [weeks[-1] + timedelta(weeks=h) for h in range(1, 5)]
    future = pl.DataFrame({"region": "r", "sku": "launch", "week": future_weeks})
    result = forecast_table(pl.DataFrame(rows), KEYS, "week", "qty", 4, "W", future=future, **FAST)
    launch = result.forecast.filter(pl.col("sku") == "launch").sort("week")
    assert launch["p50"].to_list() == pytest.approx([4.0, 8.0, 12.0, 16.0])
    assert result.report.new_series[0]["forecast_source"] == "cold_start"
    assert result.report.series["cold_start"] == 1


# --- the report -------------------------------------------------------------------------
def test_the_cli_prints_the_report_and_writes_it_beside_the_output(tmp_path: Path) -> None:
    result, out = cli(
        tmp_path, FC01 / "sales_daily_tz.csv", "date", 7, "--freq", "D", "--fill", "zero"
    )
    assert result.exit_code == 0, result.output
    text = result.output.replace("\n", " ")
    assert "1,920 timestamps with an offset read as their calendar date in Asia/Shanghai" in text
    assert "read 1,920 rows" in text and "--fill zero" in text
    report = json.loads((tmp_path / "fc.csv.report.json").read_text())
    assert report["rows_read"] == 1920 and report["rows_dropped"] == {}
    assert report["duplicates"]["rows"] == 0 and report["fill"] == "zero"
    assert report["tz"] == "Asia/Shanghai" and report["encoding"] == "utf-8, comma-separated"
    assert report["series"] == {"model": 4}
    assert out.exists()


def test_the_cli_refuses_unknown_policies(tmp_path: Path) -> None:
    for extra in (("--fill", "gap"), ("--duplicates", "mean"), ("--tz", "Mars/Base")):
        result, _ = cli(tmp_path, FC04 / "sales_weekly_5weeks.csv", "week", 4, *extra)
        assert result.exit_code == 2, (extra, result.output)


# --- week anchors ------------------------------------------------------------------------
@pytest.mark.parametrize("shift", [0, 6, 5])  # Monday, Sunday and Saturday weeks
def test_weekly_tables_keep_their_own_week_anchor(shift: int) -> None:
    """A retailer's Sunday or Saturday weeks come back on the same weekday, never moved to
    the Monday before (which would shift every week by up to six days)."""
    df = pl.read_csv(FC08 / "sales_weekly_complete.csv", try_parse_dates=True)
    df = df.with_columns(pl.col("week").dt.offset_by(f"{shift}d"))
    report = ForecastReport()
    result = forecast_table(df, KEYS, "week", "qty", 4, "W", report=report, **FAST)
    out = result.forecast["week"]
    assert set(out.dt.weekday()) == {shift + 1}  # polars: 1 = Monday
    assert out.min() == df["week"].max() + timedelta(weeks=1)
    assert report.week_anchor == ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday",
                                  "Saturday", "Sunday")[shift]  # fmt: skip


def test_daily_rows_become_monday_weeks() -> None:
    days = pl.DataFrame(
        {
            "region": ["华东"] * 70,
            "sku": ["A"] * 70,
            "day": pl.date_range(date(2024, 1, 3), date(2024, 3, 12), eager=True),
            "qty": np.arange(70, dtype=float) % 7 + 10,
        }
    )
    report = ForecastReport()
    result = forecast_table(days, KEYS, "day", "qty", 2, "W", report=report, **FAST)
    assert set(result.forecast["day"].dt.weekday()) == {1} and report.week_anchor == "Monday"


# --- months and quarters ----------------------------------------------------------------
def _daily(first: date, last: date, n_series: int = 3, seed: int = 4) -> pl.DataFrame:
    """Daily rows of `n_series` SKUs with a yearly season and a slow trend."""
    rng = np.random.default_rng(seed)
    days = pl.date_range(first, last, eager=True)
    t = np.arange(days.len())
    frames = []
    for s in range(n_series):
        mean = (5 + 3 * s) * (1 + 0.4 * np.sin(2 * np.pi * t / 365.25)) * (1 + t / 3000)
        frames.append(
            pl.DataFrame({"region": "华东", "sku": f"S{s}", "day": days, "qty": rng.poisson(mean)})
        )
    return pl.concat(frames)


@pytest.mark.parametrize("freq", ["M", "Q"])
def test_daily_rows_become_calendar_months_or_quarters_and_the_report_says_so(freq: str) -> None:
    """Days of one month are summed into it (not duplicates), forecasts are dated the 1st of
    the next `horizon` months / quarters, and the report counts what moved and was summed."""
    df = _daily(date(2019, 1, 1), date(2023, 12, 31))
    report = ForecastReport()
    result = forecast_table(df, KEYS, "day", "qty", 3, freq, report=report, **FAST)
    fc = result.forecast
    step = {"M": 1, "Q": 3}[freq]
    expected = [date(2024, 1 + step * h, 1) for h in range(3)]
    assert fc.group_by(KEYS).agg(pl.col("day").sort())["day"].to_list() == [expected] * 3
    assert (fc["p10"] <= fc["p50"]).all() and (fc["p50"] <= fc["p90"]).all()
    assert report.duplicates["rows"] == 0
    periods = 3 * 5 * 12 // step
    firsts = df.filter(pl.col("day").dt.truncate(f"{step}mo") == pl.col("day")).height
    assert report.periods == {
        "freq": freq,
        "dates_moved": df.height - firsts,
        "dates_summed": df.height,
        "periods_summed": periods,
    }
    name = {"M": "month", "Q": "quarter"}[freq]
    assert (
        f"{df.height - firsts:,} rows dated inside their {name} moved to its start; "
        f"{df.height:,} dates summed into {periods:,} series x {name}s" in "\n".join(report.lines())
    )
    # the forecast is of period totals: S0 sells about 5 a day, so ~150 a month
    s0 = fc.filter(pl.col("sku") == "S0")["p50"].mean()
    assert 100 * step < s0 < 300 * step


def test_month_end_dates_and_the_future_file_land_on_the_same_months() -> None:
    """A month-end table and a future file dated mid-month: both on the 1st, the known-in-
    advance promotion read in its month (it doubles demand in the history)."""
    rng = np.random.default_rng(3)
    rows = []
    for s in range(6):
        for t in range(72):
            start = date(2018 + t // 12, t % 12 + 1, 1)
            end = (start + timedelta(days=32)).replace(day=1) - timedelta(days=1)
            promo = int(rng.random() < 0.3)
            qty = (40 + 20 * s) * (1 + 0.2 * np.sin(2 * np.pi * t / 12)) * (1 + promo)
            rows.append({"region": "r", "sku": f"S{s}", "month": end, "promo": promo, "qty": qty})
    df = pl.DataFrame(rows)
    keys = df.select(KEYS).unique()
    days = [date(2024, m, 15) for m in (1, 2, 3)]
    future = keys.join(pl.DataFrame({"month": days}), how="cross")
    runs = {}
    for promo in (0, 1):
        report = ForecastReport()
        runs[promo] = forecast_table(
            df, KEYS, "month", "qty", 3, "M", report=report, calendar="none",
            future=future.with_columns(promo=pl.lit(promo)), **FAST,
        )  # fmt: skip
        assert report.periods["dates_moved"] == df.height
        assert report.periods["future_dates_moved"] == future.height
        assert "18 --future rows moved to their month's start" in "\n".join(report.lines())
        assert runs[promo].future_cols == ["promo"]
    assert set(runs[1].forecast["month"]) == {date(2024, m, 1) for m in (1, 2, 3)}
    assert runs[1].forecast["p50"].sum() / runs[0].forecast["p50"].sum() > 1.5


def test_monthly_gaps_silence_and_a_short_table_count_months() -> None:
    months = [date(2022, 1, 1) + timedelta(days=31 * t) for t in range(30)]  # mid-month drift
    df = pl.DataFrame(
        {"region": "r", "sku": np.repeat(["a", "b"], 30), "month": months * 2, "qty": 50.0}
    )
    df = df.filter(
        ~((pl.col("sku") == "a") & pl.col("month").is_in(months[10:12]))  # two months gone
        & ~((pl.col("sku") == "b") & pl.col("month").is_in(months[-3:]))  # silent at the end
    )
    report = ForecastReport()
    forecast_table(df, KEYS, "month", "qty", 2, "M", report=report, **FAST)
    assert report.gaps["missing_periods"] == 2
    assert report.silent_series == [
        {"region": "r", "sku": "b", "last_date": "2024-03-01", "periods_silent": 3}
    ]
    short = forecast_table(df.head(3), KEYS, "month", "qty", 4, "Q", **FAST)
    assert short.sources["forecast_source"].to_list() == ["mean_fallback"]
    assert short.forecast["month"].to_list() == [date(2022, m, 1) for m in (4, 7, 10)] + [
        date(2023, 1, 1)
    ]


def test_the_cli_forecasts_quarters_from_quarter_end_dates(tmp_path: Path) -> None:
    rng = np.random.default_rng(8)
    ends = [date(2014, 3, 31), date(2014, 6, 30), date(2014, 9, 30), date(2014, 12, 31)]
    rows = [
        {"region": "r", "sku": f"S{s}", "quarter": end.replace(year=end.year + y),
         "qty": (100 + 10 * s) * (1, 1.3, 0.9, 1.6)[q] * (1 + 0.03 * (4 * y + q))
         + rng.normal(0, 3)}
        for s in range(5) for y in range(10) for q, end in enumerate(ends)
    ]  # fmt: skip
    pl.DataFrame(rows).write_csv(tmp_path / "q.csv")
    result, out = cli(tmp_path, tmp_path / "q.csv", "quarter", 4, "--freq", "Q", "--backtest")
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert "periods are calendar quarters (Jan, Apr, Jul, Oct) dated their first day: 200" in text
    assert "holdout of the last horizon" in text and "seasonal_naive" in text
    fc = pl.read_csv(out, try_parse_dates=True)
    assert fc.height == 5 * 4
    assert set(fc["quarter"]) == {date(2024, m, 1) for m in (1, 4, 7, 10)}
    bad, _ = cli(tmp_path, tmp_path / "q.csv", "quarter", 4, "--freq", "Y")
    assert bad.exit_code == 2
    assert "freq must be one of ['D', 'W', 'M', 'Q']" in " ".join(bad.output.split())


# --- what each column is used as: the date in disguise, unseen levels ---------------------
RETAIL_KEYS = ["store", "item"]


def _retail(first: date = date(2023, 8, 1), days: int = 160, horizon: int = 14):
    """An M5-like daily table of three series and its future (the last `horizon` days):
    per day a day index `d` (d_1, d_2, ...), a Saturday week id `wm_yr_wk` (11101, ...),
    the `year`, and columns that repeat: `weekday` (a name), `month`, a benefit-day flag
    `snap_CA`, a sparse `event_name`; per series and day a `price`. With the defaults the
    history ends on 2023-12-24 and the horizon reaches 2024 (and New Year, an event the
    history never had, nor Christmas)."""
    events = {(10, 31): "Halloween", (11, 23): "Thanksgiving", (12, 25): "Christmas",
              (1, 1): "NewYear"}  # fmt: skip
    rng = np.random.default_rng(7)
    calendar = pl.DataFrame(
        [
            {
                "date": d,
                "d": f"d_{i + 1}",
                "wm_yr_wk": 11101 + (d - date(2023, 7, 29)).days // 7,
                "year": d.year,
                "weekday": d.strftime("%A"),
                "month": d.month,
                "snap_CA": int(d.day <= 10),
                "event_name": events.get((d.month, d.day)),
            }
            for i, d in enumerate(first + timedelta(days=k) for k in range(days))
        ]
    )
    series = pl.DataFrame({"store": ["CA_1", "CA_1", "TX_1"], "item": ["A", "B", "A"]})
    table = series.join(calendar, how="cross").with_columns(
        price=pl.Series(rng.choice([2.5, 2.99, 3.49], series.height * days)),
        sales=pl.Series(rng.poisson(6, series.height * days).astype(float)),
    )
    last = first + timedelta(days=days - horizon - 1)
    history = table.filter(pl.col("date") <= last)
    return history, table.filter(pl.col("date") > last).drop("sales")


CALENDAR_INPUTS = ["d", "wm_yr_wk", "year", "weekday", "month", "snap_CA", "event_name", "price"]


def test_day_indices_week_ids_and_a_new_year_are_the_date_in_disguise() -> None:
    history, future = _retail()
    dropped = dates_in_disguise(history, future, CALENDAR_INPUTS, "date")
    assert set(dropped) == {"d", "wm_yr_wk", "year"}  # weekday, month, flag, event, price kept
    assert dropped["d"] == (
        "a new value on nearly every date (160 values over 160 dates), its horizon values "
        "('d_147', 'd_148', 'd_149') never in the history"
    )
    assert dropped["wm_yr_wk"] == (
        "grows with the date (11101 on 2023-08-01 to 11124 on 2024-01-07), its horizon values "
        "(11123, 11124) beyond the history's last (11122)"  # 11122 also starts the horizon
    )
    assert dropped["year"] == (
        "grows with the date (2023 on 2023-08-01 to 2024 on 2024-01-07), its horizon values "
        "(2024) beyond the history's last (2023)"
    )


def test_disguised_dates_in_other_forms_and_columns_that_only_look_like_them() -> None:
    history, future = _retail()

    def extra(t: pl.DataFrame) -> pl.DataFrame:
        return t.with_columns(
            iso=pl.col("date").cast(pl.String),  # ISO date strings
            index=(pl.col("date") - pl.lit(date(2023, 8, 1))).dt.total_days(),  # a running index
            week_code=pl.format("wk{}", pl.col("wm_yr_wk") * 37 % 1000),  # ids, not in date order
            oil=(pl.col("date").dt.day() * 1.7).sin() + 60,  # a global price: up and down
            day_of_month=pl.format("day {}", pl.col("date").dt.day()),  # digits that repeat
        )

    columns = ["iso", "index", "week_code", "oil", "day_of_month"]
    dropped = dates_in_disguise(extra(history), extra(future), columns, "date")
    assert set(dropped) == {"iso", "index"}
    # the horizon within the history's last year: the year is an ordinary input then
    history, future = _retail(first=date(2023, 1, 1))
    assert set(dates_in_disguise(history, future, CALENDAR_INPUTS, "date")) == {"d", "wm_yr_wk"}
    # a column that differs between series on one date is not a function of the date
    per_series = pl.col("d") + pl.col("store")
    assert not dates_in_disguise(
        history.with_columns(per_series), future.with_columns(per_series), ["d"], "date"
    )


def test_inputs_that_only_grow_but_measure_something_are_kept() -> None:
    """A promotion deepening into the horizon, a price rising every day, a price step that
    holds for months and a phase label that changes monthly grow with the date and bring
    new values, but they are inputs, not the date; a week id in the same table is not."""
    history, future = _retail()

    def extra(t: pl.DataFrame) -> pl.DataFrame:
        days = (pl.col("date") - pl.lit(date(2023, 8, 1))).dt.total_days()
        return t.with_columns(
            promo_depth=pl.when(days < 100).then(0.0).when(days < 146).then(0.1).otherwise(0.25),
            list_price=10 + days * 0.01,  # rises every day, never a whole number of yuan
            price_step=pl.when(pl.col("date") < date(2023, 11, 1)).then(10).otherwise(12),
            phase=pl.format("phase {}", pl.col("date").dt.month()),  # monthly, new in January
        )

    columns = ["promo_depth", "list_price", "price_step", "phase", "wm_yr_wk"]
    assert set(dates_in_disguise(extra(history), extra(future), columns, "date")) == {"wm_yr_wk"}


def test_text_inputs_whose_future_values_the_history_never_had_are_counted() -> None:
    history, future = _retail()
    kept = ["weekday", "month", "snap_CA", "event_name", "price"]
    assert unseen_levels(history, future, kept) == {
        "event_name": {"rows": 6, "values": 2, "examples": ["Christmas", "NewYear"]}  # 3 series
    }


def test_the_report_names_what_each_column_was_used_as() -> None:
    days = [date(2024, 1, 1) + timedelta(days=i) for i in range(10)]  # mean fallback: no fit
    df = pl.DataFrame({"region": "r", "sku": "a", "date": days, "qty": 3.0, "scans": 9})
    result = forecast_table(df, KEYS, "date", "qty", 14, "D", **FAST)
    assert result.report.columns == {
        "ids": KEYS,
        "date": "date",
        "target": "qty",
        "known_in_advance": [],
        "history_only": ["scans"],
    }
    lines = result.report.lines()
    assert lines[1] == "columns: ids ['region', 'sku'], date 'date', target 'qty'"
    assert lines[2] == "inputs known in advance (--future): none; historical only: ['scans']"
    assert result.report.dropped_columns == {}


def test_the_cli_drops_disguised_dates_and_says_what_it_used(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import functools

    from bclake.ml import any_table

    monkeypatch.setattr(
        any_table, "forecast_table", functools.partial(any_table.forecast_table, **FAST)
    )
    history, future = _retail()
    history.write_csv(tmp_path / "sales.csv")
    future.write_csv(tmp_path / "future.csv")
    out = tmp_path / "fc.csv"
    args = [
        "forecast", "--input", str(tmp_path / "sales.csv"), "--id-cols", "store,item",
        "--date-col", "date", "--target-col", "sales", "--horizon", "14", "--freq", "D",
        "--future", str(tmp_path / "future.csv"), "--calendar", "none", "--out", str(out),
    ]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    report = json.loads((tmp_path / "fc.csv.report.json").read_text())
    assert report["columns"] == {
        "ids": ["store", "item"],
        "date": "date",
        "target": "sales",
        "known_in_advance": ["weekday", "month", "snap_CA", "event_name", "price"],
        "history_only": [],
    }
    assert list(report["dropped_columns"]) == ["d", "wm_yr_wk", "year"]
    for column in ("d", "wm_yr_wk", "year"):
        assert f"dropped column '{column}': known in advance, the date in disguise: " in text
    assert "builds its own calendar of each target period (weekday, day, week, month or" in text
    assert report["dropped_columns"]["year"].endswith("beyond the history's last (2023)")
    assert (
        "inputs known in advance (--future): ['weekday', 'month', 'snap_CA', 'event_name', "
        "'price']; historical only: none" in text
    )
    assert (
        "warning: known-in-advance column 'event_name': 6 of 42 future rows carry values the "
        "history never had (2 distinct, e.g. 'Christmas', 'NewYear'); the model reads them as "
        "unknown" in text
    )
    fc = pl.read_csv(out, try_parse_dates=True)
    assert fc.height == 3 * 14 and fc["date"].min() == date(2023, 12, 25)


# --- model or baseline per series group, by backtest (bclake.ml.selection) -------------
def _monthly(n_series: int, months: int, value) -> pl.DataFrame:
    """A long monthly table (region, sku, date, qty); value(series, month index)."""
    rows = [
        {"region": "north", "sku": f"s{i}", "date": date(2019 + t // 12, t % 12 + 1, 1),
         "qty": float(value(i, t))}
        for i in range(n_series)
        for t in range(months)
    ]  # fmt: skip
    return pl.DataFrame(rows)


def test_choice_picks_seasonal_naive_for_exact_seasonal_repeats() -> None:
    rng = np.random.default_rng(3)
    shapes = rng.uniform(5, 100, size=(6, 12))
    df = _monthly(6, 60, lambda i, t: shapes[i, t % 12])
    result = forecast_table(df, KEYS, "date", "qty", 3, "M", calendar="none", choose=True, **FAST)
    fc = result.forecast
    assert set(fc["method"]) == {"seasonal_naive"}
    groups = result.report.choice["groups"]
    assert [g["chosen"] for g in groups] == ["seasonal_naive"] and groups[0]["series"] == 6
    assert groups[0]["mase"]["seasonal_naive"] == 0.0 < groups[0]["mase"]["model"]
    # the forecast is the same months of the last season (months 60..62 -> index 0..2)
    for i in range(6):
        got = fc.filter(pl.col("sku") == f"s{i}").sort("date")
        np.testing.assert_allclose(got["p50"].to_numpy(), shapes[i, :3])
        # no backtest error: the band collapses onto the point, never crossing it
        assert (got["p10"] <= got["p50"]).all() and (got["p50"] <= got["p90"]).all()
    assert result.report.series == {"seasonal_naive": 6}
    assert any("-> seasonal_naive" in line for line in result.report.lines())


def test_choice_keeps_the_model_where_it_learns_what_baselines_cannot() -> None:
    rng = np.random.default_rng(4)
    days = pl.date_range(date(2024, 1, 1), date(2024, 4, 30), eager=True)
    frames = []
    for i in range(6):
        promo = rng.integers(0, 2, days.len()).astype(float)
        noise = rng.normal(0, 1, days.len())
        frames.append(
            pl.DataFrame({"region": "r", "sku": f"s{i}", "date": days, "promo": promo,
                          "qty": 20 + 10 * i + 40 * promo + noise})
        )  # fmt: skip
    df = pl.concat(frames)
    cut = date(2024, 4, 23)
    hist, fut = df.filter(pl.col("date") <= cut), df.filter(pl.col("date") > cut)
    result = forecast_table(
        hist, KEYS, "date", "qty", 7, "D", future=fut.drop("qty"), calendar="none",
        choose=True, **FAST,
    )  # fmt: skip
    assert set(result.forecast["method"]) == {"model"}
    (group,) = result.report.choice["groups"]
    assert group["chosen"] == "model"
    assert group["mase"]["model"] < min(v for c, v in group["mase"].items() if c != "model")
    fc = result.forecast
    assert (fc["p10"] <= fc["p50"]).all() and (fc["p50"] <= fc["p90"]).all()


def test_choice_band_of_a_baseline_does_not_cross_and_stays_non_negative() -> None:
    rng = np.random.default_rng(5)
    shapes = rng.uniform(0, 30, size=(6, 12))
    noise = rng.normal(0, 2, size=(6, 60))
    df = _monthly(6, 60, lambda i, t: max(0.0, shapes[i, t % 12] + noise[i, t]))
    result = forecast_table(df, KEYS, "date", "qty", 3, "M", calendar="none", choose=True, **FAST)
    fc = result.forecast
    assert fc.columns == ["region", "sku", "date", "p10", "p50", "p90", "method"]
    assert set(fc["method"]) == {"seasonal_naive"}  # its band from its backtest errors
    assert (fc["p10"] < fc["p50"]).any() and (fc["p90"] > fc["p50"]).any()
    assert (fc["p10"] <= fc["p50"]).all() and (fc["p50"] <= fc["p90"]).all()
    assert (fc["p10"] >= 0).all()


def test_choice_on_a_table_too_short_for_a_backtest_keeps_the_model() -> None:
    df = _monthly(4, 14, lambda i, t: 10 + i + (t % 3))
    result = forecast_table(df, KEYS, "date", "qty", 3, "M", calendar="none", choose=True, **FAST)
    assert set(result.forecast["method"]) == {"model"}
    assert result.report.choice == {}
    assert any("no choice of method by backtest" in w for w in result.report.warnings)
    off = forecast_table(df, KEYS, "date", "qty", 3, "M", calendar="none", choose=False, **FAST)
    assert not any("no choice" in w for w in off.report.warnings)
    assert set(off.forecast["method"]) == {"model"}


def test_combined_choice_averages_the_model_and_seasonal_naive() -> None:
    from bclake.ml.selection import COMBINED, baseline_forecast

    keys = pl.DataFrame({"region": ["r", "r"], "sku": ["a", "b"]})
    values = np.tile(np.arange(1.0, 9.0), (2, 1)) * np.array([[1.0], [10.0]])  # season 4
    fc = keys.join(pl.DataFrame({"horizon": [1, 2]}), how="cross").with_columns(
        date=pl.date(2024, 1, 1), p10=0.0, p50=100.0, p90=200.0
    )
    cv = fc.select(*KEYS, "horizon").with_columns(
        y=pl.lit(10.0), p50=pl.lit(12.0), seasonal_naive=pl.lit(9.0), mase_scale=pl.lit(1.0)
    )
    groups = keys.with_columns(group=pl.lit("all series"))
    out = baseline_forecast(
        fc, values, keys, cv, groups, {"all series": COMBINED}, KEYS, 2, 4, (0.1, 0.5, 0.9), True
    ).sort(*KEYS, "horizon")
    # seasonal naive of 1..8 (x10) at steps 1, 2 is 5, 6 (50, 60); the model says 100
    assert out["p50"].to_list() == [52.5, 53.0, 75.0, 80.0]
    assert set(out["method"]) == {COMBINED}
    # every backtest error is 10 - 10.5 = -0.5 scaled; its scale is the series' MASE scale
    assert out["p10"].to_list() == [52.5 - 2.0, 53.0 - 2.0, 75.0 - 20.0, 80.0 - 20.0]
    assert out["p90"].to_list() == out["p50"].to_list()
