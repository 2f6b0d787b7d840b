"""The hidden truth of a simulated world, written apart from the exports.

Only evaluation reads `truth/`; the pipeline never does. It holds the latent
traits, the labels of every planted event (diverted, forged and cloned scans),
campaign potential outcomes and the tag each entity deserves.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import polars as pl

from bclake.simulator.config import ScaleConfig
from bclake.simulator.world import REGIONS, World

SEASONAL_CATEGORIES = ("饮料", "礼盒")


def write_truth(
    cfg: ScaleConfig,
    world: World,
    writer,
    promos: pl.DataFrame,
    signups: pl.DataFrame,
    calendar: pl.DataFrame,
    stockouts: list[int],
    truth: Path,
    end_day: int,
) -> None:
    """Latent traits and labels as of `end_day`; per-period parts are already in place."""
    truth.mkdir(parents=True, exist_ok=True)
    world.products.write_parquet(truth / "products.parquet")
    world.stores.write_parquet(truth / "stores.parquet")
    world.distributors.write_parquet(truth / "distributors.parquet")
    writer.truth_extra["diversion_plan"].write_parquet(truth / "diversion_plan.parquet")
    writer.truth_extra["consumers"].write_parquet(truth / "consumers.parquet")
    promos.with_columns(
        region=pl.col("region_idx").replace_strict(dict(enumerate(REGIONS))),
        sku_code=world.products["sku_code"].gather(promos["sku_idx"]),
        start_date=pl.lit(cfg.start) + pl.duration(days=pl.col("start_day")),
        end_date=pl.lit(cfg.start) + pl.duration(days=pl.col("end_day") - 1),
        signed_stores=pl.col("promo_no").replace_strict(
            dict(signups.group_by("promo_no").len().iter_rows()), default=0
        ),
    ).write_parquet(truth / "promotions.parquet")
    calendar.head(len(stockouts)).with_columns(
        censored_store_skus=pl.Series(stockouts)
    ).write_parquet(truth / "calendar.parquet")
    deserved_tags(cfg, world, truth, end_day).write_parquet(truth / "deserved_tags.parquet")


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
