"""`bclake rotate-pii-key`: the lake, the erasure list, the working and published warehouse,
the planner export sets and the run logs moved to a new pseudonymisation key.

The lake step is `ingest.rotation` (read its docstring for what is rehashed and why a
rotation chains keys instead of starting afresh). Order, under the data root's writer lock:

1. the mapping old -> new pseudonym is built from the lake once and kept (0600) in the
   private folder; while it exists every ingest refuses to run, and running the command
   again with the same keys finishes the rotation from it (each step is idempotent);
2. the lake parts, the erasure list, the warehouse files (the published one as a copy
   renamed into place; both compacted, so no freed block keeps an old value), the export
   sets and `DAGSTER_HOME` (stop Dagster first);
3. the lake's key record names the new chain, the mapping is deleted.

No key is written to disk: the new key comes from the environment (`BCLAKE_PII_KEY_NEW`),
never the command line (shell history, `ps`), and the old keys stay where they were.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import duckdb
import polars as pl

from bclake.core.locks import writer_lock
from bclake.core.pii import PiiKey
from bclake.core.scrub import rekey_tree
from bclake.core.settings import DEMO_PII_KEY, Settings
from bclake.core.warehouse import compact, rekey_values
from bclake.exports.versions import versions_dir
from bclake.ingest.rotation import (
    KeyMismatch,
    build_mapping,
    key_check,
    key_path,
    mapping_path,
    rekey_lake,
    rekey_text,
    reseal_subjects,
    write_key_check,
)

NEW_KEY_ENV = "BCLAKE_PII_KEY_NEW"
MIN_KEY_CHARS = 16
_RUN = "[a-z2-7]{52}"


@dataclass(frozen=True)
class Rotation:
    """What one rotation did (counts, no pseudonym)."""

    pseudonyms: int  # distinct old pseudonyms mapped
    lake_parts: int  # Parquet files of the lake rewritten
    erasure_rows: int  # rows of the erasure list resealed
    warehouse_values: dict[str, int]  # values changed per warehouse file
    files: int  # export and run-log files rewritten
    seconds: float


def check_new_key(settings: Settings, new_key: str) -> None:
    """Raises ValueError when `new_key` is empty, shorter than 16 characters, the public
    demo key, or already in the chain."""
    if not new_key:
        raise ValueError(f"set {NEW_KEY_ENV} to the new key (at least {MIN_KEY_CHARS} characters)")
    if len(new_key) < MIN_KEY_CHARS:
        raise ValueError(f"{NEW_KEY_ENV} must be at least {MIN_KEY_CHARS} characters long")
    if new_key == DEMO_PII_KEY:
        raise ValueError(f"{NEW_KEY_ENV} is the public demo key: choose a secret")
    if new_key in _chain(settings.pii_keys):
        raise ValueError(f"{NEW_KEY_ENV} is a key this lake has used already")


def rotate(
    settings: Settings,
    new_key: str,
    dagster_home: Path | None = None,
    log: Callable[[str], None] = print,
) -> Rotation:
    """Move every pseudonym under the data root to `new_key` (see the module docstring).

    Raises ValueError for an unfit key (`check_new_key`), `ingest.rotation.KeyMismatch`
    when the configured keys are not the lake's (or not those of a rotation cut short),
    RuntimeError while an erasure is pending, `core.locks.DataRootBusy` never (it waits
    for the writer lock), `core.scrub.ScrubError` for a file that cannot be rewritten
    (fix it and run again: the rotation resumes)."""
    started = time.perf_counter()
    check_new_key(settings, new_key)
    old = settings.pii_keys
    new_chain = (*_chain(old), new_key)
    with writer_lock(settings.home, "rotating the PII key", log=log):
        if (settings.private_dir / "erasure_pending.json").exists():
            raise RuntimeError(
                "an erasure is still pending: run `bclake pipeline` to finish it first"
            )
        mapping = _mapping(settings, old, new_key, log)
        lookup = dict(zip(mapping["old"], mapping["new"], strict=True))
        log(f"{len(lookup)} pseudonyms to move; rewriting the lake")
        parts = rekey_lake(settings, lookup, _every(log, "lake parts checked"))
        resealed = reseal_subjects(settings, lookup, settings.pii_key, new_key)
        warehouse = {}
        for db in (settings.build_db, settings.published_db):
            if db.exists():
                log(f"rewriting {db.name}")
                warehouse[db.name] = _rekey_warehouse(db, lookup)
        files = 0
        exports = versions_dir(settings.exports)
        for root in (exports, dagster_home):
            if root is not None and root.is_dir():
                log(f"rewriting files under {root}")
                files += len(rekey_tree(root, lookup))
        write_key_check(settings, new_chain)
        mapping_path(settings).unlink()
    return Rotation(len(lookup), parts, resealed, warehouse, files, time.perf_counter() - started)


def _chain(key: PiiKey) -> tuple[str, ...]:
    return (key,) if isinstance(key, str) else tuple(key)


def _mapping(
    settings: Settings, old: PiiKey, new_key: str, log: Callable[[str], None]
) -> pl.DataFrame:
    """The rotation's mapping: the one a rotation cut short left (when the keys are the
    same: checked by its recorded fingerprints), or a new one built from the lake and
    saved (0600) before anything changes."""
    path = mapping_path(settings)
    old_check, new_check = key_check(old), key_check((*_chain(old), new_key))
    if path.exists():
        meta = pl.read_parquet_metadata(path)
        if meta.get("from") != old_check or meta.get("to") != new_check:
            raise KeyMismatch(
                f"{path}: a rotation cut short between other keys; set the keys it was "
                "started with and run the command again"
            )
        log("finishing the rotation cut short")
        return pl.read_parquet(path)
    recorded = key_path(settings)
    if recorded.exists() and json.loads(recorded.read_text()).get("check") != old_check:
        raise KeyMismatch(
            "BCLAKE_PII_KEY and BCLAKE_PII_KEY_RETIRED are not the keys this lake was "
            f"written with ({recorded}); set them before rotating"
        )
    log("finding the pseudonyms the lake holds")
    mapping = build_mapping(settings, old, new_key)
    settings.private_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.close(fd)
    mapping.write_parquet(tmp, metadata={"from": old_check, "to": new_check})
    os.replace(tmp, path)
    return mapping


def _every(log: Callable[[str], None], what: str) -> Callable[[int, int], None]:
    last = [time.monotonic()]

    def progress(done: int, total: int) -> None:
        if done == total or time.monotonic() - last[0] > 10:
            last[0] = time.monotonic()
            log(f"{done}/{total} {what}")

    return progress


def _rekey_warehouse(db: Path, lookup: dict[str, str]) -> int:
    """Swap old pseudonyms for new in the DuckDB file `db`, then compact it; the published
    file on a copy renamed into place (readers may hold it open). A file holding no old
    pseudonym is left as it is (a read-only look first). Returns values changed."""
    with duckdb.connect(str(db), read_only=True) as con:
        if not rekey_values(con, _RUN, lambda value: rekey_text(value, lookup), apply=False):
            return 0  # no old pseudonym in it: nothing to rewrite, no freed block to clear
    published = db.name.startswith("published")
    work = db.with_name(f".{db.name}.rekey") if published else db
    if published:
        shutil.copyfile(db, work)
    try:
        con = duckdb.connect(str(work))
        try:
            changed = rekey_values(con, _RUN, lambda value: rekey_text(value, lookup))
        finally:
            con.close()
        compact(work)
        if published:
            os.replace(work, db)
        return sum(changed.values())
    finally:
        if published:
            work.unlink(missing_ok=True)
