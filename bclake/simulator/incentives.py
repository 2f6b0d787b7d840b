"""The evidence the brand's incentive programmes pay for, and the DMS paying them.

Evidence is defined once here, for two views of the same world: the DMS's
(what the systems record: a reused photo passes as reported, farmed scans
count) and the truth (a reused photo shows a failed display, farmed scans are
fraud). Both are kept in an `EvidenceBook`, aggregated per payee and day as
the days are simulated, so memory stays bounded at any scale:

- distributor_purchases: invoice amounts per distributor and invoice date;
- store_purchases: delivered store-order line amounts per store and delivery
  date (order date + `STORE_LEAD_DAYS`), each line as `dms.store_orders` writes it;
- new_store_first_order: each store's first delivered order line (by delivery
  date) in the exports, for the store's distributor, counted when the store was
  onboarded at most `onboarded_within_days` before it;
- display_pass: checks compliant with score >= `min_score`;
- verified_scan: the first scan ever of a genuine code, followed by the same
  consumer scanning a store's code 0-600 s after it (the first such scan names
  the store), counted for that store on the product scan's date, if the code
  was activated to the store's distributor (`authorised_goods`) and the
  consumer consented to marketing (`consumer_consent`).

At each snapshot the DMS pays every programme period whose pay date (last day
of the period + `pay_after_days`) has come, from its own view and without the
diversion factor, with a few clerical errors; the truth's `earned` per period
(true evidence, true diversion findings) is written once the period has ended.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta

import numpy as np
import polars as pl

from bclake.core.codes import BODY_DIGITS
from bclake.core.incentives import EARNED_SCHEMA, Programme, Programmes, earned, period_start
from bclake.simulator.lookup import Lookup, add_months

NEVER = np.iinfo(np.int32).max
SCAN_LINK_SECONDS = 600  # a store-code scan at most this long after the product scan
WRONG_AMOUNT_SHARE = 0.02  # paid lines with a wrong amount
NOT_PAID_SHARE = 0.01  # due lines the DMS never paid
UNEXPLAINED_SHARE = 0.005  # extra lines: nothing due, or a line paid twice
ERRORS_FROM_LINES = 100  # a payment run this large has at least one error of each kind
PERIOD_MONTHS = {"month": 1, "quarter": 3, "year": 12}
SERIAL_BITS = 10**10  # code body = SKU index x 10^10 + unit serial


@dataclass
class EvidenceBook:
    """Evidence per payee and day (day indices from the window start), DMS view and truth.

    Frames are appended as days are simulated and compacted at each snapshot;
    evidence no programme period still needs is dropped.
    """

    n_stores: int
    n_skus: int
    first_delivery: np.ndarray = field(init=False)  # stores: day of the first delivered line
    purchases: list[pl.DataFrame] = field(default_factory=list)  # evidence, payee, day, fen
    checks: list[pl.DataFrame] = field(default_factory=list)  # s, day, reported and true result
    scans: list[pl.DataFrame] = field(default_factory=list)  # s, day, authorised, consent, n
    diverted: list[pl.DataFrame] = field(default_factory=list)  # d, day, n diverted scans
    scanned: list[np.ndarray] = field(init=False)  # SKUs: bitmap of unit serials ever scanned
    truth_from: dict[str, date] = field(default_factory=dict)  # programme -> first open period

    def __post_init__(self) -> None:
        self.first_delivery = np.full(self.n_stores, NEVER, dtype=np.int64)
        self.scanned = [np.zeros(0, dtype=np.uint8) for _ in range(self.n_skus)]

    # --- recording, as the days are simulated --------------------------------

    def add_invoices(self, invoices: pl.DataFrame, look: Lookup) -> None:
        """Invoice amounts (distributor_code, invoice_date, amount) per distributor and day."""
        self.purchases.append(
            invoices.group_by(
                payee_code=pl.col("distributor_code"), day=look.day_of("invoice_date")
            )
            .agg(fen=_fen("amount"))
            .with_columns(evidence=pl.lit("distributor_purchases"))
        )

    def add_store_orders(self, lines: pl.DataFrame, look: Lookup) -> None:
        """Delivered order lines (s, day, amount; qty_delivered > 0) per store and delivery day."""
        from bclake.simulator.dynamics import STORE_LEAD_DAYS

        if lines.is_empty():
            return
        lines = lines.with_columns(day=(pl.col("day") + STORE_LEAD_DAYS).cast(pl.Int64))
        self.purchases.append(
            lines.group_by("s", "day")
            .agg(fen=_fen("amount"))
            .with_columns(
                payee_code=pl.lit(pl.Series(look.store_codes, dtype=pl.String)).gather(pl.col("s")),
                evidence=pl.lit("store_purchases"),
            )
            .drop("s")
        )
        first = lines.group_by("s").agg(pl.col("day").min())
        s = first["s"].to_numpy()
        self.first_delivery[s] = np.minimum(self.first_delivery[s], first["day"].to_numpy())

    def add_checks(self, true: pl.DataFrame, reported: pl.DataFrame) -> None:
        """Display checks (m, s, day, compliant, score) as the rep found them and as reported."""
        if true.is_empty():
            return
        self.checks.append(
            reported.select(
                pl.col("s").cast(pl.Int64),
                pl.col("day").cast(pl.Int64),
                "compliant",
                "score",
                true_compliant=true["compliant"],
                true_score=true["score"],
            )
        )

    def first_scans(self, written: pl.DataFrame) -> pl.DataFrame:
        """The product scans in `written` that are the first scan ever of a genuine code.

        `written` is one part of the product-scan log with scan_id, product_code,
        k, c, day, seconds, label and activated_d; the codes are marked as
        scanned, so a later part never counts them again. The first scan of a
        code is the earliest by scan time, then scan_id. Returns c, t (seconds
        since day 0), activated_d and farmed (bool). Also counts the diverted
        scans per activated distributor and day (the true diversion findings).
        """
        frame = written.filter(pl.col("label") != "forged").select(
            "scan_id",
            "c",
            "activated_d",
            "label",
            k=pl.col("k").cast(pl.Int64),
            serial=pl.col("product_code").str.slice(0, BODY_DIGITS).cast(pl.Int64) % SERIAL_BITS,
            t=pl.col("day").cast(pl.Int64) * 86400 + pl.col("seconds"),
        )
        div = frame.filter(pl.col("label") == "diverted")
        if div.height:
            self.diverted.append(
                div.group_by(d=pl.col("activated_d").cast(pl.Int64), day=pl.col("t") // 86400).agg(
                    n=pl.len()
                )
            )
        frame = frame.sort("t", "scan_id").unique(
            ["k", "serial"], keep="first", maintain_order=True
        )
        k, serial = frame["k"].to_numpy(), frame["serial"].to_numpy()
        seen = np.zeros(len(k), dtype=bool)
        for sku in np.unique(k):
            rows = np.nonzero(k == sku)[0]
            bits = self.scanned[sku]
            need = int(serial[rows].max()) // 8 + 1
            if len(bits) < need:
                bits = np.concatenate([bits, np.zeros(need - len(bits) + need // 4, np.uint8)])
            byte, mask = serial[rows] // 8, (1 << (serial[rows] % 8)).astype(np.uint8)
            seen[rows] = (bits[byte] & mask) > 0
            np.bitwise_or.at(bits, byte, mask)
            self.scanned[sku] = bits
        return frame.filter(pl.Series(~seen)).select(
            "c", "t", "activated_d", farmed=pl.col("label") == "farmed"
        )

    def add_scans(
        self,
        firsts: pl.DataFrame,
        visits: pl.DataFrame,
        dist_of_store: np.ndarray,
        consent_until: np.ndarray,
    ) -> None:
        """Link first scans (from `first_scans`) to the store-code scans after them.

        `visits` are all store-code scans of the same days (s, c, day, seconds).
        A first scan links to the consumer's first store-code scan 0-600 s after
        it; counts per store, day, authorised (code activated to the store's
        distributor) and the consumer's `consent_until` (first day without marketing
        consent, per world consumer), for the DMS (all) and the truth (not farmed).
        Consent is judged when the evidence is read, as of the day the DMS pays.
        """
        if firsts.is_empty() or visits.is_empty():
            return
        right = visits.select(
            c=pl.col("c").cast(pl.Int64),
            t_store=pl.col("day").cast(pl.Int64) * 86400 + pl.col("seconds"),
            store=pl.col("s").cast(pl.Int64),
        ).sort("c", "t_store", "store")
        left = firsts.with_columns(pl.col("c").cast(pl.Int64)).sort("c", "t")
        linked = left.join_asof(
            right,
            left_on="t",
            right_on="t_store",
            by="c",
            strategy="forward",
            tolerance=SCAN_LINK_SECONDS,
            check_sortedness=False,
        ).filter(pl.col("store").is_not_null())
        if linked.is_empty():
            return
        store = linked["store"].to_numpy()
        linked = linked.with_columns(
            authorised=pl.Series(dist_of_store[store]) == pl.col("activated_d"),
            consent_until=pl.Series(consent_until[linked["c"].to_numpy()]),
        )
        self.scans.append(
            linked.group_by(
                s=pl.col("store"),
                day=pl.col("t") // 86400,
                authorised="authorised",
                consent_until="consent_until",
            ).agg(dms=pl.len().cast(pl.Int64), true=(~pl.col("farmed")).sum().cast(pl.Int64))
        )

    # --- reading, per programme ----------------------------------------------

    def compact(self) -> None:
        """Concatenate and re-aggregate the appended frames (same content, fewer rows)."""
        if self.purchases:
            self.purchases = [
                pl.concat(self.purchases, how="diagonal_relaxed")
                .group_by("evidence", "payee_code", "day")
                .agg(pl.col("fen").sum())
            ]
        if self.checks:
            self.checks = [pl.concat(self.checks, how="diagonal_relaxed")]
        if self.scans:
            self.scans = [
                pl.concat(self.scans, how="diagonal_relaxed")
                .group_by("s", "day", "authorised", "consent_until")
                .agg(pl.col("dms").sum(), pl.col("true").sum())
            ]
        if self.diverted:
            self.diverted = [
                pl.concat(self.diverted, how="diagonal_relaxed")
                .group_by("d", "day")
                .agg(pl.col("n").sum())
            ]

    def evidence(
        self, p: Programme, truth: bool, look: Lookup, onboard_day: np.ndarray, as_of: int
    ) -> pl.DataFrame:
        """Evidence of programme `p`'s kind, its eligibility applied, in the shape `earned` reads.

        `as_of`: the day it is read (paid); marketing consent counts as of then.
        Returns evidence, payee_code, day (date), events, basis; `truth` picks
        the true view (reused photos fail, farmed scans do not count). Amount
        kinds come as one row per payee and period (day = the period's first day).
        """
        self.compact()
        kind = p.evidence
        date_of = look.date_of("day")
        if kind in ("distributor_purchases", "store_purchases"):
            frame = (
                self.purchases[0].filter(pl.col("evidence") == kind)
                if self.purchases
                else pl.DataFrame(
                    schema={"payee_code": pl.String, "day": pl.Int64, "fen": pl.Int64}
                )
            )
            # one row per payee and period, summed in whole fen: the same basis in any order
            out = (
                frame.group_by("payee_code", day=period_start(date_of, p.period))
                .agg(pl.col("fen").sum())
                .select("payee_code", "day", events=pl.lit(0, pl.Int64), basis=pl.col("fen") / 100)
            )
        elif kind == "new_store_first_order":
            s = np.nonzero(self.first_delivery < NEVER)[0]
            day = self.first_delivery[s]
            ok = np.ones(len(s), dtype=bool)
            within = p.eligibility.onboarded_within_days
            if within is not None:
                ok = day - onboard_day[s] <= within
            s, day = s[ok], day[ok]
            out = pl.DataFrame(
                {
                    "payee_code": pl.Series(
                        [look.dist_codes[d] for d in look.dist_of_store[s]], dtype=pl.String
                    ),
                    "day": day.astype(np.int64),
                }
            ).select("payee_code", day=date_of, events=pl.lit(1, pl.Int64), basis=pl.lit(0.0))
        elif kind == "display_pass":
            checks = self.checks[0] if self.checks else _no_checks()
            ok, score = ("true_compliant", "true_score") if truth else ("compliant", "score")
            cond = pl.col(ok)
            if p.eligibility.min_score is not None:
                cond = cond & (pl.col(score) >= p.eligibility.min_score)
            out = checks.filter(cond).select(
                payee_code=pl.lit(pl.Series(look.store_codes, dtype=pl.String)).gather(pl.col("s")),
                day=date_of,
                events=pl.lit(1, pl.Int64),
                basis=pl.lit(0.0),
            )
        else:  # verified_scan
            scans = self.scans[0] if self.scans else _no_scans()
            if p.eligibility.authorised_goods:
                scans = scans.filter("authorised")
            if p.eligibility.consumer_consent:
                scans = scans.filter(pl.col("consent_until") > as_of)
            out = scans.select(
                payee_code=pl.lit(pl.Series(look.store_codes, dtype=pl.String)).gather(pl.col("s")),
                day=date_of,
                events=pl.col("true" if truth else "dms").cast(pl.Int64),
                basis=pl.lit(0.0),
            ).filter(pl.col("events") > 0)
        return out.with_columns(evidence=pl.lit(kind)).select(
            "evidence", "payee_code", "day", "events", "basis"
        )

    def findings(self, look: Lookup) -> pl.DataFrame:
        """True diversion findings: distributor_code and day of every day with a diverted scan.

        A diverter's episode overlaps a period exactly when a diverted scan of
        it happened in the period, so these days mark the periods with a finding.
        """
        self.compact()
        if not self.diverted:
            return pl.DataFrame(schema={"distributor_code": pl.String, "day": pl.Date})
        return self.diverted[0].select(
            distributor_code=pl.lit(pl.Series(look.dist_codes, dtype=pl.String)).gather(
                pl.col("d")
            ),
            day=look.date_of("day"),
        )

    def prune(self, programmes: Programmes, start: date, end_day: int) -> None:
        """Drop evidence older than every period still to be paid or written to the truth."""
        self.compact()
        keep: dict[str, int] = {}
        for p in programmes.programmes:
            unpaid = period_of(start + timedelta(days=end_day - p.pay_after_days + 1), p.period)
            first = min(unpaid, self.truth_from.get(p.id, unpaid))
            keep[p.evidence] = min(keep.get(p.evidence, NEVER), (first - start).days)
        oldest = min(keep.values(), default=NEVER)

        def cut(frames: list[pl.DataFrame], from_day: int) -> list[pl.DataFrame]:
            return [f.filter(pl.col("day") >= from_day) for f in frames]

        self.purchases = [
            f.filter(
                pl.col("day")
                >= pl.col("evidence").replace_strict(keep, default=NEVER, return_dtype=pl.Int64)
            )
            for f in self.purchases
        ]
        self.checks = cut(self.checks, keep.get("display_pass", NEVER))
        self.scans = cut(self.scans, keep.get("verified_scan", NEVER))
        self.diverted = cut(self.diverted, oldest)


def _fen(column: str) -> pl.Expr:
    """Sum of a yuan column with two decimals, in whole fen (exact, in any summation order)."""
    return (pl.col(column) * 100).round().cast(pl.Int64).sum()


def _no_checks() -> pl.DataFrame:
    return pl.DataFrame(
        schema={
            "s": pl.Int64,
            "day": pl.Int64,
            "compliant": pl.Boolean,
            "score": pl.Int64,
            "true_compliant": pl.Boolean,
            "true_score": pl.Int64,
        }
    )


def _no_scans() -> pl.DataFrame:
    return pl.DataFrame(
        schema={
            "s": pl.Int64,
            "day": pl.Int64,
            "authorised": pl.Boolean,
            "consent_until": pl.Int64,
            "dms": pl.Int64,
            "true": pl.Int64,
        }
    )


def period_of(day: date, period: str) -> date:
    """First day of the month, quarter or year `day` falls in."""
    months = PERIOD_MONTHS[period]
    month = (day.month - 1) // months * months + 1
    return date(day.year, month, 1)


def period_end(start: date, period: str) -> date:
    """Last day of the period that begins on `start`."""
    nxt = add_months(start, PERIOD_MONTHS[period])
    return nxt - timedelta(days=1)


def periods(first: date, last: date, period: str) -> list[date]:
    """Starts of the periods from the one holding `first` to the one holding `last`."""
    out, p = [], period_of(first, period)
    while p <= last:
        out.append(p)
        p = add_months(p, PERIOD_MONTHS[period])
    return out


def _only(p: Programme) -> Programmes:
    return Programmes(version=1, programmes=[p])


def true_earned(
    book: EvidenceBook,
    programmes: Programmes,
    look: Lookup,
    onboard_day: np.ndarray,
    end_day: int,
) -> pl.DataFrame:
    """`earned` on the true evidence and diversion findings, for every period that has ended
    by `end_day` and was not returned before (columns of `earned`)."""
    start = look.start
    end = start + timedelta(days=end_day)
    findings = book.findings(look)
    out = []
    for p in programmes.programmes:
        first = book.truth_from.get(p.id, period_of(start, p.period))
        done = [q for q in periods(first, end, p.period) if period_end(q, p.period) <= end]
        if not done:
            continue
        ev = book.evidence(p, True, look, onboard_day, end_day)
        got = earned(_only(p), ev, findings).filter(pl.col("period_start").is_in(done))
        out.append(got)
        book.truth_from[p.id] = add_months(done[-1], PERIOD_MONTHS[p.period])
    return pl.concat(out) if out else pl.DataFrame(schema=EARNED_SCHEMA)


def dms_due(
    book: EvidenceBook,
    programmes: Programmes,
    look: Lookup,
    onboard_day: np.ndarray,
    since: int,
    end_day: int,
) -> pl.DataFrame:
    """What the DMS's view earns for every programme period paid in days (since, end_day].

    No diversion factor (the DMS knows of no finding). Returns the columns of
    `earned` plus paid_date, for lines with amount > 0.
    """
    start = look.start
    out = []
    for p in programmes.programmes:
        first = start + timedelta(days=since + 1 - p.pay_after_days)
        last = start + timedelta(days=end_day - p.pay_after_days)
        pay = {
            q: period_end(q, p.period) + timedelta(days=p.pay_after_days)
            for q in periods(max(first, start - timedelta(days=366)), last, p.period)
        }
        due = [
            q
            for q, d in pay.items()
            if start + timedelta(days=since) < d <= start + timedelta(days=end_day)
        ]
        if not due:
            continue
        ev = book.evidence(p, False, look, onboard_day, end_day)
        got = earned(_only(p), ev, None).filter(
            pl.col("period_start").is_in(due), pl.col("amount") > 0
        )
        out.append(
            got.with_columns(
                paid_date=pl.col("period_start").replace_strict(pay, return_dtype=pl.Date)
            )
        )
    if not out:
        return pl.DataFrame(schema=EARNED_SCHEMA).with_columns(paid_date=pl.lit(None, pl.Date))
    return pl.concat(out)


ERROR_SCHEMA = {
    "kind": pl.String,
    "rebate_id": pl.String,
    "programme_id": pl.String,
    "payee_type": pl.String,
    "payee_code": pl.String,
    "period_start": pl.Date,
    "due_amount": pl.Float64,
    "paid_amount": pl.Float64,
}


def pay(
    due: pl.DataFrame,
    payees: dict[str, list[str]],
    take_serials,
    rng: np.random.Generator,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The DMS's payments of the `due` lines (from `dms_due`), with clerical errors.

    About 2% of lines are paid with a wrong amount (x 0.5-0.95 or x 1.05-1.5),
    1% are never paid, and 0.5% more lines are unexplained: a payment to a
    payee (from `payees`, per payee type) with nothing due for that programme
    and period, or a line paid a second time. A run of at least
    `ERRORS_FROM_LINES` due lines has at least one of each. `take_serials(n)`
    hands out rebate numbers. Returns (rebates: rebate_id, payee_type,
    payee_code, programme_id, period_start, paid_date, amount; errors in
    `ERROR_SCHEMA`, rebate_id null for lines not paid, due_amount null for
    unexplained lines).
    """
    n = due.height
    cols = ["payee_type", "payee_code", "programme_id", "period_start", "paid_date", "amount"]
    if n == 0:
        empty = pl.DataFrame(schema={"rebate_id": pl.String, **due.select(cols).schema})
        return empty, pl.DataFrame(schema=ERROR_SCHEMA)
    u = rng.random(n)
    wrong = u < WRONG_AMOUNT_SHARE
    missed = (u >= WRONG_AMOUNT_SHARE) & (u < WRONG_AMOUNT_SHARE + NOT_PAID_SHARE)
    n_extra = int(rng.binomial(n, UNEXPLAINED_SHARE))
    if n >= ERRORS_FROM_LINES:
        if not wrong.any():
            wrong[int(rng.integers(n))] = True
        if not missed.any():
            missed[int(rng.choice(np.nonzero(~wrong)[0]))] = True
        n_extra = max(1, n_extra)
    factor = np.where(rng.random(n) < 0.5, rng.uniform(0.5, 0.95, n), rng.uniform(1.05, 1.5, n))
    lines = due.with_columns(
        due_amount=pl.col("amount"),
        amount=pl.when(pl.Series(wrong))
        .then((pl.col("amount") * pl.Series(factor)).round(2))
        .otherwise(pl.col("amount")),
        kind=pl.when(pl.Series(wrong)).then(pl.lit("wrong_amount")).otherwise(pl.lit(None)),
    )
    not_paid = lines.filter(pl.Series(missed))
    paid = lines.filter(~pl.Series(missed))
    extras = []
    for _ in range(n_extra):
        if rng.random() < 0.5 and paid.height:  # the same line paid again
            extras.append(paid[int(rng.integers(paid.height))].with_columns(due_amount=None))
            continue
        line = lines[int(rng.integers(n))].with_columns(amount=pl.col("due_amount"))
        owed = set(
            due.filter(
                pl.col("programme_id") == line["programme_id"][0],
                pl.col("period_start") == line["period_start"][0],
            )["payee_code"]
        )
        others = [c for c in payees[line["payee_type"][0]] if c not in owed]
        if not others:
            continue
        extras.append(
            line.with_columns(
                payee_code=pl.lit(others[int(rng.integers(len(others)))]),
                due_amount=None,
            )
        )
    if extras:
        extra = pl.concat(extras).with_columns(kind=pl.lit("unexplained"))
        paid = pl.concat([paid, extra])
    paid = paid.sort("paid_date", "programme_id", "payee_code", "period_start", "kind")
    paid = paid.with_columns(
        rebate_id=pl.Series([f"RB{i:08d}" for i in take_serials(paid.height)], dtype=pl.String)
    )
    errors = pl.concat(
        [
            paid.filter(pl.col("kind").is_not_null()).select(
                "kind",
                "rebate_id",
                "programme_id",
                "payee_type",
                "payee_code",
                "period_start",
                "due_amount",
                paid_amount="amount",
            ),
            not_paid.select(
                kind=pl.lit("not_paid"),
                rebate_id=pl.lit(None, pl.String),
                programme_id="programme_id",
                payee_type="payee_type",
                payee_code="payee_code",
                period_start="period_start",
                due_amount="due_amount",
                paid_amount=pl.lit(0.0),
            ),
        ],
        how="vertical_relaxed",
    ).cast(ERROR_SCHEMA)
    return paid.select("rebate_id", *cols), errors.sort("kind", "programme_id", "payee_code")
