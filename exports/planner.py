"""Planner files: the forecast as CSV and XLSX that a spreadsheet opens as is.

Reads only the published warehouse, so files always match what dashboards show.
"""

from __future__ import annotations

import os
from pathlib import Path

import duckdb
import polars as pl
from openpyxl import Workbook
from openpyxl.styles import Font, PatternFill
from openpyxl.utils import get_column_letter

FORECAST_QUERY = """
select f.region, f.sku_code, p.sku_name, p.category, f.week_start, f.horizon,
       round(f.p10, 1) as p10, round(f.p50, 1) as p50, round(f.p90, 1) as p90
from ml.forecast_region_sku_week as f
left join marts.dim_product as p using (sku_code)
order by f.region, f.sku_code, f.week_start
"""
# column -> (header shown in the spreadsheet, unit)
FORECAST_HEADERS = {
    "region": ("region 区域", ""),
    "sku_code": ("sku_code 产品编码", ""),
    "sku_name": ("sku_name 产品名称", ""),
    "category": ("category 品类", ""),
    "week_start": ("week_start 周一", "date"),
    "horizon": ("horizon 提前周数", "weeks"),
    "p10": ("p10 低", "units"),
    "p50": ("p50 中位", "units"),
    "p90": ("p90 高", "units"),
}


def write_xlsx(
    frames: dict[str, pl.DataFrame], path: Path, headers: dict[str, tuple[str, str]]
) -> None:
    """One sheet per table, bold frozen header naming the unit, columns sized to content."""
    wb = Workbook()
    wb.remove(wb.active)
    for sheet, frame in frames.items():
        ws = wb.create_sheet(sheet)
        labels = []
        for col in frame.columns:
            label, unit = headers.get(col, (col, ""))
            labels.append(f"{label} ({unit})" if unit and unit != "date" else label)
        ws.append(labels)
        for row in frame.iter_rows():
            ws.append(list(row))
        for cell in ws[1]:
            cell.font = Font(bold=True)
            cell.fill = PatternFill("solid", fgColor="DDEBF7")
        ws.freeze_panes = "A2"
        for i, col in enumerate(frame.columns, start=1):
            width = max(
                [len(labels[i - 1]) * 1.6]
                + [len(str(v)) * 1.3 for v in frame[col].head(200).to_list()]
            )
            ws.column_dimensions[get_column_letter(i)].width = min(45, max(10, width))
            if frame.schema[col] == pl.Date:
                for cell in ws[get_column_letter(i)][1:]:
                    cell.number_format = "yyyy-mm-dd"
    tmp = path.with_name(f".{path.name}.tmp")
    wb.save(tmp)
    os.replace(tmp, path)


def write_planner_files(published_db: Path, exports_dir: Path) -> dict[str, int]:
    """Write the whole-company forecast as CSV and XLSX; returns rows per file."""
    exports_dir.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(published_db), read_only=True)
    try:
        forecast = con.sql(FORECAST_QUERY).pl()
    finally:
        con.close()
    csv_path = exports_dir / "forecast_region_sku_week.csv"
    tmp = csv_path.with_name(f".{csv_path.name}.tmp")
    forecast.write_csv(tmp, include_bom=True)  # Excel reads UTF-8 CSV only with a BOM
    os.replace(tmp, csv_path)
    write_xlsx(
        {"forecast": forecast}, exports_dir / "forecast_region_sku_week.xlsx", FORECAST_HEADERS
    )
    return {csv_path.name: forecast.height, "forecast_region_sku_week.xlsx": forecast.height}
