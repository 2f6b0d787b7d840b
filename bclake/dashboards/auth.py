"""Users, roles and scopes for the dashboards, and signing in.

Users live in one YAML file (`dashboards/users.yml`, or the file `BCLAKE_USERS`
names) with salted PBKDF2 password hashes. A signed-in user's `Scope` is what the
data-access layer (`dashboards.data`) filters every query by; pages never see it.

Signing in is throttled (`THROTTLE`, a `SignInThrottle`): after `name_limit` failures for
one user name, or `client_limit` failures from one client, within `window` seconds, the
name or client is refused, however right the password, for a lockout that doubles with
each further failure (30 s, 60 s, ... at most 15 min). Unknown names count and answer
exactly like known ones. The throttle's state lives in the server process: a restart
forgets it, and each server process behind a balancer keeps its own.

A session keeps the `User` it signed in as; `signed_in_user` checks it against the users
file as it is now, on every rerun, so a user removed from the file, or whose password,
role, scope or name changed, is signed out at their next interaction.

`UsersFileError` messages are shown to visitors who cannot sign in yet: they name the
file (its name, not its folder) and the entry (its user name, or its number when the key
does not look like a user name) and what is wrong, never a value or a line of the file.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import math
import os
import re
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache, lru_cache
from pathlib import Path
from typing import Literal

import yaml

from bclake.core.settings import Settings

USERS_FILE = Path(__file__).with_name("users.yml")
ROLES = ("hq", "region", "distributor", "store")
Role = Literal["hq", "region", "distributor", "store"]
ITERATIONS = 200_000
# a user name as the file may show it in an error; anything else is named by its number
_SHOWABLE_NAME = re.compile(r"[A-Za-z0-9_.@-]{1,64}")
_HASH = re.compile(r"pbkdf2_sha256\$[1-9][0-9]{0,8}\$[A-Za-z0-9_-]+\$[0-9a-f]{64}")


@dataclass(frozen=True)
class Scope:
    """What one user may see: everything (hq), or one region, distributor or store."""

    role: Role
    scope_id: str | None = None

    @property
    def key(self) -> str:
        return f"{self.role}:{self.scope_id or '*'}"


@dataclass(frozen=True)
class User:
    username: str
    name: str
    scope: Scope
    password_hash: str


class UsersFileError(ValueError):
    """The users file is missing or malformed; the message names the file and the entry,
    never a value from it (visitors see it); `path` is the file's full path, for logs."""

    def __init__(self, path: Path, problem: str) -> None:
        super().__init__(f"{path.name}: {problem}")
        self.path = path


class SignInThrottled(PermissionError):
    """Too many failed sign-ins for this user name or from this client; `retry_after` is
    the seconds until the next attempt is heard. The same for known and unknown names."""

    def __init__(self, retry_after: float) -> None:
        super().__init__(f"too many failed sign-ins: try again in {math.ceil(retry_after)} seconds")
        self.retry_after = retry_after


@dataclass
class SignInThrottle:
    """Failed sign-ins per user name and per client within `window` seconds.

    Once a key (a user name, a client) has `limit` failures in the window, it is refused
    until `base_lockout * 2**(failures - limit)` seconds (at most `max_lockout`) after its
    last failure. `clock` gives seconds (monotonic). Thread-safe; state in memory only.
    """

    name_limit: int = 5
    client_limit: int = 20
    window: float = 15 * 60
    base_lockout: float = 30.0
    max_lockout: float = 15 * 60
    clock: Callable[[], float] = time.monotonic
    _failures: dict[str, deque[float]] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def _keys(self, username: str, client: str | None) -> list[tuple[str, int]]:
        keys = [(f"name:{username[:64]}", self.name_limit)]
        if client:
            keys.append((f"client:{client[:64]}", self.client_limit))
        return keys

    def _wait(self, key: str, limit: int, now: float) -> float:
        times = self._failures.get(key)
        while times and now - times[0] > self.window:
            times.popleft()
        if not times:
            self._failures.pop(key, None)
            return 0.0
        excess = len(times) - limit
        if excess < 0:
            return 0.0
        lockout = min(self.base_lockout * 2.0 ** min(excess, 32), self.max_lockout)
        return max(0.0, times[-1] + lockout - now)

    def check(self, username: str, client: str | None = None) -> None:
        """Raise `SignInThrottled` when the name or the client is locked out."""
        with self._lock:
            now = self.clock()
            wait = max(self._wait(key, limit, now) for key, limit in self._keys(username, client))
        if wait > 0:
            raise SignInThrottled(wait)

    def failed(self, username: str, client: str | None = None) -> None:
        """Count one failed sign-in against the name and the client."""
        with self._lock:
            now = self.clock()
            if len(self._failures) > 10_000:  # forget keys whose failures are all stale
                for key in list(self._failures):
                    self._wait(key, 1, now)
            for key, limit in self._keys(username, client):
                self._failures.setdefault(key, deque(maxlen=limit + 16)).append(now)

    def succeeded(self, username: str) -> None:
        """Forget the name's failures (the client's stay: one good account must not reset
        the count of a client guessing others)."""
        with self._lock:
            self._failures.pop(self._keys(username, None)[0][0], None)

    def reset(self) -> None:
        with self._lock:
            self._failures.clear()


THROTTLE = SignInThrottle()


def hash_password(password: str, salt: bytes | None = None) -> str:
    """`pbkdf2_sha256$<iterations>$<salt>$<hex digest>`, the format users.yml stores."""
    salt = salt or secrets.token_bytes(16)
    digest = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, ITERATIONS)
    encoded_salt = base64.urlsafe_b64encode(salt).decode().rstrip("=")
    return f"pbkdf2_sha256${ITERATIONS}${encoded_salt}${digest.hex()}"


def verify_password(password: str, stored: str) -> bool:
    try:
        algorithm, iterations, salt, digest = stored.split("$")
        raw_salt = base64.urlsafe_b64decode(salt + "=" * (-len(salt) % 4))
        rounds = int(iterations)
    except ValueError:
        return False
    if algorithm != "pbkdf2_sha256":
        return False
    computed = hashlib.pbkdf2_hmac("sha256", password.encode(), raw_salt, rounds)
    return hmac.compare_digest(computed.hex(), digest)


@cache
def _decoy_hash() -> str:
    """A hash no password matches, checked for unknown names so they cost what known ones do."""
    return hash_password(secrets.token_hex(16))


def users_file() -> Path:
    return Path(os.environ.get("BCLAKE_USERS", USERS_FILE))


def _entry(path: Path, number: int, username: object, entry: object) -> User:
    """One user of the file (`number` counts from 1); UsersFileError naming it otherwise."""
    shown = str(username)
    label = f"user '{shown}'" if _SHOWABLE_NAME.fullmatch(shown) else f"entry {number}"
    if not isinstance(entry, dict):
        raise UsersFileError(path, f"{label}: must be a mapping of name, role, scope, password")
    role = entry.get("role")
    if role not in ROLES:
        raise UsersFileError(path, f"{label}: `role:` must be one of {', '.join(ROLES)}")
    scope_id = entry.get("scope")
    if role != "hq" and (not scope_id or not isinstance(scope_id, str | int)):
        raise UsersFileError(path, f"{label}: a {role} user needs `scope:` (the {role} it sees)")
    password = entry.get("password")
    if not isinstance(password, str) or not _HASH.fullmatch(password):
        raise UsersFileError(
            path,
            f"{label}: `password:` must be a hash from `bclake hash-password`, "
            "never the password itself",
        )
    return User(
        username=shown,
        name=str(entry.get("name", shown)),
        scope=Scope(role, None if role == "hq" else str(scope_id)),
        password_hash=password,
    )


@lru_cache(maxsize=8)
def _load(path: Path, stamp: tuple[int, int, int]) -> dict[str, User]:  # noqa: ARG001 (cache key)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise UsersFileError(path, "cannot read the users file") from error
    except UnicodeDecodeError as error:
        raise UsersFileError(path, "the users file is not UTF-8 text") from error
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" near line {mark.line + 1}" if mark is not None else ""
        raise UsersFileError(path, f"not valid YAML{where}") from None
    if raw is None:
        raw = {}
    if not isinstance(raw, dict) or not isinstance(raw.get("users") or {}, dict):
        raise UsersFileError(path, "must be a mapping `users:` of user name -> entry")
    users = {}
    for number, (username, entry) in enumerate((raw.get("users") or {}).items(), start=1):
        user = _entry(path, number, username, entry)
        users[user.username] = user
    return users


def load_users() -> dict[str, User]:
    """The users file's users by user name; UsersFileError when it is missing or malformed.
    Where the data root holds real data (`Settings.holds_real_data`), the packaged demo
    file is refused (UsersFileError) and users whose password hash is a demo user's (a
    published password) are left out."""
    path = users_file()
    try:
        stat = path.stat()
    except OSError:
        raise UsersFileError(path, "no users file; copy dashboards/users.yml and edit it") from None
    users = _load(path, (stat.st_mtime_ns, stat.st_size, stat.st_ino))
    if not Settings.from_env().holds_real_data:  # the public demo users: demo data only
        return users
    if path.resolve() == USERS_FILE.resolve():
        raise UsersFileError(path, "the demo users do not sign in on real data: set BCLAKE_USERS")
    demo = {user.password_hash for user in _load(USERS_FILE, (0, 0, 0)).values()}
    return {name: user for name, user in users.items() if user.password_hash not in demo}


def authenticate(username: str, password: str, client: str | None = None) -> User | None:
    """The user if the password matches; None otherwise (same answer, and the same work,
    for unknown users). `client` names where the attempt comes from (an IP address) for
    the throttle. Raises SignInThrottled when the name or the client is locked out, and
    UsersFileError when the users file cannot be read."""
    name = username.strip().lower()
    THROTTLE.check(name, client)
    user = load_users().get(name)
    stored = user.password_hash if user is not None else _decoy_hash()
    if not verify_password(password, stored) or user is None:
        THROTTLE.failed(name, client)
        return None
    THROTTLE.succeeded(name)
    return user


def signed_in_user(user: User) -> User | None:
    """`user` if the users file, as it is now, still has them unchanged (same password
    hash, role, scope and name); None when they were removed or changed, or the file
    cannot be read (fail closed)."""
    try:
        current = load_users().get(user.username)
    except UsersFileError:
        return None
    return user if current == user else None
