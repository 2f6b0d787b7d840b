"""Simulate a whole world and write its exports to `landing/` and its truth to `truth/`.

Days are simulated in order and flushed one calendar month at a time, so
memory stays bounded by a month of activity whatever the scale.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import polars as pl
from rich.progress import Progress

from bclake.calendar import build_calendar
from bclake.codes import code_body, make_codes
from bclake.contracts import load_contracts
from simulator.config import ScaleConfig, get_scale
from simulator.dynamics import DayRecord, price_factor, promotions, simulate_days
from simulator.export import write_export
from simulator.world import REGIONS, World, build_world

REWARDS = np.array([0.0, 0.3, 0.5, 1.0, 2.0])
REWARD_P = np.array([0.45, 0.25, 0.15, 0.1, 0.05])
CHANNEL_SCAN = {"夫妻店": 0.8, "便利店": 1.2, "超市": 1.0, "餐饮": 0.5, "母婴店": 1.6}


@dataclass
class _Writer:
    """Turns buffered days into monthly export files and truth parts."""

    cfg: ScaleConfig
    world: World
    prices: np.ndarray
    rng: np.random.Generator
    landing: Path
    truth: Path
    rows: dict[str, int] = field(default_factory=dict)
    scan_serial: int = 0

    def __post_init__(self) -> None:
        self.contracts = load_contracts()
        self.region_idx = np.array([REGIONS.index(r) for r in self.world.stores["region"]])
        self.stores = self.world.stores.select(
            "store_code", "has_pos", "lat", "lon", "distributor_code", "channel_type"
        ).with_row_index("s")
        self.skus = self.world.products.select(
            "sku_code", "retail_price", "list_price"
        ).with_row_index("k")
        channel = np.array([CHANNEL_SCAN.get(c, 1.0) for c in self.world.stores["channel_type"]])
        self.scan_p = np.clip(self.cfg.scan_rate * channel, 0, 0.95)

    def add(self, table: str, n: int) -> None:
        self.rows[table] = self.rows.get(table, 0) + n

    def write_masters(self) -> None:
        c = self.contracts
        self.add(
            "erp.products",
            write_export(
                c["erp.products"],
                self.world.products,
                self.landing / "erp/products/products.csv",
                "zh",
            ),
        )
        self.add(
            "dms.distributors",
            write_export(
                c["dms.distributors"],
                self.world.distributors,
                self.landing / "dms/distributors/distributors.ndjson",
            ),
        )
        self.add(
            "dms.stores",
            write_export(
                c["dms.stores"], self.world.stores, self.landing / "dms/stores/stores.ndjson"
            ),
        )

    def flush(self, month: str, days: list[DayRecord]) -> None:
        c = self.contracts
        sales = self._keys(_long(days, "sales", ["s", "k", "qty"]))
        paid = self.prices[
            sales["day"].to_numpy(), self.region_idx[sales["s"].to_numpy()], sales["k"].to_numpy()
        ]
        sales = sales.with_columns(price_factor=pl.Series(paid))

        pos = (
            sales.filter(pl.col("has_pos"))
            .with_columns(
                biz_date=pl.col("date"),
                report_id=pl.concat_str(
                    pl.lit("ST"), pl.col("store_code"), pl.col("date").dt.strftime("%Y%m%d")
                ),
                amount=(pl.col("qty") * pl.col("retail_price") * pl.col("price_factor")).round(2),
            )
            .sort("date", "store_code", "sku_code")
        )
        self.add(
            "dms.sell_through",
            write_export(
                c["dms.sell_through"],
                pos,
                self.landing / f"dms/sell_through/sell_through_{month}.ndjson",
            ),
        )

        orders = self._keys(_long(days, "store_orders", ["s", "k", "qty_ordered", "qty_delivered"]))
        orders = orders.with_columns(
            order_date=pl.col("date"),
            delivery_date=pl.col("date") + pl.duration(days=2),
            order_id=pl.concat_str(
                pl.lit("SO"), pl.col("store_code"), pl.col("date").dt.strftime("%Y%m%d")
            ),
            amount=(pl.col("qty_delivered") * pl.col("list_price") * 1.12).round(2),
        ).sort("date", "store_code", "sku_code")
        self.add(
            "dms.store_orders",
            write_export(
                c["dms.store_orders"],
                orders,
                self.landing / f"dms/store_orders/store_orders_{month}.ndjson",
            ),
        )

        scans = self._scans(sales)
        self.add(
            "code.product_scans",
            write_export(
                c["code.product_scans"],
                scans,
                self.landing / f"code/product_scans/product_scans_{month}.csv",
            ),
        )

        demand = _long(days, "demand", ["s", "k", "demand"])
        sold = _long(days, "sales", ["s", "k", "sales"])
        truth = demand.join(sold, on=["s", "k", "day"], how="full", coalesce=True).fill_null(0)
        part = self.truth / "demand_daily" / f"{month}.parquet"
        part.parent.mkdir(parents=True, exist_ok=True)
        self._keys(truth).select("date", "store_code", "sku_code", "demand", "sales").sort(
            "date", "store_code", "sku_code"
        ).write_parquet(part)

    def _keys(self, frame: pl.DataFrame) -> pl.DataFrame:
        """Attach store and SKU attributes and turn the day index into a date."""
        return (
            frame.with_columns(pl.col("s").cast(pl.UInt32), pl.col("k").cast(pl.UInt32))
            .join(self.stores, on="s", how="left")
            .join(self.skus, on="k", how="left")
            .with_columns(date=pl.lit(self.cfg.start) + pl.duration(days=pl.col("day")))
        )

    def _scans(self, sales: pl.DataFrame) -> pl.DataFrame:
        """Consumers scan a share of the units they buy, on the day, near the store."""
        rng, cfg = self.rng, self.cfg
        n = rng.binomial(sales["qty"].to_numpy(), self.scan_p[sales["s"].to_numpy()])
        scans = sales[np.repeat(np.arange(sales.height), n)].select(
            "s", "k", "sku_code", "date", "lat", "lon"
        )
        m = scans.height
        serial = np.arange(self.scan_serial + 1, self.scan_serial + m + 1)
        self.scan_serial += m
        seconds = (rng.beta(2.5, 2.0, size=m) * 14 * 3600 + 8 * 3600).astype(np.int64)
        consumer = scans["s"].to_numpy().astype(np.int64) * cfg.consumers_per_store + rng.integers(
            0, cfg.consumers_per_store, size=m
        )
        return scans.with_columns(
            scan_id="SC" + pl.Series(serial).cast(pl.String).str.zfill(11),
            product_code=make_codes(code_body(scans["k"].to_numpy(), serial)),
            batch_no=pl.concat_str(
                pl.lit("B"), pl.col("date").dt.offset_by("-20d").dt.strftime("%y%m")
            ),
            scan_time=pl.col("date").cast(pl.Datetime("us"))
            + pl.duration(seconds=pl.Series(seconds)),
            lat=(pl.col("lat") + pl.Series(rng.normal(0, 0.01, m))).round(5),
            lon=(pl.col("lon") + pl.Series(rng.normal(0, 0.01, m))).round(5),
            consumer_id="C" + pl.Series(consumer).cast(pl.String).str.zfill(9),
            reward_amount=pl.Series(rng.choice(REWARDS, size=m, p=REWARD_P)),
            scan_date=pl.col("date"),
        ).sort("scan_time", "scan_id")


def _long(days: list[DayRecord], field_name: str, names: list[str]) -> pl.DataFrame:
    """Stack one sparse field of several days into a long frame with a day index."""
    parts = [getattr(d, field_name) for d in days]
    cols = {n: np.concatenate([p[i] for p in parts]) for i, n in enumerate(names)}
    cols["day"] = np.concatenate(
        [np.full(len(p[0]), d.day, dtype=np.int32) for p, d in zip(parts, days, strict=True)]
    )
    return pl.DataFrame(cols)


def simulate(root: Path, scale: str = "demo", seed: int = 42, progress: bool = True) -> dict:
    """Write `root/landing` and `root/truth` afresh; returns rows written per table."""
    cfg = get_scale(scale)
    rng = np.random.default_rng(seed)
    world = build_world(cfg, rng)
    calendar = build_calendar(cfg.start, cfg.n_days)
    promos = promotions(cfg, len(world.products), rng)
    prices = price_factor(cfg, promos, len(world.products))

    landing, truth = root / "landing", root / "truth"
    for folder in (landing, truth):
        if folder.exists():
            shutil.rmtree(folder)
    writer = _Writer(cfg, world, prices, np.random.default_rng(seed + 1), landing, truth)
    writer.write_masters()

    months = calendar["date"].dt.strftime("%Y-%m").to_list()
    buffer: list[DayRecord] = []
    stockouts = []
    with Progress(disable=not progress, transient=True) as bar:
        task = bar.add_task(f"simulating the {cfg.name} world", total=cfg.n_days)
        for record in simulate_days(cfg, world, calendar, prices, rng):
            buffer.append(record)
            stockouts.append(record.stockouts)
            last = record.day == cfg.n_days - 1
            if last or months[record.day + 1] != months[record.day]:
                writer.flush(months[record.day], buffer)
                buffer = []
            bar.advance(task)

    _write_truth_tables(cfg, world, promos, calendar, stockouts, truth)
    meta = {"scale": cfg.name, "seed": seed, "config": asdict(cfg), "rows": writer.rows}
    (landing / "_simulation.json").write_text(
        json.dumps(meta, default=str, indent=2, ensure_ascii=False)
    )
    return writer.rows


def _write_truth_tables(
    cfg: ScaleConfig,
    world: World,
    promos: pl.DataFrame,
    calendar: pl.DataFrame,
    stockouts: list[int],
    truth: Path,
) -> None:
    world.products.write_parquet(truth / "products.parquet")
    world.stores.write_parquet(truth / "stores.parquet")
    promos.with_columns(
        region=pl.col("region_idx").replace_strict(dict(enumerate(REGIONS))),
        sku_code=world.products["sku_code"].gather(promos["sku_idx"]),
        start_date=pl.lit(cfg.start) + pl.duration(days=pl.col("start_day")),
        end_date=pl.lit(cfg.start) + pl.duration(days=pl.col("end_day") - 1),
    ).write_parquet(truth / "promotions.parquet")
    calendar.with_columns(censored_store_skus=pl.Series(stockouts)).write_parquet(
        truth / "calendar.parquet"
    )
