"""Consumers scanning codes: product scans of sold units, forged and cloned codes, store codes.

A share of sold units is scanned near the store by one of its local
consumers; the code on the unit is the next in its distributor's FIFO stream,
or, in a diverter's target province, a unit activated to the diverter.
Forged codes (never issued) and clones (a real code scanned far from where it
was sold) are added on top. After a share of product scans the consumer also
scans the store's own code, sometimes with a rating.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from bclake.core.codes import make_codes
from bclake.simulator.codes import CodeLedger, Diversion, forged_bodies
from bclake.simulator.config import ScaleConfig
from bclake.simulator.consumers import ConsumerPicker
from bclake.simulator.geography import HOME_SCAN_JITTER_DEG, HOME_SCAN_SHARE
from bclake.simulator.lookup import Lookup, add_months
from bclake.simulator.world import TIER_WEIGHT, World

REWARDS = np.array([0.0, 0.3, 0.5, 1.0, 2.0])  # yuan paid out per scan
REWARD_P = np.array([0.45, 0.25, 0.15, 0.1, 0.05])
CHANNEL_SCAN = {"夫妻店": 0.8, "便利店": 1.2, "超市": 1.0, "餐饮": 0.5, "母婴店": 1.6}
STORE_SCAN_SHARE = 0.25  # product scans after which the consumer also scans the store's code
RATED_SHARE = 0.15  # store-code scans that carry a rating
CLONE_COPIES = 4  # scans of each cloned code away from its sale
CLONE_DAYS = 20  # a clone is scanned within this many days of the original
# where genuine units are scanned when not at the store that sold them (legitimate, no alert)
TRAVEL_SHARE = 0.02  # scanned on a trip, in a city drawn by its tier weight
BORDER_KM = 120.0  # a store this close to another province's city has cross-border shoppers
BORDER_SHARE = 0.2  # of such a store's scans, made at home across the border
MOVER_PER_MILLE = 8  # consumers who moved away: they scan what they are sent in their new city
REPEAT_SHARE = 0.01  # units the same consumer scans again minutes later
FAMILY_SHARE = 0.005  # units a second person of the household scans the same day
# legitimate look-alike of scan farming: one shopper scans every unit of a multi-unit purchase
BULK_MIN_UNITS = 4  # sales rows of at least this many units
BULK_MAX_UNITS = 12  # a multi-unit buyer takes 4-12 units (a multi-pack, a case of a drink)
BULK_SHARE = 0.005  # of which this share has such a buyer, who scans every unit bought
BULK_SECONDS = 840  # spread of one buyer's scans (plus up to a minute): within 15 minutes
# scan farming: a store's staff scan units of the store's own stock for the scan reward
FARM_EPISODES = (1, 2)  # episodes per farming store
FARM_EPISODE_MONTHS = (2, 6)
FARM_ACCOUNTS = (1, 2)  # staff accounts: consumers whose home store is the store
FARM_DAYS_PER_MONTH = (2, 6)
FARM_BURST_SCANS = (8, 40)  # product scans per burst
# careful farmers stay under a daily cap a brand might set (10 a day), on more days
FARM_CAREFUL_SHARE = 0.5
FARM_CAREFUL_BURST_SCANS = (3, 10)
FARM_CAREFUL_DAYS_PER_MONTH = (3, 8)
FARM_BURST_MINUTES = (20, 60)  # how long a burst lasts
FARM_STORE_SCAN_LAG = (20, 90)  # seconds from a product scan to the store-code scan after it
FARM_JITTER_DEG = 0.0003  # positions scatter this little around the store


def _km(lat1: np.ndarray, lon1: np.ndarray, lat2: np.ndarray, lon2: np.ndarray) -> np.ndarray:
    """Great-circle distance in km (haversine, earth radius 6371 km)."""
    p1, p2 = np.radians(lat1), np.radians(lat2)
    a = (
        np.sin((p2 - p1) / 2) ** 2
        + np.cos(p1) * np.cos(p2) * np.sin(np.radians(lon2 - lon1) / 2) ** 2
    )
    return 2 * 6371.0 * np.arcsin(np.sqrt(np.clip(a, 0, 1)))


@dataclass(frozen=True)
class Whereabouts:
    """Where a genuine unit is scanned when it is not at its store: trips, borders, movers."""

    city_lat: np.ndarray  # cities: degrees
    city_lon: np.ndarray
    city_p: np.ndarray  # cities: chance a trip goes there (tier weight)
    border_lat: np.ndarray  # stores: nearest city of another province (nan: none near)
    border_lon: np.ndarray
    mover_city: np.ndarray  # consumers: city index they moved to (-1: did not move)

    @classmethod
    def of(cls, world: World) -> Whereabouts:
        cities = world.cities
        lat, lon = cities["lat"].to_numpy(), cities["lon"].to_numpy()
        weight = cities["tier"].replace_strict(TIER_WEIGHT, return_dtype=pl.Float64).to_numpy()
        stores = world.stores
        s_lat, s_lon = stores["lat"].to_numpy(), stores["lon"].to_numpy()
        km = _km(s_lat[:, None], s_lon[:, None], lat[None, :], lon[None, :])
        other = stores["province"].to_numpy()[:, None] != cities["province"].to_numpy()[None, :]
        km = np.where(other, km, np.inf)
        near = km.argmin(axis=1)
        close = km[np.arange(len(near)), near] < BORDER_KM
        n_c = len(world.consumers)
        # movers are fixed by the consumer's index, so the world needs no extra state
        idx = np.arange(n_c, dtype=np.int64)
        moved = (idx * 2654435761 % 1000) < MOVER_PER_MILLE
        mover_city = np.where(moved, (idx * 40503 + 7) % len(lat), -1)
        return cls(
            lat,
            lon,
            weight / weight.sum(),
            np.where(close, lat[near], np.nan),
            np.where(close, lon[near], np.nan),
            mover_city,
        )

    def relocate(
        self,
        s: np.ndarray,
        c: np.ndarray,
        lat: np.ndarray,
        lon: np.ndarray,
        rng: np.random.Generator,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Scan positions after trips, cross-border shoppers and movers (same shapes)."""
        lat, lon = lat.copy(), lon.copy()
        u = rng.random(len(s))
        border = (u < BORDER_SHARE) & ~np.isnan(self.border_lat[s])
        lat[border] = self.border_lat[s[border]] + rng.normal(0, 0.03, border.sum())
        lon[border] = self.border_lon[s[border]] + rng.normal(0, 0.03, border.sum())
        trip = rng.random(len(s)) < TRAVEL_SHARE
        dest = rng.choice(len(self.city_p), size=int(trip.sum()), p=self.city_p)
        lat[trip] = self.city_lat[dest] + rng.normal(0, 0.03, len(dest))
        lon[trip] = self.city_lon[dest] + rng.normal(0, 0.03, len(dest))
        mover = self.mover_city[c]
        moved = mover >= 0
        lat[moved] = self.city_lat[mover[moved]] + rng.normal(0, 0.03, moved.sum())
        lon[moved] = self.city_lon[mover[moved]] + rng.normal(0, 0.03, moved.sum())
        return lat, lon


@dataclass(frozen=True)
class ScanModel:
    """Who scans where, derived from the world (rebuilt on load, not saved)."""

    scan_p: np.ndarray  # stores: chance a sold unit is scanned, capped at 0.9
    picker: ConsumerPicker
    lookup: Lookup
    whereabouts: Whereabouts
    resident: np.ndarray  # consumers: lives in an untapped city near its store (`geography`)
    home_lat: np.ndarray  # consumers: degrees (nan without a home)
    home_lon: np.ndarray

    @classmethod
    def of(cls, cfg: ScaleConfig, world: World, lookup: Lookup) -> ScanModel:
        stores = world.stores
        channel = np.array([CHANNEL_SCAN.get(c, 1.0) for c in stores["channel_type"]])
        # scan propensity of a store's shoppers, relative to the average shopper
        prop = world.consumers.group_by("home_store").agg(pl.col("scan_propensity").mean())
        local = np.ones(len(stores))
        local[prop["home_store"].to_numpy()] = prop["scan_propensity"].to_numpy()
        scan_p = np.clip(cfg.scan_rate * channel * local / local.mean(), 0, 0.9)
        consumers = world.consumers
        n = len(consumers)
        if "resident" in consumers.columns:
            resident = consumers["resident"].to_numpy()
            home_lat, home_lon = consumers["home_lat"].to_numpy(), consumers["home_lon"].to_numpy()
        else:
            resident, home_lat, home_lon = np.zeros(n, bool), np.full(n, np.nan), np.full(n, np.nan)
        return cls(
            scan_p,
            ConsumerPicker(world),
            lookup,
            Whereabouts.of(world),
            resident,
            home_lat,
            home_lon,
        )


def product_scans(
    sales: pl.DataFrame,
    model: ScanModel,
    ledger: CodeLedger,
    diversion: Diversion,
    scan_rng: np.random.Generator,
    diversion_rng: np.random.Generator,
    travel_rng: np.random.Generator,
    bulk_rng: np.random.Generator,
    home_rng: np.random.Generator | None = None,
) -> pl.DataFrame:
    """Genuine scans of the units in `sales` (s, k, qty, price, day), codes from the ledger.

    Advances the ledger's sold positions by every sold unit. Most units are
    scanned at their store; some on a trip, across a province border or in a
    mover's new city, and a few twice (the same consumer again, or a second
    person of the household): all legitimate. In `BULK_SHARE` of the sales of
    `BULK_MIN_UNITS` units or more, one buyer takes 4-`BULK_MAX_UNITS` of the units
    and scans each within 15 minutes at one spot (legitimate, and bursty like scan
    farming); the sale's other units are scanned as usual. Last,
    `geography.HOME_SCAN_SHARE` of the other scans of residents (consumers living
    in an untapped city near their store, `ScanModel.resident`) are placed at
    their home instead, drawn from `home_rng` (no other generator draws more). Returns
    one row per scan: s, k, day, seconds, product_code, lat, lon, c (consumer
    index), label (`normal` or `diverted`), activated_d and selling_d
    (distributor indices).
    """
    rng, look = scan_rng, model.lookup
    qty_all = sales["qty"].to_numpy()
    n = rng.binomial(qty_all, model.scan_p[sales["s"].to_numpy()])
    bulk_sale = (qty_all >= BULK_MIN_UNITS) & (bulk_rng.random(len(qty_all)) < BULK_SHARE)
    # the buyer's units, all scanned, plus the usual share of the sale's other units
    bought = np.minimum(
        qty_all, bulk_rng.integers(BULK_MIN_UNITS, BULK_MAX_UNITS + 1, len(qty_all))
    )
    rest = bulk_rng.binomial(np.maximum(qty_all - bought, 0), model.scan_p[sales["s"].to_numpy()])
    n = np.where(bulk_sale, bought + rest, n)
    sales = sales.with_columns(
        d=pl.lit(pl.Series(look.dist_of_store)).gather(pl.col("s")).cast(pl.Int64),
        k=pl.col("k").cast(pl.Int64),
    )
    # every sold unit takes the next position in its distributor's stream
    start = sales.select((pl.col("qty").cum_sum().over("d", "k") - pl.col("qty")).alias("before"))[
        "before"
    ]
    offset = ledger.sold_pos[sales["d"].to_numpy(), sales["k"].to_numpy()]
    totals = sales.group_by("d", "k").agg(pl.col("qty").sum())
    ledger.sold_pos[totals["d"].to_numpy(), totals["k"].to_numpy()] += totals["qty"].to_numpy()
    row = np.repeat(np.arange(sales.height), n)
    rank = np.arange(len(row)) - np.repeat(np.cumsum(n) - n, n)
    qty = sales["qty"].to_numpy()[row]
    # the scanned units of a sale: one per stratum [lo, hi) of its positions, so two
    # scans of one sale never share a unit (hi - lo >= 1 because n <= qty)
    per = qty / np.maximum(n[row], 1)
    lo, hi = np.floor(rank * per).astype(np.int64), np.floor((rank + 1) * per).astype(np.int64)
    within = lo + (rng.random(len(row)) * (hi - lo)).astype(np.int64)
    pos = offset[row] + start.to_numpy()[row] + within
    s = sales["s"].to_numpy()[row]
    k = sales["k"].to_numpy()[row]
    day = sales["day"].to_numpy()[row]
    d = look.dist_of_store[s]
    bodies = ledger.fifo_codes(d, k, pos)
    label = np.full(len(row), "normal", dtype=object)
    activated = d.copy()
    diverted = diversion_rng.random(len(row)) < diversion.share(s, day)
    if diverted.any():
        src = diversion.source[s[diverted]]
        bodies[diverted] = ledger.extra_codes(
            src, k[diverted], day[diverted], float(model.scan_p.mean()), diversion_rng
        )
        activated[diverted] = src
        label[diverted] = "diverted"
    promo = sales["price"].to_numpy()[row] < 1.0
    c = model.picker.pick(s, rng, promo).astype(np.int64)
    lat, lon = model.whereabouts.relocate(
        s,
        c,
        look.store_lat[s] + rng.normal(0, 0.01, len(row)),
        look.store_lon[s] + rng.normal(0, 0.01, len(row)),
        travel_rng,
    )
    seconds = (rng.beta(2.5, 2.0, size=len(row)) * 14 * 3600 + 8 * 3600).astype(np.int64)
    bulk = bulk_sale[row] & (rank < bought[row])
    if bulk.any():  # the buyer scans every unit in one go, where the first scan was
        first = np.repeat(np.cumsum(n) - n, n)[bulk]
        n_of = bought[row][bulk]
        c[bulk] = c[first]
        seconds[bulk] = (
            seconds[first]
            + (rank[bulk] * BULK_SECONDS // np.maximum(n_of, 1))
            + bulk_rng.integers(0, 60, int(bulk.sum()))
        )
        lat[bulk] = lat[first] + bulk_rng.normal(0, FARM_JITTER_DEG, int(bulk.sum()))
        lon[bulk] = lon[first] + bulk_rng.normal(0, FARM_JITTER_DEG, int(bulk.sum()))
    if home_rng is not None:
        at_home = np.flatnonzero(model.resident[c] & ~bulk)
        at_home = at_home[home_rng.random(len(at_home)) < HOME_SCAN_SHARE]
        lat[at_home] = model.home_lat[c[at_home]] + home_rng.normal(
            0, HOME_SCAN_JITTER_DEG, len(at_home)
        )
        lon[at_home] = model.home_lon[c[at_home]] + home_rng.normal(
            0, HOME_SCAN_JITTER_DEG, len(at_home)
        )
    scans = pl.DataFrame(
        {
            "s": s,
            "k": k,
            "day": day.astype(np.int32),
            "seconds": seconds,
            "product_code": make_codes(bodies),
            "lat": lat,
            "lon": lon,
            "c": c,
            "label": label.astype(str),
            "activated_d": activated,
            "selling_d": d,
        }
    )
    return pl.concat([scans, _second_scans(scans, model, travel_rng)])


def _second_scans(scans: pl.DataFrame, model: ScanModel, rng: np.random.Generator) -> pl.DataFrame:
    """Legitimate second scans of a unit: the same consumer minutes later, or a housemate."""
    u = rng.random(scans.height)
    again = scans.filter(pl.Series(u < REPEAT_SHARE + FAMILY_SHARE))
    family = rng.random(again.height) < FAMILY_SHARE / (REPEAT_SHARE + FAMILY_SHARE)
    other = model.picker.pick(again["s"].to_numpy(), rng).astype(np.int64)
    return again.with_columns(
        seconds=pl.col("seconds") + pl.Series(rng.integers(60, 3 * 3600, again.height)),
        c=pl.Series(np.where(family, other, again["c"].to_numpy())),
    )


def fakes(
    scans: pl.DataFrame, model: ScanModel, cfg: ScaleConfig, rng: np.random.Generator
) -> pl.DataFrame:
    """Forged codes (never issued) and clones (a real code scanned far from its sale).

    Forged scans come at `cfg.forged_rate` of `scans`, each a copy of a genuine
    scan with an invented code; `cfg.cloned_codes` of scans are copied
    `CLONE_COPIES` times to random stores within `CLONE_DAYS` days (at most the
    last day of `scans`). Same columns as `scans`; activated_d is null for forged.
    """
    look = model.lookup
    m = scans.height
    n_forged = rng.binomial(m, cfg.forged_rate)
    forged = scans.sample(n_forged, with_replacement=True, seed=int(rng.integers(2**31)))
    forged = forged.with_columns(
        product_code=forged_bodies(forged["k"].to_numpy(), rng),
        label=pl.lit("forged"),
        activated_d=pl.lit(-1, pl.Int64).cast(scans["activated_d"].dtype),
        c=pl.Series(model.picker.pick(forged["s"].to_numpy(), rng)).cast(pl.Int64),
    )
    n_cloned = rng.binomial(m, cfg.cloned_codes)
    originals = scans.filter(pl.col("label") == "normal").sample(
        min(n_cloned, m), seed=int(rng.integers(2**31))
    )
    copies = originals.select(pl.all().repeat_by(pl.lit(CLONE_COPIES)).explode())
    far = rng.integers(0, len(look.store_codes), size=copies.height)
    last = scans["day"].max()
    copies = copies.with_columns(
        s=pl.Series(far).cast(scans["s"].dtype),
        day=pl.min_horizontal(
            pl.col("day") + pl.Series(rng.integers(1, CLONE_DAYS, copies.height)), pl.lit(last)
        ).cast(pl.Int32),
        lat=pl.Series(look.store_lat[far] + rng.normal(0, 0.01, copies.height)),
        lon=pl.Series(look.store_lon[far] + rng.normal(0, 0.01, copies.height)),
        c=pl.Series(model.picker.pick(far, rng)).cast(pl.Int64),
        label=pl.lit("cloned"),
        selling_d=pl.Series(look.dist_of_store[far]).cast(scans["selling_d"].dtype),
    )
    return pl.concat([forged, copies]).with_columns(
        activated_d=pl.when(pl.col("activated_d") < 0).then(None).otherwise(pl.col("activated_d"))
    )


def all_scans(
    sales: pl.DataFrame,
    model: ScanModel,
    ledger: CodeLedger,
    diversion: Diversion,
    cfg: ScaleConfig,
    scan_rng: np.random.Generator,
    diversion_rng: np.random.Generator,
    fake_rng: np.random.Generator,
    travel_rng: np.random.Generator,
    bulk_rng: np.random.Generator,
    home_rng: np.random.Generator | None = None,
) -> pl.DataFrame:
    """Genuine and fake product scans of `sales`, each with the reward paid (`reward_amount`).

    Columns of `product_scans` plus reward_amount (yuan); rows in no particular order.
    """
    genuine = product_scans(
        sales, model, ledger, diversion, scan_rng, diversion_rng, travel_rng, bulk_rng, home_rng
    )
    scans = pl.concat([genuine, fakes(genuine, model, cfg, fake_rng)], how="vertical_relaxed")
    reward = scan_rng.choice(REWARDS, size=scans.height, p=REWARD_P)
    return scans.with_columns(reward_amount=pl.Series(reward))


def store_code_scans(
    genuine: pl.DataFrame, world: World, retail_price: np.ndarray, rng: np.random.Generator
) -> pl.DataFrame:
    """Store-code scans after a share of genuine product scans, some with a 1-5 rating.

    `genuine` has s, k, c, day, seconds. Returns visits in the shape of
    `consumers.no_visits()`: 30 s after the product scan, the basket in yuan.
    """
    follow = genuine.filter(pl.Series(rng.random(genuine.height) < STORE_SCAN_SHARE))
    satisfaction = world.stores["satisfaction"].to_numpy()
    rated = rng.random(follow.height) < RATED_SHARE
    rating = np.clip(
        np.round(satisfaction[follow["s"].to_numpy()] + rng.normal(0, 0.7, follow.height)), 1, 5
    )
    basket = np.round(
        retail_price[follow["k"].to_numpy()] * rng.integers(1, 4, follow.height)
        + rng.gamma(2.0, 8.0, follow.height),
        2,
    )
    return follow.select(
        pl.col("s").cast(pl.Int64),
        pl.col("c").cast(pl.Int64),
        pl.col("day").cast(pl.Int32),
        seconds=(pl.col("seconds") + 30).cast(pl.Int64),
        order_amount=pl.Series(basket),
        coupon_id=pl.lit(None, pl.String),
        rating=pl.Series(np.where(rated, rating, np.nan)).cast(pl.Int64, strict=False),
    )


def farming_plan(
    cfg: ScaleConfig, world: World, onboard_day: np.ndarray, rng: np.random.Generator
) -> pl.DataFrame:
    """The bursts in which stores' staff farm the consumer-scan reward, planned up front.

    `cfg.farming_store_share` of the stores (at least one) farm in one or two
    episodes of two to six months starting inside the window: on two to six
    days a month, one of the store's one or two staff accounts (consumers whose
    home store it is) scans 8-40 units within 20-60 minutes; half the stores are
    careful, staying under a daily cap (3-10 units a burst, on three to eight
    days a month). Returns s, c, day,
    seconds (start of the burst), n (product scans) and minutes, one row per burst.
    """
    schema = {
        "s": pl.Int64,
        "c": pl.Int64,
        "day": pl.Int32,
        "seconds": pl.Int64,
        "n": pl.Int64,
        "minutes": pl.Int64,
    }
    n_s = len(world.stores)
    if cfg.farming_store_share <= 0 or n_s == 0:
        return pl.DataFrame(schema=schema)
    n_farm = min(n_s, max(1, int(rng.binomial(n_s, cfg.farming_store_share))))
    home = world.consumers["home_store"].to_numpy()
    lo = np.searchsorted(home, np.arange(n_s), side="left")
    hi = np.searchsorted(home, np.arange(n_s), side="right")
    bounds = []  # month m covers days [bounds[m], bounds[m + 1])
    m = 0
    while not bounds or bounds[-1] < cfg.horizon_days:
        bounds.append((add_months(cfg.start, m) - cfg.start).days)
        m += 1
    bounds = np.array(bounds)
    window_months = int(np.searchsorted(bounds, cfg.n_days, side="left"))
    rows = []
    for s in rng.choice(n_s, size=n_farm, replace=False):
        s = int(s)
        if hi[s] <= lo[s]:
            continue
        n_acc = min(hi[s] - lo[s], int(rng.integers(FARM_ACCOUNTS[0], FARM_ACCOUNTS[1] + 1)))
        careful = rng.random() < FARM_CAREFUL_SHARE
        burst = FARM_CAREFUL_BURST_SCANS if careful else FARM_BURST_SCANS
        per_month = FARM_CAREFUL_DAYS_PER_MONTH if careful else FARM_DAYS_PER_MONTH
        accounts = rng.choice(np.arange(lo[s], hi[s]), size=n_acc, replace=False)
        first_month = int(np.searchsorted(bounds, max(onboard_day[s], 0), side="right")) - 1
        month = first_month + int(rng.integers(0, max(1, window_months - first_month - 1)))
        for _ in range(int(rng.integers(FARM_EPISODES[0], FARM_EPISODES[1] + 1))):
            length = int(rng.integers(FARM_EPISODE_MONTHS[0], FARM_EPISODE_MONTHS[1] + 1))
            for mm in range(month, min(month + length, len(bounds) - 1)):
                span = bounds[mm + 1] - bounds[mm]
                n_days = int(rng.integers(per_month[0], per_month[1] + 1))
                for day in np.sort(rng.choice(span, size=min(n_days, span), replace=False)):
                    rows.append(
                        (
                            s,
                            int(accounts[int(rng.integers(n_acc))]),
                            int(bounds[mm] + day),
                            int(rng.integers(9 * 3600, 21 * 3600)),
                            int(rng.integers(burst[0], burst[1] + 1)),
                            int(rng.integers(FARM_BURST_MINUTES[0], FARM_BURST_MINUTES[1] + 1)),
                        )
                    )
            month += length + int(rng.integers(1, 6))  # a pause before the next episode
    plan = pl.DataFrame(rows, schema=schema, orient="row")
    return plan.filter(pl.col("day") < cfg.horizon_days).sort("day", "s", "seconds")


def farmed_scans(
    plan: pl.DataFrame,
    first_day: int,
    last_day: int,
    world: World,
    model: ScanModel,
    ledger: CodeLedger,
    rng: np.random.Generator,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The farming bursts of [first_day, last_day]: product scans and the store-code scans after.

    Each product scan is of a distinct unit of the store's own distributor that
    no consumer scanned (extra cases activated to that distributor through
    `ledger.extra_codes`, exported with the diverters' extra cases), at the
    store's position within `FARM_JITTER_DEG`; 20-90 s later the same account
    scans the store's code (no order, coupon or rating). Returns (product scans
    in the columns of `all_scans`, label `farmed`; store visits in the shape
    of `consumers.no_visits()`).
    """
    bursts = plan.filter(pl.col("day").is_between(first_day, last_day))
    if bursts.is_empty():
        return pl.DataFrame(), pl.DataFrame()
    look = model.lookup
    n = bursts["n"].to_numpy()
    rep = np.repeat(np.arange(bursts.height), n)
    s = bursts["s"].to_numpy()[rep]
    day = bursts["day"].to_numpy()[rep]
    spread = rng.random(len(rep)) * bursts["minutes"].to_numpy()[rep] * 60
    spread = spread[np.lexsort((spread, rep))]  # increasing within each burst
    seconds = bursts["seconds"].to_numpy()[rep] + spread.astype(np.int64)
    pop = world.products["popularity"].to_numpy()
    k = rng.choice(len(pop), size=len(rep), p=pop / pop.sum()).astype(np.int64)
    d = look.dist_of_store[s]
    bodies = ledger.extra_codes(d, k, day, 1.0, rng)
    c = bursts["c"].to_numpy()[rep]
    scans = pl.DataFrame(
        {
            "s": s.astype(np.int64),
            "k": k,
            "day": day.astype(np.int32),
            "seconds": seconds,
            "product_code": make_codes(bodies),
            "lat": look.store_lat[s] + rng.normal(0, FARM_JITTER_DEG, len(rep)),
            "lon": look.store_lon[s] + rng.normal(0, FARM_JITTER_DEG, len(rep)),
            "c": c.astype(np.int64),
            "label": "farmed",
            "activated_d": d,
            "selling_d": d,
            "reward_amount": rng.choice(REWARDS, size=len(rep), p=REWARD_P),
        }
    )
    lag = rng.integers(FARM_STORE_SCAN_LAG[0], FARM_STORE_SCAN_LAG[1] + 1, len(rep))
    visits = pl.DataFrame(
        {
            "s": s.astype(np.int64),
            "c": c.astype(np.int64),
            "day": day.astype(np.int32),
            "seconds": seconds + lag,
            "order_amount": pl.Series([None] * len(rep), dtype=pl.Float64),
            "coupon_id": pl.Series([None] * len(rep), dtype=pl.String),
            "rating": pl.Series([None] * len(rep), dtype=pl.Int64),
        }
    )
    return scans, visits
