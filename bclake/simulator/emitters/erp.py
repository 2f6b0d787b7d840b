"""ERP exports: product and warehouse masters, shipments, invoices, payments, DC stock, plants.

All ERP files carry Chinese headers, as the system prints them.
"""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import polars as pl

from bclake.simulator.dynamics import DayRecord, stack_days
from bclake.simulator.emitters.out import Out
from bclake.simulator.lookup import numbered
from bclake.simulator.world import PLANTS, World, plant_index

ZH = "zh"


def masters(out: Out, world: World) -> None:
    out.landing.write("erp.products", world.products, "products", header=ZH)
    out.landing.write("erp.warehouses", world.warehouses, "warehouses", header=ZH)


def shipments(out: Out, month: str, days: list[DayRecord]) -> pl.DataFrame:
    """Distributors' orders and what the DCs shipped, one shipment per distributor and day.

    Writes `shipments_<month>`; returns its lines (shipment_id, d,
    distributor_code, ship_date, amount in yuan, ...), empty when nothing was ordered.
    """
    look = out.lookup
    orders = stack_days(days, "dist_orders", ["d", "k", "ordered", "shipped"])
    if orders.is_empty():
        return orders
    lines = orders.with_columns(
        distributor_code=look.dist_code_of(orders["d"]),
        warehouse_code=look.dc_code_of_dist(orders["d"].to_numpy()),
        sku_code=pl.Series(look.sku_codes).gather(orders["k"]),
        order_date=look.date_of("day"),
        ship_date=look.date_of(pl.col("day") + 1),
        qty_ordered_units=pl.col("ordered"),
        qty_shipped_units=pl.col("shipped"),
        amount=(pl.col("shipped") * pl.Series(look.list_price).gather(orders["k"])).round(2),
    ).sort("day", "d", "k")
    heads = lines.select("day", "d").unique(maintain_order=True)
    heads = heads.with_columns(
        shipment_id=numbered("SH", out.serials.take("shipment", heads.height), 8)
    )
    lines = lines.join(heads, on=["day", "d"])
    out.landing.write("erp.shipments", lines, f"shipments_{month}", header=ZH)
    return lines


def invoices(out: Out, month: str, invoices: pl.DataFrame) -> None:
    out.landing.write("erp.invoices", invoices, f"invoices_{month}", header=ZH)


def payments(out: Out, label: str, paid: pl.DataFrame) -> None:
    """Payments of the invoices in `paid` (sorted by pay date), numbered in that order."""
    if paid.is_empty():
        return
    paid = paid.with_columns(payment_id=numbered("PM", out.serials.take("payment", paid.height), 8))
    out.landing.write("erp.payments", paid, f"payments_{label}", header=ZH)


def dc_inventory(out: Out, month: str, days: list[DayRecord]) -> None:
    """Every DC's stock of every SKU at the end of each day."""
    look = out.lookup
    dc = np.stack([d.dc_stock for d in days])  # days x warehouses x skus
    n_days, n_w, n_k = dc.shape
    inventory = pl.DataFrame(
        {
            "day": np.repeat([d.day for d in days], n_w * n_k).astype(np.int32),
            "warehouse_code": np.tile(np.repeat(look.dc_codes, n_k), n_days),
            "sku_code": np.tile(look.sku_codes, n_days * n_w),
            "on_hand_units": dc.reshape(-1),
        }
    ).with_columns(snapshot_date=look.date_of("day"))
    out.landing.write("erp.dc_inventory", inventory, f"dc_inventory_{month}", header=ZH)


def plants(out: Out, month: str, days: list[DayRecord], world: World) -> None:
    """Weekly plant output per SKU and capacity per category, from the Monday records.

    Each category is made at one plant (`world.plant_index`); the plants report the
    capacity they actually had that week (`DayRecord.capacity`, units per SKU,
    reduced during an outage) per category, as the sum over its SKUs.
    """
    look, cats = out.lookup, world.categories
    cat_idx = np.array([cats.index(c) for c in world.products["category"]])
    plant_of_sku = plant_index(cat_idx)
    out_rows, cap_rows = [], []
    for day in days:
        if day.production is None:
            continue
        week = look.start + timedelta(days=day.day)
        cat_capacity = np.zeros(len(cats))
        np.add.at(cat_capacity, cat_idx, day.capacity)
        produced = day.production.sum(axis=0)
        for k in range(len(look.sku_codes)):
            out_rows.append((week, PLANTS[plant_of_sku[k]][0], look.sku_codes[k], int(produced[k])))
        plant_of_cat = plant_index(np.arange(len(cats)))
        for p, (code, name, _) in enumerate(PLANTS):
            for c, cat in enumerate(cats):
                if plant_of_cat[c] == p:
                    cap_rows.append((week, code, name, cat, int(cat_capacity[c])))
    if not out_rows:
        return
    output = pl.DataFrame(
        out_rows, orient="row", schema=["week_start", "plant_code", "sku_code", "output_units"]
    )
    out.landing.write("erp.plant_output", output, f"plant_output_{month}", header=ZH)
    cap = pl.DataFrame(
        cap_rows,
        orient="row",
        schema=["week_start", "plant_code", "plant_name", "category", "capacity_units"],
    )
    out.landing.write("erp.plant_capacity", cap, f"plant_capacity_{month}", header=ZH)
