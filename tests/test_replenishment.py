"""Replenishment rules on hand-made positions, and the closed-loop replay."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import polars as pl
import pytest

from bclake.core.settings import DBT_PROJECT_DIR
from bclake.evaluation.replenishment import simulate
from bclake.ml.replenishment import (
    FRAGMENTS,
    P10_P90_WIDTH,
    REASONS,
    Policy,
    order_quantity,
    pool_forecasts,
    replenish,
    suggest,
    suggestion_faults,
)

KEYS = ["store_code", "sku_code"]
AS_OF = date(2025, 6, 9)  # a Monday with no holiday in the next two weeks


def forecast(store: str, p50: float, spread: float = 0.0, weeks: int = 3) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "store_code": [store] * weeks,
            "sku_code": ["K1"] * weeks,
            "week_start": [AS_OF + timedelta(weeks=w) for w in range(weeks)],
            "p10": [max(0.0, p50 - spread)] * weeks,
            "p50": [p50] * weeks,
            "p90": [p50 + spread] * weeks,
        }
    )


def positions(**over) -> pl.DataFrame:
    row = {
        "store_code": "S1",
        "sku_code": "K1",
        "on_hand": 0,
        "on_order": 0,
        "lead_days": 0.0,
        "order_multiple": 6,
        "moq": 6,
        "promo_days": 0,
    }
    return pl.DataFrame([{**row, **over}])


def test_order_up_to_rounds_to_packs_and_explains_itself() -> None:
    out = suggest(positions(on_hand=3), forecast("S1", 14.0), KEYS, AS_OF, Policy())
    row = out.row(0, named=True)
    # 7 days of a 14/week demand with no spread: S = 14, need 11 -> 12 in packs of 6
    assert row["order_up_to"] == 14 and row["suggested_qty"] == 12
    assert row["rule"] == "order_up_to"
    assert "14" in row["reason_en"] and "目标库存" in row["reason_zh"]


def test_no_order_when_stock_covers_the_interval() -> None:
    out = suggest(positions(on_hand=10, on_order=10), forecast("S1", 14.0), KEYS, AS_OF)
    assert out["suggested_qty"][0] == 0 and out["rule"][0] == "covered"
    assert out["reason_en"][0].startswith("no order")


def test_safety_stock_grows_with_the_spread_and_the_service_level() -> None:
    narrow = suggest(positions(), forecast("S1", 14.0, 2.0), KEYS, AS_OF, Policy())
    wide = suggest(positions(), forecast("S1", 14.0, 10.0), KEYS, AS_OF, Policy())
    strict = suggest(
        positions(), forecast("S1", 14.0, 10.0), KEYS, AS_OF, Policy(service_level=0.99)
    )
    assert narrow["safety_stock"][0] < wide["safety_stock"][0] < strict["safety_stock"][0]


def test_minimum_order_quantity_and_promotion_rules() -> None:
    moq = suggest(positions(on_hand=13, moq=12), forecast("S1", 14.0), KEYS, AS_OF)
    assert moq["suggested_qty"][0] == 12 and moq["rule"][0] == "moq"
    promo = suggest(positions(promo_days=3), forecast("S1", 14.0, 4.0), KEYS, AS_OF)
    assert promo["rule"][0] == "order_up_to_promotion" and promo["service_level"][0] == 0.97


def test_holidays_raise_the_service_level() -> None:
    national_day = date(2025, 9, 29)
    out = suggest(
        positions(lead_days=2.0),
        forecast("S1", 14.0, 4.0).with_columns(pl.col("week_start") + (national_day - AS_OF)),
        KEYS,
        national_day,
    )
    assert out["peak"][0] and out["service_level"][0] == 0.98
    assert out["rule"][0] == "order_up_to_peak"


def test_missing_forecast_means_no_order_and_says_so() -> None:
    out = suggest(positions(store_code="S2"), forecast("S1", 14.0), KEYS, AS_OF)
    assert out["rule"][0] == "no_forecast" and out["suggested_qty"][0] == 0


def test_order_quantity_is_vectorised_and_never_negative() -> None:
    target, order = order_quantity(
        np.array([10.0, 10.0, 0.0]),
        np.array([0.0, 0.0, 0.0]),
        np.array([1.645, 1.645, 1.645]),
        np.array([20.0, 4.0, 0.0]),
        np.array([1, 4, 1]),
        np.array([0, 8, 0]),
    )
    assert target.tolist() == [10, 10, 0]
    assert order.tolist() == [0, 8, 0]


def test_closed_loop_replay_counts_lost_sales() -> None:
    demand = np.full((2, 14), 2.0)

    def never(_w, _t, stock, _on_order, _sold):
        return np.zeros_like(stock)

    def plenty(_w, _t, stock, _on_order, _sold):
        return np.full_like(stock, 20.0)

    dry = simulate(demand, np.array([4.0, 4.0]), never, lead=1)
    assert dry["fill_rate"] == pytest.approx(8 / 56, abs=1e-4)
    assert dry["stockout_days"] == 2 * 12
    full = simulate(demand, np.array([4.0, 4.0]), plenty, lead=1)
    assert full["fill_rate"] == 1.0 and full["stockout_days"] == 0


def test_a_distributor_forecast_pools_its_stores() -> None:
    week = date(2025, 3, 3)
    stores = pl.DataFrame(
        {
            "store_code": ["S1", "S2", "S3"],
            "sku_code": ["A", "A", "A"],
            "week_start": [week] * 3,
            "p10": [6.0, 2.0, 0.0],
            "p50": [10.0, 5.0, 99.0],
            "p90": [14.0, 8.0, 99.0],
            "forecast_source": ["model", "cold_start", "model"],
        }
    )
    members = pl.DataFrame({"store_code": ["S1", "S2", "S3"], "distributor_code": ["D", "D", "E"]})
    pooled = pool_forecasts(stores, members, "distributor_code", ["sku_code"])
    d = pooled.filter(pl.col("distributor_code") == "D").row(0, named=True)
    sigma = np.hypot(8.0, 6.0) / P10_P90_WIDTH  # the bands' spreads add as variances
    assert d["p50"] == 15.0 and d["forecast_source"] == "cold_start"
    assert d["p90"] - d["p50"] == pytest.approx(sigma * P10_P90_WIDTH / 2)
    assert d["p50"] - d["p10"] == pytest.approx(sigma * P10_P90_WIDTH / 2)
    assert pooled.filter(pl.col("distributor_code") == "E")["p50"].to_list() == [99.0]


def test_every_rule_has_a_reason_in_both_languages() -> None:
    cases = {  # rule: (position, forecast spread)
        "order_up_to": (positions(on_hand=3), 0.0),
        "covered": (positions(on_hand=10, on_order=10), 0.0),
        "moq": (positions(on_hand=13, moq=12), 0.0),
        "order_up_to_promotion": (positions(promo_days=3), 4.0),
        "no_forecast": (positions(store_code="S2"), 0.0),
    }
    for rule, (pos, spread) in cases.items():
        row = suggest(pos, forecast("S1", 14.0, spread), KEYS, AS_OF).row(0, named=True)
        assert row["rule"] == rule
        prefix_en, prefix_zh = (t.split("{")[0] for t in REASONS[rule])
        assert row["reason_en"].startswith(prefix_en) and row["reason_zh"].startswith(prefix_zh)
        assert "{" not in row["reason_en"] + row["reason_zh"]
    new = suggest(
        positions(),
        forecast("S1", 14.0).with_columns(forecast_source=pl.lit("cold_start")),
        KEYS,
        AS_OF,
    )
    assert new["reason_en"][0].endswith(FRAGMENTS["new_item"][0])
    assert new["reason_zh"][0].endswith(FRAGMENTS["new_item"][1])


def _stock(**over) -> pl.DataFrame:
    return positions(**over).with_columns(as_of=pl.lit(AS_OF), region=pl.lit("east"))


def test_replenish_joins_the_series_to_their_positions() -> None:
    fc = pl.concat([forecast("S1", 14.0), forecast("S2", 14.0), forecast("S3", 14.0)])
    stock = pl.concat([_stock(on_hand=3), _stock(store_code="S2", on_hand=None)])
    out = replenish(fc, stock, KEYS, ["region"])
    assert out["store_code"].to_list() == ["S1", "S2", "S3"]  # one row per series
    assert out["rule"].to_list() == ["order_up_to", "no_stock_count", "no_stock_count"]
    assert out["suggested_qty"].to_list() == [12.0, 0.0, 0.0]
    assert out["region"].to_list() == ["east", "east", None]  # S3 has no position at all
    assert out["reason_en"][1] == REASONS["no_stock_count"][0]
    assert out["reason_zh"][2] == REASONS["no_stock_count"][1]
    assert suggestion_faults(out) == {"unexplained": 0, "negative": 0, "not_in_packs": 0}


def test_replenish_appends_its_note_and_wants_one_as_of() -> None:
    out = replenish(forecast("S1", 14.0), _stock(on_hand=3), KEYS, [], note="flow_balance")
    assert out["reason_en"][0].endswith(FRAGMENTS["flow_balance"][0])
    assert out["reason_zh"][0].endswith(FRAGMENTS["flow_balance"][1])
    two = pl.concat(
        [_stock(), _stock(store_code="S2").with_columns(as_of=pl.lit(date(2025, 6, 10)))]
    )
    with pytest.raises(ValueError, match="2 as_of dates"):
        replenish(forecast("S1", 14.0), two, KEYS, [])


def test_suggestion_faults_count_what_the_check_rejects() -> None:
    out = suggest(positions(on_hand=3), forecast("S1", 14.0), KEYS, AS_OF)
    bad = out.with_columns(suggested_qty=pl.lit(7.0), reason_zh=pl.lit(None, dtype=pl.String))
    assert suggestion_faults(bad) == {"unexplained": 1, "negative": 0, "not_in_packs": 1}


def test_the_no_stock_count_reason_names_the_count_window_of_the_model() -> None:
    sql = (DBT_PROJECT_DIR / "models/marts/replenishment/fct_store_stock_positions.sql").read_text()
    assert "between r.as_of - 14 and r.as_of - 1" in sql
    assert (
        "last 14 days" in REASONS["no_stock_count"][0] and "近14天" in REASONS["no_stock_count"][1]
    )


def test_the_reason_wording_planners_read() -> None:
    out = suggest(positions(on_hand=3), forecast("S1", 14.0), KEYS, AS_OF, Policy())
    assert out["reason_en"][0] == (
        "order up to target, rounded to packs of 6; demand over 7 days (lead 0.0 + review) ~ "
        "14.0 ± 0.0; order-up-to 14.0 at 95% service (safety stock 0.0); on hand 3 + on order 0"
    )
    assert out["reason_zh"][0] == (
        "补到目标库存,按每包 6 取整;未来7天(到货0.0天+补货周期)预计需求 14.0±0.0;"
        "目标库存 14.0(服务水平 95%,安全库存 0.0);现有 3 + 在途 0"
    )
