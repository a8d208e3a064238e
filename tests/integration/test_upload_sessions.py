"""Upload sessions outlive a process but not their idle limit; a chunk counts only when it arrived whole."""

from __future__ import annotations

import pytest

from ecrd.app import Registry
from ecrd.errors import BlobUploadInvalid, BlobUploadUnknown, DigestMismatch, RangeNotSatisfiable
from ecrd.services.uploads import UploadService
from tests.support.clock import FakeClock
from tests.support.oci import digest_of


def test_idle_uploads_expire_and_active_ones_stay(registry: Registry) -> None:
    clock = FakeClock()
    uploads = UploadService(registry.store, registry.blobs, registry.uploads.keys, clock=clock)
    repository = registry.registry.create_repository("app")
    idle = uploads.start_upload(repository)
    clock.advance(3600)
    active = uploads.start_upload(repository)
    clock.advance(1800)
    assert uploads.expire_uploads(max_age_seconds=3000) == 1
    with pytest.raises(BlobUploadUnknown):
        uploads.get_upload(repository, idle.id)
    assert uploads.get_upload(repository, active.id).size == 0


def test_upload_continued_by_another_process_hashes_from_disk(registry: Registry) -> None:
    repository = registry.registry.create_repository("app")
    first = UploadService(registry.store, registry.blobs, registry.uploads.keys)
    # Another process: none of the first one's memory.
    second = UploadService(registry.store, registry.blobs, registry.uploads.keys)
    upload = first.start_upload(repository)
    appender = first.begin_append(repository, upload.id, 0)
    appender.write(b"hello ")
    first.finish_append(appender)
    appender = second.begin_append(repository, upload.id, 6)
    appender.write(b"world")
    second.finish_append(appender)
    assert second.complete_upload(repository, upload.id, digest_of(b"hello world")) == 11
    assert registry.registry.blob_size(repository, digest_of(b"hello world")) == 11


def test_aborted_chunk_leaves_the_upload_resumable(registry: Registry) -> None:
    repository = registry.registry.create_repository("app")
    uploads = registry.uploads
    upload = uploads.start_upload(repository)
    appender = uploads.begin_append(repository, upload.id, 0)
    appender.write(b"abc")
    uploads.finish_append(appender)
    broken = uploads.begin_append(repository, upload.id, 3)
    broken.write(b"partial garbage")
    uploads.abort_append(broken)
    assert uploads.get_upload(repository, upload.id).size == 3
    with pytest.raises(RangeNotSatisfiable):
        uploads.begin_append(repository, upload.id, 10)
    resumed = uploads.begin_append(repository, upload.id, 3)
    resumed.write(b"def")
    uploads.finish_append(resumed)
    uploads.complete_upload(repository, upload.id, digest_of(b"abcdef"))


def test_digest_mismatch_discards_the_session(registry: Registry) -> None:
    repository = registry.registry.create_repository("app")
    uploads = registry.uploads
    upload = uploads.start_upload(repository)
    appender = uploads.begin_append(repository, upload.id, 0)
    appender.write(b"abc")
    uploads.finish_append(appender)
    with pytest.raises(DigestMismatch):
        uploads.complete_upload(repository, upload.id, digest_of(b"xyz"))
    with pytest.raises(BlobUploadUnknown):
        uploads.get_upload(repository, upload.id)


def test_a_resumed_chunk_racing_the_broken_request_still_writing_never_mixes_their_bytes(
    registry: Registry,
) -> None:
    """A client that lost its connection may resume while the server still works on the broken request: of
    the two chunks begun at one offset exactly one counts, the other is refused, and the upload holds exactly
    the bytes of the one that counted."""
    repository = registry.registry.create_repository("app")
    uploads = registry.uploads
    upload = uploads.start_upload(repository)
    broken = uploads.begin_append(repository, upload.id, 0)
    broken.write(b"a" * 100)
    resumed = another_process_uploads(registry).begin_append(repository, upload.id, None)
    resumed.write(b"b" * 50)
    assert uploads.finish_append(broken).size == 100
    with pytest.raises(BlobUploadInvalid, match="another request"):
        uploads.finish_append(resumed)
    assert uploads.get_upload(repository, upload.id).size == 100
    # the client asks where the upload stands and goes on from there
    again = uploads.begin_append(repository, upload.id, 100)
    again.write(b"b" * 50)
    uploads.finish_append(again)
    uploads.complete_upload(repository, upload.id, digest_of(b"a" * 100 + b"b" * 50))


def test_a_writer_that_never_finishes_blocks_no_one_and_is_refused_when_it_does(registry: Registry) -> None:
    repository = registry.registry.create_repository("app")
    uploads = registry.uploads
    upload = uploads.start_upload(repository)
    stuck = uploads.begin_append(repository, upload.id, 0)
    stuck.write(b"s" * 10)
    other = another_process_uploads(registry)
    moving = other.begin_append(repository, upload.id, 0)
    moving.write(b"m" * 20)
    other.finish_append(moving)
    with pytest.raises(BlobUploadInvalid):
        uploads.finish_append(stuck)
    assert other.complete_upload(repository, upload.id, digest_of(b"m" * 20)) == 20


def test_a_chunk_counted_by_another_request_first_is_not_refused(registry: Registry) -> None:
    """A chunk stored but not yet recorded is found and counted by the next request; its own request then
    learns it counted rather than being told it failed."""
    repository = registry.registry.create_repository("app")
    uploads = registry.uploads
    upload = uploads.start_upload(repository)
    slow = uploads.begin_append(repository, upload.id, 0)
    slow.write(b"hello")
    size = slow.writer.seal()  # stored; its request has not recorded it yet
    slow.writer.seal = lambda: size  # type: ignore[method-assign]
    assert another_process_uploads(registry).get_upload(repository, upload.id).size == 0
    status = another_process_uploads(registry).begin_append(repository, upload.id, None)
    assert status.upload.size == 5
    status.writer.abort()
    assert uploads.finish_append(slow).size == 5
    uploads.complete_upload(repository, upload.id, digest_of(b"hello"))


def another_process_uploads(registry: Registry) -> UploadService:
    return UploadService(registry.store, registry.blobs, registry.uploads.keys)
