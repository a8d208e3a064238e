"""Managed signing end to end: a signing profile made with the CLI, a push a signing rule covers signed in the
background with a Notary Project signature that the referrers API lists, skopeo fetches and an offline verifier
accepts against the registry's root certificate; signatures clients push are reported and go with their image."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError
from cryptography.hazmat.primitives import serialization

from ecrd.app import Registry
from ecrd.cli.main import main
from ecrd.config import Settings
from ecrd.domain.registries import RegistryId
from tests.integration.test_ecr_api import client_for
from tests.support.clients import (
    OciHttp,
    Skopeo,
    ecr_registry_credentials,
    put_image_through_api,
    registry_session,
)
from tests.support.images import build_image, canonical_json, sha256_digest
from tests.support.notary import verify_notary_signature

NOTARY = "application/vnd.cncf.notary.signature"
COSIGN = "application/vnd.dev.cosign.artifact.sig.v1+json"
EMPTY = b"{}"


def _cli(settings: Settings, capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    capsys.readouterr()
    assert main([*argv, "--data-dir", str(settings.data_dir), "--database-url", settings.resolved_database_url]) == 0
    return capsys.readouterr().out


def test_the_command_line_makes_profiles_in_the_registry_it_names(
    registry: Registry, settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    other = "444455556666"
    registry.registries.accounts.create(account_id=other)

    arn = _cli(settings, capsys, "signing-profile", "create", "release", "--account-id", other, "--region", "eu-west-1")

    assert arn.strip() == f"arn:aws:signer:eu-west-1:{other}:/signing-profiles/release"
    west = registry.registries.get(RegistryId(other, "eu-west-1"))
    assert [p.name for p in west.signing.list_signing_profiles()] == ["release"]
    assert registry.aws.services.signing.list_signing_profiles() == []
    argv = ["signing-profile", "list", "--account-id", "333333333333", "--data-dir", str(settings.data_dir)]
    assert main([*argv, "--database-url", settings.resolved_database_url]) == 1
    assert "333333333333" in capsys.readouterr().err


def _attach(oci: OciHttp, name: str, subject: dict[str, Any], artifact_type: str, content: bytes) -> str:
    """Push a referrer of ``subject`` as a signing client does: its blobs, then its manifest by digest."""
    oci.push_blob(name, EMPTY, sha256_digest(EMPTY))
    oci.push_blob(name, content, sha256_digest(content))
    manifest = canonical_json(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "artifactType": artifact_type,
            "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": sha256_digest(EMPTY), "size": 2},
            "layers": [
                {"mediaType": "application/octet-stream", "digest": sha256_digest(content), "size": len(content)}
            ],
            "subject": subject,
        }
    )
    digest = sha256_digest(manifest)
    response = oci.put_manifest(name, digest, manifest, "application/vnd.oci.image.manifest.v1+json")
    assert response.status_code == 201, response.text
    return digest


def test_a_covered_push_is_signed_with_a_signature_that_verifies_offline(
    registry: Registry, settings: Settings, endpoint: str, ecr: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # given a signing profile made with the CLI and a rule signing the repositories under team/
    arn = _cli(settings, capsys, "signing-profile", "create", "release").strip()
    assert arn == "arn:aws:signer:us-east-1:000000000000:/signing-profiles/release"
    assert arn in _cli(settings, capsys, "signing-profile", "list")
    root = _cli(settings, capsys, "signing-profile", "trust-root")
    rule = {"signingProfileArn": arn, "repositoryFilters": [{"filter": "team/*", "filterType": "WILDCARD_MATCH"}]}
    ecr.put_signing_configuration(signingConfiguration={"rules": [rule]})
    assert ecr.get_signing_configuration()["signingConfiguration"]["rules"] == [rule]
    for name in ("team/app", "other"):
        ecr.create_repository(repositoryName=name)

    # when an image is pushed to each and the job queue is worked
    signed = put_image_through_api(ecr, "team/app", build_image([256], seed=7), "v1")
    unsigned = put_image_through_api(ecr, "other", build_image([256], seed=8), "v1")
    in_progress = ecr.describe_image_signing_status(repositoryName="team/app", imageId={"imageTag": "v1"})
    registry.jobs.drain()

    # then the covered image was signed by the profile, the other not at all
    assert in_progress["signingStatuses"] == [{"signingProfileArn": arn, "status": "IN_PROGRESS"}]
    status = ecr.describe_image_signing_status(repositoryName="team/app", imageId={"imageTag": "v1"})
    assert status["imageId"] == {"imageDigest": signed["imageId"]["imageDigest"], "imageTag": "v1"}
    assert status["signingStatuses"] == [{"signingProfileArn": arn, "status": "COMPLETE"}]
    other = ecr.describe_image_signing_status(repositoryName="other", imageId=unsigned["imageId"])
    assert other["signingStatuses"] == []

    # and the referrers API lists the signature, which skopeo fetches and the offline verifier accepts
    credentials = ecr_registry_credentials(ecr)
    digest = signed["imageId"]["imageDigest"]
    with registry_session(credentials) as session:
        oci = OciHttp(session, endpoint)
        index = oci.referrers("team/app", digest).json()
        [descriptor] = index["manifests"]
        assert descriptor["artifactType"] == NOTARY
        host = endpoint.removeprefix("http://")
        manifest = Skopeo(tmp_path / "skopeo", credentials).inspect(
            f"docker://{host}/team/app@{descriptor['digest']}", raw=True
        )
        envelope = oci.get_blob("team/app", manifest["layers"][0]["digest"]).content
    subject = {
        "mediaType": signed["imageManifestMediaType"],
        "digest": digest,
        "size": len(signed["imageManifest"].encode()),
    }
    leaf = verify_notary_signature(manifest, envelope, subject, root)
    assert "release" in leaf.subject.rfc4514_string()

    # and the key that signed is the profile's KMS signing key, whose public key the certificate carries
    [listed] = _cli(settings, capsys, "signing-profile", "list").splitlines()
    kms = client_for(endpoint, "kms")
    key_arn = listed.split("\t")[2]
    assert kms.describe_key(KeyId=key_arn)["KeyMetadata"]["KeySpec"] == "ECC_NIST_P256"
    assert kms.get_public_key(KeyId=key_arn)["PublicKey"] == leaf.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def test_a_signing_job_run_again_after_its_signature_was_attached_attaches_no_second(
    registry: Registry, settings: Settings, ecr: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    # given an image whose signing job is queued
    arn = _cli(settings, capsys, "signing-profile", "create", "release").strip()
    rule = {"signingProfileArn": arn, "repositoryFilters": [{"filter": "*", "filterType": "WILDCARD_MATCH"}]}
    ecr.put_signing_configuration(signingConfiguration={"rules": [rule]})
    ecr.create_repository(repositoryName="app")
    digest = put_image_through_api(ecr, "app", build_image([64], seed=11), "v1")["imageId"]["imageDigest"]
    # and a run of it that attached the signature and ended there, before its outcome was recorded (the
    # process stopped): the job is still queued, so it runs again
    signing = registry.aws.services.signing
    signing._sign(registry.registry.get_repository("app"), digest, arn)

    # when the job runs again
    registry.jobs.drain()

    # then the image has the one signature, recorded as the profile's
    images = ecr.list_images(repositoryName="app")["imageIds"]
    assert len(images) == 2, images
    status = ecr.describe_image_signing_status(repositoryName="app", imageId={"imageDigest": digest})
    assert status["signingStatuses"] == [{"signingProfileArn": arn, "status": "COMPLETE"}]


def test_signatures_clients_push_are_reported_and_deleted_with_their_image(
    registry: Registry, endpoint: str, ecr: Any
) -> None:
    # given an image with a cosign signature, a notation signature and an SBOM a client attached to it
    ecr.create_repository(repositoryName="app")
    pushed = put_image_through_api(ecr, "app", build_image([128], seed=3), "v1")
    digest = pushed["imageId"]["imageDigest"]
    subject = {"mediaType": pushed["imageManifestMediaType"], "digest": digest, "size": len(pushed["imageManifest"])}
    with registry_session(ecr_registry_credentials(ecr)) as session:
        oci = OciHttp(session, endpoint)
        cosign = _attach(oci, "app", subject, COSIGN, b"cosign payload")
        notation = _attach(oci, "app", subject, NOTARY, b"notation envelope")
        sbom = _attach(oci, "app", subject, "application/spdx+json", b"{}\n")

    # when the signing status is asked: each signature counts, made with keys the registry does not hold
    statuses = ecr.describe_image_signing_status(repositoryName="app", imageId={"imageDigest": digest})
    assert statuses["registryId"] == "000000000000"
    assert statuses["signingStatuses"] == [{"status": "COMPLETE"}, {"status": "COMPLETE"}]

    # when the image is deleted
    ecr.batch_delete_image(repositoryName="app", imageIds=[{"imageTag": "v1"}])

    # then its signatures are gone with it; the SBOM, another kind of referrer, stays for its owner
    left = {image["imageDigest"] for image in ecr.list_images(repositoryName="app")["imageIds"]}
    assert left == {sbom}
    assert cosign not in left and notation not in left
    with pytest.raises(ClientError) as caught:
        ecr.describe_image_signing_status(repositoryName="app", imageId={"imageDigest": digest})
    assert caught.value.response["Error"]["Code"] == "ImageNotFoundException"
