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

Every suggestion names the rule that fired and the numbers behind it, in English and
Chinese, from one catalogue of reason templates (`REASONS`). The stock positions come from
the warehouse (`marts.fct_store_stock_positions`, `marts.fct_distributor_stock_positions`);
`replenish` joins a forecast's series to them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, timedelta
from statistics import NormalDist

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
    rows = rows.with_columns(reason_en=_reason("en"), reason_zh=_reason("zh"))
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


# --- reasons: one bilingual catalogue -----------------------------------------------
# rule -> (English template, Chinese template). In a template `{col}` is a column rounded
# to 0.1, `{col:0}` rounded to a whole number, `{col:%}` a share as a whole percentage,
# and `{name}` a fragment of FRAGMENTS (shown only where its column in CONDITIONS is true).
REASONS: dict[str, tuple[str, str]] = {
    "no_forecast": (
        "no forecast for this item: no order suggested; order by hand",
        "无预测:不建议补货,请人工判断",
    ),
    "no_stock_count": (  # the 14 days are the count window of fct_store_stock_positions
        "no stock count in the last 14 days: no order suggested; ask the store to count",
        "近14天无库存盘点:不建议补货,请门店先盘点",
    ),
    "covered": (
        "no order: stock covers the need; {basis}",
        "无需补货:库存已覆盖需求;{basis}",
    ),
    "moq": (
        "raised to the minimum order {moq:0}; {basis}",
        "按最小起订量 {moq:0} 取整;{basis}",
    ),
    "order_up_to_peak": (
        "holiday ahead, service level raised; {basis}",
        "节假日临近,提高服务水平;{basis}",
    ),
    "order_up_to_promotion": (
        "promotion ahead, service level raised; {basis}",
        "促销临近,提高服务水平;{basis}",
    ),
    "order_up_to": (
        "order up to target, rounded to packs of {order_multiple:0}; {basis}",
        "补到目标库存,按每包 {order_multiple:0} 取整;{basis}",
    ),
}
FRAGMENTS: dict[str, tuple[str, str]] = {
    "basis": (
        "demand over {protection_days:0} days (lead {lead_days:0} + review) ~ "
        "{forecast_mean} ± {forecast_sigma}; order-up-to {order_up_to:0} at "
        "{service_level:%}% service (safety stock {safety_stock}); "
        "on hand {on_hand:0} + on order {on_order:0}{new_item}",
        "未来{protection_days:0}天(到货{lead_days:0}天+补货周期)预计需求 "
        "{forecast_mean}±{forecast_sigma};目标库存 {order_up_to:0}"
        "(服务水平 {service_level:%}%,安全库存 {safety_stock});"
        "现有 {on_hand:0} + 在途 {on_order:0}{new_item}",
    ),
    "new_item": ("; forecast from similar items (new)", ";新品/新店,按相似品类推算"),
    # appended to every distributor reason: DMS exports carry no distributor stock count
    "flow_balance": (
        " (stock estimated from shipments in - deliveries out)",
        "(库存按进销存流水估算)",
    ),
}
CONDITIONS: dict[str, str] = {"new_item": "cold_start"}
LANGUAGES = ("en", "zh")
_PLACEHOLDER = re.compile(r"\{(\w+)(?::(0|%))?\}")


def render(template: str, language: str) -> pl.Expr:
    """A template of the catalogue as a string expression over the suggestion columns.

    Raises KeyError for an unknown fragment and ValueError for an unknown language.
    """
    lang = LANGUAGES.index(language)
    parts: list[pl.Expr] = []
    pos = 0
    for match in _PLACEHOLDER.finditer(template):
        parts.append(pl.lit(template[pos : match.start()]))
        name, fmt = match.groups()
        if name in FRAGMENTS:
            part = render(FRAGMENTS[name][lang], language)
            if name in CONDITIONS:
                part = pl.when(pl.col(CONDITIONS[name])).then(part).otherwise(pl.lit(""))
        elif fmt == "%":
            part = (pl.col(name) * 100).round(0).cast(pl.Int64).cast(pl.String)
        else:
            part = pl.col(name).round(0 if fmt == "0" else 1).cast(pl.String)
        parts.append(part)
        pos = match.end()
    parts.append(pl.lit(template[pos:]))
    return pl.concat_str(parts)


def _reason(language: str) -> pl.Expr:
    """The reason of each row's `rule`, in `language` ("en" or "zh")."""
    lang = LANGUAGES.index(language)
    (first, first_templates), *rest = REASONS.items()
    expr = pl.when(pl.col("rule") == first).then(render(first_templates[lang], language))
    for rule, templates in rest:
        expr = expr.when(pl.col("rule") == rule).then(render(templates[lang], language))
    return expr.otherwise(pl.lit(None, dtype=pl.String))


# --- from stock positions to suggestions -----------------------------------------------
def replenish(
    forecast: pl.DataFrame,
    positions: pl.DataFrame,
    keys: list[str],
    attributes: list[str],
    policy: Policy = Policy(),
    note: str | None = None,
) -> pl.DataFrame:
    """Suggested orders for every series of `forecast`, one row per series, sorted by keys.

    `positions` (a warehouse stock-position table): the keys, the `attributes` to carry
    (e.g. region), `as_of` (one date for all rows), `on_hand` (null: no recent stock
    count), on_order, lead_days, promo_days, order_multiple and moq. Series are left-joined
    to it: one without a position, or with no on_hand, is not ordered and says so (rule
    `no_stock_count`). `note` names a FRAGMENTS entry appended to every reason.
    Output: the keys, the attributes, then the columns of `suggest`.
    Raises ValueError when the positions carry no as_of date or more than one.
    """
    as_of_dates = positions["as_of"].drop_nulls().unique()
    if as_of_dates.len() != 1:
        raise ValueError(f"stock positions carry {as_of_dates.len()} as_of dates, expected one")
    as_of: date = as_of_dates[0]
    rows = forecast.select(keys).unique().join(positions, on=keys, how="left")
    counted = rows.filter(pl.col("on_hand").is_not_null())
    out = suggest(counted, forecast, keys, as_of, policy)
    uncounted = rows.filter(pl.col("on_hand").is_null()).select(
        *keys,
        pl.lit(as_of).alias("as_of"),
        pl.lit(0.0).alias("suggested_qty"),
        pl.lit("no_stock_count").alias("rule"),
        "on_order",
        "lead_days",
        pl.col("order_multiple").fill_null(1),
        pl.col("moq").fill_null(1),
        *(
            render(REASONS["no_stock_count"][i], lang).alias(f"reason_{lang}")
            for i, lang in enumerate(LANGUAGES)
        ),
    )
    out = pl.concat([out, uncounted], how="diagonal_relaxed")
    if note is not None:
        out = out.with_columns(
            pl.concat_str(pl.col(f"reason_{lang}"), render(FRAGMENTS[note][i], lang))
            for i, lang in enumerate(LANGUAGES)
        )
    return rows.select(*keys, *attributes).join(out, on=keys).sort(keys)


def suggestion_faults(suggestions: pl.DataFrame) -> dict[str, int]:
    """Counts of rows that break the promises of a suggestion table: `unexplained` (no
    rule or reason), `negative` (suggested_qty < 0) and `not_in_packs` (a positive
    quantity that is not a whole number of order multiples)."""
    qty = pl.col("suggested_qty")
    faults = suggestions.select(
        unexplained=(
            pl.col("rule").is_null() | pl.col("reason_en").is_null() | pl.col("reason_zh").is_null()
        ).sum(),
        negative=(qty < 0).sum(),
        not_in_packs=(
            (qty > 0) & (qty % pl.max_horizontal(pl.col("order_multiple"), 1) != 0)
        ).sum(),
    )
    return {name: int(value) for name, value in faults.row(0, named=True).items()}
