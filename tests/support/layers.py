"""Image layers built in tests: tar archives of given files, symlinks and whiteouts, stored gzip-, zstd- or
un-compressed, the lazy openers ``ecrd.scanner.scan_layers`` takes, and a layer of this machine's own real
package databases."""

from __future__ import annotations

import gzip
import importlib.metadata
import io
import posixpath
import tarfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Literal

import zstandard

Compression = Literal["gzip", "zstd", "none"]


@dataclass(frozen=True)
class Entry:
    path: str
    kind: Literal["file", "dir", "symlink", "hardlink"] = "file"
    data: bytes = b""
    target: str = ""


def file(path: str, data: bytes | str) -> Entry:
    return Entry(path, "file", data.encode() if isinstance(data, str) else data)


def directory(path: str) -> Entry:
    return Entry(path, "dir")


def symlink(path: str, target: str) -> Entry:
    return Entry(path, "symlink", target=target)


def hardlink(path: str, target: str) -> Entry:
    return Entry(path, "hardlink", target=target)


def whiteout(path: str) -> Entry:
    """Deletes ``path`` (a file or a whole directory) of the layers below."""
    parent, name = posixpath.split(path)
    return file(posixpath.join(parent, ".wh." + name), b"")


def opaque(path: str) -> Entry:
    """Hides everything in directory ``path`` that the layers below put there."""
    return file(posixpath.join(path, ".wh..wh..opq"), b"")


def tar_bytes(entries: Iterable[Entry]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for entry in entries:
            info = tarfile.TarInfo(entry.path)
            info.mtime = 1_700_000_000
            if entry.kind == "dir":
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                tar.addfile(info)
            elif entry.kind == "symlink":
                info.type, info.linkname = tarfile.SYMTYPE, entry.target
                tar.addfile(info)
            elif entry.kind == "hardlink":
                info.type, info.linkname = tarfile.LNKTYPE, entry.target
                tar.addfile(info)
            else:
                info.size, info.mode = len(entry.data), 0o644
                tar.addfile(info, io.BytesIO(entry.data))
    return buffer.getvalue()


def compress(data: bytes, compression: Compression) -> bytes:
    if compression == "gzip":
        return gzip.compress(data, mtime=0)
    if compression == "zstd":
        return zstandard.ZstdCompressor().compress(data)
    return data


def layer(*entries: Entry, compression: Compression = "gzip") -> bytes:
    """A layer blob as a registry stores it."""
    return compress(tar_bytes(entries), compression)


def openers(*blobs: bytes) -> list[Callable[[], BinaryIO]]:
    """One lazy opener per blob, in order, as ``scan_layers`` takes them."""
    return [lambda blob=blob: io.BytesIO(blob) for blob in blobs]  # type: ignore[misc]


def machine_entries() -> list[Entry]:
    """This machine's real os-release, dpkg status and installed Python distributions' metadata, as entries."""
    entries: list[Entry] = [
        file("usr/lib/os-release", Path("/etc/os-release").read_bytes()),
        symlink("etc/os-release", "../usr/lib/os-release"),
        file("var/lib/dpkg/status", Path("/var/lib/dpkg/status").read_bytes()),
    ]
    site_packages = Path(str(importlib.metadata.distribution("pip").locate_file("")))
    for metadata in sorted(site_packages.glob("*.dist-info/METADATA")):
        entries.append(file(str(metadata).lstrip("/"), metadata.read_bytes()))
    return entries


def machine_image_layer() -> bytes:
    """A layer holding this machine's real os-release, dpkg status and installed Python distributions."""
    return layer(*machine_entries())
