"""Market-order alerts reach a chat bot webhook once per evidence, and never fail a run."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import ClassVar

import duckdb
import pytest

from bclake.exports.alerts import deliver_alerts


class _Bot(BaseHTTPRequestHandler):
    received: ClassVar[list[dict]] = []

    def do_POST(self) -> None:
        length = int(self.headers["Content-Length"])
        _Bot.received.append(json.loads(self.rfile.read(length)))
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b'{"errcode": 0}')

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def bot() -> Iterator[str]:
    _Bot.received = []
    server = HTTPServer(("127.0.0.1", 0), _Bot)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/hook"
    server.shutdown()


def _published(path: Path, rows: list[tuple]) -> Path:
    with duckdb.connect(str(path)) as con:
        con.execute("create schema marts")
        con.execute(
            "create table marts.fct_market_order_alerts (alert_id varchar, kind varchar, "
            "scans bigint, score double, status varchar, last_seen timestamp, "
            "reason_zh varchar, reason_en varchar)"
        )
        con.executemany(
            "insert into marts.fct_market_order_alerts values (?, ?, ?, ?, ?, now(), ?, ?)", rows
        )
    return path


def test_new_alerts_are_posted_once_and_again_when_evidence_grows(tmp_path: Path, bot: str) -> None:
    db = _published(
        tmp_path / "a.duckdb",
        [
            ("MO000000000001", "diversion", 10, 0.9, "open", "D0012 的 SKU0001 在 北京", "x"),
            ("MO000000000002", "forged_code", 1, 0.8, "dismissed", "已驳回", "x"),
        ],
    )
    first = deliver_alerts(db, tmp_path / "exports", bot)
    assert (first.due, first.posted, first.error) == (1, 1, None)
    content = _Bot.received[0]["text"]["content"]
    assert _Bot.received[0]["msgtype"] == "text"
    assert "MO000000000001" in content and "MO000000000002" not in content
    assert deliver_alerts(db, tmp_path / "exports", bot).due == 0  # nothing new: no post
    assert len(_Bot.received) == 1
    with duckdb.connect(str(db)) as con:
        con.execute("update marts.fct_market_order_alerts set scans = 12, status = 'reopened'")
    assert deliver_alerts(db, tmp_path / "exports", bot).posted == 2
    assert len(_Bot.received) == 2


def test_delivery_is_off_without_a_url_and_a_failure_is_retried(tmp_path: Path) -> None:
    db = _published(
        tmp_path / "a.duckdb", [("MO000000000001", "diversion", 10, 0.9, "open", "r", "x")]
    )
    assert deliver_alerts(db, tmp_path / "exports", None).due == 0
    down = deliver_alerts(db, tmp_path / "exports", "http://127.0.0.1:9/hook")
    assert down.posted == 0 and down.error
    assert not (tmp_path / "exports" / "alerts_delivered.json").exists()
    refused = deliver_alerts(db, tmp_path / "exports", "file:///etc/passwd")
    assert refused.posted == 0 and "http(s)" in (refused.error or "")
