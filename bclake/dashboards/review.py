"""Review decisions on market-order and reward-fraud alerts, recorded from the dashboard as
landing files.

The dashboards never write into the warehouse. A reviewer's decision becomes one CSV in
`<BCLAKE_HOME>/landing/review/alert_decisions/`, laid out exactly as the contract
`contracts/review/alert_decisions.yaml` reads it; the next pipeline run ingests it like
any other source file and the alert's status follows: in `marts.fct_market_order_alerts`
for a market-order alert (id `MO...`), in `marts.fct_incentive_fraud_alerts` for a
reward-fraud alert (id `IF...`), whose open rewards are then paid or forfeited.

One submission (one decision applied to one or more alerts) is one file, written to a
hidden temporary file in the same folder and renamed into place, so ingest never reads
half a file.
"""

from __future__ import annotations

import csv
import io
import os
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

from bclake.core.settings import Settings
from bclake.dashboards.auth import User

# the contract's columns, in its order: the file's header
COLUMNS = (
    "decision_id",
    "alert_id",
    "decision",
    "reason",
    "penalty_amount",
    "decided_by",
    "decided_at",
    "evidence_scans",
)
DECISIONS = ("confirmed", "dismissed", "penalised")
# MO: market-order alerts, IF: incentive (reward-fraud) alerts
ALERT_ID = re.compile(r"(MO|IF)[0-9A-F]{12}")
DECIDED_BY = re.compile(r"[A-Za-z0-9_.-]{1,64}")
# decided_at is written in China time with its offset, the wall time the warehouse keeps
SHANGHAI = timezone(timedelta(hours=8), "Asia/Shanghai")
REVIEW_ROLES = ("hq", "region")


class DecisionError(ValueError):
    """A decision the contract (or review policy) would refuse. `code` names the problem
    for the page's message: reason_required, amount_required, no_alerts, bad_alert,
    bad_decision, bad_user, not_reviewer."""

    def __init__(self, code: str, detail: str = "") -> None:
        super().__init__(f"{code}: {detail}" if detail else code)
        self.code = code


@dataclass(frozen=True)
class Decision:
    """One alert's decision. `penalty_amount` in yuan (penalised only); `evidence_scans`
    the alert's evidence rows when it was decided: its current `scans` for a market-order
    alert, its `events` (scans or display checks) for a reward-fraud alert."""

    alert_id: str
    decision: str
    reason: str | None
    penalty_amount: float | None
    evidence_scans: int


def decisions_folder(settings: Settings) -> Path:
    """`<landing>/review/alert_decisions`: where ingest looks for decision files."""
    return settings.landing / "review" / "alert_decisions"


def check_decision(row: Decision) -> None:
    """Raise DecisionError when the contract or the review rules would refuse `row`:
    a dismissal needs a reason, a penalty an amount in yuan above zero."""
    if not ALERT_ID.fullmatch(row.alert_id or ""):
        raise DecisionError("bad_alert", row.alert_id)
    if row.decision not in DECISIONS:
        raise DecisionError("bad_decision", row.decision)
    if row.decision == "dismissed" and not (row.reason or "").strip():
        raise DecisionError("reason_required", row.alert_id)
    if row.decision == "penalised" and not (row.penalty_amount and row.penalty_amount > 0):
        raise DecisionError("amount_required", row.alert_id)
    if row.evidence_scans < 0:
        raise DecisionError("bad_alert", f"{row.alert_id}: evidence_scans < 0")


def _text(value: str | None) -> str:
    """A free-text cell on one line (the reason): line breaks and tabs become spaces."""
    return " ".join((value or "").split())


def decisions_csv(user: User, rows: Sequence[Decision], now: datetime) -> tuple[str, bytes]:
    """(file name, UTF-8 CSV) of one submission: the contract's header, one line per
    decision. Raises DecisionError for a row `check_decision` refuses, for no rows, and
    for a user who may not review (only HQ and regions do) or whose name the contract's
    `decided_by` pattern refuses."""
    if user.scope.role not in REVIEW_ROLES:
        raise DecisionError("not_reviewer", user.username)
    if not DECIDED_BY.fullmatch(user.username):
        raise DecisionError("bad_user", user.username)
    if not rows:
        raise DecisionError("no_alerts")
    for row in rows:
        check_decision(row)
    utc = now.astimezone(UTC)
    stamp = f"{utc:%Y%m%d%H%M%S}"
    decided_at = now.astimezone(SHANGHAI).isoformat(timespec="seconds")
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(COLUMNS)
    for row in rows:
        writer.writerow(
            [
                f"RV{stamp}{secrets.token_hex(3)}",
                row.alert_id,
                row.decision,
                _text(row.reason),
                "" if row.penalty_amount is None else f"{row.penalty_amount:.2f}",
                user.username,
                decided_at,
                int(row.evidence_scans),
            ]
        )
    name = f"alert_decisions_{stamp}_{user.username}_{secrets.token_hex(3)}.csv"
    return name, buffer.getvalue().encode("utf-8")


def write_decisions(
    settings: Settings, user: User, rows: Sequence[Decision], now: datetime | None = None
) -> Path:
    """Write one submission's decisions as a new CSV in `decisions_folder(settings)` and
    return its path. `now` (default: the clock) stamps decision ids (UTC) and decided_at
    (China time). The file goes to a hidden temporary name in the same folder first and is
    renamed into place. Raises DecisionError (see `decisions_csv`) before anything is
    written, OSError when the folder cannot be written."""
    name, payload = decisions_csv(user, rows, now or datetime.now(UTC))
    folder = decisions_folder(settings)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    tmp = folder / f".{name}.tmp"
    tmp.write_bytes(payload)
    os.replace(tmp, path)
    return path


def pending_decisions(settings: Settings, since: float | None) -> list[Path]:
    """Decision files landed after `since` (seconds since the epoch; None: all): recorded,
    but not in the published warehouse yet."""
    folder = decisions_folder(settings)
    if not folder.is_dir():
        return []
    return sorted(
        p
        for p in folder.glob("*.csv")
        if not p.name.startswith(".") and (since is None or p.stat().st_mtime > since)
    )
