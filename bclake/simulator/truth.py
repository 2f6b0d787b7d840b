"""The hidden truth of a simulated world, written apart from the exports.

Only evaluation reads `truth/`; the pipeline never does. It holds the latent
traits, the labels of every planted event (diverted, forged, cloned and farmed
scans, reused display photos, the DMS's payment errors), what the incentive
programmes truly earn, campaign potential outcomes and the tag each entity deserves.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import polars as pl

from bclake.simulator.config import ScaleConfig
from bclake.simulator.dynamics import DayRecord, stack_days
from bclake.simulator.economics import economics
from bclake.simulator.lookup import Lookup, check_id, consumer_id
from bclake.simulator.state import SimState
from bclake.simulator.world import REGIONS, World

SEASONAL_CATEGORIES = ("饮料", "礼盒")


def write_truth(state: SimState, truth: Path, end_day: int) -> None:
    """Latent traits and labels as of `end_day`; per-period parts are already in place.

    Expects `truth/consumers.parquet` (from `write_consumers`) and the
    `demand_daily` parts up to `end_day`, which the deserved tags are computed from.
    A world with a scenario also gets `scenario.parquet`, one row per shock.
    """
    cfg, world, promos, signups = state.cfg, state.world, state.promos, state.signups
    truth.mkdir(parents=True, exist_ok=True)
    world.products.write_parquet(truth / "products.parquet")
    world.stores.write_parquet(truth / "stores.parquet")
    world.distributors.write_parquet(truth / "distributors.parquet")
    state.diversion.plan.with_columns(
        start_date=pl.lit(cfg.start) + pl.duration(days=pl.col("start_day")),
        end_date=pl.lit(cfg.start) + pl.duration(days=pl.col("end_day") - 1),
    ).write_parquet(truth / "diversion_plan.parquet")
    promos.with_columns(
        region=pl.col("region_idx").replace_strict(dict(enumerate(REGIONS))),
        sku_code=world.products["sku_code"].gather(promos["sku_idx"]),
        start_date=pl.lit(cfg.start) + pl.duration(days=pl.col("start_day")),
        end_date=pl.lit(cfg.start) + pl.duration(days=pl.col("end_day") - 1),
        signed_stores=pl.col("promo_no").replace_strict(
            dict(signups.group_by("promo_no").len().iter_rows()), default=0
        ),
    ).write_parquet(truth / "promotions.parquet")
    state.calendar.head(len(state.stockouts)).with_columns(
        censored_store_skus=pl.Series(state.stockouts)
    ).write_parquet(truth / "calendar.parquet")
    deserved_tags(cfg, world, truth, end_day).write_parquet(truth / "deserved_tags.parquet")
    if state.scenario is not None:
        state.scenario.frame(cfg.start, world).write_parquet(truth / "scenario.parquet")
    write_channel(state, truth)


def write_channel(state: SimState, truth: Path) -> None:
    """The channel-optimisation truth: areas, entity economics and the residents.

    - `channel_areas.parquet`, one row per city: adcode, city, province, tier,
      population, income_index, potential_units_week, stores, true_coverage,
      untapped_units_week, planted, deserved_rank (1 = most untapped), and the
      seat's lat and lon (degrees);
    - `channel_economics.parquet`, one row per store and distributor
      (`economics.economics`): the true P&L over the simulated days, whether it
      is unprofitable and the action it deserves;
    - `channel_residents.parquet`: the consumers who live in an untapped city
      near their store (consumer_id, home_city, store_code, store_city).

    Rebates are what the incentive programmes truly earned (`incentive_earned`).
    """
    geo, world = state.geography, state.world
    if geo is None or state.costs is None or state.channel_book is None:
        return
    geo.areas.select(
        "adcode",
        "city",
        "province",
        "tier",
        "population",
        "income_index",
        "potential_units_week",
        "stores",
        "true_coverage",
        "untapped_units_week",
        "planted",
        "deserved_rank",
        "lat",
        "lon",
    ).sort("deserved_rank").write_parquet(truth / "channel_areas.parquet")
    parts = sorted((truth / "incentive_earned").glob("*.parquet"))
    earned = (
        pl.concat([pl.read_parquet(p).select("payee_code", "amount") for p in parts])
        if parts
        else pl.DataFrame(schema={"payee_code": pl.String, "amount": pl.Float64})
    )
    economics(world, state.costs, state.channel_book, earned).write_parquet(
        truth / "channel_economics.parquet"
    )
    c = world.consumers
    stores = world.stores
    residents = c.filter(pl.col("resident")) if "resident" in c.columns else c.clear()
    home = residents["home_store"].to_numpy() if residents.height else []
    residents.select(
        "consumer_id",
        "home_city",
        store_code=stores["store_code"].gather(pl.Series(home, dtype=pl.Int64)),
        store_city=stores["city"].gather(pl.Series(home, dtype=pl.Int64)),
    ).write_parquet(truth / "channel_residents.parquet")


def write_part(truth: Path, name: str, label: str, frame: pl.DataFrame) -> None:
    """Write `truth/<name>/<label>.parquet`, appending when the part exists already."""
    part = truth / name / f"{label}.parquet"
    part.parent.mkdir(parents=True, exist_ok=True)
    if part.exists():  # a second campaign in one period: append
        frame = pl.concat([pl.read_parquet(part), frame], how="vertical_relaxed")
    frame.write_parquet(part)


def write_demand(truth: Path, label: str, days: list[DayRecord], lookup: Lookup) -> None:
    """Uncensored demand next to what was sold, per store, SKU and day (`demand_daily`)."""
    demand = stack_days(days, "demand", ["s", "k", "demand", "stock_end"])
    sold = stack_days(days, "sales", ["s", "k", "sales", "price"]).drop("price")
    # every sale answers some demand, so the demand rows cover all sold rows
    both = demand.join(sold, on=["s", "k", "day"], how="left").fill_null(0)
    part = truth / "demand_daily" / f"{label}.parquet"
    part.parent.mkdir(parents=True, exist_ok=True)
    lookup.with_keys(both).select(
        "date", "store_code", "sku_code", "demand", "sales", "stock_end"
    ).sort("date", "store_code", "sku_code").write_parquet(part)


def write_scan_labels(truth: Path, label: str, scans: pl.DataFrame, lookup: Lookup) -> None:
    """Each scan's label (normal, diverted, forged, cloned, farmed) and its distributors."""
    dist = pl.lit(pl.Series(lookup.dist_codes))
    write_part(
        truth,
        "scan_labels",
        label,
        scans.select(
            "scan_id",
            "product_code",
            "label",
            activated_distributor=dist.gather(pl.col("activated_d")),
            selling_distributor=dist.gather(pl.col("selling_d")),
        ),
    )


def write_campaign_outcomes(truth: Path, label: str, row: dict, drawn: pl.DataFrame) -> None:
    """Both potential outcomes of every consumer a campaign drew, and the arm they were in."""
    write_part(
        truth,
        "campaign_outcomes",
        label,
        drawn.with_columns(
            campaign_id=pl.lit(row["campaign_id"]), consumer_id=consumer_id("c")
        ).drop("c", "seconds"),
    )


def write_consumers(truth: Path, consumers: pl.DataFrame) -> None:
    """Latent traits, registration and marketing consent (as of the snapshot) of every
    registered consumer, referees included."""
    truth.mkdir(parents=True, exist_ok=True)
    consumers.select(
        "consumer_id",
        "scenario",
        "value",
        "price_sensitivity",
        "social",
        "scan_propensity",
        "register_channel",
        "register_day",
        "consent_marketing",
    ).write_parquet(truth / "consumers.parquet")


def deserved_tags(cfg: ScaleConfig, world: World, truth: Path, end_day: int) -> pl.DataFrame:
    """The tag each entity deserves by its latent traits and true (uncensored) demand."""
    end = cfg.start + timedelta(days=end_day)
    recent = pl.scan_parquet(truth / "demand_daily" / "*.parquet").filter(
        pl.col("date") > end - timedelta(days=90)
    )
    prices = world.products.select("sku_code", "retail_price").lazy()
    store_value = (
        recent.join(prices, on="sku_code")
        .group_by("store_code")
        .agg((pl.col("demand") * pl.col("retail_price")).sum().alias("value"))
        .collect(engine="streaming")
    )
    stores = (
        world.stores.select("store_code", "engagement", "distributor_code")
        .join(store_value, on="store_code", how="left")
        .fill_null(0)
    )
    hi, lo = stores["value"].quantile(0.8), stores["value"].quantile(0.2)
    tags = [
        stores.filter(pl.col("value") >= hi).select(
            entity_id="store_code", tag=pl.lit("high_contribution_store")
        ),
        stores.filter(
            pl.col("value") < hi, pl.col("engagement") >= 0.65, pl.col("value") > lo
        ).select(entity_id="store_code", tag=pl.lit("potential_store")),
        stores.filter(pl.col("value") <= lo).select(
            entity_id="store_code", tag=pl.lit("slow_moving_store")
        ),
    ]
    dist_value = stores.group_by("distributor_code").agg(pl.col("value").sum())
    tags.append(
        dist_value.filter(pl.col("value") >= dist_value["value"].quantile(0.8)).select(
            entity_id="distributor_code", tag=pl.lit("core_distributor")
        )
    )
    units = (
        pl.scan_parquet(truth / "demand_daily" / "*.parquet")
        .filter(pl.col("date") > end - timedelta(days=365))
        .group_by("sku_code")
        .agg(pl.col("demand").sum())
        .collect(engine="streaming")
    )
    products = world.products.join(units, on="sku_code", how="left").fill_null(0)
    tags += [
        products.filter(pl.col("demand") >= products["demand"].quantile(0.8)).select(
            entity_id="sku_code", tag=pl.lit("hit_product")
        ),
        products.filter(pl.col("demand") <= products["demand"].quantile(0.4)).select(
            entity_id="sku_code", tag=pl.lit("long_tail_product")
        ),
        products.filter(pl.col("launch_date") > end - timedelta(days=180)).select(
            entity_id="sku_code", tag=pl.lit("new_product")
        ),
        products.filter(pl.col("category").is_in(SEASONAL_CATEGORIES)).select(
            entity_id="sku_code", tag=pl.lit("seasonal_product")
        ),
    ]
    consumers = pl.read_parquet(truth / "consumers.parquet")
    tags += [
        consumers.filter(pl.col("value") >= consumers["value"].quantile(0.8)).select(
            entity_id="consumer_id", tag=pl.lit("high_value_user")
        ),
        consumers.filter(pl.col("price_sensitivity") >= 0.55).select(
            entity_id="consumer_id", tag=pl.lit("price_sensitive_user")
        ),
        consumers.filter(pl.col("scenario") != "大众").select(
            entity_id="consumer_id", tag=pl.format("scenario_user:{}", pl.col("scenario"))
        ),
        consumers.filter(pl.col("register_day") >= end_day - 30).select(
            entity_id="consumer_id", tag=pl.lit("new_user")
        ),
    ]
    out = pl.concat(tags)
    return (
        out.with_columns(
            entity_type=pl.col("tag")
            .str.extract(r"_(store|distributor|product|user)", 1)
            .replace({"distributor": "channel", "store": "channel"}),
            as_of_date=pl.lit(end),
        )
        .select("entity_type", "entity_id", "tag", "as_of_date")
        .sort("entity_type", "tag", "entity_id")
    )


REWARD_FRAUD_SCHEMA = {
    "kind": pl.String,
    "event_id": pl.String,
    "store_code": pl.String,
    "event_date": pl.Date,
    "consumer_id": pl.String,
    "source_check_id": pl.String,
}


def write_reward_fraud(
    truth: Path, label: str, reused: pl.DataFrame, farmed: pl.DataFrame, lookup: Lookup
) -> None:
    """Planted reward fraud (`reward_fraud`): reused display photos and farmed product scans.

    `reused` has m, s, src_m, src_s and the check's day; `farmed` the written
    product scans labelled `farmed` (scan_id, s, scan_date, c). Columns: kind
    (`photo_reuse` | `scan_farming`), event_id (check_id | scan_id), store_code,
    event_date, consumer_id (the farming account; null for photo reuse),
    source_check_id (the check whose photo was reused; null for farming).
    """
    stores = pl.Series(lookup.store_codes, dtype=pl.String)
    parts = []
    if reused.height:
        parts.append(
            reused.select(
                kind=pl.lit("photo_reuse"),
                event_id=check_id(pl.col("m"), pl.col("s")),
                store_code=stores.gather(reused["s"]),
                event_date=lookup.date_of("day"),
                consumer_id=pl.lit(None, pl.String),
                source_check_id=check_id(pl.col("src_m"), pl.col("src_s")),
            )
        )
    if farmed.height:
        parts.append(
            farmed.select(
                kind=pl.lit("scan_farming"),
                event_id="scan_id",
                store_code=stores.gather(farmed["s"]),
                event_date="scan_date",
                consumer_id=consumer_id("c"),
                source_check_id=pl.lit(None, pl.String),
            )
        )
    if parts:
        frame = pl.concat([p.cast(REWARD_FRAUD_SCHEMA) for p in parts])
        write_part(truth, "reward_fraud", label, frame)
