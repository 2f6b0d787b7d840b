"""How many threads bclake's models may use: the CPUs this process may actually run on.

`os.cpu_count()` counts the machine's CPUs, not the ones a process may use. A process
pinned to some CPUs (`taskset`, a container's cpuset) or limited by a CPU quota (a
container's `--cpus`, a Kubernetes limit, a systemd `CPUQuota`) that starts one thread per
machine CPU gets threads that wait for each other; LightGBM's OpenMP threads also spin
while they wait, which burns the CPU the other threads need.

Order of precedence for `model_threads()`:
1. `BCLAKE_THREADS` (a positive integer) when set;
2. `OMP_NUM_THREADS` (the first number of its list) when set;
3. `usable_cpus()`: the CPUs in this process's affinity mask, capped by the tightest CPU
   quota of its cgroup and the groups above it (v2 `cpu.max`, v1 `cpu.cfs_quota_us` /
   `cpu.cfs_period_us`), rounded up, at least 1.

`quiet_openmp()` makes idle OpenMP threads go to sleep after a short spin
(`GOMP_SPINCOUNT=3000`, a hundredth of libgomp's default) unless the environment already
sets `GOMP_SPINCOUNT` or `OMP_WAIT_POLICY`. It must run before an OpenMP runtime is
loaded, which is why `bclake/__init__.py` calls it. Measured with `bench.forecast_bench
--busy` and the demo region forecast (BENCHMARKS.md, 2 cores): libgomp's default (spin
300,000 times, then sleep) made a forecast 7-11x slower beside one CPU hog; sleeping at
once (`PASSIVE`) made the quiet run 1.5x slower; 1,000 spins cost the quiet demo
forecast 6-20%; 3,000 spins keep the busy slowdown near 2x at no measurable quiet cost.
"""

from __future__ import annotations

import math
import os
import sys
import warnings
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")


def _quota(quota: int, period: int) -> float | None:
    return quota / period if quota > 0 and period > 0 else None


def _cgroup_v2_quota(folder: Path) -> float | None:
    """CPUs allowed by one cgroup v2 folder's `cpu.max` ("max 100000" or "<quota> <period>")."""
    try:
        fields = (folder / "cpu.max").read_text(encoding="ascii").split()
        return _quota(int(fields[0]), int(fields[1])) if len(fields) == 2 else None
    except (OSError, ValueError):  # no file, or "max"
        return None


def _cgroup_v1_quota(folder: Path) -> float | None:
    """CPUs allowed by one cgroup v1 folder's `cpu.cfs_quota_us` / `cpu.cfs_period_us`."""
    try:
        quota = int((folder / "cpu.cfs_quota_us").read_text(encoding="ascii"))
        period = int((folder / "cpu.cfs_period_us").read_text(encoding="ascii"))
    except (OSError, ValueError):
        return None
    return _quota(quota, period)


def _own_cgroups(proc_cgroup: Path) -> dict[str, str]:
    """This process's cgroup path per hierarchy from /proc/self/cgroup: "" for the v2
    unified hierarchy, else the v1 controllers ("cpu,cpuacct")."""
    try:
        lines = proc_cgroup.read_text(encoding="ascii").splitlines()
    except OSError:
        return {}
    own = {}
    for line in lines:
        parts = line.split(":", 2)
        if len(parts) == 3:
            own[parts[1]] = parts[2]
    return own


def _with_parents(root: Path, path: str) -> list[Path]:
    """`root/path` and every folder above it up to `root` (a quota anywhere above applies)."""
    inner = [p for p in path.strip("/").split("/") if p and p != ".."]
    return [root.joinpath(*inner[:k]) for k in range(len(inner), -1, -1)]


def cgroup_cpu_quota(
    root: Path = CGROUP_ROOT, proc_cgroup: Path = Path("/proc/self/cgroup")
) -> float | None:
    """The tightest CPU quota, in CPUs (e.g. 1.5), of this process's cgroup and the groups
    above it (a container's own group, a systemd unit's `CPUQuota`), cgroup v2 else v1;
    None when unlimited or unknown. `root` is the cgroup file system and `proc_cgroup` the
    process's cgroup list (a test passes folders of fake files)."""
    own = _own_cgroups(proc_cgroup)
    v1 = next((path for keys, path in own.items() if "cpu" in keys.split(",")), "/")
    candidates = [_cgroup_v2_quota(f) for f in _with_parents(root, own.get("", "/"))]
    for base in (root / "cpu", root / "cpu,cpuacct", root):
        candidates += [_cgroup_v1_quota(f) for f in _with_parents(base, v1)]
    quotas = [q for q in candidates if q is not None]
    return min(quotas) if quotas else None


def affinity_cpus() -> int:
    """CPUs in this process's affinity mask (`os.sched_getaffinity`; `os.cpu_count()` where
    the platform has no affinity), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def usable_cpus(root: Path = CGROUP_ROOT, proc_cgroup: Path = Path("/proc/self/cgroup")) -> int:
    """CPUs this process may use: the affinity mask capped by the cgroup quota (rounded
    up: a quota of 1.5 CPUs still runs two threads usefully), at least 1."""
    cpus = affinity_cpus()
    quota = cgroup_cpu_quota(root, proc_cgroup)
    if quota is not None:
        cpus = min(cpus, max(1, math.ceil(quota - 1e-9)))
    return cpus


def _positive_int(text: str | None, name: str) -> int | None:
    if text is None or not text.strip():
        return None
    head = text.split(",")[0].strip()
    try:
        value = int(head)
    except ValueError:
        raise ValueError(f"{name}={text!r}: give a whole number of threads, e.g. 2") from None
    if value < 1:
        raise ValueError(f"{name}={text!r}: give at least 1 thread")
    return value


def model_threads(root: Path = CGROUP_ROOT, proc_cgroup: Path = Path("/proc/self/cgroup")) -> int:
    """Threads for one model fit (LightGBM `num_threads`): `BCLAKE_THREADS`, else
    `OMP_NUM_THREADS`, else `usable_cpus()`. Raises ValueError naming the variable when a
    set value is not a positive whole number."""
    for name in ("BCLAKE_THREADS", "OMP_NUM_THREADS"):
        value = _positive_int(os.environ.get(name), name)
        if value is not None:
            return value
    return usable_cpus(root, proc_cgroup)


OPENMP_SPINCOUNT = "3000"  # spins of an idle OpenMP thread before it sleeps


# Below this many rows a LightGBM fit or prediction runs on one thread: its parallel
# regions are too short to pay for waking a second thread (on 2 cores the forecast tests,
# about 10^4 training rows per fit, took 1.8x as long on 2 threads with idle threads that
# sleep after 3,000 spins, and 1.2x with one thread, as on 2 spinning threads).
SMALL_FIT_ROWS = 100_000


def threads_for(requested: object, rows: int | None = None) -> int:
    """The threads a model fit or prediction over `rows` rows runs on: `requested` when it
    is a positive whole number (a model's explicit `num_threads`); else one thread below
    `SMALL_FIT_ROWS` rows; else `model_threads()` (0, None or a negative count, which
    LightGBM would read as every CPU of the machine, mean this)."""
    if isinstance(requested, int) and not isinstance(requested, bool) and requested > 0:
        return requested
    if rows is not None and rows < SMALL_FIT_ROWS:
        return 1
    return model_threads()


def quiet_openmp() -> None:
    """Idle OpenMP threads spin `OPENMP_SPINCOUNT` times, then sleep (`GOMP_SPINCOUNT`),
    unless `GOMP_SPINCOUNT` or `OMP_WAIT_POLICY` is already set. Takes effect only for
    OpenMP runtimes loaded later (LightGBM's libgomp): warns when lightgbm is imported
    already."""
    if "OMP_WAIT_POLICY" in os.environ or "GOMP_SPINCOUNT" in os.environ:
        return
    if "lightgbm" in sys.modules:  # its libgomp has read the environment already
        warnings.warn(
            "lightgbm was imported before bclake, so its idle OpenMP threads keep libgomp's "
            "default spinning, which slows model fits badly beside other busy processes: "
            f"import bclake first, or set GOMP_SPINCOUNT={OPENMP_SPINCOUNT} in the "
            "environment",
            RuntimeWarning,
            stacklevel=3,
        )
    os.environ["GOMP_SPINCOUNT"] = OPENMP_SPINCOUNT
