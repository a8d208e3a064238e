"""Container images made locally, with no network: OCI image layouts, multi-arch indexes and docker archives.

Content is deterministic — the same sizes and seed give the same bytes, hence the same digests — and
incompressible, so a layer's blob is about as large as asked. Large content is streamed, never held whole
in memory.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import platform
import random
import tarfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

MiB = 1 << 20
GiB = 1 << 30

OCI_LAYOUT_VERSION = "1.0.0"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_LAYER_TAR = "application/vnd.oci.image.layer.v1.tar"
OCI_EMPTY = "application/vnd.oci.empty.v1+json"
REF_NAME_ANNOTATION = "org.opencontainers.image.ref.name"

EPOCH = "2024-01-01T00:00:00Z"
"""The creation time written into every config, so configs (and image ids) are reproducible."""

_BLOCK = MiB
_ROTATION = 104_729
"""An odd stride: block i is the seed block rotated by i*stride mod 1 MiB, so no two MiB repeat below 1 TiB."""


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def file_digest(path: Path) -> str:
    with path.open("rb") as stream:
        return "sha256:" + hashlib.file_digest(stream, "sha256").hexdigest()


def canonical_json(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":")).encode()


def host_architecture() -> str:
    """The OCI name of this machine's architecture (``amd64``, ``arm64``, …)."""
    machine = platform.machine().lower()
    return {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm"}.get(machine, machine)


class DeterministicStream(io.RawIOBase):
    """``size`` pseudo-random bytes from ``seed``, readable like a file without holding them in memory."""

    def __init__(self, size: int, seed: int) -> None:
        self.size = size
        self.position = 0
        self._block = random.Random(seed).randbytes(_BLOCK)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        wanted = min(len(view), self.size - self.position)
        written = 0
        while written < wanted:
            block_index, offset = divmod(self.position, _BLOCK)
            shift = (block_index * _ROTATION) % _BLOCK
            start = (shift + offset) % _BLOCK
            take = min(wanted - written, _BLOCK - offset, _BLOCK - start)
            view[written : written + take] = self._block[start : start + take]
            written += take
            self.position += take
        return written


def deterministic_bytes(size: int, seed: int) -> bytes:
    return DeterministicStream(size, seed).read(size) or b""


def deterministic_chunks(size: int, seed: int, chunk_size: int) -> Iterator[bytes]:
    """The bytes of ``DeterministicStream(size, seed)`` in pieces of ``chunk_size`` (the last may be shorter)."""
    stream = DeterministicStream(size, seed)
    while chunk := stream.read(chunk_size):
        yield chunk


def _tar_of_one_file(name: str, size: int, seed: int) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        tar.addfile(_file_info(name, size), DeterministicStream(size, seed))
    return buffer.getvalue()


def _file_info(name: str, size: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size = size
    info.mode = 0o644
    info.mtime = 0
    return info


@dataclass(frozen=True)
class Platform:
    os: str
    architecture: str

    def as_json(self) -> dict[str, str]:
        return {"os": self.os, "architecture": self.architecture}


@dataclass(frozen=True)
class Layer:
    """A tar layer, gzip-compressed unless made ``of_tar(…, compressed=False)``; by default one file of
    deterministic content."""

    tar: bytes
    blob: bytes
    media_type: str = OCI_LAYER_GZIP

    @classmethod
    def with_file(cls, name: str, size: int, seed: int) -> Layer:
        tar = _tar_of_one_file(name, size, seed)
        return cls(tar=tar, blob=gzip.compress(tar, compresslevel=1, mtime=0))

    @classmethod
    def of_tar(cls, tar: bytes, *, compressed: bool = True) -> Layer:
        """A layer of any tar archive (e.g. ``tests.support.layers.tar_bytes``), gzip-compressed or stored
        as the plain tar (media type ``…layer.v1.tar``), which reaches a registry byte for byte."""
        if compressed:
            return cls(tar=tar, blob=gzip.compress(tar, compresslevel=1, mtime=0))
        return cls(tar=tar, blob=tar, media_type=OCI_LAYER_TAR)

    @property
    def digest(self) -> str:
        return sha256_digest(self.blob)

    @property
    def diff_id(self) -> str:
        return sha256_digest(self.tar)

    def descriptor(self) -> dict[str, Any]:
        return {"mediaType": self.media_type, "digest": self.digest, "size": len(self.blob)}


def _config(platform_: Platform, diff_ids: Sequence[str], label: str) -> bytes:
    return canonical_json(
        {
            **platform_.as_json(),
            "created": EPOCH,
            "config": {
                "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
                "Labels": {"org.ecrd.e2e.image": label},
            },
            "rootfs": {"type": "layers", "diff_ids": list(diff_ids)},
            "history": [{"created": EPOCH, "created_by": f"ecrd e2e layer {i}"} for i in range(len(diff_ids))],
        }
    )


def _manifest(config: bytes, layer_descriptors: Sequence[dict[str, Any]]) -> bytes:
    return canonical_json(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": sha256_digest(config), "size": len(config)},
            "layers": list(layer_descriptors),
        }
    )


@dataclass(frozen=True)
class Image:
    """One single-platform OCI image held in memory: its layers, config and manifest bytes."""

    platform: Platform
    layers: tuple[Layer, ...]
    config: bytes
    manifest: bytes

    @property
    def config_digest(self) -> str:
        """Also docker's image id for this image."""
        return sha256_digest(self.config)

    @property
    def manifest_digest(self) -> str:
        return sha256_digest(self.manifest)

    def descriptor(self) -> dict[str, Any]:
        return {
            "mediaType": OCI_MANIFEST,
            "digest": self.manifest_digest,
            "size": len(self.manifest),
            "platform": self.platform.as_json(),
        }

    def blobs(self) -> dict[str, bytes]:
        """Every blob the image is made of, manifest included, by digest."""
        found = {layer.digest: layer.blob for layer in self.layers}
        found[self.config_digest] = self.config
        found[self.manifest_digest] = self.manifest
        return found


def image_of_layers(layers: Sequence[Layer], *, label: str, platform_: Platform | None = None) -> Image:
    """An image of the given layers, in order; ``label`` (a config label) tells images apart."""
    platform_ = platform_ or Platform("linux", host_architecture())
    config = _config(platform_, [layer.diff_id for layer in layers], label)
    return Image(platform_, tuple(layers), config, _manifest(config, [layer.descriptor() for layer in layers]))


def build_image(layer_sizes: Sequence[int], *, seed: int, platform_: Platform | None = None) -> Image:
    """An image whose layer i holds one file of ``layer_sizes[i]`` bytes; different seeds share no layer."""
    platform_ = platform_ or Platform("linux", host_architecture())
    layers = tuple(
        Layer.with_file(f"ecrd-e2e/{seed}/layer-{index}.bin", size, seed * 1_000 + index)
        for index, size in enumerate(layer_sizes)
    )
    return image_of_layers(layers, label=f"seed-{seed}-{platform_.architecture}", platform_=platform_)


@dataclass(frozen=True)
class ImageIndex:
    """A multi-platform OCI image index over several images."""

    images: tuple[Image, ...]
    index: bytes = field(repr=False)

    @property
    def digest(self) -> str:
        return sha256_digest(self.index)

    def blobs(self) -> dict[str, bytes]:
        found: dict[str, bytes] = {}
        for image in self.images:
            found.update(image.blobs())
        found[self.digest] = self.index
        return found


def build_index(
    layer_sizes: Sequence[int],
    *,
    seed: int,
    platforms: Sequence[Platform] = (Platform("linux", "amd64"), Platform("linux", "arm64")),
) -> ImageIndex:
    """One image per platform (each with its own layers) and the index listing them."""
    images = tuple(
        build_image(layer_sizes, seed=seed * 100 + number, platform_=platform_)
        for number, platform_ in enumerate(platforms)
    )
    index = canonical_json(
        {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [image.descriptor() for image in images]}
    )
    return ImageIndex(images, index)


def _blob_path(layout: Path, digest: str) -> Path:
    algorithm, _, hex_digest = digest.partition(":")
    return layout / "blobs" / algorithm / hex_digest


def _write_layout_frame(layout: Path, top: dict[str, Any], tag: str) -> None:
    (layout / "blobs" / "sha256").mkdir(parents=True, exist_ok=True)
    (layout / "oci-layout").write_text(json.dumps({"imageLayoutVersion": OCI_LAYOUT_VERSION}))
    entry = {**top, "annotations": {REF_NAME_ANNOTATION: tag}}
    (layout / "index.json").write_bytes(canonical_json({"schemaVersion": 2, "manifests": [entry]}))


def write_oci_layout(layout: Path, content: Image | ImageIndex, *, tag: str = "latest") -> None:
    """Write an OCI image layout directory whose ``index.json`` names ``content`` as ``tag``."""
    if isinstance(content, Image):
        top = {"mediaType": OCI_MANIFEST, "digest": content.manifest_digest, "size": len(content.manifest)}
    else:
        top = {"mediaType": OCI_INDEX, "digest": content.digest, "size": len(content.index)}
    _write_layout_frame(layout, top, tag)
    for digest, data in content.blobs().items():
        _blob_path(layout, digest).write_bytes(data)


@dataclass(frozen=True)
class LargeImage:
    """An image with one big layer, written straight into an OCI layout on disk."""

    layer_digest: str
    layer_size: int
    config_digest: str
    manifest_digest: str


class _HashingWriter(io.RawIOBase):
    """Passes bytes through to ``sink`` while hashing and counting them."""

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
        self.size += len(view)
        self.sink.write(view)
        return len(view)

    @property
    def digest(self) -> str:
        return "sha256:" + self.sha256.hexdigest()


def write_large_oci_layout(layout: Path, size: int, *, seed: int, tag: str = "latest") -> LargeImage:
    """An OCI layout with one gzip layer holding a ``size``-byte file, streamed to disk.

    The gzip stream uses level 0 (stored blocks): compressing incompressible data would only cost CPU, and a
    compressed media type keeps clients from compressing the layer themselves (skopeo compresses plain tar
    layers on their way to a registry), so the registry receives exactly this blob.
    """
    blobs = layout / "blobs" / "sha256"
    blobs.mkdir(parents=True, exist_ok=True)
    partial = blobs / "layer.partial"
    with partial.open("wb") as file:
        blob = _HashingWriter(file)
        with gzip.GzipFile(fileobj=blob, mode="wb", compresslevel=0, mtime=0) as compressed:
            tar_stream = _HashingWriter(compressed)
            with tarfile.TarFile(fileobj=tar_stream, mode="w", format=tarfile.PAX_FORMAT, copybufsize=4 * MiB) as tar:
                tar.addfile(_file_info(f"ecrd-e2e/{seed}/large.bin", size), DeterministicStream(size, seed))
    layer_digest = blob.digest
    partial.rename(_blob_path(layout, layer_digest))

    platform_ = Platform("linux", host_architecture())
    config = _config(platform_, [tar_stream.digest], f"large-{seed}")
    layer = {"mediaType": OCI_LAYER_GZIP, "digest": layer_digest, "size": blob.size}
    manifest = _manifest(config, [layer])
    for data in (config, manifest):
        _blob_path(layout, sha256_digest(data)).write_bytes(data)
    top = {"mediaType": OCI_MANIFEST, "digest": sha256_digest(manifest), "size": len(manifest)}
    _write_layout_frame(layout, top, tag)
    return LargeImage(layer_digest, blob.size, sha256_digest(config), sha256_digest(manifest))


def read_layout_blobs(layout: Path) -> dict[str, bytes]:
    """Every blob of a (small) OCI layout by digest, each checked to hash to its file name."""
    found: dict[str, bytes] = {}
    for path in sorted((layout / "blobs" / "sha256").iterdir()):
        data = path.read_bytes()
        digest = f"sha256:{path.name}"
        assert sha256_digest(data) == digest, f"{path} does not hash to its name"
        found[digest] = data
    return found


def read_layout_index(layout: Path) -> dict[str, Any]:
    index: dict[str, Any] = json.loads((layout / "index.json").read_bytes())
    return index


def write_docker_archive(archive: Path, image: Image, *, repo_tags: Sequence[str]) -> None:
    """A ``docker save``-format tarball of ``image`` for ``docker load`` (uncompressed layers by diff id)."""
    entries: list[tuple[str, bytes]] = [(f"{image.config_digest.partition(':')[2]}.json", image.config)]
    layer_names = []
    for layer in image.layers:
        name = f"{layer.diff_id.partition(':')[2]}/layer.tar"
        layer_names.append(name)
        entries.append((name, layer.tar))
    manifest = [{"Config": entries[0][0], "RepoTags": list(repo_tags), "Layers": layer_names}]
    entries.append(("manifest.json", json.dumps(manifest).encode()))
    with tarfile.open(archive, mode="w") as tar:
        for name, data in entries:
            tar.addfile(_file_info(name, len(data)), io.BytesIO(data))
