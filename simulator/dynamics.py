"""Daily demand, stock-censored sales and the store -> distributor -> brand order chain.

The loop runs over days; each day is vectorised over stores x SKUs. Stores and
distributors follow their own imperfect order-up-to policies on smoothed
(censored) sales, so stock-outs and the bullwhip effect emerge rather than
being drawn.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import polars as pl

from simulator.config import ScaleConfig
from simulator.world import REGIONS, World

STORE_LEAD_DAYS = 2
DIST_LEAD_DAYS = 5
RING = 16  # days of pipeline kept for arrivals


@dataclass
class DayRecord:
    """What happened on one day, as sparse (store, sku, value) triples."""

    day: int
    demand: tuple[np.ndarray, np.ndarray, np.ndarray]
    sales: tuple[np.ndarray, np.ndarray, np.ndarray]
    store_orders: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]  # s, k, ordered, delivered
    dist_orders: tuple[np.ndarray, np.ndarray, np.ndarray]  # d, k, qty
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


def promotions(cfg: ScaleConfig, n_skus: int, rng: np.random.Generator) -> pl.DataFrame:
    """Region x SKU price promotions: about six 7-14 day windows per year each."""
    rows = []
    n_windows = max(1, int(6 * cfg.n_days / 365))
    for r in range(cfg.n_regions):
        for k in range(n_skus):
            for start in rng.choice(cfg.n_days - 14, size=n_windows, replace=False):
                rows.append(
                    (
                        r,
                        k,
                        int(start),
                        int(start + rng.integers(7, 15)),
                        float(rng.choice([0.1, 0.15, 0.2])),
                    )
                )
    return pl.DataFrame(
        rows, schema=["region_idx", "sku_idx", "start_day", "end_day", "discount"], orient="row"
    )


def price_factor(cfg: ScaleConfig, promos: pl.DataFrame, n_skus: int) -> np.ndarray:
    """days x regions x SKUs: the share of the list price shoppers pay (1 outside promotions)."""
    factor = np.ones((cfg.n_days, len(REGIONS), n_skus))
    for p in promos.iter_rows(named=True):
        factor[p["start_day"] : p["end_day"], p["region_idx"], p["sku_idx"]] = 1 - p["discount"]
    return factor


def simulate_days(
    cfg: ScaleConfig,
    world: World,
    calendar: pl.DataFrame,
    prices: np.ndarray,
    rng: np.random.Generator,
) -> Iterator[DayRecord]:
    """Yield one DayRecord per simulated day."""
    stores, products = world.stores, world.products
    n_s, n_k = len(stores), len(products)
    region_idx = np.array([REGIONS.index(r) for r in stores["region"]])
    dist_codes = world.distributors["distributor_code"].to_list()
    dist_idx = np.array([dist_codes.index(d) for d in stores["distributor_code"]])
    n_d = len(dist_codes)
    cat_idx = np.array([world.categories.index(c) for c in products["category"]])
    case_pack = products["case_pack"].to_numpy()
    inner_pack = np.maximum(1, case_pack // 4)

    base = (
        stores["base_rate"].to_numpy()[:, None]
        * products["popularity"].to_numpy()[None, :]
        * world.region_affinity[region_idx][:, cat_idx]
        * (1.0 + 0.15 * (4 - stores["tier"].to_numpy()))[:, None]
    )
    cat_mult = category_multiplier(calendar, world.categories)[:, cat_idx]  # days x skus
    launch_day = np.array([(d - cfg.start).days for d in products["launch_date"]])
    onboard_day = np.array([(d - cfg.start).days for d in stores["onboard_date"]])
    elasticity = 2.0

    promo_mult = prices**-elasticity

    # store policy state: each store reviews on its own weekday
    review_weekday = rng.integers(0, 7, size=n_s)
    safety = rng.uniform(1.1, 1.6, size=n_s)[:, None]
    est = base * 1.0
    stock = np.ceil(est * (7 + STORE_LEAD_DAYS) * safety).astype(np.int32)
    on_order = np.zeros((n_s, n_k), dtype=np.int32)
    arrivals = np.zeros((RING, n_s, n_k), dtype=np.int32)

    dist_review = rng.integers(0, 7, size=n_d)
    dist_safety = rng.uniform(1.2, 1.8, size=n_d)[:, None]
    dist_est = np.zeros((n_d, n_k))
    np.add.at(dist_est, dist_idx, base)
    dist_stock = np.ceil(dist_est * (7 + DIST_LEAD_DAYS) * dist_safety * 1.5).astype(np.int64)
    dist_on_order = np.zeros((n_d, n_k), dtype=np.int64)
    dist_arrivals = np.zeros((RING, n_d, n_k), dtype=np.int64)
    weekdays = calendar["weekday"].to_numpy()

    for t in range(cfg.n_days):
        slot = t % RING
        stock += arrivals[slot]
        on_order -= arrivals[slot]
        arrivals[slot] = 0
        dist_stock += dist_arrivals[slot]
        dist_on_order -= dist_arrivals[slot]
        dist_arrivals[slot] = 0

        # demand: negative binomial around the day's rate
        age = t - launch_day
        launch = np.where(age < 0, 0.0, 1 - np.exp(-np.maximum(age, 0) / 30.0))
        active = (t >= onboard_day).astype(float)
        lam = base * cat_mult[t][None, :] * launch[None, :] * active[:, None]
        lam = lam * promo_mult[t][region_idx]
        lam = lam * rng.gamma(3.0, 1 / 3.0, size=lam.shape)
        demand = rng.poisson(lam).astype(np.int32)
        sales = np.minimum(demand, stock)
        stock -= sales
        stockouts = int((demand > sales).sum())

        # stores smooth what they sold (not what was asked: they cannot see lost sales)
        est = 0.9 * est + 0.1 * sales
        reviewing = (review_weekday == weekdays[t]) & (active > 0)
        target = np.ceil(est * (7 + STORE_LEAD_DAYS) * safety)
        want = np.where(reviewing[:, None], np.maximum(0, target - stock - on_order), 0)
        want = (np.ceil(want / inner_pack) * inner_pack).astype(np.int64)

        # distributor fills what it can, proportionally when short
        asked = np.zeros((n_d, n_k), dtype=np.int64)
        np.add.at(asked, dist_idx, want)
        fill = np.where(asked > 0, np.minimum(1.0, dist_stock / np.maximum(asked, 1)), 1.0)
        delivered = np.floor(want * fill[dist_idx]).astype(np.int32)
        shipped = np.zeros((n_d, n_k), dtype=np.int64)
        np.add.at(shipped, dist_idx, delivered)
        dist_stock -= shipped
        arrivals[(t + STORE_LEAD_DAYS) % RING] += delivered
        on_order += delivered

        # distributors reorder from the brand on their own review day, in full cases
        dist_est = 0.85 * dist_est + 0.15 * asked
        d_review = dist_review == weekdays[t]
        d_target = np.ceil(dist_est * (7 + DIST_LEAD_DAYS) * dist_safety)
        d_want = np.where(
            d_review[:, None], np.maximum(0, d_target - dist_stock - dist_on_order), 0
        )
        d_want = (np.ceil(d_want / case_pack) * case_pack).astype(np.int64)
        dist_arrivals[(t + DIST_LEAD_DAYS) % RING] += d_want
        dist_on_order += d_want

        yield DayRecord(
            day=t,
            demand=_sparse(demand),
            sales=_sparse(sales),
            store_orders=(*_sparse(want), delivered[want > 0]),
            dist_orders=_sparse(d_want),
            stockouts=stockouts,
        )


def _sparse(matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Row index, column index and value of the non-zero cells, in compact dtypes."""
    rows, cols = np.nonzero(matrix)
    return rows.astype(np.int32), cols.astype(np.int16), matrix[rows, cols].astype(np.int32)
