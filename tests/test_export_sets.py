"""Export sets: planners see one run's files or the next run's, never a mix."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bclake.exports.versions import (
    KEEP,
    MANIFEST,
    current_version,
    versions_dir,
    write_export_set,
)


def _published(root: Path, stamp: str) -> Path:
    db = root / "warehouse" / "published.duckdb"
    db.parent.mkdir(parents=True, exist_ok=True)
    db.write_bytes(b"x")
    db.with_suffix(".json").write_text(json.dumps({"published_at": stamp, "bytes": 1}))
    return db


def _files(run: str, n: int = 3):
    def write(folder: Path) -> int:
        for i in range(n):
            (folder / "company").mkdir(exist_ok=True)
            (folder / "company" / f"t{i}.csv").write_text(run)
        return n

    return write


def test_a_set_appears_whole_and_names_its_warehouse(tmp_path: Path) -> None:
    exports = tmp_path / "exports"
    db = _published(tmp_path, "2026-11-30T01:00:00")
    assert write_export_set(exports, db, _files("run 1")) == 3
    assert exports.is_symlink() and current_version(exports)
    assert {p.read_text() for p in (exports / "company").iterdir()} == {"run 1"}
    manifest = json.loads((exports / MANIFEST).read_text())
    assert manifest["published_at"] == "2026-11-30T01:00:00"
    assert manifest["version"] == current_version(exports)


def test_the_next_set_replaces_the_whole_folder_at_once(tmp_path: Path) -> None:
    exports = tmp_path / "exports"
    db = _published(tmp_path, "a")
    write_export_set(exports, db, _files("run 1", n=3))
    old = exports.resolve()
    write_export_set(exports, _published(tmp_path, "b"), _files("run 2", n=2))
    # the new set only: a table the new run no longer writes is gone, none is from run 1
    assert sorted(p.name for p in (exports / "company").iterdir()) == ["t0.csv", "t1.csv"]
    assert {p.read_text() for p in (exports / "company").iterdir()} == {"run 2"}
    # whoever was reading the previous set still can
    assert (old / "company" / "t2.csv").read_text() == "run 1"


def test_a_failed_run_leaves_the_previous_set_and_no_half_folder(tmp_path: Path) -> None:
    exports = tmp_path / "exports"
    db = _published(tmp_path, "a")
    write_export_set(exports, db, _files("run 1"))
    before = current_version(exports)

    def broken(folder: Path) -> None:
        _files("run 2")(folder)
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        write_export_set(exports, db, broken)
    assert current_version(exports) == before
    assert {p.read_text() for p in (exports / "company").iterdir()} == {"run 1"}
    assert [p.name for p in versions_dir(exports).iterdir()] == [before]


def test_a_folder_from_before_sets_is_kept_as_the_first_version(tmp_path: Path) -> None:
    exports = tmp_path / "exports"
    (exports / "company").mkdir(parents=True)
    (exports / "company" / "old.csv").write_text("kept")
    write_export_set(exports, _published(tmp_path, "a"), _files("run 1"))
    legacy = [p for p in versions_dir(exports).iterdir() if "before-sets" in p.name]
    assert len(legacy) == 1 and (legacy[0] / "company" / "old.csv").read_text() == "kept"


def test_only_the_newest_sets_are_kept(tmp_path: Path) -> None:
    exports = tmp_path / "exports"
    db = _published(tmp_path, "a")
    for run in range(KEEP + 2):
        write_export_set(exports, db, _files(f"run {run}"))
    kept = sorted(p.name for p in versions_dir(exports).iterdir())
    assert len(kept) == KEEP and kept[-1] == current_version(exports)
    assert not list(tmp_path.glob(".exports.*.link"))
