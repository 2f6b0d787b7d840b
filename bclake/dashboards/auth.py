"""Users, roles and scopes for the dashboards, and the login page.

Users live in one YAML file (`dashboards/users.yml`, or the file `BCLAKE_USERS`
names) with salted PBKDF2 password hashes. A signed-in user's `Scope` is what the
data-access layer (`dashboards.data`) filters every query by; pages never see it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Literal

import yaml

USERS_FILE = Path(__file__).with_name("users.yml")
ROLES = ("hq", "region", "distributor", "store")
Role = Literal["hq", "region", "distributor", "store"]
ITERATIONS = 200_000


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
    """The users file is missing or malformed; the message names the file and the entry."""


def hash_password(password: str, salt: bytes | None = None) -> str:
    """`pbkdf2_sha256$<iterations>$<salt>$<hex digest>`, the format users.yml stores."""
    salt = salt or secrets.token_bytes(16)
    digest = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, ITERATIONS)
    encoded_salt = base64.urlsafe_b64encode(salt).decode().rstrip("=")
    return f"pbkdf2_sha256${ITERATIONS}${encoded_salt}${digest.hex()}"


def verify_password(password: str, stored: str) -> bool:
    try:
        algorithm, iterations, salt, digest = stored.split("$")
    except ValueError:
        return False
    if algorithm != "pbkdf2_sha256":
        return False
    raw_salt = base64.urlsafe_b64decode(salt + "=" * (-len(salt) % 4))
    computed = hashlib.pbkdf2_hmac("sha256", password.encode(), raw_salt, int(iterations))
    return hmac.compare_digest(computed.hex(), digest)


def users_file() -> Path:
    return Path(os.environ.get("BCLAKE_USERS", USERS_FILE))


@cache
def _load(path: Path, mtime: float) -> dict[str, User]:  # noqa: ARG001 (mtime: cache key)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as error:
        raise UsersFileError(f"{path}: cannot read the users file: {error}") from error
    users = {}
    for username, entry in (raw.get("users") or {}).items():
        role = entry.get("role")
        if role not in ROLES:
            raise UsersFileError(
                f"{path}: user '{username}': role {role!r} is not one of {', '.join(ROLES)}"
            )
        scope_id = entry.get("scope")
        if role != "hq" and not scope_id:
            raise UsersFileError(
                f"{path}: user '{username}': a {role} user needs `scope:` (the {role} it sees)"
            )
        if not str(entry.get("password", "")).startswith("pbkdf2_sha256$"):
            raise UsersFileError(
                f"{path}: user '{username}': `password:` must be a hash from "
                "`bclake hash-password`, never the password itself"
            )
        users[str(username)] = User(
            username=str(username),
            name=str(entry.get("name", username)),
            scope=Scope(role, None if role == "hq" else str(scope_id)),
            password_hash=entry["password"],
        )
    return users


def load_users() -> dict[str, User]:
    path = users_file()
    if not path.exists():
        raise UsersFileError(f"{path}: no users file; copy dashboards/users.yml and edit it")
    return _load(path, path.stat().st_mtime)


def authenticate(username: str, password: str) -> User | None:
    """The user if the password matches; None otherwise (same answer for unknown users)."""
    user = load_users().get(username.strip().lower())
    if user is None:
        verify_password(password, hash_password("timing"))  # no user-enumeration by timing
        return None
    return user if verify_password(password, user.password_hash) else None
