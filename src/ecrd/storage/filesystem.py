"""The filesystem blob driver: each object is a file under the data directory, at its name's path.

Every name is checked against the contract's grammar before it becomes a path, so nothing a client sends can
point outside the data directory. A put writes a temporary file in ``.incoming/`` (handed to the kernel's
writeback every 8 MiB), fsyncs it, renames (or, exclusive, hard-links) it into place and fsyncs the directory:
an object is complete and durable, or absent. A put that need not be durable (an upload's part) skips both
fsyncs: it is still whole or absent for every process, and ``move`` fsyncs it before it becomes a blob.
"""

from __future__ import annotations

import errno
import io
import os
import secrets
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import BinaryIO

from ecrd.storage.driver import (
    ObjectExists,
    ObjectInfo,
    ObjectNotFound,
    ObjectRange,
    ReadStream,
    check_object_name,
    check_prefix,
    concatenate,
)
from ecrd.storage.writeback import WRITEBACK_BYTES, start_writeback

INCOMING = ".incoming"
# How long a temporary file may go unwritten before a starting process removes it as a dead put's.
INCOMING_MAX_AGE_SECONDS = 6 * 3600.0
# A directory emptied by a delete may be removed just as a writer makes it again; the writer then retries.
_PLACE_ATTEMPTS = 5


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_file(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        return  # gone meanwhile: the rename that follows says so
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class _RangeReader(io.RawIOBase):
    """A file read from one offset for at most ``length`` bytes."""

    def __init__(self, fh: BinaryIO, length: int | None) -> None:
        super().__init__()
        self._fh = fh
        self._left = length

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        view = memoryview(buffer).cast("B")
        if self._left is not None:
            view = view[: self._left]
        count = self._fh.readinto(view)  # type: ignore[attr-defined]
        if self._left is not None:
            self._left -= count
        return int(count)

    def close(self) -> None:
        self._fh.close()
        super().close()


class _FileWriter:
    """Writes straight to the file descriptor: callers hand over large pieces (an encrypted record), so a
    buffer in between would only copy them."""

    def __init__(self, driver: FilesystemDriver, name: str, exclusive: bool, durable: bool) -> None:
        self._driver = driver
        self._target = driver.path(name)
        self._exclusive = exclusive
        self._durable = durable
        self._temp = driver.root / INCOMING / f".{secrets.token_hex(12)}"
        self._fd: int | None = os.open(self._temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o666)
        self._size = 0
        self._writeback_from = 0  # where the range not yet handed to the kernel's writeback starts

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if self._fd is None:
            raise ValueError("write to a finished put")
        view = memoryview(data).cast("B")
        while view:
            view = view[os.write(self._fd, view) :]
        self._size += len(data)
        if self._size - self._writeback_from >= WRITEBACK_BYTES:
            start_writeback(self._fd, self._writeback_from, self._size - self._writeback_from)
            self._writeback_from = self._size

    def commit(self) -> int:
        if self._fd is None:
            raise ValueError("commit of a finished put")
        try:
            fd, self._fd = self._fd, None
            try:
                if self._durable:
                    os.fsync(fd)
            finally:
                os.close(fd)
            self._driver.place(self._temp, self._target, exclusive=self._exclusive, durable=self._durable)
        except BaseException:
            self.abort()
            raise
        return self._size

    def abort(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        self._temp.unlink(missing_ok=True)


class FilesystemDriver:
    def __init__(self, root: Path, *, clock: Callable[[], float] = time.time) -> None:
        self.root = root.resolve()
        (self.root / INCOMING).mkdir(parents=True, exist_ok=True)
        self.sweep_incomplete(clock() - INCOMING_MAX_AGE_SECONDS)

    def sweep_incomplete(self, older_than: float) -> int:
        """Remove temporary files that a process killed mid-put left behind. A put in progress writes as its
        body arrives, so a temporary file untouched since ``older_than`` belongs to no living request."""
        removed = 0
        with os.scandir(self.root / INCOMING) as entries:
            for entry in entries:
                try:
                    if entry.is_file(follow_symlinks=False) and entry.stat().st_mtime < older_than:
                        os.unlink(entry.path)
                        removed += 1
                except FileNotFoundError:
                    continue  # finished or swept by another process meanwhile
        return removed

    def compose(self, target: str, pieces: Sequence[ObjectRange]) -> int:
        return concatenate(self, target, pieces)

    def path(self, name: str) -> Path:
        return self.root.joinpath(*check_object_name(name).split("/"))

    def place(self, source: Path, target: Path, *, exclusive: bool, durable: bool = True) -> None:
        """Rename (or, exclusive, hard-link) ``source`` to ``target`` and (``durable``) make the new entry
        durable."""
        for attempt in range(_PLACE_ATTEMPTS):
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                if exclusive:
                    # link() fails when the name exists, where rename() would replace it.
                    os.link(source, target)
                    source.unlink()
                else:
                    os.replace(source, target)
                break
            except FileExistsError:
                raise ObjectExists(f"{target.relative_to(self.root)} exists") from None
            except FileNotFoundError:
                if not source.exists() or attempt == _PLACE_ATTEMPTS - 1:
                    raise
        if durable:
            _fsync_dir(target.parent)

    def put(self, name: str, *, exclusive: bool = False, durable: bool = True) -> _FileWriter:
        return _FileWriter(self, name, exclusive, durable)

    def get(self, name: str, offset: int = 0, length: int | None = None) -> ReadStream:
        path = self.path(name)
        if offset < 0 or (length is not None and length < 0):
            raise ValueError("negative offset or length")
        try:
            fh = path.open("rb", buffering=0)
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            raise ObjectNotFound(name) from None
        try:
            if offset > os.fstat(fh.fileno()).st_size:
                raise ValueError(f"offset {offset} is past the end of {name}")
            fh.seek(offset)
        except BaseException:
            fh.close()
            raise
        return _RangeReader(fh, length)

    def stat(self, name: str) -> ObjectInfo | None:
        return _info(name, self.path(name))

    def delete(self, name: str) -> None:
        path = self.path(name)
        try:
            path.unlink()
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            return
        self._prune(path.parent)

    def _prune(self, directory: Path) -> None:
        """Remove directories a delete left empty, up to the top level (``uploads/<id>/`` goes with its parts)."""
        while directory.parent != self.root and directory != self.root:
            try:
                directory.rmdir()
            except OSError as exc:
                if exc.errno in (errno.ENOTEMPTY, errno.EEXIST, errno.ENOENT):
                    return
                raise
            directory = directory.parent

    def move(self, source: str, target: str) -> None:
        source_path, target_path = self.path(source), self.path(target)
        if not source_path.is_file():
            raise ObjectNotFound(source)
        # The source may have been put without being durable (an upload's part): its bytes reach the disk
        # before its new name does. On a file fsynced already this finds nothing left to write.
        _fsync_file(source_path)
        self.place(source_path, target_path, exclusive=False)
        self._prune(source_path.parent)

    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        check_prefix(prefix)
        # Walk only below the deepest directory the prefix names; a partial last segment filters names.
        directory, _, _ = prefix.rpartition("/")
        start = self.root.joinpath(*directory.split("/")) if directory else self.root
        yield from self._walk(start, directory, prefix)

    def _walk(self, directory: Path, name: str, prefix: str) -> Iterator[ObjectInfo]:
        try:
            with os.scandir(directory) as scan:
                # Temporary files and the incoming directory start with a dot: no objects.
                entries = [(entry, _is_dir(entry)) for entry in scan if not entry.name.startswith(".")]
        except (FileNotFoundError, NotADirectoryError):
            return
        # A directory sorts as its name and "/", so the walk yields names in plain string order (as S3 lists).
        entries.sort(key=lambda item: item[0].name + "/" if item[1] else item[0].name)
        for entry, is_dir in entries:
            child = f"{name}/{entry.name}" if name else entry.name
            if not (child.startswith(prefix) or prefix.startswith(child + "/")):
                continue
            if is_dir:
                yield from self._walk(Path(entry.path), child, prefix)
            elif child.startswith(prefix):
                found = _info(child, Path(entry.path))
                if found is not None:
                    yield found


def _is_dir(entry: os.DirEntry[str]) -> bool:
    try:
        return entry.is_dir(follow_symlinks=False)
    except FileNotFoundError:
        return False


def _info(name: str, path: Path) -> ObjectInfo | None:
    try:
        info = path.stat()
    except (FileNotFoundError, NotADirectoryError):
        return None  # absent, or removed while a listing ran
    if not os.path.isfile(path):
        return None
    # A rename changes ctime, not mtime: a blob moved into place just now from an upload written long ago is new.
    return ObjectInfo(name, info.st_size, max(info.st_mtime, info.st_ctime))
