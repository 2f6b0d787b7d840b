"""Spreadsheet safety: no CSV or XLSX bclake writes lets a cell run as a formula.

A store name, SKU name or id that starts like a formula (`=HYPERLINK(...)`, `@SUM(1)`,
`-2+3`, a tab or carriage return before `=`) reaches the planner files, the dashboard
downloads and `bclake forecast --out` as inert text (a leading apostrophe, OWASP's CSV
injection advice), while numbers, negative ones included, stay number cells. The files
are opened in LibreOffice (headless) when it is installed: the cells show the literal
text, not a formula's result. Every table here is hand-made in `tmp_path`.
"""

from __future__ import annotations

import csv
import io
import re
import shutil
import subprocess
from datetime import date
from pathlib import Path

import duckdb
import openpyxl
import polars as pl
import pytest

from bclake.core.xlsx import FORMULA_START, defuse_formulas, defuse_text, write_csv, write_xlsx
from bclake.dashboards import data
from bclake.exports.planner import write_planner_files
from bclake.ml.any_table import write_table

ROOT = Path(__file__).resolve().parents[1]
HYPERLINK = '=HYPERLINK("http://x","y")'
# hostile store names: the three, a tab and a carriage return before a formula,
# a plus, and a harmless name that must stay as it is
HOSTILE = [HYPERLINK, "@SUM(1)", "-2+3", "\t=1+1", "\r=1+1", "+1+1"]
PLAIN = "东城便利店"
STORES = [f"S{i:06d}" for i in range(1, len(HOSTILE) + 2)]
NAMES = [*HOSTILE, PLAIN]
DEFUSED = sorted([f"'{n}" for n in HOSTILE] + [PLAIN])
# as a workbook gives them back: XML turns a carriage return into a line feed
DEFUSED_IN_BOOK = sorted(n.replace("\r", "\n") for n in DEFUSED)
SOFFICE = shutil.which("soffice")
needs_soffice = pytest.mark.skipif(
    SOFFICE is None,
    reason="LibreOffice (soffice) is not installed: `make system-tools` installs it from Debian",
)


def _warehouse(path: Path) -> None:
    """A published warehouse holding only what the planner files read: one region, one
    distributor, a store per hostile name, one SKU whose name is a formula too, and
    negative numbers (a stock shortfall, a low quantile) that must stay numbers."""
    stores = ", ".join(
        f"('{code}', '{name}')"
        for code, name in zip(STORES, [n.replace("'", "''") for n in NAMES], strict=True)
    )
    with duckdb.connect(str(path)) as con:
        con.execute("create schema ml; create schema marts")
        con.execute(
            f"create table marts.dim_store as select * from (values {stores}) "
            "as t(store_code, store_name)"
        )
        con.execute(
            "create table marts.dim_product as select 'K001' as sku_code, "
            "'=1+1' as sku_name, '@cat' as category"
        )
        con.execute(
            "create table marts.dim_distributor as select 'D0001' as distributor_code, "
            "'华北' as region"
        )
        con.execute(
            "create table ml.forecast_region_sku_week as select '华北' as region, "
            "'K001' as sku_code, date '2025-01-06' as week_start, 1 as horizon, "
            "-1.5 as p10, 2.0 as p50, 4.0 as p90, '-model' as forecast_source"
        )
        con.execute(
            "create table ml.forecast_distributor_sku_week as select 'D0001' as "
            "distributor_code, 'K001' as sku_code, date '2025-01-06' as week_start, "
            "-1.5 as p10, 2.0 as p50, 4.0 as p90, 'model' as forecast_source"
        )
        con.execute(
            "create table ml.replenishment_store_sku as select '华北' as region, "
            "'D0001' as distributor_code, store_code, 'K001' as sku_code, "
            "date '2025-01-06' as as_of, 3 as suggested_qty, 'order_up_to' as rule, "
            "1.25 as forecast_mean, 1 as safety_stock, 4 as order_up_to, -5 as on_hand, "
            "0 as on_order, 2 as lead_days, 1 as order_multiple, "
            "'=原因' as reason_zh, '+reason' as reason_en from marts.dim_store"
        )
        con.execute(
            "create table ml.replenishment_distributor_sku as select '华北' as region, "
            "'D0001' as distributor_code, 'K001' as sku_code, date '2025-01-06' as as_of, "
            "3 as suggested_qty, 'order_up_to' as rule, 1.25 as forecast_mean, "
            "1 as safety_stock, 4 as order_up_to, -5 as on_hand, 0 as on_order, "
            "2 as lead_days, 1 as order_multiple, 'ok' as reason_zh, 'ok' as reason_en"
        )
        con.execute(
            "create table marts.fct_store_activity_plans as select '华北' as region_code, "
            "'D0001' as distributor_code, store_code, 'A' as channel_type, "
            "'t1' as city_tier, date '2025-01-06' as plan_start, date '2025-02-02' as plan_end, "
            "1 as rank, 'display' as activity, -0.5 as expected_incremental_units, "
            "-2.25 as expected_incremental_yuan, '' as promo_ids, null as trial_sku_code, "
            "null as trial_consumer_segment, '@evidence' as evidence, "
            "'-原因' as reason_zh, '=reason' as reason_en from marts.dim_store"
        )


@pytest.fixture(scope="module")
def exports(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("spreadsheets")
    _warehouse(root / "published.duckdb")
    write_planner_files(root / "published.duckdb", root / "exports")
    return root / "exports"


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _live_csv_cells(raw: bytes) -> list[str]:
    """Cells of one CSV a spreadsheet would run: text starting like a formula."""
    rows = csv.reader(io.StringIO(raw.decode("utf-8-sig"), newline=""))
    return [c for row in rows for c in row if c.startswith(FORMULA_START) and not _is_number(c)]


def _live_xlsx_cells(book: openpyxl.Workbook) -> list[str]:
    """Cells of one workbook that are formulas, or text starting like one."""
    return [
        f"{ws.title}!{cell.coordinate}={cell.value!r}"
        for ws in book
        for row in ws.iter_rows()
        for cell in row
        if cell.data_type == "f"
        or (isinstance(cell.value, str) and cell.value.startswith(FORMULA_START))
    ]


def test_planner_files_hold_no_live_formula(exports: Path) -> None:
    books = sorted(exports.rglob("*.xlsx"))
    csvs = sorted(exports.rglob("*.csv"))
    # company, the region and the distributor: plan.xlsx and marketing.xlsx each
    assert {p.name for p in books} == {"plan.xlsx", "marketing.xlsx"} and len(books) == 6
    assert len(csvs) >= 12
    for path in csvs:
        assert not _live_csv_cells(path.read_bytes()), path
    for path in books:
        assert not _live_xlsx_cells(openpyxl.load_workbook(path)), path


def test_plan_xlsx_keeps_the_names_as_text_and_numbers_as_numbers(exports: Path) -> None:
    sheet = openpyxl.load_workbook(exports / "company" / "plan.xlsx")["store_orders"]
    rows = list(sheet.iter_rows())
    header = [c.value for c in rows[0]]
    name, on_hand = header.index("store_name 门店名称"), header.index("on_hand 现有库存 (units)")
    names = [r[name].value for r in rows[1:]]
    assert sorted(names) == DEFUSED_IN_BOOK
    assert all(r[name].data_type == "s" for r in rows[1:])
    assert all(r[on_hand].value == -5 and r[on_hand].data_type == "n" for r in rows[1:])
    forecast = list(openpyxl.load_workbook(exports / "company" / "plan.xlsx")["forecast"].values)
    assert forecast[1][header_index(forecast, "p10 低 (units)")] == -1.5  # a number cell
    assert forecast[1][header_index(forecast, "sku_name 产品名称")] == "'=1+1"


def header_index(rows: list[tuple], label: str) -> int:
    return list(rows[0]).index(label)


def test_planner_csv_defuses_text_only(exports: Path) -> None:
    frame = pl.read_csv(exports / "company" / "store_orders.csv", infer_schema_length=None)
    assert sorted(frame["store_name"].to_list()) == DEFUSED
    assert frame["on_hand"].dtype == pl.Int64 and frame["on_hand"].to_list() == [-5] * 7
    assert set(frame["reason_zh"]) == {"'=原因"} and set(frame["reason_en"]) == {"'+reason"}
    # the Parquet is data, not a spreadsheet: kept as the warehouse holds it
    parquet = pl.read_parquet(exports / "company" / "store_orders.parquet")
    assert sorted(parquet["store_name"].to_list()) == sorted(NAMES)


def test_region_and_distributor_csvs_defused(exports: Path) -> None:
    for folder in ("region/华北", "distributor/D0001"):
        frame = pl.read_csv(exports / folder / "store_orders.csv")
        assert f"'{HYPERLINK}" in frame["store_name"].to_list(), folder
        plans = pl.read_csv(exports / folder / "store_plans.csv")
        assert set(plans["evidence"]) == {"'@evidence"}, folder


def test_dashboard_downloads_defuse(monkeypatch: pytest.MonkeyPatch) -> None:
    frame = pl.DataFrame({"store_name": NAMES, "on_hand": [-5] * len(NAMES)})
    assert not _live_csv_cells(data.safe_csv(frame))
    book = openpyxl.load_workbook(io.BytesIO(data.safe_xlsx({"s": frame}, {})))
    assert not _live_xlsx_cells(book)
    assert [c.value for c in book["s"]["B"][1:]] == [-5] * len(NAMES)
    # the store's own replenishment download, built on the fly from the scoped views
    monkeypatch.setattr(data, "query", lambda *_: frame.to_pandas())
    raw = data.store_orders_csv()
    assert not _live_csv_cells(raw)
    assert f"'{HYPERLINK}" in pl.read_csv(raw)["store_name"].to_list()


def test_forecast_out_defuses_csv_and_xlsx(tmp_path: Path) -> None:
    """`bclake forecast --out`: the user's own ids come back as inert text."""
    frame = pl.DataFrame(
        {
            "store": NAMES,
            "week_start": [date(2025, 1, 6)] * len(NAMES),
            "p50": [-1.0] * len(NAMES),
        }
    )
    write_table(frame, tmp_path / "f.csv")
    raw = (tmp_path / "f.csv").read_bytes()
    assert not _live_csv_cells(raw)
    assert pl.read_csv(raw)["p50"].to_list() == [-1.0] * len(NAMES)
    write_table(frame, tmp_path / "f.xlsx")
    book = openpyxl.load_workbook(tmp_path / "f.xlsx")
    assert not _live_xlsx_cells(book)
    assert [c.value for c in book["forecast"]["C"][1:]] == [-1.0] * len(NAMES)


def test_headers_categoricals_and_control_characters() -> None:
    """Beyond the cells: a column named like a formula, a Categorical or Enum column
    (not String, so easy to miss), and a control character openpyxl would refuse the
    whole workbook for (one hostile name must not stop the planner files)."""
    frame = pl.DataFrame(
        {
            "=cmd|' /C calc'!A0": ["a"],
            "cat": pl.Series([HYPERLINK], dtype=pl.Categorical),
            "enum": pl.Series(["@SUM(1)"], dtype=pl.Enum(["@SUM(1)"])),
            "bell": ["铃\x07声"],
            "n": [-3],
        }
    )
    out = defuse_formulas(frame)
    assert out.columns[0] == "'=cmd|' /C calc'!A0"
    assert out.row(0) == ("a", f"'{HYPERLINK}", "'@SUM(1)", "铃\x07声", -3)
    assert defuse_formulas(out).equals(out), "idempotent"
    buffer = io.BytesIO()
    write_csv(frame, buffer)
    assert not _live_csv_cells(buffer.getvalue())
    assert defuse_text("a=b") == "a=b" and defuse_text("=b") == "'=b"


def test_xlsx_with_control_characters_and_formula_headers(tmp_path: Path) -> None:
    frame = pl.DataFrame({"=cmd": ["铃\x07声", HYPERLINK], "n": [-3, 4]})
    write_xlsx({"s": frame}, tmp_path / "b.xlsx", {})
    book = openpyxl.load_workbook(tmp_path / "b.xlsx")
    assert not _live_xlsx_cells(book)
    assert list(book["s"].values) == [("'=cmd", "n"), ("铃\ufffd声", -3), (f"'{HYPERLINK}", 4)]


# every CSV/XLSX writer goes through core.xlsx: the modules allowed to write a CSV or a
# workbook another way, each with why
OTHER_WRITERS = {
    "bclake/core/xlsx.py": "the defusing writers themselves",
    "bclake/core/dbt_codegen.py": "dbt seeds: data for dbt, never opened as a spreadsheet",
    "bclake/dashboards/review.py": "decision files for landing, read back by ingest",
    "bclake/ingest/erasure.py": "erasure request files for landing, read back by ingest",
}
WRITER = re.compile(
    r"\.write_csv\(|\.to_csv\(|csv\.writer\(|csv\.DictWriter\(|\.write_excel\(|"
    r"\bWorkbook\(|xlsxwriter|\.to_excel\("
)


def test_every_writer_goes_through_core_xlsx() -> None:
    """No module outside `OTHER_WRITERS` (and the simulator, which writes the source
    systems' exports) writes a CSV or a workbook itself."""
    found = []
    for path in sorted((ROOT / "bclake").rglob("*.py")):
        rel = path.relative_to(ROOT).as_posix()
        if rel in OTHER_WRITERS or rel.startswith("bclake/simulator/"):
            continue
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if WRITER.search(line):
                found.append(f"{rel}:{number}: {line.strip()}")
    assert not found, "write CSV/XLSX through bclake.core.xlsx:\n" + "\n".join(found)


def _soffice(tmp_path: Path, source: Path, target: str, *infilter: str) -> Path:
    """Convert `source` with LibreOffice into `tmp_path/out`; returns that folder."""
    out = tmp_path / "out"
    subprocess.run(
        [SOFFICE, "--headless", "--norestore", f"-env:UserInstallation=file://{tmp_path}/lo",
         *infilter, "--convert-to", target, "--outdir", str(out), str(source)],
        check=True, capture_output=True, timeout=180,
    )  # fmt: skip
    return out


# every sheet to its own CSV (`<book>-<sheet>.csv`), UTF-8, cells as shown
ALL_SHEETS_CSV = "csv:Text - txt - csv (StarCalc):44,34,76,1,,0,false,true,false,false,false,-1"
CSV_IN = "--infilter=CSV:44,34,76,1"


@needs_soffice
def test_libreoffice_shows_plan_xlsx_names_as_text(exports: Path, tmp_path: Path) -> None:
    out = _soffice(tmp_path, exports / "company" / "plan.xlsx", ALL_SHEETS_CSV)
    shown = pl.read_csv(out / "plan-store_orders.csv", infer_schema_length=None)
    names = shown["store_name 门店名称"].to_list()
    assert sorted(names) == DEFUSED_IN_BOOK
    assert "y" not in names and "1" not in names and "2" not in names  # no formula result
    assert shown["on_hand 现有库存 (units)"].to_list() == [-5] * len(NAMES)
    forecast = pl.read_csv(out / "plan-forecast.csv")
    assert forecast["sku_name 产品名称"].to_list() == ["'=1+1"]


@needs_soffice
def test_libreoffice_reads_the_csv_as_text_and_numbers(exports: Path, tmp_path: Path) -> None:
    """The planner CSV opened in LibreOffice (formulas evaluated on import, as Calc does by
    default) and saved as XLSX: the names are text cells, on_hand number cells. The same
    names written raw are live formulas there: the check can tell."""
    source = tmp_path / "store_orders.csv"
    shutil.copy(exports / "company" / "store_orders.csv", source)
    raw = tmp_path / "raw.csv"
    pl.DataFrame({"store_name": [HYPERLINK, "=1+1"], "on_hand": [-5, -5]}).write_csv(raw)
    for path in (source, raw):
        _soffice(tmp_path, path, "xlsx:Calc MS Excel 2007 XML", CSV_IN)
    control = openpyxl.load_workbook(tmp_path / "out" / "raw.xlsx").active
    assert [c.data_type for c in control["A"][1:]] == ["f", "f"], "raw names run as formulas"
    sheet = openpyxl.load_workbook(tmp_path / "out" / "store_orders.xlsx").active
    rows = list(sheet.iter_rows())
    header = [c.value for c in rows[0]]
    name, on_hand = header.index("store_name"), header.index("on_hand")
    assert sorted(r[name].value for r in rows[1:]) == DEFUSED_IN_BOOK
    assert {r[name].data_type for r in rows[1:]} == {"s"}
    assert {(r[on_hand].value, r[on_hand].data_type) for r in rows[1:]} == {(-5, "n")}


def test_tables_offer_no_export_of_their_own(monkeypatch: pytest.MonkeyPatch) -> None:
    """Streamlit's own table toolbar (CSV download, copy to the clipboard, which Excel
    pastes as formulas) writes cells as they are: the app turns it off."""
    from streamlit import config
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("BCLAKE_HOME", str(ROOT / "no-such-home"))
    config.set_option("client.disableDataExport", False)
    try:
        at = AppTest.from_file(str(ROOT / "bclake" / "dashboards" / "app.py")).run()
        assert not at.exception
        assert config.get_option("client.disableDataExport") is True
    finally:
        config.set_option("client.disableDataExport", False)


@needs_soffice
def test_libreoffice_runs_none_of_the_near_misses(tmp_path: Path) -> None:
    """Text OWASP does not list, written as is: a full-width equals sign, a space or a
    line break before `=`. LibreOffice shows each as the text it is."""
    near = ["＝1+1", " =1+1", "\n=1+1", "a=1+1"]
    write_csv(pl.DataFrame({"t": near, "n": [-1, -2, -3, -4]}), tmp_path / "near.csv")
    _soffice(tmp_path, tmp_path / "near.csv", "xlsx:Calc MS Excel 2007 XML", CSV_IN)
    sheet = openpyxl.load_workbook(tmp_path / "out" / "near.xlsx").active
    assert [(c.value, c.data_type) for c in sheet["A"][1:]] == [(t, "s") for t in near]
    assert [(c.value, c.data_type) for c in sheet["B"][1:]] == [(-n, "n") for n in (1, 2, 3, 4)]
