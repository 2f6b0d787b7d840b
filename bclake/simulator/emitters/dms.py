"""DMS exports: distributors, stores, promotions and sign-ups, sell-through, store orders,
store inventory, display checks and rebates."""

from __future__ import annotations

import numpy as np
import polars as pl

from bclake.simulator.dynamics import STORE_LEAD_DAYS, DayRecord, stack_days
from bclake.simulator.emitters.out import Out
from bclake.simulator.lookup import check_id, daily_id
from bclake.simulator.world import REGIONS, World

STORE_MARKUP = 1.12  # distributors sell to stores at list price plus 12%


def _promo_id() -> pl.Expr:
    return pl.format("PR{}", pl.col("promo_no").cast(pl.String).str.zfill(6))


def masters(out: Out, world: World, promos: pl.DataFrame, signups: pl.DataFrame) -> None:
    """Distributors, stores, the promotion calendar and the stores signed up to each promotion.

    A store signs up a week before the promotion starts.
    """
    look = out.lookup
    out.landing.write("dms.distributors", world.distributors, "distributors")
    out.landing.write("dms.stores", world.stores, "stores")
    promo_rows = promos.with_columns(
        promo_id=_promo_id(),
        region=pl.col("region_idx").replace_strict(dict(enumerate(REGIONS))),
        sku_code=pl.Series(look.sku_codes).gather(promos["sku_idx"]),
        start_date=look.date_of("start_day"),
        end_date=look.date_of(pl.col("end_day") - 1),
    )
    out.landing.write("dms.promotions", promo_rows, "promotions")
    signed = (
        signups.join(promos.select("promo_no", "start_day"), on="promo_no")
        .with_columns(
            promo_id=_promo_id(),
            store_code=pl.Series(look.store_codes).gather(signups["s"]),
            signup_date=look.date_of(pl.col("start_day") - 7),
        )
        .sort("promo_no", "s")
    )
    out.landing.write("dms.promotion_signups", signed, "promotion_signups")


def sell_through(out: Out, month: str, sales: pl.DataFrame, has_pos: np.ndarray) -> None:
    """Daily sell-through reports of the stores whose POS reports (`has_pos`: stores).

    `sales` has s, k, qty, price (factor on the retail price) and day.
    """
    look = out.lookup
    pos = (
        look.with_keys(sales.filter(pl.Series(has_pos).gather(sales["s"])))
        .with_columns(
            biz_date=pl.col("date"),
            report_id=daily_id("ST"),
            amount=(
                pl.col("qty")
                * pl.lit(pl.Series(look.retail_price)).gather(pl.col("k"))
                * pl.col("price")
            ).round(2),
        )
        .sort("day", "s", "k")
    )
    out.landing.write("dms.sell_through", pos, f"sell_through_{month}")


# how a store order was placed (the DMS's `orderSource`): from the replenishment
# suggestion the DMS offers (建议订单), typed by the store, or by the distributor's rep
ORDER_SOURCES = ("suggested", "manual", "rep")
SUGGESTED_FIRST, SUGGESTED_LAST = 0.30, 0.80  # share of orders from the suggestion, rollout
SUGGESTED_DIGITAL = 0.12  # more of the orders of stores active on the mini-program
REP_SHARE = 0.4  # of the orders not placed from the suggestion


def order_sources(
    orders: pl.DataFrame, digital: np.ndarray, n_days: int, rng: np.random.Generator
) -> pl.Series:
    """One `ORDER_SOURCES` value per order line of `orders` (s, day), the same for every line
    of one order (store x day). The suggested order is rolled out over the simulated
    period: its share rises from `SUGGESTED_FIRST` to `SUGGESTED_LAST`, higher for stores
    active on the mini-program (`digital`, per store); the rest are placed by the rep or
    typed by the store."""
    docs = orders.select("s", "day").unique(maintain_order=True)
    s, day = docs["s"].to_numpy(), docs["day"].to_numpy()
    progress = np.minimum(day / max(n_days - 1, 1), 1.0)  # a continued run stays rolled out
    p = SUGGESTED_FIRST + (SUGGESTED_LAST - SUGGESTED_FIRST) * progress
    p = np.clip(p + SUGGESTED_DIGITAL * digital[s], 0.0, 0.95)
    u = rng.random(len(docs))
    source = np.where(u < p, 0, np.where(rng.random(len(docs)) < REP_SHARE, 2, 1))
    docs = docs.with_columns(
        order_source=pl.Series(np.array(ORDER_SOURCES)[source], dtype=pl.String)
    )
    return orders.join(docs, on=["s", "day"], how="left", maintain_order="left")["order_source"]


def store_orders(
    out: Out,
    month: str,
    days: list[DayRecord],
    digital: np.ndarray,
    n_days: int,
    rng: np.random.Generator,
) -> pl.DataFrame:
    """Stores' orders to their distributor, what was delivered (amount in yuan) and how
    each order was placed (`order_sources`; `digital`: stores active on the mini-program).

    Returns the rows written (s, k, day, qty_ordered, qty_delivered, amount, ...):
    the store-purchase evidence of the incentive programmes.
    """
    look = out.lookup
    orders = look.with_keys(
        stack_days(days, "store_orders", ["s", "k", "qty_ordered", "qty_delivered"])
    )
    orders = orders.with_columns(order_source=order_sources(orders, digital, n_days, rng))
    orders = orders.with_columns(
        order_date=pl.col("date"),
        delivery_date=pl.when(pl.col("qty_delivered") > 0).then(
            pl.col("date") + pl.duration(days=STORE_LEAD_DAYS)
        ),
        distributor_code=look.dist_code_of(look.dist_of_store[orders["s"].to_numpy()]),
        order_id=daily_id("SO"),
        amount=(
            pl.col("qty_delivered")
            * pl.lit(pl.Series(look.list_price)).gather(pl.col("k"))
            * STORE_MARKUP
        ).round(2),
    ).sort("day", "s", "k")
    out.landing.write("dms.store_orders", orders, f"store_orders_{month}")
    return orders


def store_inventory(out: Out, month: str, days: list[DayRecord], reporting: np.ndarray) -> None:
    """Weekly stock counts of the stores that report through the mini-program (`reporting`)."""
    parts = [
        pl.DataFrame({"s": s, "k": k, "on_hand_units": v, "day": np.int32(d.day)})
        for d in days
        if d.store_stock is not None
        for s, k, v in [d.store_stock]
    ]
    if not parts:
        return
    stock = pl.concat(parts)
    stock = (
        out.lookup.with_keys(stock.filter(pl.Series(reporting).gather(stock["s"])))
        .with_columns(snapshot_date=pl.col("date"), report_id=daily_id("SI"))
        .sort("day", "s", "k")
    )
    out.landing.write("dms.store_inventory", stock, f"store_inventory_{month}")


def display_checks(out: Out, label: str, checks: pl.DataFrame) -> None:
    """The reps' checks as reported (m, s, day, compliant, score, photo_count, photo_hash
    from `trade.reported_checks`)."""
    if checks.is_empty():
        return
    look = out.lookup
    checks = checks.with_columns(
        check_id=check_id(pl.col("m"), pl.col("s")),
        store_code=pl.Series(look.store_codes).gather(checks["s"]),
        check_date=look.date_of("day"),
    ).sort("day", "store_code")
    out.landing.write("dms.display_checks", checks, f"display_checks_{label}")


def rebates(out: Out, label: str, rebates: pl.DataFrame) -> None:
    """The DMS's programme payments (from `incentives.pay`): per payee, programme and period."""
    out.landing.write("dms.rebates", rebates, f"rebates_{label}")
