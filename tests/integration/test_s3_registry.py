"""The registry with its blobs in an S3 object store (real SeaweedFS): pushes and pulls whole, chunked uploads
composed inside the store, an upload continued on another node, ``fsck`` over the bucket, and a store that
fails answering 503 in the protocol's own shape."""

from __future__ import annotations

import dataclasses
import json
import os
import time
import uuid
from collections.abc import Iterator

import pytest
from botocore.exceptions import ClientError
from starlette.testclient import TestClient

from ecrd.app import Registry, asgi_app, build_registry
from ecrd.cli.main import main
from ecrd.config import Secret, Settings
from ecrd.services.fsck import Fsck, Problem
from ecrd.storage.blob_store import blob_name
from tests.conftest import ROOT_ACCESS_KEY_ID, ROOT_SECRET_ACCESS_KEY, basic_auth_for
from tests.support.clients import AwsCredentials, aws_client
from tests.support.clock import FakeClock
from tests.support.faulty_s3_proxy import FaultyS3Proxy, faulty_s3_proxy
from tests.support.live_server import live_server
from tests.support.oci import (
    OCI_MANIFEST,
    Blob,
    config_blob,
    digest_of,
    error_codes,
    image_manifest,
    push_blob,
    push_manifest,
    random_blob,
    resolve_location,
    with_query,
)
from tests.support.seaweedfs import S3Endpoint

MiB = 1024 * 1024


@pytest.fixture
def backend() -> str:
    # The metadata back ends are covered elsewhere; here the blob store is what varies.
    return "sqlite"


@pytest.fixture(scope="module")
def bucket(s3_endpoint: S3Endpoint) -> str:
    return s3_endpoint.new_bucket("ecrd-registry")


def on_s3(settings: Settings, endpoint: S3Endpoint, bucket: str, *, endpoint_url: str | None = None) -> Settings:
    return dataclasses.replace(
        settings,
        storage_url=endpoint.storage_url(bucket, f"registry-{uuid.uuid4().hex}"),
        s3_endpoint_url=endpoint_url or endpoint.url,
        s3_region=endpoint.region,
        s3_path_style=True,
        s3_access_key_id=endpoint.access_key_id,
        s3_secret_access_key=Secret(endpoint.secret_access_key),
    )


def open_registry(settings: Settings) -> Registry:
    built = build_registry(settings)
    built.identity.authentication.bootstrap_root(ROOT_ACCESS_KEY_ID, ROOT_SECRET_ACCESS_KEY)
    return built


def client_of(registry: Registry) -> TestClient:
    return TestClient(
        asgi_app(registry),
        base_url="http://127.0.0.1:5000",
        headers={"Authorization": basic_auth_for(registry, ROOT_ACCESS_KEY_ID)},
    )


@pytest.fixture
def s3_settings(settings: Settings, s3_endpoint: S3Endpoint, bucket: str) -> Settings:
    return on_s3(settings, s3_endpoint, bucket)


@pytest.fixture
def s3_registry(s3_settings: Settings) -> Iterator[Registry]:
    built = open_registry(s3_settings)
    yield built
    built.close()


@pytest.fixture
def s3_client(s3_registry: Registry) -> Iterator[TestClient]:
    with client_of(s3_registry) as test_client:
        yield test_client


def bucket_and_prefix(settings: Settings) -> tuple[str, str]:
    bucket, _, prefix = settings.storage_url.removeprefix("s3://").partition("/")
    return bucket, prefix + "/"


def bucket_keys(endpoint: S3Endpoint, settings: Settings) -> list[str]:
    bucket, prefix = bucket_and_prefix(settings)
    found: list[str] = []
    for page in endpoint.client().get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        found += [entry["Key"].removeprefix(prefix) for entry in page.get("Contents", [])]
    return sorted(found)


def stored_object(endpoint: S3Endpoint, settings: Settings, name: str) -> bytes:
    bucket, prefix = bucket_and_prefix(settings)
    return bytes(endpoint.client().get_object(Bucket=bucket, Key=prefix + name)["Body"].read())


def unfinished_uploads(endpoint: S3Endpoint, settings: Settings) -> list[str]:
    bucket, prefix = bucket_and_prefix(settings)
    page = endpoint.client().list_multipart_uploads(Bucket=bucket, Prefix=prefix)
    return [upload["Key"] for upload in page.get("Uploads", [])]


def push_image(client: TestClient, name: str, layer: Blob) -> tuple[bytes, Blob]:
    config = config_blob({"name": name})
    for blob in (layer, config):
        push_blob(client, name, blob)
    payload = image_manifest(config, [layer])
    push_manifest(client, name, "v1", payload)
    return payload, config


def test_an_image_pushed_to_the_object_store_pulls_back_whole_and_is_stored_sealed(
    s3_client: TestClient, s3_registry: Registry, s3_settings: Settings, s3_endpoint: S3Endpoint
) -> None:
    s3_registry.registry.create_repository("app")
    layer = random_blob(9 * MiB + 5)  # past one part: a multipart upload in the store
    payload, config = push_image(s3_client, "app", layer)

    manifest = s3_client.get("/v2/app/manifests/v1", headers={"Accept": OCI_MANIFEST})
    pulled = s3_client.get(f"/v2/app/blobs/{layer.digest}")
    ranged = s3_client.get(f"/v2/app/blobs/{layer.digest}", headers={"Range": f"bytes={5 * MiB - 3}-{6 * MiB}"})

    assert manifest.status_code == 200 and manifest.content == payload
    assert pulled.status_code == 200 and pulled.content == layer.data
    assert ranged.status_code == 206 and ranged.content == layer.data[5 * MiB - 3 : 6 * MiB + 1]
    assert bucket_keys(s3_endpoint, s3_settings) == sorted([blob_name(layer.digest), blob_name(config.digest)])
    assert layer.data[:64] not in stored_object(s3_endpoint, s3_settings, blob_name(layer.digest))
    assert unfinished_uploads(s3_endpoint, s3_settings) == []


def test_a_chunked_upload_continued_on_another_node_completes_as_one_blob(
    s3_settings: Settings, s3_endpoint: S3Endpoint
) -> None:
    # Two registries on one database and one bucket are two nodes: the chunks alternate between them.
    first, second = open_registry(s3_settings), open_registry(s3_settings)
    try:
        first.registry.create_repository("app")
        data = os.urandom(13 * MiB + 7)
        chunks = [data[: 6 * MiB], data[6 * MiB : 12 * MiB], data[12 * MiB :]]
        with client_of(first) as one, client_of(second) as other:
            started = one.post("/v2/app/blobs/uploads/")
            assert started.status_code == 202
            location = resolve_location(started)
            offset = 0
            for number, chunk in enumerate(chunks):
                node = (one, other)[number % 2]
                answer = node.patch(
                    location,
                    content=chunk,
                    headers={
                        "Content-Type": "application/octet-stream",
                        "Content-Range": f"{offset}-{offset + len(chunk) - 1}",
                    },
                )
                assert answer.status_code == 202, answer.text
                location = resolve_location(answer)
                offset += len(chunk)
            status = other.get(location)
            assert status.status_code == 204 and status.headers["Range"] == f"0-{len(data) - 1}"
            done = other.put(with_query(location, digest=digest_of(data)))
            assert done.status_code == 201, done.text
            pulled = one.get(f"/v2/app/blobs/{digest_of(data)}")
        assert pulled.status_code == 200 and pulled.content == data
        assert bucket_keys(s3_endpoint, s3_settings) == [blob_name(digest_of(data))]
        assert unfinished_uploads(s3_endpoint, s3_settings) == []
    finally:
        first.close()
        second.close()


def test_fsck_over_the_bucket_finds_a_missing_blob_and_an_orphan_object(
    s3_client: TestClient,
    s3_registry: Registry,
    s3_settings: Settings,
    s3_endpoint: S3Endpoint,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    s3_registry.registry.create_repository("app")
    layer = random_blob(3000)
    push_image(s3_client, "app", layer)
    bucket, prefix = bucket_and_prefix(s3_settings)
    s3 = s3_endpoint.client()
    s3.delete_object(Bucket=bucket, Key=prefix + blob_name(layer.digest))
    orphan = random_blob(100).digest
    s3.put_object(Bucket=bucket, Key=prefix + blob_name(orphan), Body=b"x" * 50)
    flags = ["--data-dir", str(s3_settings.data_dir), "--database-url", s3_settings.resolved_database_url]
    # Where the object store is, as an operator's environment says it.
    monkeypatch.setenv("ECRD_STORAGE_URL", s3_settings.storage_url)
    monkeypatch.setenv("ECRD_S3_ENDPOINT_URL", s3_endpoint.url)
    monkeypatch.setenv("ECRD_S3_REGION", s3_endpoint.region)
    monkeypatch.setenv("ECRD_S3_ACCESS_KEY_ID", s3_endpoint.access_key_id)
    monkeypatch.setenv("ECRD_S3_SECRET_ACCESS_KEY", s3_endpoint.secret_access_key)

    young = Fsck(s3_registry.store, s3_registry.blobs, grace_seconds=600, clock=FakeClock.at_wall_time()).check()
    exit_code = main(["fsck", "--json", "--grace-seconds", "0", *flags])
    found = json.loads(capsys.readouterr().out)

    assert sorted((f.problem, f.subject) for f in young.findings) == [(Problem.MISSING_BLOB, layer.digest)]
    assert young.checked["young_blob_files"] == 1
    assert exit_code == 3  # damage: an image can no longer be pulled
    assert sorted((f["problem"], f["subject"]) for f in found["findings"]) == sorted(
        [(Problem.MISSING_BLOB.value, layer.digest), (Problem.ORPHAN_BLOB_FILE.value, orphan)]
    )


@pytest.fixture
def proxy(s3_endpoint: S3Endpoint) -> Iterator[FaultyS3Proxy]:
    with faulty_s3_proxy(s3_endpoint.url) as running:
        yield running


def test_a_failing_store_is_ridden_out_and_one_that_stays_down_answers_503_in_each_protocol(
    settings: Settings, s3_endpoint: S3Endpoint, bucket: str, proxy: FaultyS3Proxy
) -> None:
    registry = open_registry(on_s3(settings, s3_endpoint, bucket, endpoint_url=proxy.url))
    try:
        registry.registry.create_repository("app")
        layer = random_blob(2 * MiB)
        with client_of(registry) as client:
            # Brief trouble: retried inside the driver, invisible to the client.
            proxy.fail_next("slowdown", times=2, method="PUT")
            proxy.fail_next("reset", method="GET")
            push_blob(client, "app", layer)
            assert client.get(f"/v2/app/blobs/{layer.digest}").content == layer.data

            # The store down for good: a clear, retryable error; nothing half-stored.
            proxy.fail_next("503", times=10_000)
            other = random_blob(1000)
            pushed = client.post(
                f"/v2/app/blobs/uploads/?digest={other.digest}",
                content=other.data,
                headers={"Content-Type": "application/octet-stream"},
            )
            pulled = client.get(f"/v2/app/blobs/{layer.digest}")
            with live_server(registry) as url:
                ecr = aws_client("ecr", url, AwsCredentials(ROOT_ACCESS_KEY_ID, ROOT_SECRET_ACCESS_KEY))
                upload_id = ecr.initiate_layer_upload(repositoryName="app")["uploadId"]
                with pytest.raises(ClientError) as refused:
                    ecr.upload_layer_part(
                        repositoryName="app",
                        uploadId=upload_id,
                        partFirstByte=0,
                        partLastByte=9,
                        layerPartBlob=b"0" * 10,
                    )
            proxy.clear()

        assert pushed.status_code == 503 and error_codes(pushed) == ["UNKNOWN"]
        assert pulled.status_code == 503 and error_codes(pulled) == ["UNKNOWN"]
        assert refused.value.response["Error"]["Code"] == "ServerException"
        assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 503
        with client_of(registry) as client:
            push_blob(client, "app", other)  # the store is back: the same push succeeds
            assert client.get(f"/v2/app/blobs/{other.digest}").content == other.data
    finally:
        registry.close()


def test_the_upload_expiry_aborts_multipart_uploads_a_killed_process_left_in_the_store(
    s3_settings: Settings, s3_endpoint: S3Endpoint
) -> None:
    node = open_registry(s3_settings)
    abandoned = node.blobs.driver.put("uploads/0b5e0b5e-0000-4000-8000-000000000001/00000000000000000000")
    abandoned.write(os.urandom(9 * MiB))  # past one part: a multipart upload is begun, then its writer dies
    assert len(unfinished_uploads(s3_endpoint, s3_settings)) == 1
    node.close()
    # A day and more later, a starting server's housekeeping runs the upload expiry.
    later = FakeClock.at_wall_time()
    later.advance(s3_settings.upload_expiry_hours * 3600 + 3600)
    restarted = build_registry(s3_settings, clock=later)
    try:
        with TestClient(asgi_app(restarted), base_url="http://127.0.0.1:5000"):
            deadline = time.monotonic() + 30
            while unfinished_uploads(s3_endpoint, s3_settings) and time.monotonic() < deadline:
                time.sleep(0.05)
        assert unfinished_uploads(s3_endpoint, s3_settings) == []
        assert bucket_keys(s3_endpoint, s3_settings) == []
    finally:
        restarted.close()
