"""Where the brand's market is: city potential, true coverage, planted white space, homes.

Every city of the reference geography gets a latent population (lognormal
around its tier's median) and income index (by tier), and from them and the
region's category taste (`World.region_affinity`) and the brand's share at
parity in its province (`Market.base_share`: competitors are stronger in some
provinces) a weekly market potential in the brand's units. Potential is scaled
so the brand's stores, at their base rates, serve `MEAN_COVERAGE` of the whole
world's potential; a city's true coverage is its stores' capacity against its
potential (capped at 1) and the rest is untapped.

White space is planted through potential, never by moving stores (so the store
master and every draw of the existing streams stay as they were):
`ScaleConfig.white_space_cities` tier 2-3 cities with at most one store, that
are neither a distributor's seat nor a DC hub (when there are too few, tier 2-3
cities with two stores, then tier-4 cities with at most one: at `demo` stores
follow the tier weights, so only a few tier 2-3 cities are that thin), get their
population multiplied by 2.5-4, raised to at least 1-1.6 times the 95th
percentile of the cities' and so far that its stores, if any, cover at most
`PLANT_MAX_COVERAGE` of its potential.

The most untapped cities (planted or not, the top `PULL_FACTOR` x k) then leave
traces the exports can show:

- residents: consumers of store pools in the same province within `HOME_KM`
  move their home there with a chance growing with untapped / distance² (at
  most `ScaleConfig.resident_share` of a pool); their CDP city follows and
  `HOME_SCAN_SHARE` of their product scans are made at home
  (`scans.product_scans`, from a stream of their own);
- visitors: stores within `VISIT_KM` sell `ScaleConfig.visitor_share` of the
  city's untapped units a week on top of their own demand
  (`dynamics.Channel.step`, from a stream of their own drawn after the
  channel's draw), split by inverse distance.

Everything here is drawn from `Streams.geography`, which is spawned after every
older stream, so a world's other draws are exactly those of a world without it.
Distributors' seats (`world.seat_cities`) need no draw.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from bclake.simulator.config import ScaleConfig
from bclake.simulator.dynamics import base_rates
from bclake.simulator.market import Market
from bclake.simulator.world import REGIONS, World

# median residents by city tier: stores follow `world.TIER_WEIGHT`, so the residents per
# store weight are alike across tiers and coverage does not just follow the tier
TIER_POPULATION = {1: 6.0e6, 2: 3.5e6, 3: 1.5e6, 4: 0.6e6}
POPULATION_SIGMA = 0.45  # lognormal spread of residents around the tier median
TIER_INCOME = {1: 1.45, 2: 1.2, 3: 1.0, 4: 0.85}  # income index (1 = tier-3 median)
INCOME_SIGMA = 0.08
MEAN_COVERAGE = 0.6  # the brand's stores serve this share of the world's potential
PLANT_TIERS = (2, 3)  # white space is planted in these tiers ...
PLANT_MAX_STORES = 1  # ... in cities with at most this many stores ...
# ... and, when too few such cities exist, in the next pass: (tiers, most stores)
PLANT_PASSES = ((PLANT_TIERS, PLANT_MAX_STORES), (PLANT_TIERS, 2), ((4,), PLANT_MAX_STORES))
PLANT_BOOST = (2.5, 4.0)  # a planted city's population is multiplied by U(2.5, 4) ...
PLANT_FLOOR_QUANTILE = 0.95  # ... to at least U(1, 1.6) x this quantile of all cities'
PLANT_MAX_COVERAGE = 0.25  # ... and so that its stores cover at most a quarter
PULL_FACTOR = 2  # the top PULL_FACTOR x k untapped cities pull residents and visitors
HOME_KM = 150.0  # store pools within this distance of a pull city may move there
HOME_SCALE_KM = 50.0  # distance at which one city of average untapped moves ~16% of a pool
HOME_JITTER_DEG = 0.03  # a resident's home around the city seat
HOME_SCAN_SHARE = 0.7  # product scans of residents made at home
HOME_SCAN_JITTER_DEG = 0.02
VISIT_KM = 60.0  # stores this close to a pull city sell to its visitors
VISIT_MIN_KM = 5.0  # inverse-distance weights are capped at this distance
VISIT_MAX_UPLIFT = 1.5  # visitors add at most 150% to a store's own demand rate


def km_between(
    lat1: np.ndarray, lon1: np.ndarray, lat2: np.ndarray, lon2: np.ndarray
) -> np.ndarray:
    """Great-circle distance in km (haversine, earth radius 6371 km), broadcasting."""
    p1, p2 = np.radians(lat1), np.radians(lat2)
    a = (
        np.sin((p2 - p1) / 2) ** 2
        + np.cos(p1) * np.cos(p2) * np.sin(np.radians(lon2 - lon1) / 2) ** 2
    )
    return 2 * 6371.0 * np.arcsin(np.sqrt(np.clip(a, 0, 1)))


@dataclass
class Geography:
    """The latent market of a world (saved in `state.SimState`).

    `areas` has one row per city of the world (the order of `World.cities`):
    adcode, city, province, region, tier, lat, lon, population, income_index,
    potential_units_week, stores, capacity_units_week, true_coverage (0-1),
    untapped_units_week, planted, deserved_rank (1 = most untapped units) and
    pull (the city pulls residents and visitors). `visitor` is per store: the
    visitors' demand as a multiple of the store's own daily rate (0 for most).
    """

    areas: pl.DataFrame
    visitor: np.ndarray  # stores: multiplier of the extra (visitor) demand rate

    @property
    def visited(self) -> np.ndarray:
        """Indices of the stores with visitor demand (int64, ascending)."""
        return np.flatnonzero(self.visitor > 0)


def settle(
    cfg: ScaleConfig, world: World, market: Market, rng: np.random.Generator
) -> tuple[Geography, pl.DataFrame]:
    """Draw the world's latent market and the consumers' homes.

    Returns (the geography; `world.consumers` with `city` moved for residents
    and the latent columns home_city, home_lat, home_lon and resident). Draws,
    in order: population and income per city, the planted cities and their
    boost, the residents and their homes.
    """
    cities = world.cities
    tier = cities["tier"].to_numpy()
    n_c = len(cities)
    population = np.array([TIER_POPULATION[t] for t in tier]) * rng.lognormal(
        0.0, POPULATION_SIGMA, n_c
    )
    income = np.array([TIER_INCOME[t] for t in tier]) * rng.lognormal(0.0, INCOME_SIGMA, n_c)

    # per-resident demand in the brand's units: region taste x the brand's provincial share
    stores = world.stores
    base = base_rates(world)  # stores x SKUs, units a day
    cat_idx = np.array([world.categories.index(c) for c in world.products["category"]])
    cat_weight = np.bincount(cat_idx, weights=base.sum(axis=0), minlength=len(world.categories))
    cat_weight = cat_weight / cat_weight.sum()
    region = np.array([REGIONS.index(r) for r in cities["region"]])
    prov = np.array([world.provinces.index(p) for p in cities["province"]])
    share = market.base_share / market.base_share.mean()
    taste = (world.region_affinity[region] * share[prov] * cat_weight[None, :]).sum(axis=1)
    per_capita = income * taste  # cities: relative weekly units per resident

    city_of_store = _city_index(cities, stores["city"])
    capacity = np.bincount(city_of_store, weights=base.sum(axis=1) * 7, minlength=n_c)
    n_stores = np.bincount(city_of_store, minlength=n_c)
    scale = capacity.sum() / MEAN_COVERAGE / (population * per_capita).sum()

    seats = set(world.distributors["city"].to_list())
    hubs = set(world.warehouses["city"].to_list())
    names = cities["city"].to_numpy()
    free = ~np.isin(names, list(seats | hubs))
    planted = np.zeros(n_c, dtype=bool)
    left = cfg.white_space_cities
    # in passes (`PLANT_PASSES`): a world with too few thin tier 2-3 cities (stores follow
    # the tier weights, so at `demo` most have several) takes the rest from the next pass
    for tiers, max_stores in PLANT_PASSES:
        eligible = np.flatnonzero(free & ~planted & np.isin(tier, tiers) & (n_stores <= max_stores))
        take = min(left, len(eligible))
        if take:
            w = population[eligible] * per_capita[eligible]
            planted[rng.choice(eligible, size=take, replace=False, p=w / w.sum())] = True
            left -= take
    chosen = np.flatnonzero(planted)
    k = len(chosen)
    if k:
        # at least the population of a large city of the world: a clear white space
        floor = np.quantile(population, PLANT_FLOOR_QUANTILE) * rng.uniform(1.0, 1.6, size=k)
        # and its stores, if any, cover at most PLANT_MAX_COVERAGE of it
        covered = capacity[chosen] / (PLANT_MAX_COVERAGE * scale * per_capita[chosen])
        population[chosen] = np.maximum.reduce(
            [population[chosen] * rng.uniform(*PLANT_BOOST, size=k), floor, covered]
        )

    potential = scale * population * per_capita
    coverage = np.minimum(1.0, capacity / np.maximum(potential, 1e-9))
    untapped = potential * (1 - coverage)
    order = np.lexsort((cities["adcode"].to_numpy(), -untapped))
    rank = np.empty(n_c, dtype=np.int64)
    rank[order] = np.arange(1, n_c + 1)
    pull = rank <= PULL_FACTOR * cfg.white_space_cities
    keys = cities.select("adcode", "city", "province", "region", "tier", "lat", "lon")
    areas = keys.with_columns(
        population=pl.Series(np.round(population).astype(np.int64)),
        income_index=pl.Series(np.round(income, 4)),
        potential_units_week=pl.Series(np.round(potential, 1)),
        stores=pl.Series(n_stores.astype(np.int64)),
        capacity_units_week=pl.Series(np.round(capacity, 1)),
        true_coverage=pl.Series(np.round(coverage, 4)),
        untapped_units_week=pl.Series(np.round(untapped, 1)),
        planted=pl.Series(planted),
        deserved_rank=pl.Series(rank),
        pull=pl.Series(pull),
    )
    consumers = _homes(cfg, world, areas, city_of_store, rng)
    visitor = _visitors(world, areas, base.sum(axis=1) * 7, cfg.visitor_share)
    return Geography(areas, visitor), consumers


def _city_index(cities: pl.DataFrame, names: pl.Series) -> np.ndarray:
    """Index into `cities` of each city name in `names` (names are unique in the seed)."""
    index = {c: i for i, c in enumerate(cities["city"].to_list())}
    return np.array([index[c] for c in names.to_list()], dtype=np.int64)


def _homes(
    cfg: ScaleConfig,
    world: World,
    areas: pl.DataFrame,
    city_of_store: np.ndarray,
    rng: np.random.Generator,
) -> pl.DataFrame:
    """Consumers with a home: residents of pull cities near their store, everyone else at home.

    A store's pool (`cfg.consumers_per_store` consumers, contiguous) in the
    same province as pull cities j within `HOME_KM` (other than its own city)
    moves with chance `cfg.resident_share` x (1 - exp(-sum_j w_j)), w_j = (untapped_j /
    mean untapped of the pull cities) / (max(d_j, 10 km) / HOME_SCALE_KM)²,
    to city j with chance proportional to w_j. Adds home_city, home_lat,
    home_lon (degrees) and resident (bool); `city` becomes the home city.
    """
    consumers, stores = world.consumers, world.stores
    lat, lon = areas["lat"].to_numpy(), areas["lon"].to_numpy()
    home_city = city_of_store[consumers["home_store"].to_numpy()].copy()
    resident = np.zeros(len(consumers), dtype=bool)
    pulls = np.flatnonzero(areas["pull"].to_numpy())
    untapped = areas["untapped_units_week"].to_numpy()
    if len(pulls) and cfg.resident_share > 0 and untapped[pulls].mean() > 0:
        norm = untapped[pulls] / untapped[pulls].mean()
        s_lat, s_lon = stores["lat"].to_numpy(), stores["lon"].to_numpy()
        km = km_between(s_lat[:, None], s_lon[:, None], lat[pulls][None, :], lon[pulls][None, :])
        prov = areas["province"].to_numpy()[pulls]
        same = stores["province"].to_numpy()[:, None] == prov[None, :]
        own = city_of_store[:, None] == pulls[None, :]
        near = same & ~own & (km <= HOME_KM)
        w = np.where(near, norm[None, :] / (np.maximum(km, 10.0) / HOME_SCALE_KM) ** 2, 0.0)
        total = w.sum(axis=1)
        per = cfg.consumers_per_store
        home = consumers["home_store"].to_numpy()
        first = np.searchsorted(home, np.arange(len(stores)), side="left")
        for s in np.flatnonzero(total > 0):  # stores in ascending order: a fixed draw order
            p_move = cfg.resident_share * (1 - np.exp(-total[s]))
            pool = first[s] + np.arange(per)
            moves = pool[rng.random(per) < p_move]
            if len(moves):
                dest = rng.choice(len(pulls), size=len(moves), p=w[s] / total[s])
                home_city[moves] = pulls[dest]
                resident[moves] = True
    n = len(consumers)
    home_lat = lat[home_city] + rng.normal(0, HOME_JITTER_DEG, n)
    home_lon = lon[home_city] + rng.normal(0, HOME_JITTER_DEG, n)
    names = areas["city"].gather(pl.Series(home_city))
    return consumers.with_columns(
        city=names,
        home_city=names,
        home_lat=pl.Series(np.round(home_lat, 5)),
        home_lon=pl.Series(np.round(home_lon, 5)),
        resident=pl.Series(resident),
    )


def _visitors(world: World, areas: pl.DataFrame, own_week: np.ndarray, share: float) -> np.ndarray:
    """stores: visitor demand as a multiple of the store's own rate (no random draw).

    Each pull city sends `share` (`ScaleConfig.visitor_share`) of its untapped units a week to the
    stores within `VISIT_KM` (any province, its own store included), split by
    1 / max(d, `VISIT_MIN_KM`); a store's multiple is capped at `VISIT_MAX_UPLIFT`.
    `own_week` is each store's own base demand in units a week.
    """
    stores = world.stores
    pulls = np.flatnonzero(areas["pull"].to_numpy())
    out = np.zeros(len(stores))
    if not len(pulls) or share <= 0:
        return out
    km = km_between(
        stores["lat"].to_numpy()[:, None],
        stores["lon"].to_numpy()[:, None],
        areas["lat"].to_numpy()[pulls][None, :],
        areas["lon"].to_numpy()[pulls][None, :],
    )
    w = np.where(km <= VISIT_KM, 1.0 / np.maximum(km, VISIT_MIN_KM), 0.0)
    col = w.sum(axis=0)
    units = share * areas["untapped_units_week"].to_numpy()[pulls]
    extra = (w / np.where(col > 0, col, 1.0)[None, :] * units[None, :]).sum(axis=1)
    return np.minimum(VISIT_MAX_UPLIFT, extra / np.maximum(own_week, 1e-9))
