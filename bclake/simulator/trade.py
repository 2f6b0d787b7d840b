"""B side beyond the daily stock flow: case activation, invoices and payment, rebates, rep visits.

`dynamics.Channel` moves the stock; here are the documents and habits around
it that the systems record: the DC scanning whole cases out to a distributor,
distributors paying their invoices late by their own habit, the quarterly
purchase rebate, and sales reps' monthly display checks.
"""

from __future__ import annotations

from datetime import date

import numpy as np
import polars as pl

from bclake.simulator.codes import CodeLedger
from bclake.simulator.lookup import add_months
from bclake.simulator.world import World

PAYMENT_TERMS_DAYS = 30
CHECK_SHARE = 0.8  # months in which a rep comes to check a store's display


def activate_cases(
    ledger: CodeLedger,
    day: int,
    d: np.ndarray,
    k: np.ndarray,
    units: np.ndarray,
    rng: np.random.Generator,
) -> pl.DataFrame:
    """Activate the whole cases in `units` shipped to distributors `d` for SKUs `k` on `day`.

    Returns the ledger's case rows (d, k, day, first_serial, units, stream_pos)
    plus `seconds`, the time of day the DC scanned each case out (06:00-20:00).
    """
    cases = ledger.activate(day, d, k, units)
    seconds = rng.integers(6 * 3600, 20 * 3600, size=cases.height)
    return cases.with_columns(seconds=pl.Series(seconds, dtype=pl.Int64))


def invoices(shipments: pl.DataFrame, world: World, rng: np.random.Generator) -> pl.DataFrame:
    """One invoice per shipment with a positive amount, and when the distributor will pay it.

    `shipments` has one row per line (shipment_id, d, distributor_code,
    ship_date, amount). Returns shipment_id, d, distributor_code, ship_date,
    amount (yuan), invoice_id, invoice_date, due_date and `delay`, the days from
    invoice to payment (gamma around the distributor's habit).
    """
    heads = shipments.group_by(
        "shipment_id", "d", "distributor_code", "ship_date", maintain_order=True
    ).agg(pl.col("amount").sum().round(2))
    heads = heads.filter(pl.col("amount") > 0)
    delay_mean = world.distributors["pay_delay_mean"].to_numpy()[heads["d"].to_numpy()]
    delay = np.ceil(rng.gamma(2.0, delay_mean / 2.0)).astype(np.int64)
    return heads.with_columns(
        invoice_id=pl.col("shipment_id").str.replace("SH", "IV"),
        invoice_date=pl.col("ship_date"),
        due_date=pl.col("ship_date") + pl.duration(days=PAYMENT_TERMS_DAYS),
        delay=pl.Series(delay),
    ).with_columns(pay_date=pl.col("invoice_date") + pl.duration(days=pl.col("delay")))


def due_payments(
    unpaid: list[pl.DataFrame], start: date, end_day: int
) -> tuple[pl.DataFrame, list[pl.DataFrame]]:
    """Split unpaid invoices into those paid by `end_day` (sorted by pay date) and the rest."""
    if not unpaid:
        return pl.DataFrame(), []
    pays = pl.concat(unpaid)
    day = (pl.col("pay_date") - pl.lit(start)).dt.total_days()
    now = pays.filter(day <= end_day).sort("pay_date", "invoice_id")
    return now, [pays.filter(day > end_day)]


def rebates(
    invoice_totals: list[pl.DataFrame], start: date, since: int, end_day: int
) -> pl.DataFrame:
    """Quarterly purchase rebates settled in days (since, end_day].

    A distributor earns 1% of its quarter's purchases, 2% above the median
    distributor and 3% above twice the median; settled on the 15th day after
    the quarter ends. Returns distributor_code, quarter (`2024Q1`),
    purchase_amount, settle_date, rate, rebate_amount (yuan), rebate_id.
    """
    if not invoice_totals:
        return pl.DataFrame()
    inv = pl.concat(invoice_totals).with_columns(
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
    settle = (pl.col("settle_date") - pl.lit(start)).dt.total_days()
    q = q.filter(settle > since, settle <= end_day)
    if q.is_empty():
        return q
    median = q["purchase_amount"].median() or 0
    q = q.with_columns(
        rate=pl.when(pl.col("purchase_amount") > 2 * median)
        .then(0.03)
        .when(pl.col("purchase_amount") > median)
        .then(0.02)
        .otherwise(0.01)
    )
    return q.with_columns(
        rebate_amount=(pl.col("purchase_amount") * pl.col("rate")).round(2),
        rebate_id=pl.format("RB{}{}", pl.col("quarter"), pl.col("distributor_code")),
    ).sort("rebate_id")


def check_visits(
    start: date, n_months: int, n_stores: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Each store's display check day in each month, and whether the rep comes at all.

    Returns (months x stores day indices, months x stores bool).
    """
    month_start = np.array([(add_months(start, m) - start).days for m in range(n_months + 1)])
    draw = rng.random((n_months, n_stores))
    day = month_start[:-1, None] + (draw * np.diff(month_start)[:, None]).astype(np.int64)
    done = rng.random((n_months, n_stores)) < CHECK_SHARE
    return day, done


def display_checks(
    check_day: np.ndarray,
    check_done: np.ndarray,
    display: np.ndarray,
    onboard_day: np.ndarray,
    first_day: int,
    last_day: int,
    rng: np.random.Generator,
) -> pl.DataFrame:
    """The reps' display checks in [first_day, last_day] at stores already onboarded.

    A compliant display scores 75-100, otherwise 30-74. Returns m (month
    index), s, day, compliant, score and photo_count; empty when no check fell due.
    """
    m, s = np.nonzero(
        (check_day >= first_day)
        & (check_day <= last_day)
        & check_done
        & (onboard_day[None, :] <= check_day)
    )
    compliant = display[m, s]
    score = np.where(compliant, rng.integers(75, 101, len(s)), rng.integers(30, 75, len(s)))
    return pl.DataFrame(
        {
            "m": m.astype(np.int64),
            "s": s.astype(np.int64),
            "day": check_day[m, s].astype(np.int32),
            "compliant": compliant,
            "score": score.astype(np.int64),
            "photo_count": rng.integers(1, 6, len(s)).astype(np.int64),
        }
    )
