"""The true cost to serve each store and distributor, and what each truly contributes.

The brand's channel P&L per entity, over every simulated day, from what the
channel really did (not from the exports, which carry dirt):

- revenue: the brand's list value of what the entity took (a store's delivered
  order lines; a distributor's shipments from the DC);
- gross margin: revenue less cost of goods, a share of list value by category
  (`COGS_SHARE`);
- delivery: per store drop (a day with a delivered order) the distributor's
  cost per drop plus its cost per km of the round trip on the road (great
  circle x the distributor's road factor); per DC shipment to a distributor the
  same for the trip from the region's hub; the brand funds the last mile
  (配送费补贴), so a store far from its distributor or ordering in small drops
  costs more than it earns;
- visits: the reps' display checks x the store's cost per visit (by tier), and
  one account visit a month per distributor;
- rebates: what the incentive programmes truly earned (`truth/incentive_earned`);
- promotion cost: the discount the brand funds on units sold at a promotion
  price (list value x discount).

A distributor's P&L is its territory's: its own margin, freight and rebates
plus its stores' delivery, visits, rebates and promotions. Fixed costs are the
brand's share of a truck or rep shared with other brands, taken proportional to
its assortment against `REFERENCE_SKUS`, so worlds of every scale are about as
profitable. The latent costs are drawn from `Streams.geography` after the
geography; what was done is added up in a `ChannelBook` as the days are flushed.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import polars as pl

from bclake.simulator.config import ScaleConfig
from bclake.simulator.dynamics import DayRecord, stack_days
from bclake.simulator.geography import km_between
from bclake.simulator.world import World

COGS_SHARE = {"饮料": 0.55, "乳品": 0.62, "零食": 0.5, "礼盒": 0.45, "调味品": 0.52}
REFERENCE_SKUS = 60  # an assortment of this size bears the full costs below
ROAD_FACTOR = (1.15, 1.6)  # road km per great-circle km, per distributor
DROP_COST = 38.0  # yuan per store drop (median; lognormal by distributor)
KM_COST = 0.65  # yuan per road km of a drop's round trip, its share of a multi-drop route
COST_SIGMA = 0.2
TIER_VISIT_COST = {1: 260.0, 2: 220.0, 3: 190.0, 4: 170.0}  # yuan per rep visit, by city tier
VISIT_SIGMA = 0.15
SHIPMENT_COST = 150.0  # yuan per DC shipment to a distributor
SHIPMENT_KM_COST = 1.0  # yuan per road km of the shipment's round trip (its share of a truck)
ACCOUNT_VISIT_COST = 400.0  # yuan a month to manage a distributor's account
MOVE_MIN_KM = 30.0  # a nearer distributor must save at least this many road km one way
ACTIONS = ("merge_routes", "lower_visit_frequency", "move_distributor", "exit", "none")


@dataclass
class CostModel:
    """Latent costs of one world (arrays by store or distributor index; yuan, km)."""

    cogs: np.ndarray  # SKUs: cost of goods per unit, yuan
    list_price: np.ndarray  # SKUs: yuan per unit
    drop_cost: np.ndarray  # distributors: yuan per store drop
    km_cost: np.ndarray  # distributors: yuan per road km
    road: np.ndarray  # distributors: road km per great-circle km
    dc_km: np.ndarray  # distributors: road km from the region's DC hub to the seat
    store_km: np.ndarray  # stores: road km to their distributor
    nearest: np.ndarray  # stores: the province's distributor nearest by road (index)
    nearest_km: np.ndarray  # stores: road km to it
    visit_cost: np.ndarray  # stores: yuan per rep visit
    dist_of_store: np.ndarray  # stores: distributor index
    share: float  # the brand's share of shared costs (assortment / REFERENCE_SKUS)

    @classmethod
    def draw(cls, cfg: ScaleConfig, world: World, rng: np.random.Generator) -> CostModel:
        """Draw the latent costs: road factor, drop and km cost per distributor, then the
        visit cost per store (in that order)."""
        dists, stores, products = world.distributors, world.stores, world.products
        n_d = len(dists)
        road = rng.uniform(*ROAD_FACTOR, n_d)
        drop_cost = DROP_COST * rng.lognormal(0.0, COST_SIGMA, n_d)
        km_cost = KM_COST * rng.lognormal(0.0, COST_SIGMA, n_d)
        tier = stores["tier"].to_numpy()
        visit = np.array([TIER_VISIT_COST[t] for t in tier]) * rng.lognormal(
            0.0, VISIT_SIGMA, len(tier)
        )
        codes = dists["distributor_code"].to_list()
        dist_of = np.array([codes.index(d) for d in stores["distributor_code"]])
        d_lat, d_lon = dists["lat"].to_numpy(), dists["lon"].to_numpy()
        km = (
            km_between(
                stores["lat"].to_numpy()[:, None],
                stores["lon"].to_numpy()[:, None],
                d_lat[None, :],
                d_lon[None, :],
            )
            * road[None, :]
        )
        same = stores["province"].to_numpy()[:, None] == dists["province"].to_numpy()[None, :]
        km_same = np.where(same, km, np.inf)
        nearest = km_same.argmin(axis=1)
        rows = np.arange(len(stores))
        hub = world.cities.filter(pl.col("city").is_in(world.warehouses["city"].to_list()))
        hub_of = dict(zip(hub["city"], zip(hub["lat"], hub["lon"], strict=True), strict=True))
        region_hub = dict(zip(world.warehouses["region"], world.warehouses["city"], strict=True))
        h = np.array([hub_of[region_hub[r]] for r in dists["region"]])
        dc_km = km_between(h[:, 0], h[:, 1], d_lat, d_lon) * road
        cogs_share = np.array([COGS_SHARE[c] for c in products["category"]])
        price = products["list_price"].to_numpy()
        return cls(
            cogs=price * cogs_share,
            list_price=price,
            drop_cost=drop_cost,
            km_cost=km_cost,
            road=road,
            dc_km=dc_km,
            store_km=km[rows, dist_of],
            nearest=nearest,
            nearest_km=km[rows, nearest],
            visit_cost=visit,
            dist_of_store=dist_of,
            share=cfg.n_skus / REFERENCE_SKUS,
        )

    def drop(self, d: np.ndarray, km: np.ndarray) -> np.ndarray:
        """Yuan per store drop from distributor(s) `d` over `km` road km one way."""
        return self.share * (self.drop_cost[d] + self.km_cost[d] * 2 * km)


@dataclass
class ChannelBook:
    """What the channel did, added up per store and distributor as days are flushed."""

    n_stores: int
    n_dists: int
    store_value: np.ndarray = field(init=False)  # yuan at list price, delivered
    store_cogs: np.ndarray = field(init=False)  # yuan
    drops: np.ndarray = field(init=False)  # days with a delivery
    visits: np.ndarray = field(init=False)  # the reps' display checks
    promo: np.ndarray = field(init=False)  # yuan of discount the brand funds
    dist_value: np.ndarray = field(init=False)  # yuan at list price, shipped
    dist_cogs: np.ndarray = field(init=False)
    shipments: np.ndarray = field(init=False)  # days with a DC shipment
    days: int = 0  # days added

    def __post_init__(self) -> None:
        for name in ("store_value", "store_cogs", "drops", "visits", "promo"):
            setattr(self, name, np.zeros(self.n_stores))
        for name in ("dist_value", "dist_cogs", "shipments"):
            setattr(self, name, np.zeros(self.n_dists))

    def add(
        self, days: list[DayRecord], sales: pl.DataFrame, checks: pl.DataFrame, cost: CostModel
    ) -> None:
        """Add `days`' deliveries, shipments, the promotion discounts in `sales` (s, k, qty,
        price factor) and the display checks in `checks` (s, one row per check)."""
        orders = stack_days(days, "store_orders", ["s", "k", "ordered", "delivered"])
        orders = orders.filter(pl.col("delivered") > 0)
        s, k = orders["s"].to_numpy(), orders["k"].to_numpy()
        q = orders["delivered"].to_numpy().astype(np.float64)
        np.add.at(self.store_value, s, q * cost.list_price[k])
        np.add.at(self.store_cogs, s, q * cost.cogs[k])
        drops = orders.select("s", "day").unique()["s"].to_numpy()
        np.add.at(self.drops, drops, 1)
        ship = stack_days(days, "dist_orders", ["d", "k", "ordered", "shipped"])
        ship = ship.filter(pl.col("shipped") > 0)
        d, k = ship["d"].to_numpy(), ship["k"].to_numpy()
        q = ship["shipped"].to_numpy().astype(np.float64)
        np.add.at(self.dist_value, d, q * cost.list_price[k])
        np.add.at(self.dist_cogs, d, q * cost.cogs[k])
        np.add.at(self.shipments, ship.select("d", "day").unique()["d"].to_numpy(), 1)
        promo = sales.filter(pl.col("price") < 1.0)
        k = promo["k"].to_numpy()
        np.add.at(
            self.promo,
            promo["s"].to_numpy(),
            promo["qty"].to_numpy() * cost.list_price[k] * (1 - promo["price"].to_numpy()),
        )
        if checks.height:
            np.add.at(self.visits, checks["s"].to_numpy(), 1)
        self.days += len(days)


def economics(
    world: World, cost: CostModel, book: ChannelBook, earned: pl.DataFrame
) -> pl.DataFrame:
    """Each store's and distributor's true P&L and the action it deserves.

    `earned` is the incentive truth (payee_code, amount). Returns entity_type
    (store | distributor), code, revenue, gross_margin, delivery_cost, visit_cost,
    rebates, promo_cost, contribution (yuan over the simulated days),
    unprofitable (contribution < 0), deserved_action (`ACTIONS`; none when
    profitable) and the inputs: drops, visits, road_km (to the distributor or,
    for a distributor, from its DC hub), nearest_distributor.

    An unprofitable store deserves the remedy that saves most, if it brings
    the contribution to zero or above: move_distributor (a distributor of its
    province at least `MOVE_MIN_KM` nearer by road serves it), merge_routes
    (half the drops, twice the size), lower_visit_frequency (a visit a quarter
    instead of a month); otherwise (low sales, heavy rebates or promotions) exit.
    A distributor likewise: merge_routes (half its shipments and its stores'
    drops), lower_visit_frequency (its stores' visits and its account visits to
    a third); otherwise exit.
    """
    stores, dists = world.stores, world.distributors
    earned = earned.group_by("payee_code").agg(pl.col("amount").sum())
    paid = dict(earned.iter_rows())
    d_of = cost.dist_of_store
    s_delivery = book.drops * cost.drop(d_of, cost.store_km)
    s_visit = book.visits * cost.visit_cost * cost.share
    s_rebates = np.array([paid.get(c, 0.0) for c in stores["store_code"]])
    s_gm = book.store_value - book.store_cogs
    s_contrib = s_gm - s_delivery - s_visit - s_rebates - book.promo
    moved = book.drops * cost.drop(cost.nearest, cost.nearest_km)
    can_move = (cost.nearest != d_of) & (cost.store_km - cost.nearest_km >= MOVE_MIN_KM)
    s_action = _action(
        s_contrib,
        [
            ("move_distributor", np.where(can_move, s_delivery - moved, 0.0)),
            ("merge_routes", s_delivery / 2),
            ("lower_visit_frequency", s_visit * 2 / 3),
        ],
    )
    store_rows = pl.DataFrame(
        {
            "entity_type": "store",
            "code": stores["store_code"],
            "revenue": book.store_value,
            "gross_margin": s_gm,
            "delivery_cost": s_delivery,
            "visit_cost": s_visit,
            "rebates": s_rebates,
            "promo_cost": book.promo,
            "contribution": s_contrib,
            "deserved_action": s_action,
            "drops": book.drops.astype(np.int64),
            "visits": book.visits.astype(np.int64),
            "road_km": cost.store_km,
            "nearest_distributor": dists["distributor_code"].gather(pl.Series(cost.nearest)),
        }
    )

    n_d = len(dists)

    def by_dist(values: np.ndarray) -> np.ndarray:
        return np.bincount(d_of, weights=values, minlength=n_d)

    months = book.days / 30.4
    ship_cost = book.shipments * cost.share * (SHIPMENT_COST + SHIPMENT_KM_COST * 2 * cost.dc_km)
    own_drops = by_dist(s_delivery)
    d_delivery = ship_cost + own_drops
    account = np.full(n_d, months * ACCOUNT_VISIT_COST * cost.share)
    d_visit = by_dist(s_visit) + account
    d_rebates = np.array([paid.get(c, 0.0) for c in dists["distributor_code"]]) + by_dist(s_rebates)
    d_promo = by_dist(book.promo)
    d_gm = book.dist_value - book.dist_cogs
    d_contrib = d_gm - d_delivery - d_visit - d_rebates - d_promo
    d_action = _action(
        d_contrib,
        [("merge_routes", d_delivery / 2), ("lower_visit_frequency", d_visit * 2 / 3)],
    )
    dist_rows = pl.DataFrame(
        {
            "entity_type": "distributor",
            "code": dists["distributor_code"],
            "revenue": book.dist_value,
            "gross_margin": d_gm,
            "delivery_cost": d_delivery,
            "visit_cost": d_visit,
            "rebates": d_rebates,
            "promo_cost": d_promo,
            "contribution": d_contrib,
            "deserved_action": d_action,
            "drops": book.shipments.astype(np.int64),
            "visits": np.full(n_d, round(months), dtype=np.int64),
            "road_km": cost.dc_km,
            "nearest_distributor": dists["distributor_code"],
        }
    )
    money = [
        "revenue",
        "gross_margin",
        "delivery_cost",
        "visit_cost",
        "rebates",
        "promo_cost",
        "contribution",
    ]
    return (
        pl.concat([store_rows, dist_rows])
        .with_columns(
            *[pl.col(c).round(2) for c in money],
            pl.col("road_km").round(1),
            unprofitable=pl.col("contribution") < 0,
        )
        .select(
            "entity_type",
            "code",
            *money,
            "unprofitable",
            "deserved_action",
            "drops",
            "visits",
            "road_km",
            "nearest_distributor",
        )
    )


def _action(contribution: np.ndarray, remedies: list[tuple[str, np.ndarray]]) -> np.ndarray:
    """For a negative contribution, the remedy of largest gain (the dominant excess cost),
    when that gain brings the contribution to >= 0, else `exit`; `none` for the profitable.

    `remedies` are (action, gain in yuan per entity); ties go to the earlier one.
    """
    gains = np.stack([g for _, g in remedies])
    best = gains.argmax(axis=0)
    names = np.array([n for n, _ in remedies], dtype=object)[best]
    fixed = contribution + gains[best, np.arange(len(contribution))] >= 0
    out = np.where(contribution < 0, np.where(fixed, names, "exit"), "none")
    return out.astype(str)
