"""Reading image layers: decompression chosen by magic bytes, tar members streamed one by one, OCI/AUFS whiteouts
applied in layer order, and only the files a caller asks for kept, each bounded in size.

A layer is never held in memory: each blob is read once, front to back, through a streaming decompressor and
tarfile's stream mode. Kept files up to ``SPILL_THRESHOLD`` bytes stay in memory; larger ones (an rpmdb) are
copied to a scratch folder the caller owns.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import posixpath
import shutil
import tarfile
import zlib
from collections.abc import Callable, Iterable
from contextlib import ExitStack
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import BinaryIO, Final, cast

import zstandard

from ecrd.errors import LayerUnreadable

GZIP_MAGIC: Final = b"\x1f\x8b"
ZSTD_MAGIC: Final = b"\x28\xb5\x2f\xfd"
# A zstd stream may open with a skippable frame (magic 0x184D2A50..0x184D2A5F, little-endian), as zstd:chunked
# layers do for their metadata; the decompressor steps over such frames itself.
_ZSTD_SKIPPABLE_TAIL: Final = b"\x2a\x4d\x18"
# Docker once accepted these; the OCI image spec does not, so a layer in them is refused with a clear reason.
_XZ_MAGIC: Final = b"\xfd7zXZ\x00"
_BZIP2_MAGIC: Final = b"BZh"

# The OCI image spec, "Whiteouts": a file named ".wh.<name>" deletes <name> from the layers below; the file
# ".wh..wh..opq" in a directory makes that directory opaque (hides everything below it from lower layers). Other
# ".wh..wh." names are AUFS bookkeeping (".wh..wh.plnk", ".wh..wh.aufs") and carry no meaning for the image.
WHITEOUT_PREFIX: Final = ".wh."
OPAQUE_WHITEOUT: Final = ".wh..wh..opq"
_AUFS_META_PREFIX: Final = ".wh..wh."

SPILL_THRESHOLD: Final = 1024 * 1024
_MAX_SYMLINK_HOPS: Final = 8
_COPY_CHUNK: Final = 1024 * 1024

WantedSize = Callable[[str], int | None]
"""Given a normalized path (``etc/os-release``), the most bytes to keep of it, or None when it is not wanted."""

LayerOpener = Callable[[], BinaryIO]


class Compression(StrEnum):
    GZIP = "gzip"
    ZSTD = "zstd"
    NONE = "none"


def detect_compression(prefix: bytes) -> Compression:
    """The compression of a blob from its first bytes. The media type cannot be trusted to say: docker's
    schema 2 has no zstd layer type, so zstd layers get pushed under the gzip one, and the bytes decide."""
    if prefix.startswith(GZIP_MAGIC):
        return Compression.GZIP
    if prefix.startswith(ZSTD_MAGIC) or (
        len(prefix) >= 4 and 0x50 <= prefix[0] <= 0x5F and prefix[1:4] == _ZSTD_SKIPPABLE_TAIL
    ):
        return Compression.ZSTD
    if prefix.startswith(_XZ_MAGIC):
        raise LayerUnreadable("the layer is xz-compressed, which the OCI image spec does not allow")
    if prefix.startswith(_BZIP2_MAGIC):
        raise LayerUnreadable("the layer is bzip2-compressed, which the OCI image spec does not allow")
    return Compression.NONE


class _PrefixedReader(io.RawIOBase):
    """The bytes already read to sniff the compression, then the rest of the stream."""

    def __init__(self, prefix: bytes, rest: BinaryIO) -> None:
        self._prefix = prefix
        self._rest = rest

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        if self._prefix:
            n = min(len(buffer), len(self._prefix))
            buffer[:n] = self._prefix[:n]
            self._prefix = self._prefix[n:]
            return n
        data = self._rest.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


def decompressed(blob: BinaryIO) -> BinaryIO:
    """A stream of the tar bytes of a layer blob as stored (gzip, zstd or uncompressed)."""
    prefix = _read_up_to(blob, 8)
    compression = detect_compression(prefix)
    raw = io.BufferedReader(_PrefixedReader(prefix, blob), buffer_size=256 * 1024)
    if compression is Compression.GZIP:
        # GzipFile reads every member of a multi-member stream, as `gzip -d` and the registry clients do.
        return cast(BinaryIO, gzip.GzipFile(fileobj=raw, mode="rb"))
    if compression is Compression.ZSTD:
        # A zstd layer may be several frames (zstd:chunked writes one per chunk); read them all.
        return zstandard.ZstdDecompressor().stream_reader(raw, read_across_frames=True, closefd=False)
    return raw


def _read_up_to(stream: BinaryIO, n: int) -> bytes:
    chunks = b""
    while len(chunks) < n:
        data = stream.read(n - len(chunks))
        if not data:
            break
        chunks += data
    return chunks


def normalize_member_path(name: str) -> str | None:
    """``./usr/lib/../lib/x`` → ``usr/lib/x``; None for the root itself or a path that climbs out of it."""
    path = posixpath.normpath(name.lstrip("/"))
    # A member that climbs out of the root is one container runtimes refuse to extract: it is in no image.
    if path in (".", "..") or path.startswith("../"):
        return None
    return path


@dataclass(frozen=True)
class KeptFile:
    """A file kept from some layer: its bytes in memory, or the scratch file they were copied to."""

    path: str
    layer: int
    size: int
    data: bytes | None = None
    spilled: Path | None = None

    def read_bytes(self) -> bytes:
        if self.data is not None:
            return self.data
        assert self.spilled is not None
        return self.spilled.read_bytes()

    def local_path(self, scratch: Path) -> Path:
        """A path on disk holding the bytes (for readers such as sqlite3 that want a file)."""
        if self.spilled is not None:
            return self.spilled
        target = scratch / f"kept-{self.layer}-{hashlib.sha256(self.path.encode()).hexdigest()[:16]}"
        target.write_bytes(self.read_bytes())
        return target


@dataclass(frozen=True)
class _Symlink:
    path: str
    layer: int
    target: str


@dataclass
class ImageFiles:
    """The wanted files of the image as its layers stack up: what a container would see at those paths."""

    files: dict[str, KeptFile] = field(default_factory=dict)
    symlinks: dict[str, _Symlink] = field(default_factory=dict)
    # Wanted files left out because they were larger than their bound (path, size), for the scan's notes.
    oversized: list[tuple[str, int]] = field(default_factory=list)
    layers_read: int = 0

    def get(self, path: str) -> KeptFile | None:
        """The file at ``path``, following symlinks among the kept paths (``etc/os-release`` is usually a link
        to ``../usr/lib/os-release``)."""
        for _ in range(_MAX_SYMLINK_HOPS):
            kept = self.files.get(path)
            if kept is not None:
                return kept
            link = self.symlinks.get(path)
            if link is None:
                return None
            base = "/" if link.target.startswith("/") else posixpath.dirname("/" + path)
            resolved = normalize_member_path(posixpath.join(base, link.target))
            if resolved is None:
                return None
            path = resolved
        return None

    def paths(self) -> list[str]:
        """Every kept path (files and symlinks), sorted, so inventories come out in a stable order."""
        return sorted({*self.files, *self.symlinks})


class _Merger:
    """Applies one layer's members on top of the layers below it."""

    def __init__(self, wanted: WantedSize, scratch: Path) -> None:
        self.image = ImageFiles()
        self._wanted = wanted
        self._scratch = scratch
        # Every directory that holds (or once held) a kept path: a cheap test before scanning for paths under a
        # directory that a whiteout or a replacing file removes. It only grows; a stale entry costs one scan.
        self._dirs: set[str] = set()
        self._spills = 0

    def apply_layer(self, layer: int, tar: tarfile.TarFile) -> None:
        for member in tar:
            path = normalize_member_path(member.name)
            if path is None:
                continue
            directory, base = posixpath.split(path)
            if base == OPAQUE_WHITEOUT:
                self._remove_under(directory, below=layer)
                continue
            if base.startswith(_AUFS_META_PREFIX):
                continue
            if base.startswith(WHITEOUT_PREFIX):
                target = posixpath.join(directory, base[len(WHITEOUT_PREFIX) :])
                self._remove(target, below=layer)
                self._remove_under(target, below=layer)
                continue
            if member.isdir():
                # Directories merge with the ones below; only an opaque whiteout hides their old contents.
                continue
            # Any other entry replaces what was at its path, including a directory of kept files.
            self._remove(path, below=layer + 1)
            self._remove_under(path, below=layer)
            limit = self._wanted(path)
            if limit is None:
                continue
            self._keep(layer, path, member, tar, limit)

    def _keep(self, layer: int, path: str, member: tarfile.TarInfo, tar: tarfile.TarFile, limit: int) -> None:
        if member.issym():
            self.image.symlinks[path] = _Symlink(path, layer, member.linkname)
            self._note_dirs(path)
            return
        if member.islnk():
            # A hard link names an earlier member of the same archive; it is only readable if we kept that one.
            source = normalize_member_path(member.linkname)
            earlier = self.image.files.get(source) if source else None
            if earlier is not None and earlier.layer == layer:
                self.image.files[path] = KeptFile(path, layer, earlier.size, earlier.data, earlier.spilled)
                self._note_dirs(path)
            return
        if not member.isreg():
            return
        if member.size > limit:
            self.image.oversized.append((path, member.size))
            return
        stream = tar.extractfile(member)
        if stream is None:
            return
        if member.size <= SPILL_THRESHOLD:
            kept = KeptFile(path, layer, member.size, data=stream.read())
        else:
            self._spills += 1
            target = self._scratch / f"spill-{self._spills}"
            with target.open("wb") as out:
                shutil.copyfileobj(stream, out, _COPY_CHUNK)
            kept = KeptFile(path, layer, member.size, spilled=target)
        self.image.files[path] = kept
        self._note_dirs(path)

    def _note_dirs(self, path: str) -> None:
        directory = posixpath.dirname(path)
        while directory and directory not in self._dirs:
            self._dirs.add(directory)
            directory = posixpath.dirname(directory)

    def _remove(self, path: str, *, below: int) -> None:
        kept = self.image.files.get(path)
        if kept is not None and kept.layer < below:
            del self.image.files[path]
        link = self.image.symlinks.get(path)
        if link is not None and link.layer < below:
            del self.image.symlinks[path]

    def _remove_under(self, directory: str, *, below: int) -> None:
        """Drop kept paths inside ``directory`` that came from layers below ``below`` ("" is the root)."""
        if directory and directory not in self._dirs:
            return
        prefix = directory + "/" if directory else ""
        for table in (self.image.files, self.image.symlinks):
            doomed = [p for p, entry in table.items() if p.startswith(prefix) and entry.layer < below]
            for p in doomed:
                del table[p]


def collect_files(layers: Iterable[LayerOpener], wanted: WantedSize, scratch: Path) -> ImageFiles:
    """Read every layer in order (each opened lazily, as stored) and return the wanted files of the final image.

    Raises ``LayerUnreadable`` naming the layer (1-based) when a blob is not a readable tar in a supported
    compression. ``scratch`` is a folder the caller owns and removes; large kept files are copied there.
    """
    merger = _Merger(wanted, scratch)
    count = 0
    for index, opener in enumerate(layers):
        count += 1
        # Opening the blob is the caller's I/O: its errors (a missing blob) pass through unchanged.
        with opener() as blob:
            try:
                with ExitStack() as stack:
                    stream = stack.enter_context(decompressed(blob))
                    tar = stack.enter_context(tarfile.open(fileobj=stream, mode="r|"))
                    merger.apply_layer(index, tar)
            except LayerUnreadable as exc:
                raise LayerUnreadable(f"layer {index + 1}: {exc.message}") from exc
            except (tarfile.TarError, EOFError, zlib.error, zstandard.ZstdError, gzip.BadGzipFile) as exc:
                if isinstance(exc, tarfile.ReadError) and _is_empty_archive(exc):
                    continue
                raise LayerUnreadable(f"layer {index + 1} is not a readable tar archive: {exc}") from exc
    merger.image.layers_read = count
    return merger.image


def _is_empty_archive(exc: tarfile.ReadError) -> bool:
    # A zero-byte blob is an empty layer; tarfile's stream mode calls it "empty file".
    return "empty file" in str(exc)
