"""The inventory from each source: os-release, dpkg status (and distroless status.d), apk, the RPM SQLite
database, Python distribution metadata and npm modules — read from synthetic layers through the scanner."""

from __future__ import annotations

import json
import sqlite3
import struct
from pathlib import Path

import pytest

from ecrd.scanner.advisories import AdvisoryIndex
from ecrd.scanner.inventory import (
    OperatingSystem,
    Package,
    PackageType,
    RpmHeaderError,
    is_node_module_manifest,
    parse_os_release,
    parse_rpm_header,
    wanted_size,
)
from ecrd.scanner.scan import ScanResult, scan_layers
from tests.support.layers import file, layer, openers, symlink

DEBIAN_11 = 'PRETTY_NAME="Debian GNU/Linux 11 (bullseye)"\nNAME="Debian GNU/Linux"\nVERSION_ID="11"\nID=debian\n'


def scan(*blobs: bytes) -> ScanResult:
    return scan_layers(openers(*blobs), AdvisoryIndex())


def by_name(result: ScanResult) -> dict[str, Package]:
    return {package.name: package for package in result.packages}


# -- os-release ------------------------------------------------------------------------------------------


def test_os_release_values_are_unquoted() -> None:
    text = "NAME='Alpine Linux'\nID=alpine\nVERSION_ID=3.11.6\nPRETTY_NAME=\"Alpine Linux v3.11\"\n# comment\n"

    assert parse_os_release(text) == OperatingSystem("alpine", "3.11.6", "Alpine Linux v3.11", ())


def test_os_release_without_an_id_is_no_os() -> None:
    assert parse_os_release('NAME="Something"\n') is None


def test_os_release_is_read_through_the_etc_symlink_as_debian_ships_it() -> None:
    result = scan(layer(file("usr/lib/os-release", DEBIAN_11), symlink("etc/os-release", "../usr/lib/os-release")))

    assert result.os == OperatingSystem("debian", "11", "Debian GNU/Linux 11 (bullseye)", ())


def test_usr_lib_os_release_is_used_when_etc_has_none() -> None:
    result = scan(layer(file("usr/lib/os-release", 'ID=ubuntu\nVERSION_ID="22.04"\nID_LIKE=debian\n')))

    assert result.os == OperatingSystem("ubuntu", "22.04", None, ("debian",))


# -- dpkg ------------------------------------------------------------------------------------------------

DPKG_STATUS = """\
Package: libssl1.1
Status: install ok installed
Priority: optional
Architecture: amd64
Multi-Arch: same
Source: openssl
Version: 1.1.1n-0+deb11u4
Description: Secure Sockets Layer toolkit - shared libraries
 This package is part of the OpenSSL project's implementation of the SSL and TLS
 cryptographic protocols for secure communication over the Internet.

Package: libgnutls30
Status: install ok installed
Architecture: amd64
Source: gnutls28 (3.7.1-5+deb11u2)
Version: 3.7.1-5+deb11u2+b1

Package: old-removed
Status: deinstall ok config-files
Architecture: amd64
Version: 1.0-1

Package: base-files
Status: install ok installed
Architecture: amd64
Version: 11.1+deb11u7
"""


def test_dpkg_status_maps_binary_packages_to_their_source_package_and_version() -> None:
    packages = by_name(scan(layer(file("etc/os-release", DEBIAN_11), file("var/lib/dpkg/status", DPKG_STATUS))))

    assert packages["libssl1.1"] == Package(
        PackageType.DEB,
        "libssl1.1",
        "1.1.1n-0+deb11u4",
        "var/lib/dpkg/status",
        "openssl",
        "1.1.1n-0+deb11u4",
        "amd64",
        None,
    )
    # A binNMU: the source version is the one in parentheses, not the binary's +b1 version.
    assert (packages["libgnutls30"].source_name, packages["libgnutls30"].source_version) == (
        "gnutls28",
        "3.7.1-5+deb11u2",
    )
    # Without Source:, the package is its own source.
    assert (packages["base-files"].source_name, packages["base-files"].source_version) == ("base-files", "11.1+deb11u7")


def test_dpkg_packages_removed_but_with_config_files_left_are_not_installed() -> None:
    packages = by_name(scan(layer(file("var/lib/dpkg/status", DPKG_STATUS))))

    assert "old-removed" not in packages


def test_distroless_status_d_files_are_read_one_package_each_without_md5sums() -> None:
    result = scan(
        layer(
            file("etc/os-release", DEBIAN_11),
            file(
                "var/lib/dpkg/status.d/libc6",
                "Package: libc6\nVersion: 2.31-13+deb11u5\nArchitecture: amd64\nSource: glibc\n",
            ),
            file("var/lib/dpkg/status.d/libc6.md5sums", "d41d8cd98f00b204e9800998ecf8427e  lib/x\n"),
            file("var/lib/dpkg/status.d/tzdata", "Package: tzdata\nVersion: 2021a-1+deb11u8\nArchitecture: all\n"),
        )
    )

    assert {(p.name, p.source_name, p.location) for p in result.packages} == {
        ("libc6", "glibc", "var/lib/dpkg/status.d/libc6"),
        ("tzdata", "tzdata", "var/lib/dpkg/status.d/tzdata"),
    }


# -- apk -------------------------------------------------------------------------------------------------

APK_INSTALLED = """\
C:Q1abc=
P:musl
V:1.1.24-r2
A:x86_64
S:377000
I:614400
T:the musl c library (libc) implementation
L:MIT
o:musl
m:Timo Teräs <timo.teras@iki.fi>

C:Q1def=
P:libcrypto1.1
V:1.1.1g-r0
A:x86_64
L:OpenSSL
o:openssl
"""


def test_apk_installed_db_gives_packages_with_their_origin() -> None:
    packages = by_name(
        scan(
            layer(file("etc/os-release", "ID=alpine\nVERSION_ID=3.11.6\n"), file("lib/apk/db/installed", APK_INSTALLED))
        )
    )

    assert packages["libcrypto1.1"] == Package(
        PackageType.APK,
        "libcrypto1.1",
        "1.1.1g-r0",
        "lib/apk/db/installed",
        "openssl",
        "1.1.1g-r0",
        "x86_64",
        "OpenSSL",
    )
    assert packages["musl"].source_name == "musl"


# -- rpm -------------------------------------------------------------------------------------------------


def rpm_header(tags: dict[int, str | int]) -> bytes:
    """A header blob as rpm's headerExport writes it into rpmdb.sqlite: counts, index entries, data store."""
    index, store = b"", b""
    # rpm puts a region tag first; the reader must step over tags it does not know.
    index += struct.pack(">iIII", 63, 7, 0, 16)
    store += b"\0" * 16
    for tag, value in sorted(tags.items()):
        if isinstance(value, int):
            store += b"\0" * (-len(store) % 4)  # int32 data is 4-byte aligned
            index += struct.pack(">iIII", tag, 4, len(store), 1)
            store += struct.pack(">i", value)
        else:
            kind = 9 if tag == 1014 else 6  # the licence is an i18n string in real headers
            index += struct.pack(">iIII", tag, kind, len(store), 1)
            store += value.encode() + b"\0"
    return struct.pack(">II", len(index) // 16, len(store)) + index + store


def rpmdb(path: Path, headers: list[bytes]) -> bytes:
    connection = sqlite3.connect(path)
    connection.execute("CREATE TABLE Packages (hnum INTEGER PRIMARY KEY AUTOINCREMENT, blob BLOB NOT NULL)")
    connection.executemany("INSERT INTO Packages (blob) VALUES (?)", [(h,) for h in headers])
    connection.commit()
    connection.close()
    return path.read_bytes()


def test_rpm_packages_are_read_from_the_sqlite_rpmdb(tmp_path: Path) -> None:
    database = rpmdb(
        tmp_path / "rpmdb.sqlite",
        [
            rpm_header(
                {
                    1000: "openssl-libs",
                    1001: "3.0.7",
                    1002: "16.el9_2",
                    1003: 1,
                    1022: "x86_64",
                    1044: "openssl-3.0.7-16.el9_2.src.rpm",
                    1014: "ASL 2.0",
                }
            ),
            rpm_header(
                {1000: "bash", 1001: "5.1.8", 1002: "6.el9_1", 1022: "x86_64", 1044: "bash-5.1.8-6.el9_1.src.rpm"}
            ),
            rpm_header({1000: "gpg-pubkey", 1001: "fd431d51", 1002: "4ae0493b"}),
        ],
    )

    result = scan(
        layer(file("etc/os-release", 'ID="almalinux"\nVERSION_ID="9.2"\n'), file("var/lib/rpm/rpmdb.sqlite", database))
    )

    packages = by_name(result)
    assert sorted(packages) == ["bash", "openssl-libs"]
    assert packages["openssl-libs"] == Package(
        PackageType.RPM,
        "openssl-libs",
        "1:3.0.7-16.el9_2",
        "var/lib/rpm/rpmdb.sqlite",
        "openssl",
        "1:3.0.7-16.el9_2",
        "x86_64",
        "ASL 2.0",
    )
    assert packages["bash"].version == "5.1.8-6.el9_1"


# The header blob rpm 4.18 stored in rpmdb.sqlite for a package built with rpmbuild from a spec saying
# "Name: demo-lib, Version: 3.0.7, Release: 16.el9_2, Epoch: 1, License: ASL 2.0, BuildArch: noarch" and
# installed with `rpm --dbpath DIR --define "_db_backend sqlite" -i --justdb` (SELECT blob FROM Packages).
REAL_RPM_HEADER = bytes.fromhex(
    "000000290000026c0000003f00000007000001c90000001000000064000000080000000000000001000003e80000000600000002"
    "00000001000003e9000000060000000b00000001000003ea000000060000001100000001000003eb000000040000001c00000001"
    "000003ec000000090000002000000001000003ed000000090000002500000001000003ee000000040000002c00000001000003ef"
    "000000060000003000000001000003f1000000040000003400000001000003f6000000060000003800000001000003f800000009"
    "0000004000000001000003fd000000060000004c00000001000003fe000000060000005200000001000004140000000600000059"
    "00000001000004170000000800000079000000010000041800000004000000840000000300000419000000080000009000000003"
    "0000041a00000008000000df000000030000042800000006000000f5000000010000045800000004000000fc0000000100000459"
    "00000008000001000000000100000462000000060000011100000001000004640000000600000118000000010000046500000006"
    "0000011d00000001000004660000000600000122000000010000046c000000060000012400000001000013930000000400000138"
    "00000001000013c6000000060000013c00000001000013e4000000080000014200000001000013e5000000040000018400000001"
    "000013e90000000800000188000000010000010100000004000001dc000000010000010500000007000001e0000000100000010d"
    "00000006000001f00000000100000111000000060000021900000001000003f0000000040000025c000000010000041600000004"
    "00000260000000010000046700000004000002640000000100000468000000040000026800000001430064656d6f2d6c69620033"
    "2e302e370031362e656c395f320000000000000164656d6f0064656d6f0000006b0b6119766d00000000000041534c20322e3000"
    "556e737065636966696564006c696e7578006e6f617263680064656d6f2d6c69622d332e302e372d31362e656c395f322e737263"
    "2e72706d0064656d6f2d6c69620000000100000a0100000a0100000a72706d6c696228436f6d7072657373656446696c654e616d"
    "6573290072706d6c69622846696c6544696765737473290072706d6c6962285061796c6f616446696c6573486176655072656669"
    "782900332e302e342d3100342e362e302d3100342e302d3100342e31382e300000000008313a332e302e372d31362e656c395f32"
    "002d4f32202d67006370696f00677a69700039006e6f617263682d64656269616e2d6c696e757800000000087574662d38006166"
    "33396531633139616634373861656637613033626539386566613964396261613232386662396639336533383432643664376231"
    "34613134363561343539000000000008323364303432326234666561323866373731653837323734316262333730373930623363"
    "64303533386561666234363132333365383230623834623537613265000000003f00000007fffffdf00000001000000000000429"
    "6d5b55516ca2e1ca552cf2ea718de8f8646236656461356133646266643730376233303265323961353961633335393835643465"
    "35316435003833333363373762663938366437663230666332613464303737323835383262303035613730393363623462373937"
    "61646464623636623330626661613265650000006b0b61190000007c000000036b0b6119"
)


def test_a_header_written_by_rpm_itself_is_read() -> None:
    tags = parse_rpm_header(REAL_RPM_HEADER)

    assert (tags[1000], tags[1001], tags[1002], tags[1003], tags[1022], tags[1014], tags[1044]) == (
        "demo-lib",
        "3.0.7",
        "16.el9_2",
        1,
        "noarch",
        "ASL 2.0",
        "demo-lib-3.0.7-16.el9_2.src.rpm",
    )


def test_an_rpm_header_that_points_outside_its_data_is_rejected() -> None:
    broken = struct.pack(">II", 1, 4) + struct.pack(">iIII", 1000, 6, 400, 1) + b"abc\0"

    with pytest.raises(RpmHeaderError):
        parse_rpm_header(broken)


def test_an_unreadable_rpmdb_is_noted_not_fatal() -> None:
    result = scan(
        layer(file("etc/os-release", "ID=rocky\nVERSION_ID=9.1\n"), file("var/lib/rpm/rpmdb.sqlite", b"not a database"))
    )

    assert result.packages == ()
    assert any("rpmdb.sqlite could not be read" in note for note in result.notes)


# -- Python ----------------------------------------------------------------------------------------------


def test_python_distributions_come_from_dist_info_and_egg_info() -> None:
    site = "usr/local/lib/python3.11/site-packages"
    result = scan(
        layer(
            file(
                f"{site}/pip-23.2.1.dist-info/METADATA",
                "Metadata-Version: 2.1\nName: pip\nVersion: 23.2.1\nLicense: MIT\nClassifier: A\nClassifier: B\n\n"
                "Name: not-a-header\n",
            ),
            file(
                f"{site}/Paste-3.5.0-py3.11.egg-info/PKG-INFO", "Metadata-Version: 1.1\nName: Paste\nVersion: 3.5.0\n"
            ),
            file(
                f"{site}/distutils_thing-1.0.egg-info",
                "Metadata-Version: 1.0\nName: distutils_thing\nVersion: 1.0\nLicense: BSD\n  with a second line\n",
            ),
            file(f"{site}/pip/_vendor/vendor.txt", "ignored"),
        )
    )

    assert {(p.type, p.name, p.version, p.license) for p in result.packages} == {
        (PackageType.PYPI, "pip", "23.2.1", "MIT"),
        (PackageType.PYPI, "Paste", "3.5.0", None),
        (PackageType.PYPI, "distutils_thing", "1.0", None),
    }


# -- npm -------------------------------------------------------------------------------------------------


def test_npm_modules_come_from_each_module_root_package_json() -> None:
    result = scan(
        layer(
            file("app/package.json", json.dumps({"name": "my-app", "version": "1.0.0"})),
            file(
                "app/node_modules/lodash/package.json",
                json.dumps({"name": "lodash", "version": "4.17.20", "license": "MIT"}),
            ),
            file("app/node_modules/@babel/core/package.json", json.dumps({"name": "@babel/core", "version": "7.0.0"})),
            file(
                "app/node_modules/lodash/node_modules/minimist/package.json",
                json.dumps({"name": "minimist", "version": "1.2.5"}),
            ),
            file("app/node_modules/esm-thing/dist/package.json", json.dumps({"type": "module"})),
            file("app/node_modules/broken/package.json", "{not json"),
        )
    )

    assert {(p.name, p.version, p.location) for p in result.packages} == {
        ("lodash", "4.17.20", "app/node_modules/lodash/package.json"),
        ("@babel/core", "7.0.0", "app/node_modules/@babel/core/package.json"),
        ("minimist", "1.2.5", "app/node_modules/lodash/node_modules/minimist/package.json"),
    }


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("app/node_modules/lodash/package.json", True),
        ("app/node_modules/@scope/pkg/package.json", True),
        ("app/node_modules/pkg/lib/package.json", False),
        ("app/package.json", False),
        ("node_modules/@scope/package.json", False),
    ],
)
def test_only_module_root_manifests_count(path: str, expected: bool) -> None:
    assert is_node_module_manifest(path) is expected


@pytest.mark.parametrize(
    ("path", "wanted"),
    [
        ("etc/os-release", True),
        ("var/lib/dpkg/status", True),
        ("var/lib/dpkg/status-old", False),
        ("var/lib/dpkg/status.d/foo", True),
        ("var/lib/dpkg/status.d/foo.md5sums", False),
        ("lib/apk/db/installed", True),
        ("var/lib/rpm/rpmdb.sqlite", True),
        ("usr/lib/python3/dist-packages/six-1.16.0.dist-info/METADATA", True),
        ("usr/lib/python3/dist-packages/six-1.16.0.dist-info/RECORD", False),
        ("usr/bin/python3", False),
    ],
)
def test_the_inventory_asks_only_for_the_files_it_reads(path: str, wanted: bool) -> None:
    assert (wanted_size(path) is not None) is wanted
