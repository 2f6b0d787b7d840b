"""Incentive programmes: the file's validation, the arithmetic of every rule type, and the
statements, fraud alerts and reconciliation a tiny world builds."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import duckdb
import polars as pl
import pytest
import yaml
from dbt_run import copy_home, dbt
from typer.testing import CliRunner

from bclake.core.contracts import load_contracts
from bclake.core.incentives import (
    ProgrammeError,
    load_programmes,
    programme_frames,
)
from bclake.core.incentives import (
    earned as earned_by_rules,
)
from bclake.core.settings import DEFAULT_INCENTIVES, Settings
from bclake.ingest.loader import ingest_table
from bclake.ingest.programmes import config_path, publish_programmes


def _write(tmp_path: Path, raw: object) -> Path:
    path = tmp_path / "programmes.yaml"
    path.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    return path


def _default() -> dict:
    return yaml.safe_load(DEFAULT_INCENTIVES.read_text(encoding="utf-8"))


def test_the_shipped_programmes_are_valid_and_become_two_tables() -> None:
    programmes = load_programmes(DEFAULT_INCENTIVES)
    rows, tiers = programme_frames(programmes)
    assert rows["programme_id"].to_list() == [p.id for p in programmes.programmes]
    assert set(rows["evidence"]) == {
        "distributor_purchases",
        "store_purchases",
        "new_store_first_order",
        "display_pass",
        "verified_scan",
    }
    # each tiered programme's tiers chain: tier_to is the next tier's tier_from
    for _, t in tiers.group_by("programme_id"):
        t = t.sort("tier")
        assert t["tier_to"].to_list()[:-1] == t["tier_from"].to_list()[1:]
        assert t["tier_to"][-1] is None


def _broken(change: str) -> dict:
    raw = _default()
    by_id = {p["id"]: p for p in raw["programmes"]}
    if change == "payee":
        by_id["SD"]["payee"] = "distributor"
    elif change == "tiers_order":
        by_id["SV"]["tiers"][1]["from"] = 1
    elif change == "no_amount":
        del by_id["SS"]["amount"]
    elif change == "tiered_on_events":
        by_id["SD"]["calculation"] = "tiered_rate"
    elif change == "typo":
        by_id["SS"]["amout"] = by_id["SS"].pop("amount")
    elif change == "duplicate":
        raw["programmes"].append(dict(by_id["SD"]))
    elif change == "rate":
        by_id["DV"]["tiers"][0]["rate"] = 1.5
    elif change == "compliance_on_store":
        by_id["SV"]["compliance"] = {"diversion_factor": 0.5}
    return raw


@pytest.mark.parametrize(
    ("change", "names"),
    [
        ("payee", ["programme SD", "payee", "set payee: store"]),
        ("tiers_order", ["programme SV", "tiers must rise"]),
        ("no_amount", ["programme SS", "per_event needs amount"]),
        ("tiered_on_events", ["programme SD", "use calculation: per_event"]),
        ("typo", ["programme SS", "amout", "Extra inputs"]),
        ("duplicate", ["unique", "SD"]),
        ("rate", ["programme DV", "tiers.0.rate", "less than or equal to 1"]),
        ("compliance_on_store", ["programme SV", "distributor programmes only"]),
    ],
)
def test_a_malformed_programme_file_names_the_file_programme_and_fix(
    tmp_path: Path, change: str, names: list[str]
) -> None:
    path = _write(tmp_path, _broken(change))
    with pytest.raises(ProgrammeError) as err:
        load_programmes(path)
    message = str(err.value)
    assert message.startswith(str(path))
    for name in names:
        assert name in message, message


def test_not_yaml_or_not_a_mapping_is_a_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "p.yaml"
    bad.write_text("programmes: [\n", encoding="utf-8")
    with pytest.raises(ProgrammeError, match="not valid YAML"):
        load_programmes(bad)
    with pytest.raises(ProgrammeError, match="expected a mapping"):
        load_programmes(_write(tmp_path, ["a", "b"]))
    with pytest.raises(ProgrammeError, match="cannot read"):
        load_programmes(tmp_path / "missing.yaml")


def test_an_invalid_file_leaves_the_programmes_in_force(tmp_path: Path) -> None:
    settings = Settings.from_env(tmp_path / "home")
    publish_programmes(settings, DEFAULT_INCENTIVES)
    before = pl.read_parquet(config_path(settings, "incentive_programmes"))
    with pytest.raises(ProgrammeError):
        publish_programmes(settings, _write(tmp_path, _broken("payee")))
    after = pl.read_parquet(config_path(settings, "incentive_programmes"))
    assert after.equals(before)
    # a programme removed from the file stops: the tables are replaced, not appended to
    raw = _default()
    raw["programmes"] = [p for p in raw["programmes"] if p["id"] != "SS"]
    publish_programmes(settings, _write(tmp_path, raw))
    rows = pl.read_parquet(config_path(settings, "incentive_programmes"))
    assert "SS" not in rows["programme_id"].to_list() and rows.height == before.height - 1


def test_every_rule_type_by_hand(tmp_path: Path) -> None:
    """The cases of the dbt unit test statement_lines_apply_every_rule_type, in polars."""
    raw = _default()
    by_id = {p["id"]: p for p in raw["programmes"]}
    by_id["SS"]["cap"] = 2.0
    by_id["DM"]["cap"] = 500
    programmes = load_programmes(_write(tmp_path, raw))
    d = date
    ev = pl.DataFrame(
        [
            ("display_pass", "S1", d(2025, 1, 5), 1, None),
            ("display_pass", "S1", d(2025, 1, 20), 1, None),
            *[("verified_scan", "S1", d(2025, 1, 3), 1, None)] * 5,
            ("store_purchases", "S1", d(2025, 1, 8), None, 8000.0),
            ("store_purchases", "S1", d(2025, 1, 28), None, 20000.0),
            ("store_purchases", "S2", d(2025, 1, 9), None, 4000.0),
            ("distributor_purchases", "D1", d(2025, 1, 15), None, 500000.0),
            ("distributor_purchases", "D1", d(2025, 2, 20), None, 400000.0),
            ("distributor_purchases", "D2", d(2025, 3, 31), None, 1600000.0),
            ("distributor_purchases", "D3", d(2025, 2, 2), None, 100000.0),
            ("new_store_first_order", "D1", d(2025, 1, 10), 1, None),
            ("new_store_first_order", "D1", d(2025, 1, 20), 1, None),
        ],
        schema=["evidence", "payee_code", "day", "events", "basis"],
        orient="row",
    )
    diversion = pl.DataFrame({"distributor_code": ["D1"], "day": [d(2025, 2, 3)]})
    got = {
        (r["programme_id"], r["payee_code"]): r["amount"]
        for r in earned_by_rules(programmes, ev, diversion).iter_rows(named=True)
    }
    assert got == {
        ("SD", "S1"): 50.0,  # two passes, at most one a month
        ("SS", "S1"): 2.0,  # 5 x 0.5 = 2.5, cap 2.0
        ("SV", "S1"): 440.0,  # marginal: 5000 x 1% + 15000 x 2% + 3000 x 3%
        ("SV", "S2"): 0.0,  # below the first tier
        ("DV", "D1"): 6750.0,  # 900k at 1.5% = 13500, halved for the diversion finding
        ("DV", "D2"): 32000.0,  # 1.6M at 2%
        ("DV", "D3"): 1000.0,
        ("DM", "D1"): 500.0,  # 2 x 300 = 600, cap 500
    }


def test_the_cli_checks_a_file(tmp_path: Path) -> None:
    from bclake.cli import app

    ok = CliRunner().invoke(app, ["incentives", str(DEFAULT_INCENTIVES)])
    assert ok.exit_code == 0 and "扫码引流奖励" in ok.output
    bad = CliRunner().invoke(app, ["incentives", str(_write(tmp_path, _broken("tiers_order")))])
    assert bad.exit_code == 1 and "tiers must rise" in bad.output


# --- on the tiny world -------------------------------------------------------------


def _published(settings: Settings, sql: str) -> pl.DataFrame:
    with duckdb.connect(str(settings.published_db), read_only=True) as con:
        return con.sql(sql).pl()


def test_statements_reconciliation_and_alerts_build_in_the_pipeline(
    tiny_settings: Settings,
) -> None:
    lines = _published(tiny_settings, "select * from marts.fct_incentive_statement_lines")
    programmes = {p.id for p in load_programmes(DEFAULT_INCENTIVES).programmes}
    assert set(lines["programme_id"]) == programmes
    assert lines.filter(pl.col("reason_zh").is_null() | pl.col("reason_en").is_null()).is_empty()
    parts = lines["amount_earned"] - lines["amount_withheld"] - lines["amount_forfeited"]
    assert ((parts - lines["amount_payable"]).abs() < 0.005).all()
    assert (lines["amount_payable"] >= 0).all()
    assert set(lines["period_status"]) == {"accruing", "closed"}
    recon = _published(tiny_settings, "select * from marts.fct_incentive_reconciliation")
    # the simulated DMS pays most lines right and makes a few planted mistakes (wrong
    # amounts, missed payments, duplicate or unexplained ones: over_paid or unexplained)
    status = dict(recon.group_by("status").len().iter_rows())
    assert status["matched"] > recon.height / 2, status
    assert {"over_paid", "under_paid", "not_paid"} <= set(status), status
    alerts = _published(tiny_settings, "select * from marts.fct_incentive_fraud_alerts")
    assert set(alerts["kind"]) == {"scan_farming", "photo_reuse"}
    assert (alerts["status"] == "open").all() and (alerts["reward_at_stake"] > 0).all()
    held = lines.filter(pl.col("programme_id") == "SS")["amount_withheld"].sum()
    assert held > 0, "open scan-farming alerts hold back scan rewards"


def test_evaluation_scores_statements_and_fraud(tiny_settings: Settings) -> None:
    from bclake.evaluation.incentives import evaluate_incentives

    report = evaluate_incentives(tiny_settings.truth, tiny_settings.published_db)
    # the statements pay what the rules earn on the true evidence far more exactly than the DMS
    assert report["statement_error"] is not None and report["baseline_dms_error"] is not None
    assert report["statement_error"] < 0.02, report
    assert report["statement_error"] < report["baseline_dms_error"], report
    fraud = report["fraud"]
    assert fraud["photo_reuse"]["recall"] == 1.0 and fraud["photo_reuse"]["precision"] == 1.0
    assert fraud["scan_farming"]["recall"] >= 0.8 and fraud["scan_farming"]["precision"] >= 0.9
    assert fraud["withheld_rightly"] > fraud["withheld_wrongly"]
    assert report["reconciliation"]["recall"] >= 0.9, report["reconciliation"]


def test_a_confirmed_alert_forfeits_and_a_dismissed_one_releases(
    tiny_home: Path, tmp_path: Path
) -> None:
    settings = copy_home(tiny_home, tmp_path / "home")
    with duckdb.connect(str(settings.build_db), read_only=True) as con:
        alerts = con.sql(
            "select alert_id, kind, store_code, period_start, events"
            " from marts.fct_incentive_fraud_alerts where kind = 'scan_farming'"
            " order by alert_id"
        ).pl()
        before = con.sql(
            "select payee_code, period_start, events_withheld"
            " from marts.fct_incentive_statement_lines where programme_id = 'SS'"
        ).pl()
    assert alerts.height >= 2, "the tiny world plants scan farming"
    confirmed, dismissed = alerts.row(0, named=True), alerts.row(1, named=True)
    decisions = pl.DataFrame(
        [
            {
                "decision_id": f"RV20250701120000abc12{i}",
                "alert_id": a["alert_id"],
                "decision": decision,
                "reason": "店员自扫 staff scans" if decision == "confirmed" else "团购 group buy",
                "penalty_amount": "",
                "decided_by": "hq",
                "decided_at": "2025-07-01 12:00:00",
                "evidence_scans": str(a["events"]),
            }
            for i, (a, decision) in enumerate([(confirmed, "confirmed"), (dismissed, "dismissed")])
        ]
    )
    contract = load_contracts()["review.alert_decisions"]
    folder = settings.landing / contract.system / contract.table
    folder.mkdir(parents=True, exist_ok=True)
    decisions.write_csv(folder / "decisions_incentives.csv")
    ingest_table(contract, settings)
    # staging views hold the lake path they were built with: rebuild upstream in the copy
    run = dbt(settings, tmp_path, "run", "--select", "+path:models/marts/incentives")
    assert run.returncode == 0, run.stdout[-3000:]
    with duckdb.connect(str(settings.build_db), read_only=True) as con:
        status = dict(
            con.sql("select alert_id, status from marts.fct_incentive_fraud_alerts").fetchall()
        )
        lines = con.sql(
            "select payee_code, period_start, events_withheld, events_forfeited"
            " from marts.fct_incentive_statement_lines where programme_id = 'SS'"
        ).pl()
    assert status[confirmed["alert_id"]] == "confirmed"
    assert status[dismissed["alert_id"]] == "dismissed"

    def line(frame: pl.DataFrame, alert: dict) -> dict:
        return frame.filter(
            (pl.col("payee_code") == alert["store_code"])
            & (pl.col("period_start") == alert["period_start"])
        ).row(0, named=True)

    # held before; confirmed: forfeited now; dismissed: released (no longer held)
    assert line(before, confirmed)["events_withheld"] > 0
    assert line(lines, confirmed)["events_forfeited"] > 0
    assert line(lines, dismissed)["events_withheld"] < line(before, dismissed)["events_withheld"]
