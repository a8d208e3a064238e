"""Image pull policies: set with ecrd's own operations through boto3 (given the model `ecrd aws-model` prints)
and with the CLI, enforced on /v2/ manifest pulls — skopeo refused an image with findings at the threshold, with
an OCI DENIED error naming the reason and the count, or one without a trusted signature; allowed once the policy
is met; an exempt principal always passes; and the refusals are in the audit trail."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError
from starlette.testclient import TestClient

from ecrd.app import Registry
from ecrd.cli.main import main
from ecrd.config import Settings
from tests.conftest import ROOT_ACCESS_KEY_ID, ROOT_SECRET_ACCESS_KEY
from tests.support.clients import (
    AwsCredentials,
    OciHttp,
    Skopeo,
    ToolFailed,
    aws_client,
    ecr_registry_credentials,
    ecr_with_ecrd_operations,
    registry_session,
)
from tests.support.layers import file, layer
from tests.support.live_server import live_server
from tests.support.oci import Blob, config_blob, digest_of, image_manifest, push_blob, push_manifest

LAYER_TYPE = "application/vnd.oci.image.layer.v1.tar+gzip"
SITE = "usr/lib/python3/site-packages"
READ_ONLY = "arn:aws:iam::aws:policy/AmazonEC2ContainerRegistryReadOnly"
ROOT = AwsCredentials(ROOT_ACCESS_KEY_ID, ROOT_SECRET_ACCESS_KEY)


def _advisory(advisory_id: str, package: str, severity: str) -> dict[str, Any]:
    return {
        "id": advisory_id,
        "modified": "2026-01-01T00:00:00Z",
        "affected": [
            {
                "package": {"ecosystem": "PyPI", "name": package},
                "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "9.0"}]}],
            }
        ],
        "database_specific": {"severity": severity},
    }


@pytest.fixture
def endpoint(registry: Registry, tmp_path: Path) -> Iterator[str]:
    # alpha has a CRITICAL and a HIGH advisory, beta a LOW one
    data = tmp_path / "advisories.jsonl"
    records = [
        _advisory("ECRD-TEST-1", "alpha", "CRITICAL"),
        _advisory("ECRD-TEST-2", "alpha", "HIGH"),
        _advisory("ECRD-TEST-3", "beta", "LOW"),
    ]
    data.write_text("".join(json.dumps(record) + "\n" for record in records))
    registry.vulndb.import_paths([data])
    with live_server(registry) as url:
        yield url


def _push(client: TestClient, name: str, tag: str, *packages: str) -> str:
    entries = [file("etc/os-release", "ID=debian\nVERSION_ID=12\n")]
    entries += [
        file(f"{SITE}/{package}-1.0.dist-info/METADATA", f"Metadata-Version: 2.1\nName: {package}\nVersion: 1.0\n")
        for package in packages
    ]
    config, blob = config_blob(), Blob(layer(*entries), LAYER_TYPE)
    for item in (config, blob):
        push_blob(client, name, item)
    manifest = image_manifest(config, [blob])
    push_manifest(client, name, tag, manifest)
    return digest_of(manifest)


def _pull(skopeo: Skopeo, host: str, reference: str, destination: Path) -> str:
    """skopeo copy of the image to an OCI layout: '' when it was pulled, else skopeo's error output."""
    try:
        skopeo.copy(f"docker://{host}/{reference}", f"oci:{destination}:pulled")
    except ToolFailed as failed:
        return str(failed)
    return ""


def _user(endpoint: str, name: str) -> tuple[str, AwsCredentials]:
    iam = aws_client("iam", endpoint, ROOT)
    arn = iam.create_user(UserName=name)["User"]["Arn"]
    iam.attach_user_policy(UserName=name, PolicyArn=READ_ONLY)
    return arn, AwsCredentials.from_access_key(iam.create_access_key(UserName=name)["AccessKey"])


def test_a_severity_threshold_refuses_vulnerable_images_but_not_the_exempt(
    registry: Registry, endpoint: str, client: TestClient, tmp_path: Path
) -> None:
    ecr = ecr_with_ecrd_operations(endpoint, tmp_path / "models", ROOT)
    ecr.create_repository(repositoryName="guarded", imageScanningConfiguration={"scanOnPush": True})
    scanner_arn, scanner_key = _user(endpoint, "scanner")
    _, reader_key = _user(endpoint, "reader")
    policy = {"severityThreshold": "HIGH", "exemptPrincipals": [scanner_arn]}
    assert ecr.put_image_pull_policy(repositoryName="guarded", pullPolicy=policy)["pullPolicy"] == policy
    assert ecr.get_image_pull_policy(repositoryName="guarded")["pullPolicy"] == policy
    vulnerable = _push(client, "guarded", "vulnerable", "alpha", "beta")
    _push(client, "guarded", "mild", "beta")
    host = endpoint.removeprefix("http://")
    reader = Skopeo(tmp_path / "reader", ecr_registry_credentials(aws_client("ecr", endpoint, reader_key)))

    # before the scans have run, nothing says the images are below the threshold
    assert "has no completed scan (its scan is IN_PROGRESS)" in _pull(reader, host, "guarded:mild", tmp_path / "early")
    registry.jobs.drain()

    # an image with two findings at HIGH or above is refused with DENIED, the reason and the count
    with registry_session(ecr_registry_credentials(aws_client("ecr", endpoint, reader_key))) as session:
        response = OciHttp(session, endpoint).get_manifest(
            "guarded", "vulnerable", "application/vnd.oci.image.manifest.v1+json"
        )
    assert response.status_code == 403
    [error] = response.json()["errors"]
    assert error["code"] == "DENIED"
    assert error["detail"] == {"reason": "VULNERABLE", "findingCount": 2}
    assert f"image {vulnerable} has 2 findings of severity HIGH or higher" in error["message"]
    refused = _pull(reader, host, "guarded:vulnerable", tmp_path / "refused")
    assert "has 2 findings of severity HIGH or higher" in refused

    # one with a LOW finding only is pulled; the exempt scanner pulls the vulnerable one
    assert _pull(reader, host, "guarded:mild", tmp_path / "mild") == ""
    scanner = Skopeo(tmp_path / "scanner", ecr_registry_credentials(aws_client("ecr", endpoint, scanner_key)))
    assert _pull(scanner, host, "guarded:vulnerable", tmp_path / "exempt") == ""

    # and the refusals are audited as denials of the pull
    denied = [e for e in registry.audit.events() if e.outcome == "denied" and e.repository == "guarded"]
    assert denied and all(e.status == 403 for e in denied)

    # without the policy the reader pulls it
    ecr.delete_image_pull_policy(repositoryName="guarded")
    assert _pull(reader, host, "guarded:vulnerable", tmp_path / "after") == ""
    with pytest.raises(ClientError) as caught:
        ecr.get_image_pull_policy(repositoryName="guarded")
    assert caught.value.response["Error"]["Code"] == "ImagePullPolicyNotFoundException"


def test_a_required_signature_refuses_unsigned_images_until_they_are_signed(
    registry: Registry,
    settings: Settings,
    endpoint: str,
    client: TestClient,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    ecr = ecr_with_ecrd_operations(endpoint, tmp_path / "models", ROOT)
    profile = registry.aws.services.signing.create_signing_profile("release").arn
    ecr.create_repository(repositoryName="signed/app")
    ecr.create_repository(repositoryName="unsigned")
    ecr.put_signing_configuration(
        signingConfiguration={
            "rules": [
                {
                    "signingProfileArn": profile,
                    "repositoryFilters": [{"filter": "signed/*", "filterType": "WILDCARD_MATCH"}],
                }
            ]
        }
    )
    flags = ["--data-dir", str(settings.data_dir), "--database-url", settings.resolved_database_url]
    for name in ("signed/app", "unsigned"):
        # set from the registry's host with the CLI
        assert main(["pull-policy", "put", name, "--require-signature", profile, *flags]) == 0
    capsys.readouterr()
    assert main(["pull-policy", "get", "unsigned", *flags]) == 0
    assert json.loads(capsys.readouterr().out) == {"requireSignatureFrom": [profile]}
    _push(client, "signed/app", "v1", "beta")
    _push(client, "unsigned", "v1", "beta")
    host = endpoint.removeprefix("http://")
    skopeo = Skopeo(tmp_path / "skopeo", ecr_registry_credentials(ecr))

    # the image is refused until its signing job has run, then pulled; the one no rule signs stays refused
    assert "has no signature by a trusted signing profile" in _pull(skopeo, host, "signed/app:v1", tmp_path / "a")
    registry.jobs.drain()
    assert _pull(skopeo, host, "signed/app:v1", tmp_path / "b") == ""
    assert "has no signature by a trusted signing profile" in _pull(skopeo, host, "unsigned:v1", tmp_path / "c")

    # the CLI's change is audited
    actions = {e.action for e in registry.audit.events() if e.repository == "unsigned"}
    assert "ecrd:PutImagePullPolicy" in actions


def test_a_repository_made_from_a_template_starts_with_its_pull_policy(
    endpoint: str, client: TestClient, tmp_path: Path, settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    # given a CREATE_ON_PUSH template with a pull policy set through the CLI
    ecr = ecr_with_ecrd_operations(endpoint, tmp_path / "models", ROOT)
    ecr.create_repository_creation_template(prefix="gated", appliedFor=["CREATE_ON_PUSH"])
    flags = ["--data-dir", str(settings.data_dir), "--database-url", settings.resolved_database_url]
    assert main(["pull-policy", "put", "gated", "--template", "--severity-threshold", "CRITICAL", *flags]) == 0
    assert ecr.get_image_pull_policy(templatePrefix="gated")["pullPolicy"] == {"severityThreshold": "CRITICAL"}

    # when a push creates a repository under its prefix
    _push(client, "gated/app", "v1", "beta")

    # then the repository has the template's policy
    assert ecr.get_image_pull_policy(repositoryName="gated/app")["pullPolicy"] == {"severityThreshold": "CRITICAL"}
