"""B side beyond the daily stock flow: case activation, invoices and payment, rep visits.

`dynamics.Channel` moves the stock; here are the documents and habits around
it that the systems record: the DC scanning whole cases out to a distributor,
distributors paying their invoices late by their own habit, and sales reps'
monthly display checks with their photos, a few of them another store's photo
submitted again (photo-reuse fraud). The DMS's rebate payments are in
`incentives`.
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
    index), s, day, compliant, score and photo_count (the true check, before
    any photo reuse); empty when no check fell due.
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


def checks_held(
    check_day: np.ndarray, check_done: np.ndarray, onboard_day: np.ndarray
) -> np.ndarray:
    """Months x stores: a rep checks the store's display that month (as `display_checks`)."""
    return check_done & (onboard_day[None, :] <= check_day)


def photo_reuse_plan(
    check_day: np.ndarray,
    check_done: np.ndarray,
    display: np.ndarray,
    onboard_day: np.ndarray,
    dist_of_store: np.ndarray,
    n_days: int,
    rate: float,
    rng: np.random.Generator,
) -> pl.DataFrame:
    """Which checks are submitted with another store's photo (photo-reuse fraud), planned up front.

    Of the checks in the window (`n_days`) about `rate` (binomial, at least 2
    when the world has checks) are reused: a check whose display truly failed
    is submitted with the photo of a compliant check at another store of the
    same distributor, held earlier in the same or the previous month, and
    reported compliant with a score of 75-100. Checks after the window are
    planned at the same rate, so a continued world keeps planting them.
    Returns m, s (the reused check), src_m, src_s (the check whose photo was
    reused) and score (reported), one row per reused check.
    """
    held = checks_held(check_day, check_done, onboard_day)
    rows = []
    for in_window in (True, False):
        span = (check_day < n_days) if in_window else (check_day >= n_days)
        n_checks = int((held & span).sum())
        if n_checks == 0:
            continue
        n = int(rng.binomial(n_checks, rate))
        if in_window:
            n = max(2, n)
        failed = np.argwhere(held & span & ~display)
        for i in rng.permutation(len(failed)):
            if n == 0:
                break
            m, s = (int(x) for x in failed[i])
            months = [x for x in (m - 1, m) if x >= 0]
            cand = [
                (mm, int(ss))
                for mm in months
                for ss in np.nonzero(
                    held[mm]
                    & display[mm]
                    & (dist_of_store == dist_of_store[s])
                    & (check_day[mm] < check_day[m, s])
                )[0]
                if ss != s
            ]
            if not cand:
                continue
            src_m, src_s = cand[int(rng.integers(len(cand)))]
            rows.append((m, s, src_m, src_s, int(rng.integers(75, 101))))
            n -= 1
    schema = {"m": pl.Int64, "s": pl.Int64, "src_m": pl.Int64, "src_s": pl.Int64, "score": pl.Int64}
    return pl.DataFrame(rows, schema=schema, orient="row").sort("m", "s")


def photo_hashes(m: np.ndarray, s: np.ndarray, n_stores: int, salt: int) -> pl.Series:
    """The 64-bit perceptual hash (16 lowercase hex digits) of a genuine check's main photo.

    A fixed random value per check (month `m`, store `s`), so a reused photo's
    hash is known whenever the reused check is written.
    """
    key = m.astype(np.uint64) * np.uint64(n_stores) + s.astype(np.uint64)
    with np.errstate(over="ignore"):
        z = key * np.uint64(0x9E3779B97F4A7C15) + np.uint64(salt)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    return pl.Series("photo_hash", [f"{int(v):016x}" for v in z], dtype=pl.String)


def reported_checks(
    checks: pl.DataFrame, plan: pl.DataFrame, n_stores: int, salt: int
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The checks as the DMS records them, and which of them reused another store's photo.

    `checks` from `display_checks`; `plan` from `photo_reuse_plan`. Returns
    (the checks with photo_hash and, where reused, the source's photo hash,
    compliant true and the planned score; the reused checks: m, s, src_m, src_s).
    """
    reused = checks.select("m", "s").join(plan, on=["m", "s"], how="inner")
    own = photo_hashes(checks["m"].to_numpy(), checks["s"].to_numpy(), n_stores, salt)
    out = checks.with_columns(photo_hash=own).join(
        reused.with_columns(
            src_hash=photo_hashes(
                reused["src_m"].to_numpy(), reused["src_s"].to_numpy(), n_stores, salt
            ),
            src_score=pl.col("score"),
        ).select("m", "s", "src_hash", "src_score"),
        on=["m", "s"],
        how="left",
        maintain_order="left",
    )
    hit = pl.col("src_hash").is_not_null()
    out = out.with_columns(
        photo_hash=pl.coalesce("src_hash", "photo_hash"),
        compliant=pl.col("compliant") | hit,
        score=pl.when(hit).then(pl.col("src_score")).otherwise(pl.col("score")),
    ).drop("src_hash", "src_score")
    return out, reused.select("m", "s", "src_m", "src_s")
