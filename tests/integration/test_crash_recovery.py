"""What a process killed mid-write leaves behind is settled by the next request: an upload whose last chunk was
made durable but not recorded moves on to it; a chunk torn mid-write never touches what was acknowledged;
a blob whose file was lost is stored again by the next push of it."""

from __future__ import annotations

import pytest

from ecrd.app import Registry
from ecrd.errors import RangeNotSatisfiable
from ecrd.services.uploads import UploadService
from tests.support.oci import digest_of


def another_process(registry: Registry) -> UploadService:
    """An upload service with none of the first one's memory, as after a restart."""
    return UploadService(registry.store, registry.blobs, registry.uploads.keys)


def test_a_chunk_made_durable_but_not_recorded_counts_after_a_crash(registry: Registry) -> None:
    repository = registry.registry.create_repository("app")
    uploads = registry.uploads
    upload = uploads.start_upload(repository)
    appender = uploads.begin_append(repository, upload.id, 0)
    appender.write(b"hello ")
    uploads.finish_append(appender)
    # the process writes the next chunk durably, then dies before recording the upload's new size
    appender = uploads.begin_append(repository, upload.id, 6)
    appender.write(b"world")
    appender.writer.seal()
    restarted = another_process(registry)
    # the client resumes where it was told last: the registry answers 416 with where the upload really ends
    with pytest.raises(RangeNotSatisfiable) as refused:
        restarted.begin_append(repository, upload.id, 6)
    assert refused.value.size == 11
    assert restarted.get_upload(repository, upload.id).size == 11
    assert restarted.complete_upload(repository, upload.id, digest_of(b"hello world")) == 11


def test_a_chunk_torn_by_a_crash_leaves_the_acknowledged_upload_resumable(registry: Registry) -> None:
    repository = registry.registry.create_repository("app")
    uploads = registry.uploads
    upload = uploads.start_upload(repository)
    appender = uploads.begin_append(repository, upload.id, 0)
    appender.write(b"x" * 1000)
    uploads.finish_append(appender)
    # the process dies while writing the next chunk (its bytes half written, never sealed nor aborted)
    torn = uploads.begin_append(repository, upload.id, 1000)
    torn.write(b"y" * (3 * 1024 * 1024))
    restarted = another_process(registry)
    assert restarted.get_upload(repository, upload.id).size == 1000
    resumed = restarted.begin_append(repository, upload.id, 1000)
    resumed.write(b"z" * 10)
    restarted.finish_append(resumed)
    assert restarted.complete_upload(repository, upload.id, digest_of(b"x" * 1000 + b"z" * 10)) == 1010
    torn.writer.abort()  # (what the dead process's temporary bytes were; nothing of them counted)


def test_completing_an_empty_upload_after_a_restart_stores_the_empty_blob(registry: Registry) -> None:
    repository = registry.registry.create_repository("app")
    upload = registry.uploads.start_upload(repository)
    assert another_process(registry).complete_upload(repository, upload.id, digest_of(b"")) == 0
    assert registry.registry.blob_size(repository, digest_of(b"")) == 0


def test_the_empty_blob_is_stored_whole_and_pulls(registry: Registry, client: object) -> None:
    from starlette.testclient import TestClient

    from ecrd.services.fsck import Fsck

    assert isinstance(client, TestClient)
    registry.registry.create_repository("app")
    empty = digest_of(b"")
    assert client.post(f"/v2/app/blobs/uploads/?digest={empty}").status_code == 201
    pulled = client.get(f"/v2/app/blobs/{empty}")
    assert pulled.status_code == 200 and pulled.content == b""
    assert Fsck(registry.store, registry.blobs, registry=registry.registry, verify_digests=True).check().clean


def test_a_job_claimed_by_a_process_that_died_runs_again_without_waiting_for_its_lease(registry: Registry) -> None:
    from ecrd.metadata import jobs as job_queries
    from ecrd.services.jobs import JobRunner

    ran: list[dict[str, object]] = []
    runner = JobRunner(registry.store, {"probe": ran.append}, lease_seconds=3600)
    with registry.store.write() as conn:
        job_queries.enqueue(conn, "probe", {"n": 1}, runner.clock())
        # a process of this machine claimed it, then was killed (no such pid runs)
        assert job_queries.claim(conn, f"{runner.host}:999999999:dead", runner.clock(), 3600) is not None
        job_queries.enqueue(conn, "probe", {"n": 2}, runner.clock())
        # a process of another machine holds one too: only its lease can tell
        assert job_queries.claim(conn, "elsewhere:1:live", runner.clock(), 3600) is not None
    assert runner.drain() == 1
    assert ran == [{"n": 1}]
