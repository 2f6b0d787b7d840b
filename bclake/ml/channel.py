"""Channel optimisation (渠道优化): inefficient stores and distributors, white space with
demand but no coverage, and where to open N new outlets.

Inputs are the channel marts (`marts/channel`, docs/channel.md); nothing here reads the
simulator's truth. The method, in order:

1. **Inefficiency rule** (per store and distributor, over the channel window):
   - `loss`: contribution < 0 over the window and still < 0 over its recent half (a loss
     that persists; one recovering in the recent half with rising revenue is scored but
     not flagged);
   - `peer_laggard`: contribution >= 0 but per week in the bottom `peer_percentile` of its
     peers (stores: same city tier x channel, or the tier alone when fewer than
     `min_peers`; distributors: same distributor tier), earning at most
     `laggard_max_margin` of its revenue, with revenue falling by at least
     `trend_decline_per_week` a week.
   The suggested action is the remedy that saves most (activity-based costing, Kaplan &
   Cooper, *Cost & Effect*, 1998: cost to serve per drop, km and visit): move_distributor
   (another distributor of the province at least `move_min_km` road km nearer: the drops'
   km cost saved), merge_routes (half the drops at twice the size: half the delivery cost),
   lower_visit_frequency (a visit a quarter instead of a month: two thirds of the visit
   cost); when even that saving leaves a loss, exit. Distributors: merge_routes,
   lower_visit_frequency or exit.
2. **White space** per reference city: expected weekly demand against served demand.
   Expected demand = the tier's demand of a well-covered city (`_tier_demand`: the upper
   quartile of what the tier's cities with stores take a week) x the province's market
   adjustment (brand share and competitor price relative to the national mean) + resident
   demand (consumers whose CDP city is this one beyond what its stores' pools explain, x
   units a consumer takes a week in covered cities) + visitor demand (sell-in of nearby
   stores of other cities above their peers' median: what residents buy on trips).
   Untapped = expected - served (the city's stores' sell-in), floored at 0: the units
   estimate. The resident part's scale is not identifiable from the exports (residents
   are a sample of a city's people), so cities are *ranked* by a dimensionless priority:
   resident_z (the excess resident consumers over the square root of what its stores'
   pools plus one store's pool explain: a Pearson residual, as in a funnel plot,
   Spiegelhalter, Stat. Med. 24, 2005) + gap_share (the tier gap over the tier demand).
   Confidence = n / (n + `confidence_prior`), n = resident consumers + scanning
   consumers + nearby stores (the evidence behind the estimate, a beta-style
   shrinkage weight). The nearest
   distributor is the distributor seat nearest the city seat (h3 great-circle distance),
   preferring the city's province.
3. **Coverage plan**: N new outlets down the white-space ranking, one a city per round
   while untapped units remain, each adding min(untapped left, the tier's outlet
   capacity) and served by the city's nearest distributor.
4. **Notes**: stores whose coordinates fall outside every province outline (shapely,
   `dashboards/assets/china_provinces.geojson`: in the sea or abroad) and inputs that
   could not be used.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import h3
import numpy as np
import polars as pl
import shapely

from bclake.core.channel import ChannelConfig

PROVINCES_GEOJSON = (
    Path(__file__).resolve().parents[1] / "dashboards" / "assets" / "china_provinces.geojson"
)
ACTIONS = ("merge_routes", "lower_visit_frequency", "move_distributor", "exit")
ACTION_ZH = {
    "merge_routes": "合并配送线路 (减半配送次数, 加大单次配送量)",
    "lower_visit_frequency": "降低拜访频率 (每季度一次)",
    "move_distributor": "改由更近的经销商配送",
    "exit": "退出",
}
ACTION_EN = {
    "merge_routes": "merge routes (half the drops, twice the size)",
    "lower_visit_frequency": "lower the visit frequency (a visit a quarter)",
    "move_distributor": "move to a nearer distributor",
    "exit": "exit",
}
TIER_DEMAND_QUANTILE = 0.75  # a well-covered city of a tier takes this quantile of its tier's
MERGE_SAVING = 0.5  # merge_routes saves half the delivery cost
VISIT_SAVING = 2 / 3  # a visit a quarter instead of a month


@dataclass(frozen=True)
class ChannelInputs:
    """What the channel model reads, one frame per mart.

    stores: `marts.fct_store_economics` (one row per store; yuan over the window).
    distributors: `marts.fct_distributor_economics` (one row per distributor, with
      seat_lat, seat_lon).
    areas: `marts.fct_area_demand_signals` (one row per reference city).
    geo_issues: `marts.fct_channel_geo_issues` (entity_type, code, issue, reasons).
    """

    stores: pl.DataFrame
    distributors: pl.DataFrame
    areas: pl.DataFrame
    geo_issues: pl.DataFrame | None = None


@dataclass
class ChannelPlan:
    """The model's tables (see `plan_channel`)."""

    scores: pl.DataFrame
    inefficient: pl.DataFrame
    white_space: pl.DataFrame
    area_cells: pl.DataFrame
    coverage_plan: pl.DataFrame
    notes: pl.DataFrame


def plan_channel(inputs: ChannelInputs, config: ChannelConfig, as_of: date) -> ChannelPlan:
    """Score every store and distributor, rank white space and plan N new outlets.

    Returns a `ChannelPlan`: scores (every store and distributor: contribution, peer
    percentile, rule, flagged), inefficient (the flagged ones with inputs, rule, reasons
    zh/en and action), white_space (every reference city ranked by estimated untapped
    units a week), area_cells (the H3 cell of each city seat and of each store, with its
    boundary as GeoJSON), coverage_plan (laid out to `white_space.plan_outlets_max` outlets,
    or N if more; `in_plan` marks the first N = `white_space.new_outlets` (column
    `new_outlets`): the plan for any
    smaller n is the first n rows, see `coverage_plan`) and notes.
    `as_of` is stamped on every table. Raises ValueError when `areas` is empty.
    """
    if inputs.areas.is_empty():
        raise ValueError("no reference cities in marts.fct_area_demand_signals")
    stores = _score_stores(inputs.stores, config)
    dists = _score_distributors(inputs.distributors, config)
    scores = pl.concat([stores, dists], how="diagonal_relaxed").with_columns(as_of=pl.lit(as_of))
    inefficient = scores.filter("flagged").drop("flagged")
    white = white_space(inputs.areas, inputs.stores, inputs.distributors, config)
    ws = config.white_space
    plan = coverage_plan(
        white,
        inputs.stores,
        max(ws.new_outlets, ws.plan_outlets_max),
        ws.outlet_capacity_quantile,
    ).with_columns(in_plan=pl.col("outlet") <= ws.new_outlets, new_outlets=pl.lit(ws.new_outlets))
    cells = area_cells(white, inputs.stores, config.white_space.h3_resolution)
    notes = _notes(inputs)
    stamp = pl.lit(as_of)
    return ChannelPlan(
        scores=scores,
        inefficient=inefficient.sort(["entity_type", "contribution"]),
        white_space=white.with_columns(as_of=stamp),
        area_cells=cells.with_columns(as_of=stamp),
        coverage_plan=plan.with_columns(as_of=stamp),
        notes=notes.with_columns(as_of=stamp),
    )


# --- 1. inefficiency ------------------------------------------------------------------


def _peer_percentile(
    frame: pl.DataFrame, group: list[str], fallback: list[str], min_peers: int, value: str
) -> pl.DataFrame:
    """Add `peer_group` (its label), `peers` (its size) and `peer_percentile` (the share of
    the other peers with a lower `value`, 0-1) by `group`, or, where that group has fewer
    than `min_peers` members, by `fallback` over every row (all rows when empty)."""

    def stats(by: list[str]) -> tuple[pl.Expr, pl.Expr, pl.Expr]:
        if not by:
            label = pl.lit("all")
            size = pl.len()
            pct = (pl.col(value).rank("min") - 1) / (pl.len().clip(lower_bound=2) - 1)
            return label, size, pct
        label = pl.concat_str(
            [pl.col(c).cast(pl.String).fill_null("?") for c in by], separator=" x "
        )
        size = pl.len().over(by)
        pct = (pl.col(value).rank("min").over(by) - 1) / (pl.len().over(by).clip(lower_bound=2) - 1)
        return label, size, pct

    fine_label, fine_size, fine_pct = stats(group)
    coarse_label, coarse_size, coarse_pct = stats(fallback)
    fine = fine_size >= min_peers
    return frame.with_columns(
        peer_group=pl.when(fine).then(fine_label).otherwise(coarse_label),
        peers=pl.when(fine).then(fine_size).otherwise(coarse_size).cast(pl.Int64),
        peer_percentile=pl.when(fine).then(fine_pct).otherwise(coarse_pct).cast(pl.Float64),
    )


def _rule(config: ChannelConfig) -> pl.Expr:
    """The rule fired: loss, peer_laggard or none (see the module docstring)."""
    r = config.inefficiency
    recovering = (pl.col("contribution_recent") >= 0) & (
        pl.col("revenue_trend_per_week").fill_null(0) > 0
    )
    loss = (pl.col("contribution") < 0) & ~recovering
    laggard = (
        (pl.col("contribution") >= 0)
        & (pl.col("peer_percentile") <= r.peer_percentile)
        & (pl.col("contribution_margin").fill_null(-1) <= r.laggard_max_margin)
        & (pl.col("revenue_trend_per_week").fill_null(0) <= -r.trend_decline_per_week)
    )
    return (
        pl.when(loss)
        .then(pl.lit("loss"))
        .when(laggard)
        .then(pl.lit("peer_laggard"))
        .when(pl.col("contribution") < 0)
        .then(pl.lit("recovering"))
        .otherwise(pl.lit("none"))
    )


def _choose_action(savings: dict[str, pl.Expr]) -> tuple[pl.Expr, pl.Expr]:
    """(action, saving yuan): the remedy of largest saving (ties to the first listed); exit
    when a loss stays a loss even after it."""
    names = list(savings)
    best = pl.max_horizontal(*savings.values())
    action = pl.lit("exit")
    for name in reversed(names):
        action = pl.when(savings[name] == best).then(pl.lit(name)).otherwise(action)
    fixed = pl.col("contribution") + best >= 0
    return pl.when(fixed | (pl.col("contribution") >= 0)).then(action).otherwise(
        pl.lit("exit")
    ), best


def _score_stores(stores: pl.DataFrame, config: ChannelConfig) -> pl.DataFrame:
    """Every store with its peer percentile, rule, action, saving and reasons."""
    r, c = config.inefficiency, config.costs
    km_cost = c.road_km_cost * c.cost_share
    frame = _peer_percentile(
        stores, ["city_tier", "channel_type"], ["city_tier"], r.min_peers, "contribution_per_week"
    )
    km_saved = (pl.col("road_km") - pl.col("nearest_distributor_road_km")).fill_null(0)
    movable = km_saved >= r.move_min_km
    savings = {
        "move_distributor": pl.when(movable)
        .then(pl.col("drops") * km_cost * 2 * km_saved)
        .otherwise(0.0),
        "merge_routes": pl.col("delivery_cost") * MERGE_SAVING,
        "lower_visit_frequency": pl.col("visit_cost") * VISIT_SAVING,
    }
    action, saving = _choose_action(savings)
    frame = frame.with_columns(rule=_rule(config), action=action, saving=saving.round(2))
    frame = frame.with_columns(flagged=pl.col("rule").is_in(["loss", "peer_laggard"]))
    return frame.select(
        pl.lit("store").alias("entity_type"),
        pl.col("store_code").alias("code"),
        pl.col("store_name").alias("name"),
        "distributor_code",
        "region",
        "province",
        "city",
        "city_tier",
        "channel_type",
        "revenue",
        "gross_margin",
        "drops",
        "avg_drop_units",
        "road_km",
        "delivery_cost",
        "visits",
        "visit_cost",
        "rebates",
        "promo_cost",
        "contribution",
        "contribution_recent",
        "contribution_margin",
        "revenue_trend_per_week",
        "peer_group",
        "peers",
        pl.col("peer_percentile").round(4),
        "rule",
        "flagged",
        pl.when(pl.col("flagged")).then(pl.col("action")).alias("action"),
        pl.when(pl.col("flagged")).then(pl.col("saving")).alias("saving"),
        pl.when(pl.col("action") == "move_distributor")
        .then(pl.col("nearest_distributor_code"))
        .alias("move_to_distributor"),
    ).with_columns(*_reasons())


def _score_distributors(dists: pl.DataFrame, config: ChannelConfig) -> pl.DataFrame:
    """Every distributor with its peer percentile (same distributor tier), rule and action."""
    r = config.inefficiency
    frame = dists.with_columns(
        contribution_per_week=pl.col("contribution") / (config.window_weeks * 1.0),
        drops=pl.col("shipments") + pl.col("store_drops"),
        avg_drop_units=pl.col("avg_shipment_units"),
    )
    frame = _peer_percentile(frame, ["tier"], [], r.min_peers, "contribution_per_week")
    savings = {
        "merge_routes": pl.col("delivery_cost") * MERGE_SAVING,
        "lower_visit_frequency": pl.col("visit_cost") * VISIT_SAVING,
    }
    action, saving = _choose_action(savings)
    frame = frame.with_columns(rule=_rule(config), action=action, saving=saving.round(2))
    frame = frame.with_columns(flagged=pl.col("rule").is_in(["loss", "peer_laggard"]))
    return frame.select(
        pl.lit("distributor").alias("entity_type"),
        pl.col("distributor_code").alias("code"),
        pl.col("distributor_name").alias("name"),
        "distributor_code",
        "region",
        "province",
        "city",
        pl.lit(None, pl.Int64).alias("city_tier"),
        pl.col("tier").alias("channel_type"),
        "revenue",
        "gross_margin",
        "drops",
        "avg_drop_units",
        "road_km",
        "delivery_cost",
        pl.lit(None, pl.Int64).alias("visits"),
        "visit_cost",
        "rebates",
        "promo_cost",
        "contribution",
        "contribution_recent",
        "contribution_margin",
        "revenue_trend_per_week",
        "peer_group",
        "peers",
        pl.col("peer_percentile").round(4),
        "rule",
        "flagged",
        pl.when(pl.col("flagged")).then(pl.col("action")).alias("action"),
        pl.when(pl.col("flagged")).then(pl.col("saving")).alias("saving"),
        pl.lit(None, pl.String).alias("move_to_distributor"),
    ).with_columns(*_reasons())


def _yuan(col: str) -> pl.Expr:
    return pl.col(col).fill_null(0).round(0).cast(pl.Int64).cast(pl.String)


def _reasons() -> list[pl.Expr]:
    """reason_zh and reason_en of a scored entity: the contribution and its parts, the rule
    and the action (null when not flagged)."""
    parts_zh = pl.concat_str(
        pl.lit("贡献 "),
        _yuan("contribution"),
        pl.lit(" 元 = 毛利 "),
        _yuan("gross_margin"),
        pl.lit(" - 配送 "),
        _yuan("delivery_cost"),
        pl.lit(" - 拜访 "),
        _yuan("visit_cost"),
        pl.lit(" - 返利 "),
        _yuan("rebates"),
        pl.lit(" - 促销 "),
        _yuan("promo_cost"),
    )
    parts_en = pl.concat_str(
        pl.lit("contribution "),
        _yuan("contribution"),
        pl.lit(" yuan = margin "),
        _yuan("gross_margin"),
        pl.lit(" - delivery "),
        _yuan("delivery_cost"),
        pl.lit(" - visits "),
        _yuan("visit_cost"),
        pl.lit(" - rebates "),
        _yuan("rebates"),
        pl.lit(" - promotions "),
        _yuan("promo_cost"),
    )
    pct = (pl.col("peer_percentile") * 100).round(0).cast(pl.Int64).cast(pl.String)
    trend = (pl.col("revenue_trend_per_week").fill_null(0) * 100).round(1).cast(pl.String)
    rule_zh = (
        pl.when(pl.col("rule") == "loss")
        .then(pl.concat_str(pl.lit("; 近半期仍亏损 "), _yuan("contribution_recent"), pl.lit(" 元")))
        .otherwise(
            pl.concat_str(
                pl.lit("; 在同类 ("),
                pl.col("peer_group"),
                pl.lit(") 中处于后 "),
                pct,
                pl.lit("%, 销售额每周变化 "),
                trend,
                pl.lit("%"),
            )
        )
    )
    rule_en = (
        pl.when(pl.col("rule") == "loss")
        .then(
            pl.concat_str(
                pl.lit("; still a loss of "),
                _yuan("contribution_recent"),
                pl.lit(" yuan over the recent half"),
            )
        )
        .otherwise(
            pl.concat_str(
                pl.lit("; percentile "),
                pct,
                pl.lit(" among its peers ("),
                pl.col("peer_group"),
                pl.lit("), revenue changing "),
                trend,
                pl.lit("% a week"),
            )
        )
    )
    action_zh = pl.col("action").replace_strict(ACTION_ZH, default=None)
    action_en = pl.col("action").replace_strict(ACTION_EN, default=None)
    target = (
        pl.when(pl.col("move_to_distributor").is_not_null())
        .then(pl.concat_str(pl.lit(" "), pl.col("move_to_distributor")))
        .otherwise(pl.lit(""))
    )
    saving = _yuan("saving")
    return [
        pl.when(pl.col("flagged"))
        .then(
            pl.concat_str(
                parts_zh,
                rule_zh,
                pl.lit("; 建议: "),
                action_zh,
                target,
                pl.lit(" (可节省约 "),
                saving,
                pl.lit(" 元)"),
            )
        )
        .alias("reason_zh"),
        pl.when(pl.col("flagged"))
        .then(
            pl.concat_str(
                parts_en,
                rule_en,
                pl.lit("; suggested: "),
                action_en,
                target,
                pl.lit(" (saves about "),
                saving,
                pl.lit(" yuan)"),
            )
        )
        .alias("reason_en"),
    ]


# --- 2. white space -------------------------------------------------------------------


def _tier_demand(areas: pl.DataFrame) -> dict[int, float]:
    """Units a week a well-covered city of each tier takes: the upper quartile over the
    tier's cities with stores (all covered cities when a tier has none)."""
    covered = areas.filter(pl.col("stores") > 0)
    overall = float(covered["sell_in_units_week"].quantile(TIER_DEMAND_QUANTILE) or 0.0)
    by_tier = covered.group_by("tier").agg(
        pl.col("sell_in_units_week").quantile(TIER_DEMAND_QUANTILE).alias("q")
    )
    found = {int(t): float(q) for t, q in by_tier.iter_rows() if t is not None}
    return {t: found.get(t, overall) for t in (1, 2, 3, 4)}


def _visitor_units(areas: pl.DataFrame, stores: pl.DataFrame, neighbour_km: float) -> pl.Series:
    """Per city (in `areas` order): sell-in units a week of stores of other cities within
    `neighbour_km` of its seat above the median of their peers (city tier x channel x
    size), split between the cities a store is near by inverse distance."""
    s = stores.filter(pl.col("lat").is_not_null() & pl.col("lon").is_not_null()).with_columns(
        week=pl.col("sell_in_units") / pl.col("weeks_active")
    )
    if s.is_empty():
        return pl.Series("visitor_units_week", np.zeros(areas.height))
    s = s.with_columns(
        excess=(
            pl.col("week")
            - pl.col("week").median().over(["city_tier", "channel_type", "size_class"])
        ).clip(lower_bound=0)
    )
    km = _km_matrix(
        areas["lat"].to_numpy(), areas["lon"].to_numpy(), s["lat"].to_numpy(), s["lon"].to_numpy()
    )
    other = areas["adcode"].to_numpy()[:, None] != s["adcode"].fill_null("").to_numpy()[None, :]
    near = (km <= neighbour_km) & other
    weight = np.where(near, 1.0 / np.maximum(km, 5.0), 0.0)
    total = weight.sum(axis=0)
    share = np.divide(weight, total, out=np.zeros_like(weight), where=total > 0)
    return pl.Series("visitor_units_week", share @ s["excess"].to_numpy())


def _km_matrix(
    lat1: np.ndarray, lon1: np.ndarray, lat2: np.ndarray, lon2: np.ndarray
) -> np.ndarray:
    """Great-circle km between every point of set 1 (rows) and set 2 (columns), by
    `h3.great_circle_distance` (haversine on the authalic sphere)."""
    out = np.empty((len(lat1), len(lat2)))
    for i, (a, b) in enumerate(zip(lat1, lon1, strict=True)):
        for j, (c, d) in enumerate(zip(lat2, lon2, strict=True)):
            out[i, j] = h3.great_circle_distance((a, b), (c, d), unit="km")
    return out


def white_space(
    areas: pl.DataFrame,
    stores: pl.DataFrame,
    distributors: pl.DataFrame,
    config: ChannelConfig,
    neighbour_km: float = 60.0,
) -> pl.DataFrame:
    """Every reference city of the brand's regions (those with a distributor) with its
    expected, served and untapped units a week, rank, confidence and nearest distributor
    (see the module docstring).

    Returns adcode, city, province, region, tier, lat, lon, consumers, scans, stores,
    served_units_week, tier_demand_units_week, market_adjustment,
    resident_units_week, visitor_units_week, expected_units_week,
    est_untapped_units_week, resident_z, gap_share, priority, rank (1 = highest
    priority; unique), confidence (0-1),
    nearest_distributor_code, km (great-circle km to its seat) and reasons zh/en.
    """
    ws = config.white_space
    regions = set(distributors["region"].drop_nulls())
    if regions:  # the brand's territory: regions with a distributor
        areas = areas.filter(pl.col("region").is_in(list(regions)))
    tier_demand = _tier_demand(areas)
    covered = areas.filter(pl.col("stores") > 0)
    consumers_per_store = float(covered["consumers"].sum()) / max(int(covered["stores"].sum()), 1)
    units_per_consumer = float(covered["sell_in_units_week"].sum()) / max(
        int(covered["consumers"].sum()), 1
    )
    share_mean = areas["brand_share"].drop_nulls().mean() or 1.0
    price_mean = areas["competitor_price_index"].drop_nulls().mean() or 1.0
    visitors = _visitor_units(areas, stores, neighbour_km)
    frame = areas.with_columns(visitors).with_columns(
        served_units_week=pl.col("sell_in_units_week"),
        tier_demand_units_week=pl.col("tier").replace_strict(
            tier_demand,
            default=float(np.mean(list(tier_demand.values()))),
            return_dtype=pl.Float64,
        ),
        market_adjustment=(
            (pl.col("brand_share").fill_null(share_mean) / share_mean)
            * (pl.col("competitor_price_index").fill_null(price_mean) / price_mean)
        ).clip(0.5, 2.0),
        resident_consumers=(pl.col("consumers") - consumers_per_store * pl.col("stores")).clip(
            lower_bound=0
        ),
    )
    frame = (
        frame.with_columns(
            resident_units_week=pl.when(pl.col("resident_consumers") >= ws.min_signal_consumers)
            .then(pl.col("resident_consumers") * units_per_consumer)
            .otherwise(0.0),
        )
        .with_columns(
            expected_units_week=pl.col("tier_demand_units_week") * pl.col("market_adjustment")
            + pl.col("resident_units_week")
            + pl.col("visitor_units_week"),
        )
        .with_columns(
            est_untapped_units_week=(pl.col("expected_units_week") - pl.col("served_units_week"))
            .clip(lower_bound=0)
            .round(1),
            evidence=pl.col("resident_consumers")
            + pl.col("scan_consumers")
            + pl.col("neighbour_stores"),
        )
        .with_columns(
            confidence=(pl.col("evidence") / (pl.col("evidence") + ws.confidence_prior)).round(3),
            # standardised excess of resident consumers (a Pearson residual, as in a funnel
            # plot), smoothed by one store's pool so an uncovered city does not divide by 0
            resident_z=pl.when(pl.col("resident_units_week") > 0)
            .then(
                pl.col("resident_consumers")
                / (consumers_per_store * (pl.col("stores") + 1)).clip(lower_bound=1).sqrt()
            )
            .otherwise(0.0),
            gap_share=(
                pl.col("tier_demand_units_week") * pl.col("market_adjustment")
                - pl.col("served_units_week")
            ).clip(lower_bound=0)
            / pl.col("tier_demand_units_week").clip(lower_bound=1e-9),
        )
        .with_columns(priority=(pl.col("resident_z") + pl.col("gap_share")).round(4))
    )
    frame = frame.sort(
        ["priority", "est_untapped_units_week", "adcode"], descending=[True, True, False]
    ).with_columns(rank=pl.int_range(1, pl.len() + 1))
    nearest = _nearest_distributor(frame, distributors)
    frame = frame.join(nearest, on="adcode", how="left")
    return (
        frame.select(
            "adcode",
            "city",
            "province",
            "region",
            "tier",
            "lat",
            "lon",
            "consumers",
            "scans",
            "stores",
            pl.col("served_units_week").round(1),
            pl.col("tier_demand_units_week").round(1),
            pl.col("market_adjustment").round(3),
            pl.col("resident_consumers").round(0),
            pl.col("resident_units_week").round(1),
            pl.col("visitor_units_week").round(1),
            pl.col("expected_units_week").round(1),
            "est_untapped_units_week",
            pl.col("resident_z").round(3),
            pl.col("gap_share").round(3),
            "priority",
            "rank",
            "confidence",
            "nearest_distributor_code",
            pl.col("km").round(1),
        )
        .with_columns(
            reason_zh=pl.concat_str(
                pl.lit("预计周需求 "),
                pl.col("expected_units_week").round(0).cast(pl.String),
                pl.lit(" 件 (同级城市 "),
                pl.col("tier_demand_units_week").round(0).cast(pl.String),
                pl.lit(" x 市场系数 "),
                pl.col("market_adjustment").cast(pl.String),
                pl.lit(" + 常住消费者 "),
                pl.col("resident_units_week").round(0).cast(pl.String),
                pl.lit(" + 外出购买 "),
                pl.col("visitor_units_week").round(0).cast(pl.String),
                pl.lit("), 现有 "),
                pl.col("stores").cast(pl.String),
                pl.lit(" 家门店供应 "),
                pl.col("served_units_week").round(0).cast(pl.String),
                pl.lit(" 件"),
            ),
            reason_en=pl.concat_str(
                pl.lit("expected "),
                pl.col("expected_units_week").round(0).cast(pl.String),
                pl.lit(" units a week (tier "),
                pl.col("tier_demand_units_week").round(0).cast(pl.String),
                pl.lit(" x market "),
                pl.col("market_adjustment").cast(pl.String),
                pl.lit(" + residents "),
                pl.col("resident_units_week").round(0).cast(pl.String),
                pl.lit(" + trips "),
                pl.col("visitor_units_week").round(0).cast(pl.String),
                pl.lit("); "),
                pl.col("stores").cast(pl.String),
                pl.lit(" stores serve "),
                pl.col("served_units_week").round(0).cast(pl.String),
            ),
        )
        .sort("rank")
    )


def _nearest_distributor(areas: pl.DataFrame, distributors: pl.DataFrame) -> pl.DataFrame:
    """adcode, nearest_distributor_code, km: the distributor whose seat is nearest the city
    seat, preferring one of the city's province (None when no seat is known)."""
    d = distributors.filter(pl.col("seat_lat").is_not_null() & pl.col("seat_lon").is_not_null())
    if d.is_empty():
        return pl.DataFrame(
            schema={"adcode": pl.String, "nearest_distributor_code": pl.String, "km": pl.Float64}
        )
    km = _km_matrix(
        areas["lat"].to_numpy(),
        areas["lon"].to_numpy(),
        d["seat_lat"].to_numpy(),
        d["seat_lon"].to_numpy(),
    )
    same = areas["province"].to_numpy()[:, None] == d["province"].to_numpy()[None, :]
    pick_same = np.where(same, km, np.inf)
    has_same = same.any(axis=1)
    best = np.where(has_same, pick_same.argmin(axis=1), km.argmin(axis=1))
    rows = np.arange(areas.height)
    return pl.DataFrame(
        {
            "adcode": areas["adcode"],
            "nearest_distributor_code": d["distributor_code"].gather(pl.Series(best)),
            "km": km[rows, best],
        }
    )


# --- 3. coverage plan -----------------------------------------------------------------


def coverage_plan(
    white: pl.DataFrame, stores: pl.DataFrame, n: int, capacity_quantile: float = 0.5
) -> pl.DataFrame:
    """Where to open `n` new outlets: down the white-space ranking (`white` sorted by
    rank), one outlet a city per round while untapped units are left, each adding
    min(untapped left, one outlet's capacity: the `capacity_quantile` of the weekly
    sell-in of stores of the city's tier) and served by the city's nearest distributor.
    The ranking, not the units estimate, orders the cities: the estimate understates
    the cities with resident evidence (see the module docstring).

    Returns outlet (1..), adcode, city, province, tier, h3 cell of the city seat,
    serving_distributor_code, km, expected_incremental_units_week, untapped_left_units_week;
    at most `n` rows (fewer when untapped demand runs out). The choice is greedy and made
    in outlet order, so the plan for any m < n is this plan's first m rows.
    """
    weekly = stores.with_columns(w=pl.col("sell_in_units") / pl.col("weeks_active"))
    caps = weekly.group_by("city_tier").agg(pl.col("w").quantile(capacity_quantile))
    overall = float(weekly["w"].quantile(capacity_quantile) or 0.0) if weekly.height else 0.0
    cap = {int(t): float(v) for t, v in caps.iter_rows() if t is not None and v is not None}
    left = dict(zip(white["adcode"], white["est_untapped_units_week"], strict=True))
    info = {r["adcode"]: r for r in white.iter_rows(named=True)}
    ranked = white.sort("rank")["adcode"].to_list()
    picks: list[tuple[str, float, float]] = []  # city, units added, untapped left after
    while len(picks) < n:
        round_picks = []
        for code in ranked:
            gain = min(left[code], cap.get(info[code]["tier"], overall))
            if gain > 1e-9 and len(picks) + len(round_picks) < n:
                left[code] -= gain
                round_picks.append((code, gain, left[code]))
        if not round_picks:
            break
        picks.extend(round_picks)
    rows = []
    for outlet, (best, gain, rest) in enumerate(picks, start=1):
        r = info[best]
        rows.append(
            {
                "outlet": outlet,
                "adcode": best,
                "city": r["city"],
                "province": r["province"],
                "region": r["region"],
                "tier": r["tier"],
                "cell": h3.latlng_to_cell(r["lat"], r["lon"], 7),
                "serving_distributor_code": r["nearest_distributor_code"],
                "km": r["km"],
                "expected_incremental_units_week": round(gain, 1),
                "untapped_left_units_week": round(rest, 1),
            }
        )
    schema = {
        "outlet": pl.Int64,
        "adcode": pl.String,
        "city": pl.String,
        "province": pl.String,
        "region": pl.String,
        "tier": pl.Int64,
        "cell": pl.String,
        "serving_distributor_code": pl.String,
        "km": pl.Float64,
        "expected_incremental_units_week": pl.Float64,
        "untapped_left_units_week": pl.Float64,
    }
    return pl.DataFrame(rows, schema=schema)


def area_cells(white: pl.DataFrame, stores: pl.DataFrame, resolution: int) -> pl.DataFrame:
    """H3 cells for the map: each city seat's cell (kind city, one row per city, with its
    estimated untapped units and rank) and each store's cell (kind store, stores counted),
    with the cell's boundary as a GeoJSON Polygon string (lon, lat)."""
    city = white.select(
        pl.lit("city").alias("kind"),
        "adcode",
        "lat",
        "lon",
        "est_untapped_units_week",
        "rank",
        pl.lit(0).alias("stores"),
    )
    st = (
        stores.filter(pl.col("lat").is_not_null() & pl.col("lon").is_not_null())
        .select(pl.lit("store").alias("kind"), "adcode", "lat", "lon")
        .with_columns(
            est_untapped_units_week=pl.lit(None, pl.Float64),
            rank=pl.lit(None, pl.Int64),
            stores=pl.lit(1),
        )
    )
    points = pl.concat([city, st], how="diagonal_relaxed")
    cells = [
        h3.latlng_to_cell(a, b, resolution)
        for a, b in zip(points["lat"], points["lon"], strict=True)
    ]
    points = points.with_columns(cell=pl.Series(cells, dtype=pl.String))
    # a city's cell is its own row (two seats in one coarse cell stay apart: a reader
    # scoped to one city's region sees that city's numbers only); stores are counted
    city_cells = points.filter(pl.col("kind") == "city").select(
        "kind", "cell", "adcode", "est_untapped_units_week", "rank", "stores"
    )
    store_cells = (
        points.filter(pl.col("kind") == "store")
        .group_by("kind", "cell")
        .agg(
            pl.col("adcode").first(),
            pl.col("est_untapped_units_week").max(),
            pl.col("rank").min(),
            pl.col("stores").sum(),
        )
    )
    out = pl.concat([city_cells, store_cells], how="vertical_relaxed")
    boundary = [
        json.dumps(
            {
                "type": "Polygon",
                "coordinates": [
                    [
                        [lng, lat]
                        for lat, lng in (*h3.cell_to_boundary(c), h3.cell_to_boundary(c)[0])
                    ]
                ],
            }
        )
        for c in out["cell"]
    ]
    return out.with_columns(
        resolution=pl.lit(resolution), boundary_geojson=pl.Series(boundary, dtype=pl.String)
    ).sort("kind", "cell", "adcode")


# --- 4. notes -------------------------------------------------------------------------


@functools.cache
def _china(path: Path = PROVINCES_GEOJSON) -> shapely.Geometry:
    """The union of the province outlines (shapely geometry; simplified outlines are
    repaired with `make_valid` first), prepared for fast predicates."""
    data = json.loads(path.read_text(encoding="utf-8"))
    shapes = [shapely.make_valid(shapely.geometry.shape(f["geometry"])) for f in data["features"]]
    china = shapely.union_all(shapes)
    shapely.prepare(china)
    return china


def outside_china(lat: np.ndarray, lon: np.ndarray, tolerance_km: float = 5.0) -> np.ndarray:
    """Whether each point lies outside every province outline by more than `tolerance_km`
    (the outlines are simplified; a shop on the coast is not in the sea)."""
    china = _china()
    points = shapely.points(lon, lat)
    tol = tolerance_km / 111.0
    return ~shapely.dwithin(china, points, tol)


def _notes(inputs: ChannelInputs) -> pl.DataFrame:
    """Stores in the sea or abroad (province outlines), the geography issues dbt found, and
    stores whose distance was imputed."""
    rows: list[dict[str, str]] = []
    s = inputs.stores.filter(pl.col("lat").is_not_null() & pl.col("lon").is_not_null())
    if s.height:
        out = outside_china(s["lat"].to_numpy(), s["lon"].to_numpy())
        for code, lat, lon in s.filter(pl.Series(out)).select("store_code", "lat", "lon").rows():
            rows.append(
                {
                    "subject": f"store {code}",
                    "issue": "outside_china_outline",
                    "reason_zh": f"门店坐标 ({lat:.4f}, {lon:.4f}) 不在任何省份范围内 (海上或境外)",
                    "reason_en": f"the store's coordinates ({lat:.4f}, {lon:.4f}) fall in no "
                    "province (in the sea or abroad): fix them in the DMS",
                }
            )
    if inputs.geo_issues is not None:
        for r in inputs.geo_issues.iter_rows(named=True):
            rows.append(
                {
                    "subject": f"{r['entity_type']} {r['code']}",
                    "issue": r["issue"],
                    "reason_zh": r["reason_zh"],
                    "reason_en": r["reason_en"],
                }
            )
    imputed = inputs.stores.filter("km_imputed")
    if imputed.height:
        rows.append(
            {
                "subject": f"{imputed.height} stores",
                "issue": "distance_imputed",
                "reason_zh": f"{imputed.height} 家门店无法计算配送距离, 已按经销商门店中位距离估算",
                "reason_en": f"{imputed.height} stores have no distance to their distributor; "
                "their distributor's median store distance is used",
            }
        )
    return pl.DataFrame(
        rows,
        schema={
            "subject": pl.String,
            "issue": pl.String,
            "reason_zh": pl.String,
            "reason_en": pl.String,
        },
    )
