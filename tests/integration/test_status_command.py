"""`ecrd status` as an operator runs it: a real process on a registry made through the registry's own doors."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from ecrd.config import Settings
from ecrd.domain.registries import RegistryId
from tests.integration.test_command_line import ecrd
from tests.support.clock import FakeClock
from tests.support.clocked import clocked_registry, root_client
from tests.support.oci import config_blob, digest_of, image_manifest, push_blob, push_manifest, random_blob
from tests.support.vulndata import records


def store_flags(settings: Settings) -> list[str]:
    return ["--data-dir", str(settings.data_dir), "--database-url", str(settings.database_url)]


def write_advisories(path: Path, count: int) -> Path:
    with path.open("w", encoding="utf-8") as out:
        for n, record in enumerate(records("pypi")):
            if n == count:
                break
            out.write(json.dumps(record) + "\n")
    return path


def test_status_of_a_new_registry_says_it_holds_nothing(settings: Settings, tmp_path: Path) -> None:
    with clocked_registry(settings, FakeClock.at_wall_time()):
        pass
    result = ecrd("status", "--json", *store_flags(settings), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary == {
        "accounts": ["000000000000"],
        "repositories": 0,
        "images": 0,
        "storage": {"hot": {"blobs": 0, "bytes": 0}, "archive": {"blobs": 0, "bytes": 0}},
        "jobs": {"depth": [], "pending": 0, "running": 0, "oldestPendingAgeSeconds": None},
        "advisories": {"records": 0, "lastImportAt": None, "lastImportAgeSeconds": None, "lastImportSource": None},
        # The root's key, bootstrapped at start.
        "iam": {"users": 0, "accessKeys": 1},
    }
    human = ecrd("status", *store_flags(settings), cwd=tmp_path)
    assert human.returncode == 0, human.stderr
    lines = human.stdout.splitlines()
    assert "accounts       1 account (000000000000)" in lines
    assert "advisories     0, never imported (`ecrd vulndb import PATH`)" in lines


def test_status_counts_what_was_pushed_imported_and_created(settings: Settings, tmp_path: Path) -> None:
    shared = random_blob(3000)
    pushed: dict[str, int] = {}
    manifests: list[str] = []
    clock = FakeClock.at_wall_time()
    with clocked_registry(settings, clock) as registry:
        app = registry.registry.create_repository("app")
        registry.registry.create_repository("tools/web")
        with root_client(registry) as client:
            for name, tag, layers in (
                ("app", "v1", [shared, random_blob(1000)]),
                ("app", "v2", [shared, random_blob(2000)]),
                ("tools/web", "v1", [shared]),
            ):
                config = config_blob({"tag": tag, "nonce": os.urandom(8).hex()})
                for blob in [config, *layers]:
                    push_blob(client, name, blob)
                    pushed[blob.digest] = len(blob.data)
                payload = image_manifest(config, layers)
                push_manifest(client, name, tag, payload)
                manifests.append(digest_of(payload))
        registry.identity.users.create_user("alice")
        registry.identity.users.create_access_key("alice")
        registry.identity.users.create_user("bob")
        # and another account, with a repository and a user of its own
        registry.registries.accounts.create(account_id="222222222222")
        other = registry.registries.get(RegistryId("222222222222", registry.settings.region))
        other.registry.create_repository("app")
        other.identity.users.create_user("carol")
        # Two scans waiting for a worker, the older queued two hours ago.
        clock.set(time.time() - 7200)
        registry.scanning.start_image_scan(app, manifests[0])
        clock.set(time.time())
        registry.scanning.start_image_scan(app, manifests[1])
    advisories = write_advisories(tmp_path / "advisories.jsonl", 3)
    imported = ecrd("vulndb", "import", str(advisories), *store_flags(settings), cwd=tmp_path)
    assert imported.returncode == 0, imported.stderr
    before = time.time()

    result = ecrd("status", "--json", *store_flags(settings), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["accounts"] == ["000000000000", "222222222222"]
    assert summary["repositories"] == 3
    assert summary["images"] == 3
    assert summary["storage"] == {
        "hot": {"blobs": len(pushed), "bytes": sum(pushed.values())},
        "archive": {"blobs": 0, "bytes": 0},
    }
    assert summary["iam"] == {"users": 3, "accessKeys": 3}  # each account's root key, and alice's
    assert summary["advisories"]["records"] == 3
    assert summary["advisories"]["lastImportSource"] == str(advisories)
    assert 0 <= summary["advisories"]["lastImportAgeSeconds"] <= time.time() - before + 60
    jobs = summary["jobs"]
    assert [(e["kind"], e["status"], e["count"]) for e in jobs["depth"]] == [("scan-image", "queued", 2)]
    assert (jobs["pending"], jobs["running"]) == (2, 0)
    assert 7200 <= jobs["oldestPendingAgeSeconds"] < 7200 + 120

    human = ecrd("status", *store_flags(settings), cwd=tmp_path)
    assert human.returncode == 0, human.stderr
    lines = human.stdout.splitlines()
    assert "accounts       2 accounts (000000000000, 222222222222)" in lines
    assert "repositories   3" in lines
    assert "images         3" in lines
    assert f"blobs          {len(pushed)} blobs, {sum(pushed.values()) / 1024:.1f} KiB" in lines
    assert "iam            3 users, 3 access keys" in lines
    assert "jobs           2 pending, 0 running, oldest pending 2.0 h old" in lines
    assert "  scan-image           queued   2" in lines
    assert any(line.startswith("advisories     3, last imported ") for line in lines)
    assert human.stderr == ""
