"""How many threads bclake's models may use: the CPUs this process may actually run on.

`os.cpu_count()` counts the machine's CPUs, not the ones a process may use. A process
pinned to some CPUs (`taskset`, a container's cpuset) or limited by a CPU quota (a
container's `--cpus`, a Kubernetes limit, a systemd `CPUQuota`) that starts one thread per
machine CPU gets threads that wait for each other; LightGBM's OpenMP threads also spin
while they wait, which burns the CPU the other threads need.

Order of precedence for `model_threads()`:
1. `BCLAKE_THREADS` (a positive integer) when set;
2. `OMP_NUM_THREADS` (the first number of its list) when set;
3. `usable_cpus()`: the CPUs in this process's affinity mask, capped by the cgroup CPU
   quota (v2 `cpu.max`, else v1 `cpu.cfs_quota_us` / `cpu.cfs_period_us`), rounded up,
   at least 1.

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
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")


def _cgroup_v2_quota(root: Path) -> float | None:
    """CPUs allowed by cgroup v2 `cpu.max` ("max 100000" or "<quota> <period>"), or None."""
    try:
        fields = (root / "cpu.max").read_text(encoding="ascii").split()
    except OSError:
        return None
    if len(fields) != 2 or fields[0] == "max":
        return None
    try:
        quota, period = int(fields[0]), int(fields[1])
    except ValueError:
        return None
    return quota / period if quota > 0 and period > 0 else None


def _cgroup_v1_quota(root: Path) -> float | None:
    """CPUs allowed by cgroup v1 `cpu.cfs_quota_us` / `cpu.cfs_period_us` (-1: none), or None."""
    for folder in (root / "cpu", root / "cpu,cpuacct", root):
        try:
            quota = int((folder / "cpu.cfs_quota_us").read_text(encoding="ascii"))
            period = int((folder / "cpu.cfs_period_us").read_text(encoding="ascii"))
        except (OSError, ValueError):
            continue
        return quota / period if quota > 0 and period > 0 else None
    return None


def cgroup_cpu_quota(root: Path = CGROUP_ROOT) -> float | None:
    """The CPU quota of this process's cgroup in CPUs (e.g. 1.5), or None when unlimited
    or unknown. `root`: the cgroup file system (a test passes a folder of fake files)."""
    quota = _cgroup_v2_quota(root)
    return quota if quota is not None else _cgroup_v1_quota(root)


def affinity_cpus() -> int:
    """CPUs in this process's affinity mask (`os.sched_getaffinity`; `os.cpu_count()` where
    the platform has no affinity), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def usable_cpus(root: Path = CGROUP_ROOT) -> int:
    """CPUs this process may use: the affinity mask capped by the cgroup quota (rounded
    up: a quota of 1.5 CPUs still runs two threads usefully), at least 1."""
    cpus = affinity_cpus()
    quota = cgroup_cpu_quota(root)
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


def model_threads(root: Path = CGROUP_ROOT) -> int:
    """Threads for one model fit (LightGBM `num_threads`): `BCLAKE_THREADS`, else
    `OMP_NUM_THREADS`, else `usable_cpus()`. Raises ValueError naming the variable when a
    set value is not a positive whole number."""
    for name in ("BCLAKE_THREADS", "OMP_NUM_THREADS"):
        value = _positive_int(os.environ.get(name), name)
        if value is not None:
            return value
    return usable_cpus(root)


OPENMP_SPINCOUNT = "3000"  # spins of an idle OpenMP thread before it sleeps


def quiet_openmp() -> None:
    """Idle OpenMP threads spin `OPENMP_SPINCOUNT` times, then sleep (`GOMP_SPINCOUNT`),
    unless `GOMP_SPINCOUNT` or `OMP_WAIT_POLICY` is already set. Takes effect only for
    OpenMP runtimes loaded later (LightGBM's libgomp)."""
    if "OMP_WAIT_POLICY" not in os.environ:
        os.environ.setdefault("GOMP_SPINCOUNT", OPENMP_SPINCOUNT)
