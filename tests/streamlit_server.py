"""`streamlit run` of the dashboards in a subprocess, for the real-browser tests."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from bclake.dashboards.auth import load_users

ROOT = Path(__file__).resolve().parents[1]
APP = str(ROOT / "bclake" / "dashboards" / "app.py")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def serve(env: dict[str, str], unset: tuple[str, ...] = ()) -> Iterator[str]:
    """The app served as `make serve` starts it, with `env` over this environment (plus
    PYTHONPATH to the project, without the variables in `unset`); yields its URL once
    /_stcore/health answers (60 s)."""
    port = free_port()
    environment = {**os.environ, "PYTHONPATH": str(ROOT), **env}
    for name in unset:
        environment.pop(name, None)
    # stderr to a file read only on failure: a pipe nobody reads blocks the server once full
    with tempfile.TemporaryFile() as log:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "streamlit",
                "run",
                APP,
                "--server.headless=true",
                f"--server.port={port}",
                "--browser.gatherUsageStats=false",
                "--client.toolbarMode=minimal",
            ],
            env=environment,
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
        try:
            url = f"http://127.0.0.1:{port}"
            if not _healthy(url, proc, seconds=60):
                _stop(proc, timeout=5)
                log.seek(0)
                tail = log.read().decode(errors="replace")[-2000:]
                pytest.fail(f"streamlit did not start: {tail}")
            yield url
        finally:
            _stop(proc, timeout=20)


def _healthy(url: str, proc: subprocess.Popen, seconds: float) -> bool:
    """Whether `url`/_stcore/health answers 200 within `seconds` (False at once when `proc`
    has exited)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
                if r.status == 200:
                    return True
        except OSError:
            time.sleep(0.5)
    return False


def _stop(proc: subprocess.Popen, timeout: float) -> None:
    """Terminate `proc`, and kill it when it has not exited within `timeout` seconds."""
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def signed_in(page: str, username: str, lang: str = "zh") -> AppTest:
    """`page` (e.g. "views/marketing.py") run in Streamlit's test harness for the demo user
    `username` in `lang`, after the entry script's first run (180 s timeout per run)."""
    at = AppTest.from_file(APP, default_timeout=180)
    at.session_state["user"] = load_users()[username]
    at.session_state["lang"] = lang
    # straight to the page: before a first run AppTest names a page by its file, which
    # is the url path st.Page gives it; a first run on the default page would add that
    # page's errors and a second navigation to the test
    at.switch_page(page).run()
    ran = Path(str(at._registered_pages.get(at._finished_page_script_hash, {}).get("script_path")))
    assert ran.resolve() == (Path(APP).parent / page).resolve(), f"{page} asked, {ran} ran"
    return at
