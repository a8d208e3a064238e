"""The blob driver contract: the few object operations any store (filesystem now, S3 next) offers, and nothing more.

A driver knows named objects and bytes, never digests, keys, uploads or encryption (``blob_store`` does). Names
are ``/``-separated segments such as ``blobs/sha256/ab/<hex>`` or ``uploads/<id>/<part>``; every driver checks
them with ``check_object_name`` before they reach a path or a request. ``tests/integration/storage/
test_driver_contract.py`` is the executable form of this contract: every driver passes it unchanged.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from contextlib import closing
from dataclasses import dataclass
from typing import Protocol

MAX_NAME_LENGTH = 512
# Segments start with a letter or digit: a leading dot is reserved for a driver's own temporary names, and
# "." or ".." can never appear, so no name walks out of the store.
_SEGMENT = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:=-]{0,254}")


class InvalidObjectName(ValueError):
    """A name outside the contract's grammar (empty, absolute, ``..``, odd characters, too long)."""


class ObjectNotFound(LookupError):
    """The named object does not exist (or no longer does)."""


class ObjectExists(Exception):
    """An exclusive put found the name taken: another writer's object is there, and it was left alone."""


def check_object_name(name: str) -> str:
    if not 0 < len(name) <= MAX_NAME_LENGTH or any(_SEGMENT.fullmatch(part) is None for part in name.split("/")):
        raise InvalidObjectName(f"invalid object name {name[:100]!r}")
    return name


def check_prefix(prefix: str) -> str:
    """A listing prefix: empty, a name, or a name followed by ``/``."""
    if prefix:
        check_object_name(prefix.removesuffix("/"))
    return prefix


@dataclass(frozen=True, slots=True)
class ObjectInfo:
    """One stored object as ``stat`` and ``list`` see it."""

    name: str
    size: int
    modified_at: float
    """When the object last changed, a move included (epoch seconds)."""


@dataclass(frozen=True, slots=True)
class ObjectRange:
    """``length`` bytes of object ``name`` from ``offset``: one piece of a ``compose``."""

    name: str
    offset: int
    length: int


class ReadStream(Protocol):
    """Bytes of one object range, read in order (a file or an HTTP body); closed by whoever opened it."""

    def readinto(self, buffer: bytearray | memoryview) -> int:
        """Fill ``buffer`` as far as the range allows; fewer bytes only at its end, 0 after it."""
        ...

    def close(self) -> None: ...


class ObjectWriter(Protocol):
    """A put in progress. Nothing is visible under the name until ``commit`` returns; then all of it is."""

    def write(self, data: bytes | bytearray | memoryview) -> None: ...

    def commit(self) -> int:
        """Make the written bytes durable and visible under the name, atomically; return the object's size.

        An exclusive put raises ``ObjectExists`` when the name is taken, and leaves that object as it was."""
        ...

    def abort(self) -> None:
        """Forget what was written; nothing becomes visible. Harmless after ``commit`` or a failed one."""
        ...


class BlobDriver(Protocol):
    def put(self, name: str, *, exclusive: bool = False, durable: bool = True) -> ObjectWriter:
        """Begin writing object ``name`` (replacing it on commit, unless ``exclusive``).

        Not ``durable``: the commit makes the object visible, whole, and it survives this process being killed,
        but a power loss may take it away or leave it short or unreadable (where the store can tell the two
        apart, as a local disk can; an object store's puts are always durable). ``move`` makes it durable."""
        ...

    def get(self, name: str, offset: int = 0, length: int | None = None) -> ReadStream:
        """Stream bytes ``offset``..``offset + length`` (to the end when None, clipped at the end) of ``name``.

        ``ObjectNotFound`` when it does not exist; ``ValueError`` when ``offset`` is past its end."""
        ...

    def stat(self, name: str) -> ObjectInfo | None: ...

    def delete(self, name: str) -> None:
        """Remove ``name``; a missing object is not an error (deletes are retried after crashes)."""
        ...

    def move(self, source: str, target: str) -> None:
        """Make ``source``'s bytes object ``target`` (replacing it) and remove ``source``, without copying where
        the store can: ``target`` is whole or unchanged at every moment, and durable when this returns (also when
        ``source`` was put without being durable). ``ObjectNotFound`` without a source."""
        ...

    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        """Every object whose name starts with ``prefix``, in name order. Objects deleted while the listing runs
        may or may not appear; an object present throughout does."""
        ...

    def compose(self, target: str, pieces: Sequence[ObjectRange]) -> int:
        """Make ``target`` (replacing it) the concatenation of ``pieces``, whole or not at all; its size. An
        object store copies server-side what it can (``concatenate`` is the generic way, through this process).
        ``ObjectNotFound`` when a source is missing, ``ValueError`` when a piece reaches past its source's end."""
        ...

    def sweep_incomplete(self, older_than: float) -> int:
        """Discard the unfinished writes of puts begun before the moment ``older_than`` (epoch seconds) — what
        a process killed mid-put left behind; how many. Objects and younger puts are untouched."""
        ...


# Bytes copied per read when pieces pass through this process.
_COPY_BUFFER = 8 * 1024 * 1024


def copy_range(driver: BlobDriver, piece: ObjectRange, writer: ObjectWriter, buffer: bytearray) -> None:
    """Stream one piece into ``writer`` through ``buffer``; ``ValueError`` when the source is shorter."""
    left = piece.length
    view = memoryview(buffer)
    with closing(driver.get(piece.name, piece.offset, piece.length)) as stream:
        while left and (count := stream.readinto(view[: min(left, len(view))])):
            writer.write(view[:count])
            left -= count
    if left:
        raise ValueError(f"{piece.name} ends before byte {piece.offset + piece.length}")


def concatenate(driver: BlobDriver, target: str, pieces: Sequence[ObjectRange]) -> int:
    """``compose`` for a driver with no server-side way: the pieces' bytes pass through this process."""
    check_object_name(target)
    writer = driver.put(target)
    try:
        buffer = bytearray(_COPY_BUFFER)
        for piece in pieces:
            copy_range(driver, piece, writer, buffer)
        return writer.commit()
    except BaseException:
        writer.abort()
        raise
