"""`ecrd migrate-storage` copies every stored object to another store — a directory or an S3 object store —
resumably and while the registry serves; a registry started on the target then serves every image."""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from ecrd.app import Registry, asgi_app, blob_driver, build_registry
from ecrd.cli.main import main
from ecrd.config import Secret, Settings
from ecrd.errors import RepositoryAlreadyExists
from ecrd.services.storage_migration import ObjectMigrated, Outcome, StorageMigration, is_current
from ecrd.storage.blob_store import BLOBS
from ecrd.storage.driver import BlobDriver, ObjectInfo
from ecrd.storage.filesystem import FilesystemDriver
from tests.conftest import ROOT_ACCESS_KEY_ID, ROOT_SECRET_ACCESS_KEY, basic_auth_for
from tests.support.oci import Blob, config_blob, image_manifest, push_blob, push_manifest, random_blob
from tests.support.seaweedfs import S3Endpoint

# The migration copies stored objects and never reads the metadata: one metadata back end is enough.
on_sqlite = pytest.mark.parametrize("backend", ["sqlite"])

OCTET = {"Content-Type": "application/octet-stream"}


@dataclass(frozen=True)
class PushedImage:
    repository: str
    tag: str
    manifest: bytes
    blobs: tuple[Blob, ...]


def push_image(client: TestClient, registry: Registry, repository: str, tag: str) -> PushedImage:
    with suppress(RepositoryAlreadyExists):
        registry.registry.create_repository(repository)
    config, layers = config_blob({"image": f"{repository}:{tag}"}), [random_blob(2048), random_blob(70_000)]
    for blob in (config, *layers):
        push_blob(client, repository, blob)
    manifest = image_manifest(config, layers)
    push_manifest(client, repository, tag, manifest)
    return PushedImage(repository, tag, manifest, (config, *layers))


@contextmanager
def serving(settings: Settings) -> Iterator[tuple[Registry, TestClient]]:
    """A registry on ``settings`` and a /v2/ client logged in to it as the account root."""
    registry = build_registry(settings)
    try:
        registry.identity.authentication.bootstrap_root(ROOT_ACCESS_KEY_ID, ROOT_SECRET_ACCESS_KEY)
        headers = {"Authorization": basic_auth_for(registry, ROOT_ACCESS_KEY_ID)}
        with TestClient(asgi_app(registry), base_url="http://127.0.0.1:5000", headers=headers) as client:
            yield registry, client
    finally:
        registry.close()


def assert_serves(client: TestClient, images: list[PushedImage]) -> None:
    for image in images:
        manifest = client.get(
            f"/v2/{image.repository}/manifests/{image.tag}",
            headers={"Accept": "application/vnd.oci.image.manifest.v1+json"},
        )
        assert manifest.status_code == 200, manifest.text
        assert manifest.content == image.manifest
        for blob in image.blobs:
            served = client.get(f"/v2/{image.repository}/blobs/{blob.digest}")
            assert served.status_code == 200, served.text
            assert served.content == blob.data


def names(driver: BlobDriver) -> set[str]:
    return {info.name for prefix in ("blobs/", "uploads/") for info in driver.list(prefix)}


def cli(*args: str) -> int:
    return main(["migrate-storage", *args])


def store_arguments(settings: Settings) -> list[str]:
    return ["--data-dir", str(settings.data_dir), "--database-url", settings.database_url]


@on_sqlite
def test_migrating_to_a_directory_moves_every_blob_and_the_uploads_in_progress(
    client: TestClient, registry: Registry, settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # given two images, and an upload with its first chunk stored
    images = [push_image(client, registry, "app", "v1"), push_image(client, registry, "tools/base", "v2")]
    first, second = os.urandom(30_000), os.urandom(20_000)
    started = client.post("/v2/app/blobs/uploads/")
    location = started.headers["Location"]
    assert client.patch(location, content=first, headers=OCTET).status_code == 202

    # when the blobs are migrated to another directory
    target = tmp_path / "new-disk"
    assert cli("--to", str(target), *store_arguments(settings)) == 0

    # then it says so, and a registry whose blobs are in that directory (the old one's blobs gone) serves every
    # image and continues the upload
    out = capsys.readouterr().out
    assert f"copying blobs from {settings.data_dir.absolute()} to {target.absolute()}" in out
    assert "copied 7 objects" in out and "skipped 0" in out
    assert "verified: the target holds all 7 objects of the source" in out
    shutil.rmtree(settings.data_dir / "blobs")
    shutil.rmtree(settings.data_dir / "uploads")
    moved = replace(settings, data_dir=target, master_key_file=str(settings.data_dir / "keys" / "master.key"))
    with serving(moved) as (_, new_client):
        assert_serves(new_client, images)
        headers = {**OCTET, "Content-Range": f"{len(first)}-{len(first) + len(second) - 1}"}
        assert new_client.patch(location, content=second, headers=headers).status_code == 202
        digest = Blob(first + second).digest
        assert new_client.put(f"{location}?digest={digest}").status_code == 201
        assert new_client.get(f"/v2/app/blobs/{digest}").content == first + second


@on_sqlite
def test_an_interrupted_migration_resumes_where_it_stopped_and_a_finished_one_copies_nothing(
    client: TestClient, registry: Registry, tmp_path: Path
) -> None:
    # given a registry with three images (nine objects), and a migration stopped after its fourth copy
    for tag in ("a", "b", "c"):
        push_image(client, registry, "app", tag)
    source, target = blob_driver(registry.settings), FilesystemDriver(tmp_path / "target")
    copied: list[str] = []

    def stop_after_four(event: ObjectMigrated) -> None:
        copied.append(event.name)
        if len(copied) == 4:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        StorageMigration(source, target, jobs=1, on_object=stop_after_four).copy_pass()
    # (the copy already in flight when it stopped finishes: every object in the target is whole)
    already = names(target)
    assert set(copied) <= already and len(already) < 9

    # when it runs again, and once more
    again = StorageMigration(source, target, jobs=3).copy_pass()
    once_more = StorageMigration(source, target).copy_pass()

    # then the second run copies only what it had not, the third copies nothing, and the target is complete
    assert (again.objects[Outcome.SKIPPED], again.objects[Outcome.COPIED]) == (len(already), 9 - len(already))
    assert (once_more.objects[Outcome.SKIPPED], once_more.objects[Outcome.COPIED]) == (9, 0)
    assert StorageMigration(source, target).verify().complete


@on_sqlite
def test_objects_written_while_the_registry_serves_are_taken_by_the_second_pass(
    client: TestClient, registry: Registry, settings: Settings, tmp_path: Path
) -> None:
    # given a registry serving two images, being migrated online
    images = [push_image(client, registry, "app", "v1"), push_image(client, registry, "app", "v2")]
    before = names(blob_driver(settings))
    target_dir = tmp_path / "target"
    source, target = blob_driver(settings), FilesystemDriver(target_dir)
    copied_first: set[str] = set()

    def push_during_the_pass(event: ObjectMigrated) -> None:
        if event.outcome is Outcome.COPIED:
            copied_first.add(event.name)
        if len(copied_first) == 1 and len(images) == 2:
            images.append(push_image(client, registry, "app", "v3"))
            images.append(push_image(client, registry, "other", "v1"))

    # when the first pass runs while images are pushed, and a second pass after the pushes stopped
    StorageMigration(source, target, jobs=1, on_object=push_during_the_pass).copy_pass()
    written_meanwhile = names(source) - before
    copied_second: set[str] = set()

    def record(event: ObjectMigrated) -> None:
        if event.outcome is Outcome.COPIED:
            copied_second.add(event.name)

    second = StorageMigration(source, target, jobs=2, on_object=record)
    second.copy_pass()

    # then the second pass copies exactly what the first missed of what was written meanwhile, and the target
    # then holds everything: a registry on it serves all four images
    assert len(written_meanwhile) == 6
    assert copied_second == written_meanwhile - copied_first
    assert second.verify().complete
    shutil.rmtree(settings.data_dir / "blobs")
    moved = replace(settings, data_dir=target_dir, master_key_file=str(settings.data_dir / "keys" / "master.key"))
    with serving(moved) as (_, new_client):
        assert_serves(new_client, images)


@on_sqlite
def test_an_object_stored_again_since_it_was_copied_is_copied_again(registry: Registry, tmp_path: Path) -> None:
    # given an object copied to the target, then stored again in the source (same name and size: a blob
    # deleted and pushed again is sealed with a new key)
    source, target = blob_driver(registry.settings), FilesystemDriver(tmp_path / "target")
    name = f"{BLOBS}sha256/ab/{'ab' * 32}"
    put(source, name, b"first sealing")
    StorageMigration(source, target).copy_pass()
    put(source, name, b"later sealing")
    later = time.time() + 60  # the change after the copy, without waiting for the clock to move
    os.utime(registry.settings.data_dir.joinpath(*name.split("/")), (later, later))

    # when the migration runs again
    report = StorageMigration(source, target).copy_pass()

    # then the stale copy is replaced
    assert report.objects[Outcome.COPIED] == 1
    assert read(target, name) == b"later sealing"


@pytest.mark.parametrize(
    ("source", "target", "current"),
    [
        (ObjectInfo("o", 10, 100.4), ObjectInfo("o", 10, 100.0), True),  # S3 keeps LastModified to the second
        (ObjectInfo("o", 10, 100.0), ObjectInfo("o", 10, 250.0), True),
        (ObjectInfo("o", 10, 100.0), ObjectInfo("o", 11, 250.0), False),
        (ObjectInfo("o", 10, 250.0), ObjectInfo("o", 10, 100.0), False),  # stored again after the copy
    ],
)
def test_a_copy_is_current_when_as_long_and_not_older_than_its_source_to_the_second(
    source: ObjectInfo, target: ObjectInfo, current: bool
) -> None:
    assert is_current(source, target) is current


@on_sqlite
def test_migrating_to_an_object_store_then_serving_from_it(
    client: TestClient,
    registry: Registry,
    settings: Settings,
    s3_endpoint: S3Endpoint,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # given a registry on the filesystem with two images
    images = [push_image(client, registry, "app", "v1"), push_image(client, registry, "web", "v1")]
    bucket = s3_endpoint.new_bucket()
    url = s3_endpoint.storage_url(bucket, "registry")
    s3_arguments = [
        "--s3-endpoint-url", s3_endpoint.url,
        "--s3-region", s3_endpoint.region,
        "--s3-access-key-id", s3_endpoint.access_key_id,
        "--s3-secret-access-key", s3_endpoint.secret_access_key,
    ]  # fmt: skip

    # when its blobs are migrated to a bucket, and the migration is run once more
    assert cli("--to", url, *store_arguments(settings), *s3_arguments) == 0
    first = capsys.readouterr().out
    assert cli("--to", url, *store_arguments(settings), *s3_arguments) == 0
    second = capsys.readouterr().out

    # then the first run copied the six objects and the second found them all there (the store keeps times to
    # the second, and that does not make a copy look stale), and a registry on the bucket serves both images
    assert "copied 6 objects" in first and "verified: the target holds all 6 objects" in first
    assert "copied 0 objects" in second and "skipped 6 already there" in second
    shutil.rmtree(settings.data_dir / "blobs")
    on_s3 = replace(
        settings,
        storage_url=url,
        s3_endpoint_url=s3_endpoint.url,
        s3_region=s3_endpoint.region,
        s3_access_key_id=s3_endpoint.access_key_id,
        s3_secret_access_key=Secret(s3_endpoint.secret_access_key),
    )
    with serving(on_s3) as (_, new_client):
        assert_serves(new_client, images)


@on_sqlite
def test_a_target_that_is_the_source_or_not_a_store_is_refused(
    registry: Registry, settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli("--to", str(settings.data_dir), *store_arguments(settings)) == 2
    assert "is where the blobs already are" in capsys.readouterr().err
    assert cli("--to", "s3://Not_A_Bucket", *store_arguments(settings)) == 2
    assert "--to s3://Not_A_Bucket: setting storage_url" in capsys.readouterr().err


def put(driver: BlobDriver, name: str, data: bytes) -> None:
    writer = driver.put(name)
    writer.write(data)
    writer.commit()


def read(driver: BlobDriver, name: str) -> bytes:
    stream = driver.get(name)
    try:
        buffer = bytearray(1024)
        return bytes(buffer[: stream.readinto(buffer)])
    finally:
        stream.close()
