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

from dataclasses import dataclass
from datetime import date

import numpy as np
import polars as pl

from bclake.simulator.config import ScaleConfig
from bclake.simulator.market import Market
from bclake.simulator.world import REGIONS, World, plant_index

STORE_LEAD_DAYS = 2
DIST_LEAD_DAYS = 4
PLANT_LEAD_DAYS = 3
RING = 16  # days of pipeline kept for arrivals
ELASTICITY = 2.0
DISPLAY_UPLIFT = 1.08
DISPLAY_P0, DISPLAY_P1 = 0.3, 0.6  # display compliant in a month w.p. p0 + p1 x engagement


@dataclass
class DayRecord:
    """What happened on one day, as sparse (row, column, value...) arrays."""

    day: int
    demand: tuple[np.ndarray, ...]  # s, k, units wanted, stock left after the day's sales
    sales: tuple[np.ndarray, ...]  # s, k, units sold, price paid factor
    store_orders: tuple[np.ndarray, ...]  # s, k, ordered, delivered
    dist_orders: tuple[np.ndarray, ...]  # d, k, ordered, shipped (units)
    dc_stock: np.ndarray  # warehouses x skus, end of day
    production: np.ndarray | None  # warehouses x skus produced for each DC (Mondays)
    store_stock: tuple[np.ndarray, ...] | None  # s, k, on hand (Sundays)
    stockouts: int
    capacity: np.ndarray | None = None  # SKUs: the plants' capacity that week (Mondays)


@dataclass
class Effects:
    """What the shocks active on one day change (`scenarios.Scenario.effects`); None: nothing.

    Multipliers are exact 1.0 outside the shocked cells, so cells a shock
    leaves alone are computed exactly as without it.
    """

    demand: np.ndarray | None = None  # stores x SKUs: multiplier on the demand rate
    capacity: np.ndarray | None = None  # SKUs: multiplier on the plants' weekly capacity
    dc_closed: np.ndarray | None = None  # warehouses: bool, the DC ships nothing today
    dc_extra_lead: np.ndarray | None = None  # warehouses: extra days DC -> distributor


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
    n_windows = max(1, int(6 * cfg.horizon_days / 365))
    mechanisms = ("特价", "买赠", "满减")
    for r in range(cfg.n_regions):
        for k in range(len(world.products)):
            for start in sorted(rng.choice(cfg.horizon_days - 14, size=n_windows, replace=False)):
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
    n_months = cfg.horizon_days // 28 + 2
    eng = world.stores["engagement"].to_numpy()
    return rng.random((n_months, len(eng))) < DISPLAY_P0 + DISPLAY_P1 * eng


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


class Channel:
    """The state of stores, distributors, DCs and plants; `step(t, rng)` simulates day t.

    A plain object of arrays, saved inside `state.SimState` so a finished
    simulation can be continued later with `bclake simulate --continue`. `rng`
    draws the stores' and distributors' review days and safety factors here,
    and each day's demand in `step`.
    """

    def __init__(
        self,
        cfg: ScaleConfig,
        world: World,
        calendar: pl.DataFrame,
        promos: pl.DataFrame,
        signups: pl.DataFrame,
        display: np.ndarray,
        market: Market,
        rng: np.random.Generator,
        visitor: np.ndarray | None = None,
    ) -> None:
        stores, products = world.stores, world.products
        # stores: visitors' extra demand as a multiple of the day's rate (`geography`)
        self.visitor = visitor if visitor is not None else np.zeros(len(stores))
        self.visited = np.flatnonzero(self.visitor > 0)
        n_s, n_k = len(stores), len(products)
        dist_codes = world.distributors["distributor_code"].to_list()
        self.dist_idx = np.array([dist_codes.index(d) for d in stores["distributor_code"]])
        n_d = len(dist_codes)
        wh_regions = world.warehouses["region"].to_list()
        self.dist_dc = np.array([wh_regions.index(r) for r in world.distributors["region"]])
        n_w = len(wh_regions)
        self.cat_idx = np.array([world.categories.index(c) for c in products["category"]])
        self.prov_idx = np.array([world.provinces.index(p) for p in stores["province"]])
        self.case_pack = products["case_pack"].to_numpy()
        self.inner_pack = np.maximum(1, self.case_pack // 4)
        self.display = display
        self.base = base_rates(world)
        self.cat_mult = category_multiplier(calendar, world.categories)[:, self.cat_idx]
        self.launch_day = np.array([(d - cfg.start).days for d in products["launch_date"]])
        self.success = products["launch_success"].to_numpy()
        self.onboard_day = np.array([(d - cfg.start).days for d in stores["onboard_date"]])
        self.month_index = _month_index(calendar["date"].to_list())
        self.competition = market.demand_factor()  # months x provinces x categories
        self.weekdays = calendar["weekday"].to_numpy()
        self.capacity = weekly_capacity(world, calendar)

        # promotions: which (store, sku) pairs are discounted on which days
        self.signed = signups.join(promos, on="promo_no").select(
            "promo_no", "s", "sku_idx", "start_day", "end_day", "discount"
        )
        self.n_days_planned = len(calendar)
        self.promo_events = self._promo_events()

        # stores review weekly on their own weekday
        self.review_weekday = rng.integers(0, 7, size=n_s)
        self.safety = rng.uniform(1.1, 1.6, size=n_s)[:, None]
        self.est = self.base * 1.0
        self.stock = np.ceil(self.est * (7 + STORE_LEAD_DAYS) * self.safety).astype(np.int64)
        self.on_order = np.zeros((n_s, n_k), dtype=np.int64)
        self.arrivals = np.zeros((RING, n_s, n_k), dtype=np.int64)

        self.dist_review = rng.integers(0, 7, size=n_d)
        self.dist_safety = rng.uniform(1.2, 1.8, size=n_d)[:, None]
        self.dist_est = np.zeros((n_d, n_k))
        np.add.at(self.dist_est, self.dist_idx, self.base)
        self.dist_stock = np.ceil(
            self.dist_est * (7 + DIST_LEAD_DAYS) * self.dist_safety * 1.5
        ).astype(np.int64)
        self.dist_on_order = np.zeros((n_d, n_k), dtype=np.int64)
        self.dist_arrivals = np.zeros((RING, n_d, n_k), dtype=np.int64)

        # regional DCs, fed weekly by the plants within capacity
        self.dc_est = np.zeros((n_w, n_k))
        np.add.at(self.dc_est, self.dist_dc, self.dist_est)
        self.dc_stock = np.ceil(self.dc_est * 21).astype(np.int64)
        self.dc_arrivals = np.zeros((RING, n_w, n_k), dtype=np.int64)
        self.dc_in_transit = np.zeros((n_w, n_k), dtype=np.int64)

    def _promo_events(self) -> dict[int, list[tuple[np.ndarray, int, float]]]:
        events: dict[int, list[tuple[np.ndarray, int, float]]] = {}
        for part in self.signed.partition_by("promo_no", maintain_order=True):
            row = part.row(0, named=True)
            for t in range(row["start_day"], min(row["end_day"], self.n_days_planned)):
                events.setdefault(t, []).append(
                    (part["s"].to_numpy(), row["sku_idx"], 1 - row["discount"])
                )
        return events

    def __getstate__(self) -> dict:
        """Saved without the per-day promotion index, which is rebuilt from `signed`."""
        state = self.__dict__.copy()
        del state["promo_events"]
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self.promo_events = self._promo_events()

    @property
    def store_region(self) -> np.ndarray:
        """stores: the region (index of its DC, as DCs are the regions in order) of each
        store's distributor."""
        return self.dist_dc[self.dist_idx]

    @property
    def sku_plant(self) -> np.ndarray:
        """SKUs: the plant (index into `world.PLANTS`) that makes each SKU."""
        return plant_index(self.cat_idx)

    def opening_stock(self) -> np.ndarray:
        """distributors x SKUs: units in the channel before day 0 (stores' and distributors')."""
        out = self.dist_stock.copy()
        np.add.at(out, self.dist_idx, self.stock)
        return out

    def step(
        self,
        t: int,
        rng: np.random.Generator,
        effects: Effects | None = None,
        visitor_rng: np.random.Generator | None = None,
    ) -> DayRecord:
        """Simulate day `t`: arrivals, demand and sales, then every level's reordering.

        `effects` are the day's shocks (`scenarios`); without them the day runs
        exactly as it always did. Stores near untapped cities (`visitor` > 0) get
        their visitors' demand on top, drawn from `visitor_rng` after `rng`'s
        draw, so every other store's demand is exactly what it was without them.
        """
        case_pack = self.case_pack
        slot = t % RING
        self.stock += self.arrivals[slot]
        self.on_order -= self.arrivals[slot]
        self.arrivals[slot] = 0
        self.dist_stock += self.dist_arrivals[slot]
        self.dist_on_order -= self.dist_arrivals[slot]
        self.dist_arrivals[slot] = 0
        self.dc_stock += self.dc_arrivals[slot]
        self.dc_in_transit -= self.dc_arrivals[slot]
        self.dc_arrivals[slot] = 0

        # demand: negative binomial around the day's rate
        age = t - self.launch_day
        launch = np.where(age < 0, 0.0, 1 - np.exp(-np.maximum(age, 0) / 30.0))
        launch = launch * np.where(
            self.success | (age < 60), 1.0, np.exp(-np.maximum(age - 60, 0) / 90)
        )
        active = (t >= self.onboard_day).astype(float)
        m = self.month_index[t]
        lam = self.base * self.cat_mult[t][None, :] * launch[None, :] * active[:, None]
        lam *= self.competition[m][self.prov_idx][:, self.cat_idx]
        lam *= np.where(self.display[m], DISPLAY_UPLIFT, 1.0)[:, None]
        if effects is not None and effects.demand is not None:
            lam *= effects.demand
        price = np.ones(lam.shape)
        for signed_stores, k, factor in self.promo_events.get(t, ()):
            price[signed_stores, k] = factor
        lam = lam * price**-ELASTICITY * rng.gamma(3.0, 1 / 3.0, size=lam.shape)
        demand = rng.poisson(lam)
        if visitor_rng is not None and len(self.visited):
            near = self.visited
            demand[near] += visitor_rng.poisson(lam[near] * self.visitor[near, None])
        sales = np.minimum(demand, self.stock)
        self.stock -= sales
        stockouts = int((demand > sales).sum())

        # stores smooth what they sold (not what was asked: they cannot see lost sales)
        self.est = 0.9 * self.est + 0.1 * sales
        reviewing = (self.review_weekday == self.weekdays[t]) & (active > 0)
        target = np.ceil(self.est * (7 + STORE_LEAD_DAYS) * self.safety)
        want = np.where(reviewing[:, None], np.maximum(0, target - self.stock - self.on_order), 0)
        want = (np.ceil(want / self.inner_pack) * self.inner_pack).astype(np.int64)

        # distributors fill what they can, proportionally when short
        delivered, shipped = _allocate(want, self.dist_idx, self.dist_stock)
        self.dist_stock -= shipped
        self.arrivals[(t + STORE_LEAD_DAYS) % RING] += delivered
        self.on_order += delivered

        # distributors reorder from their DC on their review day, in full cases
        asked = np.zeros(self.dist_stock.shape, dtype=np.int64)
        np.add.at(asked, self.dist_idx, want)
        self.dist_est = 0.85 * self.dist_est + 0.15 * asked
        d_review = self.dist_review == self.weekdays[t]
        d_target = np.ceil(self.dist_est * (7 + DIST_LEAD_DAYS) * self.dist_safety)
        d_want = np.where(
            d_review[:, None], np.maximum(0, d_target - self.dist_stock - self.dist_on_order), 0
        )
        d_want = (np.ceil(d_want / case_pack) * case_pack).astype(np.int64)
        supply = self.dc_stock
        if effects is not None and effects.dc_closed is not None:
            supply = np.where(effects.dc_closed[:, None], 0, self.dc_stock)
        d_shipped, _ = _allocate(d_want, self.dist_dc, supply)
        d_shipped = (d_shipped // case_pack) * case_pack  # DCs ship whole cases only
        dc_out = np.zeros(self.dc_stock.shape, dtype=np.int64)
        np.add.at(dc_out, self.dist_dc, d_shipped)
        self.dc_stock -= dc_out
        if effects is not None and effects.dc_extra_lead is not None:
            lead = DIST_LEAD_DAYS + effects.dc_extra_lead[self.dist_dc]
            for days in np.unique(lead):
                late = lead == days
                self.dist_arrivals[(t + days) % RING, late] += d_shipped[late]
        else:
            self.dist_arrivals[(t + DIST_LEAD_DAYS) % RING] += d_shipped
        self.dist_on_order += d_shipped
        self.dc_est = 0.9 * self.dc_est + 0.1 * dc_out

        # plants produce on Mondays for the DCs' needs, within weekly capacity
        production = capacity = None
        if self.weekdays[t] == 0:
            capacity = self.capacity
            if effects is not None and effects.capacity is not None:
                capacity = np.floor(self.capacity * effects.capacity).astype(np.int64)
            need = np.maximum(0, np.ceil(self.dc_est * 21) - self.dc_stock - self.dc_in_transit)
            total = need.sum(axis=0)
            scale = np.where(total > capacity, capacity / np.maximum(total, 1), 1.0)
            production = (np.floor(need * scale[None, :] / case_pack) * case_pack).astype(np.int64)
            self.dc_arrivals[(t + PLANT_LEAD_DAYS) % RING] += production
            self.dc_in_transit += production

        return DayRecord(
            day=t,
            demand=(*_sparse(demand), self.stock[demand > 0].astype(np.int32)),
            sales=(*_sparse(sales), price[sales > 0]),
            store_orders=(*_sparse(want), delivered[want > 0]),
            dist_orders=(*_sparse(d_want), d_shipped[d_want > 0]),
            dc_stock=self.dc_stock.copy(),
            production=production,
            store_stock=_sparse(self.stock) if self.weekdays[t] == 6 else None,
            stockouts=stockouts,
            capacity=capacity,
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


def month_number(start: date, day: date) -> int:
    """Calendar months from `start`'s month to `day`'s month (0 for the same month)."""
    return (day.year - start.year) * 12 + day.month - start.month


def _month_index(dates: list[date]) -> np.ndarray:
    return np.array([month_number(dates[0], d) for d in dates])


def _sparse(matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Row index, column index and value of the non-zero cells, in compact dtypes."""
    rows, cols = np.nonzero(matrix)
    return rows.astype(np.int32), cols.astype(np.int16), matrix[rows, cols].astype(np.int32)


def stack_days(days: list[DayRecord], field_name: str, names: list[str]) -> pl.DataFrame:
    """Stack one sparse field of several days into a long frame: `names` columns plus `day`."""
    parts = [getattr(d, field_name) for d in days]
    cols = {n: np.concatenate([p[i] for p in parts]) for i, n in enumerate(names)}
    cols["day"] = np.concatenate(
        [np.full(len(p[0]), d.day, dtype=np.int32) for p, d in zip(parts, days, strict=True)]
    )
    return pl.DataFrame(cols)
