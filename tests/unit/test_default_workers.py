"""The number of server workers: by default one per CPU the server may use, capped; --workers overrides it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from ecrd.config import DEFAULT_WORKERS_CAP, Settings, SettingsError, usable_cpus


def cgroup(tmp_path: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return tmp_path


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        ({}, 4),  # no cgroup files: the CPUs of the affinity mask
        ({"cpu.max": "max 100000\n"}, 4),  # cgroup v2 without a quota
        ({"cpu.max": "200000 100000\n"}, 2),  # a quota of two CPUs' time
        ({"cpu.max": "150000 100000\n"}, 2),  # 1.5 CPUs: rounded up, a worker may use part of a CPU
        ({"cpu.max": "50000 100000\n"}, 1),  # less than one CPU is still one worker
        ({"cpu.max": "800000 100000\n"}, 4),  # a quota beyond the affinity mask does not add CPUs
        ({"cpu/cpu.cfs_quota_us": "300000\n", "cpu/cpu.cfs_period_us": "100000\n"}, 3),  # cgroup v1
        ({"cpu/cpu.cfs_quota_us": "-1\n", "cpu/cpu.cfs_period_us": "100000\n"}, 4),  # cgroup v1, no quota
        ({"cpu.max": "garbage\n"}, 4),  # unreadable: the affinity mask
    ],
)
def test_usable_cpus_are_the_affinity_mask_within_the_cgroup_quota(
    tmp_path: Path, files: dict[str, str], expected: int
) -> None:
    assert usable_cpus(affinity={0, 1, 2, 3}, cgroup_root=cgroup(tmp_path, files)) == expected


def test_the_default_resolves_to_one_worker_per_usable_cpu_up_to_the_cap() -> None:
    settings = Settings.load(environ={})
    assert settings.workers == 0
    assert settings.resolved_workers == min(usable_cpus(), DEFAULT_WORKERS_CAP)
    assert 1 <= settings.resolved_workers <= len(os.sched_getaffinity(0))


def test_an_explicit_number_of_workers_is_kept_whatever_the_machine() -> None:
    assert Settings.load(flags={"workers": "3"}, environ={}).resolved_workers == 3
    assert Settings.load(environ={"ECRD_WORKERS": "16"}).resolved_workers == 16


def test_a_negative_number_of_workers_is_refused() -> None:
    with pytest.raises(SettingsError, match="workers"):
        Settings.load(flags={"workers": "-1"}, environ={})
