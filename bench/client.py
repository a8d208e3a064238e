"""A lean OCI distribution client for blob transfers: bodies streamed from a generator, never held whole.

Blob content is deterministic and unique per seed without costing much client CPU: MiB ``i`` of blob ``seed``
is a 16-byte header (seed, i) followed by a slice of a shared 32 MiB random pool. Its digest is computed once,
before anything is timed.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import random
import struct
import time
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from urllib.parse import urlsplit

MiB = 1 << 20
PIECE = MiB
_POOL_SIZE = 32 * MiB
_STRIDE = 104_729 * 31
HTTP_TIMEOUT = 300.0


@cache
def _pool() -> bytes:
    return random.Random(20240101).randbytes(_POOL_SIZE)


@dataclass(frozen=True)
class BlobSource:
    """``size`` bytes of content for ``seed``, produced in 1 MiB pieces."""

    size: int
    seed: int

    def pieces(self, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        """The bytes ``start``..``end`` (exclusive); ``start`` must be a multiple of 1 MiB."""
        assert start % PIECE == 0, "pieces start on a MiB boundary"
        end = self.size if end is None else end
        pool = memoryview(_pool())
        index = start // PIECE
        position = start
        while position < end:
            length = min(PIECE, end - position)
            offset = (index * _STRIDE) % (_POOL_SIZE - PIECE)
            header = struct.pack(">QQ", self.seed, index)
            if length <= len(header):
                yield header[:length]
            else:
                yield b"".join((header, pool[offset + len(header) : offset + length]))
            position += length
            index += 1

    @property
    def digest(self) -> str:
        return _digest(self.size, self.seed)


@cache
def _digest(size: int, seed: int) -> str:
    hasher = hashlib.sha256()
    for piece in BlobSource(size, seed).pieces():
        hasher.update(piece)
    return "sha256:" + hasher.hexdigest()


class RegistryError(RuntimeError):
    """A registry answered something other than what the protocol promises."""


class Registry:
    """One keep-alive connection to a registry's /v2/ API."""

    def __init__(self, host: str, authorization: str | None) -> None:
        self.host = host
        self.authorization = authorization
        self.conn = http.client.HTTPConnection(host, timeout=HTTP_TIMEOUT)

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> Registry:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _headers(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        headers = dict(extra or {})
        if self.authorization:
            headers["Authorization"] = self.authorization
        return headers

    def request(
        self,
        method: str,
        target: str,
        body: object = None,
        headers: dict[str, str] | None = None,
        expect: tuple[int, ...] = (200,),
    ) -> tuple[http.client.HTTPResponse, bytes]:
        self.conn.request(method, target, body=body, headers=self._headers(headers))  # type: ignore[arg-type]
        response = self.conn.getresponse()
        data = response.read()
        if response.status not in expect:
            raise RegistryError(f"{method} {target} -> {response.status} {response.reason}: {data[:500]!r}")
        return response, data

    @staticmethod
    def _target(location: str) -> str:
        """A Location header (absolute or relative) as a request target."""
        parts = urlsplit(location)
        return parts.path + (f"?{parts.query}" if parts.query else "")

    def start_upload(self, repository: str) -> str:
        response, _ = self.request("POST", f"/v2/{repository}/blobs/uploads/", expect=(202,))
        return self._target(response.headers["Location"])

    def push_monolithic(self, repository: str, blob: BlobSource) -> None:
        """POST, then PUT ?digest= with the whole blob as a streamed body."""
        location = self.start_upload(repository)
        separator = "&" if "?" in location else "?"
        self.request(
            "PUT",
            f"{location}{separator}digest={blob.digest}",
            body=blob.pieces(),
            headers={"Content-Length": str(blob.size), "Content-Type": "application/octet-stream"},
            expect=(201,),
        )

    def push_chunked(self, repository: str, blob: BlobSource, chunk: int) -> None:
        """POST, a PATCH per ``chunk`` bytes (with Content-Range), then PUT ?digest= without a body."""
        location = self.start_upload(repository)
        for start in range(0, blob.size, chunk):
            end = min(start + chunk, blob.size)
            response, _ = self.request(
                "PATCH",
                location,
                body=blob.pieces(start, end),
                headers={
                    "Content-Length": str(end - start),
                    "Content-Range": f"{start}-{end - 1}",
                    "Content-Type": "application/octet-stream",
                },
                expect=(202,),
            )
            location = self._target(response.headers["Location"])
        separator = "&" if "?" in location else "?"
        self.request(
            "PUT",
            f"{location}{separator}digest={blob.digest}",
            body=b"",
            headers={"Content-Length": "0"},
            expect=(201,),
        )

    def push_bytes(self, repository: str, data: bytes) -> str:
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        location = self.start_upload(repository)
        separator = "&" if "?" in location else "?"
        self.request(
            "PUT",
            f"{location}{separator}digest={digest}",
            body=data,
            headers={"Content-Type": "application/octet-stream"},
            expect=(201,),
        )
        return digest

    def pull(self, repository: str, digest: str, buffer_size: int = MiB) -> int:
        """GET a blob, reading it into a reused buffer; return the bytes received."""
        self.conn.request("GET", f"/v2/{repository}/blobs/{digest}", headers=self._headers())
        response = self.conn.getresponse()
        if response.status != 200:
            raise RegistryError(f"GET blob {digest} -> {response.status}: {response.read()[:500]!r}")
        buffer = memoryview(bytearray(buffer_size))
        received = 0
        while count := response.readinto(buffer):
            received += count
        return received

    def put_manifest(self, repository: str, reference: str, manifest: bytes, media_type: str) -> None:
        self.request(
            "PUT",
            f"/v2/{repository}/manifests/{reference}",
            body=manifest,
            headers={"Content-Type": media_type},
            expect=(201,),
        )


OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"


def push_small_image(registry: Registry, repository: str, tags: list[str], seed: int) -> tuple[str, str]:
    """A tiny image (one 1 KiB layer) tagged with every name in ``tags``; returns (layer digest, manifest)."""
    layer = random.Random(seed).randbytes(1024)
    config = json.dumps(
        {
            "architecture": "amd64",
            "os": "linux",
            "rootfs": {"type": "layers", "diff_ids": []},
            "created": "2024-01-01T00:00:00Z",
            "bench": seed,
        }
    ).encode()
    layer_digest = registry.push_bytes(repository, layer)
    config_digest = registry.push_bytes(repository, config)
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": config_digest, "size": len(config)},
            "layers": [{"mediaType": OCI_LAYER, "digest": layer_digest, "size": len(layer)}],
        }
    ).encode()
    for tag in tags:
        registry.put_manifest(repository, tag, manifest, OCI_MANIFEST)
    return layer_digest, "sha256:" + hashlib.sha256(manifest).hexdigest()


def timed(function: object, *args: object) -> float:
    """Seconds ``function(*args)`` took."""
    start = time.perf_counter()
    function(*args)  # type: ignore[operator]
    return time.perf_counter() - start
