"""OCI artifacts through the oras SDK — push, pull, referrers — and an upload resumed after a dropped connection.

The resumed upload is raw HTTP like the referrers listing: it is the chunked-upload protocol oras (and
every other client) relies on, exercised where a client library would hide the failure.
"""

from __future__ import annotations

import hashlib
import time
from pathlib import Path
from typing import Any

import oras.oci
import pytest

from tests.support.clients import OciHttp, describe_response, parse_range
from tests.support.images import (
    OCI_EMPTY,
    OCI_INDEX,
    OCI_MANIFEST,
    MiB,
    canonical_json,
    deterministic_bytes,
    sha256_digest,
)
from tests.support.registry_process import RegistryUnderTest

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]

ARTIFACT_TYPE = "application/vnd.ecrd.e2e.bundle.v1+json"
FILE_MEDIA_TYPE = "application/vnd.ecrd.e2e.payload.v1"
SIGNATURE_TYPE = "application/vnd.ecrd.e2e.signature.v1+json"
SBOM_TYPE = "application/vnd.ecrd.e2e.sbom.v1+json"
EMPTY_CONFIG = b"{}"


def write_file(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def push_artifact(
    oras_client: Any, target: str, payload: Path, config: Path, artifact_type: str, **options: Any
) -> None:
    """``oras push`` of one file; the SDK conveys the artifact type as the config's media type."""
    response = oras_client.push(
        target=target,
        files=[f"{payload}:{FILE_MEDIA_TYPE}"],
        manifest_config=f"{config}:{artifact_type}",
        disable_path_validation=True,
        quiet=True,
        **options,
    )
    assert response.status_code == 201, describe_response(response)


def subject_of(oci: OciHttp, repository: str, reference: str) -> oras.oci.Subject:
    """The descriptor of a stored manifest, from the bytes the registry serves (not re-serialized JSON)."""
    response = oci.get_manifest(repository, reference, OCI_MANIFEST)
    assert response.status_code == 200, describe_response(response)
    return oras.oci.Subject(mediaType=OCI_MANIFEST, digest=sha256_digest(response.content), size=len(response.content))


def test_artifact_with_a_custom_type_pulls_back_with_its_file_and_types(
    oras_client: Any, oci: OciHttp, registry: RegistryUnderTest, repository: str, tmp_path: Path
) -> None:
    # given a file pushed as an artifact of a custom type
    payload = write_file(tmp_path / "in" / "bundle.bin", deterministic_bytes(300 * 1024, 11))
    config = write_file(tmp_path / "config.json", EMPTY_CONFIG)
    target = f"{registry.host}/{repository}:bundle"
    push_artifact(oras_client, target, payload, config, ARTIFACT_TYPE, manifest_annotations={"ecrd.e2e": "yes"})

    # when it is pulled into an empty directory
    pulled = oras_client.pull(target=target, outdir=str(tmp_path / "out"))

    # then the same file comes back, and the manifest keeps the artifact and file media types
    assert [Path(path).name for path in pulled] == ["bundle.bin"]
    assert Path(pulled[0]).read_bytes() == payload.read_bytes()
    manifest = oras_client.get_manifest(target)
    assert manifest["config"]["mediaType"] == ARTIFACT_TYPE
    assert [layer["mediaType"] for layer in manifest["layers"]] == [FILE_MEDIA_TYPE]
    assert manifest["annotations"] == {"ecrd.e2e": "yes"}
    assert "bundle" in oras_client.get_tags(target)


def test_artifact_pushed_in_chunks_pulls_back_whole(
    oras_client: Any, registry: RegistryUnderTest, repository: str, tmp_path: Path
) -> None:
    # given a 40 MiB file
    payload = write_file(tmp_path / "in" / "big.bin", deterministic_bytes(40 * MiB, 12))
    config = write_file(tmp_path / "config.json", EMPTY_CONFIG)
    target = f"{registry.host}/{repository}:chunked"

    # when oras uploads it as POST, 16 MiB Content-Range PATCHes and a closing PUT
    push_artifact(oras_client, target, payload, config, ARTIFACT_TYPE, do_chunked=True, chunk_size=16 * MiB)

    # then it pulls back byte for byte
    [pulled] = oras_client.pull(target=target, outdir=str(tmp_path / "out"))
    assert hashlib.sha256(Path(pulled).read_bytes()).digest() == hashlib.sha256(payload.read_bytes()).digest()


@pytest.mark.usefixtures("needs_referrers")
def test_referrers_lists_the_artifacts_attached_to_a_manifest_and_filters_by_type(
    oras_client: Any, oci: OciHttp, registry: RegistryUnderTest, repository: str, tmp_path: Path
) -> None:
    # given an artifact, and two referrers attached to it: a signature pushed by oras (its type carried by
    # the config media type) and an SBOM pushed as raw OCI 1.1 (an explicit artifactType, empty config)
    config = write_file(tmp_path / "config.json", EMPTY_CONFIG)
    push_artifact(
        oras_client,
        f"{registry.host}/{repository}:subject",
        write_file(tmp_path / "in" / "subject.bin", b"the subject"),
        config,
        ARTIFACT_TYPE,
    )
    subject = subject_of(oci, repository, "subject")
    push_artifact(
        oras_client,
        f"{registry.host}/{repository}:signature",
        write_file(tmp_path / "in" / "signature.bin", b"a signature"),
        config,
        SIGNATURE_TYPE,
        subject=subject,
    )
    signature = subject_of(oci, repository, "signature")

    sbom_blob = b'{"sbom": true}'
    oci.push_blob(repository, EMPTY_CONFIG, sha256_digest(EMPTY_CONFIG))
    oci.push_blob(repository, sbom_blob, sha256_digest(sbom_blob))
    sbom_manifest = canonical_json(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "artifactType": SBOM_TYPE,
            "config": {"mediaType": OCI_EMPTY, "digest": sha256_digest(EMPTY_CONFIG), "size": len(EMPTY_CONFIG)},
            "layers": [{"mediaType": "application/json", "digest": sha256_digest(sbom_blob), "size": len(sbom_blob)}],
            "subject": {"mediaType": subject.mediaType, "digest": subject.digest, "size": subject.size},
            "annotations": {"org.opencontainers.image.created": "2024-01-01T00:00:00Z"},
        }
    )
    sbom_digest = sha256_digest(sbom_manifest)
    stored = oci.put_manifest(repository, sbom_digest, sbom_manifest, OCI_MANIFEST)
    assert stored.status_code == 201, describe_response(stored)
    # OCI distribution 1.1: a registry that processes `subject` answers the PUT with `OCI-Subject: <digest>`.
    assert stored.headers.get("OCI-Subject") == subject.digest

    # when the referrers of the subject are listed, unfiltered and filtered by the SBOM's type
    listed = oci.referrers(repository, subject.digest)
    filtered = oci.referrers(repository, subject.digest, artifact_type=SBOM_TYPE)

    # then both referrers are listed as an image index, each with its artifact type; the filter keeps one
    assert listed.status_code == 200, describe_response(listed)
    assert listed.headers["Content-Type"].startswith(OCI_INDEX)
    index = listed.json()
    assert (index["schemaVersion"], index["mediaType"]) == (2, OCI_INDEX)
    essentials = ("mediaType", "digest", "size", "artifactType")
    by_digest = {d["digest"]: {key: d.get(key) for key in essentials} for d in index["manifests"]}
    assert by_digest == {
        signature.digest: {
            "mediaType": OCI_MANIFEST,
            "digest": signature.digest,
            "size": signature.size,
            "artifactType": SIGNATURE_TYPE,
        },
        sbom_digest: {
            "mediaType": OCI_MANIFEST,
            "digest": sbom_digest,
            "size": len(sbom_manifest),
            "artifactType": SBOM_TYPE,
        },
    }
    # "The descriptors MUST include annotations from the image manifest." (OCI distribution 1.1)
    sbom_listed = next(d for d in index["manifests"] if d["digest"] == sbom_digest)
    assert sbom_listed["annotations"] == {"org.opencontainers.image.created": "2024-01-01T00:00:00Z"}
    assert filtered.status_code == 200, describe_response(filtered)
    assert filtered.headers.get("OCI-Filters-Applied") == "artifactType"
    assert [descriptor["digest"] for descriptor in filtered.json()["manifests"]] == [sbom_digest]


@pytest.mark.usefixtures("needs_referrers")
def test_referrers_of_a_manifest_nobody_refers_to_is_an_empty_index(oci: OciHttp, repository: str) -> None:
    # given a digest that no manifest in the repository names as its subject
    lonely = sha256_digest(b"nothing refers to this")

    # when its referrers are listed
    listed = oci.referrers(repository, lonely)

    # then the answer is an empty image index, not an error (OCI distribution 1.1, "Listing Referrers")
    assert listed.status_code == 200, describe_response(listed)
    assert listed.json() == {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": []}


RESUME_DEADLINE = 30.0
RESUME_POLL = 0.05


def test_upload_interrupted_mid_patch_resumes_from_the_range_the_registry_reports(
    oci: OciHttp, registry: RegistryUnderTest, repository: str
) -> None:
    if registry.kind == "distribution":
        pytest.skip(
            "distribution 2.8 keeps the bytes of a dropped PATCH but not its offset, and then answers "
            "BLOB_UPLOAD_INVALID for that upload"
        )
    # given an upload session holding a first, acknowledged 4 MiB chunk
    data = deterministic_bytes(12 * MiB, 21)
    digest = sha256_digest(data)
    first, second = 4 * MiB, 4 * MiB
    started = oci.start_upload(repository)
    assert started.status_code == 202, describe_response(started)
    patched = oci.patch_chunk(started.headers["Location"], data[:first], 0)
    assert patched.status_code == 202, describe_response(patched)
    assert parse_range(patched.headers.get("Range")) == first
    location = patched.headers["Location"]

    # when the next PATCH loses its connection halfway through its body
    sent = second // 2
    oci.send_truncated_patch(location, data[first : first + second], first, sent=sent)

    # then the upload's status says how much the registry kept — all of the first chunk, at most what
    # arrived of the second — and the client resumes from exactly there. The server may notice the drop
    # only after our GET; a PATCH from a stale offset is then refused (416) and we ask again.
    deadline = time.monotonic() + RESUME_DEADLINE
    while True:
        status = oci.upload_status(location)
        assert status.status_code == 204, describe_response(status)
        kept = parse_range(status.headers.get("Range"))
        assert first <= kept <= first + sent, f"registry reports {kept} bytes after {first} + {sent} arrived"
        location = status.headers.get("Location", location)
        resumed = oci.patch_chunk(location, data[kept:], kept)
        if resumed.status_code == 202:
            break
        assert resumed.status_code == 416, describe_response(resumed)
        assert time.monotonic() < deadline, f"upload never resumed within {RESUME_DEADLINE:.0f} s"
        time.sleep(RESUME_POLL)  # a poll interval under the deadline above, not a wait for a guessed time
    assert parse_range(resumed.headers.get("Range")) == len(data)

    finished = oci.finish_upload(resumed.headers["Location"], digest)
    assert finished.status_code == 201, describe_response(finished)
    assert finished.headers["Docker-Content-Digest"] == digest
    stored = oci.get_blob(repository, digest)
    assert stored.status_code == 200, describe_response(stored)
    assert sha256_digest(stored.content) == digest
