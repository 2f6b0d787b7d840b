"""Object storage: publish a folder to a store URI as immutable versions behind a pointer.

A data root's working files (the lake the ingest writes, its ledger and quarantine, the
working warehouse) live on a local disk, where a rename is atomic and erasure can rewrite a
file in place. What other machines read (the lake for the warehouse build, the published
warehouse, the planner files) can also live in a *store*: any fsspec URI, `s3://bucket/prefix`
(s3fs), `file:///mnt/share/bclake` or a plain path (`BCLAKE_STORE`, options as JSON in
`BCLAKE_STORE_OPTIONS`, e.g. `{"endpoint_url": "http://minio:9000"}`; credentials as the
file system reads them, for S3 the usual `AWS_*` variables).

Object storage has no rename, so publishing cannot swap a folder in place. Instead each
publication writes a new version under `<store>/<name>/_versions/<version>/`, then its
manifest (`_manifest.json`: every file, its size and SHA-256), then replaces the pointer
object `<store>/<name>/CURRENT` with one PUT, which S3 makes visible whole or not at all
(strong read-after-write consistency). A reader resolves the pointer once (`current`) and
reads that version's folder with any engine (DuckDB, polars, Spark): it never sees a
half-published version, and a failed publication leaves the pointer where it was. Files
unchanged since the previous version are copied inside the store (a server-side copy on
S3), not uploaded again. Old versions are deleted by `prune`, which keeps a few for readers
still at work and none that a later erasure has made stale.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import fsspec
from fsspec.implementations.local import LocalFileSystem

POINTER = "CURRENT"
VERSIONS = "_versions"
MANIFEST = "_manifest.json"
OPTIONS_ENV = "BCLAKE_STORE_OPTIONS"


@dataclass(frozen=True)
class Store:
    """A store: a file system (fsspec) and the root path inside it.

    `uri` is what the user gave (`s3://bucket/prefix`, `file:///path`, `/path`).
    """

    uri: str
    fs: fsspec.AbstractFileSystem
    root: str

    @classmethod
    def from_uri(cls, uri: str, options: dict | None = None) -> Store:
        """The store at `uri`, its file system made with `options` (keyword arguments of the
        fsspec implementation; default: `BCLAKE_STORE_OPTIONS` as JSON). Raises ValueError
        for options that are not a JSON object, and fsspec's ValueError or ImportError for
        a protocol no installed package serves."""
        if options is None:
            raw = os.environ.get(OPTIONS_ENV, "").strip()
            try:
                options = json.loads(raw) if raw else {}
            except json.JSONDecodeError as error:
                raise ValueError(
                    f"{OPTIONS_ENV} is not JSON ({error}): give an object, "
                    'e.g. {"endpoint_url": "http://localhost:9000"}'
                ) from error
            if not isinstance(options, dict):
                raise ValueError(f"{OPTIONS_ENV} must be a JSON object, not {raw!r}")
        fs, root = fsspec.core.url_to_fs(uri, **options)
        return cls(uri=uri, fs=fs, root=root.rstrip("/"))

    @property
    def is_local(self) -> bool:
        return isinstance(self.fs, LocalFileSystem)

    def path(self, *parts: str) -> str:
        """A path inside the file system (no protocol), `root/part/...`."""
        return "/".join([self.root, *(p.strip("/") for p in parts if p)])

    def url(self, *parts: str) -> str:
        """A full URL (with the protocol for a remote store) that DuckDB, polars or Spark
        can read, given the same file system (`register_store`)."""
        path = self.path(*parts)
        return path if self.is_local else self.fs.unstrip_protocol(path)


@dataclass(frozen=True)
class Version:
    """One published version of a folder: its id, when, and where its files are."""

    name: str
    version: str
    published_at: datetime
    url: str  # the version's folder, readable by DuckDB / polars / Spark
    files: int
    bytes: int
    uploaded: int = 0  # files written in this publication
    copied: int = 0  # files copied inside the store from the previous version


def current(store: Store, name: str) -> Version | None:
    """The version `<store>/<name>/CURRENT` points to, or None when nothing is published."""
    pointer = store.path(name, POINTER)
    try:
        record = json.loads(store.fs.cat_file(pointer))
    except FileNotFoundError:
        return None
    return _version(store, name, record)


def publish_tree(
    store: Store,
    name: str,
    folder: Path,
    *,
    include: Callable[[str], bool] | None = None,
) -> Version:
    """Publish the files under `folder` (paths relative to it, forward slashes, for which
    `include`, when given, is true; hidden files and folders, `.name`, never) as a new
    version of `name`.

    Files whose SHA-256 matches the previous version's are copied inside the store; the
    others are uploaded. The manifest is written after every file and the pointer after the
    manifest, so an error anywhere (raised to the caller) leaves readers on the previous
    version; the half-written version folder is removed by the next `prune`. Returns the new
    `Version`. Raises FileNotFoundError when `folder` does not exist.
    """
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder} is not a folder: nothing to publish as {name}")
    previous = current(store, name)
    before = _manifest(store, previous) if previous else {}
    version = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ") + "-" + secrets.token_hex(3)
    files: dict[str, dict] = {}
    copies: tuple[list[str], list[str]] = ([], [])
    uploads: tuple[list[str], list[str]] = ([], [])
    for rel, path in _files(folder):
        if include is not None and not include(rel):
            continue
        digest = _sha256(path)
        old = before.get(rel)
        if previous and old and old["sha256"] == digest:
            copies[0].append(store.path(name, VERSIONS, previous.version, rel))
            copies[1].append(store.path(name, VERSIONS, version, rel))
        else:
            uploads[0].append(str(path))
            uploads[1].append(store.path(name, VERSIONS, version, rel))
        files[rel] = {"bytes": path.stat().st_size, "sha256": digest}
    if store.is_local:  # fsspec's local copy and put do not make the folders
        for target in {t.rsplit("/", 1)[0] for t in [*copies[1], *uploads[1]]}:
            store.fs.makedirs(target, exist_ok=True)
    # lists: an async file system (s3fs) runs the requests concurrently
    if copies[0]:
        store.fs.copy(*copies)
    if uploads[0]:
        store.fs.put(*uploads)
    uploaded, copied = len(uploads[0]), len(copies[0])
    published_at = datetime.now(UTC)
    record = {
        "version": version,
        "published_at": published_at.isoformat(),
        "files": len(files),
        "bytes": sum(f["bytes"] for f in files.values()),
        "uploaded": uploaded,
        "copied": copied,
    }
    _write_whole(store, store.path(name, VERSIONS, version, MANIFEST), {**record, "tree": files})
    _write_whole(store, store.path(name, POINTER), record)
    return _version(store, name, record)


def publish_file(store: Store, name: str, path: Path) -> Version:
    """Publish the one file `path` as a new version of `name` (`publish_tree` of a folder
    holding only it): readers find it at `<version url>/<file name>`."""
    return publish_tree(store, name, path.parent, include=lambda rel: rel == path.name)


def versions(store: Store, name: str) -> list[str]:
    """Every version folder under `<store>/<name>/_versions/`, oldest first (ids sort by
    time), complete or not."""
    try:
        found = store.fs.ls(store.path(name, VERSIONS), detail=False)
    except FileNotFoundError:
        return []
    return sorted(p.rstrip("/").rsplit("/", 1)[-1] for p in found)


def prune(
    store: Store, name: str, keep: int = 2, stale_before: datetime | None = None
) -> list[str]:
    """Delete old versions of `name`; returns the ids deleted.

    The current version is never deleted. Of the complete versions before it, the `keep`
    newest stay (readers that resolved the pointer a publication or two ago are still
    reading them), unless published before `stale_before`: a version older than the last
    erasure or retention run holds rows that must be gone, so it is deleted at once.
    Version folders without a manifest (a publication that failed) older than the current
    one are deleted too.
    """
    now = current(store, name)
    if now is None:
        return []
    older = [v for v in versions(store, name) if v < now.version]
    complete = []
    deleted = []
    for version in older:
        try:
            record = json.loads(store.fs.cat_file(store.path(name, VERSIONS, version, MANIFEST)))
        except FileNotFoundError:
            record = None
        if record is None:
            deleted.append(version)
            continue
        published = datetime.fromisoformat(record["published_at"])
        if stale_before is not None and published < stale_before:
            deleted.append(version)
        else:
            complete.append(version)
    deleted += complete[: max(len(complete) - keep, 0)]
    for version in deleted:
        store.fs.rm(store.path(name, VERSIONS, version), recursive=True)
    return sorted(deleted)


def fetch_current(store: Store, name: str, file_name: str, target: Path) -> Version | None:
    """Download `file_name` of the current version of `name` to `target` (atomically: a
    hidden temporary file renamed into place) unless `target` already holds that version
    (recorded beside it as `<target>.version`). Returns the version, or None when nothing
    is published."""
    now = current(store, name)
    if now is None:
        return None
    stamp = target.with_name(target.name + ".version")
    if target.exists() and stamp.exists() and stamp.read_text().strip() == now.version:
        return now
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.tmp")
    store.fs.get_file(store.path(name, VERSIONS, now.version, file_name), str(tmp))
    os.replace(tmp, target)
    stamp.write_text(now.version)
    return now


def register_store(con: object, store: Store) -> None:
    """Let the DuckDB connection `con` read the store's URLs (a remote store's fsspec file
    system registered with `DuckDBPyConnection.register_filesystem`; nothing for a local
    one). DuckDB's own S3 reader (httpfs) is an extension it would download at run time."""
    if not store.is_local:
        registered = set(con.list_filesystems())  # type: ignore[attr-defined]
        protocol = store.fs.protocol
        protocols = protocol if isinstance(protocol, tuple) else (protocol,)
        if not any(p in registered for p in protocols):
            con.register_filesystem(store.fs)  # type: ignore[attr-defined]


# --- internals -----------------------------------------------------------------------------


def _version(store: Store, name: str, record: dict) -> Version:
    return Version(
        name=name,
        version=record["version"],
        published_at=datetime.fromisoformat(record["published_at"]),
        url=store.url(name, VERSIONS, record["version"]),
        files=int(record["files"]),
        bytes=int(record["bytes"]),
        uploaded=int(record.get("uploaded", 0)),
        copied=int(record.get("copied", 0)),
    )


def _manifest(store: Store, version: Version) -> dict[str, dict]:
    raw = store.fs.cat_file(store.path(version.name, VERSIONS, version.version, MANIFEST))
    return json.loads(raw)["tree"]


def _write_whole(store: Store, path: str, record: dict) -> None:
    """Write a small JSON object so that readers see the old one or the new one: a hidden
    temporary file renamed into place on a local disk, one PUT on object storage."""
    data = json.dumps(record, indent=1).encode()
    if store.is_local:
        folder, _, leaf = path.rpartition("/")
        os.makedirs(folder, exist_ok=True)
        tmp = f"{folder}/.{leaf}.{secrets.token_hex(4)}.tmp"
        with open(tmp, "wb") as file:
            file.write(data)
        os.replace(tmp, path)
    else:
        store.fs.pipe_file(path, data)


def _files(folder: Path) -> Iterable[tuple[str, Path]]:
    """(relative path, path) of every regular file under `folder`, hidden ones left out,
    links not followed, sorted."""
    found = []
    for base, dirs, names in os.walk(folder, followlinks=False):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for leaf in names:
            path = Path(base) / leaf
            if leaf.startswith(".") or path.is_symlink() or not path.is_file():
                continue
            found.append((path.relative_to(folder).as_posix(), path))
    return sorted(found)


def _sha256(path: Path) -> str:
    with path.open("rb") as file:
        return hashlib.file_digest(file, "sha256").hexdigest()
