"""Version ordering per ecosystem, against each scheme's own rules (dpkg, apk, rpmvercmp, PEP 440, SemVer)."""

from __future__ import annotations

import random
import shutil
import subprocess

import pytest

from ecrd.scanner.versions import SEMVER, UnparsableVersion, scheme_for
from tests.support.vulndata import records


def _check(ecosystem: str, lower: str, higher: str) -> None:
    scheme = scheme_for(ecosystem)
    assert scheme is not None
    assert scheme.compare(lower, higher) == -1, f"{lower} < {higher}"
    assert scheme.compare(higher, lower) == 1, f"{higher} > {lower}"


# dpkg: deb-version(7) — epoch first, "~" sorts before everything (even the end), letters before non-letters.
DEBIAN_ORDER = [
    ("1.0", "1.1"),
    ("1.9", "1.10"),
    ("1.0~rc1", "1.0"),
    ("1.0~~", "1.0~"),
    ("1.0-1", "1.0-1+b1"),
    ("1.1.1n-0+deb11u3", "1.1.1n-0+deb11u4"),
    ("1.1.1n-0+deb11u4", "1.1.1w-0+deb11u1"),
    ("2.36-9+deb12u4", "2.36-9+deb12u10"),
    ("3.0.11-1~deb12u2", "3.0.11-1"),
    ("9.9", "1:0.1"),
    ("1:1.20.11-1+deb11u5", "2:1.20.11-1+deb11u6"),
    ("1.0a", "1.0b"),
    ("1.0+dfsg", "1.0.1"),
]

# apk (apk-tools version.c): suffixes _alpha < _beta < _pre < _rc < (none) < _p, then -rN release numbers.
ALPINE_ORDER = [
    ("1.9", "1.10"),
    ("1.2.3_rc1", "1.2.3"),
    ("1.2.3_alpha", "1.2.3_beta"),
    ("1.2.3_beta2", "1.2.3_rc1"),
    ("1.2.3", "1.2.3_p1"),
    ("1.2.3-r1", "1.2.3-r2"),
    ("1.2.3-r9", "1.2.3-r10"),
    ("1.2.3-r10", "1.2.3.1-r0"),
    ("1.1.1g-r0", "1.1.1h-r0"),
    ("7.5_p1-r0", "7.5_p2-r0"),
    ("2.9.10-r4", "2.9.10-r5"),
]

# rpmvercmp: epoch first; segments of digits compare numerically and beat letters; "~" sorts before the end.
RPM_ORDER = [
    ("1.0", "1.1"),
    ("1.9", "1.10"),
    ("1.0~rc1", "1.0"),
    ("1.0a", "1.0.1"),
    ("3.0.7-16.el9", "3.0.7-17.el9"),
    ("3.0.7-16.el9_2", "3.0.7-16.el9_3"),
    ("9:1.0-1", "10:0.1-1"),
    ("2.0-1", "1:1.0-1"),
]

# PEP 440: dev < pre < final < post.
PYPI_ORDER = [
    ("1.0.dev1", "1.0a1"),
    ("1.0a1", "1.0b1"),
    ("1.0b1", "1.0rc1"),
    ("1.0rc1", "1.0"),
    ("1.0", "1.0.post1"),
    ("23.2.1", "23.3"),
    ("65.5.0", "65.5.1"),
    ("1.9", "1.10"),
    ("2.0", "1!0.1"),
]

# SemVer 2.0 §11: pre-releases sort before the release, identifiers compared numerically or lexically.
SEMVER_ORDER = [
    ("1.0.0-alpha", "1.0.0-alpha.1"),
    ("1.0.0-alpha.1", "1.0.0-alpha.beta"),
    ("1.0.0-beta.2", "1.0.0-beta.11"),
    ("1.0.0-rc.1", "1.0.0"),
    ("4.17.20", "4.17.21"),
    ("1.2.5", "1.2.6"),
    ("0.9.0", "0.10.0"),
]


@pytest.mark.parametrize(("lower", "higher"), DEBIAN_ORDER)
def test_debian_versions_order_as_dpkg_does(lower: str, higher: str) -> None:
    _check("Debian:11", lower, higher)


@pytest.mark.parametrize(("lower", "higher"), ALPINE_ORDER)
def test_alpine_versions_order_as_apk_does(lower: str, higher: str) -> None:
    _check("Alpine:v3.11", lower, higher)


@pytest.mark.parametrize(("lower", "higher"), RPM_ORDER)
def test_rpm_versions_order_as_rpmvercmp_does(lower: str, higher: str) -> None:
    _check("AlmaLinux:9", lower, higher)


@pytest.mark.parametrize(("lower", "higher"), PYPI_ORDER)
def test_pypi_versions_order_by_pep_440(lower: str, higher: str) -> None:
    _check("PyPI", lower, higher)


@pytest.mark.parametrize(("lower", "higher"), SEMVER_ORDER)
def test_npm_versions_order_by_semver(lower: str, higher: str) -> None:
    _check("npm", lower, higher)
    assert SEMVER.compare(lower, higher) == -1


@pytest.mark.parametrize(
    ("ecosystem", "a", "b"),
    [
        ("PyPI", "1.0", "1.0.0"),
        ("PyPI", "1.0RC1", "1.0rc1"),
        ("Debian:11", "1.0", "0:1.0"),
        ("Alpine:v3.9", "1.2.3-r0", "1.2.3-r0"),
        ("AlmaLinux:9", "0:1.0-1", "1.0-1"),
    ],
)
def test_equal_versions_compare_equal(ecosystem: str, a: str, b: str) -> None:
    scheme = scheme_for(ecosystem)
    assert scheme is not None
    assert scheme.compare(a, b) == 0


def test_alpine_comparison_uses_the_scheme_not_the_raw_string() -> None:
    # univers' apk versions inherit <= from attrs, which compares strings; compare() must not use it.
    alpine = scheme_for("Alpine:v3.11")
    assert alpine is not None
    assert alpine.compare("1.10", "1.9") == 1
    assert alpine.compare("1.9", "1.10") == -1


@pytest.mark.parametrize(
    ("ecosystem", "range_type", "expected"),
    [
        ("Debian:11", "ECOSYSTEM", "Debian"),
        ("Alpine:v3.11", "ECOSYSTEM", "Alpine"),
        ("PyPI", "ECOSYSTEM", "PyPI"),
        ("npm", "ECOSYSTEM", "npm"),
        ("PyPI", "SEMVER", "SemVer"),
        ("PyPI", "GIT", None),
        ("crates.io", "ECOSYSTEM", None),
    ],
)
def test_scheme_is_chosen_by_ecosystem_and_range_type(ecosystem: str, range_type: str, expected: str | None) -> None:
    scheme = scheme_for(ecosystem, range_type)
    assert (scheme.name if scheme else None) == expected


def test_a_version_the_scheme_rejects_raises_unparsable() -> None:
    pypi = scheme_for("PyPI")
    assert pypi is not None
    assert not pypi.is_valid("not a version")
    with pytest.raises(UnparsableVersion):
        pypi.compare("not a version", "1.0")


@pytest.mark.skipif(shutil.which("dpkg") is None, reason="needs dpkg to cross-check")
def test_debian_ordering_agrees_with_dpkg_on_real_advisory_versions() -> None:
    versions: set[str] = set()
    for advisory in records("debian-dsa-dla"):
        for affected in advisory["affected"]:
            for range_ in affected["ranges"]:
                versions.update(v for event in range_["events"] for v in event.values() if v != "0")
    debian = scheme_for("Debian:11")
    assert debian is not None
    pool = sorted(v for v in versions if debian.is_valid(v))
    rng = random.Random(20240101)
    for _ in range(200):
        a = rng.choice(pool)
        # Half the pairs share a prefix, where the ordering rules (~, +, epochs, revisions) matter most.
        near = [v for v in pool if v[:3] == a[:3]]
        b = rng.choice(near if rng.random() < 0.5 else pool)
        lt = subprocess.run(["dpkg", "--compare-versions", a, "lt", b], check=False).returncode == 0
        eq = subprocess.run(["dpkg", "--compare-versions", a, "eq", b], check=False).returncode == 0
        assert debian.compare(a, b) == (-1 if lt else 0 if eq else 1), (a, b)
