"""`core.scrub.scrub_tree`: erased identifiers leave SQLite, text, CSV, Parquet and .xlsx files."""

from __future__ import annotations

import io
import json
import os
import sqlite3
import zipfile
from collections.abc import Iterator
from pathlib import Path

import openpyxl
import polars as pl
import pytest

from bclake.core import scrub
from bclake.core.scrub import MARK, Scrubbed, ScrubError, scrub_tree

PHONE = "13800138000"
NAME = "王小明的住址"  # 6 characters, 18 bytes as UTF-8
NEEDLES = (PHONE, NAME, "")


def everything(path: Path) -> bytes:
    """The bytes of `path`, and of its members when it is a zip file (.xlsx)."""
    data = path.read_bytes()
    if data.startswith(b"PK\x03\x04"):
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            data += b"".join(z.read(m) for m in z.namelist())
    return data


def files(root: Path) -> Iterator[Path]:
    return (p for p in sorted(root.rglob("*")) if p.is_file() and not p.is_symlink())


def holds_needle(path: Path) -> bool:
    data = everything(path)
    return any(n.encode() in data for n in (PHONE, NAME))


@pytest.fixture
def tree(tmp_path: Path) -> Iterator[Path]:
    """A DAGSTER_HOME-like folder and an export set, each file with needles in some rows.
    The WAL database keeps a connection open, so its rows stay in `runs.db-wal`."""
    root = tmp_path / "tree"
    (root / "history").mkdir(parents=True)
    wal = sqlite3.connect(root / "history" / "runs.db")
    wal.execute("PRAGMA journal_mode = WAL")
    wal.execute("PRAGMA wal_autocheckpoint = 0")
    wal.execute("CREATE TABLE event_logs (id INTEGER PRIMARY KEY, event TEXT, step_key VARCHAR)")
    wal.execute("CREATE INDEX idx_event ON event_logs (event)")
    for event in (
        {"user_message": f"member {PHONE} at {NAME}", "phone": PHONE},
        {"user_message": "materialised orders"},
    ):
        wal.execute(
            "INSERT INTO event_logs (event, step_key) VALUES (?, ?)",
            (json.dumps(event, ensure_ascii=False), "ingest"),
        )
    wal.commit()

    (root / "schedules").mkdir()
    with sqlite3.connect(root / "schedules" / "schedules") as plain:  # no extension
        plain.execute("CREATE TABLE jobs (name TEXT, body BLOB)")
        plain.execute(
            "INSERT INTO jobs VALUES ('a', ?), ('b', ?)",
            (f"x{PHONE}y{PHONE}".encode(), b"\x00\x01"),
        )
    plain.close()

    logs = root / "storage" / "run-1" / "compute_logs"
    logs.mkdir(parents=True)
    (logs / "step.out").write_text(f"looking up {PHONE}\nok\n{NAME} done\n", encoding="utf-8")
    (logs / "step.out").chmod(0o640)
    (logs / "step.complete").write_bytes(b"")

    exports = root / "exports"
    exports.mkdir()
    csv_text = f'\ufeffmember,note\r\nM1,"two\r\nlines"\r\nM2,{PHONE}\r\nM3,"say ""hi"""\r\n'
    (exports / "plan.csv").write_bytes(csv_text.encode("utf-8"))
    pl.DataFrame(
        {"member": ["M1", "M2", "M3"], "phone": ["x", PHONE, None], "qty": [1.5, 2.0, 3.0]},
        schema_overrides={"qty": pl.Float32},
    ).write_parquet(exports / "plan.parquet")
    book = openpyxl.Workbook()
    first = book.active
    assert first is not None
    first.title = "orders"
    for row in (
        ["member", "phone", "qty"],
        ["M1", "x", 1],
        ["M2", f"tel {PHONE}", 2],
        ["M3", "y", 3],
    ):
        first.append(row)
    book.create_sheet("stores").append(["store", "city"])
    book["stores"].append(["S1", "Shanghai"])
    book.save(exports / "plan.xlsx")

    untouched = exports / "notes.md"
    untouched.write_text("# Notes\nnothing personal\n", encoding="utf-8")
    os.utime(untouched, (1_000_000_000, 1_000_000_000))

    outside = tmp_path / "outside.txt"
    outside.write_text(f"kept {PHONE}\n", encoding="utf-8")
    (exports / "link.txt").symlink_to(outside)
    yield root
    wal.close()


def test_rows_mode_removes_every_trace(tree: Path) -> None:
    exports = tree / "exports"
    notes = (exports / "notes.md").stat()
    report = scrub_tree(tree, NEEDLES, rows=True)

    assert {Path(s.path).relative_to(tree).as_posix(): (s.kind, s.replaced) for s in report} == {
        "history/runs.db": ("sqlite", 3),
        "schedules/schedules": ("sqlite", 2),
        "storage/run-1/compute_logs/step.out": ("text", 2),
        "exports/plan.csv": ("csv", 1),
        "exports/plan.parquet": ("parquet", 1),
        "exports/plan.xlsx": ("xlsx", 1),
    }
    assert all(isinstance(s, Scrubbed) for s in report)
    assert [p for p in files(tree) if holds_needle(p)] == []

    # untouched: the file without needles, and the symlink and its target outside the tree
    assert (exports / "notes.md").stat().st_mtime_ns == notes.st_mtime_ns
    assert (exports / "notes.md").read_bytes() == b"# Notes\nnothing personal\n"
    assert (exports / "link.txt").is_symlink()
    assert PHONE in (tree.parent / "outside.txt").read_text(encoding="utf-8")

    # SQLite: values replaced (blobs stay blobs), other rows and the index kept
    with sqlite3.connect(tree / "history" / "runs.db") as con:
        events = [json.loads(e) for (e,) in con.execute("SELECT event FROM event_logs ORDER BY id")]
        assert con.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    con.close()
    assert events[0] == {"user_message": f"member {MARK} at {MARK}", "phone": MARK}
    assert events[1] == {"user_message": "materialised orders"}
    with sqlite3.connect(tree / "schedules" / "schedules") as con:
        assert con.execute("SELECT name, body FROM jobs ORDER BY name").fetchall() == [
            ("a", f"x{MARK}y{MARK}".encode()),
            ("b", b"\x00\x01"),
        ]
    con.close()

    assert (tree / "storage/run-1/compute_logs/step.out").read_text(encoding="utf-8") == (
        f"looking up {MARK}\nok\n{MARK} done\n"
    )
    assert (tree / "storage/run-1/compute_logs/step.out").stat().st_mode & 0o777 == 0o640
    # CSV: the other records byte for byte (BOM, CRLF, quoted line break, doubled quotes)
    assert (exports / "plan.csv").read_bytes().decode("utf-8") == (
        '\ufeffmember,note\r\nM1,"two\r\nlines"\r\nM3,"say ""hi"""\r\n'
    )
    frame = pl.read_parquet(exports / "plan.parquet")
    assert frame.schema == pl.Schema({"member": pl.String, "phone": pl.String, "qty": pl.Float32})
    assert frame["member"].to_list() == ["M1", "M3"]
    book = openpyxl.load_workbook(exports / "plan.xlsx")
    assert [[c.value for c in r] for r in book["orders"].iter_rows()] == [
        ["member", "phone", "qty"],
        ["M1", "x", 1],
        ["M3", "y", 3],
    ]
    assert [[c.value for c in r] for r in book["stores"].iter_rows()] == [
        ["store", "city"],
        ["S1", "Shanghai"],
    ]
    assert not list(tree.rglob("*.scrub"))  # no temp file left
    assert scrub_tree(tree, NEEDLES, rows=True) == []  # nothing left to do


def test_without_rows_needles_become_the_mark(tree: Path) -> None:
    exports = tree / "exports"
    report = {Path(s.path).name: (s.kind, s.replaced) for s in scrub_tree(tree, NEEDLES)}

    assert report["plan.csv"] == ("text", 1)
    assert report["step.out"] == ("text", 2)
    assert report["plan.parquet"] == ("parquet", 1)
    assert report["plan.xlsx"] == ("xlsx", 1)
    assert [p for p in files(tree) if holds_needle(p)] == []
    assert (exports / "plan.csv").read_bytes().decode("utf-8") == (
        f'\ufeffmember,note\r\nM1,"two\r\nlines"\r\nM2,{MARK}\r\nM3,"say ""hi"""\r\n'
    )
    assert pl.read_parquet(exports / "plan.parquet")["phone"].to_list() == ["x", MARK, None]
    orders = openpyxl.load_workbook(exports / "plan.xlsx")["orders"]
    assert [c.value for c in orders[3]] == ["M2", f"tel {MARK}", 2]


@pytest.mark.parametrize("needle", ["12345", "erased", " 1 "])
def test_short_needles_are_refused(tmp_path: Path, needle: str) -> None:
    with pytest.raises(ValueError, match="too short"):
        scrub_tree(tmp_path, [PHONE, needle])


def test_unknown_binary_with_a_needle_is_an_error(tmp_path: Path) -> None:
    blob = b"\x00\xff\xfe" + PHONE.encode() + b"\x80"
    (tmp_path / "result.pickle").write_bytes(blob)
    with pytest.raises(ScrubError, match=r"result\.pickle: holds an erased identifier") as caught:
        scrub_tree(tmp_path, [PHONE])
    assert PHONE not in str(caught.value)
    assert (tmp_path / "result.pickle").read_bytes() == blob


def test_a_busy_database_is_an_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(scrub, "BUSY_TIMEOUT", 0.1)
    db = tmp_path / "runs.db"
    with sqlite3.connect(db) as con:
        con.execute("CREATE TABLE t (v TEXT)")
        con.execute("INSERT INTO t VALUES (?)", (PHONE,))
    con.execute("BEGIN IMMEDIATE")  # another writer holds the lock
    try:
        with pytest.raises(ScrubError, match=r"runs\.db: database is locked"):
            scrub_tree(tmp_path, [PHONE])
    finally:
        con.close()
