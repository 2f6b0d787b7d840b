"""Erasure (删除权): a consumer erased from a tiny world leaves no trace under the data root.

The request, a re-export of the consumer's CDP record and a quarantined copy of it arrive
together; one run erases them from the lake, the quarantine, both warehouse files, the
planner exports and the run logs, and the ledger and receipts account for it. The scan
reads every file's content (Parquet and DuckDB through their readers, workbooks unzipped,
SQLite and text as bytes), not only the raw bytes, since Parquet pages are compressed.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import zipfile
from pathlib import Path

import duckdb
import polars as pl
import pytest

from bclake.core.contracts import load_contracts
from bclake.core.pii import pseudonym, seal
from bclake.core.settings import Settings
from bclake.core.warehouse import word_pattern
from bclake.ingest.erasure import (
    RECEIPT_SCHEMA,
    listed,
    read_receipts,
    read_subjects,
    write_request,
)
from bclake.ingest.ledger import read_ledger
from bclake.orchestration.erasure import carry_out

# a bclake product is everything under the root but the sources' own drop zone and the
# simulator's answers
NOT_OURS = ("landing", "truth")


def _holds(path: Path, needles: list[str]) -> bool:
    """Whether the file's content holds any needle, read the way its format stores text."""
    data = path.read_bytes()
    if any(n.encode() in data for n in needles):
        return True
    regex = word_pattern(needles)
    if path.suffix == ".parquet" or data[:4] == b"PAR1":
        frame = pl.read_parquet(path)
        texts = [c for c, t in frame.schema.items() if t == pl.String]
        return any(frame[c].str.contains(regex).any() for c in texts)
    if data[:8] == b"\x89DUCKDB" or data[8:12] == b"DUCK":
        con = duckdb.connect(str(path), read_only=True)
        try:
            return bool(_duckdb_hits(con, regex))
        finally:
            con.close()
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as z:
            return any(any(n.encode() in z.read(m) for n in needles) for m in z.namelist())
    return False


def _duckdb_hits(con: duckdb.DuckDBPyConnection, regex: str) -> list[str]:
    columns = con.execute(
        "select table_schema, table_name, column_name from information_schema.columns "
        "where data_type = 'VARCHAR' and table_catalog = current_database()"
    ).fetchall()
    return [
        f"{s}.{t}.{c}"
        for s, t, c in columns
        if con.execute(
            f'select count(*) from "{s}"."{t}" where regexp_matches("{c}", $r)', {"r": regex}
        ).fetchall()[0][0]
    ]


def traces(root: Path, needles: list[str]) -> list[str]:
    """Files under `root` (not landing/ or truth/) whose content holds a needle."""
    out = []
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root)
        if rel.parts[0] in NOT_OURS or path.is_symlink() or not path.is_file():
            continue
        if _holds(path, needles):
            out.append(str(rel))
    return out


def consumer_record(settings: Settings, consumer: str) -> dict:
    """The consumer's first record in the simulated CDP export (NDJSON, clear values)."""
    return next(
        json.loads(line)
        for f in sorted((settings.landing / "cdp" / "consumers").glob("*.ndjson"))
        for line in f.read_text(encoding="utf-8").splitlines()
        if f'"{consumer}"' in line
    )


@pytest.fixture(scope="module")
def erased(tiny_home: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A copy of the tiny root after one run that erases the consumer with the most scans
    among those on a target list (so every layer holds them)."""
    from dagster import DagsterInstance

    from bclake.orchestration.run import run_pipeline

    home = tmp_path_factory.mktemp("erasure") / "home"
    shutil.copytree(tiny_home, home, symlinks=True)
    settings = Settings.from_env(home)
    with duckdb.connect(str(settings.published_db), read_only=True) as con:
        consumer = con.execute(
            "select s.consumer_id from marts.fct_product_scans s "
            "where s.consumer_id in (select consumer_id from ml.marketing_target_lists) "
            "group by 1 order by count(*) desc, 1 limit 1"
        ).fetchall()[0][0]
    landing = settings.landing / "cdp" / "consumers"
    record = consumer_record(settings, consumer)
    phone = pseudonym(record["phone"], settings.pii_keys)
    # the CDP sends the person again (a later export), once well-formed and once broken
    broken = {**record, "profile": {**record["profile"], "gender": "unknown"}}
    (landing / "consumers_resent.ndjson").write_text(
        json.dumps(record, ensure_ascii=False) + "\n" + json.dumps(broken, ensure_ascii=False),
        encoding="utf-8",
    )
    # an earlier run's compute log that named the person
    log = home / "dagster" / "storage" / "earlier-run" / "compute_logs" / "ingest.err"
    log.parent.mkdir(parents=True)
    log.write_text(f"row 3: consumer {consumer} not found\nnext line\n", encoding="utf-8")
    _, request = write_request(settings, consumer, None)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("BCLAKE_HOME", str(home))
        instance = DagsterInstance.local_temp(str(home / "dagster"))
        result = run_pipeline(str(home), instance)
        assert result.success, "the erasure run failed"
    return {
        "home": home,
        "settings": settings,
        "consumer": consumer,
        "phone": phone,
        "clear_phone": record["phone"],
        "request": request,
    }


def test_no_trace_of_the_person_is_left(erased: dict) -> None:
    needles = [erased["consumer"], erased["phone"], erased["clear_phone"]]
    assert traces(erased["home"], needles) == []


def test_the_scan_finds_a_person_who_was_not_erased(erased: dict) -> None:
    """The scan can fail: another consumer is still everywhere."""
    with duckdb.connect(str(erased["settings"].published_db), read_only=True) as con:
        other = con.execute(
            "select consumer_id from marts.fct_product_scans where consumer_id is not null "
            "group by 1 order by count(*) desc limit 1"
        ).fetchall()[0][0]
    found = traces(erased["home"], [other])
    assert any(f.startswith("lake/") for f in found)
    assert any(f.startswith("warehouse/") for f in found)


def test_the_ledger_counts_the_erased_rows(erased: dict) -> None:
    ledger = read_ledger(erased["settings"]).with_columns(pl.col("rows_erased").fill_null(0))
    balance = pl.col("rows_loaded") + pl.col("rows_quarantined") + pl.col("rows_erased")
    assert ledger.filter(pl.col("rows_in") != balance).is_empty()
    resent = ledger.filter(pl.col("file").str.ends_with("consumers_resent.ndjson")).row(
        0, named=True
    )
    # both lines were about the person: one loaded, one quarantined, both erased
    assert (resent["rows_in"], resent["rows_erased"]) == (2, 2)
    assert resent["rows_loaded"] == resent["rows_quarantined"] == 0
    assert ledger["rows_erased"].sum() > 2, "the scans and coupons of the person too"


def test_receipts_say_where_without_saying_who(erased: dict) -> None:
    receipts = read_receipts(erased["settings"])
    assert receipts.schema == pl.Schema(RECEIPT_SCHEMA)
    mine = receipts.filter(pl.col("request_id") == erased["request"])
    places = set(mine["place"])
    assert {"lake/cdp/consumers", "quarantine/cdp/consumers", "lake/code/product_scans"} <= places
    assert any(p.startswith("warehouse build") for p in places)
    assert "exports" in places and "run logs" in places
    assert (mine["rows"] > 0).all()
    text = receipts.write_csv()
    assert erased["consumer"] not in text and erased["phone"] not in text
    # the request keeps its id and time, not the identifier
    subjects = read_subjects(erased["settings"])
    assert set(subjects["request_id"]) == {erased["request"]}
    consumer_pseudonym = pseudonym(erased["consumer"], erased["settings"].pii_keys)
    assert ("consumer_id", consumer_pseudonym) in listed(erased["settings"], subjects)
    assert consumer_pseudonym not in subjects.write_csv()  # sealed, not in clear


def test_the_run_logs_keep_their_other_lines(erased: dict) -> None:
    log = erased["home"] / "dagster/storage/earlier-run/compute_logs/ingest.err"
    assert log.read_text(encoding="utf-8") == "row 3: consumer [erased] not found\nnext line\n"


def test_the_published_quality_audit_lists_the_receipts(erased: dict) -> None:
    with duckdb.connect(str(erased["settings"].published_db), read_only=True) as con:
        rows = con.execute(
            "select count(*) from audit.erasure_receipts where request_id = $r",
            {"r": erased["request"]},
        ).fetchall()[0][0]
    assert rows > 0


def test_a_later_run_finds_no_one_and_changes_nothing(erased: dict) -> None:
    settings = erased["settings"]
    before = read_ledger(settings)
    outcome = carry_out(settings, load_contracts())
    assert (outcome.requests_new, outcome.people, outcome.receipts.height) == (0, 0, 0)
    assert read_ledger(settings).equals(before)


def test_the_cli_writes_a_request_the_contract_reads(empty_home: Path) -> None:
    from typer.testing import CliRunner

    from bclake.cli import app
    from bclake.ingest.read import read_file

    result = CliRunner().invoke(app, ["erase", "--consumer", "C000000272"])
    assert result.exit_code == 0, result.output
    (path,) = (empty_home / "landing" / "cdp" / "erasure_requests").glob("ER*.csv")
    assert path.name.split(".")[0] in result.output
    contract = load_contracts()["cdp.erasure_requests"]
    raw = read_file(path, contract)
    assert not raw.extra_columns and raw.rejected.is_empty()
    assert raw.frame.select("consumer_id", "reason").row(0) == ("C000000272", "erasure_request")
    refused = CliRunner().invoke(app, ["erase"])
    assert refused.exit_code == 2 and "--consumer or --phone" in refused.output


def test_a_request_needs_an_identifier(empty_home: Path) -> None:
    settings = Settings.from_env(empty_home)
    with pytest.raises(ValueError, match="--consumer or --phone"):
        write_request(settings, None, " ")
    with pytest.raises(ValueError, match="reason 'bored'"):
        write_request(settings, "C000000001", None, reason="bored")
    assert not (settings.landing / "cdp" / "erasure_requests").exists()


def test_sqlite_run_logs_are_read_as_bytes(tmp_path: Path) -> None:
    """The scan's own premise: SQLite keeps text uncompressed, so a byte search finds it."""
    db = tmp_path / "x.db"
    with sqlite3.connect(db) as con:
        con.execute("create table t (event text)")
        con.execute('insert into t values (\'{"msg": "C000000272 quarantined"}\')')
    assert traces(tmp_path, ["C000000272"]) == ["x.db"]


# -- the lake step on a hand-made lake (fast) ------------------------------------------


def _interactions(rows: list[tuple[str, str, str | None]], file: str) -> pl.DataFrame:
    """Lake rows of cdp.interactions: (interaction id, consumer id, _extra)."""
    return pl.DataFrame(
        {
            "_source_row": list(range(2, len(rows) + 2)),
            "interaction_id": [r[0] for r in rows],
            "group_id": "G0001",
            "consumer_id": [r[1] for r in rows],
            "interaction_type": "message",
            "_extra": [r[2] for r in rows],
            "_source_file": file,
            "_file_sha256": file[0] * 64,
        }
    )


def test_the_lake_step_removes_rows_naming_the_person_and_keeps_the_ledger_balanced(
    tmp_path: Path,
) -> None:
    from bclake.ingest.erasure import Person, erase_lake
    from bclake.ingest.ledger import FileResult, write_ledger
    from bclake.ingest.paths import quarantine_dir, table_dir, write_parquet_atomic

    settings = Settings.from_env(tmp_path)
    contract = load_contracts()["cdp.interactions"]
    me, phone = "C000000272", "a" * 52
    lake = table_dir(settings.lake, contract)
    write_parquet_atomic(
        _interactions(
            [
                ("I0001", me, None),  # names the person: goes
                ("I0002", "C000000001", f'{{"note": "for {me}"}}'),  # mentions them: goes
                ("I0003", "C000000001", f'{{"note": "{me}1"}}'),  # a longer id: stays
                ("I0004", "C000000002", None),  # stays
            ],
            "cdp/interactions/a.ndjson",
        ),
        lake / "interaction_date=2024-01-01" / "part-a.parquet",
    )
    untouched = lake / "interaction_date=2024-01-02" / "part-b.parquet"
    write_parquet_atomic(_interactions([("I0005", "C000000003", None)], "b.ndjson"), untouched)
    quarantined = pl.DataFrame(
        {
            "_source_row": [6],
            "reason": "bad_value",
            "message": "interaction_type 'poke' is not allowed",
            "raw": [f'{{"consumerId": "{me}", "phone": "{phone}"}}'],
            "_source_file": "cdp/interactions/a.ndjson",
            "_file_sha256": "c" * 64,
        }
    )
    write_parquet_atomic(quarantined, quarantine_dir(settings.lake, contract) / "part-a.parquet")
    a = FileResult(
        file="cdp/interactions/a.ndjson", system="cdp", table="interactions", sha256="c" * 64,
        status="partial", rows_in=5, rows_loaded=4, rows_quarantined=1,
    )  # fmt: skip
    b = FileResult(
        file="b.ndjson", system="cdp", table="interactions", sha256="b" * 64,
        status="loaded", rows_in=1, rows_loaded=1,
    )  # fmt: skip
    write_ledger(settings, contract, read_ledger(settings, contract), [a, b])
    before = untouched.stat().st_mtime_ns

    receipts = erase_lake(settings, [contract], [Person("ER1", frozenset({me}), frozenset())])

    kept = pl.read_parquet(lake / "interaction_date=2024-01-01" / "part-a.parquet")
    assert kept["interaction_id"].to_list() == ["I0003", "I0004"]
    assert not quarantine_dir(settings.lake, contract).joinpath("part-a.parquet").exists()
    assert untouched.stat().st_mtime_ns == before, "a part without the person is not rewritten"
    ledger = read_ledger(settings, contract).sort("file")
    assert ledger.select("rows_in", "rows_loaded", "rows_quarantined", "rows_erased").rows() == [
        (1, 1, 0, 0),
        (5, 2, 0, 3),
    ]
    assert sorted((r["place"], r["rows"]) for r in receipts) == [
        ("lake/cdp/interactions", 2),
        ("quarantine/cdp/interactions", 1),
    ]


def test_a_phone_request_finds_every_account_and_phone_of_the_person(tmp_path: Path) -> None:
    from bclake.ingest.erasure import erased_people
    from bclake.ingest.paths import table_dir, write_parquet_atomic

    settings = Settings.from_env(tmp_path)
    contracts = load_contracts()
    consumers = pl.DataFrame(
        {
            "consumer_id": ["C000000001", "C000000001", "C000000002", "C000000003"],
            "phone": ["pa" * 26, "ba" * 26, "ba" * 26, "ca" * 26],
        }
    )
    write_parquet_atomic(
        consumers, table_dir(settings.lake, contracts["cdp.consumers"]) / "part-a.parquet"
    )
    subjects = read_subjects(settings).vstack(
        pl.DataFrame(
            {"sealed": [seal("pa" * 26, settings.pii_key)], "kind": "phone", "request_id": "ER1"},
            schema_overrides={"sealed": pl.String},
        ).with_columns(
            requested_at=pl.lit(None, pl.Datetime("us", "UTC")),
            reason=pl.lit(None, pl.String),
            received_at=pl.lit(None, pl.Datetime("us", "UTC")),
        )
    )
    (person,) = erased_people(settings, contracts.values(), subjects)
    # pa -> C1 -> ba -> C2 (an account on the same phone); C3 is someone else
    assert person.consumer_ids == {"C000000001", "C000000002"}
    assert person.phones == {"pa" * 26, "ba" * 26}


def test_the_published_file_is_rewritten_beside_its_readers(tmp_path: Path) -> None:
    from bclake.ingest.erasure import Person
    from bclake.orchestration.erasure import _erase_warehouse

    db = tmp_path / "published.duckdb"
    with duckdb.connect(str(db)) as con:
        con.execute(
            "create table scans as select * from (values ('C000000272', 1), ('C000000001', 2))"
            " t(consumer_id, n)"
        )
    reader = duckdb.connect(str(db), read_only=True)
    receipts = _erase_warehouse(db, [Person("ER1", frozenset({"C000000272"}), frozenset())])
    place = "warehouse published: main.scans"
    assert receipts == [{"request_id": "ER1", "place": place, "rows": 1}]
    assert reader.execute("select count(*) from scans").fetchall() == [(2,)], "its old copy"
    reader.close()
    with duckdb.connect(str(db), read_only=True) as con:
        assert con.execute("select consumer_id from scans").fetchall() == [("C000000001",)]
    assert [p.name for p in tmp_path.iterdir()] == ["published.duckdb"]


def test_the_quality_page_sums_each_request(erased: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    from streamlit_server import signed_in

    monkeypatch.setenv("BCLAKE_HOME", str(erased["home"]))
    at = signed_in("views/quality.py", "hq", "en")
    assert not at.exception, at.exception
    summary = next(d.value for d in at.dataframe if "Request" in d.value.columns)
    row = summary.set_index("Request").loc[erased["request"]]
    assert row["Lake rows"] > 0 and row["Warehouse rows"] > 0 and row["Export and log files"] > 0
    assert erased["consumer"] not in summary.to_csv()
