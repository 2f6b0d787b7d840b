"""Consumers on the C side: who scans, who joins groups, who answers campaigns, who refers.

Every behaviour is driven by latent traits drawn in `world._consumers`
(value, price sensitivity, scenario, social), so tags and targeting can be
scored against them later.
"""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import polars as pl

from bclake.simulator.world import SCENARIO_CATEGORY, World

INTERACTION_TYPES = np.array(["message", "like", "checkin", "share"])
INTERACTION_P = np.array([0.5, 0.3, 0.15, 0.05])


class ConsumerPicker:
    """Draws which of a store's local consumers made a scan, weighted by scan propensity."""

    def __init__(self, world: World) -> None:
        weights = world.consumers["scan_propensity"].to_numpy()
        self.cum = np.cumsum(weights)
        home = world.consumers["home_store"].to_numpy()
        n_stores = len(world.stores)
        starts = np.searchsorted(home, np.arange(n_stores), side="left")
        ends = np.searchsorted(home, np.arange(n_stores), side="right")
        before = np.concatenate([[0.0], self.cum])
        self.lo, self.hi = before[starts], before[ends]

    def pick(self, stores: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        u = self.lo[stores] + rng.random(len(stores)) * (self.hi[stores] - self.lo[stores])
        return np.minimum(np.searchsorted(self.cum, u, side="right"), len(self.cum) - 1)


def group_members(world: World, start: date, n_days: int, rng: np.random.Generator) -> pl.DataFrame:
    """Consumers of a group's store join it, the more social the likelier."""
    groups = world.groups
    home = world.consumers["home_store"].to_numpy()  # consumers are contiguous by home store
    social = world.consumers["social"].to_numpy()
    lo = np.searchsorted(home, groups["store_idx"].to_numpy(), side="left")
    hi = np.searchsorted(home, groups["store_idx"].to_numpy(), side="right")
    rows_g, rows_c, rows_d = [], [], []
    for g, created in enumerate(groups["created_date"]):
        pool = np.arange(lo[g], hi[g])
        joined = pool[rng.random(len(pool)) < 0.05 + 0.5 * social[pool]]
        first = max((created - start).days, -200)
        days = rng.integers(first, max(first + 1, n_days), size=len(joined))
        rows_g.append(np.full(len(joined), g, dtype=np.int32))
        rows_c.append(joined.astype(np.int64))
        rows_d.append(days)
    return pl.DataFrame(
        {
            "g": np.concatenate(rows_g),
            "c": np.concatenate(rows_c),
            "join_day": np.concatenate(rows_d).astype(np.int32),
        }
    )


def interactions(
    members: pl.DataFrame, world: World, first_day: int, last_day: int, rng: np.random.Generator
) -> pl.DataFrame:
    """Group activity in [first_day, last_day]: social members talk more, less as time passes."""
    active = members.filter(pl.col("join_day") <= last_day)
    if active.is_empty():
        return pl.DataFrame(
            schema={
                "g": pl.Int32,
                "c": pl.Int64,
                "day": pl.Int32,
                "seconds": pl.Int64,
                "type": pl.String,
            }
        )
    social = world.consumers["social"].to_numpy()[active["c"].to_numpy()]
    months_in = np.maximum(0, (last_day - active["join_day"].to_numpy()) / 30)
    days = last_day - np.maximum(first_day, active["join_day"].to_numpy()) + 1
    rate = (0.1 + 2.5 * social) * np.exp(-months_in / 12) * days / 7
    n = rng.poisson(rate)
    idx = np.repeat(np.arange(active.height), n)
    lo = np.maximum(first_day, active["join_day"].to_numpy())[idx]
    day = lo + (rng.random(len(idx)) * (last_day - lo + 1)).astype(np.int32)
    return pl.DataFrame(
        {
            "g": active["g"].to_numpy()[idx],
            "c": active["c"].to_numpy()[idx],
            "day": day.astype(np.int32),
            "seconds": rng.integers(7 * 3600, 23 * 3600, size=len(idx)),
            "type": INTERACTION_TYPES[rng.choice(4, size=len(idx), p=INTERACTION_P)],
        }
    )


def campaign(
    no: int,
    world: World,
    registered_before: np.ndarray,
    first_day: int,
    start: date,
    rng: np.random.Generator,
) -> tuple[dict, pl.DataFrame]:
    """One coupon campaign: a random draw of consented registered consumers, 20% held out.

    Returns the campaign row and one row per drawn consumer with both
    potential outcomes (bought within 14 days without / with the coupon).
    """
    cats = world.categories
    category = cats[no % len(cats)]
    consumers = world.consumers
    eligible = np.nonzero(registered_before & consumers["consent_marketing"].to_numpy())[0]
    size = min(len(eligible), max(20, int(0.04 * len(eligible))))
    drawn = rng.choice(eligible, size=size, replace=False) if size else np.array([], dtype=int)
    treated = rng.random(size) >= 0.2
    value = np.minimum(consumers["value"].to_numpy()[drawn], 3.0) / 3.0
    sens = consumers["price_sensitivity"].to_numpy()[drawn]
    match = np.array(
        [SCENARIO_CATEGORY.get(s) == category for s in consumers["scenario"].to_numpy()[drawn]],
        dtype=float,
    )
    p0 = 0.03 + 0.10 * value
    p1 = np.minimum(0.95, p0 + 0.30 * sens**1.5 + 0.10 * match)
    u = rng.random(size)
    coupon_value = float(rng.choice([2.0, 3.0, 5.0]))
    day = first_day + rng.integers(0, 14, size=size)
    row = {
        "campaign_id": f"CP{no:04d}",
        "campaign_name": f"{category}{coupon_value:.0f}元券",
        "category": category,
        "start_date": start + timedelta(days=first_day),
        "end_date": start + timedelta(days=first_day + 13),
        "coupon_value": coupon_value,
        "target_size": int(size),
        "holdout_size": int((~treated).sum()),
    }
    members = pl.DataFrame(
        {
            "c": drawn.astype(np.int64),
            "treated": treated,
            "p0": p0,
            "p1": p1,
            "y0": u < p0,
            "y1": u < p1,
            "day": day.astype(np.int32),
            "seconds": rng.integers(9 * 3600, 22 * 3600, size=size),
            "basket": np.round(rng.gamma(3.0, 12.0, size=size) + coupon_value, 2),
        }
    )
    return row, members
