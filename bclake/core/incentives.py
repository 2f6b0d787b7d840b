"""Incentive programmes (分级激励): load, validate and apply the brand's rebate rules.

The programmes live in one YAML file (`config/incentives.yaml`, or the file
`BCLAKE_INCENTIVES` names). `load_programmes` validates it and raises
`ProgrammeError` naming the file, the programme and the field at fault. The
pipeline writes the programmes to the lake as two small tables
(`programme_frames`) that dbt turns into statements; `earned` is the same
arithmetic in polars, for a world that knows its true evidence (the simulator's
DMS and truth) and for tests that pin each rule type.

Arithmetic, per payee and period (month, quarter or year):
- ``per_event``: min(events, max_events) x amount;
- ``tiered_rate``, ``whole``: basis x the rate of the highest tier whose `from`
  the basis reaches; ``marginal``: each tier's rate on the part of the basis
  between its `from` and the next tier's `from`; a basis <= 0 earns 0;
- then x `compliance.diversion_factor` when the distributor has a diversion
  finding in the period, then at most `cap`, rounded to the fen (0.01 yuan).
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Literal

import polars as pl
from pydantic import BaseModel, ConfigDict, Field, model_validator

from bclake.core.config_files import load_config, require_unique_ids

EVIDENCE_PAYEE = {
    "distributor_purchases": "distributor",
    "new_store_first_order": "distributor",
    "store_purchases": "store",
    "display_pass": "store",
    "verified_scan": "store",
}
TIERED_EVIDENCE = {"distributor_purchases", "store_purchases"}
# what `earned` returns
EARNED_SCHEMA = {
    "programme_id": pl.String,
    "payee_type": pl.String,
    "payee_code": pl.String,
    "period_start": pl.Date,
    "events": pl.Int64,
    "basis": pl.Float64,
    "diversion_finding": pl.Boolean,
    "amount": pl.Float64,
}


class ProgrammeError(ValueError):
    """An incentive programme file that cannot be used, with what to fix."""


class Tier(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    start: float = Field(alias="from", ge=0, description="basis (yuan) from which the rate applies")
    rate: float = Field(ge=0, le=1, description="share of the basis paid, 0.02 = 2%")


class Eligibility(BaseModel):
    model_config = ConfigDict(extra="forbid")

    min_score: int | None = Field(None, ge=0, le=100)  # display_pass: lowest passing score
    consumer_consent: bool = False  # verified_scan: consumer consented to marketing contact
    authorised_goods: bool = False  # verified_scan: code activated to the store's distributor
    onboarded_within_days: int | None = Field(None, ge=0)  # new_store_first_order


class Compliance(BaseModel):
    model_config = ConfigDict(extra="forbid")

    diversion_factor: float = Field(ge=0, le=1)


class Programme(BaseModel):
    """One rebate rule: who is paid, for what evidence, how much, how often."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(pattern=r"^[A-Z][A-Z0-9_]{0,15}$")
    name_zh: str = Field(min_length=1)
    name_en: str = Field(min_length=1)
    payee: Literal["distributor", "store"]
    evidence: Literal[
        "distributor_purchases",
        "store_purchases",
        "new_store_first_order",
        "display_pass",
        "verified_scan",
    ]
    period: Literal["month", "quarter", "year"]
    calculation: Literal["per_event", "tiered_rate"]
    amount: float | None = Field(None, gt=0)  # per_event: yuan per counted event
    max_events: int | None = Field(None, ge=1)  # per_event: events counted per payee and period
    tiers: list[Tier] | None = None
    tier_mode: Literal["whole", "marginal"] = "whole"
    cap: float | None = Field(None, gt=0)  # yuan per payee and period
    eligibility: Eligibility = Field(default_factory=Eligibility)
    compliance: Compliance | None = None
    pay_after_days: int = Field(10, ge=0, le=366)

    @model_validator(mode="after")
    def _consistent(self) -> Programme:
        if EVIDENCE_PAYEE[self.evidence] != self.payee:
            raise ValueError(
                f"evidence {self.evidence} pays a {EVIDENCE_PAYEE[self.evidence]}, "
                f"not a {self.payee}: set payee: {EVIDENCE_PAYEE[self.evidence]}"
            )
        if self.calculation == "tiered_rate":
            self._check_tiered()
        else:
            self._check_per_event()
        if self.compliance is not None and self.payee != "distributor":
            raise ValueError("compliance (diversion) applies to distributor programmes only")
        return self

    def _check_tiered(self) -> None:
        if self.evidence not in TIERED_EVIDENCE:
            raise ValueError(
                f"tiered_rate needs an amount basis ({', '.join(sorted(TIERED_EVIDENCE))}); "
                f"{self.evidence} counts events: use calculation: per_event"
            )
        if not self.tiers:
            raise ValueError("tiered_rate needs tiers: [{from: 0, rate: 0.01}, ...]")
        starts = [t.start for t in self.tiers]
        if starts != sorted(starts) or len(set(starts)) != len(starts):
            raise ValueError(f"tiers must rise strictly by `from`, got {starts}")
        if self.amount is not None or self.max_events is not None:
            raise ValueError("tiered_rate pays rates: remove amount / max_events")

    def _check_per_event(self) -> None:
        if self.evidence in TIERED_EVIDENCE:
            raise ValueError(f"{self.evidence} is an amount: use calculation: tiered_rate")
        if self.amount is None:
            raise ValueError("per_event needs amount (yuan per event)")
        if self.tiers:
            raise ValueError("per_event pays an amount per event: remove tiers")


class Programmes(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: Literal[1]
    programmes: list[Programme] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique_ids(self) -> Programmes:
        require_unique_ids([p.id for p in self.programmes], "programme")
        return self


def load_programmes(path: Path) -> Programmes:
    """Read and validate a programme file.

    Raises `ProgrammeError` with the file, the programme id (or position) and
    the field, e.g. ``config/incentives.yaml: programme SV (#5) tiers: ...``.
    """
    return load_config(
        Path(path), Programmes, "programmes", "programme", ProgrammeError, "programme file"
    )


def programme_frames(programmes: Programmes) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The programmes as two tables for the warehouse: one row per programme, one per tier.

    Programmes: programme_id, name_zh, name_en, payee_type, evidence, period,
    calculation, amount, max_events, tier_mode, cap, min_score, consumer_consent,
    authorised_goods, onboarded_within_days, diversion_factor, pay_after_days.
    Tiers: programme_id, tier (1-based), tier_from, tier_to (null for the last), rate.
    """
    rows, tiers = [], []
    for p in programmes.programmes:
        rows.append(
            {
                "programme_id": p.id,
                "name_zh": p.name_zh,
                "name_en": p.name_en,
                "payee_type": p.payee,
                "evidence": p.evidence,
                "period": p.period,
                "calculation": p.calculation,
                "amount": p.amount,
                "max_events": p.max_events,
                "tier_mode": p.tier_mode,
                "cap": p.cap,
                "min_score": p.eligibility.min_score,
                "consumer_consent": p.eligibility.consumer_consent,
                "authorised_goods": p.eligibility.authorised_goods,
                "onboarded_within_days": p.eligibility.onboarded_within_days,
                "diversion_factor": p.compliance.diversion_factor if p.compliance else None,
                "pay_after_days": p.pay_after_days,
            }
        )
        for i, t in enumerate(p.tiers or []):
            nxt = p.tiers[i + 1].start if i + 1 < len(p.tiers) else None
            tiers.append(
                {
                    "programme_id": p.id,
                    "tier": i + 1,
                    "tier_from": t.start,
                    "tier_to": nxt,
                    "rate": t.rate,
                }
            )
    schema = {
        "programme_id": pl.String,
        "tier": pl.Int64,
        "tier_from": pl.Float64,
        "tier_to": pl.Float64,
        "rate": pl.Float64,
    }
    return pl.DataFrame(rows, infer_schema_length=None), pl.DataFrame(tiers, schema=schema)


def period_start(day: pl.Expr, period: str) -> pl.Expr:
    """The first day of the month, quarter or year `day` falls in."""
    return day.dt.truncate({"month": "1mo", "quarter": "1q", "year": "1y"}[period])


def tier_amount(basis: float, programme: Programme) -> float:
    """Yuan a tiered_rate programme pays on `basis` yuan, before compliance and cap."""
    tiers = programme.tiers or []
    if basis <= 0 or not tiers:
        return 0.0
    if programme.tier_mode == "whole":
        reached = [t for t in tiers if basis >= t.start]
        return basis * reached[-1].rate if reached else 0.0
    total = 0.0
    for i, t in enumerate(tiers):
        top = tiers[i + 1].start if i + 1 < len(tiers) else float("inf")
        total += max(0.0, min(basis, top) - t.start) * t.rate
    return total


def earned(
    programmes: Programmes,
    evidence: pl.DataFrame,
    diversion: pl.DataFrame | None = None,
) -> pl.DataFrame:
    """What each payee earns under `programmes` from evidence already found eligible.

    `evidence` has one row per counted event or amount: evidence (a kind above),
    payee_code, day (date), events (int, per_event kinds) and basis (yuan,
    tiered kinds); eligibility (consent, score, authorised goods, onboarding) is
    the caller's to apply before. `diversion` lists distributor_code and day of
    diversion findings (a period with one is paid at the diversion factor).
    Returns programme_id, payee_type, payee_code, period_start (date), events,
    basis, diversion_finding (bool), amount (yuan, 0.01), sorted; payees with no
    evidence in a period have no row.
    """
    out = []
    for p in programmes.programmes:
        ev = evidence.filter(pl.col("evidence") == p.evidence)
        if ev.is_empty():
            continue
        per = ev.group_by("payee_code", period_start(pl.col("day"), p.period).alias("period_start"))
        agg = per.agg(
            pl.col("events").fill_null(0).sum().alias("events"),
            pl.col("basis").fill_null(0.0).sum().alias("basis"),
        )
        found: set[tuple[str, date]] = set()
        if p.compliance is not None and diversion is not None and not diversion.is_empty():
            marks = diversion.select(
                "distributor_code", period_start(pl.col("day"), p.period).alias("period_start")
            ).unique()
            found = set(marks.iter_rows())
        amounts, flags = [], []
        for code, start, events, basis in agg.select(
            "payee_code", "period_start", "events", "basis"
        ).iter_rows():
            if p.calculation == "per_event":
                n = min(events, p.max_events) if p.max_events else events
                value = n * (p.amount or 0.0)
            else:
                value = tier_amount(basis, p)
            flag = (code, start) in found
            if flag and p.compliance is not None:
                value *= p.compliance.diversion_factor
            if p.cap is not None:
                value = min(value, p.cap)
            amounts.append(round(value + 1e-9, 2))
            flags.append(flag)
        out.append(
            agg.with_columns(
                programme_id=pl.lit(p.id),
                payee_type=pl.lit(p.payee),
                diversion_finding=pl.Series(flags, dtype=pl.Boolean),
                amount=pl.Series(amounts, dtype=pl.Float64),
            )
        )
    cols = list(EARNED_SCHEMA)
    if not out:
        return pl.DataFrame(schema=EARNED_SCHEMA)
    return pl.concat([f.select(cols) for f in out]).sort(cols[:4])
