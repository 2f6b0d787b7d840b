"""Replenishment (以销定补): order-up-to levels from the forecast distribution.

For each node (a store or a distributor) and SKU, at a review date:

1. Protection interval = lead time + review period: the stock bought now must last
   until the order after next arrives.
2. Demand over it, from the weekly P10/P50/P90: each week covering part of the
   interval contributes its mean, by Swanson's rule 0.3 P10 + 0.4 P50 + 0.3 P90
   (small-store demand is skewed: its median runs well below its mean), and a
   spread sigma = (P90 - P10) / 2.563 (the normal width of a P10-P90 band), in
   proportion to the days it covers; weeks are taken as independent, so variances add.
3. Order-up-to level S = mean + z(service level) x sigma. The service level is raised
   when the interval holds a holiday (peak season) or a signed promotion, where a
   stock-out costs most and the forecast is least sure.
4. Suggested order = S - on hand - on order, rounded up to the order multiple (case or
   inner pack), and to at least the minimum order quantity; nothing when the
   position already covers S.

Every suggestion names the rule that fired and the numbers behind it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from statistics import NormalDist

import duckdb
import numpy as np
import polars as pl

from bclake.core.calendar import holiday_name

P10_P90_WIDTH = 2 * NormalDist().inv_cdf(0.9)  # 2.563 standard deviations


def week_mean(p10, p50, p90):
    """Mean of a skewed weekly demand from its quantiles (Swanson's rule); arrays or exprs."""
    return 0.3 * p10 + 0.4 * p50 + 0.3 * p90


def week_sigma(p10, p90):
    """Spread of weekly demand from the P10-P90 band, as a normal's standard deviation."""
    return (p90 - p10) / P10_P90_WIDTH


def pool_forecasts(
    forecast: pl.DataFrame, members: pl.DataFrame, group: str, keys: list[str]
) -> pl.DataFrame:
    """Weekly quantiles of a group (a distributor) from its members' (its stores').

    `members` maps each member key in `forecast` to its `group`. Medians add; spreads
    add as independent normals (sigma from each P10-P90 band), and the group's P10/P90
    are read back from that normal. A group is `cold_start` if any member is.
    """
    half_band = P10_P90_WIDTH / 2
    pooled = (
        forecast.join(members, on=[c for c in members.columns if c != group])
        .group_by(group, *keys, "week_start")
        .agg(
            pl.col("p50").sum(),
            sigma=(week_sigma(pl.col("p10"), pl.col("p90")) ** 2).sum().sqrt(),
            any_cold=(pl.col("forecast_source") == "cold_start").any(),
        )
    )
    return pooled.select(
        group,
        *keys,
        "week_start",
        p10=(pl.col("p50") - half_band * pl.col("sigma")).clip(0),
        p50="p50",
        p90=pl.col("p50") + half_band * pl.col("sigma"),
        forecast_source=pl.when(pl.col("any_cold"))
        .then(pl.lit("cold_start"))
        .otherwise(pl.lit("model")),
    ).sort(group, *keys, "week_start")


@dataclass(frozen=True)
class Policy:
    """Service levels and the review period; lead times and packs come from the data."""

    service_level: float = 0.95
    peak_service_level: float = 0.98
    promo_service_level: float = 0.97
    review_days: int = 7

    def z(self, level: float) -> float:
        return NormalDist().inv_cdf(level)


def order_quantity(
    mean: np.ndarray,
    sigma: np.ndarray,
    z: np.ndarray,
    position: np.ndarray,
    multiple: np.ndarray,
    moq: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """(order-up-to level, order) for arrays of node x SKU; the policy's core, shared with
    the closed-loop evaluation so what is scored is what is shipped."""
    target = np.ceil(mean + z * sigma)
    need = np.maximum(0.0, target - position)
    multiple = np.maximum(multiple, 1)
    order = np.ceil(need / multiple) * multiple
    order = np.where((order > 0) & (order < moq), np.ceil(moq / multiple) * multiple, order)
    return target, order


def protection_demand(
    forecast: pl.DataFrame, keys: list[str], as_of: date, days: pl.Expr | int
) -> pl.DataFrame:
    """Mean and sigma of demand from `as_of` over `days` (a column or a constant) per key.

    `forecast` has the keys, `week_start`, p10, p50, p90 (weekly). A week counts in
    proportion to the days of [as_of, as_of + days) it covers.
    """
    days_expr = days if isinstance(days, pl.Expr) else pl.lit(days)
    start = pl.lit(as_of)
    f = forecast.with_columns(
        overlap=(
            pl.min_horizontal(
                pl.col("week_start") + pl.duration(days=7),
                start + pl.duration(days=days_expr),
            )
            - pl.max_horizontal(pl.col("week_start"), start)
        )
        .dt.total_days()
        .clip(0, 7)
        / 7.0,
        mean_week=week_mean(pl.col("p10"), pl.col("p50"), pl.col("p90")),
        sigma_week=week_sigma(pl.col("p10"), pl.col("p90")).clip(0),
    )
    return f.group_by(keys).agg(
        forecast_mean=(pl.col("overlap") * pl.col("mean_week")).sum(),
        forecast_sigma=(pl.col("overlap") * pl.col("sigma_week") ** 2).sum().sqrt(),
        cold_start=(
            (pl.col("forecast_source") == "cold_start").any()
            if "forecast_source" in forecast.columns
            else pl.lit(False)
        ),
    )


def peak_days(as_of: date, days: int) -> int:
    """Holiday days (Spring Festival, National Day, ...) within [as_of, as_of + days)."""
    return sum(holiday_name(as_of + timedelta(days=i)) is not None for i in range(days))


def suggest(
    positions: pl.DataFrame,
    forecast: pl.DataFrame,
    keys: list[str],
    as_of: date,
    policy: Policy = Policy(),
) -> pl.DataFrame:
    """Suggested orders with their explanation, one row per row of `positions`.

    `positions`: the keys, on_hand, on_order, lead_days, order_multiple, moq and
    `promo_days` (signed promotion days in the coming interval; 0 if none).
    `forecast`: the keys, week_start, p10, p50, p90 (+ optional forecast_source).
    """
    positions = positions.with_columns(
        protection_days=(pl.col("lead_days").round().cast(pl.Int64) + policy.review_days)
    )
    longest = int(positions["protection_days"].max() or policy.review_days)
    holidays = peak_days(as_of, longest)
    demand = protection_demand(
        forecast.join(positions.select(*keys, "protection_days"), on=keys),
        keys,
        as_of,
        pl.col("protection_days"),
    )
    rows = positions.join(demand, on=keys, how="left").with_columns(
        has_forecast=pl.col("forecast_mean").is_not_null(),
        forecast_mean=pl.col("forecast_mean").fill_null(0.0),
        forecast_sigma=pl.col("forecast_sigma").fill_null(0.0),
        cold_start=pl.col("cold_start").fill_null(False),
        peak=pl.lit(holidays > 0),
        promo=pl.col("promo_days").fill_null(0) > 0,
    )
    level = (
        pl.when(pl.col("peak"))
        .then(pl.lit(policy.peak_service_level))
        .when(pl.col("promo"))
        .then(pl.lit(policy.promo_service_level))
        .otherwise(pl.lit(policy.service_level))
    )
    rows = rows.with_columns(service_level=level)
    # three service levels at most: one inverse normal each, not one per row
    z_of = {v: policy.z(v) for v in rows["service_level"].unique().to_list()}
    z = rows["service_level"].replace_strict(z_of, return_dtype=pl.Float64).to_numpy()
    position = (rows["on_hand"].fill_null(0) + rows["on_order"].fill_null(0)).to_numpy()
    target, order = order_quantity(
        rows["forecast_mean"].to_numpy(),
        rows["forecast_sigma"].to_numpy(),
        z,
        position.astype(float),
        rows["order_multiple"].fill_null(1).to_numpy(),
        rows["moq"].fill_null(0).to_numpy(),
    )
    rows = rows.with_columns(
        pl.lit(as_of).alias("as_of"),
        safety_stock=pl.Series(np.round(z * rows["forecast_sigma"].to_numpy(), 1)),
        order_up_to=pl.Series(target),
        position=pl.Series(position.astype(float)),
        suggested_qty=pl.Series(np.where(rows["has_forecast"].to_numpy(), order, 0.0)),
    )
    rows = rows.with_columns(rule=_rule())
    rows = rows.with_columns(reason_en=_reason_en(), reason_zh=_reason_zh())
    return rows.select(
        *keys,
        "as_of",
        "suggested_qty",
        "rule",
        "forecast_mean",
        "forecast_sigma",
        "service_level",
        "safety_stock",
        "order_up_to",
        "on_hand",
        "on_order",
        "position",
        "lead_days",
        "protection_days",
        "order_multiple",
        "moq",
        "cold_start",
        "peak",
        "promo",
        "reason_en",
        "reason_zh",
    )


def _rule() -> pl.Expr:
    # the minimum order fired only if it asks more than one pack would have
    rounded_to_moq = (
        (pl.col("suggested_qty") > 0)
        & (pl.col("moq") > pl.col("order_multiple"))
        & (pl.col("order_up_to") - pl.col("position") <= pl.col("moq") - pl.col("order_multiple"))
    )
    return (
        pl.when(~pl.col("has_forecast"))
        .then(pl.lit("no_forecast"))
        .when(pl.col("suggested_qty") == 0)
        .then(pl.lit("covered"))
        .when(rounded_to_moq)
        .then(pl.lit("moq"))
        .when(pl.col("peak"))
        .then(pl.lit("order_up_to_peak"))
        .when(pl.col("promo"))
        .then(pl.lit("order_up_to_promotion"))
        .otherwise(pl.lit("order_up_to"))
    )


def _num(col: str, digits: int = 1) -> pl.Expr:
    return pl.col(col).round(digits).cast(pl.String)


def _reason_en() -> pl.Expr:
    basis = pl.concat_str(
        pl.lit("demand over "),
        _num("protection_days", 0),
        pl.lit(" days (lead "),
        _num("lead_days", 0),
        pl.lit(" + review) ~ "),
        _num("forecast_mean"),
        pl.lit(" ± "),
        _num("forecast_sigma"),
        pl.lit("; order-up-to "),
        _num("order_up_to", 0),
        pl.lit(" at "),
        (pl.col("service_level") * 100).round(0).cast(pl.Int64).cast(pl.String),
        pl.lit("% service (safety stock "),
        _num("safety_stock"),
        pl.lit("); on hand "),
        _num("on_hand", 0),
        pl.lit(" + on order "),
        _num("on_order", 0),
    )
    tail = (
        pl.when(pl.col("cold_start"))
        .then(pl.lit("; forecast from similar items (new)"))
        .otherwise(pl.lit(""))
    )
    return (
        pl.when(pl.col("rule") == "no_forecast")
        .then(pl.lit("no forecast for this item: no order suggested; order by hand"))
        .when(pl.col("rule") == "covered")
        .then(pl.concat_str(pl.lit("no order: stock covers the need; "), basis, tail))
        .when(pl.col("rule") == "moq")
        .then(
            pl.concat_str(
                pl.lit("raised to the minimum order "), _num("moq", 0), pl.lit("; "), basis, tail
            )
        )
        .when(pl.col("rule") == "order_up_to_peak")
        .then(pl.concat_str(pl.lit("holiday ahead, service level raised; "), basis, tail))
        .when(pl.col("rule") == "order_up_to_promotion")
        .then(pl.concat_str(pl.lit("promotion ahead, service level raised; "), basis, tail))
        .otherwise(
            pl.concat_str(
                pl.lit("order up to target, rounded to packs of "),
                _num("order_multiple", 0),
                pl.lit("; "),
                basis,
                tail,
            )
        )
    )


def _reason_zh() -> pl.Expr:
    basis = pl.concat_str(
        pl.lit("未来"),
        _num("protection_days", 0),
        pl.lit("天(到货"),
        _num("lead_days", 0),
        pl.lit("天+补货周期)预计需求 "),
        _num("forecast_mean"),
        pl.lit("±"),
        _num("forecast_sigma"),
        pl.lit(";目标库存 "),
        _num("order_up_to", 0),
        pl.lit("(服务水平 "),
        (pl.col("service_level") * 100).round(0).cast(pl.Int64).cast(pl.String),
        pl.lit("%,安全库存 "),
        _num("safety_stock"),
        pl.lit(");现有 "),
        _num("on_hand", 0),
        pl.lit(" + 在途 "),
        _num("on_order", 0),
    )
    tail = (
        pl.when(pl.col("cold_start"))
        .then(pl.lit(";新品/新店,按相似品类推算"))
        .otherwise(pl.lit(""))
    )
    return (
        pl.when(pl.col("rule") == "no_forecast")
        .then(pl.lit("无预测:不建议补货,请人工判断"))
        .when(pl.col("rule") == "covered")
        .then(pl.concat_str(pl.lit("无需补货:库存已覆盖需求;"), basis, tail))
        .when(pl.col("rule") == "moq")
        .then(pl.concat_str(pl.lit("按最小起订量 "), _num("moq", 0), pl.lit(" 取整;"), basis, tail))
        .when(pl.col("rule") == "order_up_to_peak")
        .then(pl.concat_str(pl.lit("节假日临近,提高服务水平;"), basis, tail))
        .when(pl.col("rule") == "order_up_to_promotion")
        .then(pl.concat_str(pl.lit("促销临近,提高服务水平;"), basis, tail))
        .otherwise(
            pl.concat_str(
                pl.lit("补到目标库存,按每包 "),
                _num("order_multiple", 0),
                pl.lit(" 取整;"),
                basis,
                tail,
            )
        )
    )


def store_order_multiples(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    """The pack a store orders in, per SKU: the greatest common divisor of its most common
    store order quantities (stores order inner packs, not cases)."""
    common = con.sql(
        "select sku_code, qty_ordered from marts.fct_store_orders where qty_ordered > 0 "
        "group by 1, 2 qualify row_number() over (partition by sku_code order by count(*) desc) "
        "<= 5"
    ).pl()
    rows = [
        {"sku_code": sku, "order_multiple": int(np.gcd.reduce(part["qty_ordered"].to_numpy()))}
        for (sku,), part in common.group_by("sku_code")
    ]
    return pl.DataFrame(rows, schema={"sku_code": pl.String, "order_multiple": pl.Int64})
