"""Daily demand, stock-censored sales and the store -> distributor -> DC -> plant chain.

The loop runs over days; each day is vectorised over stores x SKUs. Stores,
distributors, DCs and the plants follow their own imperfect order-up-to
policies on smoothed, censored signals, so stock-outs and the bullwhip effect
emerge rather than being drawn. Demand reacts to store size and channel,
region taste, category seasonality and festivals, promotions the store signed
up to, display compliance, competitor prices and promotions, new-product
launch curves and noise.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date

import numpy as np
import polars as pl

from simulator.config import ScaleConfig
from simulator.market import Market
from simulator.world import REGIONS, World

STORE_LEAD_DAYS = 2
DIST_LEAD_DAYS = 4
PLANT_LEAD_DAYS = 3
RING = 16  # days of pipeline kept for arrivals
ELASTICITY = 2.0
DISPLAY_UPLIFT = 1.08


@dataclass
class DayRecord:
    """What happened on one day, as sparse (row, column, value...) arrays."""

    day: int
    demand: tuple[np.ndarray, ...]  # s, k, units wanted
    sales: tuple[np.ndarray, ...]  # s, k, units sold, price paid factor
    store_orders: tuple[np.ndarray, ...]  # s, k, ordered, delivered
    dist_orders: tuple[np.ndarray, ...]  # d, k, ordered, shipped (units)
    dc_stock: np.ndarray  # warehouses x skus, end of day
    production: np.ndarray | None  # warehouses x skus produced for each DC (Mondays)
    store_stock: tuple[np.ndarray, ...] | None  # s, k, on hand (Sundays)
    stockouts: int


def category_multiplier(calendar: pl.DataFrame, categories: list[str]) -> np.ndarray:
    """days x categories: seasonality, festival pull-forward and weekday shape."""
    doy = calendar["day_of_year"].to_numpy()
    weekday = calendar["weekday"].to_numpy()
    to_sf = calendar["days_to_spring_festival"].to_numpy()
    to_ma = calendar["days_to_mid_autumn"].to_numpy()
    holiday = calendar["holiday"].is_not_null().to_numpy()
    festival = calendar["festival"].is_not_null().to_numpy()
    summer = np.cos(2 * np.pi * (doy - 200) / 365.25)  # +1 in mid July
    pre_sf = np.where(to_sf <= 25, np.exp(-(to_sf - 5).clip(0) / 8.0), 0.0)
    pre_ma = np.where(to_ma <= 20, np.exp(-(to_ma - 3).clip(0) / 6.0), 0.0)
    weekend = (weekday >= 5).astype(float)
    out = np.empty((len(calendar), len(categories)))
    for j, cat in enumerate(categories):
        if cat == "饮料":
            m = 1 + 0.45 * summer + 0.15 * weekend
        elif cat == "乳品":
            m = 1 + 0.9 * pre_sf + 0.3 * pre_ma - 0.05 * summer
        elif cat == "零食":
            m = 1 + 0.6 * pre_sf + 0.2 * weekend + 0.25 * festival
        elif cat == "礼盒":
            m = 0.35 + 4.0 * pre_sf + 3.0 * pre_ma
        else:
            m = 1 + 0.3 * pre_sf + 0.05 * weekend
        # the festival itself: shops close or slow down, except gifting before it
        out[:, j] = m * np.where(holiday & (to_sf == 0), 0.6, 1.0) * np.where(festival, 1.3, 1.0)
    return out


def promotions(cfg: ScaleConfig, world: World, rng: np.random.Generator) -> pl.DataFrame:
    """Region x SKU price promotions: about six 7-14 day windows a year each."""
    rows = []
    n_windows = max(1, int(6 * cfg.n_days / 365))
    mechanisms = ("特价", "买赠", "满减")
    for r in range(cfg.n_regions):
        for k in range(len(world.products)):
            for start in sorted(rng.choice(cfg.n_days - 14, size=n_windows, replace=False)):
                rows.append(
                    (
                        len(rows) + 1,
                        r,
                        k,
                        int(start),
                        int(start + rng.integers(7, 15)),
                        float(rng.choice([0.1, 0.15, 0.2])),
                        str(rng.choice(mechanisms)),
                    )
                )
    return pl.DataFrame(
        rows,
        orient="row",
        schema=[
            "promo_no",
            "region_idx",
            "sku_idx",
            "start_day",
            "end_day",
            "discount",
            "mechanism",
        ],
    )


def promotion_signups(promos: pl.DataFrame, world: World, rng: np.random.Generator) -> pl.DataFrame:
    """Stores in the promotion's region sign up, the more engaged the more often."""
    region_idx = np.array([REGIONS.index(r) for r in world.stores["region"]])
    engagement = world.stores["engagement"].to_numpy()
    by_region = {r: np.nonzero(region_idx == r)[0] for r in np.unique(region_idx)}
    promo_no, store = [], []
    for p in promos.select("promo_no", "region_idx").iter_rows():
        candidates = by_region.get(p[1], np.array([], dtype=int))
        signed = candidates[rng.random(len(candidates)) < 0.15 + 0.6 * engagement[candidates]]
        promo_no.append(np.full(len(signed), p[0], dtype=np.int32))
        store.append(signed.astype(np.int32))
    return pl.DataFrame({"promo_no": np.concatenate(promo_no), "s": np.concatenate(store)})


def display_compliance(cfg: ScaleConfig, world: World, rng: np.random.Generator) -> np.ndarray:
    """months x stores: whether the store's display met the standard that month."""
    n_months = cfg.n_days // 28 + 2
    eng = world.stores["engagement"].to_numpy()
    return rng.random((n_months, len(eng))) < 0.3 + 0.6 * eng


def base_rates(world: World) -> np.ndarray:
    """stores x SKUs: expected daily units before calendar, promotion and market effects."""
    stores, products = world.stores, world.products
    region_idx = np.array([REGIONS.index(r) for r in stores["region"]])
    cat_idx = np.array([world.categories.index(c) for c in products["category"]])
    return (
        stores["base_rate"].to_numpy()[:, None]
        * products["popularity"].to_numpy()[None, :]
        * world.region_affinity[region_idx][:, cat_idx]
        * (1.0 + 0.15 * (4 - stores["tier"].to_numpy()))[:, None]
    )


def weekly_capacity(world: World, calendar: pl.DataFrame) -> np.ndarray:
    """Units per SKU the plants can make in a week: 1.2x average demand, so peaks run short."""
    cat_idx = np.array([world.categories.index(c) for c in world.products["category"]])
    cat_mult = category_multiplier(calendar, world.categories)[:, cat_idx]
    return np.ceil(base_rates(world).sum(axis=0) * 7 * 1.2 * cat_mult.mean(axis=0)).astype(np.int64)


def simulate_days(
    cfg: ScaleConfig,
    world: World,
    calendar: pl.DataFrame,
    promos: pl.DataFrame,
    signups: pl.DataFrame,
    display: np.ndarray,
    market: Market,
    rng: np.random.Generator,
) -> Iterator[DayRecord]:
    """Yield one DayRecord per simulated day."""
    stores, products = world.stores, world.products
    n_s, n_k = len(stores), len(products)
    dist_codes = world.distributors["distributor_code"].to_list()
    dist_idx = np.array([dist_codes.index(d) for d in stores["distributor_code"]])
    n_d = len(dist_codes)
    wh_regions = world.warehouses["region"].to_list()
    dist_dc = np.array([wh_regions.index(r) for r in world.distributors["region"]])
    n_w = len(wh_regions)
    cat_idx = np.array([world.categories.index(c) for c in products["category"]])
    prov_idx = np.array([world.provinces.index(p) for p in stores["province"]])
    case_pack = products["case_pack"].to_numpy()
    inner_pack = np.maximum(1, case_pack // 4)

    base = base_rates(world)
    cat_mult = category_multiplier(calendar, world.categories)[:, cat_idx]  # days x skus
    launch_day = np.array([(d - cfg.start).days for d in products["launch_date"]])
    success = products["launch_success"].to_numpy()
    onboard_day = np.array([(d - cfg.start).days for d in stores["onboard_date"]])
    month_index = _month_index(calendar["date"].to_list())
    competition = market.demand_factor()  # months x provinces x categories

    # promotions: which (store, sku) pairs are discounted on which days
    signed = signups.join(promos, on="promo_no")
    promo_events: dict[int, list[tuple[np.ndarray, int, float]]] = {}
    for part in signed.partition_by("promo_no", maintain_order=True):
        row = part.row(0, named=True)
        for t in range(row["start_day"], min(row["end_day"], cfg.n_days)):
            promo_events.setdefault(t, []).append(
                (part["s"].to_numpy(), row["sku_idx"], 1 - row["discount"])
            )

    # store policy: each store reviews weekly on its own weekday
    review_weekday = rng.integers(0, 7, size=n_s)
    safety = rng.uniform(1.1, 1.6, size=n_s)[:, None]
    est = base * 1.0
    stock = np.ceil(est * (7 + STORE_LEAD_DAYS) * safety).astype(np.int64)
    on_order = np.zeros((n_s, n_k), dtype=np.int64)
    arrivals = np.zeros((RING, n_s, n_k), dtype=np.int64)

    dist_review = rng.integers(0, 7, size=n_d)
    dist_safety = rng.uniform(1.2, 1.8, size=n_d)[:, None]
    dist_est = np.zeros((n_d, n_k))
    np.add.at(dist_est, dist_idx, base)
    dist_stock = np.ceil(dist_est * (7 + DIST_LEAD_DAYS) * dist_safety * 1.5).astype(np.int64)
    dist_on_order = np.zeros((n_d, n_k), dtype=np.int64)
    dist_arrivals = np.zeros((RING, n_d, n_k), dtype=np.int64)

    # regional DCs, fed weekly by the plants within a capacity set at ~1.2x average demand
    dc_est = np.zeros((n_w, n_k))
    np.add.at(dc_est, dist_dc, dist_est)
    dc_stock = np.ceil(dc_est * 21).astype(np.int64)
    dc_arrivals = np.zeros((RING, n_w, n_k), dtype=np.int64)
    dc_in_transit = np.zeros((n_w, n_k), dtype=np.int64)
    capacity = weekly_capacity(world, calendar)
    weekdays = calendar["weekday"].to_numpy()

    for t in range(cfg.n_days):
        slot = t % RING
        stock += arrivals[slot]
        on_order -= arrivals[slot]
        arrivals[slot] = 0
        dist_stock += dist_arrivals[slot]
        dist_on_order -= dist_arrivals[slot]
        dist_arrivals[slot] = 0
        dc_stock += dc_arrivals[slot]
        dc_in_transit -= dc_arrivals[slot]
        dc_arrivals[slot] = 0

        # demand: negative binomial around the day's rate
        age = t - launch_day
        launch = np.where(age < 0, 0.0, 1 - np.exp(-np.maximum(age, 0) / 30.0))
        launch = launch * np.where(success | (age < 60), 1.0, np.exp(-np.maximum(age - 60, 0) / 90))
        active = (t >= onboard_day).astype(float)
        m = month_index[t]
        lam = base * cat_mult[t][None, :] * launch[None, :] * active[:, None]
        lam *= competition[m][prov_idx][:, cat_idx]
        lam *= np.where(display[m], DISPLAY_UPLIFT, 1.0)[:, None]
        price = np.ones((n_s, n_k))
        for signed_stores, k, factor in promo_events.get(t, ()):
            price[signed_stores, k] = factor
        lam = lam * price**-ELASTICITY * rng.gamma(3.0, 1 / 3.0, size=lam.shape)
        demand = rng.poisson(lam)
        sales = np.minimum(demand, stock)
        stock -= sales
        stockouts = int((demand > sales).sum())

        # stores smooth what they sold (not what was asked: they cannot see lost sales)
        est = 0.9 * est + 0.1 * sales
        reviewing = (review_weekday == weekdays[t]) & (active > 0)
        target = np.ceil(est * (7 + STORE_LEAD_DAYS) * safety)
        want = np.where(reviewing[:, None], np.maximum(0, target - stock - on_order), 0)
        want = (np.ceil(want / inner_pack) * inner_pack).astype(np.int64)

        # distributors fill what they can, proportionally when short
        delivered, shipped = _allocate(want, dist_idx, dist_stock)
        dist_stock -= shipped
        arrivals[(t + STORE_LEAD_DAYS) % RING] += delivered
        on_order += delivered

        # distributors reorder from their DC on their review day, in full cases
        asked = np.zeros((n_d, n_k), dtype=np.int64)
        np.add.at(asked, dist_idx, want)
        dist_est = 0.85 * dist_est + 0.15 * asked
        d_review = dist_review == weekdays[t]
        d_target = np.ceil(dist_est * (7 + DIST_LEAD_DAYS) * dist_safety)
        d_want = np.where(
            d_review[:, None], np.maximum(0, d_target - dist_stock - dist_on_order), 0
        )
        d_want = (np.ceil(d_want / case_pack) * case_pack).astype(np.int64)
        d_shipped, _ = _allocate(d_want, dist_dc, dc_stock)
        d_shipped = (d_shipped // case_pack) * case_pack  # DCs ship whole cases only
        dc_out = np.zeros((n_w, n_k), dtype=np.int64)
        np.add.at(dc_out, dist_dc, d_shipped)
        dc_stock -= dc_out
        dist_arrivals[(t + DIST_LEAD_DAYS) % RING] += d_shipped
        dist_on_order += d_shipped
        dc_est = 0.9 * dc_est + 0.1 * dc_out

        # plants produce on Mondays for the DCs' needs, within weekly capacity
        production = None
        if weekdays[t] == 0:
            need = np.maximum(0, np.ceil(dc_est * 21) - dc_stock - dc_in_transit)
            total = need.sum(axis=0)
            scale = np.where(total > capacity, capacity / np.maximum(total, 1), 1.0)
            production = (np.floor(need * scale[None, :] / case_pack) * case_pack).astype(np.int64)
            dc_arrivals[(t + PLANT_LEAD_DAYS) % RING] += production
            dc_in_transit += production

        yield DayRecord(
            day=t,
            demand=_sparse(demand),
            sales=(*_sparse(sales), price[sales > 0]),
            store_orders=(*_sparse(want), delivered[want > 0]),
            dist_orders=(*_sparse(d_want), d_shipped[d_want > 0]),
            dc_stock=dc_stock.copy(),
            production=production,
            store_stock=_sparse(stock) if weekdays[t] == 6 else None,
            stockouts=stockouts,
        )


def _allocate(
    want: np.ndarray, owner: np.ndarray, supply: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Fill rows of `want` from their owner's `supply`, pro rata when short.

    Returns (filled per row, total taken per owner).
    """
    asked = np.zeros(supply.shape, dtype=np.int64)
    np.add.at(asked, owner, want)
    fill = np.where(asked > 0, np.minimum(1.0, supply / np.maximum(asked, 1)), 1.0)
    filled = np.floor(want * fill[owner]).astype(np.int64)
    taken = np.zeros(supply.shape, dtype=np.int64)
    np.add.at(taken, owner, filled)
    return filled, taken


def _month_index(dates: list[date]) -> np.ndarray:
    first = dates[0]
    return np.array([(d.year - first.year) * 12 + d.month - first.month for d in dates])


def _sparse(matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Row index, column index and value of the non-zero cells, in compact dtypes."""
    rows, cols = np.nonzero(matrix)
    return rows.astype(np.int32), cols.astype(np.int16), matrix[rows, cols].astype(np.int32)
