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


def store_orders(out: Out, month: str, days: list[DayRecord]) -> pl.DataFrame:
    """Stores' orders to their distributor and what was delivered (amount in yuan).

    Returns the rows written (s, k, day, qty_ordered, qty_delivered, amount, ...):
    the store-purchase evidence of the incentive programmes.
    """
    look = out.lookup
    orders = look.with_keys(
        stack_days(days, "store_orders", ["s", "k", "qty_ordered", "qty_delivered"])
    )
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
