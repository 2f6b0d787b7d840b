"""Personal data in any column: phones and identity numbers never leave landing in clear.

The masking function (`bclake.core.pii`) over every shape a person's number is written in,
and over values that are not people (which must be left alone); then hostile landing files,
with numbers in a store name, a city, an id column, an unknown column, a header, a file
name and rows that are quarantined or rejected whole, ingested into a temporary lake, and
everything written under the data root scanned for the clear values.
"""

from __future__ import annotations

import json
import re
import unicodedata
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import openpyxl
import polars as pl
import pytest

from bclake.core.contracts import load_contracts
from bclake.core.settings import Settings
from bclake.ingest.ledger import read_ledger
from bclake.ingest.loader import ingest_table, reingest_days
from bclake.ingest.paths import quarantine_dir, table_dir

KEY = "a-secret-key-for-tests"
# ISO 7064 MOD 11-2 holds for these (the first is the standard's own example)
ID_CARD = "11010519491231002X"
ID_CARD_2 = "440524188001010014"

PHONE_SHAPES = [
    ("店主13800000020", "店主"),
    ("+86 138 0000 0020", ""),
    ("+8613800000020", ""),
    ("0086-138-0000-0020", ""),
    ("138-0000-0020", ""),
    ("138.0000.0020", ""),
    ("1 3 8 0 0 0 0 0 0 2 0", ""),
    ("电话：１３８００００００２０", "电话:"),  # full-width digits: the value comes back NFKC
    ("tel.13800000020", "tel."),
    ("SH13800000020", "SH"),
]


def _pii():
    from bclake.core import pii

    return pii


def _digits(text: str) -> str:
    return re.sub(r"[^0-9Xx]", "", unicodedata.normalize("NFKC", text))


# --- the masking function -------------------------------------------------------------


@pytest.mark.parametrize(("text", "kept"), PHONE_SHAPES)
def test_every_phone_shape_becomes_the_pseudonym_of_its_eleven_digits(text: str, kept: str) -> None:
    pii = _pii()
    assert pii.redact_text(text, KEY) == kept + pii.pseudonym("13800000020", KEY)
    assert pii.redact_text(text, None) == kept + "[phone]"


@pytest.mark.parametrize(
    "text",
    [
        "13800000020 13900000021",
        "13800000020,13900000021",
        "13800000020/13900000021",
        "13800000020.13900000021",
        "1380000002013900000021",  # run together
        "138 0000 0020 139 0000 0021",
        "1 3 8 0 0 0 0 0 0 2 0, 1 3 9 0 0 0 0 0 0 2 1",
    ],
)
def test_two_numbers_side_by_side_are_both_replaced(text: str) -> None:
    out = _pii().redact_text(text, None)
    assert out.count("[phone]") == 2 and not re.search(r"[0-9]{3}", out), out


def test_a_run_of_numbers_is_replaced_whole() -> None:
    text = "13800000020 13900000021 13700000022 13600000023 13500000024"
    assert _pii().redact_text(text, None) == " ".join(["[phone]"] * 5)


@pytest.mark.parametrize(
    "text",
    [
        ID_CARD,
        ID_CARD.lower(),
        ID_CARD_2,
        "110105 19491231 002X",
        "110105-19491231-002X",
        "110105491231002",  # the old 15-digit form
        f"身份证{ID_CARD}，",
    ],
)
def test_identity_numbers_are_replaced(text: str) -> None:
    pii = _pii()
    out = pii.redact_text(text, KEY)
    assert not re.search(r"[0-9]{6}", out), out
    assert pii.redact_text(text, None).replace("身份证", "").strip("，") == "[id]"


def test_an_identity_number_has_one_pseudonym_however_written() -> None:
    pii = _pii()
    forms = (ID_CARD, ID_CARD.lower(), "110105 19491231 002X")
    assert len({pii.redact_text(f, KEY) for f in forms}) == 1


@pytest.mark.parametrize(
    "text",
    [
        "12345678901234567890",  # a 20-digit shipment id
        "SH12345678901234567890",
        "13800000020123456789",  # 20 digits that start like a phone
        "6901234567892",  # GTIN-13
        "16901234567899",  # GTIN-14
        "004000000225239345",  # an 18-digit product code
        "110105194912310021",  # identity-number shaped, but the check does not hold
        "SC00000000001",  # a scan id
        "2024-01-15",
        "2024-01-15 13:45:00",
        "20240115134500",
        "1700000000000",  # epoch milliseconds
        "15 300 200 100 50",  # amounts in a row
        "1,380,000,002.00",
        "13800000.20",
        "114.13512345678",  # a longitude with eleven decimals
        "22.13800000020",
        "26afc16451464218",  # a photo hash
        "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",  # SHA-256
        "550e8400-e29b-41d4-a716-a13800000020",  # a UUID
        "1380000002",  # ten digits
        "12800000020",  # 12x is not a mobile prefix
        "",
    ],
)
def test_what_is_not_a_person_is_left_alone(text: str) -> None:
    assert _pii().redact_text(text, KEY) == text


def test_an_id_built_on_a_date_time_stamp_is_left_alone() -> None:
    """A review decision id is `RV`, a UTC stamp and six hex digits; a stamp with a hex
    letter after it is a 15-digit run of date and time, shaped like the old identity
    number except that no area code opens with 19 or 20. Every second of one day, each
    followed by a letter, stays as it is."""
    pii = _pii()
    stamps = [
        f"20261130{h:02d}{m:02d}{s:02d}" for h in range(24) for m in range(60) for s in range(60)
    ]
    ids = [f"RV{stamp}{digit}a{digit}0f5" for stamp in stamps for digit in "03"]
    assert pii.redact_texts(ids, KEY) == ids


def test_the_pattern_flags_the_same_values_in_duckdb() -> None:
    """`PII_PATTERN` has no look-around, so a scan of published tables can use it."""
    pii = _pii()
    values = [t for t, _ in PHONE_SHAPES if t.isascii()] + [ID_CARD, "110105491231002"]
    values += ["12345678901234567890", "6901234567892", "2024-01-15 13:45:00", "114.13512345678"]
    con = duckdb.connect()
    flagged = con.execute(
        "select v, regexp_matches(v, ?) from unnest(?) as t(v)", [pii.PII_PATTERN, values]
    ).fetchall()
    con.close()
    assert flagged == [(v, bool(pii._ANY.search(v))) for v in values]
    assert sum(f for _, f in flagged) == len(values) - 4


def test_a_frame_is_masked_column_by_column_and_nothing_else_changes() -> None:
    pii = _pii()
    frame = pl.DataFrame(
        {
            "name": ["便利店", "店主13800000020", None, "老王 139-0000-0021"],
            "code": ["S000001", "S000002", "S000003", "S000004"],
            "qty": [1, 2, 3, 4],
        }
    )
    out = pii.redact_frame(frame, KEY)
    assert out["code"].equals(frame["code"]) and out["qty"].equals(frame["qty"])
    assert out["name"].to_list() == [
        "便利店",
        "店主" + pii.pseudonym("13800000020", KEY),
        None,
        "老王 " + pii.pseudonym("13900000021", KEY),
    ]
    assert pii.redact_frame(frame, KEY, ["code"]).equals(frame)
    assert pii.redact_texts(frame["name"].to_list(), KEY) == out["name"].to_list()


def test_the_pseudonym_is_keyed_and_never_looks_like_a_number() -> None:
    pii = _pii()
    a, b = pii.pseudonym("13800000020", KEY), pii.pseudonym("13800000020", KEY + "x")
    assert a != b and len(a) == 52 and re.fullmatch(r"[a-z2-7]+", a)
    assert pii.redact_text(a, KEY) == a


def test_a_phone_in_any_column_gets_the_pseudonym_of_the_pii_column() -> None:
    """So a city, a consumer's phone column and an unknown column join on one pseudonym."""
    from bclake.ingest.pii import pseudonymise

    contract = load_contracts()["cdp.consumers"]
    raw = pl.DataFrame(
        {
            "consumer_id": ["C000000001", "C000000002"],
            "phone": ["13800000020", "+86 138 0000 0020"],
            "city": ["北京 138-0000-0020", None],
            "_extra": ['{"mobile":"8613800000020"}', None],
        }
    )
    out = pseudonymise(raw, contract, KEY)
    person = _pii().pseudonym("13800000020", KEY)
    assert out["phone"].to_list() == [person, person]
    assert out["city"].to_list() == [f"北京 {person}", None]
    assert out["_extra"][0] == f'{{"mobile":"{person}"}}'
    assert out["consumer_id"].equals(raw["consumer_id"])


# --- hostile landing files, ingested -------------------------------------------------

PLANTED = {  # canonical digits of every number planted below
    "13812345678",
    "15987654321",
    "13911112222",
    "13700003333",
    "13600004444",
    "13500005555",
    "13400006666",
    "18800007777",
    "17700008888",
    "15000009999",
    ID_CARD,
    ID_CARD_2,
    "110105491231002",
}


def _store(code: str, name: str, **more: object) -> str:
    doc = {
        "storeCode": code,
        "storeName": name,
        "channelType": "夫妻店",
        "sizeClass": "M",
        "region": "华北",
        "province": "北京",
        "city": "北京",
        "lat": 39.9,
        "lon": 116.4,
        "distributorCode": "D0001",
        "onboardDate": "2024-12-01",
        "hasPos": False,
        "miniProgramActive": False,
        "isPartner": False,
    } | more
    return json.dumps(doc, ensure_ascii=False)


def _consumer(cid: str, phone: str, city: str) -> str:
    doc = {
        "consumerId": cid,
        "phone": phone,
        "profile": {"gender": "M", "birthYear": 1980, "city": city},
        "registerChannel": "小程序",
        "registerDate": "2024-03-10",
        "consents": {"marketing": True, "profile": True},
    }
    return json.dumps(doc, ensure_ascii=False)


SHIP_HEADER = "发货单号,经销商编码,仓库编码,订单日期,发货日期,产品编码,订货数量,发货数量,金额"


def plant_hostile_landing(landing: Path) -> None:
    """Numbers in a store name, a city, an id column, an unknown column, a header, a file
    name, quarantined rows, a ragged row and a file rejected whole."""
    stores = landing / "dms" / "stores"
    stores.mkdir(parents=True, exist_ok=True)
    (stores / "stores_hostile.ndjson").write_text(
        "\n".join(
            [
                _store("S900001", "便利店店主13812345678", ownerId=ID_CARD),
                _store("S900002", "老王超市", city="+86 159 8765 4321"),
                _store("13911112222", "电话写进了门店编码"),  # a phone in an id column
                _store("S900003", "双号店 13700003333 13600004444", **{"手机 13500005555": "x"}),
            ]
        )
        + "\n",
        encoding="utf-8",
    )
    consumers = landing / "cdp" / "consumers"
    consumers.mkdir(parents=True, exist_ok=True)
    (consumers / "consumers_hostile.ndjson").write_text(
        _consumer("C900000001", "+86 138-1234-5678", "1 3 4 0 0 0 0 6 6 6 6")
        + "\n"
        + _consumer("C900000002", "18800007777", f"身份证{ID_CARD_2}")
        + "\n",
        encoding="utf-8",
    )
    shipments = landing / "erp" / "shipments"
    shipments.mkdir(parents=True, exist_ok=True)
    (shipments / "shipments_张三17700008888.csv").write_text(
        SHIP_HEADER
        + ",联系人 15000009999\n"
        + "SH12345678901234567890,D0001,DC01,2024-01-02,2024-01-03,SKU0001,24,24,115.2,\n"
        + "13812345678,D0001,DC01,2024-01-02,2024-01-03,SKU0002,12,12,54.0,110105491231002\n"
        + "SH00000002,D0001,DC01,2024-01-02,2024-01-03,SKU0002,12,+8613812345678\n"  # ragged
        + "SH00000003,D0001,DC01,2024-01-02,2024-01-03,SKU0003,12,12,54.0,x\n",
        encoding="utf-8",
    )
    # no header the contract knows: rejected whole, its lines quarantined
    (shipments / "rejected_15987654321.csv").write_text(
        "手机 13911112222,备注\n13700003333,身份证 11010519491231002X\n", encoding="utf-8"
    )


def _frame_texts(frame: pl.DataFrame) -> list[str]:
    """A table's column names and text values."""
    texts = list(frame.columns)
    for col, dtype in frame.schema.items():
        if dtype == pl.String:
            texts += frame[col].drop_nulls().to_list()
    return texts


def _text_of(path: Path) -> list[str]:
    """Every piece of text a file under the data root holds, with its own name."""
    texts = [path.name]
    if path.suffix == ".parquet":
        texts += _frame_texts(pl.read_parquet(path, hive_partitioning=False))
    elif path.suffix == ".xlsx":
        book = openpyxl.load_workbook(path, read_only=True)
        for sheet in book.worksheets:
            for row in sheet.iter_rows(values_only=True):
                texts += [str(v) for v in row if v is not None]
        book.close()
    elif path.suffix == ".duckdb":
        con = duckdb.connect(str(path), read_only=True)
        try:
            tables = con.execute(
                "select table_schema, table_name from information_schema.tables"
            ).fetchall()
            for schema, table in tables:
                texts += _frame_texts(con.sql(f'select * from "{schema}"."{table}"').pl())
        finally:
            con.close()
    else:
        texts.append(path.read_bytes().decode("utf-8", errors="replace"))
    return texts


def clear_pii_under(home: Path, planted: set[str]) -> list[tuple[str, str]]:
    """(file, text) pairs under `home` (landing/ and truth/ left out: the sources) holding
    a planted number in clear, separators and full-width digits ignored."""
    hits = []
    for path in sorted(home.rglob("*")):
        rel = path.relative_to(home)
        if rel.parts[0] in ("landing", "truth") or not path.is_file():
            continue
        for text in _text_of(path):
            digits = _digits(text).upper()
            hits += [(str(rel), text[:200]) for p in planted if p.upper() in digits]
    return hits


@pytest.fixture
def hostile(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """A data root whose landing holds the hostile files, ingested."""
    monkeypatch.setenv("BCLAKE_PII_KEY", KEY)
    plant_hostile_landing(tmp_path / "landing")
    settings = Settings.from_env(tmp_path)
    contracts = load_contracts()
    for key in ("dms.stores", "cdp.consumers", "erp.shipments"):
        ingest_table(contracts[key], settings)
    return settings


def _lake(settings: Settings, key: str) -> pl.DataFrame:
    contract = load_contracts()[key]
    return pl.read_parquet(
        table_dir(settings.lake, contract) / "**/part-*.parquet", hive_partitioning=False
    )


def _quarantine(settings: Settings, key: str) -> pl.DataFrame:
    contract = load_contracts()[key]
    return pl.read_parquet(quarantine_dir(settings.lake, contract) / "*.parquet")


def test_no_planted_number_is_written_anywhere_by_ingest(hostile: Settings) -> None:
    from bclake.ingest.report import lake_audit

    audit = lake_audit(hostile)
    for name, frame in audit.items():
        frame.write_parquet(hostile.home / f"audit_{name}.parquet")
    assert clear_pii_under(hostile.home, PLANTED) == []


def test_the_hostile_rows_still_load_or_are_quarantined_as_before(hostile: Settings) -> None:
    stores = _lake(hostile, "dms.stores").sort("store_code")
    assert stores["store_code"].to_list() == ["S900001", "S900002", "S900003"]
    assert stores["store_name"][0].startswith("便利店店主")
    shipments = _lake(hostile, "erp.shipments").sort("shipment_id")
    # a 20-digit shipment id is not a person: loaded as it is
    assert shipments["shipment_id"].to_list() == ["SH00000003", "SH12345678901234567890"]
    quarantined = _quarantine(hostile, "erp.shipments")
    assert sorted(quarantined["reason"].unique().to_list()) == [
        "bad_id",
        "missing_column",
        "ragged_row",
    ]
    ledger = read_ledger(hostile).sort("file")
    assert (ledger["rows_in"] == ledger["rows_loaded"] + ledger["rows_quarantined"]).all()
    assert ledger.filter(pl.col("status") == "rejected").height == 1


def test_a_phone_in_a_name_joins_the_consumer_it_belongs_to(hostile: Settings) -> None:
    from bclake.core.pii import pseudonym

    person = pseudonym("13812345678", KEY)
    stores = _lake(hostile, "dms.stores")
    consumers = _lake(hostile, "cdp.consumers")
    assert (
        stores.filter(pl.col("store_code") == "S900001")["store_name"][0] == "便利店店主" + person
    )
    # written `+86 138-1234-5678` in the consumers' PII column: the same pseudonym
    assert person in consumers["phone"].to_list()
    assert (
        _quarantine(hostile, "dms.stores")["raw"].str.contains(pseudonym("13911112222", KEY)).all()
    )


def test_a_backfill_finds_a_file_whose_name_was_pseudonymised(hostile: Settings) -> None:
    contract = load_contracts()["erp.shipments"]
    result = reingest_days(contract, hostile, ["2024-01-03"])
    assert [f.status for f in result.files] == ["partial"], result.files
    assert clear_pii_under(hostile.home, PLANTED) == []


def test_published_audit_masks_what_an_older_lake_kept_in_clear(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A quarantine part and a ledger written before numbers were masked everywhere."""
    from bclake.ingest.ledger import LEDGER_SCHEMA, ledger_path
    from bclake.ingest.report import lake_audit

    monkeypatch.setenv("BCLAKE_PII_KEY", KEY)
    settings = Settings.from_env(tmp_path)
    contract = load_contracts()["dms.stores"]
    folder = quarantine_dir(settings.lake, contract)
    folder.mkdir(parents=True)
    pl.DataFrame(
        {
            "_source_row": [1],
            "reason": ["bad_id"],
            "message": ["dms/stores/a.ndjson: row 1: bad_id: value '13812345678'"],
            "raw": ['{"store_code":"13812345678"}'],
            "_source_file": ["dms/stores/a_13911112222.ndjson"],
        }
    ).write_parquet(folder / "part-0.parquet")
    ledger = pl.DataFrame(
        [
            {
                "file": "dms/stores/a_13911112222.ndjson",
                "system": "dms",
                "table": "stores",
                "status": "partial",
                "message": "headers found: '手机 13700003333'",
                "extra_columns": "手机 13700003333",
                "first_seen": datetime.now(UTC),
            }
        ],
        schema=LEDGER_SCHEMA,
    )
    path = ledger_path(settings, contract)
    path.parent.mkdir(parents=True)
    ledger.write_parquet(path)
    for name, frame in lake_audit(settings).items():
        text = frame.select(pl.col(pl.String)).write_csv()
        for p in ("13812345678", "13911112222", "13700003333"):
            assert p not in text, (name, p)


def test_planner_files_mask_a_number_that_reached_the_warehouse(tmp_path: Path) -> None:
    from bclake.exports.planner import _write_book

    frame = pl.DataFrame({"store_code": ["S000001"], "store_name": ["店主13812345678"], "qty": [3]})
    _write_book({"store_orders": frame}, tmp_path, "plan.xlsx")
    assert clear_pii_under(tmp_path, PLANTED) == []
    assert pl.read_parquet(tmp_path / "store_orders.parquet")["store_name"][0] == "店主[phone]"
