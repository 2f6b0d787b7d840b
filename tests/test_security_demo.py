"""Demo never touches real: what makes a landing simulated cannot be forged from landing/.

The simulator signs its manifest (`landing/_simulation.json`) under a key in the data
root's private folder (`.bclake/`); only a manifest that verifies there makes a root
simulated. A real landing (no manifest, a planted or copied one, or one edited since)
needs a real `BCLAKE_PII_KEY` and never takes the public demo key; `bclake simulate`
deletes a landing only when it holds nothing but its own signed output; the packaged
demo users do not sign in where the data is real. Hand-made roots in `tmp_path`, and
one tiny simulation.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from bclake.core.contracts import load_contracts
from bclake.core.settings import DEMO_PII_KEY, PRIVATE_DIR, Settings
from bclake.dashboards import auth
from bclake.ingest.loader import ingest_table
from bclake.simulator import run
from bclake.simulator.run import ForeignLandingError, continue_simulation, simulate

CONSUMER = {
    "consumerId": "C9000001",
    "phone": "13812345678",
    "profile": {"gender": "F", "birthYear": 1990, "city": "杭州"},
    "registerChannel": "扫码",
    "registerDate": "2025-01-02",
    "consents": {"marketing": True, "profile": True},
}
# what `make demo` leaves in landing/, as anyone who can write landing/ can copy it
PLANTED = {"scale": "demo", "seed": 42, "days": 730, "rows": {}, "faults": []}
REAL_FILE = "cdp/consumers/export.ndjson"


@pytest.fixture(autouse=True)
def _no_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("BCLAKE_PII_KEY", raising=False)
    monkeypatch.delenv("BCLAKE_USERS", raising=False)


def _real(home: Path) -> Settings:
    """A data root whose landing holds one real consumer export."""
    path = home / "landing" / REAL_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(CONSUMER, ensure_ascii=False) + "\n")
    return Settings.from_env(home)


def _signed(home: Path) -> Settings:
    """A data root whose landing the simulator wrote (one file, the signed manifest),
    made by hand the way `simulate` signs."""
    path = home / "landing" / "cdp/consumers/consumers_opening.ndjson"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(CONSUMER, ensure_ascii=False) + "\n")
    settings = Settings.from_env(home)
    files = {rel: size for rel, (size, _) in settings.landing_sizes().items()}
    run._write_manifest(settings, PLANTED | {"complete": True, "landing_files": files})
    return settings


def _plant(settings: Settings, meta: dict | None = None) -> None:
    settings.simulation_manifest.write_text(json.dumps(meta or PLANTED))


# --- the PII key -------------------------------------------------------------------------


def test_a_planted_manifest_does_not_make_real_exports_simulated(tmp_path: Path) -> None:
    """The issue's repro: `_simulation.json` dropped into a real landing made ingest use
    the public demo key, silently."""
    settings = _real(tmp_path)
    _plant(settings)
    assert not settings.is_simulated
    with pytest.raises(RuntimeError, match="BCLAKE_PII_KEY"):
        ingest_table(load_contracts()["cdp.consumers"], settings)
    assert not (tmp_path / "lake").exists()


def test_the_demo_key_is_refused_on_real_data_even_when_set(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BCLAKE_PII_KEY", DEMO_PII_KEY)
    settings = _real(tmp_path)
    with pytest.raises(RuntimeError, match="public demo key"):
        settings.require_pii_key()
    monkeypatch.setenv("BCLAKE_PII_KEY", "a-real-secret-of-some-length")
    Settings.from_env(tmp_path).require_pii_key()  # a real key: real data is fine


def test_a_signed_manifest_makes_a_simulated_root(tmp_path: Path) -> None:
    settings = _signed(tmp_path)
    assert settings.is_simulated and not settings.holds_real_data
    settings.require_pii_key()  # the demo key is fine on demo data
    assert settings.foreign_landing_files() == []
    key = settings.private_dir / "simulator.key"
    assert key.stat().st_mode & 0o777 == 0o600
    assert "simulator.key" not in {p.name for p in settings.landing.rglob("*")}


def test_copied_edited_or_keyless_manifests_are_not_trusted(tmp_path: Path) -> None:
    demo = _signed(tmp_path / "demo")
    # the demo's signed manifest copied into a real root: its key is not there
    real = _real(tmp_path / "real")
    shutil.copy(demo.simulation_manifest, real.simulation_manifest)
    assert not real.is_simulated
    # ... nor with the demo's signature: the real root has a key of its own
    real.private_dir.mkdir()
    Settings.from_env(tmp_path / "other").sign_simulation(b"{}")  # another root's key
    shutil.copy(tmp_path / "other" / PRIVATE_DIR / "simulator.key", real.private_dir)
    shutil.copy(demo.private_dir / "simulation.sig", real.private_dir)
    assert not real.is_simulated
    # a demo landing moved without its private folder is real
    moved = tmp_path / "moved"
    shutil.copytree(demo.landing, moved / "landing")
    assert not Settings.from_env(moved).is_simulated
    # the demo's own manifest edited (a real file added to its list) no longer verifies
    meta = json.loads(demo.simulation_manifest.read_text())
    meta["landing_files"][REAL_FILE] = 10
    demo.simulation_manifest.write_text(json.dumps(meta))
    assert not demo.is_simulated


def test_a_manifest_link_or_a_shared_key_is_no_proof(tmp_path: Path) -> None:
    demo = _signed(tmp_path / "demo")
    real = _real(tmp_path / "real")
    real.simulation_manifest.symlink_to(demo.simulation_manifest)
    shutil.copytree(demo.private_dir, real.private_dir)
    assert not real.is_simulated, "a link to another root's manifest"
    key = demo.private_dir / "simulator.key"
    os.chmod(key, 0o644)
    assert not demo.is_simulated, "a key others can read is no key"


# --- the simulator deletes only its own landing --------------------------------------------


def test_simulate_refuses_to_delete_a_real_landing(tmp_path: Path) -> None:
    """The issue's repro: `make demo` over real exports deleted landing/."""
    settings = _real(tmp_path)
    (tmp_path / "truth").mkdir()
    (tmp_path / "truth" / "keep.txt").write_text("x")
    with pytest.raises(ForeignLandingError, match="did not write") as error:
        simulate(tmp_path, "tiny", seed=1, progress=False)
    assert REAL_FILE in str(error.value)
    assert (settings.landing / REAL_FILE).exists() and (tmp_path / "truth/keep.txt").exists()
    _plant(settings)  # a planted manifest does not make it the simulator's
    with pytest.raises(ForeignLandingError, match="not signed by this root's key"):
        simulate(tmp_path, "tiny", seed=1, progress=False)
    assert (settings.landing / REAL_FILE).exists()


def test_make_demo_over_real_exports_stops_with_a_message(tmp_path: Path) -> None:
    """`bclake simulate` (what `make demo` runs when landing/ has no manifest) exits 2
    naming the file, and deletes nothing."""
    from typer.testing import CliRunner

    from bclake.cli import app

    settings = _real(tmp_path)
    result = CliRunner().invoke(app, ["simulate", "--scale", "tiny", "--out", str(tmp_path)])
    assert result.exit_code == 2, result.output
    said = " ".join(result.output.split())  # however the console wraps it
    assert "export.ndjson" in said and "nothing is deleted" in said
    assert (settings.landing / REAL_FILE).exists()


def test_simulate_refuses_a_landing_with_a_link_or_an_unlisted_file(tmp_path: Path) -> None:
    settings = _signed(tmp_path)
    outside = tmp_path / "outside.txt"
    outside.write_text("not landing's")
    (settings.landing / "cdp" / "link.ndjson").symlink_to(outside)
    assert settings.foreign_landing_files() == ["cdp/link.ndjson"]
    with pytest.raises(ForeignLandingError, match=r"link\.ndjson"):
        simulate(tmp_path, "tiny", seed=1, progress=False)
    assert outside.exists() and (settings.landing / "cdp" / "link.ndjson").is_symlink()
    (settings.landing / "cdp" / "link.ndjson").unlink()
    # a file of its own, overwritten by someone else (another size), is not its own
    own = settings.landing / "cdp/consumers/consumers_opening.ndjson"
    own.write_text(own.read_text() * 2)
    assert settings.foreign_landing_files() == ["cdp/consumers/consumers_opening.ndjson"]


def test_continue_refuses_a_landing_it_did_not_sign(tmp_path: Path) -> None:
    settings = _real(tmp_path)
    _plant(settings)
    (tmp_path / "truth").mkdir()
    (tmp_path / "truth" / run.STATE).write_bytes(b"not read")
    with pytest.raises(ForeignLandingError, match="not signed"):
        continue_simulation(tmp_path, 1, progress=False)


def test_a_simulated_world_is_its_own_and_keeps_a_dropped_file_foreign(tmp_path: Path) -> None:
    """One tiny world: every file it writes is in its signed manifest; a file dropped in
    afterwards stays foreign through `--continue`, and stops the next `simulate`."""
    simulate(tmp_path, "tiny", seed=3, progress=False, dirt=0)
    settings = Settings.from_env(tmp_path)
    assert settings.is_simulated and settings.foreign_landing_files() == []
    meta = settings.simulation_meta()
    assert meta is not None and meta["complete"] is True
    assert set(meta["landing_files"]) == set(settings.landing_sizes()) and meta["landing_files"]
    dropped = settings.landing / "dms" / "stores" / "real_stores.csv"
    dropped.write_text("store_code,store_name\nS1,真门店\n")
    continue_simulation(tmp_path, 1, progress=False)
    assert settings.is_simulated
    assert settings.foreign_landing_files() == ["dms/stores/real_stores.csv"]
    with pytest.raises(ForeignLandingError, match=r"real_stores\.csv"):
        simulate(tmp_path, "tiny", seed=3, progress=False)
    assert dropped.exists()
    dropped.unlink()
    run._own_landing(settings)  # its own output alone: the next simulate may start afresh


def test_a_killed_simulation_leaves_a_landing_it_may_delete(tmp_path: Path) -> None:
    settings = Settings.from_env(tmp_path)
    run._write_manifest(settings, {"scale": "tiny", "seed": 1, "complete": False})
    half = settings.landing / "erp" / "invoices" / "invoices_opening.csv"
    half.parent.mkdir(parents=True)
    half.write_text("half a file")
    assert settings.is_simulated and settings.foreign_landing_files() == []


# --- demo users ----------------------------------------------------------------------------


def test_demo_users_do_not_sign_in_on_real_data(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The issue's repro: with no BCLAKE_USERS, hq / hq-demo signed in on real data."""
    monkeypatch.setenv("BCLAKE_HOME", str(tmp_path))
    _real(tmp_path)
    with pytest.raises(auth.UsersFileError, match="BCLAKE_USERS"):
        auth.authenticate("hq", "hq-demo")
    _plant(Settings.from_env(tmp_path))
    with pytest.raises(auth.UsersFileError):
        auth.load_users()


def test_demo_users_sign_in_on_demo_data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BCLAKE_HOME", str(tmp_path))
    _signed(tmp_path)
    assert auth.authenticate("hq", "hq-demo") is not None
    empty = tmp_path / "empty"  # nothing there yet: not known to be real
    monkeypatch.setenv("BCLAKE_HOME", str(empty))
    assert "hq" in auth.load_users()


def test_review_decisions_alone_are_not_real_data(tmp_path: Path) -> None:
    """The dashboards' own review form writes into landing/review/: a root holding only
    those (and a published warehouse) is not known to be real; a source export beside
    them is."""
    decisions = tmp_path / "landing" / "review" / "alert_decisions" / "alert_decisions_1.csv"
    decisions.parent.mkdir(parents=True)
    decisions.write_text("decision_id\n")
    assert not Settings.from_env(tmp_path).holds_real_data
    assert _real(tmp_path).holds_real_data


def test_a_landing_emptied_by_its_writers_still_holds_real_data(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Whoever can delete files in landing/ cannot make the root look empty: the lake
    the pipeline wrote from it is real too."""
    monkeypatch.setenv("BCLAKE_HOME", str(tmp_path))
    (tmp_path / "landing").mkdir()
    part = tmp_path / "lake" / "cdp" / "consumers" / "part-0.parquet"
    part.parent.mkdir(parents=True)
    part.write_bytes(b"PAR1")
    assert Settings.from_env(tmp_path).holds_real_data
    with pytest.raises(auth.UsersFileError):
        auth.load_users()


def test_a_copy_of_the_demo_users_file_loses_its_demo_users(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A users file made by copying users.yml and adding one's own: the demo entries
    (published passwords) are left out on real data, the own user kept."""
    monkeypatch.setenv("BCLAKE_HOME", str(tmp_path))
    _real(tmp_path)
    users = auth.USERS_FILE.read_text(encoding="utf-8")
    own = auth.hash_password("a long and private passphrase")
    users += f"  alice:\n    name: Alice\n    role: hq\n    password: {own}\n"
    path = tmp_path / "users.yml"
    path.write_text(users, encoding="utf-8")
    monkeypatch.setenv("BCLAKE_USERS", str(path))
    assert set(auth.load_users()) == {"alice"}
    assert auth.authenticate("hq", "hq-demo") is None
    assert auth.authenticate("alice", "a long and private passphrase") is not None
