"""What a power loss may leave of an upload whose chunks were acknowledged but not yet completed (decision
0018): opening a session and appending a chunk commit without waiting for the disk, and a chunk's part is not
fsynced, so after a power loss the session may be gone, and a part gone, cut short, or holding bytes that never
reached the disk. None of that may ever be completed into a blob or served: the upload answers
BLOB_UPLOAD_UNKNOWN and the client starts again. A completed blob is made durable before it is acknowledged.

Each test acknowledges chunks, then does to the stored state what the power loss may have done, then goes on as
a restarted registry would (an upload service with none of the first one's memory)."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from ecrd.app import Registry
from ecrd.errors import BlobUnknown, BlobUploadUnknown
from ecrd.metadata import blobs as blob_queries
from ecrd.services.fsck import Fsck
from ecrd.services.uploads import UploadService
from tests.support.oci import digest_of

MiB = 1024 * 1024
CHUNKS = [os.urandom(MiB + 1000), os.urandom(2 * MiB + 17)]  # records of both kinds, two parts


def restarted(registry: Registry) -> UploadService:
    """An upload service with none of the first one's memory (its running hashes), as after a restart."""
    return UploadService(registry.store, registry.blobs, registry.uploads.keys)


def acknowledged_upload(client: TestClient) -> str:
    """POST and one PATCH per chunk, every one acknowledged (202); the upload's id."""
    started = client.post("/v2/app/blobs/uploads/")
    assert started.status_code == 202
    location, start = started.headers["Location"], 0
    for chunk in CHUNKS:
        end = start + len(chunk) - 1
        patched = client.patch(location, content=chunk, headers={"Content-Range": f"{start}-{end}"})
        assert patched.status_code == 202
        location, start = patched.headers["Location"], end + 1
    return str(started.headers["Docker-Upload-UUID"])


def parts(registry: Registry, upload_id: str) -> list[Path]:
    found = sorted((registry.settings.data_dir / "uploads" / upload_id).iterdir())
    assert len(found) == len(CHUNKS)
    return found


def cut_short(path: Path) -> None:
    os.truncate(path, path.stat().st_size // 2)


def never_written(path: Path) -> None:
    # The name and size reached the disk but the bytes did not: the file reads back as zeros.
    path.write_bytes(bytes(path.stat().st_size))


def emptied(path: Path) -> None:
    os.truncate(path, 0)


def gone(path: Path) -> None:
    path.unlink()


LOSSES: dict[str, Callable[[Path], None]] = {
    "cut short": cut_short,
    "never written": never_written,
    "emptied": emptied,
    "gone": gone,
}


def assert_nothing_served(registry: Registry, client: TestClient) -> None:
    content = b"".join(CHUNKS)
    assert client.get(f"/v2/app/blobs/{digest_of(content)}").status_code == 404
    repository = registry.registry.get_repository("app")
    with pytest.raises(BlobUnknown):
        registry.registry.blob_size(repository, digest_of(content))


def assert_pushed_again(client: TestClient) -> None:
    """The client starts the upload again, and that one completes and pulls whole."""
    content = b"".join(CHUNKS)
    location = client.post("/v2/app/blobs/uploads/").headers["Location"]
    separator = "&" if "?" in location else "?"
    put = client.put(f"{location}{separator}digest={digest_of(content)}", content=content)
    assert put.status_code == 201
    pulled = client.get(f"/v2/app/blobs/{digest_of(content)}")
    assert pulled.status_code == 200 and pulled.content == content


@pytest.mark.parametrize("which", ["first", "last"])
@pytest.mark.parametrize("loss", list(LOSSES))
def test_a_part_lost_to_a_power_loss_is_never_completed_into_a_blob(
    registry: Registry, client: TestClient, loss: str, which: str
) -> None:
    registry.registry.create_repository("app")
    upload_id = acknowledged_upload(client)
    part = parts(registry, upload_id)[0 if which == "first" else -1]
    LOSSES[loss](part)
    uploads = restarted(registry)
    repository = registry.registry.get_repository("app")

    with pytest.raises(BlobUploadUnknown):
        uploads.complete_upload(repository, upload_id, digest_of(b"".join(CHUNKS)))

    assert_nothing_served(registry, client)
    assert Fsck(registry.store, registry.blobs, registry=registry.registry, grace_seconds=0).check().clean
    assert_pushed_again(client)


@pytest.mark.parametrize("loss", list(LOSSES))
def test_resuming_after_the_last_part_was_lost_answers_upload_unknown_never_a_server_error(
    registry: Registry, client: TestClient, loss: str
) -> None:
    registry.registry.create_repository("app")
    upload_id = acknowledged_upload(client)
    LOSSES[loss](parts(registry, upload_id)[-1])
    uploads = restarted(registry)
    repository = registry.registry.get_repository("app")

    with pytest.raises(BlobUploadUnknown):
        appender = uploads.begin_append(repository, upload_id, sum(map(len, CHUNKS)))
        appender.write(b"more")
        uploads.finish_append(appender)
        uploads.complete_upload(repository, upload_id, digest_of(b"".join([*CHUNKS, b"more"])))

    assert_nothing_served(registry, client)
    assert_pushed_again(client)


def test_a_session_whose_commit_was_lost_answers_upload_unknown_and_its_parts_are_leftovers(
    registry: Registry, client: TestClient
) -> None:
    registry.registry.create_repository("app")
    upload_id = acknowledged_upload(client)
    # the session's row was committed without a flush and did not reach the disk; its parts did
    with registry.store.write() as conn:
        blob_queries.delete_upload(conn, upload_id)

    completed = client.put(f"/v2/app/blobs/uploads/{upload_id}?digest={digest_of(b''.join(CHUNKS))}")

    assert completed.status_code == 404
    assert completed.json()["errors"][0]["code"] == "BLOB_UPLOAD_UNKNOWN"
    assert_nothing_served(registry, client)
    report = Fsck(registry.store, registry.blobs, registry=registry.registry, grace_seconds=0).check()
    assert {finding.problem.value for finding in report.findings} == {"orphan-upload-file"}
    assert_pushed_again(client)
