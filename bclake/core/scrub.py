"""Erase a consumer's identifiers (PIPL) from files kept outside the lake and the warehouse.

`scrub_tree` rewrites every regular file under a folder (DAGSTER_HOME, bclake's logs, planner
export sets) that holds a needle, as UTF-8, in its bytes, its -wal/-journal (SQLite), its
members (zip, .xlsx), its content (gzip) or its string cells (Parquet). Symlinks are skipped.

- `sqlite` (by header): needles become `MARK` in the text and blob values of every table
  (views, `sqlite_` and shadow tables aside) in one transaction; then WAL checkpoint, VACUUM
  and checkpoint, so no free page or WAL frame keeps the text. Stop Dagster first.
- `csv` (`rows=True`; .csv, .tsv): records with a needle go; every other byte stays.
- `parquet`, `xlsx`: rows with a needle in a cell go (`rows=True`), else the needle becomes
  `MARK` in the cell; types and other rows and sheets stay (openpyxl drops charts, images).
- `text` (anything else; csv with `rows=False`): needles become `MARK`; not UTF-8: error.

Other files than SQLite ones are replaced atomically (temp file beside, fsync, `os.replace`,
mode kept). A file still holding a needle afterwards (an FTS index, a sheet name, an Enum
column...) raises `ScrubError`. Messages name files, never identifiers.

`rekey_tree` walks the same files with the same handlers, replacing each old pseudonym by
its new one (a key rotation) instead of `MARK`; it looks for the pseudonyms a file actually
holds first (52-character base32 runs), so a mapping of a million entries stays cheap.
"""

from __future__ import annotations

import contextlib
import csv
import gzip
import io
import os
import re
import sqlite3
import stat
import tempfile
import zipfile
from collections.abc import Callable, Collection, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import openpyxl
import polars as pl

MARK = "[erased]"
MIN_NEEDLE = 6  # characters: a shorter needle hits unrelated text
SQLITE_HEADER = b"SQLite format 3\x00"
BUSY_TIMEOUT = 5.0  # seconds to wait for an SQLite lock
_SIDECARS = ("-wal", "-journal", "-shm")


class ScrubError(RuntimeError):
    """A file holds a needle that `scrub_tree` cannot remove, or could not be rewritten."""


@dataclass(frozen=True)
class Scrubbed:
    path: str
    kind: str  # sqlite, text, csv, parquet or xlsx
    replaced: int  # occurrences replaced; rows removed for csv, and parquet/xlsx with rows


def scrub_tree(root: Path, needles: Collection[str], *, rows: bool = False) -> list[Scrubbed]:
    """Remove every needle from the regular files under `root`; one `Scrubbed` per rewritten
    file (walk order). Empty needles are skipped. Raises `ValueError` for a needle shorter
    than `MIN_NEEDLE` characters or inside `MARK`, `NotADirectoryError` when `root` is not a
    folder, `ScrubError` for a file that cannot be rewritten or still holds a needle after
    (files before it are already scrubbed; fix it and run again)."""
    keys = sorted({n for n in needles if n}, key=len, reverse=True)  # longest first
    for n in keys:
        if len(n) < MIN_NEEDLE or n in MARK:
            raise ValueError(f"a needle of {len(n)} characters: too short or inside {MARK!r}")
    if not root.is_dir():
        raise NotADirectoryError(f"{root}: not a folder")
    done: list[Scrubbed] = []
    marks = dict.fromkeys(keys, MARK)
    for path in _files(root) if keys else ():
        data = path.read_bytes()
        kind = _kind(path, data, rows)
        if _holds(path, data, kind, keys):
            replaced = _HANDLERS[kind](path, data, marks, rows)
            if _holds(path, path.read_bytes(), kind, keys):
                raise ScrubError(f"{path}: still holds an erased identifier after rewriting")
            done.append(Scrubbed(str(path), kind, replaced))
    return done


PSEUDONYM_RUN = re.compile(r"[a-z2-7]{52,}")  # where a pseudonym (52 base32 characters) sits


def rekey_tree(root: Path, mapping: Mapping[str, str]) -> list[Scrubbed]:
    """Replace every old pseudonym (a key of `mapping`) by its new one in the regular files
    under `root` (as `scrub_tree` without `rows`); one `Scrubbed` per rewritten file.
    Idempotent: a new pseudonym is not a key. Raises `NotADirectoryError`, `ScrubError`
    (as `scrub_tree`; messages name files only)."""
    if not root.is_dir():
        raise NotADirectoryError(f"{root}: not a folder")
    done: list[Scrubbed] = []
    for path in _files(root) if mapping else ():
        data = path.read_bytes()
        kind = _kind(path, data, False)
        present = _pseudonyms(path, data, kind) & mapping.keys()
        if present:
            keys = sorted(present)
            replaced = _HANDLERS[kind](path, data, {k: mapping[k] for k in keys}, False)
            if _holds(path, path.read_bytes(), kind, keys):
                raise ScrubError(f"{path}: still holds an old pseudonym after rewriting")
            done.append(Scrubbed(str(path), kind, replaced))
    return done


def windows(text: str) -> set[str]:
    """Every 52-character stretch of the base32 runs in `text`: the places a pseudonym
    can sit, glued to letters or not."""
    return {run[i : i + 52] for run in PSEUDONYM_RUN.findall(text) for i in range(len(run) - 51)}


def _pseudonyms(path: Path, data: bytes, kind: str) -> set[str]:
    """The 52-character base32 stretches `path` holds: in its bytes, its SQLite sidecars,
    its gzip content or zip members, its Parquet string cells."""
    found = set().union(*(windows(b.decode("latin-1")) for b in _blobs(path, data, kind)))
    if kind == "parquet":
        frame = pl.read_parquet(path)
        for c, t in frame.schema.items():
            if t in (pl.String, pl.Categorical, pl.Enum):
                for value in frame[c].cast(pl.String).drop_nulls().unique():
                    found |= windows(value)
    return found


def _files(root: Path) -> Iterator[Path]:
    """Regular files under `root`, sidecars of SQLite files aside (scrubbed with them)."""
    for folder, _, names in os.walk(root):
        for path in (Path(folder, name) for name in sorted(names)):
            base = next((path.name[: -len(e)] for e in _SIDECARS if path.name.endswith(e)), "")
            try:
                if stat.S_ISREG(path.lstat().st_mode) and not (base and _head(base, path)):
                    yield path
            except FileNotFoundError:  # a WAL removed when its database was closed
                continue


def _head(base: str, sidecar: Path) -> bool:
    """Whether `base` beside `sidecar` is an SQLite file."""
    with contextlib.suppress(OSError), sidecar.with_name(base).open("rb") as f:
        return f.read(16) == SQLITE_HEADER
    return False


def _kind(path: Path, data: bytes, rows: bool) -> str:
    if data.startswith(SQLITE_HEADER):
        return "sqlite"
    if data.startswith(b"PAR1") and data.endswith(b"PAR1"):
        return "parquet"
    if path.suffix.lower() == ".xlsx" and data.startswith(b"PK\x03\x04"):
        return "xlsx"
    return "csv" if rows and path.suffix.lower() in (".csv", ".tsv") else "text"


def _blobs(path: Path, data: bytes, kind: str) -> list[bytes]:
    """The bytes a file's text can sit in: its own, its SQLite sidecars', its gzip content
    or its zip members' (a damaged archive: the raw bytes alone)."""
    blobs = [data]
    if kind == "sqlite":
        blobs += [p.read_bytes() for e in _SIDECARS if (p := Path(f"{path}{e}")).is_file()]
    try:
        if data.startswith(b"\x1f\x8b"):
            blobs.append(gzip.decompress(data))
        elif data.startswith(b"PK\x03\x04"):
            with zipfile.ZipFile(io.BytesIO(data)) as z:
                blobs += [z.read(m) for m in z.namelist()]
    except (OSError, EOFError, zipfile.BadZipFile):
        pass
    return blobs


def _holds(path: Path, data: bytes, kind: str, keys: list[str]) -> bool:
    if kind == "parquet":
        frame = pl.read_parquet(path)
        if frame.select(_hit(frame, keys).any()).item():
            return True
    return any(n.encode() in b for b in _blobs(path, data, kind) for n in keys)


def _atomic(path: Path, write: Callable[[Path], object]) -> None:
    """`write(tmp)` to a temp file beside `path`, fsync it, give it the mode of `path`, and
    replace `path` by it; the temp file is removed on failure."""
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".scrub")
    os.close(fd)
    tmp = Path(name)
    try:
        write(tmp)
        with tmp.open("rb+") as f:
            os.fsync(f.fileno())
        tmp.chmod(stat.S_IMODE(path.stat().st_mode))
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _decode(path: Path, data: bytes) -> str:
    try:
        return data.decode("utf-8")  # a BOM stays a character, written back as it was
    except UnicodeDecodeError:
        raise ScrubError(
            f"{path}: holds an erased identifier in a format bclake cannot rewrite; "
            "delete it or rewrite it by hand"
        ) from None


def _swap(text: str, marks: dict[str, str]) -> tuple[str, int]:
    """`text` with each key of `marks` replaced by its value (`MARK` when erasing), and
    the number of replacements."""
    count = 0
    for n, mark in marks.items():
        count += text.count(n)
        text = text.replace(n, mark)
    return text, count


def _text(path: Path, data: bytes, marks: dict[str, str], _rows: bool) -> int:
    text, count = _swap(_decode(path, data), marks)
    _atomic(path, lambda tmp: tmp.write_bytes(text.encode("utf-8")))
    return count


def _csv(path: Path, data: bytes, marks: dict[str, str], _rows: bool) -> int:
    """Drop each record (one line, or more for quoted line breaks) holding a key."""
    keys = list(marks)
    text = _decode(path, data)
    record: list[str] = []
    kept: list[str] = []
    removed = 0

    def lines() -> Iterator[str]:  # the reader pulls exactly the lines of one record a step
        for line in io.StringIO(text, newline=""):
            record.append(line)
            yield line

    try:
        for cells in csv.reader(lines()):
            raw = "".join(record)
            record.clear()
            if _has(raw, keys) or any(_has(c, keys) for c in cells):
                removed += 1
            else:
                kept.append(raw)
    except csv.Error as e:
        raise ScrubError(f"{path}: {e}") from None
    _atomic(path, lambda tmp: tmp.write_bytes("".join(kept).encode("utf-8")))
    return removed


def _has(text: str, keys: list[str]) -> bool:
    return any(n in text for n in keys)


def _hit(frame: pl.DataFrame, keys: list[str]) -> pl.Expr:
    """Per row, whether a string, categorical or enum cell holds a key."""
    parts = [
        pl.col(c).cast(pl.String).str.contains(n, literal=True).fill_null(False)
        for c, t in frame.schema.items()
        if t in (pl.String, pl.Categorical, pl.Enum)
        for n in keys
    ]
    return pl.any_horizontal(parts) if parts else pl.lit(False)


def _parquet(path: Path, _data: bytes, marks: dict[str, str], rows: bool) -> int:
    out = frame = pl.read_parquet(path)
    if rows:
        out = frame.filter(~_hit(frame, list(marks)))
        count = frame.height - out.height
    else:  # an Enum cannot take MARK: left as is, then reported by the check after
        count = 0
        for c, t in frame.schema.items():
            if t in (pl.String, pl.Categorical):
                cells = [_swap(v, marks) if v else (v, 0) for v in frame[c].cast(pl.String)]
                count += sum(k for _, k in cells)
                out = out.with_columns(pl.Series(c, [v for v, _ in cells]).cast(t))
    _atomic(path, out.write_parquet)
    return count


def _xlsx(path: Path, _data: bytes, marks: dict[str, str], rows: bool) -> int:
    keys = list(marks)
    book = openpyxl.load_workbook(path)
    count = 0
    for sheet in book.worksheets:
        for cells in reversed(list(sheet.iter_rows())):  # bottom up: deleting keeps indices
            hits = [c for c in cells if c.value is not None and _has(str(c.value), keys)]
            if hits and rows:
                sheet.delete_rows(cells[0].row)
                count += 1
            for cell in hits if not rows else ():
                cell.value, k = _swap(str(cell.value), marks)
                count += k
    _atomic(path, book.save)
    return count


def _sqlite(path: Path, _data: bytes, marks: dict[str, str], _rows: bool) -> int:
    """Occurrences replaced; closing with the transaction open rolls it back."""
    con = sqlite3.connect(path, isolation_level=None, timeout=BUSY_TIMEOUT)
    try:
        con.execute("PRAGMA secure_delete = ON")
        con.execute("BEGIN IMMEDIATE")
        listed = con.execute("PRAGMA main.table_list").fetchall()  # schema, name, type, ...
        count = sum(
            _sqlite_table(con, name, marks)
            for _, name, kind, *_ in listed
            if kind in ("table", "virtual") and not name.startswith("sqlite_")
        )
        con.execute("COMMIT")
        for sql in ("PRAGMA wal_checkpoint(TRUNCATE)", "VACUUM", "PRAGMA wal_checkpoint(TRUNCATE)"):
            if (con.execute(sql).fetchone() or (0,))[0]:
                raise ScrubError(f"{path}: in use by another process; stop Dagster and retry")
    except sqlite3.Error as e:
        raise ScrubError(f"{path}: {e}") from None
    finally:
        con.close()
    return count


def _sqlite_table(con: sqlite3.Connection, table: str, marks: dict[str, str]) -> int:
    """Replace in the text and blob values of `table` (blobs stay blobs; `table_info` leaves
    out generated and hidden columns); the number of occurrences replaced."""
    t = _quote(table)
    count = 0
    for column in [row[1] for row in con.execute(f"PRAGMA table_info({t})")]:
        c = _quote(column)
        for kind in ("TEXT", "BLOB"):
            where = f"WHERE typeof({c}) = '{kind.lower()}' AND instr({c}, ?1) > 0"
            gone = f"length(CAST({c} AS BLOB)) - length(CAST(replace({c}, ?1, '') AS BLOB))"
            for n, mark in marks.items():
                sql = f"SELECT coalesce(sum({gone}), 0) FROM {t} {where}"
                if size := con.execute(sql, (n,)).fetchone()[0]:
                    set_ = f"{c} = CAST(replace({c}, ?1, ?2) AS {kind})"
                    con.execute(f"UPDATE {t} SET {set_} {where}", (n, mark))
                    count += size // len(n.encode())
    return count


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


_HANDLERS = {"sqlite": _sqlite, "text": _text, "csv": _csv, "parquet": _parquet, "xlsx": _xlsx}
