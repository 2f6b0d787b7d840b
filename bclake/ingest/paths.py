"""Where a source table lives under landing/, the lake and its quarantine; how landing
files are listed and read; how lake files are written (atomically, so a reader never sees
half a file).

landing/ is a drop zone others write, so it is read as untrusted (`list_landing`,
`settle`, `read_landing`): only regular files of `landing/<system>/<table>/` are read, never
through a symbolic link (of the file or of a folder under landing/), never a FIFO, socket,
device or a file with a second hard link, never above the contract's `max_file_mb`; such an
entry is refused unread with a reason. A file is read once its size and modification time
have been stable for `BCLAKE_LANDING_SETTLE_SECONDS` (default 30; no upload-complete marker:
an uploader that stalls longer should write to a hidden `.name` and rename it when done).
"""

from __future__ import annotations

import errno
import os
import stat
import time
import unicodedata
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from bclake.core.contracts import Contract


def table_dir(root: Path, contract: Contract) -> Path:
    """`root/<system>/<table>`: the table's folder under landing/, the lake or its quarantine."""
    return root / contract.system / contract.table


def quarantine_dir(lake: Path, contract: Contract) -> Path:
    """The folder of a table's quarantined rows: `lake/_quarantine/<system>/<table>`."""
    return table_dir(lake / "_quarantine", contract)


def write_parquet_atomic(frame: pl.DataFrame, path: Path) -> None:
    """Write `frame` to a hidden temporary file beside `path`, then rename it into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    frame.write_parquet(tmp)
    os.replace(tmp, path)


# --- reading landing/: an untrusted drop zone ---------------------------------------------

SETTLE_ENV = "BCLAKE_LANDING_SETTLE_SECONDS"
DEFAULT_SETTLE_SECONDS = 30.0
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC
# O_NONBLOCK: a FIFO swapped in after the listing cannot stall the open; O_NOCTTY: a terminal
# device cannot become the process's controlling terminal
_FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY
_KINDS = (
    (stat.S_ISFIFO, "FIFO (named pipe)"),
    (stat.S_ISSOCK, "socket"),
    (stat.S_ISCHR, "character device"),
    (stat.S_ISBLK, "block device"),
    (stat.S_ISDIR, "folder"),
)


class Refused(Exception):
    """A landing entry that is never read; `reason` is one of `symlink`, `not_regular_file`,
    `hard_link`, `file_too_large`, `bad_file_name`, `unreadable_file`, `outside_landing`,
    and the message names the entry, why it is refused and the fix."""

    def __init__(self, reason: str, message: str, rel: str | None = None) -> None:
        super().__init__(message)
        self.reason = reason
        self.rel = rel  # the refused path under landing/, when it is not the file asked for


class NotSettled(Exception):
    """The file changed between its listing and its reading: it is still being written."""


@dataclass(frozen=True)
class LandingFile:
    """One entry of a table's landing folder, as listed without following links."""

    rel: str  # path under landing/: `<system>/<table>/<name>` (a folder's path when refused)
    size: int = 0  # bytes, as listed
    changed_ns: int = 0  # last change of content or inode: max(mtime, ctime), ns since epoch
    # (st_dev, st_ino, st_size, st_mtime_ns) as listed; None: not listed (a ledger path)
    identity: tuple[int, int, int, int] | None = None
    refusal: Refused | None = None  # set when the entry must not be read

    @property
    def name(self) -> str:
        return self.rel.rsplit("/", 1)[-1]


def settle_seconds() -> float:
    """`BCLAKE_LANDING_SETTLE_SECONDS` (default 30): how long a landing file's size and
    modification time must stay unchanged before it is read. Raises ValueError when the
    setting is not a number of seconds >= 0."""
    raw = os.environ.get(SETTLE_ENV, "").strip()
    if not raw:
        return DEFAULT_SETTLE_SECONDS
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not value >= 0:  # also refuses nan
        raise ValueError(f"{SETTLE_ENV}={raw!r} is not a number of seconds >= 0")
    return value


@contextmanager
def _table_folder(landing: Path, parts: list[str]) -> Iterator[int | None]:
    """An open descriptor of `landing/<parts...>`, each part a real folder opened without
    following a link (the landing root itself may be a link: that is the operator's
    choice); None when a part does not exist or is not a folder. Raises Refused
    (`symlink`, its `rel` the linked folder)."""
    fd = _open_folders(landing, parts)
    try:
        yield fd
    finally:
        if fd is not None:
            os.close(fd)


def _open_folders(landing: Path, parts: list[str]) -> int | None:
    try:
        fd = os.open(landing, _DIR_FLAGS)
    except (FileNotFoundError, NotADirectoryError):
        return None
    try:
        for depth, part in enumerate(parts):
            try:
                child = os.open(part, _DIR_FLAGS | os.O_NOFOLLOW, dir_fd=fd)
            except FileNotFoundError:
                os.close(fd)
                return None
            except OSError as error:
                if error.errno not in (errno.ELOOP, errno.ENOTDIR):
                    raise
                if not _is_link(part, fd):
                    os.close(fd)  # a file where a folder belongs, or gone: nothing to read
                    return None
                rel = "/".join(parts[: depth + 1])
                raise Refused(
                    "symlink",
                    f"{rel}: the folder is a symbolic link, and links under landing/ are never "
                    "followed (a link can point at any file on the server); nothing under it "
                    f"is read. Make landing/{rel} a real folder and copy the exports into it.",
                    rel=rel,
                ) from None
            os.close(fd)
            fd = child
    except BaseException:
        os.close(fd)
        raise
    return fd


def _is_link(name: str, folder: int) -> bool:
    try:
        return stat.S_ISLNK(os.stat(name, dir_fd=folder, follow_symlinks=False).st_mode)
    except OSError:
        return False


def _refusal(rel: str, st: os.stat_result, contract: Contract) -> Refused | None:
    """Why an entry (its lstat or fstat) must not be read, or None for a regular file within
    the size limit."""
    folder = f"landing/{contract.system}/{contract.table}/"
    max_bytes = contract.max_file_bytes
    if stat.S_ISLNK(st.st_mode):
        return Refused(
            "symlink",
            f"{rel}: a symbolic link, and links under landing/ are never followed (a link can "
            f"point at any file on the server); it is not read. Copy the file itself into "
            f"{folder}.",
        )
    if not stat.S_ISREG(st.st_mode):
        kind = next((name for test, name in _KINDS if test(st.st_mode)), "special file")
        return Refused(
            "not_regular_file",
            f"{rel}: a {kind}, not a regular file; it is not read. Land exports as regular "
            f"files in {folder}.",
        )
    if st.st_nlink > 1:
        return Refused(
            "hard_link",
            f"{rel}: the file has {st.st_nlink} hard links, so it may be a file from elsewhere "
            f"on the server under a second name; it is not read. Copy it into {folder} "
            "(cp, not ln) and remove the other name.",
        )
    if st.st_size > max_bytes:
        return Refused(
            "file_too_large",
            f"{rel}: {st.st_size:,} bytes, above the {max_bytes:,}-byte limit of "
            f"{contract.key} (contract `max_file_mb: {contract.max_file_mb:g}`); it is not "
            f"read. Split the export (one file per day or month), or raise max_file_mb in "
            f"contracts/{contract.system}/{contract.table}.yaml.",
        )
    return None


def _unshowable(ch: str) -> bool:
    """A control character, or a byte of a name that is not UTF-8 (a lone surrogate)."""
    return unicodedata.category(ch) in ("Cc", "Cs")


def _shown_name(name: str) -> str:
    """A file name as recorded: bytes that are not UTF-8 and control characters as U+FFFD."""
    name = name.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    return "".join("\ufffd" if _unshowable(ch) else ch for ch in name)


def _bad_name(rel: str, name: str, contract: Contract) -> Refused | None:
    """A name that is not UTF-8 or holds control characters (a newline, a terminal escape)
    is refused: it could not be recorded or shown faithfully."""
    if not any(_unshowable(ch) for ch in name):
        return None
    return Refused(
        "bad_file_name",
        f"{rel}: the file name is not UTF-8 or holds control characters; it is not read. "
        f"Rename it (letters, digits, '-', '_', '.') in landing/{contract.system}/"
        f"{contract.table}/.",
    )


def _identity(st: os.stat_result) -> tuple[int, int, int, int]:
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


def list_landing(landing: Path, contract: Contract) -> list[LandingFile]:
    """The entries of `landing/<system>/<table>/`, by name, listed without following links.

    Hidden entries (`.name`, e.g. an upload tool's temporary file) and sub-folders are left
    out. Links, FIFOs, sockets, devices, files with a second hard link and files above the
    contract's `max_file_bytes` come back with `refusal` set and are never opened; a linked
    system or table folder comes back as one refused entry (its path, no file inside read).
    """
    parts = [contract.system, contract.table]
    try:
        with _table_folder(landing, parts) as fd:
            if fd is None:
                return []
            out = []
            with os.scandir(fd) as entries:
                names = sorted(e.name for e in entries if not e.name.startswith("."))
            for name in names:
                try:
                    st = os.stat(name, dir_fd=fd, follow_symlinks=False)
                except FileNotFoundError:  # removed since the listing
                    continue
                if stat.S_ISDIR(st.st_mode):
                    continue
                rel = "/".join([*parts, _shown_name(name)])
                out.append(
                    LandingFile(
                        rel=rel,
                        size=st.st_size,
                        changed_ns=max(st.st_mtime_ns, st.st_ctime_ns),
                        identity=_identity(st),
                        refusal=_bad_name(rel, name, contract) or _refusal(rel, st, contract),
                    )
                )
            return out
    except Refused as refused:
        return [LandingFile(rel=refused.rel or "/".join(parts), refusal=refused)]


def settle(
    landing: Path, files: list[LandingFile], contract: Contract, seconds: float
) -> tuple[list[LandingFile], list[LandingFile]]:
    """(files to read, files still being written) among `files` (from `list_landing`).

    A file is read once its size and modification time have been stable for `seconds`
    (`settle_seconds()`): one whose last change (mtime, or ctime, which an uploader cannot
    set back) is younger is watched until it is that old (at most `seconds` of waiting per
    call) and listed again; if its size, mtime or inode changed meanwhile it is still being
    written and is left for the next run, unread. No upload-complete marker is needed; an
    uploader that pauses longer than `seconds` mid-file must write to a hidden name
    (`.name`) and rename it when done.
    """
    now = time.time_ns()
    limit = int(seconds * 1e9)
    young = {f.rel: f for f in files if f.refusal is None and now - f.changed_ns < limit}
    if not young:
        return files, []
    wait_ns = min(max(f.changed_ns for f in young.values()) + limit - now, limit)
    time.sleep(max(wait_ns, 0) / 1e9)
    again = {f.rel: f for f in list_landing(landing, contract)}
    moving = {
        rel for rel, f in young.items() if rel not in again or again[rel].identity != f.identity
    }
    ready = [again[f.rel] if f.rel in young else f for f in files if f.rel not in moving]
    return ready, [f for f in files if f.rel in moving]


def read_landing(landing: Path, file: LandingFile, contract: Contract) -> bytes:
    """The bytes of one landing file, opened with O_NOFOLLOW below a folder chain opened
    without following links, and checked again on the open descriptor (fstat), so a link,
    FIFO or device swapped in after the listing is refused, not read.

    Raises Refused (see `Refused`; `outside_landing` for a path that is not
    `<system>/<table>/<name>`), NotSettled when the file is not the one listed or changed
    while it was read, FileNotFoundError when it is gone.
    """
    parts = file.rel.split("/")
    if len(parts) != 3 or any(p in ("", ".", "..") or "\x00" in p for p in parts):
        raise Refused(
            "outside_landing",
            f"{file.rel}: not a file of a landing/<system>/<table>/ folder; it is not read.",
        )
    with _table_folder(landing, parts[:2]) as folder:
        if folder is None:
            raise FileNotFoundError(file.rel)
        fd = _open_file(folder, parts[2], file.rel, contract)
    with os.fdopen(fd, "rb") as handle:
        st = os.fstat(fd)
        why = _refusal(file.rel, st, contract)
        if why is not None:
            raise why
        if file.identity is not None and _identity(st) != file.identity:
            raise NotSettled(file.rel)
        data = handle.read(min(st.st_size, contract.max_file_bytes) + 1)
        after = os.fstat(fd)
    if len(data) != st.st_size or _identity(after) != _identity(st):
        raise NotSettled(file.rel)  # written to (or grown past the limit) while read
    return data


def _open_file(folder: int, name: str, rel: str, contract: Contract) -> int:
    """A read-only descriptor of `name` in the open `folder`, never through a link."""
    try:
        return os.open(name, _FILE_FLAGS, dir_fd=folder)
    except OSError as error:
        if error.errno == errno.ELOOP:  # a link swapped in after the listing
            st = os.stat(name, dir_fd=folder, follow_symlinks=False)
            raise _refusal(rel, st, contract) or NotSettled(rel) from None
        if error.errno in (errno.EACCES, errno.EPERM):
            raise Refused(
                "unreadable_file",
                f"{rel}: cannot be opened ({error.strerror}); give the ingest account read "
                "permission on it.",
            ) from None
        if error.errno in (errno.ENXIO, errno.EOPNOTSUPP):  # a socket swapped in
            raise Refused(
                "not_regular_file", f"{rel}: a socket, not a regular file; it is not read."
            ) from None
        raise
