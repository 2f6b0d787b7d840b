"""Spreadsheets for planners: polars tables -> one XLSX workbook, one sheet per table.

The layout every planner-facing workbook shares: a bold, shaded header row frozen above
the data, each header naming its column in English and Chinese and its unit, columns
sized to their content, dates as Excel date cells and numbers as numbers.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path

import polars as pl
from openpyxl import Workbook
from openpyxl.styles import Font, PatternFill
from openpyxl.utils import get_column_letter

Headers = Mapping[str, tuple[str, str]]
"""column -> (header shown in the spreadsheet, unit); unit "" for none, "date" for a date
column (formatted as a date, not named in the header)."""

HEADER_FILL = "DDEBF7"
DATE_FORMAT = "yyyy-mm-dd"
MIN_WIDTH, MAX_WIDTH = 10, 45  # column widths, in characters
WIDTH_SAMPLE = 200  # rows read to size a column
# text a spreadsheet would run as a formula: a cell that starts with one of these
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def header_label(column: str, headers: Headers) -> str:
    """The header cell of `column`: "label (unit)", or the label alone for no unit or a
    date; the column name itself when `headers` does not list it."""
    label, unit = headers.get(column, (column, ""))
    return f"{label} ({unit})" if unit and unit != "date" else label


def write_xlsx(frames: Mapping[str, pl.DataFrame], path: Path, headers: Headers) -> None:
    """Write `frames` (sheet name -> table, in order) as one workbook at `path`.

    Each sheet: header row from `headers` (`header_label`), bold on a light fill and
    frozen; one row per table row with values as their Python types (dates become date
    cells formatted yyyy-mm-dd, numbers stay numbers, nulls empty cells); column widths
    from the header and the first `WIDTH_SAMPLE` values, between `MIN_WIDTH` and
    `MAX_WIDTH` characters. The file is written beside `path` and moved into place, so a
    reader never sees half a workbook. Raises OSError when `path`'s folder is not
    writable; openpyxl's ValueError for a sheet name Excel forbids.
    """
    wb = Workbook()
    wb.remove(wb.active)
    for sheet, frame in frames.items():
        ws = wb.create_sheet(sheet)
        labels = [header_label(col, headers) for col in frame.columns]
        ws.append(labels)
        for row in frame.iter_rows():
            ws.append(list(row))
        for cell in ws[1]:
            cell.font = Font(bold=True)
            cell.fill = PatternFill("solid", fgColor=HEADER_FILL)
        ws.freeze_panes = "A2"
        for i, col in enumerate(frame.columns, start=1):
            width = max(
                [len(labels[i - 1]) * 1.6]
                + [len(str(v)) * 1.3 for v in frame[col].head(WIDTH_SAMPLE).to_list()]
            )
            ws.column_dimensions[get_column_letter(i)].width = min(MAX_WIDTH, max(MIN_WIDTH, width))
            if frame.schema[col] == pl.Date:
                for cell in ws[get_column_letter(i)][1:]:
                    cell.number_format = DATE_FORMAT
    tmp = path.with_name(f".{path.name}.tmp")
    wb.save(tmp)
    os.replace(tmp, path)


def defuse_formulas(frame: pl.DataFrame) -> pl.DataFrame:
    """Text cells a spreadsheet would evaluate (starting with = + - @, a tab or a carriage
    return) get a leading apostrophe, so Excel shows them as text instead of running them.
    Non-text columns are returned unchanged."""
    starts = "^[" + re.escape("".join(FORMULA_START)) + "]"
    return frame.with_columns(
        pl.when(pl.col(c).str.contains(starts))
        .then(pl.lit("'") + pl.col(c))
        .otherwise(pl.col(c))
        .alias(c)
        for c, dtype in frame.schema.items()
        if dtype == pl.String
    )
