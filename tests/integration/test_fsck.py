"""`ecrd fsck` finds every kind of disagreement between the metadata store and the blob store, repairs what
can be repaired without losing data, and reports as damage the images that can no longer be pulled."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest
from sqlalchemy import insert, update
from starlette.testclient import TestClient

from ecrd.app import Registry
from ecrd.cli.main import main
from ecrd.metadata.tables import tags, uploads
from ecrd.services.fsck import Fsck, FsckReport, Problem
from tests.support.clock import FakeClock
from tests.support.oci import Blob, config_blob, digest_of, image_manifest, push_blob, push_manifest, random_blob


def fsck(registry: Registry, **options: object) -> Fsck:
    return Fsck(registry.store, registry.blobs, registry=registry.registry, **options)  # type: ignore[arg-type]


def problems(report: FsckReport) -> list[tuple[Problem, str]]:
    return sorted((f.problem, f.subject) for f in report.findings)


def blob_file(registry: Registry, digest: str) -> Path:
    algorithm, _, encoded = digest.partition(":")
    return registry.settings.data_dir / "blobs" / algorithm / encoded[:2] / encoded


def age(path: Path, seconds: float) -> None:
    """Make ``path`` look ``seconds`` old (its mtime; ctime cannot be set, so checks use a clock ahead)."""
    then = time.time() - seconds
    os.utime(path, (then, then))


def push_image(client: TestClient, registry: Registry, name: str, tag: str) -> tuple[Blob, Blob, str]:
    registry.registry.create_repository(name)
    layer, config = random_blob(3000), config_blob({"name": name})
    for blob in (layer, config):
        push_blob(client, name, blob)
    payload = image_manifest(config, [layer])
    push_manifest(client, name, tag, payload)
    return layer, config, digest_of(payload)


def later(seconds: float) -> float:
    return time.time() + seconds


def test_a_registry_after_ordinary_pushes_is_clean_even_with_digests_verified(
    client: TestClient, registry: Registry
) -> None:
    push_image(client, registry, "app", "v1")
    upload = client.post("/v2/app/blobs/uploads/").headers["Location"]
    assert client.patch(upload, content=b"in progress").status_code == 202
    report = fsck(registry, verify_digests=True).check()
    assert report.clean, report.findings
    assert report.checked["verified_blobs"] == 2
    assert report.checked["verified_manifests"] == 1
    assert report.checked["uploads"] == report.checked["upload_files"] == 1


def test_orphan_blob_files_are_left_alone_during_the_grace_period_then_deleted_on_repair(
    client: TestClient, registry: Registry
) -> None:
    push_image(client, registry, "app", "v1")
    orphan = random_blob(100).digest
    path = blob_file(registry, orphan)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x" * 50)
    young = fsck(registry, grace_seconds=600).check()
    assert young.clean and young.checked["young_blob_files"] == 1
    checker = fsck(registry, grace_seconds=600, clock=FakeClock(later(3600)))
    report = checker.check()
    assert problems(report) == [(Problem.ORPHAN_BLOB_FILE, orphan)]
    assert not report.damage
    repaired = checker.repair(report)
    assert repaired.repaired == report.findings
    assert not path.exists()
    assert fsck(registry, clock=FakeClock(later(3600))).check().clean


def test_a_blob_whose_file_is_gone_is_dropped_when_unreferenced_and_damage_when_referenced(
    client: TestClient, registry: Registry
) -> None:
    layer, _config, manifest_digest = push_image(client, registry, "app", "v1")
    loose = random_blob(500)
    push_blob(client, "app", loose)
    blob_file(registry, loose.digest).unlink()
    blob_file(registry, layer.digest).unlink()
    checker = fsck(registry)
    report = checker.check()
    assert problems(report) == sorted([(Problem.DANGLING_BLOB, loose.digest), (Problem.MISSING_BLOB, layer.digest)])
    [damage] = report.damage
    assert damage.unpullable == (f"app@{manifest_digest}",)
    repaired = checker.repair(report)
    assert [f.subject for f in repaired.repaired] == [loose.digest]
    assert client.head(f"/v2/app/blobs/{loose.digest}").status_code == 404
    after = checker.check()
    assert problems(after) == [(Problem.MISSING_BLOB, layer.digest)]


def test_a_missing_blob_pushed_again_is_stored_again_and_the_damage_is_gone(
    client: TestClient, registry: Registry
) -> None:
    layer, _config, _digest = push_image(client, registry, "app", "v1")
    blob_file(registry, layer.digest).unlink()
    assert client.head(f"/v2/app/blobs/{layer.digest}").status_code == 404
    push_blob(client, "app", layer)
    assert client.get(f"/v2/app/blobs/{layer.digest}").content == layer.data
    assert fsck(registry, verify_digests=True).check().clean


def test_truncated_and_tampered_blobs_are_damage(client: TestClient, registry: Registry) -> None:
    layer, config, manifest_digest = push_image(client, registry, "app", "v1")
    truncated = blob_file(registry, layer.digest)
    truncated.write_bytes(truncated.read_bytes()[:-1])
    tampered = blob_file(registry, config.digest)
    data = bytearray(tampered.read_bytes())
    data[-5] ^= 0xFF
    tampered.write_bytes(bytes(data))
    assert problems(fsck(registry).check()) == [(Problem.CORRUPT_BLOB, layer.digest)]
    report = fsck(registry, verify_digests=True).check()
    assert problems(report) == sorted([(Problem.CORRUPT_BLOB, layer.digest), (Problem.UNREADABLE_BLOB, config.digest)])
    assert all(f.damage and f.unpullable == (f"app@{manifest_digest}",) for f in report.findings)


def test_tags_naming_missing_manifests_are_deleted_on_repair(client: TestClient, registry: Registry) -> None:
    push_image(client, registry, "app", "v1")
    repository = registry.registry.get_repository("app")
    ghost = "sha256:" + "ab" * 32
    with registry.store.write() as conn:
        conn.execute(
            insert(tags).values(
                repository_id=repository.id, name="ghost", manifest_digest=ghost, updated_at=time.time()
            )
        )
    checker = fsck(registry)
    report = checker.check()
    assert problems(report) == [(Problem.DANGLING_TAG, "ghost")]
    assert len(checker.repair(report).repaired) == 1
    assert registry.registry.list_tags(repository, last=None, n=None) == ["v1"]


def test_dead_upload_sessions_and_stray_upload_files_are_repaired(registry: Registry) -> None:
    # (No HTTP client: its server's housekeeping would expire the idle session before the check sees it.)
    registry.registry.create_repository("app")
    repository = registry.registry.get_repository("app")
    lost = registry.uploads.start_upload(repository)
    appender = registry.uploads.begin_append(repository, lost.id, 0)
    appender.write(b"acknowledged, then lost")
    registry.uploads.finish_append(appender)
    registry.blobs.delete_upload(lost.id)
    idle = registry.uploads.start_upload(repository)
    with registry.store.write() as conn:
        conn.execute(update(uploads).where(uploads.c.id == idle.id).values(updated_at=time.time() - 48 * 3600))
    live = registry.uploads.start_upload(repository)
    stray = "0b5e0b5e-0000-4000-8000-000000000001"
    # Bytes without a session: here an upload as the previous version stored it (one file per upload).
    (registry.settings.data_dir / "uploads").mkdir(exist_ok=True)
    (registry.settings.data_dir / "uploads" / stray).write_bytes(b"left behind")
    checker = fsck(registry, grace_seconds=60, clock=FakeClock(later(120)))
    report = checker.check()
    assert problems(report) == sorted(
        [
            (Problem.UPLOAD_FILE_MISSING, lost.id),
            (Problem.EXPIRED_UPLOAD, idle.id),
            (Problem.ORPHAN_UPLOAD_FILE, stray),
        ]
    )
    assert len(checker.repair(report).repaired) == 3
    assert fsck(registry, grace_seconds=60, clock=FakeClock(later(120))).check().clean
    assert registry.uploads.get_upload(repository, live.id).size == 0


def test_the_command_prints_json_and_exits_by_what_it_found(
    client: TestClient, registry: Registry, capsys: pytest.CaptureFixture[str]
) -> None:
    layer, _config, manifest_digest = push_image(client, registry, "app", "v1")
    settings = registry.settings
    flags = ["--data-dir", str(settings.data_dir), "--database-url", settings.resolved_database_url]
    assert main(["fsck", *flags]) == 0
    assert "no problems found" in capsys.readouterr().out
    stray = "0b5e0b5e-0000-4000-8000-000000000002"
    (settings.data_dir / "uploads" / stray).write_bytes(b"left behind")
    assert main(["fsck", "--json", "--grace-seconds", "0", *flags]) == 1
    found = json.loads(capsys.readouterr().out)
    assert [f["problem"] for f in found["findings"]] == ["orphan-upload-file"]
    assert main(["fsck", "--repair", "--grace-seconds", "0", *flags]) == 0
    assert "repaired" in capsys.readouterr().out
    blob_file(registry, layer.digest).unlink()
    assert main(["fsck", "--json", "--verify-digests", *flags]) == 3
    found = json.loads(capsys.readouterr().out)
    assert found["damage"] and found["findings"][0]["unpullable"] == [f"app@{manifest_digest}"]
