"""`bclake forecast --out plan.xlsx`: the planner files' spreadsheet layout (frozen
bilingual header, units, dates as date cells, numbers as numbers), a report sheet, and
the same rows and values as the CSV output."""

from __future__ import annotations

import functools
import shutil
import subprocess
from datetime import date, datetime, timedelta
from pathlib import Path

import numpy as np
import openpyxl
import polars as pl
import pytest
from typer.testing import CliRunner

from bclake.cli import app
from bclake.ml import any_table
from bclake.ml.any_table import ForecastReport, InputError, forecast_table, write_table

FAST = {"num_boost_round": 30}
KEYS = ["region", "sku"]
HORIZON = 4


def _sales() -> pl.DataFrame:
    """3 series x 30 Monday weeks of made-up weekly sales (units)."""
    rng = np.random.default_rng(3)
    rows = []
    for region, sku, level in (("华东", "A1", 40.0), ("华东", "B2", 12.0), ("north", "A1", 25.0)):
        for w in range(30):
            qty = level * (1 + 0.2 * np.sin(w / 4)) + rng.normal(0, 2)
            rows.append((region, sku, date(2024, 1, 1) + timedelta(weeks=w), round(qty, 1)))
    return pl.DataFrame(rows, schema=["region", "sku", "week_start", "qty"], orient="row")


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, pl.DataFrame]:
    """One forecast written as CSV and as XLSX (with its report); returns both paths and it."""
    folder = tmp_path_factory.mktemp("forecast_xlsx")
    report = ForecastReport()
    result = forecast_table(
        _sales(), KEYS, "week_start", "qty", HORIZON, "W", report=report, **FAST
    )
    write_table(result.forecast, folder / "plan.csv")
    write_table(result.forecast, folder / "plan.xlsx", report=result.report)
    return folder / "plan.csv", folder / "plan.xlsx", result.forecast


def test_xlsx_has_the_planner_layout(written: tuple[Path, Path, pl.DataFrame]) -> None:
    csv_path, xlsx_path, forecast = written
    csv = pl.read_csv(csv_path, try_parse_dates=True)
    book = openpyxl.load_workbook(xlsx_path)
    assert book.sheetnames == ["forecast", "report"]
    ws = book["forecast"]
    assert ws.freeze_panes == "A2"
    header = [c.value for c in ws[1]]
    assert header == [
        "region",
        "sku",
        "week_start 日期",
        "P10 预测 10% 分位数 (units)",
        "P50 预测中位数 (units)",
        "P90 预测 90% 分位数 (units)",
        "method 预测方法",
    ]
    assert all(c.font.bold for c in ws[1])
    rows = [r for r in ws.iter_rows(min_row=2)]
    assert len(rows) == csv.height == forecast.height == 3 * HORIZON
    for row, expected in zip(rows, csv.iter_rows(), strict=True):
        region, sku, week, *quantiles, method = row
        assert method.value == expected[-1] and method.data_type == "s"
        assert (region.value, sku.value) == expected[:2]
        assert isinstance(week.value, datetime) and week.is_date
        assert week.number_format == "yyyy-mm-dd"
        assert week.value.date() == expected[2]
        assert all(isinstance(q.value, float) and q.data_type == "n" for q in quantiles)
        assert [q.value for q in quantiles] == pytest.approx(list(expected[3:-1]), rel=1e-9)
    assert ws.column_dimensions["E"].width >= len(header[4])  # the header is not cut off
    report = [r[0] for r in book["report"].iter_rows(values_only=True)]
    assert report[0] == "report 运行报告" and report[1].startswith("read ")


@pytest.mark.skipif(shutil.which("soffice") is None, reason="LibreOffice (soffice) not installed")
def test_libreoffice_reads_the_same_values(
    written: tuple[Path, Path, pl.DataFrame], tmp_path: Path
) -> None:
    csv_path, xlsx_path, _ = written
    subprocess.run(
        ["soffice", "--headless", "--norestore", f"-env:UserInstallation=file://{tmp_path}/lo",
         "--convert-to", "csv:Text - txt - csv (StarCalc):44,34,76", "--outdir", str(tmp_path),
         str(xlsx_path)],
        check=True, capture_output=True, timeout=180,
    )  # fmt: skip
    converted = pl.read_csv(tmp_path / "plan.csv", try_parse_dates=True)  # the first sheet
    expected = pl.read_csv(csv_path, try_parse_dates=True)
    assert converted.columns[2] == "week_start 日期"
    assert converted.columns[4] == "P50 预测中位数 (units)"
    assert converted.height == expected.height
    assert converted.schema[converted.columns[2]] == pl.Date
    for got, want in zip(converted.iter_rows(), expected.iter_rows(), strict=True):
        assert got[:3] == want[:3]
        assert list(got[3:-1]) == pytest.approx(list(want[3:-1]), rel=1e-6)
        assert got[-1] == want[-1]  # method


def test_cli_writes_xlsx(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(
        any_table, "forecast_table", functools.partial(any_table.forecast_table, **FAST)
    )
    source = tmp_path / "sales.csv"
    _sales().write_csv(source)
    out = tmp_path / "plan.xlsx"
    args = [
        "forecast", "--input", str(source), "--id-cols", "region,sku", "--date-col", "week_start",
        "--target-col", "qty", "--horizon", str(HORIZON), "--out", str(out),
    ]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    book = openpyxl.load_workbook(out, read_only=True)
    assert book.sheetnames == ["forecast", "report"]
    assert len(list(book["forecast"].iter_rows(values_only=True))) == 1 + 3 * HORIZON
    assert (tmp_path / "plan.xlsx.report.json").exists()


def test_other_suffixes_are_refused(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"\.csv, \.parquet or \.xlsx"):
        write_table(pl.DataFrame({"a": [1]}), tmp_path / "plan.xls")
