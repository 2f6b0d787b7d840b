"""`bclake-dbt`: the dbt command line, bound to die with the process that started it.

dagster-dbt starts dbt as a child process. When the run that started it is killed
(SIGKILL, out of memory), an ordinary child would keep writing the build database
after its run is gone. On Linux this entry point asks the kernel to kill it when its
parent dies (`prctl(PR_SET_PDEATHSIG, SIGKILL)`, kept across `execve`), then becomes
the `dbt` of the same environment. Elsewhere it just becomes `dbt`.

Usage: exactly as `dbt` (`bclake-dbt build ...`); the pipeline's dbt resource uses it.
"""

from __future__ import annotations

import ctypes
import os
import shutil
import signal
import sys
from pathlib import Path

PR_SET_PDEATHSIG = 1


def dbt_path() -> str:
    """The `dbt` beside this interpreter (the environment's), else the one on PATH."""
    beside = Path(sys.executable).with_name("dbt")
    return str(beside) if beside.exists() else (shutil.which("dbt") or "dbt")


def main() -> None:
    parent = os.getppid()
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
        if os.getppid() != parent:  # the parent died before the request took effect
            sys.exit(f"bclake-dbt: the process that started dbt ({parent}) is gone")
    dbt = dbt_path()
    os.execv(dbt, [dbt, *sys.argv[1:]])


if __name__ == "__main__":
    main()
