"""Printed keys, prices and places of the world's entities, by their 0-based index.

Simulated records carry indices (`s` store, `k` SKU, `d` distributor, `c`
consumer, `day` since the window start); the emitters turn them into the codes,
dates and timestamps a source system prints. Everything here is derived from
the world, so it is rebuilt on load rather than saved.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import numpy as np
import polars as pl

from bclake.simulator.world import World


@dataclass(frozen=True)
class Lookup:
    """Index -> code/price/place arrays of one world (lengths: stores, SKUs, distributors, DCs)."""

    start: date  # day 0
    sku_codes: np.ndarray  # SKUs
    store_codes: np.ndarray  # stores
    dist_codes: list[str]  # distributors
    dc_codes: np.ndarray  # warehouses (regional DCs)
    dist_of_store: np.ndarray  # stores -> distributor index
    dc_of_dist: np.ndarray  # distributors -> warehouse index
    case_pack: np.ndarray  # SKUs: units per case
    list_price: np.ndarray  # SKUs: yuan per unit, to distributors
    retail_price: np.ndarray  # SKUs: yuan per unit, on the shelf
    store_lat: np.ndarray  # stores: degrees
    store_lon: np.ndarray  # stores: degrees

    @classmethod
    def of(cls, start: date, world: World) -> Lookup:
        stores, products = world.stores, world.products
        dist_codes = world.distributors["distributor_code"].to_list()
        wh_regions = world.warehouses["region"].to_list()
        return cls(
            start=start,
            sku_codes=products["sku_code"].to_numpy(),
            store_codes=stores["store_code"].to_numpy(),
            dist_codes=dist_codes,
            dc_codes=world.warehouses["warehouse_code"].to_numpy(),
            dist_of_store=np.array([dist_codes.index(d) for d in stores["distributor_code"]]),
            dc_of_dist=np.array([wh_regions.index(r) for r in world.distributors["region"]]),
            case_pack=products["case_pack"].to_numpy(),
            list_price=products["list_price"].to_numpy(),
            retail_price=products["retail_price"].to_numpy(),
            store_lat=stores["lat"].to_numpy(),
            store_lon=stores["lon"].to_numpy(),
        )

    def date_of(self, day: pl.Expr | str) -> pl.Expr:
        """Date of a day-index column (days since `start`)."""
        expr = pl.col(day) if isinstance(day, str) else day
        return pl.lit(self.start) + pl.duration(days=expr)

    def time_of(self, day: str = "day", seconds: pl.Expr | str = "seconds") -> pl.Expr:
        """Timestamp (us) of a day index plus seconds after midnight."""
        secs = pl.col(seconds) if isinstance(seconds, str) else seconds
        return self.date_of(day).cast(pl.Datetime("us")) + pl.duration(seconds=secs)

    def day_of(self, column: str) -> pl.Expr:
        """Day index of a date column (inverse of `date_of`)."""
        return (pl.col(column) - pl.lit(self.start)).dt.total_days()

    def with_keys(self, frame: pl.DataFrame) -> pl.DataFrame:
        """Add `store_code`, `sku_code` and `date` to a frame with `s`, `k` and `day`."""
        return frame.with_columns(
            store_code=pl.Series(self.store_codes).gather(frame["s"]),
            sku_code=pl.Series(self.sku_codes).gather(frame["k"]),
            date=self.date_of("day"),
        )

    def dist_code_of(self, d: pl.Series | np.ndarray) -> pl.Series:
        return pl.Series(self.dist_codes).gather(d)

    def dc_code_of_dist(self, d: np.ndarray) -> pl.Series:
        """Code of the regional DC that supplies each distributor index in `d`."""
        return pl.Series(self.dc_codes).gather(self.dc_of_dist[d])


def consumer_id(index: str) -> pl.Expr:
    """Printed consumer id (`C` + 9 digits) of a 0-based consumer index column."""
    return pl.format("C{}", (pl.col(index) + 1).cast(pl.String).str.zfill(9))


def check_id(m: pl.Expr, s: pl.Expr) -> pl.Expr:
    """Id of a display check (`DC` + month index + store index) of month `m` at store `s`."""
    return pl.format("DC{}{}", m.cast(pl.String).str.zfill(3), s.cast(pl.String).str.zfill(6))


def daily_id(prefix: str) -> pl.Expr:
    """Id of a store's document for a day (one sell-through report, inventory report, order)."""
    return pl.concat_str(pl.lit(prefix), pl.col("store_code"), pl.col("date").dt.strftime("%Y%m%d"))


def numbered(prefix: str, numbers: np.ndarray, width: int) -> pl.Series:
    """Printed document ids: `prefix` + each number zero-padded to `width` digits."""
    return prefix + pl.Series(numbers).cast(pl.String).str.zfill(width)


def add_months(start: date, months: int) -> date:
    """First day of the month `months` after `start`'s month."""
    return date(
        start.year + (start.month - 1 + months) // 12, (start.month - 1 + months) % 12 + 1, 1
    )
