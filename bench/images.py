"""OCI image layouts on disk for skopeo to push: N layers of given sizes, fresh content per seed.

Each layer is a gzip stream at level 0 (stored blocks) of a tar holding one file: compressing random data
would only cost CPU, and a compressed media type keeps skopeo from compressing the layer itself, so the
registry receives exactly these bytes. Layers are streamed to disk, never held whole.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from client import OCI_CONFIG, OCI_LAYER, OCI_MANIFEST, BlobSource

REF_NAME = "org.opencontainers.image.ref.name"


class _SourceStream(io.RawIOBase):
    """A readable file over a ``BlobSource``."""

    def __init__(self, source: BlobSource) -> None:
        self._pieces: Iterator[bytes] = source.pieces()
        self._rest = b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if not self._rest:
            self._rest = next(self._pieces, b"")
        view = memoryview(buffer).cast("B")
        count = min(len(view), len(self._rest))
        view[:count] = self._rest[:count]
        self._rest = self._rest[count:]
        return count


class _HashingWriter(io.RawIOBase):
    def __init__(self, sink: Any) -> None:
        self.sink = sink
        self.sha256 = hashlib.sha256()
        self.size = 0

    def writable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.size

    def write(self, data: Any) -> int:
        view = memoryview(data)
        self.sha256.update(view)
        self.sink.write(view)
        self.size += len(view)
        return len(view)

    @property
    def digest(self) -> str:
        return "sha256:" + self.sha256.hexdigest()


def _write_blob(blobs: Path, data: bytes) -> dict[str, Any]:
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    (blobs / digest.partition(":")[2]).write_bytes(data)
    return {"digest": digest, "size": len(data)}


def _write_layer(blobs: Path, size: int, seed: int) -> tuple[dict[str, Any], str]:
    """One layer into ``blobs``: its descriptor and the diff id (digest of the uncompressed tar)."""
    partial = blobs / "layer.partial"
    with partial.open("wb") as file:
        blob = _HashingWriter(file)
        with gzip.GzipFile(fileobj=blob, mode="wb", compresslevel=0, mtime=0) as compressed:
            tar_stream = _HashingWriter(compressed)
            with tarfile.TarFile(fileobj=tar_stream, mode="w", format=tarfile.PAX_FORMAT, copybufsize=1 << 20) as tar:
                info = tarfile.TarInfo(f"bench/{seed}.bin")
                info.size, info.mode, info.mtime = size, 0o644, 0
                tar.addfile(info, _SourceStream(BlobSource(size, seed)))
    partial.rename(blobs / blob.digest.partition(":")[2])
    return {"mediaType": OCI_LAYER, "digest": blob.digest, "size": blob.size}, tar_stream.digest


def write_layout(layout: Path, layer_sizes: list[int], *, seed: int, tag: str = "latest") -> int:
    """An OCI layout at ``layout`` whose ``tag`` is an image of layers of ``layer_sizes``; returns the bytes
    of its blobs. Different seeds share no layer."""
    blobs = layout / "blobs" / "sha256"
    blobs.mkdir(parents=True, exist_ok=True)
    layers, diff_ids = [], []
    for index, size in enumerate(layer_sizes):
        descriptor, diff_id = _write_layer(blobs, size, seed * 100_000 + index)
        layers.append(descriptor)
        diff_ids.append(diff_id)
    config = json.dumps(
        {
            "architecture": "amd64",
            "os": "linux",
            "created": "2024-01-01T00:00:00Z",
            "config": {"Labels": {"org.ecrd.bench.seed": str(seed)}},
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
        },
        separators=(",", ":"),
    ).encode()
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, **_write_blob(blobs, config)},
            "layers": layers,
        },
        separators=(",", ":"),
    ).encode()
    top = {"mediaType": OCI_MANIFEST, **_write_blob(blobs, manifest), "annotations": {REF_NAME: tag}}
    (layout / "oci-layout").write_text(json.dumps({"imageLayoutVersion": "1.0.0"}))
    (layout / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [top]}))
    return sum(layer["size"] for layer in layers) + len(config) + len(manifest)
