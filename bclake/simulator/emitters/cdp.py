"""CDP exports: community groups and members, interactions, campaigns, campaign members,
coupons, consumers and referrals."""

from __future__ import annotations

from datetime import timedelta

import polars as pl

from bclake.simulator.consumers import REFERRAL_CHANNELS
from bclake.simulator.emitters.out import Out
from bclake.simulator.lookup import consumer_id, numbered
from bclake.simulator.world import World


def masters(out: Out, world: World) -> None:
    out.landing.write("cdp.community_groups", world.groups, "community_groups")


def campaign_members(out: Out, label: str, row: dict, drawn: pl.DataFrame) -> None:
    """Everyone a campaign drew, by arm, assigned the day before it starts."""
    members = drawn.with_columns(
        campaign_id=pl.lit(row["campaign_id"]),
        consumer_id=consumer_id("c"),
        arm=pl.when(pl.col("treated")).then(pl.lit("treated")).otherwise(pl.lit("holdout")),
        assigned_date=pl.lit(row["start_date"] - timedelta(days=1)),
    )
    out.landing.write("cdp.campaign_members", members, f"campaign_members_{label}")


def coupons(out: Out, month: str, coupons: list[pl.DataFrame]) -> None:
    """Coupons (from `consumers.coupons_and_purchases`) as the CDP lists them once expired."""
    if not coupons:
        return
    look = out.lookup
    frame = pl.concat(coupons)
    redeemed = pl.col("redeemed")
    frame = frame.with_columns(
        consumer_id=consumer_id("c"),
        redeemed_time=pl.when(redeemed).then(look.time_of()),
        redeemed_store_code=pl.when(redeemed).then(
            pl.lit(pl.Series(look.store_codes, dtype=pl.String)).gather(pl.col("s"))
        ),
        order_amount=pl.when(redeemed).then(pl.col("basket")),
    )
    out.landing.write("cdp.coupons", frame, f"coupons_{month}")


def interactions(out: Out, month: str, acts: pl.DataFrame, world: World) -> None:
    """Group interactions (g, c, day, seconds, type), numbered in time order."""
    look = out.lookup
    acts = acts.sort("day", "seconds", "c", maintain_order=True)
    acts = acts.with_columns(
        interaction_id=numbered("IN", out.serials.take("interaction", acts.height), 10),
        group_id=world.groups["group_id"].gather(acts["g"]),
        consumer_id=consumer_id("c"),
        interaction_type=pl.col("type"),
        interaction_time=look.time_of(),
    ).with_columns(interaction_date=pl.col("interaction_time").dt.date())
    out.landing.write("cdp.interactions", acts, f"interactions_{month}")


def campaigns(out: Out, label: str, rows: list[dict]) -> None:
    if rows:
        out.landing.write("cdp.campaigns", pl.DataFrame(rows), f"campaigns_{label}")


def group_members(out: Out, label: str, members: pl.DataFrame, world: World, end_day: int) -> None:
    """Snapshot of every group membership (g, c, join_day) that began by `end_day`."""
    frame = (
        members.filter(pl.col("join_day") <= end_day)
        .with_columns(
            group_id=pl.lit(world.groups["group_id"]).gather(pl.col("g")),
            consumer_id=consumer_id("c"),
            join_date=out.lookup.date_of("join_day"),
        )
        .sort("join_day", "g", "c")
    )
    out.landing.write("cdp.group_members", frame, f"group_members_{label}")


def consumers(out: Out, label: str, consumers: pl.DataFrame) -> None:
    """Snapshot of the registered consumers' profiles (from `consumers.with_profile_gaps`)."""
    frame = consumers.with_columns(register_date=out.lookup.date_of("register_day")).sort(
        "register_day", "consumer_id"
    )
    out.landing.write("cdp.consumers", frame, f"consumers_{label}")


def referrals(out: Out, label: str, refs: pl.DataFrame, n_world: int, since: int) -> None:
    """Referrals (referrer, day, referee indices) made after day `since`.

    Referees are numbered after the `n_world` consumers of the world; the
    channel a referral came through is a function of the referee's index.
    """
    new = refs.filter(pl.col("day") > since)
    if new.is_empty():
        return
    frame = new.with_columns(
        referral_id=pl.format(
            "RF{}", (pl.col("referee") - n_world + 1).cast(pl.String).str.zfill(8)
        ),
        referrer_id=consumer_id("referrer"),
        referee_id=consumer_id("referee"),
        referral_date=out.lookup.date_of("day"),
        channel=pl.Series(REFERRAL_CHANNELS[new["referee"].to_numpy() % 3]),
    )
    out.landing.write("cdp.referrals", frame, f"referrals_{label}")
