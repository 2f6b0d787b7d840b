"""Simulate a whole world and write its exports to `landing/` and its truth to `truth/`.

Days are simulated in order and flushed one calendar month at a time, so
memory stays bounded by a month of activity whatever the scale. Masters and
snapshots (products, stores, consumers, ...) are written when their content
is known; dirt is injected last and listed in `truth/fault_manifest.parquet`.

The state of the world is saved in `truth/_state.pkl`, so `continue_simulation`
can append the next days as daily export files, holding back a share of rows
that arrive one run later as `_late` files.
"""

from __future__ import annotations

import json
import pickle
import shutil
from dataclasses import asdict
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import polars as pl
from rich.progress import Progress

from bclake.core.calendar import build_calendar
from bclake.core.codes import make_codes
from bclake.core.contracts import load_contracts
from bclake.simulator import consumers as cdp
from bclake.simulator.codes import CodeLedger, case_codes, forged_bodies
from bclake.simulator.config import ScaleConfig, get_scale
from bclake.simulator.dirt import inject_dirt
from bclake.simulator.dynamics import (
    Channel,
    DayRecord,
    display_compliance,
    month_number,
    promotion_signups,
    promotions,
)
from bclake.simulator.export import write_export
from bclake.simulator.market import build_market
from bclake.simulator.truth import write_truth
from bclake.simulator.world import PLANTS, REGIONS, World, build_world

REWARDS = np.array([0.0, 0.3, 0.5, 1.0, 2.0])
REWARD_P = np.array([0.45, 0.25, 0.15, 0.1, 0.05])
CHANNEL_SCAN = {"夫妻店": 0.8, "便利店": 1.2, "超市": 1.0, "餐饮": 0.5, "母婴店": 1.6}
STORE_SCAN_SHARE = 0.25  # scans after which the consumer also scans the store's code
LATE_TABLES = ("dms.sell_through", "dms.store_orders", "code.product_scans")
LATE_SHARE = 0.05  # in continued runs, rows of these tables that arrive a run late
SCAN_PART_SALES_ROWS = 2_000_000  # sales rows per part of the product-scan log


class _Writer:
    """Turns buffered days into monthly export files and keeps what spans months."""

    def __init__(
        self,
        cfg: ScaleConfig,
        world: World,
        rng: np.random.Generator,
        landing: Path,
        truth: Path,
        display: np.ndarray,
        sku_capacity: np.ndarray,
    ) -> None:
        self.cfg, self.world, self.rng, self.landing, self.truth = cfg, world, rng, landing, truth
        self.display = display
        cats = world.categories
        self.capacity = np.zeros(len(cats))  # weekly units per category, as the plants report
        np.add.at(self.capacity, [cats.index(c) for c in world.products["category"]], sku_capacity)
        self._pending_cases: list[pl.DataFrame] = []
        self.campaigns_written = 0
        self.salt = int(rng.integers(2**62))  # seeds the stateless per-consumer draws
        self.contracts = load_contracts()
        self.rows: dict[str, int] = {}
        stores, products = world.stores, world.products
        self.n_s, self.n_k = len(stores), len(products)
        self.dist_codes = world.distributors["distributor_code"].to_list()
        self.dist_idx = np.array([self.dist_codes.index(d) for d in stores["distributor_code"]])
        self.case_pack = products["case_pack"].to_numpy()
        self.list_price = products["list_price"].to_numpy()
        self.retail_price = products["retail_price"].to_numpy()
        self.sku_codes = products["sku_code"].to_numpy()
        self.store_codes = stores["store_code"].to_numpy()
        self.store_lat, self.store_lon = stores["lat"].to_numpy(), stores["lon"].to_numpy()
        wh_regions = world.warehouses["region"].to_list()
        self.dist_dc = np.array([wh_regions.index(r) for r in world.distributors["region"]])
        self.dc_codes = world.warehouses["warehouse_code"].to_numpy()
        channel = np.array([CHANNEL_SCAN.get(c, 1.0) for c in stores["channel_type"]])
        # scan propensity of a store's shoppers, relative to the average shopper
        prop = world.consumers.group_by("home_store").agg(pl.col("scan_propensity").mean())
        local = np.ones(self.n_s)
        local[prop["home_store"].to_numpy()] = prop["scan_propensity"].to_numpy()
        self.scan_p = np.clip(cfg.scan_rate * channel * local / local.mean(), 0, 0.9)
        self.picker = cdp.ConsumerPicker(world)
        # each store's display check day in each month, and whether the rep comes at all
        n_months = display.shape[0]
        month_start = np.array(
            [(_add_months(cfg.start, m) - cfg.start).days for m in range(n_months + 1)]
        )
        draw = rng.random((n_months, self.n_s))
        self.check_day = month_start[:-1, None] + (draw * np.diff(month_start)[:, None]).astype(
            np.int64
        )
        self.check_done = rng.random((n_months, self.n_s)) < 0.8
        self.ledger = CodeLedger(len(self.dist_codes), self.n_k, self.case_pack)
        self.diversion = self._diversion_plan()
        n_cons = len(world.consumers)
        self.first_scan = np.full(n_cons, np.iinfo(np.int32).max, dtype=np.int64)
        self.members = cdp.group_members(world, cfg.start, cfg.horizon_days, rng)
        self.serial = {
            "scan": 0,
            "store_scan": 0,
            "shipment": 0,
            "coupon": 0,
            "interaction": 0,
            "referral": 0,
            "payment": 0,
        }
        self.referrals: list[pl.DataFrame] = []
        self.campaigns: list[dict] = []
        self.unpaid: list[pl.DataFrame] = []
        self.invoice_totals: list[pl.DataFrame] = []
        self.truth_extra: dict[str, pl.DataFrame] = {}
        self.written_until = -1  # last day whose snapshots (payments, market, ...) are out
        self.late_share = 0.0
        self.stockouts: list[int] = []
        self.pending_coupons: list[pl.DataFrame] = []
        self.scheduled = pl.DataFrame(
            schema={
                "s": pl.Int64,
                "c": pl.Int64,
                "day": pl.Int32,
                "seconds": pl.Int64,
                "order_amount": pl.Float64,
                "coupon_id": pl.String,
                "rating": pl.Int64,
            }
        )
        self.late_pending: list[tuple[str, pl.DataFrame, str]] = []
        self.mini_program_day = np.where(
            rng.random(n_cons) < 0.08,
            rng.integers(-300, cfg.horizon_days, n_cons),
            np.iinfo(np.int32).max,
        )

    # --- bookkeeping -------------------------------------------------------------
    def write(self, table: str, frame: pl.DataFrame, name: str, header: str = "source") -> None:
        if self.late_share and table in LATE_TABLES and frame.height:
            late = pl.Series(self.rng.random(frame.height) < self.late_share)
            self.late_pending.append((table, frame.filter(late), f"{name}_late"))
            frame = frame.filter(~late)
        self._write(table, frame, name, header)

    def write_late(self) -> None:
        """Deliver the rows held back last run, each file under its own event day."""
        for table, frame, name in self.late_pending:
            self._write(table, frame, name)
        self.late_pending = []

    def _write(self, table: str, frame: pl.DataFrame, name: str, header: str = "source") -> None:
        if frame.is_empty():  # systems export nothing rather than an empty file
            return
        contract = self.contracts[table]
        ext = "csv" if contract.format == "csv" else "ndjson"
        path = self.landing / contract.system / contract.table / f"{name}.{ext}"
        self.rows[table] = self.rows.get(table, 0) + write_export(contract, frame, path, header)

    def _unit(self, index: np.ndarray, field: int) -> np.ndarray:
        """A uniform draw in [0, 1) that depends only on (world, index, field): stable
        across snapshots and continued runs, unlike a generator's next values."""
        with np.errstate(over="ignore"):
            z = (
                index.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15)
                + np.uint64(self.salt)
                + np.uint64(field) * np.uint64(0xD1B54A32D192ED03)
            )
            z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
            z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
            z = z ^ (z >> np.uint64(31))
        return (z >> np.uint64(11)).astype(np.float64) / 2.0**53

    def time_of(self, day: str = "day", seconds: pl.Expr | str = "seconds") -> pl.Expr:
        """Timestamp of a day index plus seconds after midnight."""
        secs = pl.col(seconds) if isinstance(seconds, str) else seconds
        return self.date_of(day).cast(pl.Datetime("us")) + pl.duration(seconds=secs)

    def date_of(self, day: pl.Expr | str) -> pl.Expr:
        expr = pl.col(day) if isinstance(day, str) else day
        return pl.lit(self.cfg.start) + pl.duration(days=expr)

    def _next(self, kind: str, n: int) -> np.ndarray:
        first = self.serial[kind] + 1
        self.serial[kind] += n
        return np.arange(first, first + n)

    # --- masters -------------------------------------------------------------------
    def write_masters(
        self, promos: pl.DataFrame, signups: pl.DataFrame, market, opening_stock: np.ndarray
    ) -> None:
        w = self.world
        self.write("erp.products", w.products, "products", header="zh")
        self.write("erp.warehouses", w.warehouses, "warehouses", header="zh")
        self.write("dms.distributors", w.distributors, "distributors")
        self.write("dms.stores", w.stores, "stores")
        self.write("cdp.community_groups", w.groups, "community_groups")
        promo_rows = promos.with_columns(
            promo_id=pl.format("PR{}", pl.col("promo_no").cast(pl.String).str.zfill(6)),
            region=pl.col("region_idx").replace_strict(dict(enumerate(REGIONS))),
            sku_code=pl.Series(self.sku_codes).gather(promos["sku_idx"]),
            start_date=self.date_of("start_day"),
            end_date=self.date_of(pl.col("end_day") - 1),
        )
        self.write("dms.promotions", promo_rows, "promotions")
        signed = (
            signups.join(promos.select("promo_no", "start_day"), on="promo_no")
            .with_columns(
                promo_id=pl.format("PR{}", pl.col("promo_no").cast(pl.String).str.zfill(6)),
                store_code=pl.Series(self.store_codes).gather(signups["s"]),
                signup_date=self.date_of(pl.col("start_day") - 7),
            )
            .sort("promo_no", "s")
        )
        self.write("dms.promotion_signups", signed, "promotion_signups")
        self._write_market(market)
        # stock already in the channel when the window opens carries codes too
        # (twice what is on hand, so the opening stream covers the first weeks' sales)
        init = opening_stock * 2
        d, k = np.nonzero(init)
        units = (np.ceil(init[d, k] / self.case_pack[k]) * self.case_pack[k]).astype(np.int64)
        self._activate(-10, d, k, units, pre_window=True)
        self.truth_extra["diversion_plan"] = self.diversion["plan"]

    def _write_market(self, market) -> None:
        provinces, cats = self.world.provinces, self.world.categories
        months = [_add_months(self.cfg.start, m) for m in range(market.price_index.shape[0])]
        grid = pl.DataFrame(
            {
                "month": pl.Series(months).gather(
                    np.repeat(np.arange(len(months)), len(provinces) * len(cats))
                ),
                "province": np.tile(np.repeat(provinces, len(cats)), len(months)),
                "category": np.tile(cats, len(months) * len(provinces)),
                "competitor_price_index": np.round(market.price_index.reshape(-1), 4),
                "promo_intensity": np.round(market.promo_intensity.reshape(-1), 4),
            }
        )
        self.market_grid = grid
        self.market = market
        self.market_noise = self.rng.normal(0, 1, grid.height)

    def _diversion_plan(self) -> dict:
        """Each diverting distributor pushes stock into one province of another region."""
        w, rng = self.world, self.rng
        dists = w.distributors.with_row_index("d")
        diverters = dists.filter(pl.col("diverts"))
        provinces = w.stores.select("province", "region").unique().sort("province")
        vol = w.stores.with_columns(v=pl.col("base_rate")).group_by("province").agg(pl.sum("v"))
        vol_of = dict(zip(vol["province"], vol["v"], strict=True))
        dist_vol = np.zeros(len(dists))
        np.add.at(dist_vol, self.dist_idx, w.stores["base_rate"].to_numpy())
        plan, prob = [], np.zeros(self.n_s)
        source = np.full(self.n_s, -1)
        store_prov = w.stores["province"].to_numpy()
        taken: set[str] = set()
        for row in diverters.iter_rows(named=True):
            options = provinces.filter(
                pl.col("region") != row["region"], ~pl.col("province").is_in(list(taken))
            )
            if options.is_empty():
                options = provinces.filter(pl.col("province") != row["province"])
            if options.is_empty():
                continue
            target = options["province"][int(rng.integers(options.height))]
            taken.add(target)
            share = min(0.5, self.cfg.diversion_share * dist_vol[row["d"]] / vol_of[target])
            in_target = store_prov == target
            prob[in_target], source[in_target] = share, row["d"]
            plan.append(
                {
                    "distributor_code": row["distributor_code"],
                    "home_province": row["province"],
                    "target_province": target,
                    "scan_share": share,
                }
            )
        return {
            "prob": prob,
            "source": source,
            "plan": pl.DataFrame(
                plan,
                schema={
                    "distributor_code": pl.String,
                    "home_province": pl.String,
                    "target_province": pl.String,
                    "scan_share": pl.Float64,
                },
            ),
        }

    # --- one month -------------------------------------------------------------------
    def flush(self, month: str, days: list[DayRecord]) -> None:
        first_day, last_day = days[0].day, days[-1].day
        self.ledger.prune(first_day)
        self._supply(month, days)
        sales = _long(days, "sales", ["s", "k", "qty", "price"])
        self._sell_through(month, sales)
        self._store_orders(month, days)
        self._store_inventory(month, days)
        self._display_checks(month, first_day, last_day)
        # the largest log is produced in parts of whole days, so memory stays bounded
        days_of = sales["day"].to_numpy()
        n_parts = max(1, -(-sales.height // SCAN_PART_SALES_ROWS))
        bounds = np.array_split(np.arange(first_day, last_day + 1), n_parts)
        scans = pl.concat(
            [
                self._product_scans(
                    month if n_parts == 1 else f"{month}_p{i + 1}",
                    sales.filter(pl.Series((days_of >= b[0]) & (days_of <= b[-1]))),
                )
                for i, b in enumerate(bounds)
                if len(b)
            ]
        )
        self._cdp(month, first_day, last_day, scans)
        self._truth_demand(month, days)

    def _truth_demand(self, month: str, days: list[DayRecord]) -> None:
        """Uncensored demand next to what was sold, per store, SKU and day."""
        demand = _long(days, "demand", ["s", "k", "demand", "stock_end"])
        sold = _long(days, "sales", ["s", "k", "sales", "price"]).drop("price")
        # every sale answers some demand, so the demand rows cover all sold rows
        both = demand.join(sold, on=["s", "k", "day"], how="left").fill_null(0)
        part = self.truth / "demand_daily" / f"{month}.parquet"
        part.parent.mkdir(parents=True, exist_ok=True)
        self._keys(both).select(
            "date", "store_code", "sku_code", "demand", "sales", "stock_end"
        ).sort("date", "store_code", "sku_code").write_parquet(part)

    def _truth_part(self, name: str, label: str, frame: pl.DataFrame) -> None:
        part = self.truth / name / f"{label}.parquet"
        part.parent.mkdir(parents=True, exist_ok=True)
        if part.exists():  # a second campaign in one flush: append
            frame = pl.concat([pl.read_parquet(part), frame], how="vertical_relaxed")
        frame.write_parquet(part)

    def _activate(
        self, day: int, d: np.ndarray, k: np.ndarray, units: np.ndarray, pre_window: bool = False
    ) -> None:
        cases = self.ledger.activate(day, d, k, units)
        if cases.is_empty():
            return
        seconds = self.rng.integers(6 * 3600, 20 * 3600, size=cases.height)
        frame = cases.with_columns(
            case_code=case_codes(cases),
            sku_code=pl.Series(self.sku_codes).gather(cases["k"]),
            last_serial=pl.col("first_serial") + pl.col("units") - 1,
            distributor_code=pl.Series(self.dist_codes).gather(cases["d"]),
            warehouse_code=pl.Series(self.dc_codes).gather(self.dist_dc[cases["d"].to_numpy()]),
            activation_time=self.time_of(seconds=pl.Series(seconds)),
        )
        frame = frame.with_columns(activation_date=pl.col("activation_time").dt.date())
        name = "case_activations_opening" if pre_window else None
        if name:
            self.write("code.case_activations", frame, name)
        else:
            self._pending_cases.append(frame)

    def _supply(self, month: str, days: list[DayRecord]) -> None:
        """ERP: DC shipments (activating cases), invoices, payments, DC stock, plant output."""
        orders = _long(days, "dist_orders", ["d", "k", "ordered", "shipped"])
        for day in days:
            d, k, _, shipped = day.dist_orders
            ok = shipped > 0
            self._activate(day.day, d[ok], k[ok], shipped[ok])
        if self._pending_cases:
            self.write(
                "code.case_activations", pl.concat(self._pending_cases), f"case_activations_{month}"
            )
            self._pending_cases = []
        if not orders.is_empty():
            lines = orders.with_columns(
                distributor_code=pl.Series(self.dist_codes).gather(orders["d"]),
                warehouse_code=pl.Series(self.dc_codes).gather(
                    self.dist_dc[orders["d"].to_numpy()]
                ),
                sku_code=pl.Series(self.sku_codes).gather(orders["k"]),
                order_date=self.date_of("day"),
                ship_date=self.date_of(pl.col("day") + 1),
                qty_ordered_units=pl.col("ordered"),
                qty_shipped_units=pl.col("shipped"),
                amount=(pl.col("shipped") * pl.Series(self.list_price).gather(orders["k"])).round(
                    2
                ),
            ).sort("day", "d", "k")
            heads = lines.select("day", "d").unique(maintain_order=True)
            heads = heads.with_columns(
                shipment_id=pl.format(
                    "SH{}",
                    pl.Series(self._next("shipment", heads.height)).cast(pl.String).str.zfill(8),
                )
            )
            lines = lines.join(heads, on=["day", "d"])
            self.write("erp.shipments", lines, f"shipments_{month}", header="zh")
            invoices = lines.group_by(
                "shipment_id", "d", "distributor_code", "ship_date", maintain_order=True
            ).agg(pl.col("amount").sum().round(2))
            invoices = invoices.filter(pl.col("amount") > 0)
            delay_mean = self.world.distributors["pay_delay_mean"].to_numpy()[
                invoices["d"].to_numpy()
            ]
            invoices = invoices.with_columns(
                invoice_id=pl.col("shipment_id").str.replace("SH", "IV"),
                invoice_date=pl.col("ship_date"),
                due_date=pl.col("ship_date") + pl.duration(days=30),
                delay=pl.Series(np.ceil(self.rng.gamma(2.0, delay_mean / 2.0)).astype(np.int64)),
            )
            self.write("erp.invoices", invoices, f"invoices_{month}", header="zh")
            pays = invoices.with_columns(
                pay_date=pl.col("invoice_date") + pl.duration(days=pl.col("delay"))
            )
            self.unpaid.append(pays)
            self.invoice_totals.append(
                invoices.select("distributor_code", "invoice_date", "amount")
            )
        dc = np.stack([d.dc_stock for d in days])  # days x warehouses x skus
        n_days, n_w, n_k = dc.shape
        inventory = pl.DataFrame(
            {
                "day": np.repeat([d.day for d in days], n_w * n_k).astype(np.int32),
                "warehouse_code": np.tile(np.repeat(self.dc_codes, n_k), n_days),
                "sku_code": np.tile(self.sku_codes, n_days * n_w),
                "on_hand_units": dc.reshape(-1),
            }
        ).with_columns(snapshot_date=self.date_of("day"))
        self.write("erp.dc_inventory", inventory, f"dc_inventory_{month}", header="zh")
        self._plant(month, days)

    def _plant(self, month: str, days: list[DayRecord]) -> None:
        cats = self.world.categories
        cat_idx = np.array([cats.index(c) for c in self.world.products["category"]])
        plant_of_sku = cat_idx % len(PLANTS)
        out_rows, cap_rows = [], []
        for day in days:
            if day.production is None:
                continue
            week = self.cfg.start + timedelta(days=day.day)
            produced = day.production.sum(axis=0)
            for k in range(self.n_k):
                out_rows.append(
                    (week, PLANTS[plant_of_sku[k]][0], self.sku_codes[k], int(produced[k]))
                )
            for p, (code, name, _) in enumerate(PLANTS):
                for c, cat in enumerate(cats):
                    if c % len(PLANTS) == p:
                        cap_rows.append((week, code, name, cat, int(self.capacity[c])))
        if out_rows:
            self.write(
                "erp.plant_output",
                pl.DataFrame(
                    out_rows,
                    orient="row",
                    schema=["week_start", "plant_code", "sku_code", "output_units"],
                ),
                f"plant_output_{month}",
                header="zh",
            )
            self.write(
                "erp.plant_capacity",
                pl.DataFrame(
                    cap_rows,
                    orient="row",
                    schema=["week_start", "plant_code", "plant_name", "category", "capacity_units"],
                ),
                f"plant_capacity_{month}",
                header="zh",
            )

    def _keys(self, frame: pl.DataFrame) -> pl.DataFrame:
        return frame.with_columns(
            store_code=pl.Series(self.store_codes).gather(frame["s"]),
            sku_code=pl.Series(self.sku_codes).gather(frame["k"]),
            date=self.date_of("day"),
        )

    def _sell_through(self, month: str, sales: pl.DataFrame) -> None:
        has_pos = self.world.stores["has_pos"].to_numpy()
        pos = (
            self._keys(sales.filter(pl.Series(has_pos).gather(sales["s"])))
            .with_columns(
                biz_date=pl.col("date"),
                report_id=_daily_id("ST"),
                amount=(
                    pl.col("qty")
                    * pl.lit(pl.Series(self.retail_price)).gather(pl.col("k"))
                    * pl.col("price")
                ).round(2),
            )
            .sort("day", "s", "k")
        )
        self.write("dms.sell_through", pos, f"sell_through_{month}")

    def _store_orders(self, month: str, days: list[DayRecord]) -> None:
        orders = self._keys(_long(days, "store_orders", ["s", "k", "qty_ordered", "qty_delivered"]))
        orders = orders.with_columns(
            order_date=pl.col("date"),
            delivery_date=pl.when(pl.col("qty_delivered") > 0).then(
                pl.col("date") + pl.duration(days=2)
            ),
            distributor_code=pl.Series(self.dist_codes).gather(
                self.dist_idx[orders["s"].to_numpy()]
            ),
            order_id=_daily_id("SO"),
            amount=(
                pl.col("qty_delivered")
                * pl.lit(pl.Series(self.list_price)).gather(pl.col("k"))
                * 1.12
            ).round(2),
        ).sort("day", "s", "k")
        self.write("dms.store_orders", orders, f"store_orders_{month}")

    def _store_inventory(self, month: str, days: list[DayRecord]) -> None:
        reporting = self.world.stores["mini_program_active"].to_numpy()
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
            self._keys(stock.filter(pl.Series(reporting).gather(stock["s"])))
            .with_columns(
                snapshot_date=pl.col("date"),
                report_id=_daily_id("SI"),
            )
            .sort("day", "s", "k")
        )
        self.write("dms.store_inventory", stock, f"store_inventory_{month}")

    def _display_checks(self, label: str, first_day: int, last_day: int) -> None:
        """Sales reps check each onboarded store about once a month (80% of months)."""
        cfg = self.cfg
        onboard = np.array([(d - cfg.start).days for d in self.world.stores["onboard_date"]])
        m, s = np.nonzero(
            (self.check_day >= first_day)
            & (self.check_day <= last_day)
            & self.check_done
            & (onboard[None, :] <= self.check_day)
        )
        if not len(m):
            return
        compliant = self.display[m, s]
        score = np.where(
            compliant, self.rng.integers(75, 101, len(s)), self.rng.integers(30, 75, len(s))
        )
        checks = (
            pl.DataFrame(
                {
                    "check_id": [f"DC{mm:03d}{ss:06d}" for mm, ss in zip(m, s, strict=True)],
                    "store_code": self.store_codes[s],
                    "day": self.check_day[m, s].astype(np.int32),
                    "compliant": compliant,
                    "score": score,
                    "photo_count": self.rng.integers(1, 6, len(s)),
                }
            )
            .with_columns(check_date=self.date_of("day"))
            .sort("day", "store_code")
        )
        self.write("dms.display_checks", checks, f"display_checks_{label}")

    def _product_scans(self, month: str, sales: pl.DataFrame) -> pl.DataFrame:
        """Consumers scan a share of units, near the store; codes follow the distributor FIFO.

        Writes the export and the scan labels; returns the few columns the C side needs.
        """
        rng = self.rng
        n = rng.binomial(sales["qty"].to_numpy(), self.scan_p[sales["s"].to_numpy()])
        sales = sales.with_columns(
            d=pl.lit(pl.Series(self.dist_idx)).gather(pl.col("s")).cast(pl.Int64),
            k=pl.col("k").cast(pl.Int64),
        )
        # every sold unit takes the next position in its distributor's stream
        start = sales.select(
            (pl.col("qty").cum_sum().over("d", "k") - pl.col("qty")).alias("before")
        )["before"]
        offset = self.ledger.sold_pos[sales["d"].to_numpy(), sales["k"].to_numpy()]
        totals = sales.group_by("d", "k").agg(pl.col("qty").sum())
        self.ledger.sold_pos[totals["d"].to_numpy(), totals["k"].to_numpy()] += totals[
            "qty"
        ].to_numpy()
        row = np.repeat(np.arange(sales.height), n)
        rank = np.arange(len(row)) - np.repeat(np.cumsum(n) - n, n)
        qty = sales["qty"].to_numpy()[row]
        within = np.floor((rank + rng.random(len(row))) * qty / np.maximum(n[row], 1)).astype(
            np.int64
        )
        pos = offset[row] + start.to_numpy()[row] + within
        s = sales["s"].to_numpy()[row]
        k = sales["k"].to_numpy()[row]
        day = sales["day"].to_numpy()[row]
        d = self.dist_idx[s]
        bodies = self.ledger.fifo_codes(d, k, pos)
        label = np.full(len(row), "normal", dtype=object)
        activated = d.copy()
        diverted = rng.random(len(row)) < self.diversion["prob"][s]
        if diverted.any():
            src = self.diversion["source"][s[diverted]]
            bodies[diverted] = self.ledger.recent_codes(src, k[diverted], day[diverted], rng)
            activated[diverted] = src
            label[diverted] = "diverted"
        codes = make_codes(bodies)
        lat = self.store_lat[s] + rng.normal(0, 0.01, len(row))
        lon = self.store_lon[s] + rng.normal(0, 0.01, len(row))
        seconds = (rng.beta(2.5, 2.0, size=len(row)) * 14 * 3600 + 8 * 3600).astype(np.int64)
        consumer = self.picker.pick(s, rng)
        scans = pl.DataFrame(
            {
                "s": s,
                "k": k,
                "day": day.astype(np.int32),
                "seconds": seconds,
                "product_code": codes,
                "lat": lat,
                "lon": lon,
                "c": consumer.astype(np.int64),
                "label": label.astype(str),
                "activated_d": activated,
                "selling_d": d,
            }
        )
        scans = pl.concat([scans, self._fakes(scans)], how="vertical_relaxed")
        m = scans.height
        scans = (
            scans.sort("day", "seconds", "product_code")
            .with_columns(
                scan_id="SC" + pl.Series(self._next("scan", m)).cast(pl.String).str.zfill(11),
                sku_code=pl.lit(pl.Series(self.sku_codes)).gather(pl.col("k")),
                batch_no=pl.concat_str(
                    pl.lit("B"), self.date_of(pl.col("day") - 20).dt.strftime("%y%m")
                ),
                scan_time=self.time_of(),
                lat=pl.col("lat").round(5),
                lon=pl.col("lon").round(5),
                consumer_id=_consumer_id("c"),
                reward_amount=pl.Series(rng.choice(REWARDS, size=m, p=REWARD_P)),
            )
            .with_columns(scan_date=pl.col("scan_time").dt.date())
        )
        self.write("code.product_scans", scans, f"product_scans_{month}")
        slim = scans.select("s", "k", "c", "day", "seconds", "label")
        self._truth_part(
            "scan_labels",
            month,
            scans.select(
                "scan_id",
                "product_code",
                "label",
                activated_distributor=pl.lit(pl.Series(self.dist_codes)).gather(
                    pl.col("activated_d")
                ),
                selling_distributor=pl.lit(pl.Series(self.dist_codes)).gather(pl.col("selling_d")),
            ),
        )
        return slim

    def _fakes(self, scans: pl.DataFrame) -> pl.DataFrame:
        """Forged codes (never issued) and clones (a real code scanned far from its sale)."""
        rng, cfg = self.rng, self.cfg
        m = scans.height
        n_forged = rng.binomial(m, cfg.forged_rate)
        forged = scans.sample(n_forged, with_replacement=True, seed=int(rng.integers(2**31)))
        forged = forged.with_columns(
            product_code=forged_bodies(forged["k"].to_numpy(), rng),
            label=pl.lit("forged"),
            activated_d=pl.lit(-1, pl.Int64).cast(scans["activated_d"].dtype),
            c=pl.Series(self.picker.pick(forged["s"].to_numpy(), rng)).cast(pl.Int64),
        )
        n_cloned = rng.binomial(m, cfg.cloned_codes)
        originals = scans.filter(pl.col("label") == "normal").sample(
            min(n_cloned, m), seed=int(rng.integers(2**31))
        )
        copies = originals.select(pl.all().repeat_by(pl.lit(4)).explode())
        far = rng.integers(0, self.n_s, size=copies.height)
        last = scans["day"].max()
        copies = copies.with_columns(
            s=pl.Series(far).cast(scans["s"].dtype),
            day=pl.min_horizontal(
                pl.col("day") + pl.Series(rng.integers(1, 20, copies.height)), pl.lit(last)
            ).cast(pl.Int32),
            lat=pl.Series(self.store_lat[far] + rng.normal(0, 0.01, copies.height)),
            lon=pl.Series(self.store_lon[far] + rng.normal(0, 0.01, copies.height)),
            c=pl.Series(self.picker.pick(far, rng)).cast(pl.Int64),
            label=pl.lit("cloned"),
            selling_d=pl.Series(self.dist_idx[far]).cast(scans["selling_d"].dtype),
        )
        return pl.concat([forged, copies]).with_columns(
            activated_d=pl.when(pl.col("activated_d") < 0)
            .then(None)
            .otherwise(pl.col("activated_d"))
        )

    def _campaign(self, label: str, day: int) -> None:
        """Draw a campaign; coupons are exported when they expire, purchases on their day."""
        rng, w = self.rng, self.world
        no = len(self.campaigns) + 1
        row, drawn = cdp.campaign(no, w, self.first_scan < day, day, self.cfg.start, rng)
        self.campaigns.append(row)
        self._truth_part(
            "campaign_outcomes",
            label,
            drawn.with_columns(
                campaign_id=pl.lit(row["campaign_id"]),
                consumer_id=_consumer_id("c"),
            ).drop("c", "seconds"),
        )
        members = drawn.with_columns(
            campaign_id=pl.lit(row["campaign_id"]),
            consumer_id=_consumer_id("c"),
            arm=pl.when(pl.col("treated")).then(pl.lit("treated")).otherwise(pl.lit("holdout")),
            assigned_date=pl.lit(row["start_date"] - timedelta(days=1)),
        )
        self.write("cdp.campaign_members", members, f"campaign_members_{label}")
        home = w.consumers["home_store"].to_numpy()
        treated = drawn.filter(pl.col("treated"))
        ids = self._next("coupon", treated.height)
        redeemed = pl.Series(treated["y1"].to_numpy())
        coupons = treated.with_columns(
            coupon_id=pl.Series([f"CU{i:09d}" for i in ids], dtype=pl.String),
            campaign_id=pl.lit(row["campaign_id"]),
            consumer_id=_consumer_id("c"),
            issued_date=pl.lit(row["start_date"]),
            expire_date=pl.lit(row["end_date"]),
            expire_day=pl.lit(day + 13),
            face_value=pl.lit(row["coupon_value"]),
            redeemed_time=pl.when(redeemed).then(self.time_of()),
            redeemed_store_code=pl.when(redeemed).then(
                pl.Series(self.store_codes[home[treated["c"].to_numpy()]], dtype=pl.String)
            ),
            order_amount=pl.when(redeemed).then(pl.col("basket")),
        )
        self.pending_coupons.append(coupons)
        buyers = drawn.filter(pl.when(pl.col("treated")).then(pl.col("y1")).otherwise(pl.col("y0")))
        buyers = buyers.with_columns(s=pl.Series(home[buyers["c"].to_numpy()]).cast(pl.Int64))
        purchases = buyers.join(coupons.select("c", "coupon_id"), on="c", how="left").select(
            "s",
            "c",
            "day",
            "seconds",
            order_amount="basket",
            coupon_id="coupon_id",
            rating=pl.lit(None, pl.Int64),
        )
        self.scheduled = pl.concat([self.scheduled, purchases.cast(self.scheduled.schema)])

    def _cdp(self, month: str, first_day: int, last_day: int, scans: pl.DataFrame) -> None:
        """C side of the month: registrations, store-code scans, groups, campaigns, referrals."""
        rng, w = self.rng, self.world
        genuine = scans.filter(pl.col("label") != "forged")
        firsts = genuine.group_by("c").agg(pl.col("day").min())
        c_idx = firsts["c"].to_numpy()
        self.first_scan[c_idx] = np.minimum(self.first_scan[c_idx], firsts["day"].to_numpy())

        # store-code scans after a share of product scans, some with a rating
        follow = genuine.filter(pl.Series(rng.random(genuine.height) < STORE_SCAN_SHARE))
        satisfaction = w.stores["satisfaction"].to_numpy()
        rated = rng.random(follow.height) < 0.15
        rating = np.clip(
            np.round(satisfaction[follow["s"].to_numpy()] + rng.normal(0, 0.7, follow.height)), 1, 5
        )
        store_scans = follow.select(
            pl.col("s").cast(pl.Int64),
            pl.col("c").cast(pl.Int64),
            pl.col("day").cast(pl.Int32),
            seconds=(pl.col("seconds") + 30).cast(pl.Int64),
            order_amount=pl.Series(
                np.round(
                    self.retail_price[follow["k"].to_numpy()] * rng.integers(1, 4, follow.height)
                    + rng.gamma(2.0, 8.0, follow.height),
                    2,
                )
            ),
            coupon_id=pl.lit(None, pl.String),
            rating=pl.Series(np.where(rated, rating, np.nan)).cast(pl.Int64, strict=False),
        )

        # a coupon campaign on the first of every month after the first
        for day in range(first_day, last_day + 1):
            if day > 0 and (self.cfg.start + timedelta(days=day)).day == 1:
                self._campaign(month, day)
        due = self.scheduled.filter(pl.col("day") <= last_day)
        self.scheduled = self.scheduled.filter(pl.col("day") > last_day)
        store_scans = pl.concat([store_scans, due.cast(store_scans.schema)], how="vertical_relaxed")
        ready = [c for c in self.pending_coupons if c["expire_day"][0] <= last_day]
        self.pending_coupons = [c for c in self.pending_coupons if c["expire_day"][0] > last_day]
        if ready:
            self.write("cdp.coupons", pl.concat(ready).drop("expire_day"), f"coupons_{month}")

        store_scans = store_scans.sort("day", "seconds", "s")
        store_scans = store_scans.with_columns(
            scan_id="SS"
            + pl.Series(self._next("store_scan", store_scans.height)).cast(pl.String).str.zfill(11),
            store_code=pl.lit(pl.Series(self.store_codes)).gather(pl.col("s")),
            consumer_id=_consumer_id("c"),
            scan_time=self.time_of(),
        ).with_columns(scan_date=pl.col("scan_time").dt.date())
        self.write("code.store_scans", store_scans, f"store_scans_{month}")

        acts = cdp.interactions(self.members, w, first_day, last_day, rng).sort(
            "day", "seconds", "c"
        )
        acts = acts.with_columns(
            interaction_id=pl.format(
                "IN{}",
                pl.Series(self._next("interaction", acts.height)).cast(pl.String).str.zfill(10),
            ),
            group_id=w.groups["group_id"].gather(acts["g"]),
            consumer_id=_consumer_id("c"),
            interaction_type=pl.col("type"),
            interaction_time=self.time_of(),
        ).with_columns(interaction_date=pl.col("interaction_time").dt.date())
        self.write("cdp.interactions", acts, f"interactions_{month}")

        # referrals: active scanners bring in new consumers, the social ones most
        active = genuine["c"].unique().sort().to_numpy()
        social = w.consumers["social"].to_numpy()[active]
        span = (last_day - first_day + 1) / 30  # the monthly chance, for any flush length
        referrers = active[rng.random(len(active)) < 0.12 * social * span]
        if len(referrers):
            self.referrals.append(
                pl.DataFrame(
                    {
                        "referrer": referrers.astype(np.int64),
                        "day": rng.integers(first_day, last_day + 1, len(referrers)).astype(
                            np.int32
                        ),
                    }
                )
            )

    # --- snapshots after a run ---------------------------------------------------------
    def snapshots(self, label: str, end_day: int) -> None:
        """What systems export as of `end_day`: payments, rebates, market months, CDP masters."""
        cfg = self.cfg
        since = self.written_until
        day_of = lambda col: (pl.col(col) - pl.lit(cfg.start)).dt.total_days()  # noqa: E731
        if self.unpaid:
            pays = pl.concat(self.unpaid)
            now = pays.filter(day_of("pay_date") <= end_day).sort("pay_date", "invoice_id")
            self.unpaid = [pays.filter(day_of("pay_date") > end_day)]
            if now.height:
                now = now.with_columns(
                    payment_id=pl.format(
                        "PM{}",
                        pl.Series(self._next("payment", now.height)).cast(pl.String).str.zfill(8),
                    )
                )
                self.write("erp.payments", now, f"payments_{label}", header="zh")
        self._rebates(label, since, end_day)
        self._market(label, since, end_day)
        new = self.campaigns[self.campaigns_written :]
        if new:
            self.write("cdp.campaigns", pl.DataFrame(new), f"campaigns_{label}")
            self.campaigns_written = len(self.campaigns)
        w = self.world
        members = (
            self.members.filter(pl.col("join_day") <= end_day)
            .with_columns(
                group_id=pl.lit(w.groups["group_id"]).gather(pl.col("g")),
                consumer_id=_consumer_id("c"),
                join_date=self.date_of("join_day"),
            )
            .sort("join_day", "g", "c")
        )
        self.write("cdp.group_members", members, f"group_members_{label}")
        self._consumers(label, end_day)
        self.written_until = end_day

    def _rebates(self, label: str, since: int, end_day: int) -> None:
        if not self.invoice_totals:
            return
        cfg = self.cfg
        inv = pl.concat(self.invoice_totals).with_columns(
            quarter=pl.format(
                "{}Q{}", pl.col("invoice_date").dt.year(), pl.col("invoice_date").dt.quarter()
            ),
            settle_date=pl.date(
                pl.col("invoice_date").dt.year(), pl.col("invoice_date").dt.quarter() * 3, 1
            ).dt.month_end()
            + pl.duration(days=15),
        )
        q = inv.group_by("distributor_code", "quarter").agg(
            pl.col("amount").sum().round(2).alias("purchase_amount"), pl.col("settle_date").max()
        )
        settle = (pl.col("settle_date") - pl.lit(cfg.start)).dt.total_days()
        q = q.filter(settle > since, settle <= end_day)
        if q.is_empty():
            return
        median = q["purchase_amount"].median() or 0
        q = q.with_columns(
            rate=pl.when(pl.col("purchase_amount") > 2 * median)
            .then(0.03)
            .when(pl.col("purchase_amount") > median)
            .then(0.02)
            .otherwise(0.01)
        )
        q = q.with_columns(
            rebate_amount=(pl.col("purchase_amount") * pl.col("rate")).round(2),
            rebate_id=pl.format("RB{}{}", pl.col("quarter"), pl.col("distributor_code")),
        ).sort("rebate_id")
        self.write("dms.rebates", q, f"rebates_{label}")

    def _market(self, label: str, since: int, end_day: int) -> None:
        """Competitor prices and brand share for the months that closed in (since, end_day]."""
        cfg = self.cfg
        g = self.market_grid
        share = self.market.base_share[None, :, :] / self.market.demand_factor() ** 0.5
        g = g.with_columns(
            brand_share=pl.Series(
                np.round(
                    np.clip(
                        share.reshape(-1) * np.exp(0.03 * self.market_noise[: g.height]), 0.01, 0.9
                    ),
                    4,
                )
            )
        )
        close = (pl.col("month").dt.month_end() - pl.lit(cfg.start)).dt.total_days()
        g = g.filter(close > since, close <= end_day)
        if g.height:
            self.write("market.competitor_prices", g, f"competitor_prices_{label}", header="zh")
            self.write("market.market_share", g, f"market_share_{label}", header="zh")

    def _consumers(self, label: str, end_day: int) -> None:
        """Snapshot of every consumer registered by `end_day`, with how and when."""
        c = self.world.consumers
        n = len(c)
        join = np.full(n, np.iinfo(np.int32).max, dtype=np.int64)
        members = self.members.filter(pl.col("join_day") <= end_day)
        np.minimum.at(join, members["c"].to_numpy(), members["join_day"].to_numpy())
        channels = np.stack([self.first_scan, join, self.mini_program_day])
        reg_day = channels.min(axis=0)
        how = np.array(["扫码", "社群", "小程序"])[channels.argmin(axis=0)]
        pool = c.with_columns(register_day=pl.Series(reg_day), register_channel=pl.Series(how))
        pool = pool.filter(pl.Series(reg_day <= end_day))
        refs = (
            pl.concat(self.referrals)
            if self.referrals
            else pl.DataFrame(schema={"referrer": pl.Int64, "day": pl.Int32})
        )
        refs = refs.sort("day", "referrer").with_columns(
            referee=pl.Series(np.arange(n, n + refs.height), dtype=pl.Int64)
        )
        # referees' profiles are functions of their index, so every snapshot agrees
        idx = refs["referee"].to_numpy()
        parent = c[refs["referrer"].to_numpy()]
        referees = parent.with_columns(
            consumer_id=pl.format("C{}", (refs["referee"] + 1).cast(pl.String).str.zfill(9)),
            phone=pl.Series(13 * 10**9 + (self._unit(idx, 1) * 6 * 10**9).astype(np.int64)).cast(
                pl.String
            ),
            gender=pl.Series(np.where(self._unit(idx, 2) < 0.58, "F", "M")),
            birth_year=pl.Series(1960 + (self._unit(idx, 3) * 45).astype(np.int64)),
            register_day=refs["day"].cast(pl.Int64),
            register_channel=pl.lit("裂变"),
        )
        everyone = pl.concat([pool, referees.select(pool.columns)])
        missing = {
            "扫码": (0.25, 0.4),
            "社群": (0.1, 0.15),
            "小程序": (0.05, 0.1),
            "裂变": (0.2, 0.3),
        }
        ch = everyone["register_channel"].to_numpy()
        # profile gaps are a fixed property of each consumer, not redrawn per snapshot
        number = everyone["consumer_id"].str.slice(1).cast(pl.Int64).to_numpy()
        u, v = self._unit(number, 4), self._unit(number, 5)
        no_gender = u < np.array([missing[x][0] for x in ch])
        no_birth = v < np.array([missing[x][1] for x in ch])
        out = everyone.with_columns(
            gender=pl.when(pl.Series(no_gender)).then(None).otherwise(pl.col("gender")),
            birth_year=pl.when(pl.Series(no_birth)).then(None).otherwise(pl.col("birth_year")),
            register_date=self.date_of("register_day"),
        ).sort("register_day", "consumer_id")
        self.write("cdp.consumers", out, f"consumers_{label}")
        new_refs = refs.filter(pl.col("day") > self.written_until)
        if new_refs.height:
            r = new_refs.with_columns(
                referral_id=pl.format(
                    "RF{}", (pl.col("referee") - n + 1).cast(pl.String).str.zfill(8)
                ),
                referrer_id=pl.format("C{}", (pl.col("referrer") + 1).cast(pl.String).str.zfill(9)),
                referee_id=pl.format("C{}", (pl.col("referee") + 1).cast(pl.String).str.zfill(9)),
                referral_date=self.date_of("day"),
                channel=pl.Series(
                    np.array(["微信好友", "朋友圈", "社群"])[new_refs["referee"].to_numpy() % 3]
                ),
            )
            self.write("cdp.referrals", r, f"referrals_{label}")
        self.truth_extra["consumers"] = everyone.select(
            "consumer_id",
            "scenario",
            "value",
            "price_sensitivity",
            "social",
            "scan_propensity",
            "register_channel",
            "register_day",
        )


def _daily_id(prefix: str) -> pl.Expr:
    """Id of a store's document for a day (one sell-through report, inventory report, order)."""
    return pl.concat_str(pl.lit(prefix), pl.col("store_code"), pl.col("date").dt.strftime("%Y%m%d"))


def _consumer_id(index: str) -> pl.Expr:
    """Printed consumer id of a 0-based consumer index column."""
    return pl.format("C{}", (pl.col(index) + 1).cast(pl.String).str.zfill(9))


def _long(days: list[DayRecord], field_name: str, names: list[str]) -> pl.DataFrame:
    """Stack one sparse field of several days into a long frame with a day index."""
    parts = [getattr(d, field_name) for d in days]
    cols = {n: np.concatenate([p[i] for p in parts]) for i, n in enumerate(names)}
    cols["day"] = np.concatenate(
        [np.full(len(p[0]), d.day, dtype=np.int32) for p, d in zip(parts, days, strict=True)]
    )
    return pl.DataFrame(cols)


def _add_months(start: date, months: int) -> date:
    return date(
        start.year + (start.month - 1 + months) // 12, (start.month - 1 + months) % 12 + 1, 1
    )


STATE = "_state.pkl"


def simulate(
    root: Path,
    scale: str = "demo",
    seed: int = 42,
    progress: bool = True,
    dirt: float | None = None,
) -> dict:
    """Write `root/landing` and `root/truth` afresh; returns rows written per table."""
    cfg = get_scale(scale)
    if dirt is not None:
        cfg = type(cfg)(**{**asdict(cfg), "dirt": dirt})
    rng = np.random.default_rng(seed)
    world = build_world(cfg, rng)
    calendar = build_calendar(cfg.start, cfg.horizon_days)
    promos = promotions(cfg, world, rng)
    signups = promotion_signups(promos, world, rng)
    display = display_compliance(cfg, world, rng)
    n_months = month_number(cfg.start, cfg.start + timedelta(days=cfg.horizon_days - 1)) + 1
    market = build_market(n_months, len(world.provinces), len(world.categories), rng)
    channel = Channel(cfg, world, calendar, promos, signups, display, market, rng)

    landing, truth = root / "landing", root / "truth"
    for folder in (landing, truth):
        if folder.exists():
            shutil.rmtree(folder)
    writer = _Writer(
        cfg, world, np.random.default_rng(seed + 1), landing, truth, display, channel.capacity
    )
    writer.write_masters(promos, signups, market, channel.opening_stock())

    months = calendar["date"].dt.strftime("%Y-%m").to_list()
    _run_days(writer, channel, range(cfg.n_days), lambda t: months[t], progress)
    writer.snapshots("opening", cfg.n_days - 1)
    stockouts = writer.stockouts
    write_truth(cfg, world, writer, promos, signups, calendar, stockouts, truth, cfg.n_days - 1)
    manifest = inject_dirt(landing, cfg, np.random.default_rng(seed + 2))
    manifest.write_parquet(truth / "fault_manifest.parquet")
    meta = {
        "scale": cfg.name,
        "seed": seed,
        "config": asdict(cfg),
        "days": cfg.n_days,
        "rows": writer.rows,
        "faults": manifest.group_by("fault").len().sort("fault").rows(),
    }
    (landing / "_simulation.json").write_text(
        json.dumps(meta, default=str, indent=2, ensure_ascii=False)
    )
    _save(
        truth / STATE,
        {
            "cfg": cfg,
            "world": world,
            "calendar": calendar,
            "promos": promos,
            "signups": signups,
            "channel": channel,
            "writer": writer,
            "next_day": cfg.n_days,
        },
    )
    return writer.rows


def continue_simulation(root: Path, days: int, progress: bool = True) -> dict:
    """Append the next `days` days as daily export files; a share of rows arrives a run late.

    Returns rows written per table by this call.
    """
    truth = root / "truth"
    if not (truth / STATE).exists():
        raise FileNotFoundError(f"{truth / STATE} not found: run `bclake simulate` first")
    with (truth / STATE).open("rb") as fh:
        state = pickle.load(fh)
    cfg, writer, channel = state["cfg"], state["writer"], state["channel"]
    # the world may have been moved or copied since it was saved: write where it is now
    writer.landing, writer.truth = root / "landing", truth
    first = state["next_day"]
    if first + days > cfg.horizon_days:
        raise ValueError(
            f"the world is planned for {cfg.horizon_days} days; "
            f"{first} are simulated, so at most {cfg.horizon_days - first} remain"
        )
    writer.rows = {}
    writer.write_late()
    writer.late_share = LATE_SHARE
    dates = state["calendar"]["date"].to_list()
    _run_days(
        writer,
        channel,
        range(first, first + days),
        lambda t: dates[t].isoformat(),
        progress,
        daily=True,
    )
    end = first + days - 1
    writer.snapshots(dates[end].isoformat(), end)
    write_truth(
        cfg,
        state["world"],
        writer,
        state["promos"],
        state["signups"],
        state["calendar"],
        writer.stockouts,
        truth,
        end,
    )
    meta_path = root / "landing" / "_simulation.json"
    meta = json.loads(meta_path.read_text())
    meta["days"] = end + 1
    meta.setdefault("continued", []).append(
        {"from": dates[first].isoformat(), "days": days, "rows": writer.rows}
    )
    meta_path.write_text(json.dumps(meta, default=str, indent=2, ensure_ascii=False))
    state["next_day"] = end + 1
    _save(truth / STATE, state)
    return writer.rows


def _run_days(
    writer: _Writer, channel: Channel, days: range, label, progress: bool, daily: bool = False
) -> None:
    """Step the channel through `days`, flushing at each label change (month or day)."""
    buffer: list[DayRecord] = []
    with Progress(disable=not progress, transient=True) as bar:
        task = bar.add_task(f"simulating {len(days)} days", total=len(days))
        for t in days:
            record = channel.step(t)
            buffer.append(record)
            writer.stockouts.append(record.stockouts)
            if daily or t == days[-1] or label(t + 1) != label(t):
                writer.flush(label(t), buffer)
                buffer = []
            bar.advance(task)


def _save(path: Path, state: dict) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    with tmp.open("wb") as fh:  # streamed: never holds the whole pickle in memory
        pickle.dump(state, fh, protocol=pickle.HIGHEST_PROTOCOL)
    tmp.replace(path)
