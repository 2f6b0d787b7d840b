"""Incentive programmes: the file's validation, the arithmetic of every rule type, and the
statements, fraud alerts and reconciliation a tiny world builds."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import polars as pl
import pytest
import yaml
from typer.testing import CliRunner

from bclake.core.incentives import (
    ProgrammeError,
    load_programmes,
    programme_frames,
)
from bclake.core.incentives import (
    earned as earned_by_rules,
)
from bclake.core.settings import DEFAULT_INCENTIVES, Settings
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
