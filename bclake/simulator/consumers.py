"""Consumers on the C side: who scans, who joins groups, who answers campaigns, who refers.

Every behaviour is driven by latent traits drawn in `world._consumers`
(value, price sensitivity, scenario, social), so tags and targeting can be
scored against them later. Scanning itself is in `scans`; here are group
membership and activity, coupon campaigns with their hold-outs, referrals and
registration (how and when each consumer, referees included, entered the CDP).
"""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import polars as pl

from bclake.simulator.lookup import numbered
from bclake.simulator.world import SCENARIO_CATEGORY, World

INTERACTION_TYPES = np.array(["message", "like", "checkin", "share"])
INTERACTION_P = np.array([0.5, 0.3, 0.15, 0.05])
HOLDOUT_SHARE = 0.2  # drawn consumers a campaign keeps from its coupon
CAMPAIGN_SHARE = 0.1  # of the consented registered consumers, drawn into a monthly campaign
CAMPAIGN_DAYS = 14  # a coupon is valid from the campaign's first day for this many days
MINI_PROGRAM_SHARE = 0.08  # consumers who sign up in the mini-program on their own
REFERRAL_RATE = 0.12  # monthly chance an active scanner refers someone, times `social`
REFERRAL_CHANNELS = np.array(["微信好友", "朋友圈", "社群"])
REGISTER_CHANNELS = np.array(["扫码", "社群", "小程序"])  # first scan, group join, mini-program
# register channel -> (share without gender, share without birth year) in the CDP profile
PROFILE_GAPS = {"扫码": (0.25, 0.4), "社群": (0.1, 0.15), "小程序": (0.05, 0.1), "裂变": (0.2, 0.3)}
NEVER = np.iinfo(np.int32).max  # day index of something that does not happen
CONSENT_WITHDRAW_SHARE = 0.04  # consented consumers who later withdraw marketing consent
CONSENT_WITHDRAW_DAYS = 730  # ... on a day drawn uniformly from [0, this)
PROMO_BASE, PROMO_SLOPE = 0.2, 2.0  # promotion units: pick weight x (base + slope * sensitivity)
BASKET_GAMMA = (3.0, 12.0)  # a campaign purchase: gamma(shape, scale) yuan plus the coupon value


class ConsumerPicker:
    """Draws which of a store's local consumers made a scan, weighted by scan propensity.

    Units sold at a promotion price go more often to price-sensitive shoppers
    (weight times `PROMO_BASE + PROMO_SLOPE * price_sensitivity`): deal-seekers
    stock up when the price is down, which is how their sensitivity shows in
    the scans a brand sees.
    """

    def __init__(self, world: World) -> None:
        propensity = world.consumers["scan_propensity"].to_numpy()
        sens = world.consumers["price_sensitivity"].to_numpy()
        home = world.consumers["home_store"].to_numpy()
        n_stores = len(world.stores)
        starts = np.searchsorted(home, np.arange(n_stores), side="left")
        ends = np.searchsorted(home, np.arange(n_stores), side="right")
        self.cum, self.lo, self.hi = self._ranges(propensity, starts, ends)
        promo = propensity * (PROMO_BASE + PROMO_SLOPE * sens)
        self.promo_cum, self.promo_lo, self.promo_hi = self._ranges(promo, starts, ends)

    @staticmethod
    def _ranges(
        weights: np.ndarray, starts: np.ndarray, ends: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        cum = np.cumsum(weights)
        before = np.concatenate([[0.0], cum])
        return cum, before[starts], before[ends]

    def pick(
        self, stores: np.ndarray, rng: np.random.Generator, promo: np.ndarray | None = None
    ) -> np.ndarray:
        """One consumer index per store in `stores`; `promo` marks units sold on promotion."""
        u = rng.random(len(stores))
        picked = self._pick(stores, u, self.cum, self.lo, self.hi)
        if promo is not None and promo.any():
            picked[promo] = self._pick(
                stores[promo], u[promo], self.promo_cum, self.promo_lo, self.promo_hi
            )
        return picked

    @staticmethod
    def _pick(
        stores: np.ndarray, u: np.ndarray, cum: np.ndarray, lo: np.ndarray, hi: np.ndarray
    ) -> np.ndarray:
        at = lo[stores] + u * (hi[stores] - lo[stores])
        return np.minimum(np.searchsorted(cum, at, side="right"), len(cum) - 1)


def response_probabilities(
    value: np.ndarray, sensitivity: np.ndarray, match: np.ndarray, coupon_value: float
) -> tuple[np.ndarray, np.ndarray]:
    """Chance of buying the campaign's category within its 14 days without / with a coupon.

    value, sensitivity, match (1.0 where the consumer's scenario over-indexes on
    the category, else 0.0): arrays of one length; coupon_value in yuan.
    Returns (p0, p1). Loyal heavy buyers would mostly buy anyway (p0 up to
    about 0.55: the "sure things" whose coupons are pure cost); the coupon
    persuades a share of the others that grows with price sensitivity and,
    with diminishing returns, with the coupon's value, so incremental response
    (p1 - p0) and response (p1) rank consumers differently.
    """
    loyal = np.minimum(value, 3.0) / 3.0
    p0 = 0.02 + 0.45 * loyal**1.5 + 0.08 * match
    persuaded = np.minimum(
        0.9,
        0.55 * sensitivity**2 * np.sqrt(coupon_value / 5.0) + 0.06 * match * sensitivity,
    )
    return p0, p0 + (1.0 - p0) * persuaded


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


def expected_basket(coupon_value: float) -> float:
    """Mean yuan of a campaign purchase (the gamma basket plus the coupon's value)."""
    return BASKET_GAMMA[0] * BASKET_GAMMA[1] + coupon_value


def consent_until(consent: np.ndarray, index: np.ndarray, salt: int) -> np.ndarray:
    """The first day each consumer no longer has marketing consent (int64, one per index).

    consent: the consent each gave at registration; index: their 0-based indices. -1
    for no consent; for the share `CONSENT_WITHDRAW_SHARE` who withdraw, a stable day of
    their own (`unit_draw`) in [0, CONSENT_WITHDRAW_DAYS); NEVER for the others.
    """
    withdraws = unit_draw(salt, index, 11) < CONSENT_WITHDRAW_SHARE
    on = (unit_draw(salt, index, 12) * CONSENT_WITHDRAW_DAYS).astype(np.int64)
    return np.where(~consent, -1, np.where(withdraws, on, NEVER)).astype(np.int64)


def marketing_consent(consent: np.ndarray, index: np.ndarray, salt: int, day: int) -> np.ndarray:
    """Marketing consent as of `day` (see `consent_until`)."""
    return consent_until(consent, index, salt) > day


def campaign(
    no: int,
    world: World,
    registered_before: np.ndarray,
    consented: np.ndarray,
    first_day: int,
    start: date,
    rng: np.random.Generator,
) -> tuple[dict, pl.DataFrame]:
    """One coupon campaign: a random tenth of the consented registered consumers, 20% held out.

    `registered_before` and `consented` (marketing consent on the first day) are
    boolean arrays over the world's consumers.

    Returns the campaign row and one row per drawn consumer with both
    potential outcomes (bought within 14 days without / with the coupon).
    """
    cats = world.categories
    category = cats[no % len(cats)]
    consumers = world.consumers
    eligible = np.nonzero(registered_before & consented)[0]
    size = min(len(eligible), max(20, int(CAMPAIGN_SHARE * len(eligible))))
    drawn = rng.choice(eligible, size=size, replace=False) if size else np.array([], dtype=int)
    treated = rng.random(size) >= HOLDOUT_SHARE
    match = np.array(
        [SCENARIO_CATEGORY.get(s) == category for s in consumers["scenario"].to_numpy()[drawn]],
        dtype=float,
    )
    u = rng.random(size)
    coupon_value = float(rng.choice([2.0, 3.0, 5.0]))
    p0, p1 = response_probabilities(
        consumers["value"].to_numpy()[drawn],
        consumers["price_sensitivity"].to_numpy()[drawn],
        match,
        coupon_value,
    )
    day = first_day + rng.integers(0, CAMPAIGN_DAYS, size=size)
    row = {
        "campaign_id": f"CP{no:04d}",
        "campaign_name": f"{category}{coupon_value:.0f}元券",
        "category": category,
        "start_date": start + timedelta(days=first_day),
        "end_date": start + timedelta(days=first_day + CAMPAIGN_DAYS - 1),
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
            "basket": np.round(rng.gamma(*BASKET_GAMMA, size=size) + coupon_value, 2),
        }
    )
    return row, members


def no_visits() -> pl.DataFrame:
    """An empty frame of store visits: s, c, day, seconds, order_amount, coupon_id, rating."""
    return pl.DataFrame(
        schema={
            "s": pl.Int64,
            "c": pl.Int64,
            "day": pl.Int32,
            "seconds": pl.Int64,
            "order_amount": pl.Float64,
            "coupon_id": pl.String,
            "rating": pl.Int64,
        }
    )


def coupons_and_purchases(
    row: dict, drawn: pl.DataFrame, world: World, coupon_numbers: np.ndarray, first_day: int
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The treated arm's coupons and every drawn consumer's purchase at their home store.

    `row` and `drawn` come from `campaign`; `coupon_numbers` holds one number per
    treated consumer. Returns (coupons: c, coupon_id, redeemed, s, day,
    seconds, basket, expire_day, with the campaign's row fields; purchases in
    the shape of `no_visits()`, a coupon id where the buyer redeemed one).
    """
    home = world.consumers["home_store"].to_numpy()
    treated = drawn.filter(pl.col("treated"))
    coupons = treated.with_columns(
        coupon_id=pl.Series([f"CU{i:09d}" for i in coupon_numbers], dtype=pl.String),
        redeemed=pl.col("y1"),
        s=pl.Series(home[treated["c"].to_numpy()]).cast(pl.Int64),
        campaign_id=pl.lit(row["campaign_id"]),
        issued_date=pl.lit(row["start_date"]),
        expire_date=pl.lit(row["end_date"]),
        face_value=pl.lit(row["coupon_value"]),
        expire_day=pl.lit(first_day + CAMPAIGN_DAYS - 1),
    )
    bought = pl.when(pl.col("treated")).then(pl.col("y1")).otherwise(pl.col("y0"))
    buyers = drawn.filter(bought)
    buyers = buyers.with_columns(s=pl.Series(home[buyers["c"].to_numpy()]).cast(pl.Int64))
    purchases = buyers.join(coupons.select("c", "coupon_id"), on="c", how="left").select(
        "s",
        "c",
        "day",
        "seconds",
        order_amount="basket",
        coupon_id="coupon_id",
        rating=pl.lit(None, pl.Int64),
    )
    return coupons, purchases.cast(no_visits().schema)


def first_scans(first_scan: np.ndarray, genuine: pl.DataFrame) -> None:
    """Lower each consumer's first-scan day (in place) by the genuine scans `genuine` (c, day)."""
    firsts = genuine.group_by("c").agg(pl.col("day").min())
    c_idx = firsts["c"].to_numpy()
    first_scan[c_idx] = np.minimum(first_scan[c_idx], firsts["day"].to_numpy())


def referrals(
    scanners: np.ndarray, world: World, first_day: int, last_day: int, rng: np.random.Generator
) -> pl.DataFrame:
    """Active scanners bring in new consumers, the social ones most.

    `scanners` are the consumers with a genuine scan in [first_day, last_day].
    Returns referrer (consumer index) and day, one row per new consumer.
    """
    active = np.unique(scanners)
    social = world.consumers["social"].to_numpy()[active]
    span = (last_day - first_day + 1) / 30  # the monthly chance, for any period length
    referrers = active[rng.random(len(active)) < REFERRAL_RATE * social * span]
    return pl.DataFrame(
        {
            "referrer": referrers.astype(np.int64),
            "day": rng.integers(first_day, last_day + 1, len(referrers)).astype(np.int32),
        }
    )


def mini_program_days(n: int, horizon_days: int, rng: np.random.Generator) -> np.ndarray:
    """Per consumer, the day they sign up in the mini-program on their own (`NEVER` for most)."""
    return np.where(
        rng.random(n) < MINI_PROGRAM_SHARE, rng.integers(-300, horizon_days, n), NEVER
    ).astype(np.int64)


def unit_draw(salt: int, index: np.ndarray, field: int) -> np.ndarray:
    """A uniform draw in [0, 1) that depends only on (salt, index, field).

    Stable across snapshots and continued runs, unlike a generator's next
    values (a splitmix64 hash of the index).
    """
    with np.errstate(over="ignore"):
        z = (
            index.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15)
            + np.uint64(salt)
            + np.uint64(field) * np.uint64(0xD1B54A32D192ED03)
        )
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    return (z >> np.uint64(11)).astype(np.float64) / 2.0**53


def registered(
    world: World,
    members: pl.DataFrame,
    first_scan: np.ndarray,
    mini_program_day: np.ndarray,
    referrals: list[pl.DataFrame],
    salt: int,
    end_day: int,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Every consumer registered by `end_day`, with how and when, referees included.

    A world consumer registers at the first of their first genuine scan, group
    join or mini-program sign-up; each referral brings a new consumer whose
    profile is a function of their index (every snapshot agrees). Returns
    (consumers: the world's consumer columns with consumer_id, register_day and
    register_channel; referrals: referrer, day, referee as 0-based indices).
    """
    c = world.consumers
    n = len(c)
    join = np.full(n, NEVER, dtype=np.int64)
    joined = members.filter(pl.col("join_day") <= end_day)
    np.minimum.at(join, joined["c"].to_numpy(), joined["join_day"].to_numpy())
    channels = np.stack([first_scan, join, mini_program_day])
    reg_day = channels.min(axis=0)
    how = REGISTER_CHANNELS[channels.argmin(axis=0)]
    consent = marketing_consent(c["consent_marketing"].to_numpy(), np.arange(n), salt, end_day)
    pool = c.with_columns(
        register_day=pl.Series(reg_day),
        register_channel=pl.Series(how),
        consent_marketing=pl.Series(consent),
    )
    pool = pool.filter(pl.Series(reg_day <= end_day))
    refs = (
        pl.concat(referrals)
        if referrals
        else pl.DataFrame(schema={"referrer": pl.Int64, "day": pl.Int32})
    )
    refs = refs.sort("day", "referrer").with_columns(
        referee=pl.Series(np.arange(n, n + refs.height), dtype=pl.Int64)
    )
    idx = refs["referee"].to_numpy()
    phone = 13 * 10**9 + (unit_draw(salt, idx, 1) * 6 * 10**9).astype(np.int64)
    referees = c[refs["referrer"].to_numpy()].with_columns(
        consumer_id=numbered("C", idx + 1, 9),
        phone=pl.Series(phone).cast(pl.String),
        gender=pl.Series(np.where(unit_draw(salt, idx, 2) < 0.58, "F", "M")),
        birth_year=pl.Series(1960 + (unit_draw(salt, idx, 3) * 45).astype(np.int64)),
        register_day=refs["day"].cast(pl.Int64),
        register_channel=pl.lit("裂变"),
        consent_marketing=pl.Series(
            marketing_consent(
                c["consent_marketing"].to_numpy()[refs["referrer"].to_numpy()], idx, salt, end_day
            )
        ),
    )
    return pl.concat([pool, referees.select(pool.columns)]), refs


def with_profile_gaps(consumers: pl.DataFrame, salt: int) -> pl.DataFrame:
    """The profile as the CDP holds it: gender and birth year missing at each channel's rates.

    Gaps are a fixed property of each consumer, not redrawn per snapshot.
    """
    ch = consumers["register_channel"].to_numpy()
    number = consumers["consumer_id"].str.slice(1).cast(pl.Int64).to_numpy()
    no_gender = unit_draw(salt, number, 4) < np.array([PROFILE_GAPS[x][0] for x in ch])
    no_birth = unit_draw(salt, number, 5) < np.array([PROFILE_GAPS[x][1] for x in ch])
    return consumers.with_columns(
        gender=pl.when(pl.Series(no_gender)).then(None).otherwise(pl.col("gender")),
        birth_year=pl.when(pl.Series(no_birth)).then(None).otherwise(pl.col("birth_year")),
    )
