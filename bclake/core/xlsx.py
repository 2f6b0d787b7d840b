"""Spreadsheets for planners: polars tables -> one XLSX workbook, one sheet per table,
or one CSV; the only writers of a CSV or XLSX a person opens.

The layout every planner-facing workbook shares: a bold, shaded header row frozen above
the data, each header naming its column in English and Chinese and its unit, columns
sized to their content, dates as Excel date cells and numbers as numbers.

Both writers defuse formula-like text (OWASP CSV injection): a text cell or header that
starts with `=`, `+`, `-`, `@`, a tab or a carriage return gets a leading apostrophe, so
Excel and LibreOffice show it as text instead of running it (a store name
`=HYPERLINK(...)` stays a name). Only text is touched: a number, negative or not, stays
a number cell.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import IO

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
_FORMULA_START = "^[" + re.escape("".join(FORMULA_START)) + "]"
# control characters an XLSX cell cannot hold (openpyxl refuses the whole workbook)
XLSX_ILLEGAL = r"[\x00-\x08\x0b\x0c\x0e-\x1f]"


def header_label(column: str, headers: Headers) -> str:
    """The header cell of `column`: "label (unit)", or the label alone for no unit or a
    date; the column name itself when `headers` does not list it."""
    label, unit = headers.get(column, (column, ""))
    return defuse_text(f"{label} ({unit})" if unit and unit != "date" else label)


def write_xlsx(frames: Mapping[str, pl.DataFrame], path: Path, headers: Headers) -> None:
    """Write `frames` (sheet name -> table, in order) as one workbook at `path`.

    Each sheet: header row from `headers` (`header_label`), bold on a light fill and
    frozen; one row per table row with values as their Python types (dates become date
    cells formatted yyyy-mm-dd, numbers stay numbers, nulls empty cells); formula-like text
    and headers defused (`defuse_formulas`: no cell is ever a formula) and control
    characters an XLSX cannot hold replaced by U+FFFD; column widths from the header and
    the first `WIDTH_SAMPLE` values, between `MIN_WIDTH` and `MAX_WIDTH` characters. The
    file is written beside `path` and moved into place, so a reader never sees half a
    workbook. Raises OSError when `path`'s folder is not writable; openpyxl's ValueError
    for a sheet name Excel forbids.
    """
    wb = Workbook()
    wb.remove(wb.active)
    for sheet, raw in frames.items():
        frame = defuse_formulas(raw)
        frame = frame.with_columns(
            pl.col(c).str.replace_all(XLSX_ILLEGAL, "\ufffd")
            for c, dtype in frame.schema.items()
            if dtype == pl.String
        )
        ws = wb.create_sheet(sheet)
        labels = [
            re.sub(XLSX_ILLEGAL, "\ufffd", header_label(col, headers)) for col in frame.columns
        ]
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


def write_csv(frame: pl.DataFrame, target: Path | IO[bytes], bom: bool = True) -> None:
    """`frame` as UTF-8 CSV at `target` (a path or a binary buffer), with a BOM unless
    `bom` is False (Excel needs it to read Chinese right), formula-like text and column
    names defused (`defuse_formulas`). Raises OSError when `target` cannot be written."""
    defuse_formulas(frame).write_csv(target, include_bom=bom)


def defuse_text(value: str) -> str:
    """`value` with a leading apostrophe when a spreadsheet would evaluate it (it starts
    with one of `FORMULA_START`); any other text unchanged. Idempotent."""
    return f"'{value}" if value.startswith(FORMULA_START) else value


def defuse_formulas(frame: pl.DataFrame) -> pl.DataFrame:
    """Text cells a spreadsheet would evaluate (starting with = + - @, a tab or a carriage
    return) get a leading apostrophe, so Excel shows them as text instead of running them;
    column names likewise (`defuse_text`). Text is a String, Categorical or Enum column
    (the latter two come back as String); every other column, numbers included, is
    returned unchanged. Idempotent: a defused cell starts with the apostrophe."""
    text = [c for c, dtype in frame.schema.items() if dtype in (pl.String, pl.Categorical)]
    text += [c for c, dtype in frame.schema.items() if isinstance(dtype, pl.Enum)]
    defused = frame.with_columns(
        pl.when(pl.col(c).cast(pl.String).str.contains(_FORMULA_START))
        .then(pl.lit("'") + pl.col(c).cast(pl.String))
        .otherwise(pl.col(c).cast(pl.String))
        .alias(c)
        for c in text
    )
    return defused.rename({c: defuse_text(c) for c in frame.columns if defuse_text(c) != c})
