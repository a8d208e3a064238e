"""The archive storage class: an archived image is listed but never pulled, its blobs really leave the hot store
for the archive location (those another active image uses stay), restoring goes through ACTIVATING to ACTIVE as a
job, and a move stopped between any two of its steps loses nothing and is finished by running it again — on
SQLite and PostgreSQL."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from ecrd.app import Registry, asgi_app
from ecrd.config import Settings
from ecrd.errors import ImageStorageClassUpdateNotSupported
from ecrd.services.fsck import Fsck
from ecrd.storage.blob_store import blob_name
from ecrd.storage.encryption import encrypted_size
from tests.conftest import ROOT_ACCESS_KEY_ID, basic_auth_for
from tests.support.clock import FakeClock
from tests.support.clocked import clocked_registry
from tests.support.oci import (
    OCI_INDEX,
    Blob,
    config_blob,
    digest_of,
    error_codes,
    image_manifest,
    index_manifest,
    push_blob,
    push_manifest,
    random_blob,
)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock.at_wall_time()


@pytest.fixture
def registry(settings: Settings, clock: FakeClock) -> Iterator[Registry]:
    with clocked_registry(settings, clock) as built:
        yield built


@pytest.fixture
def client(registry: Registry) -> Iterator[TestClient]:
    with TestClient(
        asgi_app(registry),
        base_url="http://127.0.0.1:5000",
        headers={"Authorization": basic_auth_for(registry, ROOT_ACCESS_KEY_ID)},
    ) as test_client:
        yield test_client


def push(client: TestClient, name: str, tag: str, layers: list[Blob]) -> tuple[str, Blob]:
    config = config_blob({"tag": tag})
    for blob in [config, *layers]:
        push_blob(client, name, blob)
    payload = image_manifest(config, layers)
    push_manifest(client, name, tag, payload)
    return digest_of(payload), config


def hot_file(registry: Registry, blob: Blob) -> Path:
    return registry.settings.data_dir / blob_name(blob.digest)


def archive_file(registry: Registry, blob: Blob) -> Path:
    return registry.settings.resolved_archive_dir / blob_name(blob.digest)


def fsck_clean(registry: Registry) -> bool:
    return Fsck(registry.store, registry.blobs, registry=registry.registry, clock=registry.clock).check().clean


def status(registry: Registry, name: str, digest: str) -> str:
    repository = registry.registry.get_repository(name)
    found = registry.registry.resolve(repository, digest=digest, tag=None)
    assert found is not None
    return found.image_status


def test_archiving_moves_exclusive_blobs_to_the_archive_and_refuses_pulls(
    registry: Registry, client: TestClient
) -> None:
    registry.registry.create_repository("app")
    own, shared = random_blob(300_000), random_blob(2000)
    old, old_config = push(client, "app", "old", [own, shared])
    push(client, "app", "new", [shared])
    repository = registry.registry.get_repository("app")

    moved = registry.archive.archive(repository, old, cause="test")

    # The image's own blobs left the hot store for the archive; the one an active image uses stayed.
    for blob in (own, old_config):
        assert not hot_file(registry, blob).exists() and archive_file(registry, blob).exists()
    assert hot_file(registry, shared).exists() and not archive_file(registry, shared).exists()
    assert moved == encrypted_size(len(own.data)) + encrypted_size(len(old_config.data))
    for reference in ("old", old):
        for method in (client.get, client.head):
            response = method(f"/v2/app/manifests/{reference}")
            assert response.status_code == 404
        assert error_codes(client.get(f"/v2/app/manifests/{reference}")) == ["MANIFEST_UNKNOWN"]
    assert client.get("/v2/app/manifests/new").status_code == 200
    # Listed and described still, as ARCHIVED; a blob read still finds the bytes where they are.
    assert status(registry, "app", old) == "ARCHIVED"
    assert client.get(f"/v2/app/blobs/{own.digest}").content == own.data
    assert fsck_clean(registry)
    # Archiving it again moves nothing and changes nothing.
    assert registry.archive.archive(repository, old, cause="test") == 0


def test_restoring_goes_through_activating_to_active_in_a_job(registry: Registry, client: TestClient) -> None:
    registry.registry.create_repository("app")
    own = random_blob(5000)
    digest, config = push(client, "app", "v1", [own])
    repository = registry.registry.get_repository("app")
    registry.archive.archive(repository, digest, cause="test")

    assert registry.archive.restore(repository, digest, cause="test") == "ACTIVATING"
    assert client.get("/v2/app/manifests/v1").status_code == 404  # not yet: ACTIVATING is still archived
    assert registry.archive.restore(repository, digest, cause="test") == "ACTIVATING"  # no second restore

    assert registry.jobs.drain() >= 1
    assert status(registry, "app", digest) == "ACTIVE"
    for blob in (own, config):
        assert hot_file(registry, blob).exists() and not archive_file(registry, blob).exists()
    assert client.get("/v2/app/manifests/v1").status_code == 200
    assert client.get(f"/v2/app/blobs/{own.digest}").content == own.data
    assert fsck_clean(registry)


def test_a_blob_shared_with_an_image_in_another_repository_stays_hot(registry: Registry, client: TestClient) -> None:
    registry.registry.create_repository("one")
    registry.registry.create_repository("two")
    shared = random_blob(4000)
    digest, _ = push(client, "one", "v1", [shared])
    push(client, "two", "v1", [shared])

    registry.archive.archive(registry.registry.get_repository("one"), digest, cause="test")

    assert hot_file(registry, shared).exists() and not archive_file(registry, shared).exists()


def test_an_index_archives_with_its_children_and_referrers_follow_their_subject(
    registry: Registry, client: TestClient
) -> None:
    registry.registry.create_repository("multi")
    layers = [random_blob(1000), random_blob(1000)]
    children = []
    for arch, layer in zip(("amd64", "arm64"), layers, strict=True):
        config = config_blob({"arch": arch})
        for blob in (config, layer):
            push_blob(client, "multi", blob)
        payload = image_manifest(config, [layer])
        push_manifest(client, "multi", digest_of(payload), payload)
        children.append((payload, {"os": "linux", "architecture": arch}))
    index = index_manifest(children)
    push_manifest(client, "multi", "v1", index, OCI_INDEX)
    signature_config = config_blob({"signature": True})
    push_blob(client, "multi", signature_config)
    signature = image_manifest(
        signature_config, [], subject={"mediaType": OCI_INDEX, "digest": digest_of(index), "size": len(index)}
    )
    push_manifest(client, "multi", digest_of(signature), signature)
    repository = registry.registry.get_repository("multi")

    with pytest.raises(ImageStorageClassUpdateNotSupported):
        registry.archive.archive(repository, digest_of(children[0][0]), cause="a child alone")
    with pytest.raises(ImageStorageClassUpdateNotSupported):
        registry.archive.archive(repository, digest_of(signature), cause="a referrer alone")
    registry.archive.archive(repository, digest_of(index), cause="test")

    for payload in [index, signature, *(child for child, _ in children)]:
        assert status(registry, "multi", digest_of(payload)) == "ARCHIVED"
    assert all(archive_file(registry, layer).exists() and not hot_file(registry, layer).exists() for layer in layers)
    registry.archive.restore(repository, digest_of(index), cause="test")
    registry.jobs.drain()
    for payload in [index, signature, *(child for child, _ in children)]:
        assert status(registry, "multi", digest_of(payload)) == "ACTIVE"
    assert client.get("/v2/multi/manifests/v1").status_code == 200
    assert fsck_clean(registry)


def test_a_new_image_of_archived_layers_is_pullable_and_brings_them_back_hot(
    registry: Registry, client: TestClient
) -> None:
    registry.registry.create_repository("app")
    layer = random_blob(3000)
    old, _ = push(client, "app", "old", [layer])
    registry.archive.archive(registry.registry.get_repository("app"), old, cause="test")
    assert archive_file(registry, layer).exists()

    # The layer is known (a HEAD finds it where it is), so a client pushes only the manifest.
    assert client.head(f"/v2/app/blobs/{layer.digest}").status_code == 200
    config = config_blob({"tag": "again"})
    push_blob(client, "app", config)
    payload = image_manifest(config, [layer])
    push_manifest(client, "app", "again", payload)

    assert client.get(f"/v2/app/blobs/{layer.digest}").content == layer.data
    registry.jobs.drain()
    assert hot_file(registry, layer).exists() and not archive_file(registry, layer).exists()
    assert status(registry, "app", old) == "ARCHIVED"
    assert fsck_clean(registry)


class Crash(Exception):
    """Stands for the process dying at a point of a move: nothing after it runs."""


@pytest.mark.parametrize("point", ["copied", "flipped"])
def test_an_archive_stopped_between_steps_loses_nothing_and_finishes_when_run_again(
    registry: Registry, client: TestClient, point: str
) -> None:
    registry.registry.create_repository("app")
    own = random_blob(5000)
    digest, config = push(client, "app", "v1", [own])
    repository = registry.registry.get_repository("app")

    def crash(at: str) -> None:
        if at == point:
            raise Crash(at)

    registry.archive.pause = crash
    with pytest.raises(Crash):
        registry.archive.archive(repository, digest, cause="test")
    assert fsck_clean(registry)  # every blob is where its row says
    assert client.get(f"/v2/app/blobs/{own.digest}").content == own.data

    registry.archive.pause = lambda _at: None
    registry.archive.archive(repository, digest, cause="test")
    for blob in (own, config):
        assert archive_file(registry, blob).exists() and not hot_file(registry, blob).exists()
    assert fsck_clean(registry)


@pytest.mark.parametrize("point", ["copied", "flipped", "restored"])
def test_a_restore_stopped_between_steps_is_finished_by_the_job_running_again(
    registry: Registry, client: TestClient, clock: FakeClock, point: str
) -> None:
    registry.registry.create_repository("app")
    own = random_blob(5000)
    digest, config = push(client, "app", "v1", [own])
    repository = registry.registry.get_repository("app")
    registry.archive.archive(repository, digest, cause="test")
    registry.archive.restore(repository, digest, cause="test")

    def crash(at: str) -> None:
        if at == point:
            raise Crash(at)

    registry.archive.pause = crash
    registry.jobs.drain()  # the job fails at the point, and is queued again
    assert status(registry, "app", digest) == "ACTIVATING"
    assert fsck_clean(registry)

    registry.archive.pause = lambda _at: None
    clock.advance(3600)
    registry.jobs.drain()
    assert status(registry, "app", digest) == "ACTIVE"
    for blob in (own, config):
        assert hot_file(registry, blob).exists() and not archive_file(registry, blob).exists()
    assert client.get("/v2/app/manifests/v1").status_code == 200
    assert fsck_clean(registry)


def test_fsck_reports_an_archived_blob_missing_from_the_archive(registry: Registry, client: TestClient) -> None:
    registry.registry.create_repository("app")
    own = random_blob(2000)
    digest, _ = push(client, "app", "v1", [own])
    registry.archive.archive(registry.registry.get_repository("app"), digest, cause="test")

    archive_file(registry, own).unlink()

    report = Fsck(registry.store, registry.blobs, registry=registry.registry, clock=registry.clock).check()
    assert [(f.problem, f.subject) for f in report.damage] == [("missing-blob", own.digest)]
    assert json.dumps(report.as_json())
