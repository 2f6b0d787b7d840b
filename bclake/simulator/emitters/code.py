"""One-item-one-code platform exports: case activations, product scans and store-code scans."""

from __future__ import annotations

import polars as pl

from bclake.simulator.codes import case_codes
from bclake.simulator.emitters.out import Out
from bclake.simulator.lookup import consumer_id, numbered

BATCH_AGE_DAYS = 20  # a scanned unit's batch was made this many days before the scan


def case_activations(out: Out, name: str, cases: pl.DataFrame) -> None:
    """Cases activated to distributors (ledger rows plus `seconds` from `trade.activate_cases`)."""
    if cases.is_empty():
        return
    look = out.lookup
    frame = cases.with_columns(
        case_code=case_codes(cases),
        sku_code=pl.Series(look.sku_codes).gather(cases["k"]),
        last_serial=pl.col("first_serial") + pl.col("units") - 1,
        distributor_code=look.dist_code_of(cases["d"]),
        warehouse_code=look.dc_code_of_dist(cases["d"].to_numpy()),
        activation_time=look.time_of(),
    ).with_columns(activation_date=pl.col("activation_time").dt.date())
    out.landing.write("code.case_activations", frame, name)


def product_scans(out: Out, name: str, scans: pl.DataFrame) -> pl.DataFrame:
    """Write scans (from `scans.all_scans`) in time order with their ids; returns that frame.

    The returned frame keeps the simulation columns (s, k, c, day, seconds,
    label, activated_d, selling_d) next to scan_id and the printed columns.
    """
    look = out.lookup
    scans = scans.sort("day", "seconds", "product_code", "s", "c", maintain_order=True)
    scans = scans.with_columns(
        scan_id=numbered("SC", out.serials.take("scan", scans.height), 11),
        sku_code=pl.lit(pl.Series(look.sku_codes)).gather(pl.col("k")),
        batch_no=pl.concat_str(
            pl.lit("B"), look.date_of(pl.col("day") - BATCH_AGE_DAYS).dt.strftime("%y%m")
        ),
        scan_time=look.time_of(),
        lat=pl.col("lat").round(5),
        lon=pl.col("lon").round(5),
        consumer_id=consumer_id("c"),
    ).with_columns(scan_date=pl.col("scan_time").dt.date())
    out.landing.write("code.product_scans", scans, name)
    return scans


def store_scans(out: Out, month: str, visits: pl.DataFrame) -> None:
    """Store-code scans (visits in the shape of `consumers.no_visits()`), numbered in time order."""
    look = out.lookup
    visits = visits.sort("day", "seconds", "s", "c", maintain_order=True)
    visits = visits.with_columns(
        scan_id=numbered("SS", out.serials.take("store_scan", visits.height), 11),
        store_code=pl.lit(pl.Series(look.store_codes)).gather(pl.col("s")),
        consumer_id=consumer_id("c"),
        scan_time=look.time_of(),
    ).with_columns(scan_date=pl.col("scan_time").dt.date())
    out.landing.write("code.store_scans", visits, f"store_scans_{month}")
