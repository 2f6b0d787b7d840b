"""Export sets: every run's planner files appear together, or not at all.

Planners open `<root>/exports/` (company, region and distributor folders). A run writes
its whole set into a new version folder `<root>/.exports/<version>/`, records which
published warehouse it was read from (`_export_set.json`), and then swaps the symlink
`<root>/exports` to it in one `rename`. Someone browsing `exports/` sees the previous
set or the new one, never a mix of two runs; a file already open keeps its content.
The newest `KEEP` sets are kept, older ones removed; sets older than the retention period
are deleted by `delete_sets_before`.

A data root from before export sets (a real `exports/` folder) is moved once into
`.exports/` as the first version, so nothing a planner had is lost.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TypeVar

VERSIONS_DIR = ".exports"
MANIFEST = "_export_set.json"
KEEP = 3

T = TypeVar("T")


def versions_dir(exports: Path) -> Path:
    return exports.parent / VERSIONS_DIR


def write_export_set(exports: Path, published_db: Path, write: Callable[[Path], T]) -> T:
    """Run `write(folder)` into a fresh version folder, then make it `exports` atomically.

    exports: the path planners open (a symlink after the first set). published_db: the
    warehouse the set is read from; its publish record (`published.json` beside it) is
    copied into the set's manifest. Returns what `write` returns. If `write` raises, the
    half-written folder is removed and `exports` still shows the previous set.
    """
    versions = versions_dir(exports)
    versions.mkdir(parents=True, exist_ok=True)
    _adopt_legacy_folder(exports, versions)
    now = datetime.now(UTC)
    version = f"{now:%Y%m%dT%H%M%S.%f}-{uuid.uuid4().hex[:6]}"
    folder = versions / version
    folder.mkdir()
    try:
        result = write(folder)
        record = published_db.with_suffix(".json")
        published = json.loads(record.read_text()) if record.exists() else {}
        manifest = {
            "version": version,
            "written_at": now.isoformat(timespec="seconds"),
            "warehouse": str(published_db),
            "published_at": published.get("published_at"),
            "warehouse_bytes": published.get("bytes"),
        }
        (folder / MANIFEST).write_text(json.dumps(manifest, indent=2, ensure_ascii=False))
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    link = exports.with_name(f".{exports.name}.{version}.link")
    os.symlink(Path(VERSIONS_DIR) / version, link, target_is_directory=True)
    os.replace(link, exports)
    _prune(versions, keep=version)
    return result


def current_version(exports: Path) -> str | None:
    """The version folder `exports` points at, or None when there is no set yet."""
    if not exports.is_symlink():
        return None
    return Path(os.readlink(exports)).name


def _adopt_legacy_folder(exports: Path, versions: Path) -> None:
    if exports.is_dir() and not exports.is_symlink():
        exports.rename(versions / "00000000T000000.000000-before-sets")


def _prune(versions: Path, keep: str) -> None:
    sets = sorted(p for p in versions.iterdir() if p.is_dir())
    for old in sets[:-KEEP]:
        if old.name != keep:
            shutil.rmtree(old, ignore_errors=True)


def _set_written(folder: Path) -> date:
    """The day (UTC) an export set was written: its version name (`%Y%m%dT...`), else its
    manifest's `written_at`, else the folder's modification time."""
    try:
        return datetime.strptime(folder.name[:15], "%Y%m%dT%H%M%S").date()
    except ValueError:
        pass
    try:
        written = json.loads((folder / MANIFEST).read_text())["written_at"]
        return datetime.fromisoformat(written).astimezone(UTC).date()
    except (OSError, ValueError, KeyError, TypeError):
        return datetime.fromtimestamp(folder.stat().st_mtime, UTC).date()


def delete_sets_before(exports: Path, before: date) -> int:
    """Delete the export sets written before `before` (UTC day); returns how many. The
    current set goes too when it is that old, and the `exports` link pointing at it with
    it: planners then see no set until a run writes a new one."""
    versions = versions_dir(exports)
    if not versions.is_dir():
        return 0
    deleted = 0
    for folder in sorted(p for p in versions.iterdir() if p.is_dir() and not p.is_symlink()):
        if _set_written(folder) < before:
            shutil.rmtree(folder)
            deleted += 1
    if deleted and exports.is_symlink() and not exports.exists():
        os.unlink(exports)
    return deleted
