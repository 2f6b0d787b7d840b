"""The files download buttons hand to the browser, kept short-lived.

Streamlit serves every download at `/media/<id>.<ext>` to whoever asks for that URL: the
route checks no session, cookie or sign-in. `<id>` is a 128-bit BLAKE2b hash of the file's
bytes, type and name, so it cannot be guessed without the content, but anyone who holds
the URL (browser history, a proxy log, a link passed on) can fetch the file for as long
as the server keeps it. So:

- every download button gets a callable, never bytes (`st.download_button(data=fn)`): no
  URL exists until the signed-in user clicks, and the click travels over that session's
  websocket, naming a random placeholder id only that session was sent;
- the file a click makes is referenced by no session, and `start_sweeper` collects such
  files every `BCLAKE_MEDIA_SWEEP_SECONDS` (default 60): Streamlit marks a download on
  one pass and deletes it on the next, so a URL works for at most twice that after the
  click, whether or not anyone uses the server meanwhile;
- `end_session` (sign-out, or a user the users file no longer has unchanged) drops the
  session's files and collects them at once.

Content is scoped before it gets there: the callables are built from the signed-in
user's scoped queries (`dashboards.data`) during their own run.
"""

from __future__ import annotations

import logging
import os
import threading
import time

from streamlit import runtime
from streamlit.runtime.media_file_manager import MediaFileManager

SWEEP_SECONDS = 60.0
_LOG = logging.getLogger(__name__)
_SWEEPER_LOCK = threading.Lock()
_sweeper: threading.Thread | None = None


def _manager(manager: MediaFileManager | None) -> MediaFileManager | None:
    if manager is not None:
        return manager
    return runtime.get_instance().media_file_mgr if runtime.exists() else None


def sweep(manager: MediaFileManager | None = None) -> None:
    """One collection pass over the media files no session references (default manager:
    the running server's; nothing without a server, as in the test harness)."""
    mgr = _manager(manager)
    if mgr is not None:
        mgr.remove_orphaned_files()


def end_session(manager: MediaFileManager | None = None) -> None:
    """Forget the current session's media files and delete every unreferenced download now
    (two passes: Streamlit marks a download before it deletes it)."""
    mgr = _manager(manager)
    if mgr is None:
        return
    mgr.clear_session_refs()
    mgr.remove_orphaned_files()
    mgr.remove_orphaned_files()


def _sweep_forever(interval: float) -> None:
    """Sweep every `interval` seconds for as long as the server runs."""
    while runtime.exists():
        time.sleep(interval)
        try:
            sweep()
        except Exception:  # keep sweeping: one failed pass must not end the thread
            _LOG.exception("media sweep failed")


def start_sweeper(interval: float | None = None) -> None:
    """Start, once per server process, the thread that calls `sweep` every `interval`
    seconds (default: `BCLAKE_MEDIA_SWEEP_SECONDS`, else `SWEEP_SECONDS`); does nothing
    outside a running server."""
    global _sweeper
    if not runtime.exists():
        return
    if interval is None:
        interval = float(os.environ.get("BCLAKE_MEDIA_SWEEP_SECONDS", SWEEP_SECONDS))
    with _SWEEPER_LOCK:
        if _sweeper is None or not _sweeper.is_alive():
            _sweeper = threading.Thread(
                target=_sweep_forever, args=(interval,), name="bclake-media-sweep", daemon=True
            )
            _sweeper.start()
