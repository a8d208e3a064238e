"""Copying stored objects from one blob driver to another, streaming, without decrypting them.

Blobs are sealed by ecrd before any driver sees them, so an object's bytes are the same in every store: moving
blobs to the archive location, or a registry from the filesystem to an object store, copies bytes as they are.
"""

from __future__ import annotations

from contextlib import closing

from ecrd.storage.driver import BlobDriver

# Bytes per read while copying: large enough for an object store's parts, small enough to stay flat in memory.
COPY_BUFFER = 8 * 1024 * 1024


def copy_object(source: BlobDriver, name: str, target: BlobDriver, *, target_name: str | None = None) -> int:
    """Copy object ``name`` of ``source`` to ``target`` (as ``target_name``, default the same name); the copy
    becomes visible whole, or not at all. Returns its size. ``ObjectNotFound`` when the source is gone."""
    buffer = bytearray(COPY_BUFFER)
    view = memoryview(buffer)
    writer = target.put(target_name or name)
    try:
        with closing(source.get(name)) as stream:
            while filled := stream.readinto(view):
                writer.write(view[:filled])
        return writer.commit()
    except BaseException:
        writer.abort()
        raise
