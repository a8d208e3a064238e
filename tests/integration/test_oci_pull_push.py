"""The /v2/ door in process, on both metadata back ends: pulls, pushes, uploads and their errors."""

from __future__ import annotations

import hashlib
import json
import os

import pytest
import requests
from starlette.testclient import TestClient

from ecrd.app import Registry
from tests.conftest import ROOT_ACCESS_KEY_ID, basic_auth_for
from tests.support.live_server import live_server
from tests.support.oci import (
    DOCKER_MANIFEST,
    OCI_INDEX,
    OCI_MANIFEST,
    Blob,
    config_blob,
    digest_of,
    error_codes,
    image_manifest,
    index_manifest,
    push_blob,
    push_image,
    push_manifest,
    random_blob,
)

REPO = "team/app"


@pytest.fixture
def repo(registry: Registry) -> str:
    registry.registry.create_repository(REPO)
    return REPO


def test_base_endpoint_answers_200_with_api_version_header(client: TestClient) -> None:
    response = client.get("/v2/")
    assert response.status_code == 200
    assert response.headers["Docker-Distribution-API-Version"] == "registry/2.0"


def test_pushed_image_pulls_back_by_tag_and_digest(client: TestClient, repo: str) -> None:
    payload, blobs = push_image(client, repo, "v1")
    digest = digest_of(payload)
    for reference in ("v1", digest):
        response = client.get(f"/v2/{repo}/manifests/{reference}")
        assert response.status_code == 200
        assert response.content == payload
        assert response.headers["Content-Type"] == OCI_MANIFEST
        assert response.headers["Docker-Content-Digest"] == digest
        assert response.headers["Content-Length"] == str(len(payload))
        assert response.headers["ETag"] == f'"{digest}"'
    head = client.head(f"/v2/{repo}/manifests/v1")
    assert head.status_code == 200
    assert head.headers["Docker-Content-Digest"] == digest
    assert head.headers["Content-Length"] == str(len(payload))
    assert head.content == b""
    for blob in blobs:
        got = client.get(f"/v2/{repo}/blobs/{blob.digest}")
        assert got.status_code == 200
        assert got.content == blob.data
        assert got.headers["Docker-Content-Digest"] == blob.digest
        blob_head = client.head(f"/v2/{repo}/blobs/{blob.digest}")
        assert blob_head.status_code == 200
        assert blob_head.headers["Content-Length"] == str(len(blob.data))


def test_push_to_missing_repository_answers_name_unknown(client: TestClient) -> None:
    response = client.post("/v2/missing/repo/blobs/uploads/")
    assert response.status_code == 404
    assert error_codes(response) == ["NAME_UNKNOWN"]
    assert "does not exist in the registry with id '000000000000'" in response.json()["errors"][0]["message"]


@pytest.mark.parametrize(
    "name",
    ["UPPER/case", "a", "x" * 257, "%2e%2e", "a/%2e%2e/b", "a//b", "-lead", "trail-", "a/.hidden", "%2Fetc%2Fpasswd"],
)
def test_hostile_repository_names_answer_name_invalid(client: TestClient, name: str) -> None:
    response = client.get(f"/v2/{name}/tags/list")
    assert response.status_code in (400, 404)
    assert response.json()["errors"][0]["code"] in ("NAME_INVALID", "UNSUPPORTED")


def test_percent_encoded_dot_segments_never_reach_storage(client: TestClient, repo: str) -> None:
    response = client.get("/v2/team/%2e%2e/%2e%2e/blobs/sha256:" + "0" * 64)
    assert response.status_code in (400, 404)
    assert response.status_code != 500


def test_unknown_manifest_answers_manifest_unknown(client: TestClient, repo: str) -> None:
    response = client.get(f"/v2/{repo}/manifests/nope")
    assert response.status_code == 404
    assert error_codes(response) == ["MANIFEST_UNKNOWN"]
    assert response.json()["errors"][0]["message"] == "Requested image not found"


def test_blob_of_another_repository_is_invisible(client: TestClient, registry: Registry, repo: str) -> None:
    registry.registry.create_repository("other")
    blob = random_blob()
    push_blob(client, "other", blob)
    response = client.get(f"/v2/{repo}/blobs/{blob.digest}")
    assert response.status_code == 404
    assert error_codes(response) == ["BLOB_UNKNOWN"]


def test_monolithic_post_then_put_upload(client: TestClient, repo: str) -> None:
    blob = random_blob(4096)
    start = client.post(f"/v2/{repo}/blobs/uploads/")
    assert start.status_code == 202
    location = start.headers["Location"]
    assert start.headers["Docker-Upload-UUID"] in location
    done = client.put(
        f"{location}?digest={blob.digest}", content=blob.data, headers={"Content-Type": "application/octet-stream"}
    )
    assert done.status_code == 201
    assert done.headers["Location"] == f"/v2/{repo}/blobs/{blob.digest}"
    assert done.headers["Docker-Content-Digest"] == blob.digest
    assert client.get(f"/v2/{repo}/blobs/{blob.digest}").content == blob.data


def test_chunked_upload_reports_range_and_completes(client: TestClient, repo: str) -> None:
    blob = random_blob(3000)
    location = client.post(f"/v2/{repo}/blobs/uploads/").headers["Location"]
    pieces = [blob.data[:1000], blob.data[1000:2000], blob.data[2000:]]
    offset = 0
    for piece in pieces:
        response = client.patch(
            location,
            content=piece,
            headers={
                "Content-Type": "application/octet-stream",
                "Content-Range": f"{offset}-{offset + len(piece) - 1}",
                "Content-Length": str(len(piece)),
            },
        )
        assert response.status_code == 202, response.text
        offset += len(piece)
        assert response.headers["Range"] == f"0-{offset - 1}"
        location = response.headers["Location"]
        status = client.get(location)
        assert status.status_code == 204
        assert status.headers["Range"] == f"0-{offset - 1}"
    done = client.put(f"{location}?digest={blob.digest}")
    assert done.status_code == 201
    assert client.get(f"/v2/{repo}/blobs/{blob.digest}").content == blob.data


def test_out_of_order_chunk_answers_416_with_current_range(client: TestClient, repo: str) -> None:
    location = client.post(f"/v2/{repo}/blobs/uploads/").headers["Location"]
    first = client.patch(location, content=b"a" * 10, headers={"Content-Range": "0-9"})
    assert first.status_code == 202
    skipped = client.patch(location, content=b"b" * 10, headers={"Content-Range": "20-29"})
    assert skipped.status_code == 416
    assert skipped.headers["Range"] == "0-9"
    assert skipped.headers["Location"].endswith(first.headers["Docker-Upload-UUID"])
    assert error_codes(skipped) == ["BLOB_UPLOAD_INVALID"]


def test_streamed_patch_without_content_range_appends(client: TestClient, repo: str) -> None:
    blob = random_blob(5000)
    location = client.post(f"/v2/{repo}/blobs/uploads/").headers["Location"]
    response = client.patch(location, content=blob.data)
    assert response.status_code == 202
    assert response.headers["Range"] == "0-4999"
    assert client.put(f"{response.headers['Location']}?digest={blob.digest}").status_code == 201


def test_digest_mismatch_is_refused_and_leaves_no_blob(client: TestClient, repo: str) -> None:
    blob = random_blob()
    wrong = digest_of(b"something else")
    response = client.post(f"/v2/{repo}/blobs/uploads/?digest={wrong}", content=blob.data)
    assert response.status_code == 400
    assert error_codes(response) == ["DIGEST_INVALID"]
    assert client.head(f"/v2/{repo}/blobs/{wrong}").status_code == 404
    assert client.head(f"/v2/{repo}/blobs/{blob.digest}").status_code == 404


@pytest.mark.parametrize("digest", ["sha256:short", "md5:" + "0" * 32, "nocolon", "sha256:" + "G" * 64])
def test_malformed_or_unknown_digest_algorithms_are_refused(client: TestClient, repo: str, digest: str) -> None:
    response = client.post(f"/v2/{repo}/blobs/uploads/?digest={digest}", content=b"x")
    assert response.status_code in (400, 405)
    assert error_codes(response)[0] in ("DIGEST_INVALID", "UNSUPPORTED")


def test_unknown_upload_answers_blob_upload_unknown(client: TestClient, repo: str) -> None:
    for upload_id in ("0b6e3e3c-0000-4000-8000-000000000000", "%2e%2e", "not-a-uuid", "ABC"):
        response = client.get(f"/v2/{repo}/blobs/uploads/{upload_id}")
        assert response.status_code == 404
        assert error_codes(response) == ["BLOB_UPLOAD_UNKNOWN"]


def test_cancelled_upload_is_gone(client: TestClient, repo: str) -> None:
    location = client.post(f"/v2/{repo}/blobs/uploads/").headers["Location"]
    assert client.delete(location).status_code == 204
    assert client.get(location).status_code == 404


def test_cross_repository_mount_links_the_blob(client: TestClient, registry: Registry, repo: str) -> None:
    registry.registry.create_repository("source")
    blob = random_blob()
    push_blob(client, "source", blob)
    response = client.post(f"/v2/{repo}/blobs/uploads/?mount={blob.digest}&from=source")
    assert response.status_code == 201
    assert response.headers["Location"] == f"/v2/{repo}/blobs/{blob.digest}"
    assert client.get(f"/v2/{repo}/blobs/{blob.digest}").content == blob.data


def test_mount_of_a_blob_the_source_lacks_starts_an_upload(client: TestClient, registry: Registry, repo: str) -> None:
    registry.registry.create_repository("source")
    response = client.post(f"/v2/{repo}/blobs/uploads/?mount={random_blob().digest}&from=source")
    assert response.status_code == 202
    assert "/blobs/uploads/" in response.headers["Location"]


def test_blob_range_requests(client: TestClient, repo: str) -> None:
    blob = Blob(bytes(range(256)) * 4)
    push_blob(client, repo, blob)
    url = f"/v2/{repo}/blobs/{blob.digest}"
    partial = client.get(url, headers={"Range": "bytes=10-19"})
    assert partial.status_code == 206
    assert partial.content == blob.data[10:20]
    assert partial.headers["Content-Range"] == f"bytes 10-19/{len(blob.data)}"
    suffix = client.get(url, headers={"Range": "bytes=-5"})
    assert suffix.content == blob.data[-5:]
    open_ended = client.get(url, headers={"Range": "bytes=1000-"})
    assert open_ended.content == blob.data[1000:]
    beyond = client.get(url, headers={"Range": "bytes=5000-6000"})
    assert beyond.status_code == 416
    assert beyond.headers["Content-Range"] == f"bytes */{len(blob.data)}"


def test_manifest_referencing_missing_blob_answers_manifest_blob_unknown(client: TestClient, repo: str) -> None:
    config = config_blob()
    push_blob(client, repo, config)
    missing = random_blob()
    response = client.put(
        f"/v2/{repo}/manifests/v1", content=image_manifest(config, [missing]), headers={"Content-Type": OCI_MANIFEST}
    )
    assert response.status_code == 400
    assert error_codes(response) == ["MANIFEST_BLOB_UNKNOWN"]
    assert response.json()["errors"][0]["detail"] == {"digest": missing.digest}


@pytest.mark.parametrize("body", [b"{not json", b"[]", b'{"schemaVersion": 2}', b'{"schemaVersion": 2, "config": 1}'])
def test_malformed_manifests_answer_manifest_invalid(client: TestClient, repo: str, body: bytes) -> None:
    response = client.put(f"/v2/{repo}/manifests/v1", content=body, headers={"Content-Type": OCI_MANIFEST})
    assert response.status_code == 400
    assert error_codes(response) == ["MANIFEST_INVALID"]


def test_schema1_manifest_is_refused_clearly(client: TestClient, repo: str) -> None:
    body = json.dumps({"schemaVersion": 1, "name": repo, "tag": "v1", "fsLayers": []}).encode()
    response = client.put(
        f"/v2/{repo}/manifests/v1",
        content=body,
        headers={"Content-Type": "application/vnd.docker.distribution.manifest.v1+prettyjws"},
    )
    assert response.status_code == 415
    assert "schema 1 is not supported" in response.json()["errors"][0]["message"]


def test_manifest_over_4_mib_is_refused_with_413(client: TestClient, repo: str) -> None:
    body = b'{"schemaVersion":2,"pad":"' + b"x" * (4 * 1024 * 1024) + b'"}'
    response = client.put(f"/v2/{repo}/manifests/v1", content=body, headers={"Content-Type": OCI_MANIFEST})
    assert response.status_code == 413
    assert error_codes(response) == ["SIZE_INVALID"]


def test_media_type_mismatch_between_header_and_body_is_refused(client: TestClient, repo: str) -> None:
    payload, _ = push_image(client, repo, "v1")
    response = client.put(f"/v2/{repo}/manifests/v2", content=payload, headers={"Content-Type": DOCKER_MANIFEST})
    assert response.status_code == 400
    assert error_codes(response) == ["MANIFEST_INVALID"]


def test_push_by_digest_checks_the_digest(client: TestClient, repo: str) -> None:
    payload, _ = push_image(client, repo, "v1")
    assert (
        client.put(
            f"/v2/{repo}/manifests/{digest_of(payload)}", content=payload, headers={"Content-Type": OCI_MANIFEST}
        ).status_code
        == 201
    )
    wrong = client.put(
        f"/v2/{repo}/manifests/{digest_of(b'x')}", content=payload, headers={"Content-Type": OCI_MANIFEST}
    )
    assert wrong.status_code == 400
    assert error_codes(wrong) == ["DIGEST_INVALID"]


def test_invalid_tag_answers_tag_invalid(client: TestClient, repo: str) -> None:
    payload, _ = push_image(client, repo, "v1")
    response = client.put(f"/v2/{repo}/manifests/.bad", content=payload, headers={"Content-Type": OCI_MANIFEST})
    assert response.status_code == 400
    assert error_codes(response) == ["TAG_INVALID"]


def test_multi_architecture_index_requires_its_children(client: TestClient, repo: str) -> None:
    amd, _ = push_image(client, repo, "amd64")
    arm_config = config_blob({"architecture": "arm64"})
    arm_layer = random_blob()
    arm = image_manifest(arm_config, [arm_layer])
    index = index_manifest(
        [(amd, {"os": "linux", "architecture": "amd64"}), (arm, {"os": "linux", "architecture": "arm64"})]
    )
    early = client.put(f"/v2/{repo}/manifests/multi", content=index, headers={"Content-Type": OCI_INDEX})
    assert early.status_code == 400
    assert error_codes(early) == ["MANIFEST_BLOB_UNKNOWN"]
    push_blob(client, repo, arm_config)
    push_blob(client, repo, arm_layer)
    push_manifest(client, repo, digest_of(arm), arm)
    push_manifest(client, repo, "multi", index, OCI_INDEX)
    got = client.get(f"/v2/{repo}/manifests/multi")
    assert got.headers["Content-Type"] == OCI_INDEX
    assert got.content == index
    refused = client.delete(f"/v2/{repo}/manifests/{digest_of(amd)}")
    assert refused.status_code == 409


def test_delete_tag_keeps_manifest_and_delete_digest_removes_it(client: TestClient, repo: str) -> None:
    payload, blobs = push_image(client, repo, "v1")
    digest = digest_of(payload)
    assert client.delete(f"/v2/{repo}/manifests/v1").status_code == 202
    assert client.get(f"/v2/{repo}/manifests/v1").status_code == 404
    assert client.get(f"/v2/{repo}/manifests/{digest}").status_code == 200
    assert client.delete(f"/v2/{repo}/manifests/{digest}").status_code == 202
    assert client.get(f"/v2/{repo}/manifests/{digest}").status_code == 404
    assert client.delete(f"/v2/{repo}/manifests/{digest}").status_code == 404
    assert client.delete(f"/v2/{repo}/blobs/{blobs[1].digest}").status_code == 202
    assert client.get(f"/v2/{repo}/blobs/{blobs[1].digest}").status_code == 404


def test_blob_referenced_by_a_manifest_cannot_be_deleted(client: TestClient, repo: str) -> None:
    _, blobs = push_image(client, repo, "v1")
    response = client.delete(f"/v2/{repo}/blobs/{blobs[1].digest}")
    assert response.status_code == 405
    assert client.get(f"/v2/{repo}/blobs/{blobs[1].digest}").status_code == 200


def test_tags_list_paginates_with_link_header(client: TestClient, repo: str) -> None:
    payload, _ = push_image(client, repo, "t0")
    for i in range(1, 5):
        push_manifest(client, repo, f"t{i}", payload)
    full = client.get(f"/v2/{repo}/tags/list")
    assert full.json() == {"name": repo, "tags": ["t0", "t1", "t2", "t3", "t4"]}
    page = client.get(f"/v2/{repo}/tags/list?n=2")
    assert page.json()["tags"] == ["t0", "t1"]
    assert page.headers["Link"] == f'</v2/{repo}/tags/list?n=2&last=t1>; rel="next"'
    rest = client.get(f"/v2/{repo}/tags/list?n=2&last=t3")
    assert rest.json()["tags"] == ["t4"]
    assert "Link" not in rest.headers
    assert client.get(f"/v2/{repo}/tags/list?n=0").json()["tags"] == []
    assert client.get(f"/v2/{repo}/tags/list?n=abc").status_code == 400


def test_catalog_paginates(client: TestClient, registry: Registry) -> None:
    for name in ("a1", "b2/x", "c3"):
        registry.registry.create_repository(name)
    assert client.get("/v2/_catalog").json() == {"repositories": ["a1", "b2/x", "c3"]}
    page = client.get("/v2/_catalog?n=2")
    assert page.json() == {"repositories": ["a1", "b2/x"]}
    assert page.headers["Link"] == '</v2/_catalog?n=2&last=b2%2Fx>; rel="next"'
    assert client.get("/v2/_catalog?n=2&last=b2/x").json() == {"repositories": ["c3"]}
    # n=0 asks for an empty page, as tags/list answers it: no names and no link to a next page of none
    empty = client.get("/v2/_catalog?n=0")
    assert (empty.status_code, empty.json(), "Link" in empty.headers) == (200, {"repositories": []}, False)


def test_referrers_list_and_filter(client: TestClient, repo: str) -> None:
    subject_payload, _ = push_image(client, repo, "v1")
    subject = {"mediaType": OCI_MANIFEST, "digest": digest_of(subject_payload), "size": len(subject_payload)}
    empty = Blob(b"{}", "application/vnd.oci.empty.v1+json")
    push_blob(client, repo, empty)
    signature = random_blob(64)
    push_blob(client, repo, signature)
    sbom_payload = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "artifactType": "application/spdx+json",
            "config": empty.descriptor(),
            "layers": [signature.descriptor()],
            "subject": subject,
            "annotations": {"org.example": "sbom"},
        }
    ).encode()
    response = push_manifest(client, repo, digest_of(sbom_payload), sbom_payload)
    assert response.headers["OCI-Subject"] == subject["digest"]
    sig_payload = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "artifactType": "application/vnd.dev.cosign",
            "config": empty.descriptor(),
            "layers": [signature.descriptor()],
            "subject": subject,
        }
    ).encode()
    push_manifest(client, repo, digest_of(sig_payload), sig_payload)
    listed = client.get(f"/v2/{repo}/referrers/{subject['digest']}")
    assert listed.status_code == 200
    assert listed.headers["Content-Type"] == OCI_INDEX
    body = listed.json()
    assert body["mediaType"] == OCI_INDEX
    assert {m["artifactType"] for m in body["manifests"]} == {"application/spdx+json", "application/vnd.dev.cosign"}
    sbom = next(m for m in body["manifests"] if m["artifactType"] == "application/spdx+json")
    assert sbom["annotations"] == {"org.example": "sbom"}
    assert sbom["size"] == len(sbom_payload)
    filtered = client.get(f"/v2/{repo}/referrers/{subject['digest']}?artifactType=application/vnd.dev.cosign")
    assert filtered.headers["OCI-Filters-Applied"] == "artifactType"
    assert [m["digest"] for m in filtered.json()["manifests"]] == [digest_of(sig_payload)]
    nothing = client.get(f"/v2/{repo}/referrers/{digest_of(b'nothing')}")
    assert nothing.status_code == 200
    assert nothing.json()["manifests"] == []


def test_unsupported_method_answers_in_oci_shape(client: TestClient, repo: str) -> None:
    response = client.request("POST", f"/v2/{repo}/tags/list")
    assert response.status_code == 405
    assert error_codes(response) == ["UNSUPPORTED"]


def test_immutable_tag_cannot_move_but_same_digest_repush_is_allowed(client: TestClient, registry: Registry) -> None:
    registry.registry.create_repository("locked", image_tag_mutability="IMMUTABLE")
    payload, _ = push_image(client, "locked", "v1")
    push_manifest(client, "locked", "v1", payload)
    other, _ = push_image(client, "locked", "v2")
    response = client.put("/v2/locked/manifests/v1", content=other, headers={"Content-Type": OCI_MANIFEST})
    assert response.status_code == 400
    assert error_codes(response) == ["TAG_INVALID"]
    assert "cannot be overwritten because the tag is immutable" in response.json()["errors"][0]["message"]
    assert client.get("/v2/locked/manifests/v1").content == payload


def test_empty_blob_pushes_and_pulls(client: TestClient, repo: str) -> None:
    blob = Blob(b"")
    push_blob(client, repo, blob)
    response = client.get(f"/v2/{repo}/blobs/{blob.digest}")
    assert response.status_code == 200
    assert response.content == b""


def test_a_blob_of_many_body_messages_pulls_back_whole_through_a_real_server(registry: Registry, repo: str) -> None:
    # Pulls send each 4 MiB message from one buffer the response reuses: whatever the server does with a
    # message must be done when send() returns. Distinct content in every MiB shows any message overwritten.
    data = b"".join(bytes([i]) * 1024 + os.urandom(1024 * 1023) for i in range(11)) + b"tail"
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    with live_server(registry) as url:
        session = requests.Session()
        session.headers["Authorization"] = basic_auth_for(registry, ROOT_ACCESS_KEY_ID)
        assert session.post(f"{url}/v2/{repo}/blobs/uploads/?digest={digest}", data=data).status_code == 201
        with session.get(f"{url}/v2/{repo}/blobs/{digest}", stream=True) as response:
            assert response.status_code == 200
            pulled = hashlib.sha256()
            for piece in response.iter_content(256 * 1024):
                pulled.update(piece)
        assert pulled.hexdigest() == digest.removeprefix("sha256:")
        ranged = session.get(f"{url}/v2/{repo}/blobs/{digest}", headers={"Range": "bytes=4194300-8388620"})
        assert ranged.status_code == 206
        assert ranged.content == data[4194300:8388621]
