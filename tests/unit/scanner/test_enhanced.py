"""Enhanced scanning's pure parts: the stored inventory reads back as it was; observations open, keep their first
time, change, close and expire; many images matched at once find what each matched alone finds."""

from __future__ import annotations

import json

from ecrd.scanner.advisories import AdvisoryIndex
from ecrd.scanner.enhanced import (
    ACTIVE,
    CLOSED,
    CLOSED_RETENTION_SECONDS,
    inventory_document,
    inventory_from_document,
    observe,
)
from ecrd.scanner.inventory import OperatingSystem, Package, PackageType
from ecrd.scanner.matching import match_inventories, match_inventory

DEBIAN = OperatingSystem("debian", "11", "Debian GNU/Linux 11 (bullseye)", ("linux",))
OPENSSL = Package(
    PackageType.DEB, "libssl1.1", "1:1.1.1n-0+deb11u3", "var/lib/dpkg/status", "openssl", "1:1.1.1n-0+deb11u3", "amd64"
)
ALPHA = Package(PackageType.PYPI, "alpha", "0.9", "usr/lib/python3/site-packages/alpha-0.9.dist-info")


def record(
    advisory_id: str, ecosystem: str, name: str, fixed: str, modified: str = "2024-01-01T00:00:00Z"
) -> dict[str, object]:
    return {
        "id": advisory_id,
        "modified": modified,
        "summary": f"{name} is vulnerable",
        "affected": [
            {
                "package": {"ecosystem": ecosystem, "name": name},
                "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": fixed}]}],
            }
        ],
    }


def test_an_inventory_reads_back_as_it_was_stored() -> None:
    document = json.loads(json.dumps(inventory_document(DEBIAN, [OPENSSL, ALPHA])))
    assert inventory_from_document(document) == (DEBIAN, (OPENSSL, ALPHA))
    assert inventory_from_document(json.loads(json.dumps(inventory_document(None, [])))) == (None, ())


def test_observations_open_keep_their_first_time_close_and_expire() -> None:
    first = AdvisoryIndex([record("DSA-1", "Debian:11", "openssl", "1:1.1.1n-0+deb11u4")])
    findings = match_inventory(DEBIAN, [OPENSSL, ALPHA], first)
    opened = json.loads(json.dumps(observe([], findings, DEBIAN, [OPENSSL, ALPHA], 100.0)))
    assert [(o["status"], o["first_observed_at"], o["updated_at"]) for o in opened] == [(ACTIVE, 100.0, 100.0)]
    package = opened[0]["packages"][0]
    assert package == {
        "name": "libssl1.1",
        "version": "1.1.1n",
        "release": "0+deb11u3",
        "epoch": 1,
        "arch": "amd64",
        "packageManager": "OS",
        "filePath": "var/lib/dpkg/status",
        "fixedInVersion": "1:1.1.1n-0+deb11u4",
    }

    # Seen again unchanged: the first and update times stay, the last observation moves
    again = json.loads(json.dumps(observe(opened, findings, DEBIAN, [OPENSSL, ALPHA], 200.0)))
    assert [(o["first_observed_at"], o["last_observed_at"], o["updated_at"]) for o in again] == [(100.0, 200.0, 100.0)]

    # A new advisory opens beside it; when the first is no longer found it closes
    second = AdvisoryIndex([record("PYSEC-1", "PyPI", "alpha", "1.0")])
    later = observe(again, match_inventory(DEBIAN, [OPENSSL, ALPHA], second), DEBIAN, [OPENSSL, ALPHA], 300.0)
    assert [(o["finding"]["advisory_id"], o["status"], o["updated_at"]) for o in later] == [
        ("PYSEC-1", ACTIVE, 300.0),
        ("DSA-1", CLOSED, 300.0),
    ]
    kept = observe(later, match_inventory(DEBIAN, [OPENSSL, ALPHA], second), DEBIAN, [OPENSSL, ALPHA], 400.0)
    assert [o["status"] for o in kept] == [ACTIVE, CLOSED]
    gone = observe(kept, [], DEBIAN, [OPENSSL, ALPHA], 300.0 + CLOSED_RETENTION_SECONDS)
    assert [(o["finding"]["advisory_id"], o["status"]) for o in gone] == [("PYSEC-1", CLOSED)]


def test_many_images_at_once_find_what_each_finds_alone() -> None:
    index = AdvisoryIndex(
        [record("DSA-1", "Debian:11", "openssl", "1:1.1.1n-0+deb11u4"), record("PYSEC-1", "PyPI", "alpha", "1.0")]
    )
    images = [(DEBIAN, [OPENSSL, ALPHA]), (None, [ALPHA]), (DEBIAN, []), (None, [])]
    assert match_inventories(images, index) == [match_inventory(os, packages, index) for os, packages in images]
