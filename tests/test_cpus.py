"""Thread counts from the CPUs a process may use, and idle OpenMP threads that sleep."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import lightgbm as lgb
import polars as pl
import pytest
from test_forecast import model, weekly_table

from bclake.core import cpus
from bclake.ml.uplift import UpliftModel


@pytest.fixture
def no_thread_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("BCLAKE_THREADS", "OMP_NUM_THREADS"):
        monkeypatch.delenv(name, raising=False)


def cgroup(tmp_path: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="ascii")
    return tmp_path


@pytest.mark.parametrize(
    ("files", "quota"),
    [
        ({"cpu.max": "max 100000\n"}, None),  # v2, unlimited
        ({"cpu.max": "150000 100000\n"}, 1.5),  # v2, docker --cpus 1.5
        ({"cpu.max": "garbage\n"}, None),
        ({"cpu/cpu.cfs_quota_us": "-1\n", "cpu/cpu.cfs_period_us": "100000\n"}, None),  # v1
        ({"cpu/cpu.cfs_quota_us": "50000\n", "cpu/cpu.cfs_period_us": "100000\n"}, 0.5),
        ({}, None),  # no cgroup file system
    ],
)
def test_cgroup_quota_v1_and_v2(tmp_path: Path, files: dict[str, str], quota) -> None:
    own = cgroup(tmp_path / "proc", {"cgroup": "1:cpu,cpuacct:/\n0::/\n"}) / "cgroup"
    assert cpus.cgroup_cpu_quota(cgroup(tmp_path / "fs", files), own) == quota


def test_the_tightest_quota_of_the_process_group_and_those_above_it_applies(
    tmp_path: Path,
) -> None:
    """A systemd unit's CPUQuota sits in the unit's own group, not at the root; a quota of
    a group above (a slice) caps the groups below it."""
    own = cgroup(tmp_path / "proc", {"cgroup": "0::/system.slice/bclake.service\n"}) / "cgroup"
    unit = {
        "cpu.max": "max 100000",
        "system.slice/cpu.max": "300000 100000",
        "system.slice/bclake.service/cpu.max": "150000 100000",
    }
    assert cpus.cgroup_cpu_quota(cgroup(tmp_path / "unit", unit), own) == 1.5
    unit["system.slice/cpu.max"] = "100000 100000"
    assert cpus.cgroup_cpu_quota(cgroup(tmp_path / "slice", unit), own) == 1.0
    v1 = cgroup(tmp_path / "proc1", {"cgroup": "2:cpu,cpuacct:/docker/abc\n"}) / "cgroup"
    docker = {
        "cpu/docker/abc/cpu.cfs_quota_us": "200000",
        "cpu/docker/abc/cpu.cfs_period_us": "100000",
    }
    assert cpus.cgroup_cpu_quota(cgroup(tmp_path / "v1", docker), v1) == 2.0


def test_usable_cpus_is_the_affinity_capped_by_the_quota_rounded_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    own = cgroup(tmp_path / "proc", {"cgroup": "0::/\n"}) / "cgroup"
    monkeypatch.setattr(os, "sched_getaffinity", lambda _pid: {0, 1, 2, 3, 4, 5, 6, 7})
    assert cpus.usable_cpus(cgroup(tmp_path / "none", {}), own) == 8
    assert cpus.usable_cpus(cgroup(tmp_path / "q15", {"cpu.max": "150000 100000"}), own) == 2
    assert cpus.usable_cpus(cgroup(tmp_path / "q05", {"cpu.max": "50000 100000"}), own) == 1
    monkeypatch.setattr(os, "sched_getaffinity", lambda _pid: {3})  # taskset -c 3
    assert cpus.usable_cpus(cgroup(tmp_path / "q4", {"cpu.max": "400000 100000"}), own) == 1


@pytest.mark.usefixtures("no_thread_settings")
def test_model_threads_honours_settings_in_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = cgroup(tmp_path, {"cpu.max": "100000 100000"})
    own = cgroup(tmp_path / "proc", {"cgroup": "0::/\n"}) / "cgroup"
    assert cpus.model_threads(root, own) == 1
    monkeypatch.setenv("OMP_NUM_THREADS", "4,2")
    assert cpus.model_threads(root, own) == 4
    monkeypatch.setenv("BCLAKE_THREADS", "3")
    assert cpus.model_threads(root, own) == 3
    for bad in ("0", "two", "-1"):
        monkeypatch.setenv("BCLAKE_THREADS", bad)
        with pytest.raises(ValueError, match="BCLAKE_THREADS"):
            cpus.model_threads(root, own)


def _spincount(env: dict[str, str], first: str = "os") -> str:
    code = f"import {first}, os, bclake; print(os.environ.get('GOMP_SPINCOUNT'))"
    clean = {k: v for k, v in os.environ.items() if k not in ("GOMP_SPINCOUNT", "OMP_WAIT_POLICY")}
    out = subprocess.run(
        [sys.executable, "-c", code], env={**clean, **env}, capture_output=True, text=True
    )
    return out.stdout.strip() + out.stderr


def test_importing_bclake_makes_idle_openmp_threads_sleep_unless_told_otherwise() -> None:
    assert _spincount({}) == cpus.OPENMP_SPINCOUNT
    assert _spincount({"GOMP_SPINCOUNT": "5"}) == "5"
    assert _spincount({"OMP_WAIT_POLICY": "ACTIVE"}) == "None"
    # too late for a libgomp already loaded: said, with what to do
    late = _spincount({}, first="lightgbm")
    assert "RuntimeWarning: lightgbm was imported before bclake" in late
    assert "import bclake first" in late


def test_models_train_and_predict_with_the_thread_count(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("BCLAKE_THREADS", "2")
    monkeypatch.setattr(cpus, "SMALL_FIT_ROWS", 0)  # these small fits count as large
    predicted: list[object] = []
    predict = lgb.Booster.predict

    def spy(self: lgb.Booster, data: object, *args: object, **kwargs: object) -> object:
        predicted.append(kwargs.get("num_threads"))
        return predict(self, data, *args, **kwargs)

    monkeypatch.setattr(lgb.Booster, "predict", spy)
    fitted = model(params={"num_threads": -1}).fit(weekly_table(n_series=4, n_weeks=60))
    assert {b.params["num_threads"] for b in fitted.models_.values()} == {2}
    fitted.predict()
    assert predicted and set(predicted) == {2}
    rows = 400
    training = pl.DataFrame(
        {
            "campaign_id": ["C1"] * rows,
            "consumer_id": [f"u{i}" for i in range(rows)],
            "treated": [i % 5 != 0 for i in range(rows)],
            "responded": [i % 3 == 0 for i in range(rows)],
            "orders": [float(i % 7) for i in range(rows)],
        }
    )
    predicted.clear()
    uplift = UpliftModel("t_learner").fit(training)
    assert {b.params["num_threads"] for b in uplift.models.values()} == {2}
    uplift.predict(training)
    uplift.contributions(training)
    assert predicted and set(predicted) == {2}
    # at their real size they are small: one thread, whatever the setting
    monkeypatch.setattr(cpus, "SMALL_FIT_ROWS", 100_000)
    predicted.clear()
    uplift = UpliftModel("t_learner").fit(training)
    assert {b.params["num_threads"] for b in uplift.models.values()} == {1}
    uplift.predict(training)
    assert set(predicted) == {1}


@pytest.mark.usefixtures("no_thread_settings")
def test_threads_for_a_fit_follow_its_size_unless_the_model_says(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(cpus, "model_threads", lambda: 8)
    assert cpus.threads_for(0, rows=cpus.SMALL_FIT_ROWS - 1) == 1
    assert cpus.threads_for(None, rows=cpus.SMALL_FIT_ROWS) == 8
    assert cpus.threads_for(-1) == 8  # LightGBM's "every CPU of the machine" is not taken
    assert cpus.threads_for(3, rows=10) == 3  # a model's explicit count wins
