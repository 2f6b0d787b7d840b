"""Deliver new market-order alerts to a chat bot webhook (企业微信 / 钉钉 / any HTTP endpoint).

Off unless `BCLAKE_ALERT_WEBHOOK` holds a URL. After each publish, alerts that are
open or reopened and were not delivered before with the same evidence are posted
as one text message (`{"msgtype": "text", "text": {"content": ...}}`, the shape both
WeCom and DingTalk group bots accept), the highest scores first. What was sent is
remembered in `<root>/.bclake/alerts_delivered.json` (alert id -> evidence scans; state,
not an export, so it survives the swap of export sets), so a run never repeats itself
and an alert whose evidence grew is sent again. A failed post is reported and retried
by the next run; it never fails the pipeline.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import duckdb

MAX_LINES = 20  # alerts listed in one message; the rest are counted
TIMEOUT_S = 10
SENT_FILE = "alerts_delivered.json"


@dataclass(frozen=True)
class Delivery:
    """What one delivery did: alerts due, alerts posted, and the error if the post failed."""

    due: int
    posted: int
    error: str | None = None


def due_alerts(published_db: Path, sent: dict[str, int]) -> list[dict]:
    """Open or reopened alerts not yet delivered with their current evidence, best first."""
    with duckdb.connect(str(published_db), read_only=True) as con:
        rows = con.execute(
            "select alert_id, kind, scans, score, reason_zh, reason_en "
            "from marts.fct_market_order_alerts where status in ('open', 'reopened') "
            "order by score desc, last_seen desc, alert_id"
        ).fetchall()
    cols = ("alert_id", "kind", "scans", "score", "reason_zh", "reason_en")
    alerts = [dict(zip(cols, r, strict=True)) for r in rows]
    return [a for a in alerts if sent.get(a["alert_id"], -1) < a["scans"]]


def message(alerts: list[dict]) -> dict:
    """The bot message for `alerts` (zh reason, then the alert id)."""
    lines = [f"市场秩序预警 Market-order alerts: {len(alerts)} new"]
    for a in alerts[:MAX_LINES]:
        lines.append(f"[{a['kind']} {a['score']:.2f}] {a['reason_zh']} ({a['alert_id']})")
    if len(alerts) > MAX_LINES:
        lines.append(f"… and {len(alerts) - MAX_LINES} more on the 市场秩序 page")
    return {"msgtype": "text", "text": {"content": "\n".join(lines)}}


def deliver_alerts(published_db: Path, state_dir: Path, url: str | None) -> Delivery:
    """Post the due alerts to `url` (None: delivery off, nothing is read or written);
    what was sent is kept in `state_dir/alerts_delivered.json`."""
    if not url:
        return Delivery(0, 0)
    sent_path = state_dir / SENT_FILE
    sent: dict[str, int] = json.loads(sent_path.read_text()) if sent_path.exists() else {}
    alerts = due_alerts(published_db, sent)
    if not alerts:
        return Delivery(0, 0)
    body = json.dumps(message(alerts), ensure_ascii=False).encode("utf-8")
    request = urllib.request.Request(
        url, data=body, headers={"Content-Type": "application/json"}, method="POST"
    )
    try:
        if not url.lower().startswith(("http://", "https://")):
            raise ValueError(f"BCLAKE_ALERT_WEBHOOK must be an http(s) URL, not {url[:40]!r}")
        with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:
            response.read()
    except (urllib.error.URLError, TimeoutError, ValueError) as err:
        return Delivery(len(alerts), 0, f"{type(err).__name__}: {err}")
    sent |= {a["alert_id"]: a["scans"] for a in alerts}
    state_dir.mkdir(parents=True, exist_ok=True)
    tmp = sent_path.with_suffix(".tmp")
    tmp.write_text(json.dumps(sent, sort_keys=True))
    tmp.replace(sent_path)
    return Delivery(len(alerts), len(alerts))
