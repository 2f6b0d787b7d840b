"""The market-order page: who sees which alerts and scans, the page for every demo user,
the review form's landing file (which the contract accepts), and the case-file download.

The tiny world may raise no diversion alert, so a copy of its published warehouse gets
hand-made alerts whose origin and destination are known (the shared world is never
touched)."""

from __future__ import annotations

import csv
import io
import shutil
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import openpyxl
import pandas as pd
import polars as pl
import pytest
from streamlit.testing.v1 import AppTest
from streamlit_server import signed_in

from bclake.core.settings import Settings
from bclake.core.xlsx import defuse_formulas
from bclake.dashboards import data, review
from bclake.dashboards.auth import Scope, load_users
from bclake.dashboards.data import ScopedWarehouse
from bclake.ingest.check import check_file

ROOT = Path(__file__).resolve().parents[1]
APP = str(ROOT / "bclake" / "dashboards" / "app.py")
PAGE = "views/market_order.py"
ALERTS = "marts.fct_market_order_alerts"
SCANS = "marts.fct_market_order_alert_scans"
DEMO_USERS = ("hq", "huabei", "d0004", "s000006")
# hand-made alert ids: 'MO' + 12 upper hex, as the contract wants
INTO_D0004 = "MO00000000A001"  # another region's goods diverted into D0004's province
FROM_D0004 = "MO00000000A002"  # D0004's goods diverted out of 华北
FORGED_ELSEWHERE = "MO00000000A003"  # forged codes in another region
CLONED_ELSEWHERE = "MO00000000A004"  # another region's cloned code


def _distributors(con: duckdb.DuckDBPyConnection) -> tuple[dict, dict, dict]:
    """D0004, a distributor of another region, and a second one of that other region."""
    frame = con.execute(
        "select distributor_code, distributor_name, region, province from marts.dim_distributor "
        "order by distributor_code"
    ).df()
    own = frame[frame.distributor_code == "D0004"].iloc[0].to_dict()
    others = frame[frame.region != own["region"]]
    other_region = others.region.iloc[0]
    pair = others[others.region == other_region]
    return own, pair.iloc[0].to_dict(), pair.iloc[-1].to_dict()


def _alert(**values: object) -> dict:
    base = {
        "sku_code": "SKU-HAND",
        "sku_name": "手工样例",
        "week_start": pd.Timestamp("2024-06-03"),
        "scans": 3,
        "consumers": 3,
        "codes": 3,
        "cases_seen": 1,
        "case_codes": "C000000000001",
        "batch_nos": "B2405",
        "scans_before_activation": 0,
        "estimated_units": 30,
        "estimated_cases": 3,
        "km_from_territory": 420.0,
        "flow_consumers": 3,
        "flow_share": 0.4,
        "first_seen": pd.Timestamp("2024-06-03 10:00"),
        "last_seen": pd.Timestamp("2024-06-05 18:00"),
        "score": 0.9,
        "status": "open",
        "decisions": 0,
        "reason_zh": "手工样例原因",
        "reason_en": "hand-made reason",
    }
    return {**base, **values}


def _scans(alert_id: str, province: str, region: str) -> list[dict]:
    return [
        {
            "alert_id": alert_id,
            "scan_id": f"{alert_id}-{i}",
            "scan_time": pd.Timestamp(f"2024-06-0{3 + i} 1{i}:00"),
            "product_code": f"10000000000000000{i}",
            "case_code": "C000000000001",
            "batch_no": "B2405",
            "consumer_id": f"=cmd|' /C calc'!A{i}" if i == 0 else f"c_{alert_id}_{i}",
            "lat": 39.9 + i / 10,
            "lon": 116.4 + i / 10,
            "scan_city": "城市",
            "scan_province": province,
            "scan_region": region,
            "km_to_territory": 400.0 + i,
            "before_activation": i == 2,
        }
        for i in range(3)
    ]


def _insert(con: duckdb.DuckDBPyConnection, table: str, rows: list[dict]) -> None:
    columns = [r[0] for r in con.execute(f"describe {table}").fetchall()]
    frame = pd.DataFrame([{c: row.get(c) for c in columns} for row in rows], columns=columns)
    con.register("hand_made", frame)
    con.execute(f"insert into {table} by name select * from hand_made")
    con.unregister("hand_made")


@pytest.fixture(scope="module")
def mo_home(tiny_home: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the tiny world's published warehouse with four hand-made alerts."""
    home = tmp_path_factory.mktemp("mo_home")
    (home / "warehouse").mkdir()
    path = home / "warehouse" / "published.duckdb"
    shutil.copy(tiny_home / "warehouse" / "published.duckdb", path)
    with duckdb.connect(str(path)) as con:
        own, other, second = _distributors(con)

        def origin(d: dict) -> dict:
            return {
                "distributor_code": d["distributor_code"],
                "distributor_name": d["distributor_name"],
                "origin_province": d["province"],
                "origin_region": d["region"],
            }

        alerts = [
            _alert(
                alert_id=INTO_D0004,
                kind="diversion",
                **origin(other),
                destination_provinces=own["province"],
                destination_region=own["region"],
                destination_distributors=f"D0001,{own['distributor_code']}",
            ),
            _alert(
                alert_id=FROM_D0004,
                kind="diversion",
                **origin(own),
                destination_provinces=other["province"],
                destination_region=other["region"],
                destination_distributors=other["distributor_code"],
                status="dismissed",
                last_decision="dismissed",
                decided_at=pd.Timestamp("2024-06-20 09:00"),
                decided_by="hq",
                decision_reason="团购，已核实",
                scans_at_decision=2,
                decisions=1,
                decision_history="2024-06-20 dismissed (hq)",
            ),
            _alert(
                alert_id=FORGED_ELSEWHERE,
                kind="forged_code",
                destination_provinces=other["province"],
                destination_region=other["region"],
                destination_distributors=other["distributor_code"],
                score=0.5,
            ),
            _alert(
                alert_id=CLONED_ELSEWHERE,
                kind="cloned_code",
                **origin(second),
                destination_provinces=second["province"],
                destination_region=second["region"],
                destination_distributors=None,
                score=0.7,
            ),
        ]
        _insert(con, ALERTS, alerts)
        scans = _scans(INTO_D0004, own["province"], own["region"])
        scans += _scans(FROM_D0004, other["province"], other["region"])
        scans += _scans(FORGED_ELSEWHERE, other["province"], other["region"])
        scans += _scans(CLONED_ELSEWHERE, second["province"], second["region"])
        _insert(con, SCANS, scans)
    return home


@pytest.fixture(scope="module")
def hq_alerts(mo_home: Path) -> pd.DataFrame:
    return ScopedWarehouse(mo_home / "warehouse" / "published.duckdb", Scope("hq")).query(
        f"select * from {ALERTS}"
    )


def _listed(value: object, code: str) -> bool:
    return isinstance(value, str) and code in value.split(",")


def test_each_role_sees_its_alerts_and_their_scans(mo_home: Path, hq_alerts: pd.DataFrame) -> None:
    path = mo_home / "warehouse" / "published.duckdb"
    own = hq_alerts.set_index("alert_id").loc[FROM_D0004]
    region, other_distributor = own.origin_region, own.destination_distributors
    expected = {
        Scope("region", region): set(
            hq_alerts[
                (hq_alerts.origin_region == region) | (hq_alerts.destination_region == region)
            ].alert_id
        ),
        Scope("distributor", "D0004"): set(
            hq_alerts[
                (hq_alerts.distributor_code == "D0004")
                | hq_alerts.destination_distributors.map(lambda v: _listed(v, "D0004"))
            ].alert_id
        ),
        Scope("distributor", other_distributor): set(
            hq_alerts[
                (hq_alerts.distributor_code == other_distributor)
                | hq_alerts.destination_distributors.map(lambda v: _listed(v, other_distributor))
            ].alert_id
        ),
        Scope("store", "S000006"): set(),
    }
    # the hand-made cases, spelled out: origin or destination region; own goods or own
    # territory; a store sees nothing
    assert {INTO_D0004, FROM_D0004} <= expected[Scope("region", region)]
    assert not {FORGED_ELSEWHERE, CLONED_ELSEWHERE} & expected[Scope("region", region)]
    assert {INTO_D0004, FROM_D0004} <= expected[Scope("distributor", "D0004")]
    assert not {FORGED_ELSEWHERE, CLONED_ELSEWHERE} & expected[Scope("distributor", "D0004")]
    assert {FROM_D0004, FORGED_ELSEWHERE} <= expected[Scope("distributor", other_distributor)]
    all_scans = ScopedWarehouse(path, Scope("hq")).query(f"select alert_id, scan_id from {SCANS}")
    assert set(all_scans.alert_id) == set(hq_alerts.alert_id)
    for scope, ids in expected.items():
        wh = ScopedWarehouse(path, scope)
        assert set(wh.query(f"select alert_id from {ALERTS}").alert_id) == ids, scope
        scans = wh.query(f"select alert_id, scan_id from {SCANS}")
        assert set(scans.alert_id) == ids, scope
        assert len(scans) == int(all_scans.alert_id.isin(ids).sum()), scope
        # the evidence behind every candidate, consumer by consumer, stays HQ's
        assert wh.query("select * from marts.fct_market_order_evidence").empty, scope


def _queue(at: AppTest) -> pd.DataFrame:
    """The alert queue on screen (empty when no alert passes the filters)."""
    queues = [d.value for d in at.dataframe if "alert_id" in d.value.columns]
    return queues[0] if queues else pd.DataFrame({"alert_id": []})


@pytest.mark.parametrize("username", DEMO_USERS)
def test_the_page_renders_for_every_demo_user(
    mo_home: Path, monkeypatch: pytest.MonkeyPatch, username: str
) -> None:
    monkeypatch.setenv("BCLAKE_HOME", str(mo_home))
    for lang, title in (("zh", "市场秩序"), ("en", "Market order")):
        at = signed_in(PAGE, username, lang)
        assert not at.exception, f"{username}: {at.exception[0].value}"
        assert at.title[0].value == title
        forms = [b for b in at.button if b.label in ("提交审核", "Record decision")]
        if username == "s000006":
            assert not at.dataframe and not forms
            assert any("门店账号" in i.value or "store account" in i.value for i in at.info)
            continue
        assert at.dataframe, f"{username}: no alert queue"
        queue = _queue(at)
        assert set(queue.alert_id) >= {INTO_D0004}, username
        assert FROM_D0004 not in set(queue.alert_id), "dismissed alerts are hidden by default"
        reason = "原因" if lang == "zh" else "Reason"
        assert set(queue[reason]) >= {"手工样例原因" if lang == "zh" else "hand-made reason"}
        # week first, then score: newest week on top, surest first within a week
        weeks = pd.to_datetime(queue.iloc[:, 0])
        assert weeks.is_monotonic_decreasing
        assert bool(forms) == (username in ("hq", "huabei")), username


def test_the_queue_filters(mo_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BCLAKE_HOME", str(mo_home))
    at = signed_in(PAGE, "hq")
    assert FROM_D0004 not in set(_queue(at).alert_id)  # dismissed: hidden by default
    at.multiselect(key="mo_statuses_zh").set_value([*review.DECISIONS, "open", "reopened"])
    at.run()
    assert FROM_D0004 in set(_queue(at).alert_id)
    at.multiselect(key="mo_kinds_zh").set_value(["diversion"]).run()
    assert set(_queue(at).alert_id) >= {INTO_D0004, FROM_D0004}
    assert set(_queue(at)["类型"]) == {"窜货"}
    assert FORGED_ELSEWHERE not in set(_queue(at).alert_id)
    at.slider(key="mo_min_score").set_value(0.95).run()
    assert INTO_D0004 not in set(_queue(at).alert_id)  # its score is 0.9


def _review(at: AppTest, alerts: list[str], decision: str, reason: str, amount: float) -> None:
    at.selectbox(key="mo_alert_zh").set_value(alerts[0]).run()
    form = next(m for m in at.multiselect if m.label == "要审核的预警")
    form.set_value(alerts)
    at.radio[0].set_value(decision)
    at.text_area[0].input(reason)
    at.number_input[0].set_value(amount)
    next(b for b in at.button if b.label == "提交审核").click().run()


def test_the_review_form_writes_a_file_the_contract_accepts(
    mo_home: Path, monkeypatch: pytest.MonkeyPatch, hq_alerts: pd.DataFrame
) -> None:
    monkeypatch.setenv("BCLAKE_HOME", str(mo_home))
    folder = review.decisions_folder(Settings.from_env())
    shutil.rmtree(folder, ignore_errors=True)
    at = signed_in(PAGE, "huabei")
    _review(at, [INTO_D0004], "dismissed", "", 0.0)
    assert not at.exception
    assert any("必须填写说明" in e.value for e in at.error)
    assert not folder.exists() or not list(folder.iterdir()), "a refused dismissal left a file"
    _review(at, [INTO_D0004], "penalised", "", 0.0)
    assert any("罚款金额" in e.value for e in at.error)
    assert not folder.exists() or not list(folder.iterdir())

    # a dismissed alert can be decided again: show it, then penalise both
    at.multiselect(key="mo_statuses_zh").set_value([*review.DECISIONS, "open"]).run()
    _review(at, [INTO_D0004, FROM_D0004], "penalised", "二次窜货，=罚", 20000.0)
    assert not at.exception
    assert any("下次运行流水线后生效" in s.value for s in at.success)
    files = list(folder.iterdir())
    assert len(files) == 1 and files[0].suffix == ".csv", files
    text = files[0].read_text(encoding="utf-8")
    assert text.splitlines()[0] == ",".join(review.COLUMNS)
    rows = list(csv.DictReader(io.StringIO(text)))
    scans = hq_alerts.set_index("alert_id").scans
    assert [r["alert_id"] for r in rows] == [INTO_D0004, FROM_D0004]
    for row in rows:
        assert row["decision"] == "penalised" and float(row["penalty_amount"]) == 20000
        assert row["decided_by"] == "huabei" and row["reason"] == "二次窜货，=罚"
        assert int(row["evidence_scans"]) == int(scans[row["alert_id"]])
    report = check_file(files[0])
    assert report.contract is not None and report.contract.table == "alert_decisions"
    assert report.rows_in == 2 and report.rows_loaded == 2, report.reasons
    at.run()  # the next rerun says the file waits for the pipeline
    assert any("1 个审核文件等待下次流水线运行" in i.value for i in at.info), at.info


def test_write_decisions_is_atomic_and_checked(empty_home: Path) -> None:
    settings = Settings.from_env()
    users = load_users()
    now = datetime(2024, 7, 1, 1, 2, 3, tzinfo=UTC)
    rows = [review.Decision(INTO_D0004, "confirmed", None, None, 7)]
    path = review.write_decisions(settings, users["hq"], rows, now)
    assert path.parent == empty_home / "landing" / "review" / "alert_decisions"
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temporary file left
    row = next(csv.DictReader(io.StringIO(path.read_text(encoding="utf-8"))))
    assert row["decision_id"].startswith("RV20240701010203") and len(row["decision_id"]) == 22
    assert row["decided_at"] == "2024-07-01T09:02:03+08:00"
    assert row["reason"] == "" and row["penalty_amount"] == ""
    report = check_file(path)
    assert report.rows_loaded == 1 and not report.reasons
    for bad, code in (
        (review.Decision(INTO_D0004, "dismissed", "  ", None, 1), "reason_required"),
        (review.Decision(INTO_D0004, "penalised", "x", 0.0, 1), "amount_required"),
        (review.Decision("MO123", "confirmed", None, None, 1), "bad_alert"),
    ):
        with pytest.raises(review.DecisionError) as error:
            review.write_decisions(settings, users["hq"], [bad], now)
        assert error.value.code == code
    for username in ("d0004", "s000006"):  # only HQ and regions review
        with pytest.raises(review.DecisionError):
            review.write_decisions(settings, users[username], rows, now)
    assert len(list(path.parent.iterdir())) == 1


def test_case_files_hold_the_alert_and_its_scans_only(
    mo_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BCLAKE_HOME", str(mo_home))
    at = AppTest.from_file(APP, default_timeout=180)
    at.session_state["user"] = load_users()["d0004"]
    at.run()
    at.switch_page("views/downloads.py").run()
    assert not at.exception
    picker = at.selectbox(key="dl_case_zh")
    offered = {label.split(" · ")[0] for label in picker.options}  # labels start with the id
    assert offered >= {INTO_D0004, FROM_D0004}
    assert FORGED_ELSEWHERE not in offered
    picker.set_value(INTO_D0004).run()
    assert not at.exception
    labels = [b.label for b in at.get("download_button")]
    assert {"下载 XLSX", "下载 CSV"} <= set(labels), labels

    # the files themselves, as the data layer builds them for D0004
    with monkeypatch.context() as mp:
        mp.setattr(data, "current_scope", lambda: Scope("distributor", "D0004"))
        case = data.case_file(INTO_D0004)
        assert data.case_file(FORGED_ELSEWHERE) is None  # not in the distributor's scope
    assert case is not None and case.scans.height == 3
    assert "destination_distributors" not in case.alert.columns
    rows = list(csv.DictReader(io.StringIO(case.csv().decode("utf-8-sig"))))
    assert len(rows) == 3 and {r["alert_id"] for r in rows} == {INTO_D0004}
    assert rows[0]["consumer_id"].startswith("'="), "formula-like text is defused"
    assert not {"phone", "mobile", "name", "openid"} & set(rows[0]), "no personal data"
    book = openpyxl.load_workbook(io.BytesIO(case.xlsx()))
    assert book.sheetnames == ["alert", "scans"]
    scans = list(book["scans"].values)
    assert len(scans) == 4 and all(c.data_type != "f" for row in book["scans"] for c in row)
    fields = {r[0]: r[1] for r in list(book["alert"].values)[1:]}
    assert fields["alert_id"] == INTO_D0004 and fields["kind"] == "diversion"


def test_defuse_formulas_touches_text_only() -> None:
    frame = pl.DataFrame({"t": ["=1+1", "+86", "-x", "@a", "ok", None], "n": [-1, 2, 3, 4, 5, 6]})
    out = defuse_formulas(frame)
    assert out["t"].to_list() == ["'=1+1", "'+86", "'-x", "'@a", "ok", None]
    assert out["n"].to_list() == frame["n"].to_list()
