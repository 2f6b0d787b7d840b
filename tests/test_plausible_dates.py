"""Event dates outside a contract's plausible window are quarantined with a reason."""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from pathlib import Path

import polars as pl
import pytest

from bclake.core.contracts import load_contract, load_contracts
from bclake.ingest.validate import validate

TODAY = date(2026, 11, 30)


def _report(*days: str) -> pl.DataFrame:
    n = len(days)
    return pl.DataFrame(
        {
            "report_id": [f"ST{i:06d}" for i in range(n)],
            "store_code": ["S000001"] * n,
            "biz_date": list(days),
            "sku_code": ["SKU0001"] * n,
            "qty": ["2"] * n,
            "amount": ["9.9"] * n,
            "_source_row": list(range(1, n + 1)),
            "_extra": [None] * n,
        },
        schema_overrides={"_extra": pl.String},
    )


def test_dates_outside_the_window_are_quarantined_naming_the_fix() -> None:
    contract = load_contracts()["dms.sell_through"]
    days = ["1900-01-01", "1999-12-31", "2000-01-01", "2026-11-30", "2026-12-07", "2026-12-08"]
    loaded, quarantined = validate(_report(*days), contract, today=TODAY)
    assert loaded["biz_date"].cast(pl.String).to_list() == [
        "2000-01-01",
        "2026-11-30",
        "2026-12-07",
    ]
    assert quarantined["_source_row"].to_list() == [1, 2, 6]
    assert set(quarantined["reason"]) == {"implausible_date"}
    message = quarantined["message"][0]
    assert "'biz_date' value 1900-01-01" in message and "2000-01-01..2026-12-07" in message
    assert "contracts/dms/sell_through.yaml" in message and "plausible_from" in message


def test_a_derived_event_date_is_judged_on_its_timestamp() -> None:
    contract = load_contracts()["code.store_scans"]
    assert contract.event_date == "scan_date"  # derived from scan_time
    times = ["2025-06-01 10:00:00", "2099-05-01 10:00:00", "2026-12-07 23:59:59"]
    raw = pl.DataFrame(
        {
            "scan_id": ["SS0001", "SS0002", "SS0003"],
            "store_code": ["S000001"] * 3,
            "consumer_id": ["C000000001"] * 3,
            "scan_time": times,
            "order_amount": ["10.5"] * 3,
            "coupon_id": [None] * 3,
            "rating": [None] * 3,
            "_source_row": [2, 3, 4],
            "_extra": [None] * 3,
        },
        schema_overrides={"coupon_id": pl.String, "rating": pl.String, "_extra": pl.String},
    )
    loaded, quarantined = validate(raw, contract, today=TODAY)
    assert loaded["scan_id"].to_list() == ["SS0001", "SS0003"]
    assert quarantined.select("_source_row", "reason").rows() == [(3, "implausible_date")]
    assert "'scan_time' value 2099-05-01 10:00:00" in quarantined["message"][0]


def test_a_contract_may_widen_its_window() -> None:
    contract = load_contracts()["dms.sell_through"]
    wide = replace(contract, plausible_from=date(1990, 1, 1), max_days_ahead=60)
    loaded, quarantined = validate(_report("1995-06-01", "2027-01-15"), wide, today=TODAY)
    assert loaded.height == 2 and quarantined.is_empty()


@pytest.mark.parametrize(
    ("field", "value", "error"),
    [
        ("plausible_from", "'last year'", "plausible_from 'last year' is not a date"),
        ("max_days_ahead", "-1", "max_days_ahead -1 is not a whole number"),
    ],
)
def test_a_bad_window_in_a_contract_is_an_error(
    tmp_path: Path, field: str, value: str, error: str
) -> None:
    source = Path("contracts/dms/sell_through.yaml").read_text(encoding="utf-8")
    path = tmp_path / "sell_through.yaml"
    path.write_text(source + f"\n{field}: {value}\n", encoding="utf-8")
    with pytest.raises(ValueError, match=error):
        load_contract(path)
