"""Values as real exports write them: null tokens, dates and times, numbers, codes.

The field cases (tests/data/field_cases, README there) are ingested into a temporary lake
and must give what a user expects; the unit tests beyond them try each kind over more forms.
"""

from __future__ import annotations

import re
import shutil
from datetime import date, datetime
from pathlib import Path

import polars as pl
import pytest

from bclake.core import parsing
from bclake.core.contracts import Column, Contract, load_contracts
from bclake.core.settings import Settings
from bclake.ingest.loader import ingest_table
from bclake.ingest.paths import quarantine_dir, table_dir
from bclake.ingest.validate import parse, validate

CASES = Path(__file__).parent / "data" / "field_cases"
EXCEL_CAUSE = "Excel turned the code into a number; re-export with the column as text"


def _ingest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, case_file: str, key: str
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Ingest one field-case file into a fresh lake: (lake rows, quarantined rows)."""
    monkeypatch.setenv("BCLAKE_PII_KEY", "a-secret-key-for-tests")
    contract = load_contracts()[key]
    landing = tmp_path / "landing" / contract.system / contract.table
    landing.mkdir(parents=True)
    shutil.copy(CASES / case_file, landing)
    settings = Settings.from_env(tmp_path)
    result = ingest_table(contract, settings)
    (file,) = result.files
    assert file.rows_in == file.rows_loaded + file.rows_quarantined
    lake = pl.read_parquet(
        table_dir(settings.lake, contract) / "**/*.parquet", hive_partitioning=False
    ).sort("_source_row")
    parts = sorted(quarantine_dir(settings.lake, contract).glob("*.parquet"))
    quarantined = (
        pl.concat([pl.read_parquet(p) for p in parts]).sort("_source_row")
        if parts
        else pl.DataFrame({"_source_row": [], "reason": [], "message": []})
    )
    assert lake.height == file.rows_loaded and quarantined.height == file.rows_quarantined
    return lake, quarantined


def test_ing01_excel_mangled_codes_are_quarantined_with_the_cause(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lake, quarantined = _ingest(
        tmp_path,
        monkeypatch,
        "ING-01-excel-sci-notation-codes/product_scans_excel_resaved.csv",
        "code.product_scans",
    )
    assert lake["product_code"].to_list() == ["000000000162617942"]
    assert quarantined["_source_row"].to_list() == [2, 3, 4]
    assert quarantined["reason"].to_list() == ["excel_mangled_code"] * 3
    messages = quarantined["message"].to_list()
    assert all(EXCEL_CAUSE in m for m in messages)
    assert "'1.62618E+11'" in messages[0] and "scientific" in messages[0]
    assert "'2E+15'" in messages[1]
    assert "'6000000586734571'" in messages[2] and "leading zeros" in messages[2]


def test_ing02_thousands_separators_and_currency_signs_are_parsed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lake, quarantined = _ingest(
        tmp_path,
        monkeypatch,
        "ING-02-thousands-separators/shipments_2024-03_finance.csv",
        "erp.shipments",
    )
    assert quarantined.height == 0
    assert lake["qty_ordered_units"].to_list() == [1200, 240, 60, 132]
    assert lake["qty_shipped_units"].to_list() == [1200, 240, 60, 48]
    assert lake["amount"].to_list() == [3240.0, 2544.0, 846.0, 283.2]


def test_ing04_chinese_dotted_and_excel_dates_are_parsed_and_day_month_is_not_guessed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lake, quarantined = _ingest(
        tmp_path,
        monkeypatch,
        "ING-04-chinese-excel-dates/shipments_2024-03_dates.csv",
        "erp.shipments",
    )
    march = [date(2024, 3, d) for d in (1, 1, 1, 2, 2)]
    assert lake["shipment_id"].to_list() == [f"SH900000{n}" for n in range(21, 26)]
    assert lake["order_date"].to_list() == march
    assert lake["ship_date"].to_list() == [d.replace(day=d.day + 1) for d in march]
    assert quarantined["_source_row"].to_list() == [7]
    assert quarantined["reason"].to_list() == ["ambiguous_date"]
    message = quarantined["message"][0]
    assert "'03/04/2024'" in message and "day/month or month/day" in message


def test_ing12_null_markers_are_null_not_ids_and_not_bad_coordinates(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lake, quarantined = _ingest(
        tmp_path,
        monkeypatch,
        "ING-12-null-markers/product_scans_mysql_export.csv",
        "code.product_scans",
    )
    assert quarantined.height == 0
    assert lake.height == 6
    assert lake["consumer_id"].is_null().all()
    assert lake["lat"].to_list() == [None] * 4 + [23.44875] * 2
    assert lake["lon"].to_list() == [None] * 4 + [111.30729] * 2


# --- unit tests over more forms ----------------------------------------------------------


def _contract(*columns: Column, **fields: object) -> Contract:
    return Contract(
        system="t",
        table="t",
        description="",
        format="csv",
        encodings=("utf-8",),
        primary_key=(columns[0].name,),
        event_date=None,
        columns=columns,
        **fields,  # type: ignore[arg-type]
    )


def _run(contract: Contract, values: dict[str, list[str | None]]) -> tuple[dict, dict]:
    """Validate one row per value: ({row: loaded row}, {row: (reason, message)})."""
    n = len(next(iter(values.values())))
    frame = pl.DataFrame(
        {"_source_row": list(range(n))}
        | {k: pl.Series(v, dtype=pl.String) for k, v in values.items()}
        | {"_extra": pl.Series([None] * n, dtype=pl.String)}
    )
    loaded, quarantined = validate(frame, contract)
    good = {r["_source_row"]: r for r in loaded.iter_rows(named=True)}
    bad = {r["_source_row"]: (r["reason"], r["message"]) for r in quarantined.iter_rows(named=True)}
    assert len(good) + len(bad) == n
    return good, bad


def _one(column: Column, raw: str | None, **fields: object) -> object:
    """The loaded value of one raw string, or the quarantine reason as `!reason`."""
    good, bad = _run(_contract(column, **fields), {column.name: [raw]})
    return good[0][column.name] if good else f"!{bad[0][0]}"


@pytest.mark.parametrize("token", [*parsing.NULL_TOKENS, "", "   ", "\u00a0", " NULL "])
def test_every_null_token_is_null_in_every_type(token: str) -> None:
    for type_ in ("string", "int", "float", "date", "timestamp", "bool"):
        assert _one(Column(name="v", source="v", type=type_), token) is None, type_
    # in a required column a null token is a missing value, never a value
    required = Column(name="v", source="v", type="string", nullable=False)
    assert _one(required, token) == "!missing_value"


def test_null_tokens_are_overridable_where_a_token_is_a_real_value() -> None:
    region = Column(name="region", source="region", type="string", null_tokens=())
    assert _one(region, "NA") == "NA"
    assert _one(region, "") is None  # empty is always null
    assert _one(Column(name="v", source="v", type="string"), "NA") is None
    assert _one(Column(name="v", source="v", type="string"), "-", null_tokens=("NULL",)) == "-"
    assert _one(Column(name="v", source="v", type="string"), "NULL", null_tokens=("NULL",)) is None


def test_a_null_token_never_loads_as_a_consumer_id() -> None:
    for key, contract in load_contracts().items():
        for col in contract.all_columns:
            if col.name == "consumer_id":
                for token in ("NULL", r"\N", "null", "-", "N/A"):
                    got = _one(col, token)
                    assert got is None or got == "!missing_value", (key, token, got)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("2024-03-01", date(2024, 3, 1)),
        ("2024/3/1", date(2024, 3, 1)),
        ("2024/03/01", date(2024, 3, 1)),
        ("2024.3.1", date(2024, 3, 1)),
        ("2024年3月1日", date(2024, 3, 1)),
        ("2024年03月01日", date(2024, 3, 1)),
        ("２０２４－０３－０１", date(2024, 3, 1)),
        ("20240301", date(2024, 3, 1)),
        ("2024-03-01 23:59:59", date(2024, 3, 1)),
        ("2024-03-01T00:00:00+08:00", date(2024, 3, 1)),
        ("2024-02-29T16:00:00Z", date(2024, 3, 1)),  # midnight in Shanghai
        ("2024-02-29T23:30:00-05:00", date(2024, 3, 1)),
        ("45352", date(2024, 3, 1)),  # Excel serial day
        ("25/03/2024", date(2024, 3, 25)),  # day first: 25 cannot be a month
        ("03/25/2024", date(2024, 3, 25)),  # month first: 25 cannot be a month
        ("03/03/2024", date(2024, 3, 3)),  # same either way
        ("03/04/2024", "!ambiguous_date"),
        ("3/4/2024", "!ambiguous_date"),
        ("2024-02-30", "!bad_type"),
        ("2024-13-01", "!bad_type"),
        ("19999", "!bad_type"),  # outside the plausible Excel serial range
        ("80001", "!bad_type"),
        ("1/3/24", "!bad_type"),  # two-digit year: refused
        ("next monday", "!bad_type"),
    ],
)
def test_date_forms(raw: str, expected: object) -> None:
    assert _one(Column(name="d", source="d", type="date"), raw) == expected


@pytest.mark.parametrize(
    ("raw", "zone", "expected"),
    [
        ("2024-03-01 10:30:00", "Asia/Shanghai", datetime(2024, 3, 1, 10, 30)),
        ("2024-03-01T10:30:00", "Asia/Shanghai", datetime(2024, 3, 1, 10, 30)),
        ("2024/3/1 8:05", "Asia/Shanghai", datetime(2024, 3, 1, 8, 5)),
        ("2024年3月1日 08:05:09", "Asia/Shanghai", datetime(2024, 3, 1, 8, 5, 9)),
        ("2024-03-01 10:30:00.250", "Asia/Shanghai", datetime(2024, 3, 1, 10, 30, 0, 250000)),
        ("20240301103000", "Asia/Shanghai", datetime(2024, 3, 1, 10, 30)),
        ("2024-03-01T00:00:00+08:00", "Asia/Shanghai", datetime(2024, 3, 1)),
        ("2024-03-01T00:00:00+0800", "Asia/Shanghai", datetime(2024, 3, 1)),
        ("2024-02-29T16:00:00Z", "Asia/Shanghai", datetime(2024, 3, 1)),
        ("2024-03-01T00:00:00+08:00", "UTC", datetime(2024, 2, 29, 16)),
        ("2024-03-01T00:00:00+08:00", "Europe/Berlin", datetime(2024, 2, 29, 17)),
        ("45352.5", "Asia/Shanghai", datetime(2024, 3, 1, 12)),
        ("03/04/2024 10:00", "Asia/Shanghai", "!ambiguous_date"),
        ("2024-03-01 25:00:00", "Asia/Shanghai", "!bad_type"),
    ],
)
def test_timestamp_forms_and_zones(raw: str, zone: str, expected: object) -> None:
    column = Column(name="t", source="t", type="timestamp")
    assert _one(column, raw, timezone=zone) == expected


def test_a_source_that_names_its_date_order_settles_ambiguous_dates() -> None:
    column = Column(name="d", source="d", type="date")
    assert _one(column, "03/04/2024", date_order="dmy") == date(2024, 4, 3)
    assert _one(column, "03/04/2024", date_order="mdy") == date(2024, 3, 4)
    assert _one(column, "25/03/2024", date_order="mdy") == "!bad_type"  # no 25th month
    assert _one(column, "2024/3/4", date_order="mdy") == date(2024, 3, 4)  # year first: as is
    with pytest.raises(ValueError, match="date order"):
        pl.select(parsing.read_date(pl.lit("03/04/2024"), order="ymd"))


def test_mixed_date_forms_in_one_column() -> None:
    column = Column(name="d", source="d", type="date")
    raws = ["2024-03-01", "2024/3/2", "2024年3月3日", "45355", "20240305", "2024.3.6", "03/04/2024"]
    good, bad = _run(_contract(column), {"d": raws})
    assert [good[i]["d"] for i in range(6)] == [date(2024, 3, d) for d in range(1, 7)]
    assert bad[6][0] == "ambiguous_date"


def test_a_value_reads_the_same_alone_and_among_other_forms() -> None:
    """The full reader runs only on the rows the cheap one cannot read: every value must
    come out as it does alone, whatever its neighbours."""
    columns = (
        Column(name="code", source="code", type="string", pattern=r"SKU\d{4}"),
        Column(name="d", source="d", type="date"),
        Column(name="t", source="t", type="timestamp"),
        Column(name="n", source="n", type="float"),
        Column(name="i", source="i", type="int"),
    )
    values = {
        "code": ["SKU0001", "ＳＫＵ０００２", "SKU0003", "sku4", " SKU0005 ", "SKU0006", "NULL"],
        "d": ["2024-03-01", "2024/3/2", "45355", "2024-03-04", "03/04/2024", "2024-02-30", ""],
        "t": [
            "2024-03-01 10:00:00",
            "2024-03-01T10:00:00+00:00",
            "2024-03-01 10:00",
            "x",
            "2024-03-01 23:59:59",
            "2024年3月1日 8时",
            "NULL",
        ],
        "n": ["1.5", "1,234.5", "¥3", "inf", "1.234,5", "-0", "12abc"],
        "i": ["12", "1,200", "１２", "1.5", "3", "1e3", r"\N"],
    }
    contract = _contract(*columns)
    good, bad = _run(contract, values)
    assert sorted(good) == [0, 1, 2] and bad[3][0] == "bad_id"  # `sku4`
    full = pl.DataFrame(values).select(parse(c, contract) for c in columns)  # every row, full
    for row, loaded in good.items():
        assert {c.name: loaded[c.name] for c in columns} == full.row(row, named=True)
    for row in range(len(values["code"])):
        alone_good, alone_bad = _run(contract, {k: [v[row]] for k, v in values.items()})
        if row in good:
            assert alone_good[0] | {"_source_row": row} == good[row], row
        else:
            assert alone_bad[0] == bad[row], row


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("1234.5", 1234.5),
        ("1,234.50", 1234.5),
        ("1,234,567.89", 1234567.89),
        ("-1,234", -1234.0),
        ("¥846.00", 846.0),
        ("￥1,200", 1200.0),
        ("¥ 846", 846.0),
        ("-¥5", -5.0),
        ("CNY 5.5", 5.5),
        ("RMB5", 5.0),
        ("5元", 5.0),
        ("１２３", 123.0),
        ("１，２３４．５", 1234.5),
        ("1.5e3", 1500.0),
        (".5", 0.5),
        ("1.234,5", "!ambiguous_number"),  # decimal comma or typo: not guessed
        ("12,34", "!ambiguous_number"),
        ("1,5", "!ambiguous_number"),
        ("1,2345", "!ambiguous_number"),
        ("15%", "!percent_not_allowed"),
        ("(1,234.00)", "!parens_not_allowed"),
        ("12abc", "!bad_type"),
        ("1.2.3", "!bad_type"),
        ("#VALUE!", "!bad_type"),
    ],
)
def test_number_forms(raw: str, expected: object) -> None:
    assert _one(Column(name="x", source="x", type="float"), raw) == expected


def test_shares_read_percent_signs_and_accounting_columns_read_parentheses() -> None:
    share = Column(name="rate", source="rate", type="float", share=True, min=0, max=1)
    assert _one(share, "15%") == pytest.approx(0.15)
    assert _one(share, "12.5 %") == pytest.approx(0.125)
    assert _one(share, "0.15") == 0.15
    assert _one(share, "150%") == "!out_of_range"
    amount = Column(name="amount", source="amount", type="float", negative_parens=True)
    assert _one(amount, "(1,234.00)") == -1234.0
    assert _one(amount, "¥(846.00)") == -846.0
    assert _one(amount, "(1,234.00)".replace("(", "（").replace(")", "）")) == -1234.0
    assert _one(amount, "1,234.00") == 1234.0


def test_int_columns_take_formatted_whole_numbers_only() -> None:
    qty = Column(name="qty", source="qty", type="int")
    assert _one(qty, "1,200") == 1200
    assert _one(qty, "１２") == 12
    assert _one(qty, "12.0") == 12
    assert _one(qty, "12.5") == "!bad_type"


def test_contract_shares_and_accounting_columns() -> None:
    contracts = load_contracts()
    shares = {(k, c.name) for k, con in contracts.items() for c in con.all_columns if c.share}
    assert ("dms.promotions", "discount") in shares
    assert ("market.market_share", "brand_share") in shares
    for key, column in shares:  # a share is bounded to 0..1
        col = next(c for c in contracts[key].all_columns if c.name == column)
        assert (col.min, col.max) == (0, 1), (key, column)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("000000000162617942", "000000000162617942"),
        ("１２３４５６７８９０１２３４５６７８", "123456789012345678"),
        ("1.62618E+11", "!excel_mangled_code"),
        ("2E+15", "!excel_mangled_code"),
        ("1.62618e11", "!excel_mangled_code"),
        ("162617942.0", "!excel_mangled_code"),
        ("6000000586734571", "!excel_mangled_code"),  # 16 digits: two leading zeros lost
        ("162617942", "!excel_mangled_code"),
        ("1234567890123456789", "!bad_id"),  # too long: not a lost zero
        ("00000000016261794X", "!bad_id"),
    ],
)
def test_product_code_checks(raw: str, expected: object) -> None:
    column = Column(name="code", source="code", type="string", pattern=r"\d{18}")
    assert _one(column, raw) == expected


def test_excel_messages_name_the_cause_and_letter_codes_stay_bad_ids() -> None:
    code = Column(name="code", source="code", type="string", pattern=r"\d{18}")
    _, bad = _run(_contract(code), {"code": ["1.62618E+11", "6000000586734571"]})
    assert all(EXCEL_CAUSE in message for _, message in bad.values())
    assert "18 digits" in bad[1][1]
    sku = Column(name="sku", source="sku", type="string", pattern=r"SKU\d{4}")
    assert _one(sku, "ＳＫＵ０００１") == "SKU0001"
    assert _one(sku, "SKU-0001") == "!bad_id"
    assert _one(sku, "1") == "!bad_id"  # no all-digit form of the pattern: not Excel's doing
    assert parsing.code_digit_lengths(r"\d{18}") == (18,)
    assert parsing.code_digit_lengths(r"SKU\d{4}") == ()
    assert parsing.code_digit_lengths(r"\d{6,8}") == (6, 7, 8)


def test_every_id_and_code_column_has_a_pattern() -> None:
    for key, contract in load_contracts().items():
        assert contract.timezone == parsing.DEFAULT_ZONE, key
        for col in contract.all_columns:
            if col.type == "string" and re.search(r"(_id|_code|_no)$", col.name):
                assert col.pattern, (key, col.name)
                re.compile(col.pattern)


def test_product_code_pattern_is_the_printed_code() -> None:
    from bclake.core.codes import BODY_DIGITS, CHECK_DIGITS

    contract = load_contracts()["code.product_scans"]
    col = next(c for c in contract.all_columns if c.name == "product_code")
    assert parsing.code_digit_lengths(col.pattern or "") == (BODY_DIGITS + CHECK_DIGITS,)


def test_formatted_columns_are_read_whole() -> None:
    contract = load_contracts()["erp.shipments"]
    n = 50_000
    frame = pl.DataFrame(
        {
            "_source_row": range(n),
            "shipment_id": [f"SH{i:08d}" for i in range(n)],
            "distributor_code": ["D0001"] * n,
            "warehouse_code": ["DC01"] * n,
            "order_date": ["2024-03-01"] * n,
            "ship_date": ["2024年3月2日"] * (n // 2) + ["2024/3/2"] * (n - n // 2),
            "sku_code": ["SKU0001"] * n,
            "qty_ordered_units": ["1,200"] * n,
            "qty_shipped_units": ["12"] * n,
            "amount": ["¥3,240.00"] * n,
            "_extra": pl.Series([None] * n, dtype=pl.String),
        }
    )
    loaded, quarantined = validate(frame, contract)
    assert quarantined.height == 0 and loaded.height == n
    assert loaded["ship_date"].unique().to_list() == [date(2024, 3, 2)]
    assert loaded["qty_ordered_units"].unique().to_list() == [1200]
    assert loaded["amount"].unique().to_list() == [3240.0]


def test_whole_column_readers_for_a_sales_table() -> None:
    frame = pl.DataFrame(
        {
            "date": ["2024-03-01T00:00:00+08:00", "2024年3月2日", "45354", "NULL", "03/04/2024"],
            "units": ["1,200", "¥846.00", "１２", r"\N", "1.234,5"],
        }
    )
    out = frame.select(
        parsing.read_date(pl.col("date")),
        parsing.read_number(pl.col("units")),
        parsing.ambiguous_day_month(parsing.clean(pl.col("date"))).alias("ambiguous_date"),
        parsing.ambiguous_number(parsing.clean(pl.col("units"))).alias("ambiguous_number"),
    )
    assert (
        out["date"].to_list() == [date(2024, 3, 1), date(2024, 3, 2), date(2024, 3, 3)] + [None] * 2
    )
    assert out["units"].to_list() == [1200.0, 846.0, 12.0, None, None]
    assert out["ambiguous_date"].fill_null(False).to_list() == [False] * 4 + [True]
    assert out["ambiguous_number"].fill_null(False).to_list() == [False] * 4 + [True]
    stamps = frame.select(parsing.read_timestamp(pl.col("date"), zone="UTC"))["date"]
    assert stamps[0] == datetime(2024, 2, 29, 16)


def test_a_null_token_in_a_pii_column_is_nobody_not_a_pseudonym() -> None:
    from bclake.ingest.pii import pseudonymise

    contract = load_contracts()["cdp.consumers"]
    raw = pl.DataFrame({"phone": ["NULL", r"\N", " ", "13800000020", None]})
    out = pseudonymise(raw, contract, "k" * 16)["phone"].to_list()
    assert out[:3] == [None, None, None] and out[4] is None
    assert out[3] is not None and "13800000020" not in out[3]
