"""Registry writes decide on the repository row read under the lock, PutImage refuses an existing image in its
own transaction, and the SBOM a scan attached goes with its image (on SQLite and PostgreSQL)."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from botocore.exceptions import ClientError
from starlette.testclient import TestClient

from ecrd.app import Registry
from ecrd.domain.records import MutabilityExclusion, Repository
from ecrd.errors import ImageTagAlreadyExists, RepositoryNotFound
from ecrd.services.repository_settings import RepositorySettingsService
from tests.integration.test_ecr_api import client_for, error_code
from tests.support.layers import file, layer
from tests.support.oci import (
    OCI_EMPTY,
    OCI_MANIFEST,
    Blob,
    config_blob,
    digest_of,
    image_manifest,
    push_blob,
    push_manifest,
    random_blob,
)
from tests.support.vulndata import VULNDATA

SBOM_TYPE = "application/vnd.cyclonedx+json"
LAYER_TYPE = "application/vnd.oci.image.layer.v1.tar+gzip"


def _settings(registry: Registry) -> RepositorySettingsService:
    return registry.aws.services.settings_service


def _image(client: TestClient, name: str) -> bytes:
    config, blob = config_blob(), random_blob()
    for item in (config, blob):
        push_blob(client, name, item)
    return image_manifest(config, [blob])


def _tag_digest(client: TestClient, name: str, tag: str) -> str | None:
    response = client.head(f"/v2/{name}/manifests/{tag}", headers={"Accept": OCI_MANIFEST})
    return response.headers["Docker-Content-Digest"] if response.status_code == 200 else None


# -- the row read under the lock decides ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("before", "after", "moves"),
    [
        (("MUTABLE", ()), ("IMMUTABLE", ()), False),
        (("MUTABLE", ()), ("MUTABLE_WITH_EXCLUSION", ("v*",)), False),
        (("IMMUTABLE", ()), ("MUTABLE", ()), True),
        (("IMMUTABLE", ()), ("IMMUTABLE_WITH_EXCLUSION", ("v*",)), True),
    ],
)
def test_a_push_decides_mutability_on_the_setting_committed_before_it_not_on_the_row_its_caller_read(
    client: TestClient,
    registry: Registry,
    before: tuple[str, tuple[str, ...]],
    after: tuple[str, tuple[str, ...]],
    moves: bool,
) -> None:
    def exclusions(filters: tuple[str, ...]) -> tuple[MutabilityExclusion, ...]:
        return tuple(MutabilityExclusion("WILDCARD", f) for f in filters)

    # given a tag pushed, and a push in flight that read the repository row before the setting changed
    registry.registry.create_repository(
        "stale", image_tag_mutability=before[0], mutability_exclusions=exclusions(before[1])
    )
    first, second = _image(client, "stale"), _image(client, "stale")
    push_manifest(client, "stale", "v1", first)
    read_by_the_push = registry.registry.get_repository("stale")
    # when the setting changes (committed) and then the in-flight push lands
    _settings(registry).put_image_tag_mutability(read_by_the_push, after[0], exclusions(after[1]))
    if moves:
        registry.registry.put_manifest(read_by_the_push, "v1", second, OCI_MANIFEST)
        assert _tag_digest(client, "stale", "v1") == digest_of(second)
    else:
        with pytest.raises(ImageTagAlreadyExists):
            registry.registry.put_manifest(read_by_the_push, "v1", second, OCI_MANIFEST)
        # then the tag did not move, and the refused push left no image behind
        assert _tag_digest(client, "stale", "v1") == digest_of(first)
        assert client.get(f"/v2/stale/manifests/{digest_of(second)}").status_code == 404


def test_scan_on_push_turned_on_during_a_push_queues_the_scan(client: TestClient, registry: Registry) -> None:
    registry.registry.create_repository("scanme")
    manifest = _image(client, "scanme")
    read_by_the_push = registry.registry.get_repository("scanme")
    _settings(registry).put_scan_on_push(read_by_the_push, True)
    registry.registry.put_manifest(read_by_the_push, "v1", manifest, OCI_MANIFEST)
    current = registry.registry.get_repository("scanme")
    assert digest_of(manifest) in registry.scanning.scan_summaries(current, [digest_of(manifest)])


def test_a_push_to_a_repository_deleted_and_made_again_meanwhile_is_refused(
    client: TestClient, registry: Registry
) -> None:
    registry.registry.create_repository("again")
    manifest = _image(client, "again")
    read_by_the_push = registry.registry.get_repository("again")
    registry.registry.delete_repository("again", force=True)
    registry.registry.create_repository("again", image_tag_mutability="IMMUTABLE")
    with pytest.raises(RepositoryNotFound):
        registry.registry.put_manifest(read_by_the_push, "v1", manifest, OCI_MANIFEST)
    assert _tag_digest(client, "again", "v1") is None


def test_settings_written_through_a_row_of_a_deleted_repository_are_refused(registry: Registry) -> None:
    gone: Repository = registry.registry.create_repository("gone")
    registry.registry.delete_repository("gone")
    settings = _settings(registry)
    for change in (
        lambda: settings.put_image_tag_mutability(gone, "IMMUTABLE", ()),
        lambda: settings.put_scan_on_push(gone, True),
        lambda: settings.set_repository_policy(gone, "{}"),
        lambda: settings.tag_resource(gone, {"team": "a"}),
    ):
        with pytest.raises(RepositoryNotFound):
            change()


# -- PutImage ---------------------------------------------------------------------------------------------


def _put_images_at_once(clients: list[Any], manifest: str, tag: str) -> list[str]:
    """Each client's PutImage of one image, released together: "stored" or the error code of each."""
    barrier = threading.Barrier(len(clients))
    outcomes: list[str] = []
    lock = threading.Lock()

    def put(ecr: Any) -> None:
        barrier.wait(timeout=30)
        try:
            ecr.put_image(repositoryName="twice", imageManifest=manifest, imageTag=tag)
            outcome = "stored"
        except ClientError as exc:
            outcome = str(exc.response["Error"]["Code"])
        with lock:
            outcomes.append(outcome)

    threads = [threading.Thread(target=put, args=(ecr,)) for ecr in clients]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return outcomes


def test_put_image_of_the_same_image_at_once_succeeds_once_and_refuses_the_rest(
    endpoint: str, client: TestClient, registry: Registry
) -> None:
    client_for(endpoint, "ecr").create_repository(repositoryName="twice")
    clients = [client_for(endpoint, "ecr") for _ in range(6)]
    for round_number in range(4):
        manifest = _image(client, "twice").decode()
        outcomes = _put_images_at_once(clients, manifest, f"v{round_number}")
        assert sorted(outcomes) == sorted(["stored"] + ["ImageAlreadyExistsException"] * (len(clients) - 1))


def test_put_image_of_an_existing_image_names_it_in_ecr_words(endpoint: str, client: TestClient) -> None:
    ecr = client_for(endpoint, "ecr")
    ecr.create_repository(repositoryName="exists")
    manifest = _image(client, "exists")
    ecr.put_image(repositoryName="exists", imageManifest=manifest.decode(), imageTag="v1")
    with pytest.raises(ClientError) as refused:
        ecr.put_image(repositoryName="exists", imageManifest=manifest.decode(), imageTag="v1")
    assert error_code(refused) == "ImageAlreadyExistsException"
    assert refused.value.response["Error"]["Message"] == (
        f"Image with digest '{digest_of(manifest)}' and tag 'v1' already exists in the repository with name "
        "'exists' in registry with id '000000000000'"
    )
    # the same image under another tag is a new tag, not an existing image
    ecr.put_image(repositoryName="exists", imageManifest=manifest.decode(), imageTag="v2")
    with pytest.raises(ClientError) as untagged:
        ecr.put_image(repositoryName="exists", imageManifest=manifest.decode())
    assert error_code(untagged) == "ImageAlreadyExistsException"


# -- the SBOM a scan attached goes with its image -------------------------------------------------------------


def _scanned_image_with_referrers(client: TestClient, registry: Registry, name: str) -> tuple[str, str, str]:
    """(image, the scan's SBOM, a referrer the user pushed) digests of a scanned image."""
    registry.vulndb.import_paths([VULNDATA / "pypi.osv.jsonl"])
    registry.registry.create_repository(name, scan_on_push=True)
    site = "usr/lib/python3/site-packages"
    layer_bytes = layer(
        file("etc/os-release", "ID=debian\nVERSION_ID=11\n"),
        file(f"{site}/django-1.2.dist-info/METADATA", "Metadata-Version: 2.1\nName: django\nVersion: 1.2\n"),
    )
    config, blob = config_blob(), Blob(layer_bytes, LAYER_TYPE)
    for item in (config, blob):
        push_blob(client, name, item)
    manifest = image_manifest(config, [blob])
    push_manifest(client, name, "v1", manifest)
    image = digest_of(manifest)
    assert registry.jobs.drain() == 1
    sbom = registry.scanning.scan_record(registry.registry.get_repository(name), image).sbom_digest
    assert sbom is not None
    empty, signature = Blob(b"{}", OCI_EMPTY), random_blob(64, "application/vnd.example.signature")
    for item in (empty, signature):
        push_blob(client, name, item)
    user_referrer = image_manifest(
        empty,
        [signature],
        artifactType="application/vnd.example.signature",
        subject={"mediaType": OCI_MANIFEST, "digest": image, "size": len(manifest)},
    )
    push_manifest(client, name, digest_of(user_referrer), user_referrer)
    referrers = client.get(f"/v2/{name}/referrers/{image}").json()["manifests"]
    assert sorted(r["digest"] for r in referrers) == sorted([sbom, digest_of(user_referrer)])
    return image, sbom, digest_of(user_referrer)


@pytest.mark.parametrize("door", ["oci-delete", "batch-delete-by-digest", "batch-delete-of-the-last-tag"])
def test_deleting_an_image_deletes_the_sbom_its_scan_attached_and_keeps_what_users_pushed(
    endpoint: str, client: TestClient, registry: Registry, door: str
) -> None:
    image, sbom, user_referrer = _scanned_image_with_referrers(client, registry, "sbom")
    ecr = client_for(endpoint, "ecr")
    # when the image is deleted
    if door == "oci-delete":
        assert client.delete(f"/v2/sbom/manifests/{image}").status_code == 202
    else:
        image_id = {"imageDigest": image} if door == "batch-delete-by-digest" else {"imageTag": "v1"}
        answer = ecr.batch_delete_image(repositoryName="sbom", imageIds=[image_id])
        assert not answer["failures"], answer
    # then the SBOM went with it; the signature the user pushed stays until the user deletes it
    assert client.get(f"/v2/sbom/manifests/{sbom}").status_code == 404
    assert client.get(f"/v2/sbom/manifests/{user_referrer}").status_code == 200
    listed = {i["imageDigest"] for i in ecr.list_images(repositoryName="sbom")["imageIds"]}
    assert listed == {user_referrer}
    referrers = client.get(f"/v2/sbom/referrers/{image}").json()["manifests"]
    assert [r["digest"] for r in referrers] == [user_referrer]
