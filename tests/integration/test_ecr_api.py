"""The ECR API through boto3 against a real socket, on both metadata back ends."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
import requests
from botocore.exceptions import ClientError

from tests.conftest import ROOT_ACCESS_KEY_ID, ROOT_SECRET_ACCESS_KEY
from tests.support.clients import AwsCredentials, aws_client
from tests.support.oci import OCI_MANIFEST, config_blob, digest_of, image_manifest, random_blob


def client_for(
    endpoint: str,
    service: str,
    key: str = ROOT_ACCESS_KEY_ID,
    secret: str = ROOT_SECRET_ACCESS_KEY,
    token: str | None = None,
) -> Any:
    """A boto3 client on the in-process registry, as the account root unless told otherwise."""
    return aws_client(service, endpoint, AwsCredentials(key, secret, token))


def error_code(exc: pytest.ExceptionInfo[ClientError]) -> str:
    return str(exc.value.response["Error"]["Code"])


def registry_session(endpoint: str, ecr: Any) -> requests.Session:
    token = ecr.get_authorization_token()["authorizationData"][0]["authorizationToken"]
    session = requests.Session()
    session.headers["Authorization"] = f"Basic {token}"
    return session


def test_create_describe_and_delete_repository(ecr: Any) -> None:
    created = ecr.create_repository(
        repositoryName="team/app",
        imageTagMutability="IMMUTABLE",
        imageScanningConfiguration={"scanOnPush": True},
        encryptionConfiguration={"encryptionType": "KMS"},
        tags=[{"Key": "team", "Value": "blue"}],
    )["repository"]
    assert created["repositoryName"] == "team/app"
    assert created["repositoryArn"] == "arn:aws:ecr:us-east-1:000000000000:repository/team/app"
    assert created["repositoryUri"] == "127.0.0.1:5000/team/app"
    assert created["imageTagMutability"] == "IMMUTABLE"
    assert created["imageScanningConfiguration"] == {"scanOnPush": True}
    assert created["encryptionConfiguration"]["encryptionType"] == "KMS"
    described = ecr.describe_repositories(repositoryNames=["team/app"])["repositories"]
    assert described[0]["repositoryArn"] == created["repositoryArn"]
    tags = ecr.list_tags_for_resource(resourceArn=created["repositoryArn"])["tags"]
    assert tags == [{"Key": "team", "Value": "blue"}]
    with pytest.raises(ClientError) as exists:
        ecr.create_repository(repositoryName="team/app")
    assert error_code(exists) == "RepositoryAlreadyExistsException"
    ecr.delete_repository(repositoryName="team/app")
    with pytest.raises(ClientError) as missing:
        ecr.describe_repositories(repositoryNames=["team/app"])
    assert error_code(missing) == "RepositoryNotFoundException"
    assert "does not exist in the registry with id '000000000000'" in str(missing.value)


def test_invalid_repository_name_is_an_invalid_parameter(ecr: Any) -> None:
    with pytest.raises(ClientError) as exc:
        ecr.create_repository(repositoryName="Upper/Case")
    assert error_code(exc) == "InvalidParameterException"


def test_describe_repositories_paginates(ecr: Any) -> None:
    for i in range(5):
        ecr.create_repository(repositoryName=f"repo-{i}")
    pages = list(ecr.get_paginator("describe_repositories").paginate(PaginationConfig={"PageSize": 2}))
    assert len(pages) == 3
    names = [r["repositoryName"] for p in pages for r in p["repositories"]]
    assert names == [f"repo-{i}" for i in range(5)]


def test_delete_non_empty_repository_needs_force(ecr: Any, endpoint: str) -> None:
    ecr.create_repository(repositoryName="full")
    _put_image_via_api(ecr, endpoint, "full", "v1")
    with pytest.raises(ClientError) as exc:
        ecr.delete_repository(repositoryName="full")
    assert error_code(exc) == "RepositoryNotEmptyException"
    ecr.delete_repository(repositoryName="full", force=True)


def _upload_layer_via_api(ecr: Any, name: str, data: bytes) -> str:
    upload_id = ecr.initiate_layer_upload(repositoryName=name)["uploadId"]
    received = ecr.upload_layer_part(
        repositoryName=name, uploadId=upload_id, partFirstByte=0, partLastByte=len(data) - 1, layerPartBlob=data
    )
    assert received["lastByteReceived"] == len(data) - 1
    digest = digest_of(data)
    done = ecr.complete_layer_upload(repositoryName=name, uploadId=upload_id, layerDigests=[digest])
    assert done["layerDigest"] == digest
    return digest


def _put_image_via_api(ecr: Any, endpoint: str, name: str, tag: str) -> tuple[bytes, list[bytes]]:
    config = config_blob()
    layer = random_blob(2048)
    for blob in (config, layer):
        _upload_layer_via_api(ecr, name, blob.data)
    manifest = image_manifest(config, [layer])
    image = ecr.put_image(repositoryName=name, imageManifest=manifest.decode(), imageTag=tag)["image"]
    assert image["imageId"] == {"imageDigest": digest_of(manifest), "imageTag": tag}
    return manifest, [config.data, layer.data]


def test_image_put_through_the_api_pulls_through_the_registry(ecr: Any, endpoint: str) -> None:
    ecr.create_repository(repositoryName="app")
    manifest, blobs = _put_image_via_api(ecr, endpoint, "app", "v1")
    session = registry_session(endpoint, ecr)
    got = session.get(f"{endpoint}/v2/app/manifests/v1", headers={"Accept": OCI_MANIFEST})
    assert got.status_code == 200
    assert got.content == manifest
    for blob in blobs:
        assert session.get(f"{endpoint}/v2/app/blobs/{digest_of(blob)}").content == blob
    described = ecr.describe_images(repositoryName="app")["imageDetails"]
    assert described[0]["imageTags"] == ["v1"]
    assert described[0]["imageManifestMediaType"] == OCI_MANIFEST
    assert described[0]["imageSizeInBytes"] == sum(len(b) for b in blobs)
    assert "lastRecordedPullTime" in described[0]
    fetched = ecr.batch_get_image(repositoryName="app", imageIds=[{"imageTag": "v1"}, {"imageTag": "nope"}])
    assert fetched["images"][0]["imageManifest"] == manifest.decode()
    assert fetched["failures"][0]["failureCode"] == "ImageNotFound"
    refused = ecr.batch_get_image(
        repositoryName="app",
        imageIds=[{"imageTag": "v1"}],
        acceptedMediaTypes=["application/vnd.docker.distribution.manifest.v2+json"],
    )
    assert refused["images"] == []
    with pytest.raises(ClientError) as again:
        ecr.put_image(repositoryName="app", imageManifest=manifest.decode(), imageTag="v1")
    assert error_code(again) == "ImageAlreadyExistsException"


def test_download_url_fetches_the_layer_without_other_credentials(ecr: Any, endpoint: str) -> None:
    ecr.create_repository(repositoryName="app")
    digest = _upload_layer_via_api(ecr, "app", b"layer-bytes" * 100)
    url = ecr.get_download_url_for_layer(repositoryName="app", layerDigest=digest)["downloadUrl"]
    assert requests.get(url.replace("127.0.0.1:5000", endpoint.split("//")[1]), timeout=10).content == (
        b"layer-bytes" * 100
    )
    checked = ecr.batch_check_layer_availability(repositoryName="app", layerDigests=[digest, digest_of(b"no")])
    assert checked["layers"][0]["layerAvailability"] == "AVAILABLE"
    assert checked["failures"][0]["failureCode"] == "MissingLayerDigest"
    with pytest.raises(ClientError) as missing:
        ecr.get_download_url_for_layer(repositoryName="app", layerDigest=digest_of(b"no"))
    assert error_code(missing) == "LayersNotFoundException"


def test_upload_layer_part_out_of_order_reports_last_valid_byte(ecr: Any) -> None:
    ecr.create_repository(repositoryName="app")
    upload_id = ecr.initiate_layer_upload(repositoryName="app")["uploadId"]
    ecr.upload_layer_part(
        repositoryName="app", uploadId=upload_id, partFirstByte=0, partLastByte=9, layerPartBlob=b"0123456789"
    )
    with pytest.raises(ClientError) as exc:
        ecr.upload_layer_part(
            repositoryName="app", uploadId=upload_id, partFirstByte=20, partLastByte=29, layerPartBlob=b"0123456789"
        )
    assert error_code(exc) == "InvalidLayerPartException"
    assert exc.value.response["lastValidByteReceived"] == 9
    with pytest.raises(ClientError) as wrong:
        ecr.complete_layer_upload(repositoryName="app", uploadId=upload_id, layerDigests=[digest_of(b"x")])
    assert error_code(wrong) == "InvalidLayerException"


def test_list_images_and_batch_delete_follow_ecr_tag_rules(ecr: Any, endpoint: str) -> None:
    ecr.create_repository(repositoryName="app")
    manifest, _ = _put_image_via_api(ecr, endpoint, "app", "v1")
    digest = digest_of(manifest)
    ecr.put_image(repositoryName="app", imageManifest=manifest.decode(), imageTag="v2")
    ids = ecr.list_images(repositoryName="app")["imageIds"]
    assert sorted(i["imageTag"] for i in ids) == ["v1", "v2"]
    assert ecr.list_images(repositoryName="app", filter={"tagStatus": "UNTAGGED"})["imageIds"] == []
    deleted = ecr.batch_delete_image(repositoryName="app", imageIds=[{"imageTag": "v1"}])
    assert deleted["imageIds"] == [{"imageDigest": digest, "imageTag": "v1"}]
    assert ecr.describe_images(repositoryName="app")["imageDetails"][0]["imageTags"] == ["v2"]
    ecr.batch_delete_image(repositoryName="app", imageIds=[{"imageTag": "v2"}])
    assert ecr.describe_images(repositoryName="app")["imageDetails"] == []
    missing = ecr.batch_delete_image(repositoryName="app", imageIds=[{"imageDigest": digest}])
    assert missing["failures"][0]["failureCode"] == "ImageNotFound"


def test_repository_policy_lifecycle_and_validation(ecr: Any) -> None:
    ecr.create_repository(repositoryName="app")
    policy = json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"AWS": "arn:aws:iam::000000000000:root"},
                    "Action": "ecr:BatchGetImage",
                }
            ],
        }
    )
    ecr.set_repository_policy(repositoryName="app", policyText=policy)
    assert json.loads(ecr.get_repository_policy(repositoryName="app")["policyText"]) == json.loads(policy)
    with pytest.raises(ClientError) as bad:
        ecr.set_repository_policy(repositoryName="app", policyText='{"Statement": "nope"}')
    assert error_code(bad) == "InvalidParameterException"
    ecr.delete_repository_policy(repositoryName="app")
    with pytest.raises(ClientError) as gone:
        ecr.get_repository_policy(repositoryName="app")
    assert error_code(gone) == "RepositoryPolicyNotFoundException"
    with pytest.raises(ClientError) as no_registry_policy:
        ecr.get_registry_policy()
    assert error_code(no_registry_policy) == "RegistryPolicyNotFoundException"
    registry_policy = json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"AWS": "arn:aws:iam::111122223333:root"},
                    "Action": "ecr:CreateRepository",
                    "Resource": "*",
                }
            ],
        }
    )
    assert ecr.put_registry_policy(policyText=registry_policy)["policyText"] == registry_policy
    assert ecr.delete_registry_policy()["policyText"] == registry_policy


def test_resource_tags(ecr: Any) -> None:
    arn = ecr.create_repository(repositoryName="app")["repository"]["repositoryArn"]
    ecr.tag_resource(resourceArn=arn, tags=[{"Key": "a", "Value": "1"}, {"Key": "b", "Value": "2"}])
    ecr.untag_resource(resourceArn=arn, tagKeys=["a"])
    assert ecr.list_tags_for_resource(resourceArn=arn)["tags"] == [{"Key": "b", "Value": "2"}]
    with pytest.raises(ClientError) as reserved:
        ecr.tag_resource(resourceArn=arn, tags=[{"Key": "aws:x", "Value": "1"}])
    assert error_code(reserved) == "InvalidTagParameterException"
    with pytest.raises(ClientError) as too_many:
        ecr.tag_resource(resourceArn=arn, tags=[{"Key": f"k{i}", "Value": "v"} for i in range(51)])
    assert error_code(too_many) == "TooManyTagsException"


def test_repository_settings_can_change(ecr: Any) -> None:
    ecr.create_repository(repositoryName="app")
    changed = ecr.put_image_tag_mutability(
        repositoryName="app",
        imageTagMutability="IMMUTABLE_WITH_EXCLUSION",
        imageTagMutabilityExclusionFilters=[{"filterType": "WILDCARD", "filter": "latest"}],
    )
    assert changed["imageTagMutability"] == "IMMUTABLE_WITH_EXCLUSION"
    ecr.put_image_scanning_configuration(repositoryName="app", imageScanningConfiguration={"scanOnPush": True})
    repository = ecr.describe_repositories(repositoryNames=["app"])["repositories"][0]
    assert repository["imageTagMutabilityExclusionFilters"] == [{"filterType": "WILDCARD", "filter": "latest"}]
    assert repository["imageScanningConfiguration"] == {"scanOnPush": True}
    assert ecr.describe_registry()["registryId"] == "000000000000"


def test_authorization_token_logs_in_to_the_registry(ecr: Any, endpoint: str) -> None:
    data = ecr.get_authorization_token()["authorizationData"][0]
    user, _, password = base64.b64decode(data["authorizationToken"]).decode().partition(":")
    assert user == "AWS"
    assert ":" not in password
    assert data["proxyEndpoint"] == "http://127.0.0.1:5000"
    assert requests.get(f"{endpoint}/v2/", auth=("AWS", password), timeout=10).status_code == 200
    unauthenticated = requests.get(f"{endpoint}/v2/", timeout=10)
    assert unauthenticated.status_code == 401
    assert unauthenticated.headers["WWW-Authenticate"].startswith('Basic realm="http://127.0.0.1:5000/"')
    forged = requests.get(f"{endpoint}/v2/", auth=("AWS", password[:-4] + "AAAA"), timeout=10)
    assert forged.status_code == 401
    assert forged.json()["errors"][0]["code"] == "UNAUTHORIZED"


def test_bad_credentials_get_aws_errors(endpoint: str) -> None:
    with pytest.raises(ClientError) as wrong_secret:
        client_for(endpoint, "ecr", secret="x" * 40).describe_repositories()
    assert error_code(wrong_secret) == "InvalidSignatureException"
    with pytest.raises(ClientError) as unknown_key:
        client_for(endpoint, "ecr", key="AKIAUNKNOWNKEY000000").describe_repositories()
    assert error_code(unknown_key) == "UnrecognizedClientException"
    # Every region of the partition is served; a name that is none is refused as AWS refuses it.
    unknown_region = aws_client(
        "ecr", endpoint, AwsCredentials(ROOT_ACCESS_KEY_ID, ROOT_SECRET_ACCESS_KEY), region="xx-nowhere-1"
    )
    with pytest.raises(ClientError) as region:
        unknown_region.describe_repositories()
    assert error_code(region) == "InvalidSignatureException"
    assert "Credential should be scoped to a valid region" in str(region.value)


def _signed_post(endpoint: str, target: str, body: bytes) -> requests.Response:
    """A JSON 1.1 request signed exactly as botocore signs, with a body botocore itself would never send."""
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    raw = AWSRequest(
        method="POST",
        url=endpoint + "/",
        data=body,
        headers={
            "X-Amz-Target": f"AmazonEC2ContainerRegistry_V20150921.{target}",
            "Content-Type": "application/x-amz-json-1.1",
        },
    )
    SigV4Auth(Credentials(ROOT_ACCESS_KEY_ID, ROOT_SECRET_ACCESS_KEY), "ecr", "us-east-1").add_auth(raw)
    return requests.post(endpoint + "/", data=body, headers=dict(raw.headers), timeout=10)


def test_unsigned_and_unknown_requests_get_protocol_errors(endpoint: str) -> None:
    unsigned = requests.post(
        endpoint + "/",
        data=b"{}",
        timeout=10,
        headers={
            "X-Amz-Target": "AmazonEC2ContainerRegistry_V20150921.DescribeRepositories",
            "Content-Type": "application/x-amz-json-1.1",
        },
    )
    assert unsigned.status_code in (400, 403)
    assert unsigned.json()["__type"] == "MissingAuthenticationTokenException"
    unknown = _signed_post(endpoint, "NoSuchOperation", b"{}")
    assert unknown.status_code == 400
    assert unknown.json()["__type"] == "UnknownOperationException"
    malformed = _signed_post(endpoint, "DescribeRepositories", b"{not json")
    assert malformed.status_code == 400
    assert malformed.json()["__type"] == "SerializationException"
    wrong_type = _signed_post(endpoint, "CreateRepository", json.dumps({"repositoryName": 5}).encode())
    assert wrong_type.status_code == 400
    assert wrong_type.json()["__type"] == "SerializationException"
    too_long = _signed_post(endpoint, "CreateRepository", json.dumps({"repositoryName": "a" * 300}).encode())
    assert too_long.status_code == 400
    assert too_long.json()["__type"] == "InvalidParameterException"
