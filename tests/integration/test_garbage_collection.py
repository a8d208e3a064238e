"""Online garbage collection frees the blobs no manifest references (exclusive ones of deleted images and
repositories), idle upload sessions and objects no row names, keeps shared blobs and whatever is younger than
the grace period, and leaves a registry ``ecrd fsck`` finds clean — on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from starlette.testclient import TestClient

from ecrd.app import Registry, build_registry
from ecrd.cli.main import main
from ecrd.config import Settings
from ecrd.metadata.gc import gc_runs
from ecrd.metadata.tables import blobs, repository_blobs, uploads
from ecrd.services.fsck import Fsck
from ecrd.services.gc import AUDIT_ACTION, GarbageCollector
from ecrd.storage.blob_store import EncryptedBlobStore, blob_name
from ecrd.storage.filesystem import FilesystemDriver
from tests.conftest import ROOT_ACCESS_KEY_ID, basic_auth_for
from tests.support.clock import FakeClock
from tests.support.clocked import clocked_registry, root_client
from tests.support.oci import Blob, config_blob, digest_of, image_manifest, push_blob, push_manifest, random_blob

GRACE = 3600.0
PAST_GRACE = GRACE + 60.0


@pytest.fixture
def clock() -> FakeClock:
    # At wall time: the blob store's files carry real times, which orphan collection compares with the clock.
    return FakeClock.at_wall_time()


@pytest.fixture
def registry(settings: Settings, clock: FakeClock) -> Iterator[Registry]:
    with clocked_registry(settings, clock) as built:
        yield built


@pytest.fixture
def client(registry: Registry) -> Iterator[TestClient]:
    with root_client(registry) as test_client:
        yield test_client


def push(client: TestClient, name: str, tag: str, layers: list[Blob]) -> tuple[str, Blob]:
    """Push an image of ``layers`` and a fresh config under ``tag``; (manifest digest, config)."""
    config = config_blob({"tag": tag, "nonce": os.urandom(8).hex()})
    for blob in [config, *layers]:
        push_blob(client, name, blob)
    payload = image_manifest(config, layers)
    push_manifest(client, name, tag, payload)
    return digest_of(payload), config


def stored(registry: Registry, blob: Blob) -> bool:
    """The blob is whole where it matters: a row, and its object in the store."""
    with registry.store.read() as conn:
        row = conn.execute(select(blobs.c.digest).where(blobs.c.digest == blob.digest)).first()
    return row is not None and registry.blobs.blob_stored(blob.digest)


def gone(registry: Registry, blob: Blob) -> bool:
    with registry.store.read() as conn:
        row = conn.execute(select(blobs.c.digest).where(blobs.c.digest == blob.digest)).first()
        links = conn.execute(
            select(func.count()).select_from(repository_blobs).where(repository_blobs.c.digest == blob.digest)
        ).scalar_one()
    return row is None and links == 0 and not registry.blobs.blob_stored(blob.digest)


def pullable(client: TestClient, name: str, reference: str, layers: list[Blob]) -> bool:
    manifest = client.get(f"/v2/{name}/manifests/{reference}")
    return manifest.status_code == 200 and all(
        client.get(f"/v2/{name}/blobs/{blob.digest}").content == blob.data for blob in layers
    )


def fsck_clean(registry: Registry) -> bool:
    report = Fsck(registry.store, registry.blobs, registry=registry.registry, clock=registry.clock).check()
    return report.clean


def untag(registry: Registry, name: str, tag: str) -> None:
    """BatchDeleteImage by tag, as the AWS door runs it."""
    registry.registry.untag_or_delete_image(registry.registry.get_repository(name), tag)


def test_a_deleted_images_exclusive_blobs_are_collected_and_shared_ones_stay(
    client: TestClient, registry: Registry, clock: FakeClock
) -> None:
    registry.registry.create_repository("app")
    shared, only_old, only_new = random_blob(3000), random_blob(2000), random_blob(1000)
    _old, old_config = push(client, "app", "old", [shared, only_old])
    new_digest, new_config = push(client, "app", "new", [shared, only_new])
    untag(registry, "app", "old")
    clock.advance(PAST_GRACE)

    report = registry.gc.collect()

    assert (report.blobs, report.bytes) == (2, len(only_old.data) + len(old_config.data))
    assert gone(registry, only_old) and gone(registry, old_config)
    assert all(stored(registry, blob) for blob in (shared, only_new, new_config))
    assert pullable(client, "app", new_digest, [shared, only_new, new_config])
    assert fsck_clean(registry)
    assert registry.gc.collect().blobs == 0


def test_deleting_a_repository_frees_its_exclusive_blobs_at_the_next_collection(
    client: TestClient, registry: Registry, clock: FakeClock
) -> None:
    for name in ("doomed", "kept"):
        registry.registry.create_repository(name)
    shared, exclusive = random_blob(1500), random_blob(2500)
    _digest, doomed_config = push(client, "doomed", "v1", [shared, exclusive])
    kept_digest, kept_config = push(client, "kept", "v1", [shared])
    registry.registry.delete_repository("doomed", force=True)
    clock.advance(PAST_GRACE)

    report = registry.gc.collect()

    assert report.blobs == 2
    assert gone(registry, exclusive) and gone(registry, doomed_config)
    assert stored(registry, shared)
    assert pullable(client, "kept", kept_digest, [shared, kept_config])
    assert fsck_clean(registry)


def test_blobs_stored_or_linked_within_the_grace_period_are_kept(
    client: TestClient, registry: Registry, clock: FakeClock
) -> None:
    registry.registry.create_repository("app")
    waiting = random_blob(800)
    push_blob(client, "app", waiting)  # its manifest has not arrived yet

    assert registry.gc.collect().blobs == 0
    clock.advance(GRACE - 60)
    assert registry.gc.collect().blobs == 0
    assert stored(registry, waiting)

    # Mounted into another repository late in the grace period: the new link starts the grace again.
    registry.registry.create_repository("other")
    assert client.post(f"/v2/other/blobs/uploads/?mount={waiting.digest}&from=app").status_code == 201
    clock.advance(120)
    assert registry.gc.collect().blobs == 0
    clock.advance(GRACE)
    assert registry.gc.collect().blobs == 1
    assert gone(registry, waiting)


def test_idle_upload_sessions_are_collected_and_active_ones_stay(
    client: TestClient, registry: Registry, clock: FakeClock
) -> None:
    registry.registry.create_repository("app")
    idle = client.post("/v2/app/blobs/uploads/").headers["Location"]
    assert client.patch(idle, content=b"abandoned bytes").status_code == 202
    clock.advance(registry.settings.upload_expiry_hours * 3600.0 - 60)
    fresh = {"Authorization": basic_auth_for(registry, ROOT_ACCESS_KEY_ID)}  # the first token has expired
    active = client.post("/v2/app/blobs/uploads/", headers=fresh).headers["Location"]
    assert client.patch(active, content=b"still coming", headers=fresh).status_code == 202
    clock.advance(120)

    report = registry.gc.collect()

    assert report.uploads == 1
    with registry.store.read() as conn:
        left = list(conn.execute(select(uploads.c.id)).scalars())
    assert [active.rstrip("/").rsplit("/", 1)[1]] == left
    assert [upload.upload_id for upload in registry.blobs.list_uploads()] == left


def write_object(path: Path, data: bytes, age_seconds: float) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    then = time.time() - age_seconds
    os.utime(path, (then, then))


def test_objects_no_row_names_are_deleted_once_older_than_the_grace(
    client: TestClient, registry: Registry, clock: FakeClock
) -> None:
    registry.registry.create_repository("app")
    kept_digest, kept_config = push(client, "app", "v1", [layer := random_blob(700)])
    data_dir = registry.settings.data_dir
    orphan = random_blob(64)
    write_object(data_dir / blob_name(orphan.digest), b"x" * 90, 0)
    upload_leftover = data_dir / "uploads" / "0b9ff2d4-4d6e-4c4e-9a55-0d2f3c1f7e10" / f"{0:020d}"
    write_object(upload_leftover, b"y" * 40, 0)

    assert registry.gc.collect().orphans == 0  # young: an upload may be committing it right now

    clock.advance(PAST_GRACE)
    report = registry.gc.collect()

    assert (report.orphans, report.orphan_bytes) == (2, 130)
    assert not (data_dir / blob_name(orphan.digest)).exists()
    assert not upload_leftover.exists()
    assert pullable(client, "app", kept_digest, [layer, kept_config])
    assert fsck_clean(registry)


def test_a_dry_run_reports_what_a_collection_frees_and_frees_nothing(
    client: TestClient, registry: Registry, clock: FakeClock
) -> None:
    registry.registry.create_repository("app")
    loose = [random_blob(100 + n) for n in range(3)]
    for blob in loose:
        push_blob(client, "app", blob)
    write_object(registry.settings.data_dir / blob_name(random_blob(10).digest), b"z" * 33, 0)
    clock.advance(PAST_GRACE)

    planned = registry.gc.collect(dry_run=True)

    assert (planned.dry_run, planned.blobs, planned.bytes, planned.orphans) == (True, 3, 303, 1)
    assert all(stored(registry, blob) for blob in loose)
    done = registry.gc.collect()
    assert (done.blobs, done.bytes, done.orphans) == (planned.blobs, planned.bytes, planned.orphans)
    assert all(gone(registry, blob) for blob in loose)


def test_every_store_a_blob_may_live_in_loses_it_and_an_absent_copy_is_no_error(
    client: TestClient, registry: Registry, clock: FakeClock
) -> None:
    registry.registry.create_repository("app")
    archived, hot_only = random_blob(300), random_blob(400)
    for blob in (archived, hot_only):
        push_blob(client, "app", blob)
    archive = EncryptedBlobStore(FilesystemDriver(registry.settings.data_dir / "archive-store"))
    copy = registry.settings.data_dir / "archive-store" / blob_name(archived.digest)
    copy.parent.mkdir(parents=True)
    copy.write_bytes((registry.settings.data_dir / blob_name(archived.digest)).read_bytes())
    collector = GarbageCollector(
        registry.store,
        (registry.blobs, archive),
        registry.uploads,
        grace_seconds=GRACE,
        upload_expiry_seconds=24 * 3600.0,
        clock=clock,
    )
    clock.advance(PAST_GRACE)

    assert collector.collect().blobs == 2
    assert not archive.blob_stored(archived.digest)
    assert gone(registry, archived) and gone(registry, hot_only)


def test_a_collection_is_recorded_with_what_it_freed_and_audited(
    client: TestClient, registry: Registry, clock: FakeClock
) -> None:
    registry.registry.create_repository("app")
    push_blob(client, "app", blob := random_blob(1234))
    clock.advance(PAST_GRACE)
    registry.gc.collect(dry_run=True)
    registry.gc.collect()

    dry, wet = sorted(registry.gc.history(), key=lambda run: int(run["id"]))  # type: ignore[call-overload]
    assert (dry["dry_run"], dry["blobs"], dry["bytes"]) == (1, 1, len(blob.data))
    assert (wet["dry_run"], wet["blobs"], wet["bytes"]) == (0, 1, len(blob.data))
    [event] = registry.audit.events(action=AUDIT_ACTION)
    assert event.principal == "ecrd" and event.outcome == "allowed"


def test_a_scheduled_collection_runs_in_one_process_of_several_once_per_interval(
    settings: Settings, registry: Registry, clock: FakeClock
) -> None:
    other = build_registry(settings, clock=clock)  # a second server process on the same database
    try:
        interval = 3600.0
        processes = [registry.gc, other.gc]
        assert [gc.collect_if_due(interval) for gc in processes] == [None, None]  # first seen: due in an interval
        clock.advance(interval)
        ran = [gc.collect_if_due(interval) for gc in processes]
        assert sum(report is not None for report in ran) == 1
        assert [gc.collect_if_due(interval) for gc in processes] == [None, None]
        clock.advance(interval)
        assert sum(gc.collect_if_due(interval) is not None for gc in reversed(processes)) == 1
    finally:
        other.close()
    with registry.store.read() as conn:
        assert conn.execute(select(func.count()).select_from(gc_runs)).scalar_one() == 2


def test_ecrd_gc_prints_what_it_would_free_then_what_it_freed(
    client: TestClient, registry: Registry, settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    registry.registry.create_repository("app")
    push_blob(client, "app", blob := random_blob(2048))
    argv = ["gc", "--data-dir", str(settings.data_dir), "--database-url", settings.database_url]

    assert main([*argv, "--dry-run"]) == 0
    assert "would free: 0 blobs" in capsys.readouterr().out  # within the grace period

    assert main([*argv, "--gc-grace-minutes", "0"]) == 0
    out = capsys.readouterr().out
    assert "would free: 1 blobs (2.0 KiB)" in out
    assert "freed:      1 blobs (2.0 KiB)" in out
    assert gone(registry, blob)
    assert main([*argv, "--gc-grace-minutes", "0", "--json"]) == 0
    report: dict[str, Any] = json.loads(capsys.readouterr().out)
    assert report["freed"]["blobs"] == 0
