"""The dashboards as an attacker meets them: sign-in throttling, sessions that end when the
users file drops or changes a user, errors that show no file content, downloads that do not
outlive the session that made them, the SQL layer's parser-built guard and its locked
DuckDB connection, the server bound to localhost and telemetry off.

Everything here runs on small hand-made files in tmp_path (no simulated world)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import duckdb
import pytest
import yaml
from streamlit.testing.v1 import AppTest

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


# -- sessions follow the users file ----------------------------------------------------


def session_run(user: auth.User) -> AppTest:
    """One run of the entry script for a session that holds `user` (signed in earlier).

    Streamlit's test harness runs only the page on a second `run()` of one AppTest (it sees
    `pages/` as an old-style pages folder), so each rerun is a fresh AppTest carrying the
    session's user, which is what the entry script sees on a real rerun."""
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
