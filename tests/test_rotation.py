"""Key rotation (`bclake rotate-pii-key`): every stored pseudonym moves to the new key chain,
nothing under the old key is left, ingest joins new exports to the old rows through the
chain, refuses the old key alone, and a rotation cut short is finished by running it again."""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

import duckdb
import polars as pl
import pytest
from test_erasure import consumer_record, traces

from bclake.core.contracts import load_contracts
from bclake.core.pii import pseudonym, rekeyer, seal, unseal
from bclake.core.settings import DEMO_PII_KEY, Settings
from bclake.ingest.erasure import SUBJECTS_SCHEMA, listed, read_subjects, subjects_path
from bclake.ingest.loader import ingest_table
from bclake.ingest.paths import table_dir, write_parquet_atomic
from bclake.ingest.rotation import KeyMismatch, mapping_path, rekey_text, verify_key
from bclake.orchestration.rotation import check_new_key, rotate

NEW_KEY = "rotation-test-key-7f3c9a"
SAMPLE = 40  # consumers followed through the rotation


def _consumers(settings: Settings) -> pl.DataFrame:
    contract = load_contracts()["cdp.consumers"]
    parts = sorted(table_dir(settings.lake, contract).rglob("part-*.parquet"))
    return pl.read_parquet(parts).select("consumer_id", "phone").drop_nulls().unique()


def _clear_phones(settings: Settings, ids: set[str]) -> dict[str, str]:
    found = {}
    for f in sorted((settings.landing / "cdp" / "consumers").glob("*.ndjson")):
        for line in f.read_text(encoding="utf-8").splitlines():
            record = json.loads(line)
            if record.get("consumerId") in ids and record.get("phone"):
                found[record["consumerId"]] = record["phone"]
    return found


def _erasure_row(settings: Settings, name: str) -> None:
    """One earlier erasure of the consumer id pseudonym `name` (sealed, like a request)."""
    row = pl.DataFrame(
        {"sealed": [seal(name, settings.pii_key)], "kind": ["consumer_id"], "request_id": ["ER1"]}
    ).with_columns(
        requested_at=pl.lit(None, pl.Datetime("us", "UTC")),
        reason=pl.lit("erasure_request"),
        received_at=pl.lit(None, pl.Datetime("us", "UTC")),
    )
    write_parquet_atomic(row.select(list(SUBJECTS_SCHEMA)), subjects_path(settings))


def _repoint_views(db: Path, old_home: Path, new_home: Path) -> None:
    """The staging views of a copied root read the copy's lake, not the original's (dbt
    writes absolute paths; a pipeline run in the copy would recreate them)."""
    with duckdb.connect(str(db)) as con:
        views = con.execute(
            "select sql from duckdb_views() where not internal and sql like ?",
            [f"%{old_home}%"],
        ).fetchall()
        for (sql,) in views:
            sql = sql.replace(str(old_home), str(new_home))
            con.execute(sql.replace("CREATE VIEW", "CREATE OR REPLACE VIEW", 1))


@pytest.fixture(scope="module")
def rotated(tiny_home: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A copy of the tiny root (written under the demo key) rotated to `NEW_KEY`, with an
    erasure list, a compute log and an SQLite run store that name old pseudonyms."""
    home = tmp_path_factory.mktemp("rotation") / "home"
    shutil.copytree(tiny_home, home, symlinks=True)
    settings = Settings.from_env(home)
    for db in (settings.build_db, settings.published_db):
        _repoint_views(db, tiny_home, home)
    assert settings.pii_keys == DEMO_PII_KEY
    before = _consumers(settings).sort("consumer_id").head(SAMPLE)
    old = before["phone"].to_list()
    _erasure_row(settings, pseudonym("C999999999", settings.pii_keys))
    storage = home / "dagster" / "storage"
    (storage / "run-1" / "compute_logs").mkdir(parents=True)
    (storage / "run-1" / "compute_logs" / "ingest.err").write_text(
        f"phone {old[0]} matched twice\nnext line\n", encoding="utf-8"
    )
    with sqlite3.connect(storage / "runs.db") as con:
        con.execute("create table event_logs (id integer, event text)")
        con.execute("insert into event_logs values (1, ?)", (json.dumps({"phone": old[1]}),))
    done = rotate(settings, NEW_KEY, home / "dagster", log=lambda _: None)
    return {"home": home, "settings": settings, "before": before, "done": done}


def _new_settings(home: Path) -> Settings:
    return Settings(home=home, pii_key=NEW_KEY, pii_key_from_env=True,
                    pii_key_retired=(DEMO_PII_KEY,))  # fmt: skip


def test_no_old_pseudonym_and_no_key_is_left(rotated: dict) -> None:
    old = rotated["before"]["phone"].to_list()
    assert traces(rotated["home"], old) == []
    assert traces(rotated["home"], [NEW_KEY, DEMO_PII_KEY]) == []  # nor either key
    assert not mapping_path(rotated["settings"]).exists()
    done = rotated["done"]
    assert done.pseudonyms >= len(old) and done.lake_parts > 0 and done.erasure_rows == 1
    assert done.files == 2  # the compute log and the run store


def test_the_lake_holds_the_chain_of_the_clear_values(rotated: dict) -> None:
    home, before = rotated["home"], rotated["before"]
    new = _new_settings(home)
    after = _consumers(new).filter(pl.col("consumer_id").is_in(before["consumer_id"].to_list()))
    clear = _clear_phones(new, set(before["consumer_id"]))
    assert len(clear) >= SAMPLE // 2
    stored = dict(after.iter_rows())
    for consumer, phone in clear.items():
        assert stored[consumer] == pseudonym(phone, new.pii_keys)
        assert stored[consumer] == rekeyer(NEW_KEY)(pseudonym(phone, DEMO_PII_KEY))
    # the run logs too: the old value's new form, the other lines as they were
    log = home / "dagster/storage/run-1/compute_logs/ingest.err"
    first = dict(before.iter_rows())[before["consumer_id"][0]]
    assert log.read_text() == f"phone {rekeyer(NEW_KEY)(first)} matched twice\nnext line\n"


def test_the_erasure_list_opens_under_the_new_key(rotated: dict) -> None:
    new = _new_settings(rotated["home"])
    assert listed(new, read_subjects(new)) == [
        ("consumer_id", pseudonym("C999999999", new.pii_keys))
    ]


def test_ingest_needs_the_whole_chain(rotated: dict) -> None:
    home = rotated["home"]
    contract = load_contracts()["cdp.consumers"]
    with pytest.raises(KeyMismatch, match="not the key chain"):
        ingest_table(contract, Settings.from_env(home))  # the old key alone
    with pytest.raises(KeyMismatch, match="not the key chain"):
        verify_key(Settings(home=home, pii_key=NEW_KEY, pii_key_from_env=True))  # no chain
    verify_key(_new_settings(home))


def test_a_run_after_rotation_joins_a_new_export_to_the_old_rows(
    rotated: dict, tmp_path_factory: pytest.TempPathFactory
) -> None:
    from dagster import DagsterInstance

    from bclake.orchestration.run import run_pipeline

    home = tmp_path_factory.mktemp("rotated-run") / "home"
    shutil.copytree(rotated["home"], home, symlinks=True)
    settings = _new_settings(home)
    consumer = rotated["before"]["consumer_id"][0]
    landing = settings.landing / "cdp" / "consumers"
    record = consumer_record(settings, consumer)
    (landing / "consumers_resent.ndjson").write_text(
        json.dumps(record, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    ledger_before = pl.read_parquet(settings.lake / "_ledger" / "cdp__consumers.parquet")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("BCLAKE_HOME", str(home))
        mp.setenv("BCLAKE_PII_KEY", NEW_KEY)
        mp.setenv("BCLAKE_PII_KEY_RETIRED", DEMO_PII_KEY)
        with DagsterInstance.ephemeral() as instance:
            assert run_pipeline(str(home), instance).success
    ledger = pl.read_parquet(settings.lake / "_ledger" / "cdp__consumers.parquet")
    assert ledger.height == ledger_before.height + 1  # the new file only
    phones = _consumers(settings).filter(pl.col("consumer_id") == consumer)["phone"]
    assert phones.n_unique() == 1  # the resent row joins the rotated one
    with duckdb.connect(str(settings.published_db), read_only=True) as con:
        n = con.execute(
            "select count(*) from marts.dim_consumer where consumer_id = ?", [consumer]
        ).fetchall()[0][0]
    assert n == 1


def test_a_rotation_cut_short_is_finished_by_running_it_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import bclake.orchestration.rotation as rotation

    settings = Settings.from_env(tmp_path)
    contract = load_contracts()["cdp.consumers"]
    names = [pseudonym(p, settings.pii_keys) for p in ("13800000020", "13900000021")]
    part = table_dir(settings.lake, contract) / "part-a.parquet"
    write_parquet_atomic(
        pl.DataFrame({"consumer_id": ["C000000001", "C000000002"], "phone": names,
                      "_source_file": [f"cdp/consumers/tel{names[0]}.csv", "x.csv"]}),
        part,
    )  # fmt: skip
    _erasure_row(settings, names[1])
    verify_key(settings)  # the lake's key record: the demo key

    def cut(*_: object, **__: object) -> int:
        raise OSError("disk full")

    monkeypatch.setattr(rotation, "reseal_subjects", cut)
    with pytest.raises(OSError, match="disk full"):
        rotate(settings, NEW_KEY, log=lambda _: None)
    with pytest.raises(KeyMismatch, match="has not finished"):
        verify_key(settings)  # no ingest into a half-rotated lake
    with pytest.raises(KeyMismatch, match="other keys"):
        rotate(settings, NEW_KEY + "-other", log=lambda _: None)
    monkeypatch.undo()
    rotate(settings, NEW_KEY, log=lambda _: None)
    step = rekeyer(NEW_KEY)
    rows = pl.read_parquet(part)
    assert rows["phone"].to_list() == [step(n) for n in names]  # hashed once, not twice
    assert rows["_source_file"][0] == f"cdp/consumers/tel{step(names[0])}.csv"  # glued
    new = _new_settings(tmp_path)
    verify_key(new)
    assert listed(new, read_subjects(new)) == [("consumer_id", step(names[1]))]


def test_unfit_new_keys_are_refused(tmp_path: Path) -> None:
    settings = Settings.from_env(tmp_path)
    for key, message in [
        ("", "set BCLAKE_PII_KEY_NEW"),
        ("short", "at least 16"),
        (DEMO_PII_KEY, "demo key"),
    ]:
        with pytest.raises(ValueError, match=message):
            check_new_key(settings, key)
    chained = Settings(home=tmp_path, pii_key=NEW_KEY, pii_key_retired=("a" * 20,))
    with pytest.raises(ValueError, match="used already"):
        check_new_key(chained, "a" * 20)


def test_seal_and_text_rekeying() -> None:
    name = pseudonym("13800000020", "k" * 16)
    sealed = seal(name, "k" * 16)
    assert len(sealed) == 77 and name not in sealed and sealed != seal(name, "k" * 16)
    assert unseal(sealed, "k" * 16) == name and unseal(sealed, "j" * 16) != name
    with pytest.raises(ValueError, match="not a pseudonym"):
        seal("C000000001", "k" * 16)
    other = pseudonym("13900000021", "k" * 16)
    mapping = {name: "N" * 52}
    assert rekey_text(f"a {name}, {other}; x{name}.csv", mapping) == (
        f"a {'N' * 52}, {other}; x{'N' * 52}.csv"
    )


def test_the_command_reads_the_new_key_from_the_environment_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from bclake.cli import app

    monkeypatch.setenv("BCLAKE_HOME", str(tmp_path))
    monkeypatch.delenv("BCLAKE_PII_KEY_NEW", raising=False)
    result = CliRunner().invoke(app, ["rotate-pii-key"])
    assert result.exit_code == 2 and "BCLAKE_PII_KEY_NEW" in result.output
    assert CliRunner().invoke(app, ["rotate-pii-key", NEW_KEY]).exit_code != 0  # no argument
    monkeypatch.setenv("BCLAKE_PII_KEY_NEW", NEW_KEY)
    result = CliRunner().invoke(app, ["rotate-pii-key"])
    assert result.exit_code == 0, result.output
    assert "0 pseudonyms" in result.output and NEW_KEY not in result.output
    assert json.loads((tmp_path / "lake" / "_pii" / "key.json").read_text())["keys"] == 2
