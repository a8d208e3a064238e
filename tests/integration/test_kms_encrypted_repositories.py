"""Repositories encrypted with KMS keys: the key's state decides whether images can be read, repository by
repository; a layer shared by repositories with different keys is stored once."""

from __future__ import annotations

from pathlib import Path

import pytest
from botocore.exceptions import ClientError
from starlette.testclient import TestClient

from ecrd.app import Registry
from tests.integration.test_ecr_api import client_for, error_code
from tests.support.clock import FakeClock
from tests.support.oci import Blob, config_blob, image_manifest, push_blob, push_manifest


def _push_image(client: TestClient, name: str, layer: Blob) -> bytes:
    config = config_blob()
    for blob in (config, layer):
        push_blob(client, name, blob)
    manifest = image_manifest(config, [layer])
    push_manifest(client, name, "v1", manifest)
    return manifest


def test_kms_repository_without_a_key_uses_the_managed_ecr_key(endpoint: str) -> None:
    ecr, kms = client_for(endpoint, "ecr"), client_for(endpoint, "kms")
    created = ecr.create_repository(repositoryName="managed", encryptionConfiguration={"encryptionType": "KMS"})
    key_arn = created["repository"]["encryptionConfiguration"]["kmsKey"]
    aliases = {a["AliasName"]: a.get("TargetKeyId") for a in kms.list_aliases()["Aliases"]}
    assert key_arn.endswith(aliases["alias/aws/ecr"])
    second = ecr.create_repository(repositoryName="managed2", encryptionConfiguration={"encryptionType": "KMS"})
    assert second["repository"]["encryptionConfiguration"]["kmsKey"] == key_arn


def test_disabling_a_key_stops_pulls_of_its_repository_only(endpoint: str, client: TestClient) -> None:
    ecr, kms = client_for(endpoint, "ecr"), client_for(endpoint, "kms")
    key = kms.create_key(Description="team key")["KeyMetadata"]
    ecr.create_repository(
        repositoryName="locked", encryptionConfiguration={"encryptionType": "KMS", "kmsKey": key["Arn"]}
    )
    ecr.create_repository(repositoryName="plain")
    layer = Blob(b"layer" * 1000)
    locked_manifest = _push_image(client, "locked", layer)
    _push_image(client, "plain", layer)

    kms.disable_key(KeyId=key["KeyId"])
    refused = client.get("/v2/locked/manifests/v1")
    assert refused.status_code == 403
    error = refused.json()["errors"][0]
    assert error["code"] == "DENIED"
    assert key["Arn"] in error["message"] and "DisabledException" in error["message"]
    assert client.get(f"/v2/locked/blobs/{layer.digest}").status_code == 403
    assert client.get("/v2/plain/manifests/v1").status_code == 200
    assert client.get(f"/v2/plain/blobs/{layer.digest}").content == layer.data
    with pytest.raises(ClientError) as api:
        ecr.batch_get_image(repositoryName="locked", imageIds=[{"imageTag": "v1"}])
    assert error_code(api) == "KmsException"
    assert api.value.response["kmsError"] == "DisabledException"

    kms.enable_key(KeyId=key["KeyId"])
    assert client.get("/v2/locked/manifests/v1").content == locked_manifest
    assert client.get(f"/v2/locked/blobs/{layer.digest}").content == layer.data


def test_a_deleted_key_leaves_its_images_unreadable_and_describe_images_says_why(
    endpoint: str, client: TestClient, registry: Registry
) -> None:
    ecr, kms = client_for(endpoint, "ecr"), client_for(endpoint, "kms")
    key = kms.create_key()["KeyMetadata"]
    ecr.create_repository(
        repositoryName="doomed", encryptionConfiguration={"encryptionType": "KMS", "kmsKey": key["Arn"]}
    )
    _push_image(client, "doomed", Blob(b"doomed-layer" * 100))
    kms.schedule_key_deletion(KeyId=key["KeyId"], PendingWindowInDays=7)
    with pytest.raises(ClientError) as pending:
        ecr.describe_images(repositoryName="doomed")
    assert error_code(pending) == "KmsException"
    assert "pending deletion" in str(pending.value)
    service = registry.aws.services.kms
    real_clock = service.clock
    past_the_window = FakeClock.at_wall_time()
    past_the_window.advance(8 * 86400)
    service.clock = past_the_window
    try:
        service.purge_deleted_keys()
        with pytest.raises(ClientError) as gone:
            ecr.describe_images(repositoryName="doomed")
        assert error_code(gone) == "KmsException"
        assert "no longer exists" in str(gone.value)
        assert client.get("/v2/doomed/manifests/v1").status_code == 403
    finally:
        service.clock = real_clock


def test_a_layer_shared_across_keys_is_stored_once_and_readable_from_each(
    endpoint: str, client: TestClient, registry: Registry
) -> None:
    ecr, kms = client_for(endpoint, "ecr"), client_for(endpoint, "kms")
    keys = [kms.create_key()["KeyMetadata"]["Arn"] for _ in range(2)]
    for name, key in zip(("blue", "green"), keys, strict=True):
        ecr.create_repository(repositoryName=name, encryptionConfiguration={"encryptionType": "KMS", "kmsKey": key})
    ecr.create_repository(repositoryName="aes")
    layer = Blob(b"shared-across-keys" * 5000)
    for name in ("blue", "green", "aes"):
        _push_image(client, name, layer)
    stored = [p for p in Path(registry.settings.data_dir, "blobs").rglob(layer.digest.split(":")[1])]
    assert len(stored) == 1
    for name in ("blue", "green", "aes"):
        assert client.get(f"/v2/{name}/blobs/{layer.digest}").content == layer.data
    # Disabling one key closes only its repository's door to the shared bytes.
    kms.disable_key(KeyId=keys[0])
    assert client.get(f"/v2/blue/blobs/{layer.digest}").status_code == 403
    assert client.get(f"/v2/green/blobs/{layer.digest}").content == layer.data
    # Mounting needs the same encryption on both sides, as in ECR; otherwise the client uploads.
    assert client.post(f"/v2/green/blobs/uploads/?mount={layer.digest}&from=aes").status_code == 202


def test_create_repository_with_a_disabled_or_unknown_key_is_refused(endpoint: str) -> None:
    ecr, kms = client_for(endpoint, "ecr"), client_for(endpoint, "kms")
    key = kms.create_key()["KeyMetadata"]
    kms.disable_key(KeyId=key["KeyId"])
    for reference in (key["Arn"], "alias/does-not-exist"):
        with pytest.raises(ClientError) as exc:
            ecr.create_repository(
                repositoryName="nope", encryptionConfiguration={"encryptionType": "KMS", "kmsKey": reference}
            )
        assert error_code(exc) == "KmsException"


def test_images_stay_pullable_after_the_repository_key_rotates(endpoint: str, client: TestClient) -> None:
    # given a repository encrypted with a customer managed key, and an image pushed before rotation
    ecr, kms = client_for(endpoint, "ecr"), client_for(endpoint, "kms")
    key = kms.create_key(Description="rotating")["KeyMetadata"]
    ecr.create_repository(
        repositoryName="rotating", encryptionConfiguration={"encryptionType": "KMS", "kmsKey": key["Arn"]}
    )
    old_layer = Blob(b"before-rotation" * 500)
    old_manifest = _push_image(client, "rotating", old_layer)

    # when the key rotates and another image is pushed with the new material
    kms.rotate_key_on_demand(KeyId=key["KeyId"])
    new_layer = Blob(b"after-rotation" * 500)
    config = config_blob()
    for blob in (config, new_layer):
        push_blob(client, "rotating", blob)
    new_manifest = image_manifest(config, [new_layer])
    push_manifest(client, "rotating", "v2", new_manifest)
    kms.rotate_key_on_demand(KeyId=key["KeyId"])

    # then both images pull, through the registry and the API
    assert client.get("/v2/rotating/manifests/v1").content == old_manifest
    assert client.get(f"/v2/rotating/blobs/{old_layer.digest}").content == old_layer.data
    assert client.get("/v2/rotating/manifests/v2").content == new_manifest
    assert client.get(f"/v2/rotating/blobs/{new_layer.digest}").content == new_layer.data
    images = ecr.batch_get_image(repositoryName="rotating", imageIds=[{"imageTag": "v1"}, {"imageTag": "v2"}])
    assert len(images["images"]) == 2 and images["failures"] == []
