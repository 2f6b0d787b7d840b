"""One place that turns the environment into paths and secrets.

Every other module asks this one where things live, so that two data roots
(`BCLAKE_HOME`) never mix and nothing hard-codes a path.

It also decides whether a data root is a simulated demo, which nothing a drop-zone
writer can put in `landing/` can forge: the simulator signs its manifest
(`landing/_simulation.json`, with every file it wrote and its size) with HMAC-SHA256
under a random key kept in the data root's private folder (`.bclake/simulator.key`,
mode 0600, created by the first simulation; the signature beside it, `simulation.sig`).
A landing is simulated only when that manifest verifies under that key
(`is_simulated`); a planted, copied or edited manifest, or a landing moved without its
root's private folder, is real. Real data needs a real
`BCLAKE_PII_KEY` (`require_pii_key`), never the public demo key; the simulator deletes
only a landing holding nothing but its own signed output (`foreign_landing_files`); the
dashboards' built-in demo users do not sign in where `holds_real_data`.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bclake.core.pii import PiiKey

PROJECT_ROOT = Path(__file__).resolve().parents[2]
CONTRACTS_DIR = PROJECT_ROOT / "contracts"
DEFAULT_INCENTIVES = PROJECT_ROOT / "config" / "incentives.yaml"
DEFAULT_MARKETING = PROJECT_ROOT / "config" / "marketing.yaml"
DEFAULT_SUPPLY = PROJECT_ROOT / "config" / "supply.yaml"
DEFAULT_CHANNEL = PROJECT_ROOT / "config" / "channel.yaml"
DBT_PROJECT_DIR = PROJECT_ROOT / "dbt_project"

DEMO_PII_KEY = "bclake-demo-key-not-for-production"
PRIVATE_DIR = ".bclake"  # the data root's own state, never under landing/
SIMULATION_MANIFEST = "_simulation.json"  # the simulator's signed manifest, in landing/
SIMULATOR_KEY = "simulator.key"  # in PRIVATE_DIR: the manifest's HMAC key, hex
SIMULATION_SIGNATURE = "simulation.sig"  # in PRIVATE_DIR: the manifest's HMAC, hex
MAX_MANIFEST_BYTES = 64 * 2**20  # a larger "manifest" is not the simulator's
# landing/review/: what the dashboards' review form writes, not a source system's export
DASHBOARD_LANDING = "review"
# months of consumer-level detail kept unless BCLAKE_RETENTION_MONTHS says otherwise
DEFAULT_RETENTION_MONTHS = 36


@dataclass(frozen=True)
class Settings:
    """Resolved configuration for one data root."""

    home: Path
    pii_key: str = field(default=DEMO_PII_KEY, repr=False)
    pii_key_from_env: bool = False
    # keys retired by `bclake rotate-pii-key`, oldest first: the chain's inner links
    pii_key_retired: tuple[str, ...] = field(default=(), repr=False)
    partition_start: str = "2023-01-01"
    alert_webhook: str | None = None
    incentives_file: Path = DEFAULT_INCENTIVES
    marketing_file: Path = DEFAULT_MARKETING
    supply_file: Path = DEFAULT_SUPPLY
    channel_file: Path = DEFAULT_CHANNEL
    # months of consumer-level detail kept (`ingest.retention`); 0: kept forever
    retention_months: int = DEFAULT_RETENTION_MONTHS
    # where published versions go for other machines (`core.storage`); None: this disk only
    store_uri: str | None = None

    @classmethod
    def from_env(cls, home: str | Path | None = None) -> Settings:
        """Read `BCLAKE_HOME` (unless `home` is given) and the other `BCLAKE_` settings.

        `BCLAKE_PII_KEY` is the pseudonymisation key (see `require_pii_key`);
        `BCLAKE_PII_KEY_RETIRED` the keys it replaced, oldest first, separated by white
        space (set after `bclake rotate-pii-key`; see `pii_keys`).
        `BCLAKE_PARTITION_START` is the first day of the lake's daily partitions in
        Dagster; rows dated earlier still load, they just have no partition to show.
        `BCLAKE_ALERT_WEBHOOK` is a URL new market-order alerts are posted to (off if unset).
        `BCLAKE_INCENTIVES` is the incentive programme file (default config/incentives.yaml).
        `BCLAKE_MARKETING` is the marketing plan file (default config/marketing.yaml).
        `BCLAKE_SUPPLY` is the supply planning file (default config/supply.yaml).
        `BCLAKE_CHANNEL` is the channel optimisation file (default config/channel.yaml).
        `BCLAKE_RETENTION_MONTHS` is how many months of consumer-level detail are kept,
        counted back from the lake's newest event date (default 36; `0` or `off`: kept
        forever; see `bclake.ingest.retention`). Raises ValueError for anything else.
        `BCLAKE_STORE` is an fsspec URI (`s3://bucket/prefix`, `file:///path`) that
        published versions are written to (`bclake.core.storage`); unset: none.
        """
        raw_home = home or os.environ.get("BCLAKE_HOME") or PROJECT_ROOT / "data"
        return cls(
            home=Path(raw_home).expanduser().resolve(),
            pii_key=os.environ.get("BCLAKE_PII_KEY") or DEMO_PII_KEY,
            pii_key_from_env=bool(os.environ.get("BCLAKE_PII_KEY")),
            pii_key_retired=tuple(os.environ.get("BCLAKE_PII_KEY_RETIRED", "").split()),
            partition_start=os.environ.get("BCLAKE_PARTITION_START", "2023-01-01"),
            alert_webhook=os.environ.get("BCLAKE_ALERT_WEBHOOK") or None,
            incentives_file=Path(os.environ.get("BCLAKE_INCENTIVES") or DEFAULT_INCENTIVES),
            marketing_file=Path(os.environ.get("BCLAKE_MARKETING") or DEFAULT_MARKETING),
            supply_file=Path(os.environ.get("BCLAKE_SUPPLY") or DEFAULT_SUPPLY),
            channel_file=Path(os.environ.get("BCLAKE_CHANNEL") or DEFAULT_CHANNEL),
            retention_months=_retention_months(os.environ.get("BCLAKE_RETENTION_MONTHS")),
            store_uri=os.environ.get("BCLAKE_STORE") or None,
        )

    # --- the layers, in the order data flows through them -------------------
    @property
    def landing(self) -> Path:
        return self.home / "landing"

    @property
    def truth(self) -> Path:
        return self.home / "truth"

    @property
    def lake(self) -> Path:
        return self.home / "lake"

    @property
    def warehouse_dir(self) -> Path:
        return self.home / "warehouse"

    @property
    def build_db(self) -> Path:
        """The working database dbt and the models write; readers never open it."""
        return self.warehouse_dir / "build.duckdb"

    @property
    def published_db(self) -> Path:
        """The only database file dashboards and exports open (read-only)."""
        return self.warehouse_dir / "published.duckdb"

    @property
    def exports(self) -> Path:
        return self.home / "exports"

    @property
    def dagster_home(self) -> Path:
        return self.home / "dagster"

    @property
    def private_dir(self) -> Path:
        """The data root's own state (keys, locks): never under landing/, mode 0700."""
        return self.home / PRIVATE_DIR

    @property
    def simulation_manifest(self) -> Path:
        return self.landing / SIMULATION_MANIFEST

    def simulator_key(self, create: bool = False) -> bytes | None:
        """The key the simulator signs its manifest with (32 bytes), from
        `private_dir/simulator.key`; None when there is none and `create` is False, a new
        random one (file mode 0600, folder 0700) when `create` is True. A key file that
        is a link, or readable by others, is no key (None)."""
        path = self.private_dir / SIMULATOR_KEY
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
        except FileNotFoundError:
            if not create:
                return None
            self.private_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
            key = secrets.token_bytes(32)
            tmp = path.with_name(f".{SIMULATOR_KEY}.{os.getpid()}.tmp")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
            with os.fdopen(fd, "w") as file:
                file.write(key.hex())
            os.replace(tmp, path)
            return key
        except OSError:  # a link (ELOOP) or unreadable
            return None
        with os.fdopen(fd) as file:
            info = os.fstat(file.fileno())
            if not stat.S_ISREG(info.st_mode) or info.st_mode & 0o077:
                return None
            try:
                return bytes.fromhex(file.read(128).strip())
            except ValueError:
                return None

    def sign_simulation(self, manifest: bytes) -> None:
        """Sign `manifest` (the bytes of landing/_simulation.json about to be written):
        its HMAC-SHA256 under `simulator_key` (created when missing) goes to
        `private_dir/simulation.sig`, replaced atomically. Raises OSError when the key
        file cannot be made, or is a link or readable by others."""
        key = self.simulator_key(create=True)
        if key is None:
            raise OSError(f"{self.private_dir / SIMULATOR_KEY} is not a private key file")
        path = self.private_dir / SIMULATION_SIGNATURE
        tmp = path.with_name(f".{SIMULATION_SIGNATURE}.{os.getpid()}.tmp")
        tmp.write_text(hmac.new(key, manifest, hashlib.sha256).hexdigest())
        os.replace(tmp, path)

    def simulation_meta(self) -> dict | None:
        """The simulator's manifest of this landing when it verifies under this root's
        key (`sign_simulation`); None for no manifest, no key or signature, a link, an
        oversized or malformed file, or bytes the signature does not match (a planted,
        copied or edited manifest)."""
        key = self.simulator_key()
        if key is None:
            return None
        try:
            signature = (self.private_dir / SIMULATION_SIGNATURE).read_text().strip()
            fd = os.open(self.simulation_manifest, os.O_RDONLY | os.O_NOFOLLOW)
        except OSError:
            return None
        with os.fdopen(fd, "rb") as file:
            info = os.fstat(file.fileno())
            if not stat.S_ISREG(info.st_mode) or info.st_size > MAX_MANIFEST_BYTES:
                return None
            raw = file.read(MAX_MANIFEST_BYTES + 1)
        digest = hmac.new(key, raw, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(signature.encode(), digest.encode()):
            return None
        try:
            meta = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            return None
        return meta if isinstance(meta, dict) else None

    @property
    def is_simulated(self) -> bool:
        """Whether landing/ was written by the simulator of this data root (demo data, no
        real people): its manifest verifies under this root's key (`simulation_meta`)."""
        return self.simulation_meta() is not None

    @property
    def holds_real_data(self) -> bool:
        """Whether this root holds data that may be real: not simulated, and a file in
        the lake or in landing/ (but for the review form's own `DASHBOARD_LANDING`). A
        root with neither (empty, or only a published warehouse copied in) is not known
        to be real: a dashboards-only server of real data must name its own users
        (`BCLAKE_USERS`), as every real deployment must."""
        if self.is_simulated:
            return False
        return _any_file(self.lake) or _any_file(self.landing, self.landing / DASHBOARD_LANDING)

    def foreign_landing_files(self) -> list[str]:
        """Entries under landing/ (paths relative to it) the simulator did not write: not
        listed in its verified manifest with the size found, or not a regular file (a
        link, a FIFO, a device). Every entry when the manifest does not verify; none for
        a landing the simulator left unfinished (`complete: false`: all of it is its own)
        and none for an empty or missing landing. Empty folders are not counted."""
        meta = self.simulation_meta()
        listed = (meta or {}).get("landing_files")
        if meta is not None and meta.get("complete") is False:
            return []
        listed = listed if isinstance(listed, dict) else {}
        foreign = []
        for rel, info in _entries(self.landing):
            if rel == SIMULATION_MANIFEST and meta is not None:
                continue
            if not stat.S_ISREG(info.st_mode) or listed.get(rel) != info.st_size:
                foreign.append(rel)
        return foreign

    def landing_sizes(self) -> dict[str, tuple[int, int]]:
        """Every regular file under landing/ but the manifest: relative path -> (size in
        bytes, mtime in ns). Links and other entries are left out."""
        return {
            rel: (info.st_size, info.st_mtime_ns)
            for rel, info in _entries(self.landing)
            if stat.S_ISREG(info.st_mode) and rel != SIMULATION_MANIFEST
        }

    @property
    def pii_keys(self) -> PiiKey:
        """The pseudonymisation key chain, oldest first (`core.pii.PiiKey`): the retired
        keys, then `BCLAKE_PII_KEY`. A lake rotated to a new key keeps its old pseudonyms
        hashed once more under the new key, so new exports join them only through the
        chain; the retired keys stay needed, but no longer suffice, to make a pseudonym."""
        return (*self.pii_key_retired, self.pii_key) if self.pii_key_retired else self.pii_key

    def require_pii_key(self) -> None:
        """Refuse to ingest real exports with the public demo key (PIPL: keyed pseudonyms):
        without `BCLAKE_PII_KEY`, or with it set to the demo key, only a simulated landing
        (`is_simulated`) is read. Raises RuntimeError naming what to do."""
        if self.pii_key == DEMO_PII_KEY and not self.is_simulated:
            raise RuntimeError(
                f"{self.landing} holds real exports (no manifest signed by this data root's "
                f"simulator, {PRIVATE_DIR}/{SIMULATOR_KEY}) and BCLAKE_PII_KEY is "
                f"{'the public demo key' if self.pii_key_from_env else 'not set'}. Set "
                "BCLAKE_PII_KEY to a secret of at least 16 characters; the built-in key is "
                "for simulated demo data only."
            )
        if self.pii_key_from_env and len(self.pii_key) < 16:
            raise RuntimeError("BCLAKE_PII_KEY must be at least 16 characters long.")

    def dbt_env(self) -> dict[str, str]:
        """Environment the dbt project reads (see dbt_project/profiles.yml)."""
        return {
            "BCLAKE_HOME": str(self.home),
            "BCLAKE_LAKE": str(self.lake),
            "BCLAKE_BUILD_DB": str(self.build_db),
        }


def _retention_months(raw: str | None) -> int:
    """`BCLAKE_RETENTION_MONTHS` as a number of months: unset or blank is the default, `0`
    or `off` is 0 (kept forever). Raises ValueError for anything but a whole number >= 0."""
    value = (raw or "").strip().lower()
    if not value:
        return DEFAULT_RETENTION_MONTHS
    if value == "off":
        return 0
    if not value.isdigit():
        raise ValueError(
            f"BCLAKE_RETENTION_MONTHS={raw!r}: give a whole number of months (0 or off: keep "
            f"consumer-level detail forever; unset: {DEFAULT_RETENTION_MONTHS})"
        )
    return int(value)


def _entries(root: Path) -> list[tuple[str, os.stat_result]]:
    """Every entry under `root` but folders (links not followed), as (path relative to
    `root` with forward slashes, its lstat); a link to a folder is an entry."""
    found = []
    for folder, dirs, files in os.walk(root, followlinks=False):
        base = Path(folder)
        for name in [*files, *(d for d in dirs if (base / d).is_symlink())]:
            path = base / name
            found.append((path.relative_to(root).as_posix(), path.lstat()))
    return found


def _any_file(root: Path, skip: Path | None = None) -> bool:
    """Whether `root` holds any entry but folders (links not followed), the folder
    `skip` (when it is a folder, not a link) left out."""
    for folder, dirs, files in os.walk(root, followlinks=False):
        base = Path(folder)
        if files or any((base / d).is_symlink() for d in dirs):
            return True
        dirs[:] = [d for d in dirs if base / d != skip]
    return False
