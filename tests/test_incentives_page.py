"""The incentives page: who sees which statement lines, reconciliation rows and reward-fraud
alerts, the page for every demo user, the statement downloads (formula-like text defused),
the review form's landing file for a fraud alert, and the page in a real browser at
desktop and phone width.

A copy of the tiny world's published warehouse gets two hand-made fraud alerts (one at
S000006 of D0004 in 华北, one in another region) and a hand-made statement line of
S000006 whose texts a spreadsheet would run as formulas (the shared world is never
touched)."""

from __future__ import annotations

import csv
import io
import shutil
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import duckdb
import openpyxl
import pandas as pd
import pytest
from browser_page import (
    NO_BROWSER,
    assert_fits_phone,
    browser_fixture,  # noqa: F401 (the `browser` fixture)
    desktop_screenshot,
    open_page,
    phone_screenshot,
    shots_fixture,  # noqa: F401 (the `shots` fixture)
)
from streamlit.testing.v1 import AppTest
from streamlit_server import serve, signed_in

from bclake.core.settings import Settings
from bclake.dashboards import data, review
from bclake.dashboards.auth import Scope, load_users
from bclake.dashboards.data import ScopedWarehouse
from bclake.ingest.check import check_file

ROOT = Path(__file__).resolve().parents[1]
APP = str(ROOT / "bclake" / "dashboards" / "app.py")
PAGE = "views/incentives.py"
LINES = "marts.fct_incentive_statement_lines"
RECONCILIATION = "marts.fct_incentive_reconciliation"
ALERTS = "marts.fct_incentive_fraud_alerts"
EVIDENCE = "marts.fct_incentive_fraud_evidence"
DEMO_USERS = ("hq", "huabei", "d0004", "s000006")
STORE = "S000006"  # the demo store, of D0004 in 华北
AT_STORE = "IF00000000F001"  # scan farming at S000006
ELSEWHERE = "IF00000000F002"  # a reused photo at a store of another region
FORMULA_NAME = '=HYPERLINK("http://example.com","x")'  # a hand-made programme name
FORMULA_REASON = "-2+3 手工样例"


def _insert(con: duckdb.DuckDBPyConnection, table: str, rows: list[dict]) -> None:
    columns = [r[0] for r in con.execute(f"describe {table}").fetchall()]
    frame = pd.DataFrame([{c: row.get(c) for c in columns} for row in rows], columns=columns)
    con.register("hand_made", frame)
    con.execute(f"insert into {table} by name select * from hand_made")
    con.unregister("hand_made")


def latest_closed_month(con: duckdb.DuckDBPyConnection) -> date:
    """The month the page opens on: the latest whose lines are all closed."""
    return con.execute(
        f"select max(statement_month) from (select statement_month from {LINES} "
        "group by 1 having bool_and(period_status = 'closed'))"
    ).fetchone()[0]


def _fraud(con: duckdb.DuckDBPyConnection, month: date) -> None:
    """Two open alerts with their evidence: farming at STORE, a reused photo elsewhere."""
    store = con.execute(
        "select store_code, store_name, distributor_code, region, province "
        "from marts.dim_store where store_code = ?",
        [STORE],
    ).df()
    other = con.execute(
        "select store_code, store_name, distributor_code, region, province "
        "from marts.dim_store where region <> ? order by store_code limit 2",
        [store.region.iloc[0]],
    ).df()
    own, far, origin = store.iloc[0].to_dict(), other.iloc[0].to_dict(), other.iloc[1].to_dict()
    common = {"period_start": month, "status": "open", "score": 0.8, "reward_at_stake": 6.0}
    alerts = [
        {
            **own,
            **common,
            "alert_id": AT_STORE,
            "kind": "scan_farming",
            "consumer_id": "c_farmer",
            "events": 12,
            "days": 3,
            "burst_days": 2,
            "max_burst_scans": 8,
            "positions": 1,
            "first_seen": pd.Timestamp(month) + pd.Timedelta(hours=10),
            "last_seen": pd.Timestamp(month) + pd.Timedelta(days=9, hours=11),
            "reason_zh": "手工样例：店员自扫",
            "reason_en": "hand-made: staff scanning",
        },
        {
            **far,
            **common,
            "alert_id": ELSEWHERE,
            "kind": "photo_reuse",
            "events": 1,
            "photo_hash": "ffee00112233",
            "origin_check_id": "CHK-HAND-1",
            "origin_store_code": origin["store_code"],
            "origin_store_name": origin["store_name"],
            "reward_at_stake": 50.0,
            "score": 0.9,
            "reason_zh": "手工样例：一图多用",
            "reason_en": "hand-made: reused photo",
        },
    ]
    _insert(con, ALERTS, alerts)
    evidence = [
        {
            "alert_id": AT_STORE,
            "kind": "scan_farming",
            "evidence": "verified_scan",
            "store_code": STORE,
            "consumer_id": "c_farmer",
            "period_start": month,
            "event_id": f"SCAN-HAND-{i:02d}",
            "event_time": pd.Timestamp(month) + pd.Timedelta(days=i // 4, minutes=i),
            "product_code": f"1000000000000000{i:02d}",
            "window_scans": 1 + i % 4,
            "lat": 37.7,
            "lon": 112.7,
            "withholds": True,
        }
        for i in range(12)
    ]
    evidence += [
        {
            "alert_id": ELSEWHERE,
            "kind": "photo_reuse",
            "evidence": "display_pass",
            "store_code": code,
            "period_start": month,
            "event_id": check,
            "event_time": pd.Timestamp(month) + pd.Timedelta(days=day),
            "photo_hash": "ffee00112233",
            "origin_check_id": "CHK-HAND-1",
            "origin_store_code": origin["store_code"],
            "withholds": code == far["store_code"],
        }
        for code, check, day in (
            (origin["store_code"], "CHK-HAND-1", 2),
            (far["store_code"], "CHK-HAND-2", 5),
        )
    ]
    _insert(con, EVIDENCE, evidence)


def _formula_line(con: duckdb.DuckDBPyConnection, month: date) -> None:
    """A statement line of STORE whose programme name and reason start like formulas."""
    row = con.execute(
        "select store_name, distributor_code, region from marts.dim_store where store_code = ?",
        [STORE],
    ).fetchone()
    end = (pd.Timestamp(month) + pd.offsets.MonthEnd(0)).date()
    _insert(
        con,
        LINES,
        [
            {
                "line_id": f"HX-{STORE}-{month:%Y%m%d}",
                "programme_id": "HX",
                "programme_zh": FORMULA_NAME,
                "programme_en": FORMULA_NAME,
                "payee_type": "store",
                "payee_code": STORE,
                "payee_name": row[0],
                "distributor_code": row[1],
                "region": row[2],
                "evidence": "display_pass",
                "period": "month",
                "period_start": month,
                "period_end": end,
                "statement_month": month,
                "pay_due_date": end,
                "period_status": "closed",
                "events": 2,
                "basis": 0.0,
                "amount_earned": 100.0,
                "amount_withheld": 0.0,
                "amount_forfeited": 0.0,
                "amount_payable": 100.0,
                "reason_zh": FORMULA_REASON,
                "reason_en": FORMULA_REASON,
            }
        ],
    )


@pytest.fixture(scope="module")
def inc_home(tiny_home: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the tiny world's published warehouse with the hand-made rows."""
    home = tmp_path_factory.mktemp("inc_home")
    (home / "warehouse").mkdir()
    path = home / "warehouse" / "published.duckdb"
    shutil.copy(tiny_home / "warehouse" / "published.duckdb", path)
    with duckdb.connect(str(path)) as con:
        month = latest_closed_month(con)
        _fraud(con, month)
        _formula_line(con, month)
    return home


def _warehouse(home: Path, scope: Scope) -> ScopedWarehouse:
    return ScopedWarehouse(home / "warehouse" / "published.duckdb", scope)


def test_each_role_sees_its_statements_reconciliation_and_alerts(inc_home: Path) -> None:
    hq = _warehouse(inc_home, Scope("hq"))
    lines = hq.query(f"select payee_type, payee_code, distributor_code, region from {LINES}")
    rec = hq.query(f"select payee_type, payee_code, distributor_code, region from {RECONCILIATION}")
    alerts = hq.query(f"select alert_id, store_code, distributor_code, region from {ALERTS}")
    assert {AT_STORE, ELSEWHERE} <= set(alerts.alert_id)
    assert {"store", "distributor"} <= set(lines.payee_type), "both kinds of payee are paid"
    own = hq.query(
        "select region, distributor_code from marts.dim_store where store_code = ?", (STORE,)
    ).iloc[0]

    store = _warehouse(inc_home, Scope("store", STORE))
    seen = store.query(f"select payee_type, payee_code from {LINES}")
    assert len(seen) == int(((lines.payee_type == "store") & (lines.payee_code == STORE)).sum())
    assert set(zip(seen.payee_type, seen.payee_code, strict=True)) == {("store", STORE)}
    assert set(store.query(f"select payee_code from {RECONCILIATION}").payee_code) <= {STORE}
    assert store.query(f"select * from {ALERTS}").empty
    assert store.query(f"select * from {EVIDENCE}").empty

    distributor = _warehouse(inc_home, Scope("distributor", own.distributor_code))
    seen = distributor.query(f"select payee_type, payee_code, distributor_code from {LINES}")
    assert len(seen) == int((lines.distributor_code == own.distributor_code).sum())
    assert ("distributor", own.distributor_code) in set(
        zip(seen.payee_type, seen.payee_code, strict=True)
    ) or not (lines.payee_code == own.distributor_code).any()
    assert STORE in set(seen.payee_code), "a distributor sees its stores' lines"
    seen_rec = distributor.query(f"select distributor_code from {RECONCILIATION}")
    assert len(seen_rec) == int((rec.distributor_code == own.distributor_code).sum())
    assert (
        set(distributor.query(f"select alert_id from {ALERTS}").alert_id)
        == set(alerts[alerts.distributor_code == own.distributor_code].alert_id)
        >= {AT_STORE}
    )

    region = _warehouse(inc_home, Scope("region", own.region))
    assert len(region.query(f"select 1 from {LINES}")) == int((lines.region == own.region).sum())
    assert len(region.query(f"select 1 from {RECONCILIATION}")) == int(
        (rec.region == own.region).sum()
    )
    seen_alerts = set(region.query(f"select alert_id from {ALERTS}").alert_id)
    assert AT_STORE in seen_alerts and ELSEWHERE not in seen_alerts
    evidence = region.query(f"select alert_id from {EVIDENCE}")
    assert set(evidence.alert_id) <= seen_alerts and len(evidence) >= 12


def _frame(at: AppTest, column: str) -> pd.DataFrame | None:
    """The first table on screen with this column (None: no such table)."""
    return next((d.value for d in at.dataframe if column in d.value.columns), None)


@pytest.mark.parametrize("username", DEMO_USERS)
def test_the_page_renders_for_every_demo_user(
    inc_home: Path, monkeypatch: pytest.MonkeyPatch, username: str
) -> None:
    monkeypatch.setenv("BCLAKE_HOME", str(inc_home))
    user = load_users()[username]
    hq = _warehouse(inc_home, Scope("hq"))
    own = hq.query(
        f"select programme_zh as zh, programme_en as en from {LINES} where payee_code = ? "
        f"and statement_month = (select max(statement_month) from (select statement_month "
        f"from {LINES} group by 1 having bool_and(period_status = 'closed')))",
        (STORE,),
    )
    own_programmes = {"zh": own.zh.tolist(), "en": own.en.tolist()}
    assert FORMULA_NAME in own_programmes["zh"]
    for lang, title in (("zh", "激励"), ("en", "Incentives")):
        at = signed_in(PAGE, username, lang)
        assert not at.exception, f"{username}: {at.exception[0].value}"
        assert at.title[0].value == title
        subheaders = {s.value for s in at.subheader}
        programme = "激励项目" if lang == "zh" else "Programme"
        lines = _frame(at, programme)
        assert lines is not None and not lines.empty, f"{username}: no statement lines"
        forms = [b for b in at.button if b.label in ("提交审核", "Record decision")]
        reconciliation, fraud = (
            ("对账", "激励作弊预警")
            if lang == "zh"
            else (
                "Reconciliation",
                "Reward-fraud alerts",
            )
        )
        if username == "s000006":
            # its own lines only: exactly the programmes that pay it this month, once each
            assert sorted(lines[programme]) == sorted(own_programmes[lang]), lines
            assert reconciliation not in subheaders and fraud not in subheaders
            assert not forms and _frame(at, "alert_id") is None
            continue
        assert reconciliation in subheaders and fraud in subheaders, subheaders
        queue = _frame(at, "alert_id")
        assert queue is not None and AT_STORE in set(queue.alert_id)
        assert (ELSEWHERE in set(queue.alert_id)) == (username == "hq")
        assert bool(forms) == (user.scope.role in review.REVIEW_ROLES), username
        effect = "激励单位增量成本" if lang == "zh" else "Cost per incremental unit"
        assert (effect in subheaders) == (username == "hq")


def test_the_statement_downloads_defuse_formulas(
    inc_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BCLAKE_HOME", str(inc_home))
    at = signed_in(PAGE, "s000006")
    labels = [b.label for b in at.get("download_button")]
    assert labels.count("XLSX") == 1 and labels.count("CSV") == 1, "a store: its own file only"
    at = signed_in(PAGE, "d0004")
    assert [b.label for b in at.get("download_button")].count("XLSX") == 2, "own and all"

    with duckdb.connect(str(inc_home / "warehouse" / "published.duckdb"), read_only=True) as con:
        month = latest_closed_month(con)
    with monkeypatch.context() as mp:
        mp.setattr(data, "current_scope", lambda: Scope("store", STORE))
        statement = data.incentive_statement(month, STORE)
        assert data.incentive_statement(month).lines["payee_code"].unique().to_list() == [STORE]
    assert statement.lines.height >= 1
    assert set(statement.lines["payee_code"]) == {STORE}
    book = openpyxl.load_workbook(io.BytesIO(statement.xlsx()))
    assert book.sheetnames == ["statements", "lines"]
    assert all(c.data_type != "f" for ws in book for row in ws for c in row), "no formula cell"
    rows = list(book["lines"].values)
    header = rows[0]
    hand = next(r for r in rows[1:] if r[header.index("programme_id 激励项目")] == "HX")
    assert hand[header.index("programme_zh 项目名称")] == "'" + FORMULA_NAME
    assert hand[header.index("reason_zh 说明")] == "'" + FORMULA_REASON
    assert hand[header.index("amount_payable 应付 (CNY)")] == 100.0, "amounts stay numbers"
    assert isinstance(hand[header.index("statement_month 结算月")], date)
    totals = list(book["statements"].values)
    assert len(totals) == 2 and totals[1][header.index("payee_code 收款方编码")] == STORE
    text = statement.csv().decode("utf-8-sig")
    hand_csv = next(r for r in csv.DictReader(io.StringIO(text)) if r["programme_id"] == "HX")
    assert hand_csv["programme_zh"] == "'" + FORMULA_NAME
    assert hand_csv["reason_en"] == "'" + FORMULA_REASON


def test_a_fraud_decision_lands_in_alert_decisions(
    inc_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BCLAKE_HOME", str(inc_home))
    folder = review.decisions_folder(Settings.from_env())
    shutil.rmtree(folder, ignore_errors=True)
    at = signed_in(PAGE, "hq")
    at.selectbox(key="inc_fraud_alert_zh").set_value(AT_STORE).run()
    assert not at.exception
    assert any("手工样例：店员自扫" in m.value for m in at.markdown)
    events = _frame(at, "凭证编号")
    assert events is not None and len(events) == 12, "the alert's evidence events"
    form = next(m for m in at.multiselect if m.label == "要审核的预警")
    assert form.value == [AT_STORE], "the alert in the drill-down is preselected"
    at.radio[-1].set_value("penalised")
    at.text_area[-1].input("店员自扫，已核实")
    at.number_input[-1].set_value(500.0)
    next(b for b in at.button if b.label == "提交审核").click().run()
    assert not at.exception
    assert any("下次运行流水线后生效" in s.value for s in at.success), at.error
    files = list(folder.iterdir())
    assert len(files) == 1, files
    rows = list(csv.DictReader(io.StringIO(files[0].read_text(encoding="utf-8"))))
    assert [r["alert_id"] for r in rows] == [AT_STORE]
    assert rows[0]["decision"] == "penalised" and float(rows[0]["penalty_amount"]) == 500
    assert rows[0]["decided_by"] == "hq" and int(rows[0]["evidence_scans"]) == 12
    report = check_file(files[0])
    assert report.contract is not None and report.contract.table == "alert_decisions"
    assert report.rows_loaded == 1, report.reasons


# -- in a real browser -------------------------------------------------------------


@pytest.fixture(scope="module")
def inc_url(inc_home: Path) -> Iterator[str]:
    """`streamlit run` over the hand-made world, with the demo users."""
    with serve({"BCLAKE_HOME": str(inc_home)}, unset=("BCLAKE_USERS",)) as url:
        yield url


@pytest.mark.skipif(bool(NO_BROWSER), reason=NO_BROWSER or "chromium")
@pytest.mark.parametrize("user", ["hq", "s000006"])
def test_the_page_in_a_browser(browser, inc_url: str, shots: Path, user: str) -> None:
    """Desktop (1400 px) and phone (390 px): it renders, the store sees no reconciliation,
    nothing is wider than the phone (wide tables scroll inside their frame)."""
    for phone in (False, True):
        context, page, body, errors = open_page(browser, inc_url, user, "激励", phone)
        assert "激励" in body and "Traceback" not in body, body[:500]
        assert not page.locator("[data-testid='stException']").count(), f"{user}: raised"
        assert ("对账" in body) == (user == "hq"), body[:800]
        if phone:
            assert_fits_phone(page, user)
            phone_screenshot(page, shots / f"phone_{user}_incentives.png")
        else:
            desktop_screenshot(page, shots / f"{user}_incentives.png")
        assert not errors, f"{user}: browser errors {errors[:3]}"
        context.close()
