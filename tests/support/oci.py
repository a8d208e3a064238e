"""Building blocks for protocol tests: blobs, manifests and pushes over a synchronous HTTP client."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import tarfile
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit, urlunsplit

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_LAYER_TAR = "application/vnd.oci.image.layer.v1.tar"
OCI_EMPTY = "application/vnd.oci.empty.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"


class HttpClient(Protocol):
    def request(self, method: str, url: str, **kwargs: Any) -> Any: ...
    def post(self, url: str, **kwargs: Any) -> Any: ...
    def put(self, url: str, **kwargs: Any) -> Any: ...
    def get(self, url: str, **kwargs: Any) -> Any: ...
    def head(self, url: str, **kwargs: Any) -> Any: ...


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class Blob:
    data: bytes
    media_type: str = OCI_LAYER

    @property
    def digest(self) -> str:
        return digest_of(self.data)

    def descriptor(self) -> dict[str, Any]:
        return {"mediaType": self.media_type, "digest": self.digest, "size": len(self.data)}


def random_blob(size: int = 1024, media_type: str = OCI_LAYER) -> Blob:
    return Blob(os.urandom(size), media_type)


def config_blob(extra: dict[str, Any] | None = None) -> Blob:
    body = {"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": []}, **(extra or {})}
    return Blob(json.dumps(body).encode(), OCI_CONFIG)


def image_manifest(config: Blob, layers: list[Blob], **extra: Any) -> bytes:
    body: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": config.descriptor(),
        "layers": [layer.descriptor() for layer in layers],
        **extra,
    }
    return json.dumps(body).encode()


def index_manifest(children: list[tuple[bytes, dict[str, str]]]) -> bytes:
    manifests = [
        {"mediaType": OCI_MANIFEST, "digest": digest_of(payload), "size": len(payload), "platform": platform}
        for payload, platform in children
    ]
    return json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests}).encode()


def push_blob(client: HttpClient, name: str, blob: Blob) -> None:
    response = client.post(
        f"/v2/{name}/blobs/uploads/?digest={blob.digest}",
        content=blob.data,
        headers={"Content-Type": "application/octet-stream"},
    )
    assert response.status_code == 201, response.text


def push_manifest(client: HttpClient, name: str, reference: str, payload: bytes, media_type: str = OCI_MANIFEST) -> Any:
    response = client.put(f"/v2/{name}/manifests/{reference}", content=payload, headers={"Content-Type": media_type})
    assert response.status_code == 201, response.text
    return response


def push_image(client: HttpClient, name: str, tag: str, layers: int = 2, **extra: Any) -> tuple[bytes, list[Blob]]:
    """Push a config, ``layers`` random layers and the manifest under ``tag``; return (manifest, blobs)."""
    config = config_blob()
    blobs = [random_blob(512 + i) for i in range(layers)]
    for blob in [config, *blobs]:
        push_blob(client, name, blob)
    payload = image_manifest(config, blobs, **extra)
    push_manifest(client, name, tag, payload)
    return payload, [config, *blobs]


def error_codes(response: Any) -> list[str]:
    return [error["code"] for error in response.json()["errors"]]


def tar_layer(files: dict[str, bytes], *, compress: bool = True) -> bytes:
    """A reproducible layer tarball holding ``files`` (gzip-compressed unless ``compress`` is False)."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as archive:
        for name, content in files.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(content), 0o644, 0
            archive.addfile(info, io.BytesIO(content))
    return gzip.compress(raw.getvalue(), mtime=0) if compress else raw.getvalue()


def resolve_location(response: Any) -> str:
    """The URL a ``Location`` header points at, resolved against the request that received it (RFC 7231 §7.1.2):
    the spec lets a registry answer with a relative path or an absolute URL, and clients must follow either."""
    location = response.headers.get("Location")
    assert location, (
        f"{response.request.method} {response.request.url} answered {response.status_code} without a Location header"
    )
    return urljoin(str(response.request.url), location)


def with_query(url: str, **params: str) -> str:
    """``url`` with ``params`` added to its query, keeping any parameters the registry put there."""
    parts = urlsplit(url)
    query = [*parse_qsl(parts.query, keep_blank_values=True), *params.items()]
    return urlunsplit(parts._replace(query=urlencode(query)))
