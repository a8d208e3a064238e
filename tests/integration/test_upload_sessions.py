"""Upload sessions outlive a process but not their idle limit; a chunk counts only when it arrived whole."""

from __future__ import annotations

import pytest

from ecrd.app import Registry
from ecrd.errors import BlobUploadUnknown, DigestMismatch, RangeNotSatisfiable
from ecrd.services.uploads import UploadService
from tests.support.oci import digest_of


class FakeClock:
    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_idle_uploads_expire_and_active_ones_stay(registry: Registry) -> None:
    clock = FakeClock()
    uploads = UploadService(registry.store, registry.driver, registry.uploads.keys, clock=clock)
    repository = registry.registry.create_repository("app")
    idle = uploads.start_upload(repository)
    clock.now += 3600
    active = uploads.start_upload(repository)
    clock.now += 1800
    assert uploads.expire_uploads(max_age_seconds=3000) == 1
    with pytest.raises(BlobUploadUnknown):
        uploads.get_upload(repository, idle.id)
    assert uploads.get_upload(repository, active.id).size == 0


def test_upload_continued_by_another_process_hashes_from_disk(registry: Registry) -> None:
    repository = registry.registry.create_repository("app")
    first = UploadService(registry.store, registry.driver, registry.uploads.keys)
    # Another process: none of the first one's memory.
    second = UploadService(registry.store, registry.driver, registry.uploads.keys)
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


def test_a_resumed_chunk_waits_for_the_broken_request_still_writing(registry: Registry) -> None:
    """A client that lost its connection may resume while the server still works on the broken request:
    the resume must not write over the record that request is rewriting."""
    import threading

    from ecrd.errors import BlobUploadInvalid

    repository = registry.registry.create_repository("app")
    uploads = registry.uploads
    upload = uploads.start_upload(repository)
    first = uploads.begin_append(repository, upload.id, 0)
    first.write(b"a" * 100)
    seen: list[object] = []

    def resume() -> None:
        try:
            appender = uploads.begin_append(repository, upload.id, None)
        except BlobUploadInvalid as exc:
            seen.append(exc)
            return
        seen.append(appender.upload.size)
        appender.write(b"b" * 50)
        uploads.finish_append(appender)

    waiting = threading.Thread(target=resume)
    waiting.start()
    waiting.join(timeout=0.3)
    assert waiting.is_alive()  # blocked on the first writer's lock
    uploads.finish_append(first)
    waiting.join(timeout=30)
    assert seen == [100]  # it saw the first chunk's bytes, and appended after them
    uploads.complete_upload(repository, upload.id, digest_of(b"a" * 100 + b"b" * 50))


def test_a_writer_that_never_finishes_makes_others_give_up_cleanly(registry: Registry) -> None:
    from ecrd.errors import BlobUploadInvalid
    from ecrd.storage.filesystem import FilesystemDriver

    repository = registry.registry.create_repository("app")
    upload = registry.uploads.start_upload(repository)
    stuck = registry.uploads.begin_append(repository, upload.id, 0)
    driver = FilesystemDriver(registry.settings.data_dir)
    with pytest.raises(BlobUploadInvalid, match="another request is still writing"):
        driver.open_upload_file(upload.id, wait_seconds=0.1)
    registry.uploads.abort_append(stuck)
    driver.open_upload_file(upload.id, wait_seconds=0.1).close()
