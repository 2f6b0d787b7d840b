"""Real exports as files: encodings, headers, row-level quarantine, XLSX, `bclake check`.

Each test ingests one small file into a temporary data root (no simulated world), so
the whole module runs in seconds.
"""

from __future__ import annotations

import io
import json
import shutil
from datetime import datetime
from pathlib import Path

import openpyxl
import polars as pl
import pytest
from typer.testing import CliRunner

from bclake.core.contracts import Contract, load_contracts
from bclake.core.settings import Settings
from bclake.core.textio import (
    UndecodableText,
    decode_bytes,
    find_header,
    normalise_header,
    sniff_delimiter,
)
from bclake.ingest import read
from bclake.ingest.ledger import FileResult, read_ledger
from bclake.ingest.loader import ingest_table
from bclake.ingest.read import UnreadableFile, read_file

CASES = Path(__file__).parent / "data" / "field_cases"
SHIPMENTS_HEADER = "发货单号,经销商编码,仓库编码,订单日期,发货日期,产品编码,订货数量,发货数量,金额"
SHIPMENT = "SH90000051,D0003,DC03,2024-03-01,2024-03-02,SKU0001,24,24,64.8"


@pytest.fixture(autouse=True)
def _pii_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BCLAKE_PII_KEY", "a-secret-key-for-tests")


def _ingest(home: Path, key: str, name: str, data: bytes) -> tuple[FileResult, Contract]:
    """Land one file for contract `key` under `home` and ingest that table."""
    contract = load_contracts()[key]
    folder = home / "landing" / contract.system / contract.table
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_bytes(data)
    result = ingest_table(contract, Settings.from_env(home))
    (file,) = result.files
    # the ledger identity holds for every file, whatever happened to it
    assert file.rows_in == file.rows_loaded + file.rows_quarantined
    ledger = read_ledger(Settings.from_env(home), contract).row(0, named=True)
    assert ledger["rows_in"] == ledger["rows_loaded"] + ledger["rows_quarantined"]
    return file, contract


def _case(name: str) -> Path:
    (path,) = [p for p in (CASES / name).iterdir() if p.is_file()]
    return path


def _lake(home: Path, contract: Contract) -> pl.DataFrame:
    return pl.read_parquet(
        home / "lake" / contract.system / contract.table / "**" / "part-*.parquet",
        hive_partitioning=False,
    )


def _quarantine(home: Path, contract: Contract) -> pl.DataFrame:
    folder = home / "lake" / "_quarantine" / contract.system / contract.table
    return pl.read_parquet(folder / "*.parquet").sort("_source_row")


# --- the field cases ------------------------------------------------------------------


def test_ing05_a_gbk_export_with_a_gb18030_character_is_decoded(tmp_path: Path) -> None:
    path = _case("ING-05-gb18030-char-in-gbk")
    data = path.read_bytes()
    with pytest.raises(UnicodeDecodeError):
        data.decode("gbk")  # the case: GBK alone cannot read it
    file, contract = _ingest(tmp_path, "erp.products", path.name, data)
    assert (file.status, file.rows_in, file.rows_loaded, file.encoding) == (
        "loaded",
        2,
        2,
        "gb18030",
    )
    names = dict(_lake(tmp_path, contract).select("sku_code", "sku_name").iter_rows())
    assert names == {"SKU0101": "㒲记凉茶 500ml", "SKU0102": "乌龙茶 1L"}


def test_ing09_a_ragged_csv_row_is_quarantined_and_the_rest_loads(tmp_path: Path) -> None:
    path = _case("ING-09-ragged-row")
    file, contract = _ingest(tmp_path, "erp.shipments", path.name, path.read_bytes())
    assert (file.status, file.rows_in, file.rows_loaded, file.rows_quarantined) == (
        "partial",
        4,
        3,
        1,
    )
    lake = _lake(tmp_path, contract)
    assert sorted(lake["shipment_id"]) == ["SH90000051", "SH90000053", "SH90000054"]
    (bad,) = _quarantine(tmp_path, contract).iter_rows(named=True)
    assert (bad["_source_row"], bad["reason"]) == (3, "ragged_row")
    assert "line 3: 10 fields where the header has 9" in bad["message"]
    assert "unquoted comma" in bad["message"]
    assert bad["raw"].startswith("SH90000052,")


def test_ing10_malformed_and_truncated_ndjson_lines_are_quarantined(tmp_path: Path) -> None:
    path = _case("ING-10-ndjson-bad-line")
    file, contract = _ingest(tmp_path, "dms.sell_through", path.name, path.read_bytes())
    # lines 1, 2 (two sales lines), 4 load; line 3 (trailing comma) and 5 (cut off) do not
    assert (file.status, file.rows_in, file.rows_loaded, file.rows_quarantined) == (
        "partial",
        6,
        4,
        2,
    )
    lake = _lake(tmp_path, contract)
    assert sorted(lake["_source_row"]) == [1, 2, 2, 4]
    bad = _quarantine(tmp_path, contract)
    assert bad["_source_row"].to_list() == [3, 5]
    assert bad["reason"].to_list() == ["malformed_json", "malformed_json"]
    assert "line 3: not valid JSON: a trailing comma" in bad["message"][0]
    assert "line 5: truncated" in bad["message"][1]
    # the same with Windows line ends
    crlf = read_file(path, contract, path.read_bytes().replace(b"\n", b"\r\n"))
    assert crlf.frame["_source_row"].to_list() == [1, 2, 2, 4]
    assert crlf.rejected["_source_row"].to_list() == [3, 5]
    assert "line 5: truncated" in crlf.rejected["message"][1]


# --- encodings and headers ------------------------------------------------------------


def test_excel_unicode_text_utf16_with_tabs_loads(tmp_path: Path) -> None:
    text = "\r\n".join([SHIPMENTS_HEADER, SHIPMENT]).replace(",", "\t") + "\r\n"
    data = b"\xff\xfe" + text.encode("utf-16-le")
    file, contract = _ingest(tmp_path, "erp.shipments", "shipments.txt", data)
    assert (file.status, file.rows_loaded, file.encoding) == ("loaded", 1, "utf-16-le")
    row = _lake(tmp_path, contract).row(0, named=True)
    assert (row["shipment_id"], row["amount"], row["qty_shipped_units"]) == ("SH90000051", 64.8, 24)
    big_endian = b"\xfe\xff" + text.encode("utf-16-be")
    raw = read_file(Path("be.txt"), contract, big_endian)
    assert (raw.encoding, raw.delimiter, raw.frame["shipment_id"][0]) == (
        "utf-16-be",
        "\t",
        "SH90000051",
    )


def test_bom_nbsp_and_full_width_spaces_around_headers_are_ignored(tmp_path: Path) -> None:
    header = SHIPMENTS_HEADER.split(",")
    header[0] = "\ufeff 发货单号\u00a0"  # a BOM inside a UTF-8-with-BOM file: one too many
    header[1] = "\u3000经销商编码"
    header[8] = "金额 "
    data = ("\ufeff" + ",".join(header) + "\n" + SHIPMENT + "\n").encode("utf-8")
    file, contract = _ingest(tmp_path, "erp.shipments", "shipments.csv", data)
    assert (file.status, file.rows_loaded, file.extra_columns) == ("loaded", 1, None)
    plan = {m.column: m.how for m in read_file(Path("x.csv"), contract, data).headers}
    assert plan["shipment_id"] == plan["amount"] == "alias + whitespace fixed"
    assert plan["warehouse_code"] == "alias"


def test_a_damaged_byte_quarantines_its_row_and_names_its_offset(tmp_path: Path) -> None:
    second = SHIPMENT.replace("SH90000051", "SH90000052")
    head = (SHIPMENTS_HEADER + "\n" + SHIPMENT + "\n").encode()
    data = head + second.encode().replace(b"DC03", b"DC\xff3") + b"\n"
    file, contract = _ingest(tmp_path, "erp.shipments", "shipments.csv", data)
    assert (file.status, file.rows_loaded, file.rows_quarantined) == ("partial", 1, 1)
    (bad,) = _quarantine(tmp_path, contract).iter_rows(named=True)
    offset = len(head) + len("SH90000052,D0003,DC")
    assert (bad["_source_row"], bad["reason"]) == (3, "bad_encoding")
    assert f"line 3: byte {offset} (line 3: 0xFF" in bad["message"]
    assert "is not valid UTF-8" in bad["message"]  # the UTF-8 header rules out GBK
    # in a GBK export, a byte not even GB18030 has is named at its offset too
    gbk_head = (SHIPMENTS_HEADER + "\n").encode("gbk")
    gbk = gbk_head + second.encode().replace(b"DC03", b"DC\x80") + b"\n" + SHIPMENT.encode()
    raw = read_file(Path("x.csv"), contract, gbk)
    assert raw.encoding == "gb18030" and raw.frame.height == 1
    assert f"byte {len(gbk_head) + 19} (line 2: 0x80" in raw.rejected["message"][0]


def test_an_undecodable_header_rejects_the_file_naming_the_byte() -> None:
    utf8_only = load_contracts()["dms.sell_through"]
    data = b'{"reportId": "STS00000120240305"}\n' * 2 + '{"门店": 1}\n'.encode("gbk") * 10
    with pytest.raises(UnreadableFile) as caught:
        read_file(Path("x.ndjson"), utf8_only, data)
    assert caught.value.reason == "unknown_encoding"
    message = str(caught.value)
    assert f"byte {2 * 34 + 2} (line 3: 0xC3 0xC5" in message, message
    assert "20 bytes on 10 lines" in message and "allowed: utf-8" in message
    contract = load_contracts()["erp.shipments"]
    header = SHIPMENTS_HEADER.encode("gbk") + b"\x80,x\n"  # not GB18030 either: line 1
    with pytest.raises(UnreadableFile) as caught:
        read_file(Path("x.csv"), contract, header + SHIPMENT.encode() + b",1\n")
    offset = len(SHIPMENTS_HEADER.encode("gbk"))
    assert f"byte {offset} (line 1: 0x80" in str(caught.value)
    assert "is not valid GB18030; in the header line" in str(caught.value)


def test_a_missing_required_column_lists_the_headers_found() -> None:
    contract = load_contracts()["erp.shipments"]
    data = (SHIPMENTS_HEADER.replace("金额", "金 额x") + "\n" + SHIPMENT + "\n").encode()
    with pytest.raises(UnreadableFile) as caught:
        read_file(Path("x.csv"), contract, data)
    message = str(caught.value)
    assert "required column 'amount' (accepted headers: amount, 金额) not found" in message
    assert "the headers found are '发货单号', '经销商编码'" in message and "'金 额x'" in message
    assert caught.value.headers[-1] == "金 额x"


def test_textio_rules() -> None:
    assert normalise_header("\ufeff\u00a0sku\u3000 code\u200b ") == "sku code"
    assert find_header(["SKU_CODE", "x"], ["sku_code"]) == ("SKU_CODE", "case")
    assert find_header(["sku_code", "Sku_Code"], ["SKU_CODE"]) == (None, "")  # not certain
    assert sniff_delimiter("a\tb\tc\n1\t2,5\t3\n") == "\t"
    assert sniff_delimiter("a;b;c\n1;2,5;3\n4;5;6\n") == ";"
    assert sniff_delimiter("a,b,c\n1,2,3\n") == ","
    assert sniff_delimiter("a,b;c\n1,2;3\n") == ","  # two candidates: the comma stays
    # one ragged row among the sampled lines does not change the answer
    assert sniff_delimiter("a\tb\tc\n1\t2\t3\n4\t5\t6\t7\n8\t9\t10\n1\t2\t3\n") == "\t"
    assert decode_bytes("编码".encode("gbk"), ["gbk"]).encoding == "gb18030"
    with pytest.raises(UndecodableText) as caught:
        decode_bytes(b"\xff\xfe" + "ab".encode("utf-16-le") + b"\x00\xd8")  # lone surrogate
    assert caught.value.offset == 6


# --- row level, not file level --------------------------------------------------------


def test_a_short_csv_row_is_ragged_not_padded_with_nulls(tmp_path: Path) -> None:
    short = SHIPMENT.rsplit(",", 1)[0].replace("SH90000051", "SH90000052")
    data = "\n".join([SHIPMENTS_HEADER, SHIPMENT, short, ""]).encode()
    file, contract = _ingest(tmp_path, "erp.shipments", "shipments.csv", data)
    assert (file.rows_loaded, file.rows_quarantined) == (1, 1)
    (bad,) = _quarantine(tmp_path, contract).iter_rows(named=True)
    assert (bad["_source_row"], bad["reason"]) == (3, "ragged_row")
    assert "8 fields where the header has 9" in bad["message"]


def test_a_file_is_rejected_whole_only_when_no_row_can_be_trusted(tmp_path: Path) -> None:
    garbage = b"<html>\n<body>502 Bad Gateway</body>\n</html>\n"
    file, _ = _ingest(tmp_path / "a", "dms.sell_through", "sell_through.ndjson", garbage)
    assert (file.status, file.reason, file.rows_in, file.rows_loaded) == (
        "rejected",
        "malformed_json",
        3,
        0,
    )
    assert "no line is a JSON object (line 1: not valid JSON" in (file.message or "")
    semicolons = "\n".join([SHIPMENTS_HEADER, SHIPMENT.replace(",", ";", 2)] * 1).encode()
    file, _ = _ingest(tmp_path / "b", "erp.shipments", "shipments.csv", semicolons)
    assert (file.status, file.reason, file.rows_loaded) == ("rejected", "ragged_row", 0)
    assert "no row can be trusted" in (file.message or "")


def test_a_clean_file_never_takes_the_line_by_line_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(*_: object) -> None:
        raise AssertionError("the fast path should have read this file")

    monkeypatch.setattr(read, "_read_csv_by_line", refuse)
    monkeypatch.setattr(read, "_read_ndjson_by_line", refuse)
    data = "\n".join([SHIPMENTS_HEADER, SHIPMENT, SHIPMENT.replace("51", "55", 1), ""]).encode()
    file, _ = _ingest(tmp_path, "erp.shipments", "shipments.csv", data)
    assert (file.status, file.rows_loaded) == ("loaded", 2)
    lines = _case("ING-10-ndjson-bad-line").read_text().splitlines()
    good = "\n".join([lines[0], lines[1], lines[3]]) + "\n"
    file, _ = _ingest(tmp_path, "dms.sell_through", "sell_through.ndjson", good.encode())
    assert file.rows_in == 4  # three documents, four sales lines


# --- XLSX -----------------------------------------------------------------------------


def _workbook(
    sheets: dict[str, list[list[object]]], formats: dict[str, str] | None = None
) -> bytes:
    book = openpyxl.Workbook()
    book.remove(book.active)
    for name, rows in sheets.items():
        sheet = book.create_sheet(name)
        for row in rows:
            sheet.append(row)
        for ref, fmt in (formats or {}).items():
            sheet[ref].number_format = fmt
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def test_xlsx_with_title_rows_loads_like_its_csv(tmp_path: Path) -> None:
    header = SHIPMENTS_HEADER.split(",")
    day = datetime(2024, 3, 2)
    rows = [
        ["发货明细表 2024年3月"],  # title row, then a blank row, then the header (row 3)
        [],
        header,
        ["SH90000051", "D0003", "DC03", "2024-03-01", day, "SKU0001", 24, 24.0, 64.8],
        ["SH90000052", "D0008", "DC01", "2024-03-01", day, "SKU0007", "x", 60, 846],
        ["SH90000053", "D0009", "DC01", "2024-03-01", day, "SKU0007", 1, 1, 2.5],
    ]
    data = _workbook({"说明": [["本表由ERP导出"]], "shipments": rows})
    file, contract = _ingest(tmp_path, "erp.shipments", "发货明细.xlsx", data)
    assert (file.status, file.encoding, file.rows_in, file.rows_loaded) == ("partial", "xlsx", 3, 2)
    lake = _lake(tmp_path, contract).sort("_source_row")
    assert lake["_source_row"].to_list() == [4, 6]  # the sheet's own row numbers
    first = lake.row(0, named=True)
    assert (first["qty_shipped_units"], first["amount"]) == (24, 64.8)
    assert str(first["ship_date"]) == "2024-03-02"
    (bad,) = _quarantine(tmp_path, contract).iter_rows(named=True)
    assert (bad["_source_row"], bad["reason"]) == (5, "bad_type")
    assert "qty_ordered_units" in bad["message"]
    raw = read_file(Path("x.xlsx"), contract, data)
    assert (raw.sheet, raw.header_row, raw.format) == ("shipments", 3, "xlsx")


def test_xlsx_numbers_in_text_columns_read_as_displayed() -> None:
    contract = load_contracts()["erp.shipments"]
    rows = [
        SHIPMENTS_HEADER.split(","),
        [123456789012345678, "D0003", 7, "2024-03-01", "2024-03-02", "SKU0001", 24.0, 24, 0.1],
    ]
    data = _workbook({"Sheet1": rows}, {"C2": "000", "A2": "General"})
    row = read_file(Path("x.xlsx"), contract, data).frame.row(0, named=True)
    # zero-padded as its number format shows it; whole numbers without ".0"
    assert (row["warehouse_code"], row["qty_ordered_units"], row["amount"]) == ("007", "24", "0.1")
    # an 18-digit id Excel stored as a number lost digits: kept as Excel shows it, never as a
    # plausible but wrong id
    assert row["shipment_id"] == "1.23457E+17"


def test_a_legacy_xls_is_refused_with_the_fix(tmp_path: Path) -> None:
    data = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 512
    file, _ = _ingest(tmp_path, "erp.shipments", "shipments.xls", data)
    assert (file.status, file.reason) == ("rejected", "unsupported_format")
    assert "save it as .xlsx" in (file.message or "")


# --- bclake check ---------------------------------------------------------------------


def test_check_reports_contract_encoding_headers_and_quarantine_without_writing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from bclake.cli import app

    home = tmp_path / "home"
    monkeypatch.setenv("BCLAKE_HOME", str(home))
    monkeypatch.setenv("COLUMNS", "200")
    src = tmp_path / "exports" / "shipments_2024-03_ragged.csv"
    src.parent.mkdir()
    shutil.copy(_case("ING-09-ragged-row"), src)
    result = CliRunner().invoke(app, ["check", str(src)])
    assert result.exit_code == 0, result.output
    out = result.output
    assert "erp.shipments (by file name and header)" in out
    for expected in ("utf-8", "comma", "ragged_row", "line 3: 10 fields", "'发货单号'"):
        assert expected in out
    assert "would load" in out and "│ 3 " in out.replace("  ", " ")
    assert not home.exists()  # a dry run: nothing written anywhere

    gb = tmp_path / "exports" / "export.csv"
    shutil.copy(_case("ING-05-gb18030-char-in-gbk"), gb)
    result = CliRunner().invoke(app, ["check", str(gb), "--table", "erp.products"])
    assert result.exit_code == 0 and "gb18030" in result.output
    assert "erp.products (by --table)" in result.output

    broken = tmp_path / "exports" / "shipments_broken.csv"
    broken.write_text(SHIPMENTS_HEADER.replace("金额", "Amount (元)") + "\n" + SHIPMENT + "\n")
    result = CliRunner().invoke(app, ["check", str(broken)])
    assert result.exit_code == 1
    assert "missing_column" in result.output and "'Amount (元)'" in result.output
    assert "extra" in result.output


def test_check_matches_the_contract_from_the_header_alone(tmp_path: Path) -> None:
    from bclake.ingest.check import check_file

    path = tmp_path / "export_20240301.ndjson"
    path.write_bytes(_case("ING-10-ndjson-bad-line").read_bytes())
    report = check_file(path)
    assert report.contract is not None and report.contract.key == "dms.sell_through"
    assert report.matched_by == "header"
    assert report.reasons.get("malformed_json") == 2
    assert json.dumps(report.reasons)  # plain counts, printable as JSON


def test_check_names_encoding_and_delimiter_of_an_excel_unicode_text_export(
    tmp_path: Path,
) -> None:
    from bclake.ingest.check import check_file

    rows = [SHIPMENTS_HEADER, SHIPMENT, SHIPMENT.replace("51", "52", 1) + ",加急,次日达"]
    path = tmp_path / "shipments_unicode.txt"
    path.write_bytes(b"\xff\xfe" + "\r\n".join(rows).replace(",", "\t").encode("utf-16-le"))
    report = check_file(path)
    assert report.contract is not None and report.contract.key == "erp.shipments"
    assert report.raw is not None
    assert (report.raw.encoding, report.raw.delimiter) == ("utf-16-le", "\t")
    assert (report.rows_in, report.rows_loaded, report.reasons) == (2, 1, {"ragged_row": 1})
    assert not (tmp_path / "lake").exists()
