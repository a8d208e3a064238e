"""The OCI distribution-spec conformance checks, rewritten in Python and run in process against ecrd.

The OCI project's suite (opencontainers/distribution-spec, ``conformance/``) is Go and cannot be built here, so each
of its checks is re-expressed as one test: same requests, same order of steps, same expected statuses, headers and
bodies, with our own data and code. Two generations of the suite are covered:

* the workflow suite of the 1.1 release (``01_pull_test.go`` … ``04_management_test.go`` over ``setup.go``): Pull,
  Push, Content Discovery (tags and the 1.1 referrers API) and Content Management;
* the redesigned runner (``run.go``, ``api.go``, ``testdata.go``), which adds every blob-push variant, range
  requests, pushes with a wrong digest, atomic deletes and one round trip per kind of content (indexes, artifacts
  with unknown media types, subjects, descriptor ``data``, non-distributable layers never pushed, …).

Where the suite only warns (e.g. no ``OCI-Filters-Applied``), the test asserts the behaviour the spec asks for and says
so. Tests are named after the behaviour; docstrings name the suite's check. Each test builds the state the suite has
reached at that step (its "given"), so every test runs alone. The spec quoted is distribution-spec v1.1 ``spec.md``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import pytest
from starlette.testclient import TestClient

from ecrd.app import Registry
from tests.support.oci import (
    OCI_CONFIG,
    OCI_EMPTY,
    OCI_INDEX,
    OCI_LAYER,
    OCI_LAYER_TAR,
    OCI_MANIFEST,
    Blob,
    digest_of,
    resolve_location,
    tar_layer,
    with_query,
)

REPO = "conformance/repo1"
REPO2 = "conformance/repo2"
OCTET = "application/octet-stream"
# The suite's error-code table (setup.go): a 4xx JSON body must carry one of these.
SPEC_ERROR_CODES = frozenset(
    {
        "BLOB_UNKNOWN",
        "BLOB_UPLOAD_INVALID",
        "BLOB_UPLOAD_UNKNOWN",
        "DIGEST_INVALID",
        "MANIFEST_BLOB_UNKNOWN",
        "MANIFEST_INVALID",
        "MANIFEST_UNKNOWN",
        "MANIFEST_UNVERIFIED",
        "NAME_INVALID",
        "NAME_UNKNOWN",
        "SIZE_INVALID",
        "TAG_INVALID",
        "UNAUTHORIZED",
        "DENIED",
        "UNSUPPORTED",
        "TOOMANYREQUESTS",
    }
)
# "The <location> MUST contain a UUID representing a unique session ID for the upload to follow."
UUID_IN_LOCATION = re.compile(r"[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}")
NONEXISTENT_TAG = ".INVALID_MANIFEST_NAME"  # the suite's "nonexistent manifest": not even a valid tag
DUMMY_DIGEST = digest_of(b"a digest nobody pushed")
EMPTY_JSON = Blob(b"{}", OCI_EMPTY)
ANNOTATION = "org.example.conformance.test"
CHUNK_MIN = 1024  # the redesigned runner's floor for chunk sizes (config.go chunkMin)


@pytest.fixture
def repo(registry: Registry) -> str:
    registry.registry.create_repository(REPO)
    return REPO


@pytest.fixture
def repo2(registry: Registry, repo: str) -> str:
    registry.registry.create_repository(REPO2)
    return REPO2


# --------------------------------------------------------------------------------------------------------------
# Content of the workflow suite (setup.go): one config per workflow, a gzipped layer, and per workflow an image
# manifest whose config descriptor carries `data` and a field no spec defines; an image manifest without layers and
# without a `mediaType` field; and for the referrers checks two artifact shapes plus an index, all with a subject.
# --------------------------------------------------------------------------------------------------------------


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def descriptor(blob: Blob, **extra: Any) -> dict[str, Any]:
    """A descriptor as the suite serialises it: its struct always emits `newUnspecifiedField` (null when unset)."""
    return {**blob.descriptor(), "newUnspecifiedField": None, **extra}


def manifest_descriptor(payload: bytes, media_type: str = OCI_MANIFEST, **extra: Any) -> dict[str, Any]:
    return {"mediaType": media_type, "digest": digest_of(payload), "size": len(payload), **extra}


def pretty(body: dict[str, Any]) -> bytes:
    return json.dumps(body, indent="\t").encode()


@dataclass(frozen=True)
class WorkflowData:
    configs: tuple[Blob, ...]
    layer: Blob
    manifests: tuple[bytes, ...]
    empty_layer_manifest: bytes


def workflow_data() -> WorkflowData:
    configs = tuple(
        Blob(
            pretty(
                {
                    "author": uuid.uuid4().hex[:16],
                    "architecture": "amd64",
                    "os": "linux",
                    "rootfs": {"type": "layers", "diff_ids": []},
                }
            ),
            OCI_CONFIG,
        )
        for _ in range(5)
    )
    layer = Blob(tar_layer({"conformance.txt": b"a layer of the conformance tests\n"}), OCI_LAYER)

    def config_descriptor(config: Blob) -> dict[str, Any]:
        # `data` must hold the config's bytes; `newUnspecifiedField` is content no spec defines, which
        # "registry implementations should still successfully store and serve".
        return {**config.descriptor(), "data": _b64(config.data), "newUnspecifiedField": _b64(b"hello world")}

    manifests = tuple(
        pretty(
            {
                "schemaVersion": 2,
                "mediaType": OCI_MANIFEST,
                "config": config_descriptor(config),
                "layers": [descriptor(layer)],
            }
        )
        for config in configs
    )
    empty_layer_manifest = pretty({"schemaVersion": 2, "config": config_descriptor(configs[1]), "layers": []})
    return WorkflowData(configs, layer, manifests, empty_layer_manifest)


def populate_blob(client: TestClient, name: str, blob: Blob) -> None:
    """The suite's "Populate registry with test blob/layer": POST, then PUT the bytes to the Location."""
    started = client.post(f"/v2/{name}/blobs/uploads/")
    assert started.status_code == 202, started.text
    done = client.put(
        with_query(resolve_location(started), digest=blob.digest),
        content=blob.data,
        headers={"Content-Type": OCTET, "Content-Length": str(len(blob.data))},
    )
    assert 200 <= done.status_code < 300, done.text


def put_manifest(client: TestClient, name: str, reference: str, payload: bytes, media_type: str = OCI_MANIFEST) -> Any:
    return client.put(f"/v2/{name}/manifests/{reference}", content=payload, headers={"Content-Type": media_type})


def populate_manifest(
    client: TestClient, name: str, reference: str, payload: bytes, media_type: str = OCI_MANIFEST
) -> Any:
    response = put_manifest(client, name, reference, payload, media_type)
    assert 200 <= response.status_code < 300, response.text
    return response


def assert_oci_error_body(response: Any) -> None:
    errors = response.json()["errors"]
    assert errors, response.text
    assert errors[0]["code"] in SPEC_ERROR_CODES, response.text


def assert_delete_answer(response: Any, *allowed: int) -> None:
    assert 200 <= response.status_code < 300 or response.status_code in allowed, (
        f"DELETE {response.request.url} answered {response.status_code}: {response.text}"
    )


# ============================================================ Pull (01_pull_test.go)


@dataclass(frozen=True)
class PullState:
    data: WorkflowData
    tag: str = "tagtest0"


@pytest.fixture
def pulled(client: TestClient, repo: str) -> PullState:
    """Pull › Setup: two configs, the layer, manifest[0] under a tag and manifest[1] by digest."""
    data = workflow_data()
    for blob in (data.configs[0], data.configs[1], data.layer):
        populate_blob(client, repo, blob)
    populate_manifest(client, repo, "tagtest0", data.manifests[0])
    populate_manifest(client, repo, digest_of(data.manifests[1]), data.manifests[1])
    return PullState(data)


def test_pull_head_of_nonexistent_blob_answers_404(client: TestClient, repo: str, pulled: PullState) -> None:
    """Pull › Pull blobs › HEAD request to nonexistent blob should result in 404 response."""
    assert client.head(f"/v2/{repo}/blobs/{DUMMY_DIGEST}").status_code == 404


def test_pull_head_of_existing_blob_answers_200_with_its_digest(
    client: TestClient, repo: str, pulled: PullState
) -> None:
    """Pull › Pull blobs › HEAD request to existing blob should yield 200 (Docker-Content-Digest, if set, matches)."""
    config = pulled.data.configs[0]
    response = client.head(f"/v2/{repo}/blobs/{config.digest}")
    assert response.status_code == 200
    assert response.headers.get("Docker-Content-Digest", config.digest) == config.digest
    assert response.headers["Content-Length"] == str(len(config.data))
    assert response.content == b""


def test_pull_get_of_nonexistent_blob_answers_404(client: TestClient, repo: str, pulled: PullState) -> None:
    """Pull › Pull blobs › GET nonexistent blob should result in 404 response."""
    assert client.get(f"/v2/{repo}/blobs/{DUMMY_DIGEST}").status_code == 404


def test_pull_get_of_existing_blob_answers_200_with_its_bytes(client: TestClient, repo: str, pulled: PullState) -> None:
    """Pull › Pull blobs › GET request to existing blob URL should yield 200."""
    config = pulled.data.configs[0]
    response = client.get(f"/v2/{repo}/blobs/{config.digest}")
    assert response.status_code == 200
    assert response.content == config.data


def test_pull_head_of_nonexistent_manifest_answers_404(client: TestClient, repo: str, pulled: PullState) -> None:
    """Pull › Pull manifests › HEAD request to nonexistent manifest should return 404 (reference
    `.INVALID_MANIFEST_NAME`)."""
    assert client.head(f"/v2/{repo}/manifests/{NONEXISTENT_TAG}").status_code == 404


@pytest.mark.parametrize("index", [0, 1], ids=["manifest0", "manifest1"])
def test_pull_head_of_manifest_by_digest_answers_200(
    client: TestClient, repo: str, pulled: PullState, index: int
) -> None:
    """Pull › Pull manifests › HEAD request to manifest[0|1] path (digest) should yield 200 response."""
    digest = digest_of(pulled.data.manifests[index])
    response = client.head(f"/v2/{repo}/manifests/{digest}", headers={"Accept": OCI_MANIFEST})
    assert response.status_code == 200
    assert response.headers.get("Docker-Content-Digest", digest) == digest


def test_pull_head_of_manifest_by_tag_answers_200(client: TestClient, repo: str, pulled: PullState) -> None:
    """Pull › Pull manifests › HEAD request to manifest path (tag) should yield 200 response."""
    digest = digest_of(pulled.data.manifests[0])
    response = client.head(f"/v2/{repo}/manifests/{pulled.tag}", headers={"Accept": OCI_MANIFEST})
    assert response.status_code == 200
    assert response.headers.get("Docker-Content-Digest", digest) == digest


def test_pull_get_of_nonexistent_manifest_answers_404(client: TestClient, repo: str, pulled: PullState) -> None:
    """Pull › Pull manifests › GET nonexistent manifest should return 404 (reference `.INVALID_MANIFEST_NAME`)."""
    assert client.get(f"/v2/{repo}/manifests/{NONEXISTENT_TAG}").status_code == 404


@pytest.mark.parametrize("index", [0, 1], ids=["manifest0", "manifest1"])
def test_pull_get_of_manifest_by_digest_answers_200(
    client: TestClient, repo: str, pulled: PullState, index: int
) -> None:
    """Pull › Pull manifests › GET request to manifest[0|1] path (digest) should yield 200 response."""
    payload = pulled.data.manifests[index]
    response = client.get(f"/v2/{repo}/manifests/{digest_of(payload)}", headers={"Accept": OCI_MANIFEST})
    assert response.status_code == 200
    assert response.content == payload


def test_pull_get_of_manifest_by_tag_answers_200(client: TestClient, repo: str, pulled: PullState) -> None:
    """Pull › Pull manifests › GET request to manifest path (tag) should yield 200 response."""
    response = client.get(f"/v2/{repo}/manifests/{pulled.tag}", headers={"Accept": OCI_MANIFEST})
    assert response.status_code == 200
    assert response.content == pulled.data.manifests[0]


def test_pull_malformed_digest_answers_400_with_oci_error_body_or_404(
    client: TestClient, repo: str, pulled: PullState
) -> None:
    """Pull › Error codes › 400 response body should contain OCI-conforming JSON message: GET
    /manifests/sha256:totallywrong (with a junk body) answers 404, or 400 whose first error code is in the spec's
    table."""
    response = client.request(
        "GET", f"/v2/{repo}/manifests/sha256:totallywrong", content=b"blablabla", headers={"Content-Type": OCI_MANIFEST}
    )
    assert response.status_code in (400, 404)
    if response.status_code == 400:
        assert_oci_error_body(response)


def test_pull_teardown_deletes_manifests_then_blobs(client: TestClient, repo: str, pulled: PullState) -> None:
    """Pull › Teardown: DELETE manifest[0], manifest[1] (2xx or 405), then config[0], config[1] and the layer
    (2xx, 404 or 405)."""
    data = pulled.data
    for payload in data.manifests[:2]:
        assert_delete_answer(client.delete(f"/v2/{repo}/manifests/{digest_of(payload)}"), 405)
    for blob in (data.configs[0], data.configs[1], data.layer):
        assert_delete_answer(client.delete(f"/v2/{repo}/blobs/{blob.digest}"), 404, 405)


# ============================================================ Push (02_push_test.go)


def streamed_patch(client: TestClient, name: str, data: bytes) -> Any:
    started = client.post(f"/v2/{name}/blobs/uploads/")
    assert started.headers.get("Location"), started.text
    return client.patch(resolve_location(started), content=data, headers={"Content-Type": OCTET})


def test_push_streamed_patch_with_blob_in_body_answers_202(client: TestClient, repo: str) -> None:
    """Push › Blob Upload Streamed › PATCH request with blob in body should yield 202 response."""
    assert streamed_patch(client, repo, os.urandom(42)).status_code == 202


def test_push_put_to_session_url_after_streamed_patch_answers_201_with_location(client: TestClient, repo: str) -> None:
    """Push › Blob Upload Streamed › PUT request to session URL with digest should yield 201 response (no body)."""
    data = os.urandom(42)
    patched = streamed_patch(client, repo, data)
    response = client.put(
        with_query(resolve_location(patched), digest=digest_of(data)), headers={"Content-Type": OCTET}
    )
    assert response.status_code == 201, response.text
    assert response.headers.get("Location")
    assert client.get(resolve_location(response)).content == data


def test_push_get_of_nonexistent_blob_answers_404(client: TestClient, repo: str) -> None:
    """Push › Blob Upload Monolithic › GET nonexistent blob should result in 404 response."""
    assert client.get(f"/v2/{repo}/blobs/{DUMMY_DIGEST}").status_code == 404


def post_with_digest(client: TestClient, name: str, blob: Blob) -> Any:
    return client.post(
        with_query(f"/v2/{name}/blobs/uploads/", digest=blob.digest),
        content=blob.data,
        headers={"Content-Type": OCTET, "Content-Length": str(len(blob.data))},
    )


def test_push_single_post_with_digest_and_blob_answers_201_or_202_with_location(client: TestClient, repo: str) -> None:
    """Push › Blob Upload Monolithic › POST request with digest and blob should yield a 201 or 202."""
    response = post_with_digest(client, repo, workflow_data().configs[1])
    assert response.headers.get("Location")
    assert response.status_code in (201, 202)


def test_push_blob_after_single_post_exists_exactly_when_post_answered_201(client: TestClient, repo: str) -> None:
    """Push › Blob Upload Monolithic › GET request to blob URL from prior request should yield 200 or 404 based on
    response code (201 → 200; 202 → the blob must not exist yet)."""
    config = workflow_data().configs[1]
    posted = post_with_digest(client, repo, config)
    response = client.get(f"/v2/{repo}/blobs/{config.digest}")
    assert response.status_code == (200 if posted.status_code == 201 else 404)


def test_push_post_without_body_yields_session_with_202(client: TestClient, repo: str) -> None:
    """Push › Blob Upload Monolithic › POST request should yield a session ID."""
    response = client.post(f"/v2/{repo}/blobs/uploads/")
    assert response.status_code == 202
    assert UUID_IN_LOCATION.search(response.headers["Location"]), response.headers["Location"]


def put_upload(client: TestClient, name: str, blob: Blob) -> Any:
    started = client.post(f"/v2/{name}/blobs/uploads/")
    return client.put(
        with_query(resolve_location(started), digest=blob.digest),
        content=blob.data,
        headers={"Content-Type": OCTET, "Content-Length": str(len(blob.data))},
    )


def test_push_put_upload_of_blob_answers_201_with_location(client: TestClient, repo: str) -> None:
    """Push › Blob Upload Monolithic › PUT upload of a blob should yield a 201 Response."""
    response = put_upload(client, repo, workflow_data().configs[1])
    assert response.headers.get("Location")
    assert response.status_code == 201


def test_push_get_of_blob_after_put_upload_answers_200(client: TestClient, repo: str) -> None:
    """Push › Blob Upload Monolithic › GET request to existing blob should yield 200 response."""
    config = workflow_data().configs[1]
    put_upload(client, repo, config)
    response = client.get(f"/v2/{repo}/blobs/{config.digest}")
    assert response.status_code == 200
    assert response.content == config.data


def test_push_put_upload_of_layer_answers_201_with_location(client: TestClient, repo: str) -> None:
    """Push › Blob Upload Monolithic › PUT upload of a layer blob should yield a 201 Response."""
    response = put_upload(client, repo, workflow_data().layer)
    assert response.headers.get("Location")
    assert response.status_code == 201


def test_push_get_of_layer_after_put_upload_answers_200(client: TestClient, repo: str) -> None:
    """Push › Blob Upload Monolithic › GET request to existing layer should yield 200 response."""
    layer = workflow_data().layer
    put_upload(client, repo, layer)
    response = client.get(f"/v2/{repo}/blobs/{layer.digest}")
    assert response.status_code == 200
    assert response.content == layer.data


@dataclass
class ChunkedBlob:
    """The suite's chunked blob: 42 random bytes in two chunks, regrown to honour OCI-Chunk-Min-Length."""

    data: bytes = field(default_factory=lambda: os.urandom(42))

    def honour_minimum(self, response: Any) -> None:
        minimum = response.headers.get("OCI-Chunk-Min-Length")
        if minimum and int(minimum) > len(self.first):
            self.data = os.urandom(int(minimum) * 2 - 2)

    @property
    def split(self) -> int:
        return len(self.data) // 2 + 1

    @property
    def first(self) -> bytes:
        return self.data[: self.split]

    @property
    def second(self) -> bytes:
        return self.data[self.split :]

    def first_range(self) -> str:
        return f"0-{self.split - 1}"

    def second_range(self) -> str:
        return f"{self.split}-{len(self.data) - 1}"


def start_chunked(client: TestClient, name: str, blob: ChunkedBlob) -> Any:
    started = client.post(f"/v2/{name}/blobs/uploads/", headers={"Content-Length": "0"})
    assert started.headers.get("Location"), started.text
    blob.honour_minimum(started)
    return started


def patch_chunk(client: TestClient, url: str, chunk: bytes, content_range: str) -> Any:
    return client.patch(
        url,
        content=chunk,
        headers={
            "Content-Type": OCTET,
            "Content-Length": str(len(chunk)),
            "Content-Range": content_range,
        },
    )


def test_push_out_of_order_chunk_answers_416(client: TestClient, repo: str) -> None:
    """Push › Blob Upload Chunked › Out-of-order blob upload should return 416 (the second chunk sent first)."""
    blob = ChunkedBlob()
    started = start_chunked(client, repo, blob)
    response = patch_chunk(client, resolve_location(started), blob.second, blob.second_range())
    assert response.status_code == 416


def test_push_first_chunk_answers_202_with_its_range(client: TestClient, repo: str) -> None:
    """Push › Blob Upload Chunked › PATCH request with first chunk should return 202 (Range: 0-<end of chunk>)."""
    blob = ChunkedBlob()
    started = start_chunked(client, repo, blob)
    response = patch_chunk(client, resolve_location(started), blob.first, blob.first_range())
    assert response.status_code == 202, response.text
    assert response.headers.get("Range") == blob.first_range()


def test_push_retrying_an_accepted_chunk_answers_416(client: TestClient, repo: str) -> None:
    """Push › Blob Upload Chunked › Retry previous blob chunk should return 416 (the first chunk again, sent to the
    Location of the POST)."""
    blob = ChunkedBlob()
    started = start_chunked(client, repo, blob)
    assert patch_chunk(client, resolve_location(started), blob.first, blob.first_range()).status_code == 202
    response = patch_chunk(client, resolve_location(started), blob.first, blob.first_range())
    assert response.status_code == 416


def test_push_get_of_stale_upload_answers_204_with_range_and_location(client: TestClient, repo: str) -> None:
    """Push › Blob Upload Chunked › Get on stale blob upload should return 204 with a range and location (GET on the
    POST's Location after the first chunk and the refused retry)."""
    blob = ChunkedBlob()
    started = start_chunked(client, repo, blob)
    patch_chunk(client, resolve_location(started), blob.first, blob.first_range())
    patch_chunk(client, resolve_location(started), blob.first, blob.first_range())
    response = client.get(resolve_location(started))
    assert response.status_code == 204
    assert response.headers.get("Location")
    assert response.headers.get("Range") == blob.first_range()


def chunked_up_to_second(client: TestClient, name: str, blob: ChunkedBlob) -> Any:
    started = start_chunked(client, name, blob)
    patch_chunk(client, resolve_location(started), blob.first, blob.first_range())
    patch_chunk(client, resolve_location(started), blob.first, blob.first_range())
    status = client.get(resolve_location(started))
    return patch_chunk(client, resolve_location(status), blob.second, blob.second_range())


def test_push_second_chunk_at_status_location_answers_202(client: TestClient, repo: str) -> None:
    """Push › Blob Upload Chunked › PATCH request with second chunk should return 202 (to the GET's Location)."""
    blob = ChunkedBlob()
    response = chunked_up_to_second(client, repo, blob)
    assert response.status_code == 202, response.text
    assert response.headers.get("Location")


def test_push_closing_put_of_chunked_upload_answers_201(client: TestClient, repo: str) -> None:
    """Push › Blob Upload Chunked › PUT request with digest should return 201 (Content-Length: 0)."""
    blob = ChunkedBlob()
    second = chunked_up_to_second(client, repo, blob)
    response = client.put(
        with_query(resolve_location(second), digest=digest_of(blob.data)),
        headers={"Content-Length": "0", "Content-Type": OCTET},
    )
    assert response.status_code == 201, response.text
    assert response.headers.get("Location")
    assert client.get(resolve_location(response)).content == blob.data


def test_push_mount_without_from_yields_session_with_202(client: TestClient, repo2: str) -> None:
    """Push › Cross-Repository Blob Mount › Cross-mounting of a blob without the from argument should yield session
    id (202 and a Location)."""
    response = client.post(with_query(f"/v2/{repo2}/blobs/uploads/", mount=DUMMY_DIGEST))
    assert response.status_code == 202
    assert response.headers.get("Location")


def mount_from(client: TestClient, target: str, source: str, digest: str) -> Any:
    return client.post(with_query(f"/v2/{target}/blobs/uploads/", mount=digest, **{"from": source}))


def test_push_mount_from_another_repository_answers_201_or_202(client: TestClient, repo: str, repo2: str) -> None:
    """Push › Cross-Repository Blob Mount › POST request to mount another repository's blob should return 201 or
    202."""
    blob = Blob(os.urandom(42))
    streamed = streamed_patch(client, repo, blob.data)
    client.put(with_query(resolve_location(streamed), digest=blob.digest))
    assert mount_from(client, repo2, repo, blob.digest).status_code in (201, 202)


def test_push_mounted_blob_is_pullable_at_the_returned_location(client: TestClient, repo: str, repo2: str) -> None:
    """Push › Cross-Repository Blob Mount › GET request to test digest within cross-mount namespace should return 200
    (run when the mount answered 201; its Location is /v2/<namespace>/blobs/<digest>)."""
    blob = Blob(os.urandom(42))
    populate_blob(client, repo, blob)
    mounted = mount_from(client, repo2, repo, blob.digest)
    assert mounted.status_code == 201
    assert urlsplit(resolve_location(mounted)).path == f"/v2/{repo2}/blobs/{blob.digest}"
    response = client.get(resolve_location(mounted))
    assert response.status_code == 200
    assert response.content == blob.data


def test_push_mount_of_blob_the_source_lacks_yields_session_in_target(
    client: TestClient, repo: str, repo2: str
) -> None:
    """Push › Cross-Repository Blob Mount › Cross-mounting of nonexistent blob should yield session id (202, and a
    Location under /v2/<namespace>/blobs/uploads/)."""
    response = mount_from(client, repo2, repo, DUMMY_DIGEST)
    assert response.status_code == 202
    assert urlsplit(resolve_location(response)).path.startswith(f"/v2/{repo2}/blobs/uploads/")


def test_push_mount_without_from_of_present_blob_answers_202_without_automatic_mount(
    client: TestClient, repo: str, repo2: str
) -> None:
    """Push › Cross-Repository Blob Mount › Cross-mounting without from, and automatic content discovery disabled
    should return a 202 (ecrd mounts only from a named repository; the `enabled` variant expects 201)."""
    blob = Blob(os.urandom(42))
    populate_blob(client, repo, blob)
    assert mount_from(client, repo2, repo, blob.digest).status_code == 201
    response = client.post(with_query(f"/v2/{repo2}/blobs/uploads/", mount=blob.digest))
    assert response.status_code == 202


def test_push_get_of_nonexistent_manifest_answers_404(client: TestClient, repo: str) -> None:
    """Push › Manifest Upload › GET nonexistent manifest should return 404."""
    assert client.get(f"/v2/{repo}/manifests/{NONEXISTENT_TAG}").status_code == 404


@pytest.fixture
def push_blobs(client: TestClient, repo: str) -> WorkflowData:
    """What Push › Blob Upload Monolithic leaves behind: config[1] and the layer."""
    data = workflow_data()
    populate_blob(client, repo, data.configs[1])
    populate_blob(client, repo, data.layer)
    return data


def test_push_manifest_under_four_tags_answers_201_with_location(
    client: TestClient, repo: str, push_blobs: WorkflowData
) -> None:
    """Push › Manifest Upload › PUT should accept a manifest upload (manifest[1] as test0 … test3)."""
    for i in range(4):
        response = put_manifest(client, repo, f"test{i}", push_blobs.manifests[1])
        assert response.headers.get("Location")
        assert response.status_code == 201, response.text


def test_push_manifest_without_layers_is_accepted(client: TestClient, repo: str, push_blobs: WorkflowData) -> None:
    """Push › Manifest Upload › Registry should accept a manifest upload with no layers (an image manifest with an
    empty `layers` list and no `mediaType` field; the suite only warns when refused, this test requires 201)."""
    response = put_manifest(client, repo, "emptylayer", push_blobs.empty_layer_manifest)
    assert response.status_code == 201, response.text
    assert response.headers.get("Location")
    assert client.get(resolve_location(response)).content == push_blobs.empty_layer_manifest


def test_push_get_of_pushed_manifest_by_digest_answers_200(
    client: TestClient, repo: str, push_blobs: WorkflowData
) -> None:
    """Push › Manifest Upload › GET request to manifest URL (digest) should yield 200 response."""
    payload = push_blobs.manifests[1]
    populate_manifest(client, repo, "test0", payload)
    response = client.get(f"/v2/{repo}/manifests/{digest_of(payload)}", headers={"Accept": OCI_MANIFEST})
    assert response.status_code == 200
    assert response.content == payload


def test_push_teardown_deletes_manifests_then_blobs(client: TestClient, repo: str, push_blobs: WorkflowData) -> None:
    """Push › Teardown: DELETE the manifest and the layer-less manifest by digest (2xx or 405), then the config and
    layer blobs (2xx, 404 or 405)."""
    for i in range(4):
        populate_manifest(client, repo, f"test{i}", push_blobs.manifests[1])
    populate_manifest(client, repo, "emptylayer", push_blobs.empty_layer_manifest)
    for payload in (push_blobs.manifests[1], push_blobs.empty_layer_manifest):
        assert_delete_answer(client.delete(f"/v2/{repo}/manifests/{digest_of(payload)}"), 405)
    for blob in (push_blobs.configs[1], push_blobs.layer):
        assert_delete_answer(client.delete(f"/v2/{repo}/blobs/{blob.digest}"), 404, 405)


# ============================================================ Content Discovery (03_discovery_test.go)

ARTIFACT_TYPE_A = "application/vnd.example.conformance.kind-a"
ARTIFACT_TYPE_B = "application/vnd.example.conformance.kind-b"
ARTIFACT_TYPE_INDEX = "application/vnd.example.conformance.bundle"


@dataclass(frozen=True)
class ReferrerSet:
    """The suite's referrers data: subject manifest[4] gets five referrers (two artifacts whose config media type is
    the artifact type, two with `artifactType` and an empty config, one index); one artifact points at manifest[3],
    which is never pushed."""

    blob_a: Blob
    blob_b: Blob
    a_config: bytes
    b_config: bytes
    a_layer: bytes
    b_layer: bytes
    c_layer: bytes
    index: bytes
    annotations: dict[str, str]

    @property
    def referrers_of_subject(self) -> list[bytes]:
        return [self.a_config, self.a_layer, self.index, self.b_config, self.b_layer]


def referrer_set(data: WorkflowData) -> ReferrerSet:
    subject = manifest_descriptor(data.manifests[4], newUnspecifiedField=None)
    missing = manifest_descriptor(data.manifests[3], newUnspecifiedField=None)
    blob_a = Blob(b"content of the first conformance artifact", ARTIFACT_TYPE_A)
    blob_b = Blob(b"content of the second conformance artifact", ARTIFACT_TYPE_B)

    def config_artifact(blob: Blob, note: str) -> bytes:
        return pretty(
            {
                "schemaVersion": 2,
                "mediaType": OCI_MANIFEST,
                "config": descriptor(blob),
                "layers": [descriptor(EMPTY_JSON)],
                "subject": subject,
                "annotations": {ANNOTATION: note},
            }
        )

    def layer_artifact(blob: Blob, target: dict[str, Any], note: str | None) -> bytes:
        body: dict[str, Any] = {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "artifactType": blob.media_type,
            "config": descriptor(EMPTY_JSON),
            "layers": [descriptor(blob)],
            "subject": target,
        }
        if note is not None:
            body["annotations"] = {ANNOTATION: note}
        return pretty(body)

    a_config = config_artifact(blob_a, "config artifact a")
    b_config = config_artifact(blob_b, "config artifact b")
    a_layer = layer_artifact(blob_a, subject, "layer artifact a")
    b_layer = layer_artifact(blob_b, subject, "layer artifact b")
    c_layer = layer_artifact(blob_b, missing, None)
    index = pretty(
        {
            "schemaVersion": 2,
            "mediaType": OCI_INDEX,
            "artifactType": ARTIFACT_TYPE_INDEX,
            "manifests": [
                manifest_descriptor(a_config, newUnspecifiedField=None),
                manifest_descriptor(a_layer, newUnspecifiedField=None),
            ],
            "subject": subject,
            "annotations": {ANNOTATION: "index artifact"},
        }
    )
    annotations = {
        digest_of(a_config): "config artifact a",
        digest_of(b_config): "config artifact b",
        digest_of(a_layer): "layer artifact a",
        digest_of(b_layer): "layer artifact b",
        digest_of(index): "index artifact",
    }
    return ReferrerSet(blob_a, blob_b, a_config, b_config, a_layer, b_layer, c_layer, index, annotations)


@dataclass(frozen=True)
class DiscoveryState:
    data: WorkflowData
    refs: ReferrerSet
    responses: dict[str, Any]


def discovery_setup(client: TestClient, name: str) -> DiscoveryState:
    """Content Discovery › Setup, in the suite's order: config[2], the layer and manifest[2] as test0 … test3; then
    the references setup, which pushes three referrers before their subject exists."""
    data = workflow_data()
    refs = referrer_set(data)
    populate_blob(client, name, data.configs[2])
    populate_blob(client, name, data.layer)
    for i in range(4):
        populate_manifest(client, name, f"test{i}", data.manifests[2])
    assert EMPTY_JSON.digest == "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
    populate_blob(client, name, EMPTY_JSON)
    populate_blob(client, name, refs.blob_a)
    responses = {
        "a_config": put_manifest(client, name, digest_of(refs.a_config), refs.a_config),
        "a_layer": put_manifest(client, name, digest_of(refs.a_layer), refs.a_layer),
        "index": put_manifest(client, name, digest_of(refs.index), refs.index, OCI_INDEX),
    }
    populate_blob(client, name, data.configs[4])
    populate_blob(client, name, data.layer)
    populate_manifest(client, name, "tagtest0", data.manifests[4])
    populate_blob(client, name, refs.blob_b)
    responses["b_config"] = put_manifest(client, name, digest_of(refs.b_config), refs.b_config)
    responses["b_layer"] = put_manifest(client, name, digest_of(refs.b_layer), refs.b_layer)
    responses["c_layer"] = put_manifest(client, name, digest_of(refs.c_layer), refs.c_layer)
    return DiscoveryState(data, refs, responses)


@pytest.fixture
def discovered(client: TestClient, repo: str) -> DiscoveryState:
    state = discovery_setup(client, repo)
    for key, response in state.responses.items():
        assert 200 <= response.status_code < 300, f"references setup: pushing {key} answered {response.text}"
    return state


def test_discovery_referrer_pushed_before_its_subject_is_accepted_with_oci_subject(
    client: TestClient, repo: str
) -> None:
    """Content Discovery › Setup › References setup: artifacts whose subject (manifest[4]) is not pushed yet — one
    whose config media type is an unknown artifact type, one with `artifactType` and an empty config, and an index —
    answer 2xx with `OCI-Subject: <subject digest>`. Spec: "A registry MUST initially accept an otherwise valid
    manifest with a subject field that references a manifest that does not exist in the repository"."""
    state = discovery_setup(client, repo)
    subject = digest_of(state.data.manifests[4])
    for key in ("a_config", "a_layer", "index", "b_config", "b_layer"):
        response = state.responses[key]
        assert 200 <= response.status_code < 300, f"{key}: {response.status_code} {response.text}"
        assert response.headers.get("OCI-Subject") == subject, key


def test_discovery_referrer_of_a_never_pushed_subject_is_accepted_with_oci_subject(
    client: TestClient, repo: str
) -> None:
    """Content Discovery › Setup › References setup: an artifact whose subject (manifest[3]) is never pushed answers
    2xx with `OCI-Subject: <manifest[3] digest>`."""
    state = discovery_setup(client, repo)
    response = state.responses["c_layer"]
    assert 200 <= response.status_code < 300, response.text
    assert response.headers.get("OCI-Subject") == digest_of(state.data.manifests[3])


def tag_list(response: Any) -> list[str]:
    tags = response.json().get("tags") or []
    assert isinstance(tags, list)
    return tags


def test_discovery_list_tags_answers_200(client: TestClient, repo: str, discovered: DiscoveryState) -> None:
    """Content Discovery › listing tags › GET request to list tags should yield 200 response (body: name and tags,
    in lexical order)."""
    response = client.get(f"/v2/{repo}/tags/list")
    assert response.status_code == 200
    assert response.json()["name"] == repo
    assert tag_list(response) == ["tagtest0", "test0", "test1", "test2", "test3"]


def test_discovery_tags_list_is_limited_by_n(client: TestClient, repo: str, discovered: DiscoveryState) -> None:
    """Content Discovery › listing tags › GET number of tags should be limitable by `n` query parameter (n = half)."""
    count = len(tag_list(client.get(f"/v2/{repo}/tags/list")))
    response = client.get(f"/v2/{repo}/tags/list", params={"n": str(count // 2)})
    assert response.status_code == 200
    assert len(tag_list(response)) == count // 2


def test_discovery_tags_list_starts_after_last(client: TestClient, repo: str, discovered: DiscoveryState) -> None:
    """Content Discovery › listing tags › GET start of tag is set by `last` query parameter (n = half, last = the
    final tag of the first page: at most n tags, all after `last`; spec: "beginning non-inclusively with
    <tagname>")."""
    everything = tag_list(client.get(f"/v2/{repo}/tags/list"))
    half = len(everything) // 2
    first_page = tag_list(client.get(f"/v2/{repo}/tags/list", params={"n": str(half)}))
    response = client.get(f"/v2/{repo}/tags/list", params={"n": str(half), "last": first_page[half - 1]})
    assert response.status_code == 200
    page = tag_list(response)
    assert len(page) <= half
    assert page == everything[half : half + half]


def test_discovery_tags_list_pages_follow_the_link_header(
    client: TestClient, repo: str, discovered: DiscoveryState
) -> None:
    """Spec, Listing Tags (not checked by the suite): a page of `n` that leaves tags behind may carry `Link` "set
    according to RFC5988 with the Relation Type rel="next""; following it yields the rest in lexical order; "When n
    is zero, this endpoint MUST return an empty list, and MUST NOT include a Link header"."""
    everything = tag_list(client.get(f"/v2/{repo}/tags/list"))
    collected: list[str] = []
    url = f"/v2/{repo}/tags/list?n=2"
    while url:
        response = client.get(url)
        assert response.status_code == 200
        page = tag_list(response)
        assert len(page) == 2 or "Link" not in response.headers
        collected += page
        link = response.headers.get("Link")
        match = re.fullmatch(r'<([^>]+)>;\s*rel="next"', link) if link else None
        assert link is None or match, f'Link header {link!r} is not <url>; rel="next"'
        url = match.group(1) if match else ""
    assert collected == everything
    empty = client.get(f"/v2/{repo}/tags/list", params={"n": "0"})
    assert empty.status_code == 200
    assert tag_list(empty) == []
    assert "Link" not in empty.headers


def referrers(client: TestClient, name: str, digest: str, **params: str) -> Any:
    response = client.get(f"/v2/{name}/referrers/{digest}", params=params)
    assert response.status_code == 200, response.text
    assert response.headers.get("Content-Type") == OCI_INDEX
    body = response.json()
    assert body.get("schemaVersion") == 2
    assert body.get("mediaType") == OCI_INDEX
    return response


def test_discovery_referrers_of_unknown_digest_answer_200_with_empty_index(
    client: TestClient, repo: str, discovered: DiscoveryState
) -> None:
    """Content Discovery › listing references › GET request to nonexistent blob should result in empty 200
    response (Content-Type: the OCI index media type, no manifests)."""
    assert referrers(client, repo, DUMMY_DIGEST).json()["manifests"] == []


def test_discovery_referrers_of_subject_list_all_five_with_annotations(
    client: TestClient, repo: str, discovered: DiscoveryState
) -> None:
    """Content Discovery › listing references › GET request to existing blob should yield 200: five distinct
    descriptors, each with exactly the one annotation of its manifest."""
    manifests = referrers(client, repo, digest_of(discovered.data.manifests[4])).json()["manifests"]
    assert len(manifests) == 5
    assert len({m["digest"] for m in manifests}) == 5
    for entry in manifests:
        assert entry.get("annotations") == {ANNOTATION: discovered.refs.annotations[entry["digest"]]}


def test_discovery_referrer_descriptors_carry_media_type_size_and_artifact_type(
    client: TestClient, repo: str, discovered: DiscoveryState
) -> None:
    """Spec, Listing Referrers (checked field by field by the redesigned runner): each descriptor has the referrer's
    digest, media type and size; `artifactType` is the manifest's `artifactType`, else its config media type; an
    index without `artifactType` gets none."""
    refs = discovered.refs
    expected = {
        digest_of(refs.a_config): (OCI_MANIFEST, len(refs.a_config), ARTIFACT_TYPE_A),
        digest_of(refs.b_config): (OCI_MANIFEST, len(refs.b_config), ARTIFACT_TYPE_B),
        digest_of(refs.a_layer): (OCI_MANIFEST, len(refs.a_layer), ARTIFACT_TYPE_A),
        digest_of(refs.b_layer): (OCI_MANIFEST, len(refs.b_layer), ARTIFACT_TYPE_B),
        digest_of(refs.index): (OCI_INDEX, len(refs.index), ARTIFACT_TYPE_INDEX),
    }
    manifests = referrers(client, repo, digest_of(discovered.data.manifests[4])).json()["manifests"]
    assert {m["digest"]: (m["mediaType"], m["size"], m.get("artifactType")) for m in manifests} == expected


def test_discovery_referrers_filtered_by_artifact_type(
    client: TestClient, repo: str, discovered: DiscoveryState
) -> None:
    """Content Discovery › listing references › GET request to existing blob with filter should yield 200: with
    `OCI-Filters-Applied: artifactType`, exactly the two referrers of that type (the suite accepts the unfiltered
    five with a warning; the spec says the registry SHOULD filter and MUST then set the header)."""
    response = referrers(client, repo, digest_of(discovered.data.manifests[4]), artifactType=ARTIFACT_TYPE_A)
    assert response.headers.get("OCI-Filters-Applied") == "artifactType"
    manifests = response.json()["manifests"]
    assert {m["digest"] for m in manifests} == {digest_of(discovered.refs.a_config), digest_of(discovered.refs.a_layer)}
    for entry in manifests:
        assert entry.get("annotations") == {ANNOTATION: discovered.refs.annotations[entry["digest"]]}


def test_discovery_referrers_of_missing_subject_list_its_referrer(
    client: TestClient, repo: str, discovered: DiscoveryState
) -> None:
    """Content Discovery › listing references › GET request to missing manifest should yield 200 (manifest[3] was
    never pushed; its one referrer is listed)."""
    manifests = referrers(client, repo, digest_of(discovered.data.manifests[3])).json()["manifests"]
    assert [m["digest"] for m in manifests] == [digest_of(discovered.refs.c_layer)]


def discovery_manifest_references(state: DiscoveryState) -> list[str]:
    refs = state.refs
    return [
        digest_of(refs.index),
        digest_of(state.data.manifests[2]),
        digest_of(state.data.manifests[4]),
        digest_of(refs.a_config),
        digest_of(refs.a_layer),
        "tagtest0",
        digest_of(refs.b_config),
        digest_of(refs.b_layer),
        digest_of(refs.c_layer),
    ]


def test_discovery_teardown_deletes_manifests_and_tags(
    client: TestClient, repo: str, discovered: DiscoveryState
) -> None:
    """Content Discovery › Teardown › Delete created manifest & associated tags: in the suite's order (the index,
    manifest[2], the subject manifest[4] while its referrers remain, the referrers, the tag), each answers 2xx, 405
    or 404."""
    for reference in discovery_manifest_references(discovered):
        assert_delete_answer(client.delete(f"/v2/{repo}/manifests/{reference}"), 404, 405)


def test_discovery_teardown_deletes_config_and_layer_once_unreferenced(
    client: TestClient, repo: str, discovered: DiscoveryState
) -> None:
    """Content Discovery › Teardown › Delete config blob created in tests / Delete layer blob created in setup: after
    the manifests are gone, DELETE config[2] and the layer answer 2xx or 405 (404 is not accepted)."""
    for reference in discovery_manifest_references(discovered):
        client.delete(f"/v2/{repo}/manifests/{reference}")
    for blob in (discovered.data.configs[2], discovered.data.layer):
        assert_delete_answer(client.delete(f"/v2/{repo}/blobs/{blob.digest}"), 405)


def test_discovery_references_teardown_deletes_everything_left(
    client: TestClient, repo: str, discovered: DiscoveryState
) -> None:
    """Content Discovery › Teardown › References teardown: DELETE the referrers and the subject again, then
    config[4], both artifact blobs and the empty JSON blob — each 2xx, 405 or 404."""
    refs = discovered.refs
    for reference in discovery_manifest_references(discovered):
        client.delete(f"/v2/{repo}/manifests/{reference}")
    client.delete(f"/v2/{repo}/blobs/{discovered.data.configs[2].digest}")
    client.delete(f"/v2/{repo}/blobs/{discovered.data.layer.digest}")
    for payload in (refs.index, refs.a_config, refs.a_layer, discovered.data.manifests[4], refs.b_config, refs.b_layer):
        assert_delete_answer(client.delete(f"/v2/{repo}/manifests/{digest_of(payload)}"), 404, 405)
    for blob in (discovered.data.configs[4], refs.blob_a, refs.blob_b, EMPTY_JSON):
        assert_delete_answer(client.delete(f"/v2/{repo}/blobs/{blob.digest}"), 404, 405)


# ============================================================ Content Management (04_management_test.go)


@pytest.fixture
def managed(client: TestClient, repo: str) -> tuple[WorkflowData, int]:
    """Content Management › Setup: config[3], the layer and manifest[3] as `tagtest0`; then count the tags."""
    data = workflow_data()
    populate_blob(client, repo, data.configs[3])
    populate_blob(client, repo, data.layer)
    populate_manifest(client, repo, "tagtest0", data.manifests[3])
    listed = client.get(f"/v2/{repo}/tags/list")
    assert listed.status_code == 200
    return data, len(tag_list(listed))


def test_management_delete_tag_answers_202(client: TestClient, repo: str, managed: tuple[WorkflowData, int]) -> None:
    """Content Management › Manifest delete › DELETE request to manifest tag should return 202, unless tag deletion
    is disallowed (400 with UNSUPPORTED, or 405)."""
    response = client.delete(f"/v2/{repo}/manifests/tagtest0")
    assert response.status_code in (202, 400, 405)
    if response.status_code == 400:
        assert response.json()["errors"][0]["code"] == "UNSUPPORTED"


def test_management_delete_manifest_by_digest_answers_202(
    client: TestClient, repo: str, managed: tuple[WorkflowData, int]
) -> None:
    """Content Management › Manifest delete › DELETE request to manifest (digest) should yield 202 response unless
    already deleted (after the tag delete: 202 or 404)."""
    client.delete(f"/v2/{repo}/manifests/tagtest0")
    response = client.delete(f"/v2/{repo}/manifests/{digest_of(managed[0].manifests[3])}")
    assert response.status_code in (202, 404)


def test_management_get_of_deleted_manifest_answers_404(
    client: TestClient, repo: str, managed: tuple[WorkflowData, int]
) -> None:
    """Content Management › Manifest delete › GET request to deleted manifest URL should yield 404 response, unless
    delete is disallowed (the suite also accepts 200; ecrd deletes, so the spec's 404 is required)."""
    digest = digest_of(managed[0].manifests[3])
    client.delete(f"/v2/{repo}/manifests/tagtest0")
    client.delete(f"/v2/{repo}/manifests/{digest}")
    assert client.get(f"/v2/{repo}/manifests/{digest}").status_code == 404


def test_management_tags_list_reflects_deletion(
    client: TestClient, repo: str, managed: tuple[WorkflowData, int]
) -> None:
    """Content Management › Manifest delete › GET request to tags list should reflect manifest deletion."""
    client.delete(f"/v2/{repo}/manifests/tagtest0")
    client.delete(f"/v2/{repo}/manifests/{digest_of(managed[0].manifests[3])}")
    response = client.get(f"/v2/{repo}/tags/list")
    assert response.status_code == 200
    assert len(tag_list(response)) < managed[1]


def delete_managed_image(client: TestClient, name: str, data: WorkflowData) -> tuple[Any, Any]:
    client.delete(f"/v2/{name}/manifests/tagtest0")
    client.delete(f"/v2/{name}/manifests/{digest_of(data.manifests[3])}")
    return (
        client.delete(f"/v2/{name}/blobs/{data.configs[3].digest}"),
        client.delete(f"/v2/{name}/blobs/{data.layer.digest}"),
    )


def test_management_delete_blob_answers_202(client: TestClient, repo: str, managed: tuple[WorkflowData, int]) -> None:
    """Content Management › Blob delete › DELETE request to blob URL should yield 202 response (config, then layer;
    202, 404 or 405)."""
    for response in delete_managed_image(client, repo, managed[0]):
        assert response.status_code in (202, 404, 405), response.text


def test_management_get_of_deleted_blob_answers_404(
    client: TestClient, repo: str, managed: tuple[WorkflowData, int]
) -> None:
    """Content Management › Blob delete › GET request to deleted blob URL should yield 404 response (run when the
    layer delete was not 405)."""
    _, layer_delete = delete_managed_image(client, repo, managed[0])
    assert layer_delete.status_code != 405, "blob deletion is disabled: the suite skips this check"
    assert client.get(f"/v2/{repo}/blobs/{managed[0].configs[3].digest}").status_code == 404


# ============================================================ Redesigned runner: ping, empty repository, errors


def test_ping_answers_200(client: TestClient) -> None:
    """ping: GET /v2/ answers 200 ("If the response is 200 OK, then the registry implements this specification")."""
    assert client.get("/v2/").status_code == 200


def test_empty_repository_tag_list_answers_200_or_404(client: TestClient, repo: str) -> None:
    """empty › tag list: a repository without tags lists 200 (with an empty list) or 404."""
    response = client.get(f"/v2/{repo}/tags/list")
    assert response.status_code in (200, 404)
    if response.status_code == 200:
        assert tag_list(response) == []


def test_empty_repository_referrers_answer_200_with_empty_index(client: TestClient, repo: str) -> None:
    """empty › referrers: referrers of a random digest answer 200, Content-Type the OCI index, an index with
    schemaVersion 2 and no manifests ("the registry MUST NOT return a 404 Not Found to a referrers API request")."""
    assert referrers(client, repo, digest_of(os.urandom(32))).json()["manifests"] == []


@pytest.mark.parametrize("by", ["digest", "tag"])
def test_missing_manifest_answers_404(client: TestClient, repo: str, by: str) -> None:
    """missing-manifest › by-digest / by-tag: GET of a manifest never pushed answers 404."""
    reference = digest_of(os.urandom(1024)) if by == "digest" else f"missing-{uuid.uuid4().hex[:20]}"
    response = client.get(f"/v2/{repo}/manifests/{reference}", headers={"Accept": f"{OCI_INDEX}, {OCI_MANIFEST}"})
    assert response.status_code == 404


def test_manifest_put_with_malformed_digest_reference_answers_400(client: TestClient, repo: str) -> None:
    """invalid-digest-format › manifest-put: PUT /manifests/sha256:baddigeststring (its blobs pushed) answers 400."""
    data = workflow_data()
    populate_blob(client, repo, data.configs[0])
    populate_blob(client, repo, data.layer)
    response = put_manifest(client, repo, "sha256:baddigeststring", data.manifests[0])
    assert response.status_code == 400


def test_manifest_get_with_malformed_digest_reference_answers_404_or_400(client: TestClient, repo: str) -> None:
    """invalid-digest-format › manifest-get: GET /manifests/sha256:baddigeststring answers 404 or 400."""
    response = client.get(
        f"/v2/{repo}/manifests/sha256:baddigeststring", headers={"Accept": f"{OCI_INDEX}, {OCI_MANIFEST}"}
    )
    assert response.status_code in (400, 404)


def test_manifest_put_by_digest_of_other_bytes_answers_400(client: TestClient, repo: str) -> None:
    """Data set "Bad Digest Image": a manifest PUT by its digest after two spaces were appended to the bytes answers
    400."""
    data = workflow_data()
    populate_blob(client, repo, data.configs[0])
    populate_blob(client, repo, data.layer)
    response = put_manifest(client, repo, digest_of(data.manifests[0]), data.manifests[0] + b"  ")
    assert response.status_code == 400


# ============================================================ Redesigned runner: blob APIs (TestBlobAPIs)


def blob_base(name: str) -> str:
    return f"/v2/{name}/blobs/uploads/"


def verify_blob_location(client: TestClient, response: Any, blob: Blob) -> None:
    """The runner's BlobVerifyLocation: the Location of a finished push, resolved, GETs the blob's bytes."""
    got = client.get(resolve_location(response))
    assert got.status_code == 200
    assert got.content == blob.data


def verify_digest_header(response: Any, blob: Blob) -> None:
    assert response.headers.get("Docker-Content-Digest", blob.digest) == blob.digest


def push_post_put(client: TestClient, name: str, blob: Blob, *, sent: bytes | None = None) -> Any:
    body = blob.data if sent is None else sent
    started = client.post(blob_base(name))
    assert started.status_code == 202, started.text
    return client.put(
        with_query(resolve_location(started), digest=blob.digest),
        content=body,
        headers={"Content-Type": OCTET, "Content-Length": str(len(body))},
    )


def push_post_only(client: TestClient, name: str, blob: Blob, *, sent: bytes | None = None) -> Any:
    body = blob.data if sent is None else sent
    posted = client.post(
        with_query(blob_base(name), digest=blob.digest),
        content=body,
        headers={"Content-Type": OCTET, "Content-Length": str(len(body))},
    )
    if posted.status_code != 202:
        return posted
    # "Registries that do not support single request monolithic uploads SHOULD return a 202 ... and clients
    # SHOULD proceed with a subsequent PUT": the runner falls back and counts the API as unsupported.
    return client.put(
        with_query(resolve_location(posted), digest=blob.digest),
        content=body,
        headers={"Content-Type": OCTET, "Content-Length": str(len(body))},
    )


def push_stream(client: TestClient, name: str, blob: Blob, *, sent: bytes | None = None) -> Any:
    started = client.post(blob_base(name), headers={"Content-Length": "0"})
    assert started.status_code == 202, started.text
    patched = client.patch(
        resolve_location(started), content=blob.data if sent is None else sent, headers={"Content-Type": OCTET}
    )
    assert patched.status_code == 202, patched.text
    return client.put(
        with_query(resolve_location(patched), digest=blob.digest),
        headers={"Content-Length": "0", "Content-Type": OCTET},
    )


def push_chunked(
    client: TestClient,
    name: str,
    blob: Blob,
    *,
    put_last: bool = False,
    out_of_order: bool = False,
    sent: bytes | None = None,
    chunk_floor: int = CHUNK_MIN,
) -> Any:
    """The runner's BlobPatchChunked: about three chunks (at least OCI-Chunk-Min-Length and 1024 bytes each), the
    last optionally sent in the closing PUT; with ``out_of_order`` each chunk is preceded by one from the wrong offset
    (416 expected), and the upload status GET tells where to resume."""
    body = blob.data if sent is None else sent
    started = client.post(blob_base(name), headers={"Content-Length": "0"})
    assert started.status_code == 202, started.text
    size = len(body) // 3 + 1
    minimum = started.headers.get("OCI-Chunk-Min-Length")
    size = min(max(size, int(minimum or 0), chunk_floor), len(body))
    location, last_byte = resolve_location(started), -1
    final: Any = None
    while last_byte < len(body) - 1:
        if out_of_order:
            bad_start = last_byte + 1 + size
            if bad_start >= len(body):
                bad_start = 0
            bad_end = min(bad_start + size - 1, len(body) - 1)
            method, url = "PATCH", location
            if put_last and bad_end == len(body) - 1:
                method, url = "PUT", with_query(location, digest=blob.digest)
            refused = client.request(
                method,
                url,
                content=body[bad_start : bad_end + 1],
                headers={
                    "Content-Type": OCTET,
                    "Content-Length": str(bad_end - bad_start + 1),
                    "Content-Range": f"{bad_start}-{bad_end}",
                },
            )
            assert refused.status_code == 416, f"out-of-order {method} {bad_start}-{bad_end}: {refused.text}"
            status = client.get(location)
            assert status.status_code == 204, status.text
            current = status.headers.get("Range", "")
            assert current.startswith("0-"), f"upload status Range {current!r} lacks the 0- prefix"
            if last_byte >= 0:
                assert int(current[2:]) == last_byte, f"upload status Range {current!r}, expected 0-{last_byte}"
            location = resolve_location(status)
        start, last_byte = last_byte + 1, min(last_byte + size, len(body) - 1)
        chunk_headers = {
            "Content-Type": OCTET,
            "Content-Length": str(last_byte - start + 1),
            "Content-Range": f"{start}-{last_byte}",
        }
        if put_last and last_byte == len(body) - 1:
            final = client.put(
                with_query(location, digest=blob.digest), content=body[start : last_byte + 1], headers=chunk_headers
            )
        else:
            patched = client.patch(location, content=body[start : last_byte + 1], headers=chunk_headers)
            assert patched.status_code == 202, f"chunk {start}-{last_byte}: {patched.status_code} {patched.text}"
            location = resolve_location(patched)
    if final is None:
        final = client.put(
            with_query(location, digest=blob.digest), headers={"Content-Length": "0", "Content-Type": OCTET}
        )
    return final


def check_pushed_then_delete(client: TestClient, name: str, blob: Blob, response: Any) -> None:
    """After a push: 201 with a Location that GETs the blob, a matching digest header; then blob-head, blob-get and
    blob-delete (202, then HEAD 404: "atomic"; 404/405 mean deletion unsupported)."""
    assert response.status_code == 201, f"{response.request.method} {response.request.url}: {response.text}"
    verify_digest_header(response, blob)
    verify_blob_location(client, response, blob)
    head = client.head(f"/v2/{name}/blobs/{blob.digest}")
    assert head.status_code == 200
    assert head.content == b""
    assert head.headers.get("Content-Length") == str(len(blob.data))
    verify_digest_header(head, blob)
    got = client.get(f"/v2/{name}/blobs/{blob.digest}")
    assert got.status_code == 200
    assert got.content == blob.data
    assert got.headers.get("Content-Length") == str(len(blob.data))
    verify_digest_header(got, blob)
    deleted = client.delete(f"/v2/{name}/blobs/{blob.digest}")
    assert deleted.status_code in (202, 404, 405), deleted.text
    if deleted.status_code == 202:
        assert client.head(f"/v2/{name}/blobs/{blob.digest}").status_code == 404


def test_blob_never_pushed_answers_404(client: TestClient, repo: str) -> None:
    """blobs › get-missing: GET of a blob never pushed answers 404."""
    assert client.get(f"/v2/{repo}/blobs/{digest_of(os.urandom(512))}").status_code == 404


def test_blob_push_single_post_then_pull_and_delete(client: TestClient, repo: str) -> None:
    """blobs › post only: POST ?digest= with the bytes answers 201 (a 202 falls back to PUT and marks the API
    unsupported — this test requires the 201), then head, get and atomic delete."""
    blob = Blob(os.urandom(512))
    posted = client.post(
        with_query(blob_base(repo), digest=blob.digest),
        content=blob.data,
        headers={"Content-Type": OCTET, "Content-Length": str(len(blob.data))},
    )
    check_pushed_then_delete(client, repo, blob, posted)


def test_blob_push_post_then_put_then_pull_and_delete(client: TestClient, repo: str) -> None:
    """blobs › post+put."""
    blob = Blob(os.urandom(512))
    check_pushed_then_delete(client, repo, blob, push_post_put(client, repo, blob))


def test_blob_push_chunked_single_chunk(client: TestClient, repo: str) -> None:
    """blobs › chunked single: a 512-byte blob in one PATCH (OCI-Chunk-Min-Length read from the POST)."""
    blob = Blob(os.urandom(512))
    check_pushed_then_delete(client, repo, blob, push_chunked(client, repo, blob))


def test_blob_push_chunked_three_chunks(client: TestClient, repo: str) -> None:
    """blobs › chunked multi: a blob of three chunks less five bytes, three PATCHes, a closing PUT."""
    blob = Blob(os.urandom(CHUNK_MIN * 3 - 5))
    check_pushed_then_delete(client, repo, blob, push_chunked(client, repo, blob))


def test_blob_push_chunked_with_final_chunk_in_closing_put(client: TestClient, repo: str) -> None:
    """blobs › chunked multi and put chunk: the last chunk travels in the closing PUT with its Content-Range ("The
    final chunk MAY be uploaded using a PATCH request or it MAY be uploaded in the closing PUT request")."""
    blob = Blob(os.urandom(CHUNK_MIN * 3 - 5))
    check_pushed_then_delete(client, repo, blob, push_chunked(client, repo, blob, put_last=True))


def test_blob_push_chunked_recovers_from_out_of_order_chunks(client: TestClient, repo: str) -> None:
    """blobs › chunked out-of-order: every chunk is preceded by one at a wrong offset (416), a status GET (204,
    Range 0-<last byte received>) and the good chunk at the status Location."""
    blob = Blob(os.urandom(CHUNK_MIN * 3 - 5))
    check_pushed_then_delete(client, repo, blob, push_chunked(client, repo, blob, out_of_order=True))


def test_blob_push_chunked_out_of_order_with_final_chunk_in_put(client: TestClient, repo: str) -> None:
    """blobs › chunked out-of-order and put chunk: as above, and a wrong-offset chunk that would end the blob is sent
    as the closing PUT, which must also answer 416."""
    blob = Blob(os.urandom(CHUNK_MIN * 3 - 5))
    check_pushed_then_delete(client, repo, blob, push_chunked(client, repo, blob, put_last=True, out_of_order=True))


def test_blob_push_streamed_then_pull_and_delete(client: TestClient, repo: str) -> None:
    """blobs › stream: POST, one PATCH without Content-Range, PUT ?digest= (201 with a Location)."""
    blob = Blob(os.urandom(512))
    check_pushed_then_delete(client, repo, blob, push_stream(client, repo, blob))


def test_blob_mount_from_named_repository(client: TestClient, repo: str, repo2: str) -> None:
    """blobs › mount: push to repo2, POST ?mount=&from=repo2 in repo answers 201 with Location and digest (a 202
    falls back to PUT and marks mounting unsupported — this test requires the 201)."""
    blob = Blob(os.urandom(512))
    assert push_post_put(client, repo2, blob).status_code == 201
    mounted = mount_from(client, repo, repo2, blob.digest)
    check_pushed_then_delete(client, repo, blob, mounted)
    assert client.delete(f"/v2/{repo2}/blobs/{blob.digest}").status_code in (202, 404, 405)


def test_blob_mount_without_from_answers_201_or_falls_back_to_upload(client: TestClient, repo: str, repo2: str) -> None:
    """blobs › mount anonymous: POST ?mount= without `from` answers 201, or 202 and the runner PUTs the blob
    (then the API is reported unsupported, not failed: "The registry MAY treat the from parameter as optional")."""
    blob = Blob(os.urandom(512))
    push_post_put(client, repo2, blob)
    response = client.post(with_query(blob_base(repo), mount=blob.digest))
    assert response.status_code in (201, 202)
    if response.status_code == 202:
        response = client.put(
            with_query(resolve_location(response), digest=blob.digest),
            content=blob.data,
            headers={"Content-Type": OCTET, "Content-Length": str(len(blob.data))},
        )
    check_pushed_then_delete(client, repo, blob, response)


def test_blob_mount_of_blob_missing_from_source_answers_202(client: TestClient, repo: str, repo2: str) -> None:
    """blobs › mount missing: mounting from repo2 a blob never pushed there must not succeed; the runner expects the
    202 fallback ("if a registry ... is unable to mount the requested blob, it SHOULD return a 202") and a PUT to
    that session then works."""
    blob = Blob(os.urandom(512))
    response = mount_from(client, repo, repo2, blob.digest)
    assert response.status_code == 202, response.text
    done = client.put(
        with_query(resolve_location(response), digest=blob.digest),
        content=blob.data,
        headers={"Content-Type": OCTET, "Content-Length": str(len(blob.data))},
    )
    check_pushed_then_delete(client, repo, blob, done)


def test_blob_upload_cancel_answers_204(client: TestClient, repo: str) -> None:
    """blobs › post cancel: POST, then DELETE of the upload Location answers 204; the blob never appears."""
    blob = Blob(os.urandom(512))
    started = client.post(blob_base(repo))
    assert started.status_code == 202
    assert client.delete(resolve_location(started), headers={"Content-Length": "0"}).status_code == 204
    assert client.get(f"/v2/{repo}/blobs/{blob.digest}").status_code == 404


RANGE_BLOB = 2048


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("bytes=500-1499", (500, 1499)),
        ("bytes=500-", (500, RANGE_BLOB - 1)),
        ("bytes=-500", (RANGE_BLOB - 500, RANGE_BLOB - 1)),
        ("bytes=2000-5000", (2000, RANGE_BLOB - 1)),
        ("bytes=500-0", None),
        ("bytes=5000-10000", None),
    ],
)
def test_blob_range_request(client: TestClient, repo: str, header: str, expected: tuple[int, int] | None) -> None:
    """blobs › range requests (2048-byte blob): satisfiable ranges answer 206 with the bytes, Content-Length and
    `Content-Range: bytes <start>-<end>/<size or *>`; 500-0 and 5000-10000 answer 416. A 200 with the whole blob is
    a failure here ("range request unsupported")."""
    blob = Blob(os.urandom(RANGE_BLOB))
    assert push_post_put(client, repo, blob).status_code == 201
    response = client.get(f"/v2/{repo}/blobs/{blob.digest}", headers={"Range": header})
    if expected is None:
        assert response.status_code == 416
        return
    start, end = expected
    assert response.status_code == 206, response.status_code
    assert response.content == blob.data[start : end + 1]
    assert response.headers["Content-Length"] == str(end - start + 1)
    assert response.headers["Content-Range"] in (f"bytes {start}-{end}/{RANGE_BLOB}", f"bytes {start}-{end}/*")


@pytest.mark.parametrize("content", [b"", b"{}"], ids=["empty", "emptyJSON"])
def test_well_known_blob_pushes_pulls_and_deletes(client: TestClient, repo: str, content: bytes) -> None:
    """blobs › empty / emptyJSON: the zero-byte blob and `{}` push, answer HEAD and GET with their exact size, and
    delete."""
    blob = Blob(content)
    check_pushed_then_delete(client, repo, blob, push_post_put(client, repo, blob))


BAD_DIGEST_PUSHES: dict[str, Callable[..., Any]] = {
    "post only": push_post_only,
    "post+put": push_post_put,
    "chunked": push_chunked,
    "chunked and put chunk": lambda client, name, blob, sent: push_chunked(
        client, name, blob, put_last=True, sent=sent
    ),
    "stream": push_stream,
}


@pytest.mark.parametrize("method", list(BAD_DIGEST_PUSHES))
def test_blob_push_with_wrong_digest_answers_400(client: TestClient, repo: str, method: str) -> None:
    """blobs › bad digest <method>: the bytes sent are the blob plus "oh no", the digest is the blob's; the push that
    completes the upload answers 400 (post only may answer 202 first) and no blob appears under either digest."""
    blob = Blob(os.urandom(CHUNK_MIN * 3 - 5))
    sent = blob.data + b"oh no"
    response = BAD_DIGEST_PUSHES[method](client, repo, blob, sent=sent)
    assert response.status_code == 400, response.text
    assert client.head(f"/v2/{repo}/blobs/{blob.digest}").status_code == 404
    assert client.head(f"/v2/{repo}/blobs/{digest_of(sent)}").status_code == 404


# ============================================================ Locations: relative or absolute


def test_upload_locations_may_be_relative_or_absolute_and_resolve(client: TestClient, repo: str) -> None:
    """Spec, POST then PUT: "the location MAY be absolute (containing the protocol and/or hostname), or it MAY be
    relative (containing just the URL path)". Every Location of an upload (POST, PATCH, status GET, final PUT) is an
    absolute URL or an absolute path, the upload ones contain a UUID, and each resolved against its request (as the
    suite resolves it) leads on: the final one GETs the blob."""
    blob = Blob(os.urandom(3000))
    responses = [client.post(blob_base(repo), headers={"Content-Length": "0"})]
    responses.append(patch_chunk(client, resolve_location(responses[-1]), blob.data[:1500], "0-1499"))
    responses.append(client.get(resolve_location(responses[-1])))
    responses.append(patch_chunk(client, resolve_location(responses[-1]), blob.data[1500:], "1500-2999"))
    responses.append(client.put(with_query(resolve_location(responses[-1]), digest=blob.digest)))
    assert [r.status_code for r in responses] == [202, 202, 204, 202, 201]
    for response in responses:
        location = response.headers["Location"]
        parts = urlsplit(location)
        assert (parts.scheme and parts.netloc) or location.startswith("/"), location
    for response in responses[:-1]:
        assert UUID_IN_LOCATION.search(response.headers["Location"]), response.headers["Location"]
    verify_blob_location(client, responses[-1], blob)


def test_manifest_push_location_pulls_the_manifest_back(client: TestClient, repo: str) -> None:
    """ManifestPut verification: the Location of a manifest PUT (a "pullable manifest URL"), resolved and fetched
    with the OCI Accept types, answers 200 with the same bytes, its Content-Type and Content-Length; the
    Docker-Content-Digest of the PUT equals the manifest's digest."""
    data = workflow_data()
    populate_blob(client, repo, data.configs[0])
    populate_blob(client, repo, data.layer)
    pushed = put_manifest(client, repo, "located", data.manifests[0])
    assert pushed.status_code == 201
    assert pushed.headers.get("Docker-Content-Digest", digest_of(data.manifests[0])) == digest_of(data.manifests[0])
    got = client.get(resolve_location(pushed), headers={"Accept": f"{OCI_INDEX}, {OCI_MANIFEST}"})
    assert got.status_code == 200
    assert got.content == data.manifests[0]
    assert got.headers["Content-Type"] == OCI_MANIFEST
    assert got.headers["Content-Length"] == str(len(data.manifests[0]))


# ============================================================ Redesigned runner: data sets (GenerateData)


@dataclass
class DataSet:
    """Content of one data test of the runner: blobs, manifests in push order, tags, and expected referrers. Blobs in
    ``unpushed`` are referenced by manifests but never uploaded."""

    algorithm: str = "sha256"
    blobs: dict[str, bytes] = field(default_factory=dict)
    manifests: list[tuple[str, bytes, str]] = field(default_factory=list)
    tags: dict[str, str] = field(default_factory=dict)
    referrers: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    unpushed: set[str] = field(default_factory=set)

    def digest(self, data: bytes) -> str:
        return f"{self.algorithm}:{hashlib.new(self.algorithm, data).hexdigest()}"

    def add_blob(self, data: bytes, media_type: str, *, with_data: bool = False) -> dict[str, Any]:
        digest = self.digest(data)
        self.blobs[digest] = data
        found: dict[str, Any] = {"mediaType": media_type, "digest": digest, "size": len(data)}
        if with_data:
            found["data"] = _b64(data)
        return found

    def layer(self, number: int, *, compress: bool = True, with_data: bool = False) -> tuple[dict[str, Any], str]:
        content = f"Conformance test file number {number}, lucky number {uuid.uuid4().int}\n".encode()
        raw = tar_layer({f"conformance-{number}.txt": content}, compress=False)
        body = tar_layer({f"conformance-{number}.txt": content}, compress=compress)
        found = self.add_blob(body, OCI_LAYER if compress else OCI_LAYER_TAR, with_data=with_data)
        return found, self.digest(raw)

    def config(
        self,
        platform: dict[str, str],
        diff_ids: list[str],
        *,
        with_data: bool = False,
        extra: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        body = {
            "author": "OCI Conformance Test",
            **platform,
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
            **(extra or {}),
        }
        return self.add_blob(json.dumps(body).encode(), OCI_CONFIG, with_data=with_data)

    def manifest(self, body: dict[str, Any], *, tag: str | None = None) -> dict[str, Any]:
        payload = json.dumps(body).encode()
        digest, media_type = self.digest(payload), body["mediaType"]
        self.manifests.append((digest, payload, media_type))
        if tag:
            self.tags[tag] = digest
        subject = body.get("subject")
        if subject:
            artifact_type = body.get("artifactType") or (body["config"]["mediaType"] if "config" in body else None)
            self.referrers.setdefault(subject["digest"], []).append(
                {
                    "mediaType": media_type,
                    "digest": digest,
                    "size": len(payload),
                    "artifactType": artifact_type,
                    "annotations": body.get("annotations") or {},
                }
            )
        return {"mediaType": media_type, "digest": digest, "size": len(payload)}

    def image(
        self,
        *,
        tag: str | None = None,
        layers: int = 2,
        compress: bool = True,
        with_data: bool = False,
        platform: dict[str, str] | None = None,
        extra_field: bool = False,
        **fields: Any,
    ) -> dict[str, Any]:
        platform = platform or {"os": "linux", "architecture": "amd64"}
        extra = {f"org.{uuid.uuid4().hex}": uuid.uuid4().hex} if extra_field else None
        found = [self.layer(i, compress=compress, with_data=with_data) for i in range(layers)]
        config = self.config(platform, [diff for _, diff in found], with_data=with_data, extra=extra)
        body = {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": config,
            "layers": [d for d, _ in found],
            **fields,
            **(extra or {}),
        }
        return self.manifest(body, tag=tag)

    def artifact(
        self,
        artifact_type: str,
        layer_type: str,
        *,
        tag: str | None = None,
        layer_bytes: bytes | None = None,
        **fields: Any,
    ) -> dict[str, Any]:
        config = self.add_blob(b"{}", OCI_EMPTY)
        layer = self.add_blob(os.urandom(2048) if layer_bytes is None else layer_bytes, layer_type)
        body = {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "artifactType": artifact_type,
            "config": config,
            "layers": [layer],
            **fields,
        }
        return self.manifest(body, tag=tag)

    def index(
        self,
        children: list[dict[str, Any]],
        platforms: list[dict[str, str] | None],
        *,
        tag: str | None = None,
        extra_field: bool = False,
        **fields: Any,
    ) -> dict[str, Any]:
        entries = [{**child, **({"platform": p} if p else {})} for child, p in zip(children, platforms, strict=True)]
        extra = {f"org.{uuid.uuid4().hex}": uuid.uuid4().hex} if extra_field else {}
        body = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries, **fields, **extra}
        return self.manifest(body, tag=tag)


AMD64 = {"os": "linux", "architecture": "amd64"}
ARM64 = {"os": "linux", "architecture": "arm64"}
EXAMPLE_TYPE_1 = "application/vnd.example.oci.conformance.v1"
EXAMPLE_TYPE_2 = "application/vnd.example.oci.conformance.v2"


def unique_annotations() -> dict[str, str]:
    return {"org.opencontainers.conformance": "hello conformance test", f"org.example.{uuid.uuid4().hex}": "x"}


def two_platform_index(data: DataSet, *, tag: str | None = None, **image_fields: Any) -> dict[str, Any]:
    index_fields = {k: v for k, v in image_fields.items() if k in ("artifactType", "subject", "annotations")}
    if "artifactType" in image_fields:
        children = [
            data.artifact(
                image_fields["artifactType"],
                EXAMPLE_TYPE_1,
                **{k: v for k, v in image_fields.items() if k in ("subject", "annotations")},
            )
            for _ in (AMD64, ARM64)
        ]
    else:
        children = [data.image(platform=p, **image_fields) for p in (AMD64, ARM64)]
    return data.index(children, [AMD64, ARM64], tag=tag, **index_fields)


def data_image() -> DataSet:
    data = DataSet()
    data.image(tag="image")
    return data


def data_image_uncompressed() -> DataSet:
    data = DataSet()
    data.image(tag="image-uncompressed", compress=False)
    return data


def data_large_manifest() -> DataSet:
    data = DataSet()
    data.image(tag="large-manifest", annotations={f"large-annotation-{i}": "A" * 10000 for i in range(390)})
    return data


def data_index() -> DataSet:
    data = DataSet()
    two_platform_index(data, tag="index")
    return data


def data_nested_index() -> DataSet:
    data = DataSet()
    first, second = two_platform_index(data), two_platform_index(data)
    data.index([first, second], [None, None], tag="index-of-index")
    return data


def data_empty_index() -> DataSet:
    data = DataSet()
    data.index([], [], tag="index")
    return data


def data_artifact() -> DataSet:
    data = DataSet()
    data.artifact(EXAMPLE_TYPE_1, EXAMPLE_TYPE_1, tag="artifact")
    return data


def data_artifact_index() -> DataSet:
    data = DataSet()
    children = [data.artifact(EXAMPLE_TYPE_1, EXAMPLE_TYPE_1) for _ in (AMD64, ARM64)]
    data.index(children, [AMD64, ARM64], tag="artifact-index", artifactType=EXAMPLE_TYPE_1)
    return data


def data_artifact_without_layers() -> DataSet:
    data = DataSet()
    data.artifact(EXAMPLE_TYPE_1, OCI_EMPTY, tag="artifact-without-layers", layer_bytes=b"{}")
    return data


def data_artifacts_with_subject() -> DataSet:
    data = DataSet()
    subject = data.image(tag="image")
    data.image(subject=subject)
    data.artifact(
        EXAMPLE_TYPE_1, EXAMPLE_TYPE_1, tag="tagged-artifact1", subject=subject, annotations=unique_annotations()
    )
    data.artifact(EXAMPLE_TYPE_2, OCTET, tag="tagged-artifact2", subject=subject, annotations=unique_annotations())
    return data


def data_index_with_subject() -> DataSet:
    data = DataSet()
    subject = two_platform_index(data, tag="index")
    two_platform_index(
        data, tag="tagged-artifact", artifactType=EXAMPLE_TYPE_1, subject=subject, annotations=unique_annotations()
    )
    return data


def data_missing_subject() -> DataSet:
    data = DataSet()
    subject = {"mediaType": OCI_MANIFEST, "size": 123, "digest": digest_of(b"missing content")}
    data.artifact(
        EXAMPLE_TYPE_1, EXAMPLE_TYPE_1, tag="tagged-artifact", subject=subject, annotations=unique_annotations()
    )
    return data


def data_data_field() -> DataSet:
    data = DataSet()
    data.image(tag="data-field", with_data=True)
    return data


def data_non_distributable_layers() -> DataSet:
    """Two non-distributable layers (with `urls`) that are never pushed, and one normal layer."""
    data = DataSet()
    foreign = []
    for media_type, size in (
        ("application/vnd.oci.image.layer.nondistributable.v1.tar+gzip", 123456),
        ("application/vnd.oci.image.layer.nondistributable.v1.tar", 12345),
    ):
        digest = digest_of(os.urandom(256))
        data.unpushed.add(digest)
        foreign.append(
            {
                "mediaType": media_type,
                "digest": digest,
                "size": size,
                "urls": [f"https://store.example.com/blobs/sha256/{digest.split(':')[1]}"],
            }
        )
    normal, normal_diff = data.layer(1)
    config = data.config(AMD64, [digest_of(os.urandom(256)), foreign[1]["digest"], normal_diff])
    data.manifest(
        {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": config, "layers": [*foreign, normal]},
        tag="non-distributable-image",
    )
    return data


def data_custom_fields() -> DataSet:
    data = DataSet()
    children = [data.image(platform=p, extra_field=True) for p in (AMD64, ARM64)]
    data.index(children, [AMD64, ARM64], tag="custom-fields", extra_field=True)
    return data


def data_no_layers() -> DataSet:
    data = DataSet()
    data.image(tag="no-layers", layers=0)
    return data


def data_sha512() -> DataSet:
    """A two-platform index, its images, configs and layers all addressed by sha512 (pushed by digest only)."""
    data = DataSet(algorithm="sha512")
    two_platform_index(data)
    return data


DATA_SETS: dict[str, Callable[[], DataSet]] = {
    "image": data_image,
    "image-uncompressed": data_image_uncompressed,
    "large-manifest": data_large_manifest,
    "index": data_index,
    "nested-index": data_nested_index,
    "empty-index": data_empty_index,
    "artifact": data_artifact,
    "artifact-index": data_artifact_index,
    "artifact-without-layers": data_artifact_without_layers,
    "artifacts-with-subject": data_artifacts_with_subject,
    "index-with-subject": data_index_with_subject,
    "missing-subject": data_missing_subject,
    "data-field": data_data_field,
    "non-distributable-layers": data_non_distributable_layers,
    "custom-fields": data_custom_fields,
    "no-layers": data_no_layers,
    "sha512": data_sha512,
}


def push_data_set(client: TestClient, name: str, data: DataSet) -> None:
    """push: every blob (POST then PUT), every manifest by digest in order (201; Location pulls it back; digest
    header; OCI-Subject when it has a subject), then every tag (201)."""
    for digest, content in data.blobs.items():
        started = client.post(blob_base(name))
        done = client.put(
            with_query(resolve_location(started), digest=digest),
            content=content,
            headers={"Content-Type": OCTET, "Content-Length": str(len(content))},
        )
        assert done.status_code == 201, f"blob {digest}: {done.status_code} {done.text}"
    for digest, payload, media_type in data.manifests:
        response = put_manifest(client, name, digest, payload, media_type)
        assert response.status_code == 201, f"manifest-by-digest {digest}: {response.status_code} {response.text}"
        assert response.headers.get("Docker-Content-Digest", digest) == digest
        subject = json.loads(payload).get("subject")
        if subject:
            assert response.headers.get("OCI-Subject") == subject["digest"], "OCI-Subject missing"
        got = client.get(resolve_location(response), headers={"Accept": f"{OCI_INDEX}, {OCI_MANIFEST}"})
        assert (got.status_code, got.content) == (200, payload), "the manifest Location does not pull it back"
        assert got.headers["Content-Type"] == media_type
    for tag, digest in data.tags.items():
        payload, media_type = next((p, m) for d, p, m in data.manifests if d == digest)
        response = put_manifest(client, name, tag, payload, media_type)
        assert response.status_code == 201, f"manifest-by-tag {tag}: {response.text}"


def check_data_set_listed_and_pulled(client: TestClient, name: str, data: DataSet) -> None:
    """tag-list (every tag; `last` = middle tag excludes the first half), head and pull by tag and digest (exact
    bytes, Content-Type, Content-Length, digest header, empty HEAD body), blob head and get."""
    listed = client.get(f"/v2/{name}/tags/list")
    assert listed.status_code == 200
    tags = tag_list(listed)
    assert set(data.tags) <= set(tags)
    if len(tags) >= 2:
        ordered = sorted(tags)
        half = len(ordered) // 2
        partial = tag_list(client.get(f"/v2/{name}/tags/list", params={"last": ordered[half - 1]}))
        assert not set(ordered[:half]) & set(partial)
        assert set(ordered[half:]) <= set(partial)
    by_digest = {d: (p, m) for d, p, m in data.manifests}
    references = [*[(t, d) for t, d in data.tags.items()], *[(d, d) for d in by_digest]]
    for reference, digest in references:
        payload, media_type = by_digest[digest]
        for method in ("HEAD", "GET"):
            response = client.request(
                method, f"/v2/{name}/manifests/{reference}", headers={"Accept": f"{OCI_INDEX}, {OCI_MANIFEST}"}
            )
            assert response.status_code == 200, f"{method} manifest {reference}"
            assert response.content == (b"" if method == "HEAD" else payload)
            assert response.headers["Content-Type"] == media_type
            assert response.headers["Content-Length"] == str(len(payload))
            assert response.headers.get("Docker-Content-Digest", digest) == digest
    for digest, content in data.blobs.items():
        head = client.head(f"/v2/{name}/blobs/{digest}")
        assert (head.status_code, head.headers.get("Content-Length")) == (200, str(len(content)))
        got = client.get(f"/v2/{name}/blobs/{digest}")
        assert (got.status_code, got.content) == (200, content)


def check_data_set_referrers(client: TestClient, name: str, data: DataSet) -> None:
    """referrers: every expected descriptor (digest, media type, size, artifactType, annotations ⊇) is listed; per
    artifactType filter the header says `artifactType`, every match is listed and nothing else."""
    for subject, goals in data.referrers.items():
        listed = referrers(client, name, subject).json()["manifests"]

        def present(goal: dict[str, Any], entries: list[dict[str, Any]]) -> bool:
            return any(
                e["digest"] == goal["digest"]
                and e["mediaType"] == goal["mediaType"]
                and e["size"] == goal["size"]
                and e.get("artifactType") == goal["artifactType"]
                and goal["annotations"].items() <= (e.get("annotations") or {}).items()
                for e in entries
            )

        assert all(present(goal, listed) for goal in goals), f"referrers of {subject}: {listed}"
        for artifact_type in {goal["artifactType"] for goal in goals if goal["artifactType"]}:
            response = referrers(client, name, subject, artifactType=artifact_type)
            applied = [f.strip() for f in response.headers.get("OCI-Filters-Applied", "").split(",")]
            assert "artifactType" in applied
            filtered = response.json()["manifests"]
            assert all(present(g, filtered) for g in goals if g["artifactType"] == artifact_type)
            assert all(e.get("artifactType") == artifact_type for e in filtered)


def delete_data_set(client: TestClient, name: str, data: DataSet) -> None:
    """delete: every tag (202, then HEAD 404), every manifest in reverse push order (202, then HEAD 404), every blob
    (202 then HEAD 404; 404/405 count as deletion unsupported)."""
    for tag in data.tags:
        response = client.delete(f"/v2/{name}/manifests/{tag}")
        assert response.status_code == 202, f"tag-delete {tag}: {response.status_code} {response.text}"
        assert client.head(f"/v2/{name}/manifests/{tag}").status_code == 404
    for digest, _, _ in reversed(data.manifests):
        response = client.delete(f"/v2/{name}/manifests/{digest}")
        assert response.status_code == 202, f"manifest-delete {digest}: {response.status_code} {response.text}"
        assert client.head(f"/v2/{name}/manifests/{digest}").status_code == 404
    for digest in data.blobs:
        response = client.delete(f"/v2/{name}/blobs/{digest}")
        assert response.status_code in (202, 404, 405), f"blob-delete {digest}: {response.text}"
        if response.status_code == 202:
            assert client.head(f"/v2/{name}/blobs/{digest}").status_code == 404


@pytest.mark.parametrize(
    "name",
    list(DATA_SETS),
)
def test_data_set_round_trips(client: TestClient, repo: str, name: str) -> None:
    """Data conformance, one data set of the runner: push, tag-list, head, pull, referrers and delete (the runner's
    TestPush/TestList/TestHead/TestPull/TestReferrers/TestDelete)."""
    data = DATA_SETS[name]()
    push_data_set(client, repo, data)
    check_data_set_listed_and_pulled(client, repo, data)
    check_data_set_referrers(client, repo, data)
    delete_data_set(client, repo, data)


def test_manifest_referencing_an_unpushed_blob_is_accepted_or_refused_with_manifest_blob_unknown(
    client: TestClient, repo: str
) -> None:
    """Data set "Sparse Manifests" (off by default) against the spec: "A registry MAY reject a manifest ... with
    descriptors in other fields that reference a manifest or blob that does not exist in the registry. When a
    manifest is rejected for this reason, it MUST result in one or more MANIFEST_BLOB_UNKNOWN errors"; an index
    whose child was never pushed likewise."""
    data = DataSet()
    image = data.image(tag="sparse-image")
    missing_layer = next(d for d, c in data.blobs.items() if c[:2] == b"\x1f\x8b")
    for digest, content in data.blobs.items():
        if digest != missing_layer:
            push_post_put(client, repo, Blob(content))
    _, payload, _ = data.manifests[0]
    response = put_manifest(client, repo, "sparse-image", payload)
    assert response.status_code in (201, 400), response.text
    if response.status_code == 400:
        assert "MANIFEST_BLOB_UNKNOWN" in [e["code"] for e in response.json()["errors"]]
    random_child = {"mediaType": OCI_MANIFEST, "digest": digest_of(os.urandom(1024)), "size": 1024}
    index = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_INDEX,
            "manifests": [{**image, "platform": AMD64}, {**random_child, "platform": ARM64}],
        }
    ).encode()
    response = put_manifest(client, repo, "sparse-index", index, OCI_INDEX)
    assert response.status_code in (201, 400), response.text
    if response.status_code == 400:
        assert "MANIFEST_BLOB_UNKNOWN" in [e["code"] for e in response.json()["errors"]]


def test_artifact_with_unknown_config_and_layer_media_types_is_accepted(client: TestClient, repo: str) -> None:
    """Artifacts (data set "Artifact", and the workflow suite's references setup): a manifest whose config and layer
    descriptors carry media types the registry has never heard of is stored and served as pushed."""
    data = DataSet()
    config = data.add_blob(b'{"made": "up"}', "application/vnd.example.never-registered.config+json")
    layer = data.add_blob(os.urandom(300), "application/vnd.example.never-registered.layer")
    data.manifest(
        {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": config, "layers": [layer]}, tag="unknown-types"
    )
    push_data_set(client, repo, data)
    check_data_set_listed_and_pulled(client, repo, data)


def test_blob_push_with_sha512_digest_is_accepted(client: TestClient, repo: str) -> None:
    """blobs (sha512): the runner repeats every blob API with sha512 digests (Data.Sha512, default on): a post+put
    with `digest=sha512:<hex>` answers 201 and the blob pulls back under that digest."""
    data = os.urandom(512)
    digest = "sha512:" + hashlib.sha512(data).hexdigest()
    started = client.post(blob_base(repo))
    response = client.put(
        with_query(resolve_location(started), digest=digest), content=data, headers={"Content-Type": OCTET}
    )
    assert response.status_code == 201, f"{response.status_code} {response.text}"
    got = client.get(f"/v2/{repo}/blobs/{digest}")
    assert (got.status_code, got.content) == (200, data)
