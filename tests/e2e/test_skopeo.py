"""skopeo against the registry, and large blobs: OCI layouts both ways byte for byte, multi-arch indexes,
inspect, list-tags, delete, and 1 GiB layers pushed by skopeo and by raw 16 MiB chunked PATCHes."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from tests.support.clients import OciHttp, Skopeo, ToolFailed, describe_response, parse_range
from tests.support.images import (
    OCI_INDEX,
    OCI_MANIFEST,
    GiB,
    MiB,
    build_image,
    build_index,
    deterministic_chunks,
    read_layout_blobs,
    read_layout_index,
    write_large_oci_layout,
    write_oci_layout,
)
from tests.support.registry_process import RegistryUnderTest

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

LAYER_SIZES = (1 * MiB, 256 * 1024, 1024)
CHUNK = 16 * MiB


def test_oci_layout_copied_to_the_registry_and_back_is_identical_byte_for_byte(
    skopeo: Skopeo, registry: RegistryUnderTest, repository: str, tmp_path: Path, image_seed: int
) -> None:
    # given an OCI layout holding a three-layer image
    image = build_image(LAYER_SIZES, seed=image_seed)
    source, returned = tmp_path / "source", tmp_path / "returned"
    write_oci_layout(source, image, tag="v1")

    # when skopeo copies it to the registry and from there into a new layout
    remote = f"docker://{registry.reference(repository, 'v1')}"
    skopeo.copy(f"oci:{source}:v1", remote)
    skopeo.copy(remote, f"oci:{returned}:v1")

    # then the manifest, config and every layer come back unchanged, under the same digests
    assert read_layout_blobs(returned) == read_layout_blobs(source) == image.blobs()
    [entry] = read_layout_index(returned)["manifests"]
    assert (entry["mediaType"], entry["digest"]) == (OCI_MANIFEST, image.manifest_digest)


def test_multi_arch_index_is_copied_with_all_its_platforms(
    skopeo: Skopeo, registry: RegistryUnderTest, repository: str, tmp_path: Path, image_seed: int
) -> None:
    # given an OCI layout whose tag names an index of a linux/amd64 and a linux/arm64 image
    index = build_index(LAYER_SIZES[1:], seed=image_seed)
    source, returned = tmp_path / "source", tmp_path / "returned"
    write_oci_layout(source, index, tag="multi")

    # when skopeo copies it with --all, to the registry and back
    remote = f"docker://{registry.reference(repository, 'multi')}"
    skopeo.copy(f"oci:{source}:multi", remote, all_images=True)
    served = skopeo.inspect(remote, raw=True)
    skopeo.copy(remote, f"oci:{returned}:multi", all_images=True)

    # then the registry serves the index itself, and every platform's blobs come back unchanged
    assert served == json.loads(index.index)
    assert [m["platform"]["architecture"] for m in served["manifests"]] == ["amd64", "arm64"]
    assert read_layout_blobs(returned) == index.blobs()
    [entry] = read_layout_index(returned)["manifests"]
    assert (entry["mediaType"], entry["digest"]) == (OCI_INDEX, index.digest)


def test_inspect_reports_the_manifest_digest_layers_and_config(
    skopeo: Skopeo, registry: RegistryUnderTest, repository: str, tmp_path: Path, image_seed: int
) -> None:
    # given a pushed image
    image = build_image(LAYER_SIZES, seed=image_seed)
    write_oci_layout(tmp_path / "source", image, tag="v1")
    remote = f"docker://{registry.reference(repository, 'v1')}"
    skopeo.copy(f"oci:{tmp_path / 'source'}:v1", remote)

    # when skopeo inspects it
    inspected = skopeo.inspect(remote)

    # then it reports what the registry holds: manifest digest, layers, and fields read from the config
    config = json.loads(image.config)
    assert inspected["Digest"] == image.manifest_digest
    assert inspected["Layers"] == [layer.digest for layer in image.layers]
    assert inspected["Architecture"] == config["architecture"]
    assert inspected["Os"] == config["os"]
    assert inspected["Labels"] == config["config"]["Labels"]


def test_list_tags_lists_every_pushed_tag(
    skopeo: Skopeo, registry: RegistryUnderTest, repository: str, tmp_path: Path, image_seed: int
) -> None:
    # given one image pushed under three tags
    write_oci_layout(tmp_path / "source", build_image(LAYER_SIZES[2:], seed=image_seed), tag="v1")
    tags = ["1.0", "latest", "v1"]
    for tag in tags:
        skopeo.copy(f"oci:{tmp_path / 'source'}:v1", f"docker://{registry.reference(repository, tag)}")

    # when skopeo lists the repository's tags
    listed = skopeo.list_tags(f"docker://{registry.host}/{repository}")

    # then all three are there, and nothing else
    assert sorted(listed) == tags


def test_delete_by_digest_removes_the_manifest_and_its_tag(
    skopeo: Skopeo, oci: OciHttp, registry: RegistryUnderTest, repository: str, tmp_path: Path, image_seed: int
) -> None:
    # given two different images, tagged "doomed" and "kept"
    doomed, kept = build_image(LAYER_SIZES[2:], seed=image_seed), build_image(LAYER_SIZES[2:], seed=image_seed + 1)
    for tag, image in (("doomed", doomed), ("kept", kept)):
        write_oci_layout(tmp_path / tag, image, tag=tag)
        skopeo.copy(f"oci:{tmp_path / tag}:{tag}", f"docker://{registry.reference(repository, tag)}")

    # when skopeo deletes the first by its digest
    skopeo.delete(f"docker://{registry.reference(repository, doomed.manifest_digest)}")

    # then that manifest and its tag are gone, and the other image is untouched
    gone = oci.get_manifest(repository, doomed.manifest_digest, OCI_MANIFEST)
    assert gone.status_code == 404, describe_response(gone)
    with pytest.raises(ToolFailed, match=r"(?i)manifest unknown"):
        skopeo.inspect(f"docker://{registry.reference(repository, 'doomed')}")
    assert skopeo.list_tags(f"docker://{registry.host}/{repository}") == ["kept"]
    assert skopeo.inspect(f"docker://{registry.reference(repository, 'kept')}")["Digest"] == kept.manifest_digest


@pytest.mark.timeout(600)
def test_a_1_gib_layer_pushed_by_skopeo_is_stored_whole(
    skopeo: Skopeo, oci: OciHttp, registry: RegistryUnderTest, repository: str, tmp_path: Path, image_seed: int
) -> None:
    # given an OCI layout whose single layer is 1 GiB of incompressible data
    layout = tmp_path / "large"
    large = write_large_oci_layout(layout, GiB, seed=image_seed)
    try:
        # when skopeo pushes it (monolithic or chunked, as it likes)
        skopeo.copy(f"oci:{layout}:latest", f"docker://{registry.reference(repository, 'large')}", timeout=540)
    finally:
        for blob in (layout / "blobs" / "sha256").iterdir():
            blob.unlink()

    # then the registry holds the whole layer under its digest, referenced by the pushed manifest
    head = oci.head_blob(repository, large.layer_digest)
    assert head.status_code == 200, describe_response(head)
    assert int(head.headers["Content-Length"]) == large.layer_size
    assert head.headers["Docker-Content-Digest"] == large.layer_digest
    manifest = oci.get_manifest(repository, "large", OCI_MANIFEST)
    assert manifest.status_code == 200, describe_response(manifest)
    assert manifest.headers["Docker-Content-Digest"] == large.manifest_digest
    assert [layer["digest"] for layer in manifest.json()["layers"]] == [large.layer_digest]


@pytest.mark.timeout(600)
def test_a_1_gib_blob_uploaded_in_16_mib_chunks_reads_back_identical(
    oci: OciHttp, repository: str, image_seed: int
) -> None:
    # given 1 GiB of content, produced 16 MiB at a time (never whole in memory)
    size = GiB
    expected = hashlib.sha256()

    # when it is uploaded as one session of Content-Range PATCHes, then closed with PUT ?digest=
    started = oci.start_upload(repository)
    assert started.status_code == 202, describe_response(started)
    location, offset = started.headers["Location"], 0
    for chunk in deterministic_chunks(size, image_seed, CHUNK):
        expected.update(chunk)
        patched = oci.patch_chunk(location, chunk, offset)
        assert patched.status_code == 202, describe_response(patched)
        offset += len(chunk)
        assert parse_range(patched.headers.get("Range")) == offset
        location = patched.headers["Location"]
    digest = "sha256:" + expected.hexdigest()
    finished = oci.finish_upload(location, digest)
    assert finished.status_code == 201, describe_response(finished)
    assert finished.headers["Docker-Content-Digest"] == digest

    # then HEAD reports the blob's digest and size, and GET streams back the same bytes
    head = oci.head_blob(repository, digest)
    assert head.status_code == 200, describe_response(head)
    assert (head.headers["Docker-Content-Digest"], int(head.headers["Content-Length"])) == (digest, size)
    actual, received = hashlib.sha256(), 0
    with oci.get_blob(repository, digest, stream=True) as response:
        assert response.status_code == 200, describe_response(response)
        for piece in response.iter_content(chunk_size=MiB):
            actual.update(piece)
            received += len(piece)
    assert (received, "sha256:" + actual.hexdigest()) == (size, digest)
