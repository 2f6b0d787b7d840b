"""The dashboards as an attacker meets them: sign-in throttling, sessions that end when the
users file drops or changes a user, errors that show no file content, downloads that do not
outlive the session that made them, the SQL layer's parser-built guard and its locked
DuckDB connection, the server bound to localhost and telemetry off.

Everything here runs on small hand-made files in tmp_path (no simulated world)."""

from __future__ import annotations

import ast
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest
import yaml
from browser_page import NO_BROWSER, wait_for_run
from browser_page import browser_fixture as browser_fixture  # the `browser` fixture
from streamlit.testing.v1 import AppTest
from streamlit_server import serve

from bclake.dashboards import auth
from bclake.dashboards.auth import (
    Scope,
    SignInThrottle,
    SignInThrottled,
    UsersFileError,
    authenticate,
    hash_password,
    load_users,
    signed_in_user,
)
from bclake.dashboards.data import ScopedWarehouse, ScopeError, check_select

ROOT = Path(__file__).resolve().parents[1]
APP = str(ROOT / "bclake" / "dashboards" / "app.py")
PASSWORD = "correct horse"
# a cheap hash (1000 iterations) in the stored format: these tests sign in many times
CHEAP = "pbkdf2_sha256$1000$c2FsdHNhbHRzYWx0c2FsdA$" + (
    __import__("hashlib").pbkdf2_hmac("sha256", PASSWORD.encode(), b"saltsaltsaltsalt", 1000).hex()
)


def write_users(path: Path, users: dict[str, dict]) -> Path:
    """A users file with `users` (username -> entry), its modification time moved on so a
    rewrite within one clock tick still reads as a new file."""
    before = path.stat().st_mtime_ns if path.exists() else 0
    path.write_text(yaml.safe_dump({"users": users}, allow_unicode=True), encoding="utf-8")
    if path.stat().st_mtime_ns <= before:
        os.utime(path, ns=(before + 1_000_000, before + 1_000_000))
    return path


@pytest.fixture
def users_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """BCLAKE_USERS pointing at a file with HQ user `alice` and store user `bob` (password
    `PASSWORD`), an empty data root, and a fresh sign-in throttle."""
    monkeypatch.setenv("BCLAKE_HOME", str(tmp_path / "home"))
    path = write_users(
        tmp_path / "users.yml",
        {
            "alice": {"name": "Alice", "role": "hq", "password": CHEAP},
            "bob": {"name": "Bob", "role": "store", "scope": "S1", "password": CHEAP},
        },
    )
    monkeypatch.setenv("BCLAKE_USERS", str(path))
    auth.THROTTLE.reset()
    yield path
    auth.THROTTLE.reset()


# -- sign-in throttling ----------------------------------------------------------------


@pytest.mark.usefixtures("users_file")
def test_a_user_name_is_locked_after_repeated_failures() -> None:
    for attempt in range(auth.THROTTLE.name_limit):
        assert authenticate("alice", f"guess {attempt}", client=f"10.0.0.{attempt}") is None
    # the right password, even from a fresh client, waits out the lockout
    with pytest.raises(SignInThrottled) as locked:
        authenticate("alice", PASSWORD, client="10.9.9.9")
    assert locked.value.retry_after > 0
    # another user is not locked by alice's failures
    assert authenticate("bob", PASSWORD, client="10.9.9.9") is not None


@pytest.mark.usefixtures("users_file")
def test_unknown_and_known_names_are_throttled_alike() -> None:
    outcomes = {}
    for name in ("alice", "nobody"):
        answers = []
        for attempt in range(auth.THROTTLE.name_limit + 1):
            try:
                answers.append(authenticate(name, f"guess {attempt}", client=f"{name}{attempt}"))
            except SignInThrottled as error:
                answers.append(("throttled", str(error)))
        outcomes[name] = answers
    assert outcomes["alice"] == outcomes["nobody"]
    assert outcomes["alice"][-1][0] == "throttled"


@pytest.mark.usefixtures("users_file")
def test_one_client_spraying_many_names_is_locked() -> None:
    for attempt in range(auth.THROTTLE.client_limit):
        assert authenticate(f"user{attempt}", "guess", client="203.0.113.7") is None
    with pytest.raises(SignInThrottled):
        authenticate("alice", PASSWORD, client="203.0.113.7")
    assert authenticate("alice", PASSWORD, client="198.51.100.1") is not None


def test_lockout_backs_off_exponentially_and_expires() -> None:
    clock = [1000.0]
    throttle = SignInThrottle(name_limit=3, client_limit=50, clock=lambda: clock[0])
    for _ in range(3):
        throttle.check("alice", "c")
        throttle.failed("alice", "c")
    with pytest.raises(SignInThrottled) as first:
        throttle.check("alice", "c")
    clock[0] += first.value.retry_after + 0.1
    throttle.check("alice", "c")  # the lockout is over
    throttle.failed("alice", "c")  # one more failure: a longer lockout
    with pytest.raises(SignInThrottled) as second:
        throttle.check("alice", "c")
    assert second.value.retry_after >= 2 * first.value.retry_after - 0.2
    clock[0] += throttle.window + throttle.max_lockout + 1
    throttle.check("alice", "c")  # failures older than the window are forgotten
    throttle.succeeded("alice")


@pytest.mark.usefixtures("users_file")
def test_the_login_page_refuses_after_repeated_failures() -> None:
    at = AppTest.from_file(APP, default_timeout=60).run()
    for attempt in range(auth.THROTTLE.name_limit):
        at.text_input[0].input("alice")
        at.text_input[1].input(f"guess {attempt}")
        at.button[0].click().run()
    at.text_input[0].input("alice")
    at.text_input[1].input(PASSWORD)
    at.button[0].click().run()
    assert not at.exception
    assert "user" not in at.session_state
    assert any("再试" in e.value or "try again" in e.value for e in at.error), [
        e.value for e in at.error
    ]


def test_unknown_names_cost_what_known_ones_do(
    users_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No user enumeration by timing: one PBKDF2 of the same strength either way."""
    import hashlib

    write_users(
        users_file,
        {"alice": {"name": "Alice", "role": "hq", "password": hash_password("x")}},
    )
    calls: list[int] = []
    real = hashlib.pbkdf2_hmac

    def counted(name: str, password: bytes, salt: bytes, iterations: int) -> bytes:
        calls.append(iterations)
        return real(name, password, salt, iterations)

    auth._decoy_hash()  # made once per process, before any attempt is timed
    monkeypatch.setattr(auth.hashlib, "pbkdf2_hmac", counted)
    authenticate("alice", "wrong", client="a")
    known = list(calls)
    calls.clear()
    authenticate("nobody", "wrong", client="b")
    assert calls == known == [auth.ITERATIONS]


# -- sessions follow the users file ----------------------------------------------------


def session_run(user: auth.User) -> AppTest:
    """One run of the entry script for a session that holds `user` (signed in earlier).

    Each rerun is a fresh AppTest carrying the session's user, which is what the entry
    script sees on a real rerun."""
    at = AppTest.from_file(APP, default_timeout=60)
    at.session_state["user"] = user
    return at.run()


def is_signed_in(at: AppTest) -> bool:
    return "user" in at.session_state and any(
        b.label in ("退出登录", "Sign out") for b in at.button
    )


def test_a_removed_user_is_signed_out_on_the_next_rerun(users_file: Path) -> None:
    bob = load_users()["bob"]
    assert is_signed_in(session_run(bob))
    write_users(users_file, {"alice": {"name": "Alice", "role": "hq", "password": CHEAP}})
    at = session_run(bob)
    assert not at.exception
    assert not is_signed_in(at)
    assert [b.label for b in at.button] == ["登录"]
    assert any("重新登录" in w.value for w in at.warning)


@pytest.mark.parametrize(
    "change",
    [
        {"password": hash_password("a new password")},
        {"scope": "S2"},
        {"role": "distributor", "scope": "D1"},
    ],
    ids=["password", "scope", "role"],
)
def test_a_changed_user_is_signed_out_on_the_next_rerun(users_file: Path, change: dict) -> None:
    bob = load_users()["bob"]
    entry = {"name": "Bob", "role": "store", "scope": "S1", "password": CHEAP} | change
    write_users(users_file, {"bob": entry})
    at = session_run(bob)
    assert not at.exception and not is_signed_in(at)


def test_an_unchanged_user_stays_signed_in(users_file: Path) -> None:
    bob = load_users()["bob"]
    write_users(  # alice changes, bob does not
        users_file,
        {
            "alice": {"name": "Alice", "role": "hq", "password": hash_password("x")},
            "bob": {"name": "Bob", "role": "store", "scope": "S1", "password": CHEAP},
        },
    )
    assert is_signed_in(session_run(bob))


def test_the_data_layer_refuses_a_removed_user_on_any_page(
    users_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A page run without the entry script (Streamlit runs a page alone when a session asks
    for it by its old-style path) still reads through `data.current_scope`."""
    from bclake.dashboards import data

    bob = load_users()["bob"]
    monkeypatch.setattr(data.st, "session_state", {"user": bob})
    assert data.current_scope() == Scope("store", "S1")
    write_users(users_file, {"alice": {"name": "Alice", "role": "hq", "password": CHEAP}})
    with pytest.raises(ScopeError):
        data.current_scope()


def test_signed_in_user_follows_the_file(users_file: Path) -> None:
    bob = load_users()["bob"]
    assert signed_in_user(bob) == bob
    write_users(
        users_file, {"bob": {"name": "Bob", "role": "store", "scope": "S9", "password": CHEAP}}
    )
    assert signed_in_user(bob) is None
    users_file.unlink()
    assert signed_in_user(bob) is None


# -- errors show no file content -------------------------------------------------------

SECRET_HASH = hash_password("the real password")
SECRET_DIGEST = SECRET_HASH.rsplit("$", 1)[1]
MALFORMED = {
    "bad indentation": f"users:\n  hq:\n    role: hq\n    password: {SECRET_HASH}\n   name: x\n",
    "tab": f"users:\n  hq:\n\trole: hq\n    password: {SECRET_HASH}\n",
    "unclosed quote": f'users:\n  hq:\n    role: hq\n    password: "{SECRET_HASH}\n',
    "hash as the entry": f"users:\n  hq: {SECRET_HASH}\n",
    "hash as the role": f"users:\n  hq:\n    role: {SECRET_HASH}\n    password: {SECRET_HASH}\n",
    "hash as the user name": f"users:\n  {SECRET_HASH}:\n    role: hq\n    password: x\n",
    "plain password": "users:\n  hq:\n    role: hq\n    password: hunter2-the-password\n",
    "a list": f"- {SECRET_HASH}\n",
    "users a list": f"users:\n  - {SECRET_HASH}\n",
    "scope missing": f"users:\n  s1:\n    role: store\n    password: {SECRET_HASH}\n",
}


def leaks(text: str) -> bool:
    return any(s in text for s in (SECRET_DIGEST, "pbkdf2_sha256$200000", "hunter2", "\t"))


@pytest.mark.parametrize("content", MALFORMED.values(), ids=MALFORMED.keys())
def test_a_malformed_users_file_error_names_file_and_entry_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, content: str
) -> None:
    path = tmp_path / "users.yml"
    path.write_text(content, encoding="utf-8")
    monkeypatch.setenv("BCLAKE_USERS", str(path))
    with pytest.raises(UsersFileError) as error:
        load_users()
    message = str(error.value)
    assert "users.yml" in message
    assert not leaks(message), message
    assert str(tmp_path) not in message  # the file's name, not where the server keeps it


def test_the_login_page_shows_no_line_of_a_malformed_users_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BCLAKE_HOME", str(tmp_path / "home"))
    path = tmp_path / "users.yml"
    path.write_text(MALFORMED["bad indentation"], encoding="utf-8")
    monkeypatch.setenv("BCLAKE_USERS", str(path))
    auth.THROTTLE.reset()
    at = AppTest.from_file(APP, default_timeout=60).run()
    at.text_input[0].input("hq")
    at.text_input[1].input("anything")
    at.button[0].click().run()
    shown = [e.value for e in at.error] + [str(x.value) for x in at.exception]
    assert shown and any("users.yml" in s for s in shown), shown
    assert not any(leaks(s) for s in shown), shown


def test_a_broken_users_file_signs_everyone_out_without_showing_it(users_file: Path) -> None:
    bob = load_users()["bob"]
    users_file.write_text(MALFORMED["bad indentation"], encoding="utf-8")
    os.utime(users_file, ns=(time.time_ns() + 10**9, time.time_ns() + 10**9))
    at = session_run(bob)
    shown = [e.value for e in at.error] + [str(x.value) for x in at.exception]
    assert not is_signed_in(at)
    assert not any(leaks(s) for s in shown), shown


# -- the SQL layer ---------------------------------------------------------------------


@pytest.fixture
def published(tmp_path: Path) -> Path:
    """A hand-made published warehouse: two stores of two distributors, sales, an HQ-only
    consumer table and an intermediate table; plus a landing-like NDJSON file beside it."""
    path = tmp_path / "published.duckdb"
    with duckdb.connect(str(path)) as con:
        con.execute(
            """
            create schema marts; create schema intermediate; create schema audit;
            create table marts.dim_distributor as
                select * from (values ('D1', '华北'), ('D2', '华东')) t(distributor_code, region);
            create table marts.dim_store as
                select * from (values ('S1', 'D1', '华北'), ('S2', 'D2', '华东'))
                t(store_code, distributor_code, region);
            create table marts.fct_sales_region_sku_week as
                select date '2026-01-05' as week_start, '华北' as region, 'K1' as sku_code,
                       10.0 as amount;
            create table marts.dim_consumer as select 'C1' as consumer_id, '13800000020' as phone;
            create table intermediate.int_secret as select 'unscoped' as secret;
            create table audit.quarantine as select 'raw line' as example_raw;
            """
        )
    (tmp_path / "landing.ndjson").write_text('{"secret": "in a landing file"}\n')
    (tmp_path / "landing.csv").write_text("secret\nin a landing file\n")
    return path


ATTACKS = {
    # the scoped views' source, reached by its alias built from strings
    "query_table by a string-built alias": "select * from query_table(concat('_pub', 'lished_', "
    "'{token}', '.marts.dim_consumer'))",
    "query by a string-built alias": "select * from query(concat('select * from _pub', "
    "'lished_{token}.intermediate.int_secret'))",
    "the alias quoted in pieces": 'select * from "_pub" "lished_{token}".marts.dim_consumer',
    "the alias by case": "select * from _PUBLISHED_{token}.marts.dim_consumer",
    "a catalog-qualified view": "select * from memory.marts.dim_store",
    "a file by its path": "from '{dir}/landing.ndjson'",
    "a file in a join": "select * from marts.dim_store, '{dir}/landing.csv'",
    "a file in a subquery": "select (select count(*) from '{dir}/landing.csv') as n",
    "a file in a CTE": "with f as (select * from '{dir}/landing.ndjson') select * from f",
    "read_csv_auto": "select * from read_csv_auto('{dir}/landing.csv')",
    "sniff_csv": "select * from sniff_csv('{dir}/landing.csv')",
    "parquet_metadata": "select * from parquet_metadata('{dir}/x.parquet')",
    "glob": "select * from glob('{dir}/*')",
    "the databases list": "select * from duckdb_databases()",
    "the databases view": "select * from duckdb_databases",
    "the settings": "select * from duckdb_settings()",
    "a pragma function": "select * from pragma_database_list()",
    "a table function in a CTE": "with d as (select * from duckdb_databases()) select * from d",
    "a CTE named after a system view, used before it exists": "with x as (select * from "
    "duckdb_databases), duckdb_databases as (select 1) select * from x",
    "an unscoped schema": "select * from intermediate.int_secret",
    "the main schema": "select * from main.anything",
    "a setting read": "select current_setting('enable_external_access')",
    "a variable": "select getvariable('x')",
    "attach": "attach '{dir}/published.duckdb' as p2",
    "attach after a select": "select 1; attach '{dir}/published.duckdb' as p2",
    "a comment hiding a second statement": "select 1 /* */; copy marts.dim_store to '{dir}/o.csv'",
    "copy": "copy (select * from marts.dim_store) to '{dir}/out.csv'",
    "export": "export database '{dir}/dump'",
    "pragma": "pragma database_list",
    "set": "set enable_external_access = true",
    "reset": "reset lock_configuration",
    "install": "install httpfs",
    "load": "load httpfs",
    "create": "create table marts.x as select 1",
    "create a macro": "create macro f() as 1",
    "describe": "describe marts.dim_store",
    "summarize in a subquery": "select * from (summarize marts.dim_consumer)",
    "show in a subquery": "select * from (show all tables)",
    "explain": "explain select 1",
    "call": "call pragma_version()",
    "detach": "detach _published_{token}",
    "use": "use _published_{token}",
    "checkpoint": "checkpoint",
    "a sequence": "select nextval('s')",
    "the alias in a WHERE subquery": "select * from marts.dim_store where store_code in "
    "(select consumer_id from _published_{token}.marts.dim_consumer)",
    "a table function in a lateral join": "select * from marts.dim_store, "
    "lateral (select * from read_text('{dir}/landing.csv'))",
    "a file in a union": "select 'x' as a union all select * from '{dir}/landing.csv'",
    "a file in a VALUES subquery": "select * from (values ((select count(*) from "
    "'{dir}/landing.csv'))) v(n)",
    "a file under a PIVOT": "select * from '{dir}/landing.csv' "
    "pivot (count(*) for secret in ('a'))",
    "a qualified function": "select main.concat('a', 'b')",
    "json_execute_serialized_sql": "select * from json_execute_serialized_sql("
    "json_serialize_sql('select * from intermediate.int_secret'))",
    "a CTE shadowed only inside its own subquery": "select * from (with s as (select 1) "
    "select * from s), s",
}


@pytest.mark.parametrize("attack", ATTACKS.values(), ids=ATTACKS.keys())
def test_the_sql_guard_refuses(published: Path, attack: str) -> None:
    wh = ScopedWarehouse(published, Scope("store", "S1"))
    sql = attack.format(token=wh.alias.removeprefix("_published_"), dir=published.parent)
    with pytest.raises(ScopeError):
        wh.query(sql)


def test_the_sql_guard_admits_the_scoped_views(published: Path) -> None:
    wh = ScopedWarehouse(published, Scope("store", "S1"))
    assert list(wh.query("select store_code from marts.dim_store").store_code) == ["S1"]
    assert wh.query("select * from marts.dim_consumer").empty  # HQ only
    assert list(
        wh.query(
            "with s as (select * from marts.dim_store where store_code = ?) "
            "select s.store_code, s.region from s union all select 'x', 'y' order by 1",
            ("S1",),
        ).store_code
    ) == ["S1", "x"]
    assert list(wh.query("from marts.dim_store select store_code").store_code) == ["S1"]
    found = wh.query(
        "select count(*) as n from information_schema.tables "
        "where table_schema = ? and table_name = ? and table_catalog = current_database()",
        ("marts", "dim_store"),
    )
    assert int(found.n.iloc[0]) == 1
    recursive = wh.query(
        "with recursive r as (select 1 as x union all select x + 1 from r where x < 3) "
        "select count(*) as n from r"
    )
    assert int(recursive.n.iloc[0]) == 3


def test_the_scoped_connection_has_no_file_access_and_is_locked(published: Path) -> None:
    """Below the guard: the connection itself, used directly, reads no file and cannot be
    unlocked."""
    wh = ScopedWarehouse(published, Scope("hq"))
    con = wh.con.cursor()
    with pytest.raises(duckdb.Error, match=r"disabled|Permission"):
        con.execute(f"select * from '{published.parent}/landing.ndjson'").fetchall()
    with pytest.raises(duckdb.Error, match="locked"):
        con.execute("set enable_external_access = true")
    with pytest.raises(duckdb.Error):
        con.execute(f"attach '{published.parent}/other.duckdb' as o")
    assert not (published.parent / "other.duckdb").exists()


def test_check_select_refuses_what_is_not_one_select() -> None:
    check_select("select 1")
    for sql in ("", "   ", ";", "select", "select 1;;select 2"):
        with pytest.raises(ScopeError):
            check_select(sql)


# -- downloads -------------------------------------------------------------------------


def _hands_over(node: ast.expr) -> bool:
    """A lambda, a bound method, or `functools.partial(...)`."""
    if isinstance(node, ast.Call):
        return ast.unparse(node.func) in {"functools.partial", "partial"}
    return isinstance(node, ast.Lambda | ast.Attribute)


def _is_callable_expr(node: ast.expr, function: ast.FunctionDef | None) -> bool:
    """Whether `node` (a download button's data) is a callable handed over for the click:
    a lambda, a bound method, a partial, or a name the enclosing function binds only to those or to
    its own `Callable` parameters (directly or through a `for` over a zip of them)."""
    if _hands_over(node):
        return True
    if not isinstance(node, ast.Name) or function is None:
        return False
    callables = {
        a.arg
        for a in function.args.args
        if a.annotation and "Callable" in ast.unparse(a.annotation)
    }
    bound = []
    for sub in ast.walk(function):
        if isinstance(sub, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == node.id for t in sub.targets
        ):
            bound.append(_hands_over(sub.value))
        if isinstance(sub, ast.For) and node.id in {
            n.id for n in ast.walk(sub.target) if isinstance(n, ast.Name)
        }:
            names = {n.id for n in ast.walk(sub.iter) if isinstance(n, ast.Name)} - {"zip"}
            sources = {n for n in names if n in callables or n in {"cells", "strict"}}
            bound.append(bool(names & callables) and names <= sources | {"cells"})
    return bool(bound) and all(bound)


def test_every_download_button_gets_a_callable_not_bytes() -> None:
    """Bytes handed to `download_button` get a /media URL at once, served to anyone who
    holds it while the session shows the button; a callable gets one only on the click."""
    found = []
    for path in sorted((ROOT / "bclake" / "dashboards").rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        functions = [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)]
        for call in ast.walk(tree):
            if not (
                isinstance(call, ast.Call)
                and isinstance(call.func, ast.Attribute)
                and call.func.attr == "download_button"
            ):
                continue
            data = (
                call.args[1]
                if len(call.args) > 1
                else next((k.value for k in call.keywords if k.arg == "data"), None)
            )
            owner = next(
                (f for f in functions if f.lineno <= call.lineno <= (f.end_lineno or 0)), None
            )
            found.append(f"{path.name}:{call.lineno}")
            assert data is not None and _is_callable_expr(data, owner), (
                f"{path.name}:{call.lineno} hands the download button bytes, not a callable"
            )
    assert len(found) >= 3, found


def test_a_clicked_download_is_gone_after_two_sweeps() -> None:
    from streamlit.runtime.media_file_manager import MediaFileManager
    from streamlit.runtime.media_file_storage import MediaFileStorageError
    from streamlit.runtime.memory_media_file_storage import MemoryMediaFileStorage

    from bclake.dashboards import media

    storage = MemoryMediaFileStorage("/media")
    manager = MediaFileManager(storage)
    placeholder = manager.add_deferred(lambda: b"scoped rows", "text/csv", "0.1", "rows.csv")
    url = manager.execute_deferred(placeholder)
    file_id = url.rsplit("/", 1)[1].split(".")[0]
    assert storage.get_file(file_id).content == b"scoped rows"  # what /media serves anyone
    media.sweep(manager)
    media.sweep(manager)
    with pytest.raises(MediaFileStorageError):
        storage.get_file(file_id)


def test_signing_out_deletes_the_sessions_downloads_at_once() -> None:
    from streamlit.runtime.media_file_manager import MediaFileManager
    from streamlit.runtime.media_file_storage import MediaFileStorageError
    from streamlit.runtime.memory_media_file_storage import MemoryMediaFileStorage

    from bclake.dashboards import media

    storage = MemoryMediaFileStorage("/media")
    manager = MediaFileManager(storage)
    url = manager.add(b"scoped rows", "text/csv", "0.2", "rows.csv", is_for_static_download=True)
    file_id = url.rsplit("/", 1)[1].split(".")[0]
    assert storage.get_file(file_id).content == b"scoped rows"
    media.end_session(manager)
    with pytest.raises(MediaFileStorageError):
        storage.get_file(file_id)


def test_the_sweeper_runs_in_the_server(monkeypatch: pytest.MonkeyPatch) -> None:
    from unittest import mock

    from bclake.dashboards import media

    monkeypatch.setattr(media, "_sweeper", None)
    with (
        mock.patch.object(media.runtime, "exists", return_value=True),
        mock.patch.object(media, "sweep") as sweep,
    ):
        media.start_sweeper(interval=0.05)
        first = media._sweeper
        media.start_sweeper(interval=0.05)  # once per process
        assert media._sweeper is first
        time.sleep(0.3)
    assert sweep.call_count >= 2
    first.join(timeout=1)  # no server left: the thread ends
    assert not first.is_alive()


# -- the server's interface, and telemetry ---------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _listening(port: int) -> set[str]:
    """The local addresses of TCP sockets listening on `port` (Linux /proc/net/tcp{,6})."""
    found = set()
    for name, family in (("tcp", socket.AF_INET), ("tcp6", socket.AF_INET6)):
        table = Path("/proc/net") / name
        for line in table.read_text().splitlines()[1:] if table.exists() else ():
            local, state = line.split()[1], line.split()[3]
            address, port_hex = local.split(":")
            if state == "0A" and int(port_hex, 16) == port:
                raw = bytes.fromhex(address)  # 32-bit words in host (little-endian) order
                words = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
                found.add(socket.inet_ntop(family, words))
    return found


def _streamlit_env() -> dict[str, str]:
    """This environment without Streamlit's own settings (conftest sets one)."""
    return {k: v for k, v in os.environ.items() if not k.startswith(("STREAMLIT_", "BCLAKE_SERVE"))}


def _effective(options: list[str], cwd: Path) -> dict[str, str]:
    """Streamlit's effective config (`streamlit config show`) with `options` as flags."""
    shown = subprocess.run(
        [sys.executable, "-m", "streamlit", "config", "show", *options],
        cwd=cwd,
        env=_streamlit_env(),
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout
    return dict(re.findall(r"^(\w+) = (.+)$", shown, re.MULTILINE))


@pytest.mark.skipif(not Path("/proc/net/tcp").exists(), reason="reads Linux /proc/net/tcp")
def test_bclake_serve_listens_on_this_host_only(tmp_path: Path) -> None:
    port = _free_port()
    env = _streamlit_env() | {"BCLAKE_HOME": str(tmp_path), "PYTHONPATH": str(ROOT)}
    with (tmp_path / "server.log").open("wb") as log:
        server = subprocess.Popen(
            [sys.executable, "-m", "bclake.cli", "serve", "--port", str(port)],
            cwd=tmp_path,  # no .streamlit/config.toml here: the command line decides
            env=env,
            stdout=log,
            stderr=log,
        )
        try:
            deadline = time.monotonic() + 90
            while not _listening(port) and time.monotonic() < deadline:
                assert server.poll() is None, (tmp_path / "server.log").read_text()
                time.sleep(0.5)
            assert _listening(port) == {"127.0.0.1"}
        finally:
            server.terminate()
            try:
                server.wait(timeout=20)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()


def test_the_serve_command_line_binds_localhost_and_sends_no_usage_stats(tmp_path: Path) -> None:
    from bclake.cli import streamlit_command

    options = [a for a in streamlit_command(8599, "127.0.0.1") if a.startswith("--")]
    config = _effective(options, tmp_path)
    assert config["address"] == '"127.0.0.1"'
    assert config["gatherUsageStats"] == "false"
    assert config["showErrorDetails"] == '"type"'
    assert config["enableXsrfProtection"] == "true"
    # the setting that changes it
    wide = [a for a in streamlit_command(8599, "0.0.0.0") if a.startswith("--")]
    assert _effective(wide, tmp_path)["address"] == '"0.0.0.0"'


def test_streamlit_started_from_the_repository_binds_localhost_and_sends_nothing() -> None:
    """`streamlit run` by hand from the repository root reads .streamlit/config.toml."""
    config = _effective([], ROOT)
    assert config["address"] == '"127.0.0.1"'
    assert config["gatherUsageStats"] == "false"
    assert config["showErrorDetails"] == '"type"'


def test_dagster_telemetry_is_off_in_the_instance(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dagster import DagsterInstance
    from dagster_shared.telemetry import get_telemetry_enabled_from_dagster_yaml

    from bclake.cli import dagster_home
    from bclake.core.settings import Settings

    home = tmp_path / "dagster"
    home.mkdir()
    (home / "dagster.yaml").write_text(
        "telemetry:\n  enabled: true\nrun_monitoring:\n  enabled: true\n"
    )
    monkeypatch.setenv("BCLAKE_HOME", str(tmp_path))
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    assert dagster_home(Settings.from_env()) == home
    written = yaml.safe_load((home / "dagster.yaml").read_text())
    assert written == {
        "telemetry": {"enabled": False},
        "run_monitoring": {"enabled": True},
        "concurrency": {"pools": {"granularity": "run", "default_limit": 1}},
        "python_logs": {"managed_python_loggers": ["bclake"], "python_log_level": "INFO"},
    }
    assert get_telemetry_enabled_from_dagster_yaml() is False
    instance = DagsterInstance.get()
    try:
        assert instance.telemetry_enabled is False
    finally:
        instance.dispose()
    # a data root with no Dagster home yet gets one with telemetry off
    monkeypatch.delenv("DAGSTER_HOME")
    monkeypatch.setenv("BCLAKE_HOME", str(tmp_path / "fresh"))
    fresh = dagster_home(Settings.from_env())
    assert fresh == tmp_path / "fresh" / "dagster"
    monkeypatch.setenv("DAGSTER_HOME", str(fresh))  # dagster_home exported it: restore after
    assert yaml.safe_load((fresh / "dagster.yaml").read_text()) == {
        "run_monitoring": {"enabled": True},
        "concurrency": {"pools": {"granularity": "run", "default_limit": 1}},
        "python_logs": {"managed_python_loggers": ["bclake"], "python_log_level": "INFO"},
        "telemetry": {"enabled": False},
    }


def test_dbt_sends_no_anonymous_usage_stats() -> None:
    from dbt.config.project import read_project_flags

    project = str(ROOT / "dbt_project")
    assert read_project_flags(project, project).send_anonymous_usage_stats is False


# -- in a real browser: a download's URL dies with the session -------------------------


def _fetch(url: str) -> tuple[int, bytes]:
    """GET `url` with no cookie and no session: (status, body)."""
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=10) as answer:
            return answer.status, answer.read()
    except urllib.error.HTTPError as error:
        return error.code, b""


def _download(page, name: str) -> str:
    """Click the download button of the planner file `name`; the /media URL it fetched."""
    row = page.locator("[data-testid='stHorizontalBlock']").filter(has_text=name)
    with page.expect_download() as info:
        row.get_by_role("button", name="下载").click()
    assert "/media/" in info.value.url
    return info.value.url


@pytest.mark.skipif(bool(NO_BROWSER), reason=NO_BROWSER or "browser")
def test_a_download_url_dies_after_two_sweeps_and_at_sign_out(
    browser, published: Path, users_file: Path
) -> None:
    """Streamlit serves /media URLs to whoever holds them (no cookie or session checked);
    bclake bounds how long: two sweeps after the click with nobody using the server (the
    file used to stay until some session ran again), and at once at sign-out."""
    home = published.parent / "home"
    (home / "warehouse").mkdir(parents=True)
    published.rename(home / "warehouse" / "published.duckdb")
    with duckdb.connect(str(home / "warehouse" / "published.duckdb")) as con:
        con.execute("create table marts.dim_product as select 'K1' as sku_code, 'tea' as category")
    (home / "exports" / "company").mkdir(parents=True)
    (home / "exports" / "company" / "plan.csv").write_text("secret,plan\n1,2\n")
    sweep = 2.0
    env = {
        "BCLAKE_HOME": str(home),
        "BCLAKE_USERS": str(users_file),
        "BCLAKE_MEDIA_SWEEP_SECONDS": str(sweep),
    }
    with serve(env) as url:
        context = browser.new_context(
            viewport={"width": 1440, "height": 900}, accept_downloads=True
        )
        page = context.new_page()
        page.goto(url)
        wait_for_run(page)
        page.get_by_label("用户名").fill("alice")
        page.get_by_label("密码").fill(PASSWORD)
        page.get_by_role("button", name="登录").click()
        page.wait_for_selector("[data-testid='stSidebarNav']")
        page.locator("[data-testid='stSidebarNav']").get_by_role("link", name="下载").click()
        wait_for_run(page)
        media_url = _download(page, "plan.csv")
        # the residual: until the sweeps, the URL is a bearer link, no session needed
        assert _fetch(media_url) == (200, b"secret,plan\n1,2\n")
        time.sleep(2 * sweep + 1.5)  # nobody touches the server meanwhile
        assert _fetch(media_url)[0] == 404
        media_url = _download(page, "plan.csv")
        assert _fetch(media_url)[0] == 200
        page.locator("[data-testid=stSidebar]").get_by_role("button", name="退出登录").click()
        page.get_by_role("button", name="登录").wait_for()
        wait_for_run(page)
        assert _fetch(media_url)[0] == 404
        context.close()


@pytest.mark.skipif(bool(NO_BROWSER), reason=NO_BROWSER or "browser")
@pytest.mark.parametrize("path", ["overview", "downloads", "marketing"])
def test_a_page_url_on_a_fresh_server_shows_the_sign_in_page(
    browser, published: Path, users_file: Path, path: str
) -> None:
    """A page's own URL, the first request a fresh server gets, runs the entry script and
    its sign-in page, never the page alone (a `pages/` folder would be served unrouted)."""
    home = published.parent / "home"
    (home / "warehouse").mkdir(parents=True)
    published.rename(home / "warehouse" / "published.duckdb")
    with serve({"BCLAKE_HOME": str(home), "BCLAKE_USERS": str(users_file)}) as url:
        page = browser.new_context(viewport={"width": 1440, "height": 900}).new_page()
        page.goto(f"{url.rstrip('/')}/{path}")
        wait_for_run(page)
        page.get_by_role("button", name="登录").wait_for()
        assert page.get_by_label("密码").count() == 1
        assert page.locator("[data-testid='stSidebarNav']").count() == 0
        assert page.locator("[data-testid='stException']").count() == 0
