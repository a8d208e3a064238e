"""Pulls through the pull-through cache from a real upstream (distribution with htpasswd auth and TLS, standing
in for Docker Hub), on SQLite and PostgreSQL: import on first pull by tag and by digest, the cache serving what
it holds, an upstream blob with the wrong bytes refused, an upstream killed mid-import (through a throttling
proxy), concurrent first pulls fetching each blob once, a cached tag checked against the upstream once per
interval (a hung upstream given up on quickly, asked again soon), a multi-platform index importing only the
children pulled, skopeo copying through the cache (a Docker manifest list with every platform too), a failed
import audited as failed, fsck and scans of images cached in part, a dead fetcher's claim taken over, another
account pulling through a registry's cache once that registry's policy grants it."""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import http.server
import json
import os
import re
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import requests
from starlette.testclient import TestClient

from ecrd.app import Registry, asgi_app
from ecrd.config import Settings
from ecrd.errors import BlobUnknown, ManifestUnknown
from ecrd.metadata import pull_through as pull_through_queries
from ecrd.services.fsck import Fsck
from ecrd.services.pull_through_cache import FETCH_LEASE_SECONDS, RECHECK_AFTER_FAILURE_SECONDS
from tests.conftest import ROOT_ACCESS_KEY_ID, basic_auth_for, registry_for
from tests.integration.test_ecr_api import client_for
from tests.support import layers
from tests.support.clients import (
    AwsCredentials,
    Skopeo,
    aws_client,
    bound_in_time,
    ecr_registry_credentials,
    policy_json,
)
from tests.support.clock import FakeClock
from tests.support.clocked import clocked_registry
from tests.support.live_server import live_server
from tests.support.oci import (
    OCI_INDEX,
    OCI_LAYER,
    OCI_MANIFEST,
    Blob,
    config_blob,
    digest_of,
    image_manifest,
    index_manifest,
    random_blob,
    tar_layer,
)
from tests.support.upstream import USER, SecuredDistribution

TIMEOUT = 60.0


@dataclasses.dataclass
class UpstreamImage:
    name: str
    tag: str
    manifest: bytes
    blobs: list[Blob]


@pytest.fixture(scope="module")
def upstream(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecuredDistribution]:
    with SecuredDistribution(tmp_path_factory.mktemp("upstream")) as process:
        assert isinstance(process, SecuredDistribution)
        yield process


@pytest.fixture(scope="module")
def image(upstream: SecuredDistribution) -> UpstreamImage:
    config = config_blob()
    # Larger than one upstream read (1 MiB), so a blob is streamed in several chunks.
    layers = [random_blob(3 * 1024 * 1024 + 17), random_blob(2048)]
    manifest = image_manifest(config, layers)
    upstream.push("library/alpine", [config, *layers], manifest, OCI_MANIFEST, "3")
    return UpstreamImage("library/alpine", "3", manifest, [config, *layers])


@pytest.fixture
def settings(settings: Settings, upstream: SecuredDistribution) -> Settings:
    return dataclasses.replace(settings, upstream_ca_file=upstream.ca_file or "")


@pytest.fixture
def pull(registry: Registry, endpoint: str) -> requests.Session:
    session = bound_in_time(requests.Session())
    session.headers["Authorization"] = basic_auth_for(registry, ROOT_ACCESS_KEY_ID)
    return session


def _rule(endpoint: str, host: str, *, password: str = USER.password, prefix: str = "hub") -> None:
    secrets = client_for(endpoint, "secretsmanager")
    value = json.dumps({"username": USER.username, "accessToken": password})
    arn = secrets.create_secret(Name=f"ecr-pullthroughcache/{prefix}", SecretString=value)["ARN"]
    client_for(endpoint, "ecr").create_pull_through_cache_rule(
        ecrRepositoryPrefix=prefix, upstreamRegistryUrl=host, upstreamRegistry="docker-hub", credentialArn=arn
    )


def _get(session: requests.Session, url: str, **headers: str) -> requests.Response:
    return session.get(url, headers=headers, timeout=TIMEOUT)


def test_validate_reaches_the_upstream_with_the_rule_credentials(endpoint: str, upstream: SecuredDistribution) -> None:
    _rule(endpoint, upstream.host)
    _rule(endpoint, upstream.host, password="wrong", prefix="bad")
    ecr = client_for(endpoint, "ecr")
    assert ecr.validate_pull_through_cache_rule(ecrRepositoryPrefix="hub")["isValid"] is True
    refused = ecr.validate_pull_through_cache_rule(ecrRepositoryPrefix="bad")
    assert refused["isValid"] is False and "401" in refused["failure"]


def test_first_pull_by_tag_creates_the_repository_and_imports_the_image(
    registry: Registry, endpoint: str, pull: requests.Session, upstream: SecuredDistribution, image: UpstreamImage
) -> None:
    _rule(endpoint, upstream.host)
    manifest = _get(pull, f"{endpoint}/v2/hub/{image.name}/manifests/{image.tag}", Accept=OCI_MANIFEST)
    assert manifest.status_code == 200, manifest.text
    assert manifest.content == image.manifest
    for blob in image.blobs:
        got = _get(pull, f"{endpoint}/v2/hub/{image.name}/blobs/{blob.digest}")
        assert got.status_code == 200 and got.content == blob.data
    # Now cached: served with the upstream gone from the rule's reach (its credentials no longer work).
    repository = registry.registry.get_repository(f"hub/{image.name}")
    for blob in image.blobs:
        assert registry.registry.blob_size(repository, blob.digest) == len(blob.data)
    described = client_for(endpoint, "ecr").describe_images(repositoryName=f"hub/{image.name}")["imageDetails"]
    assert [d["imageDigest"] for d in described] == [digest_of(image.manifest)]
    actions = {event.action for event in registry.audit.events(repository=f"hub/{image.name}")}
    assert "ecr:BatchImportUpstreamImage" in actions
    # The import is an "ECR Pull Through Cache Action" event, written with it; no push.
    [imported] = [event.envelope["detail"] for event in registry.events.recent(repository=f"hub/{image.name}")]
    assert imported == {
        "rule-version": "1",
        "sync-status": "SUCCESS",
        "ecr-repository-prefix": "hub",
        "repository-name": f"hub/{image.name}",
        "upstream-registry-url": upstream.host,
        "image-tag": image.tag,
        "image-digest": digest_of(image.manifest),
    }


def test_first_pull_by_digest_imports_the_manifest(
    endpoint: str, pull: requests.Session, upstream: SecuredDistribution, image: UpstreamImage
) -> None:
    _rule(endpoint, upstream.host)
    digest = digest_of(image.manifest)
    got = _get(pull, f"{endpoint}/v2/hub/{image.name}/manifests/{digest}", Accept=OCI_MANIFEST)
    assert got.status_code == 200 and got.content == image.manifest
    missing = _get(pull, f"{endpoint}/v2/hub/library/absent/manifests/latest", Accept=OCI_MANIFEST)
    assert missing.status_code == 404
    assert "upstream registry" in missing.json()["errors"][0]["message"]


def test_concurrent_first_pulls_fetch_each_blob_from_the_upstream_once(
    endpoint: str, pull: requests.Session, upstream: SecuredDistribution
) -> None:
    config, layer = config_blob({"created": "concurrent"}), random_blob(4 * 1024 * 1024)
    manifest = image_manifest(config, [layer])
    upstream.push("library/busy", [config, layer], manifest, OCI_MANIFEST, "1")
    _rule(endpoint, upstream.host)
    assert _get(pull, f"{endpoint}/v2/hub/library/busy/manifests/1", Accept=OCI_MANIFEST).status_code == 200
    before = upstream.blob_gets(layer.digest)

    def fetch(_: int) -> str:
        response = _get(pull, f"{endpoint}/v2/hub/library/busy/blobs/{layer.digest}")
        assert response.status_code == 200
        return hashlib.sha256(response.content).hexdigest()

    with ThreadPoolExecutor(4) as pool:
        digests = list(pool.map(fetch, range(4)))
    assert {f"sha256:{d}" for d in digests} == {layer.digest}
    assert upstream.blob_gets(layer.digest) - before == 1


class _LyingRegistry(http.server.BaseHTTPRequestHandler):
    """An upstream that serves a manifest, then a blob whose bytes do not match the digest it was asked for."""

    config = config_blob({"created": "lying"})
    layer = random_blob(300 * 1024)
    manifest = image_manifest(config, [layer])

    def do_GET(self) -> None:
        if self.path == "/v2/":
            self._send(200, b"{}", "application/json")
        elif "/manifests/" in self.path:
            self._send(200, self.manifest, OCI_MANIFEST)
        elif self.path.endswith(self.layer.digest):
            self._send(200, bytes(reversed(self.layer.data)), "application/octet-stream")
        else:
            self._send(404, b'{"errors":[{"code":"BLOB_UNKNOWN","message":"no"}]}', "application/json")

    def _send(self, status: int, body: bytes, media_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", media_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def lying_upstream() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _LyingRegistry)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_an_upstream_blob_with_the_wrong_bytes_is_refused_and_not_stored(
    tmp_path: Path, settings: Settings, lying_upstream: str
) -> None:
    from ecrd.app import build_registry
    from tests.conftest import ROOT_SECRET_ACCESS_KEY

    built = build_registry(dataclasses.replace(settings, insecure_upstream=lying_upstream))
    built.identity.authentication.bootstrap_root(ROOT_ACCESS_KEY_ID, ROOT_SECRET_ACCESS_KEY)
    try:
        with live_server(built) as endpoint:
            client_for(endpoint, "ecr").create_pull_through_cache_rule(
                ecrRepositoryPrefix="lies", upstreamRegistryUrl=lying_upstream
            )
            session = bound_in_time(requests.Session())
            session.headers["Authorization"] = basic_auth_for(built, ROOT_ACCESS_KEY_ID)
            assert _get(session, f"{endpoint}/v2/lies/app/manifests/1", Accept=OCI_MANIFEST).status_code == 200
            digest = _LyingRegistry.layer.digest
            with pytest.raises(requests.RequestException):
                _get(session, f"{endpoint}/v2/lies/app/blobs/{digest}")
            repository = built.registry.get_repository("lies/app")
            with pytest.raises(BlobUnknown):
                built.registry.blob_size(repository, digest)
            # In the audit trail as the failed import it was, though its response had begun with 200.
            deadline = time.monotonic() + TIMEOUT
            while not (failed := built.audit.events(repository="lies/app", outcome="failed")):
                assert time.monotonic() < deadline, "the failed import never reached the audit trail"
                time.sleep(0.05)
            assert [(e.action, e.status, e.error_code) for e in failed] == [
                ("ecr:BatchImportUpstreamImage", 200, "DIGEST_INVALID")
            ]
            allowed = built.audit.events(repository="lies/app", outcome="allowed")
            assert [e.action for e in allowed] == ["ecr:BatchImportUpstreamImage"]  # the manifest's import
    finally:
        built.close()


def _manifest_requests(upstream: SecuredDistribution, name: str) -> int:
    """How many GETs and HEADs of manifests of ``name`` the upstream has answered (from its access log)."""
    pattern = re.compile(rf'method=(GET|HEAD) .*uri="?/v2/{re.escape(name)}/manifests/')
    return sum(
        1
        for line in upstream.log_path.read_text().splitlines()
        if "response completed" in line and pattern.search(line)
    )


@contextmanager
def _clocked(settings: Settings, clock: FakeClock) -> Iterator[tuple[str, requests.Session]]:
    """A registry on ``clock`` served over a socket, and a /v2/ session logged in to it as the account root."""
    with clocked_registry(settings, clock) as built, live_server(built) as endpoint:
        session = bound_in_time(requests.Session())
        session.headers["Authorization"] = basic_auth_for(built, ROOT_ACCESS_KEY_ID)
        yield endpoint, session


def _push_image(upstream: SecuredDistribution, name: str, tag: str, created: str) -> tuple[bytes, list[Blob]]:
    config, layer = config_blob({"created": created}), random_blob(4096)
    manifest = image_manifest(config, [layer])
    upstream.push(name, [config, layer], manifest, OCI_MANIFEST, tag)
    return manifest, [config, layer]


def test_a_cached_tag_is_checked_upstream_once_per_interval(settings: Settings, upstream: SecuredDistribution) -> None:
    clock = FakeClock.at_wall_time()
    interval = 10 * 60.0
    name = f"library/moving-{uuid.uuid4().hex[:8]}"
    first, _ = _push_image(upstream, name, "latest", "first")
    with _clocked(dataclasses.replace(settings, upstream_check_minutes=10), clock) as (endpoint, session):
        _rule(endpoint, upstream.host)
        url = f"{endpoint}/v2/hub/{name}/manifests/latest"
        got = _get(session, url, Accept=OCI_MANIFEST)
        assert got.status_code == 200 and got.content == first
        asked = _manifest_requests(upstream, name)

        # Inside the interval: served from the cache, the upstream not asked.
        clock.advance(interval - 1)
        for _ in range(3):
            got = _get(session, url, Accept=OCI_MANIFEST)
            assert got.status_code == 200 and got.content == first
        assert _manifest_requests(upstream, name) == asked

        # After it, with the tag unchanged: one HEAD, the cached image served, the next check an interval away.
        clock.advance(2)
        got = _get(session, url, Accept=OCI_MANIFEST)
        assert got.status_code == 200 and got.content == first
        assert _manifest_requests(upstream, name) == asked + 1
        assert _get(session, url, Accept=OCI_MANIFEST).content == first
        assert _manifest_requests(upstream, name) == asked + 1

        # The tag moved upstream: after the interval the new image is imported and served, its blobs too.
        second, blobs = _push_image(upstream, name, "latest", "second")
        clock.advance(interval + 1)
        got = _get(session, url, Accept=OCI_MANIFEST)
        assert got.status_code == 200 and got.content == second
        assert got.headers["Docker-Content-Digest"] == digest_of(second)
        for blob in blobs:
            fetched = _get(session, f"{endpoint}/v2/hub/{name}/blobs/{blob.digest}")
            assert fetched.status_code == 200 and fetched.content == blob.data
        by_digest = _get(session, f"{endpoint}/v2/hub/{name}/manifests/{digest_of(first)}", Accept=OCI_MANIFEST)
        assert by_digest.status_code == 200 and by_digest.content == first

        # The upstream down: after the interval the cached image is still served.
        upstream.stop()
        try:
            clock.advance(interval + 1)
            for _ in range(2):
                got = _get(session, url, Accept=OCI_MANIFEST)
                assert got.status_code == 200 and got.content == second
            for blob in blobs:
                assert _get(session, f"{endpoint}/v2/hub/{name}/blobs/{blob.digest}").content == blob.data
        finally:
            upstream.start()


def test_a_multi_platform_index_imports_only_the_children_pulled(
    registry: Registry, endpoint: str, pull: requests.Session, upstream: SecuredDistribution
) -> None:
    name = f"library/multi-{uuid.uuid4().hex[:8]}"
    children: list[tuple[bytes, list[Blob]]] = []
    for arch in ("amd64", "arm64"):
        config, layer = config_blob({"architecture": arch, "os": "linux"}), random_blob(64 * 1024)
        manifest = image_manifest(config, [layer])
        upstream.push(name, [config, layer], manifest, OCI_MANIFEST, digest_of(manifest))
        children.append((manifest, [config, layer]))
    index = index_manifest(
        [
            (children[0][0], {"architecture": "amd64", "os": "linux"}),
            (children[1][0], {"architecture": "arm64", "os": "linux"}),
        ]
    )
    upstream.push(name, [], index, OCI_INDEX, "1")
    _rule(endpoint, upstream.host)
    accept = f"{OCI_INDEX}, {OCI_MANIFEST}"

    got = _get(pull, f"{endpoint}/v2/hub/{name}/manifests/1", Accept=accept)
    assert got.status_code == 200 and got.content == index
    (amd64, amd64_blobs), (arm64, arm64_blobs) = children
    got = _get(pull, f"{endpoint}/v2/hub/{name}/manifests/{digest_of(amd64)}", Accept=accept)
    assert got.status_code == 200 and got.content == amd64
    for blob in amd64_blobs:
        fetched = _get(pull, f"{endpoint}/v2/hub/{name}/blobs/{blob.digest}")
        assert fetched.status_code == 200 and fetched.content == blob.data

    # Stored: the index, the child pulled and its blobs; not the other child nor its blobs.
    repository = registry.registry.get_repository(f"hub/{name}")
    assert registry.registry.get_manifest(repository, "1", record_pull=False).digest == digest_of(index)
    assert registry.registry.get_manifest(repository, digest_of(amd64), record_pull=False).digest == digest_of(amd64)
    for blob in amd64_blobs:
        assert registry.registry.blob_size(repository, blob.digest) == len(blob.data)
    with pytest.raises(ManifestUnknown):
        registry.registry.get_manifest(repository, digest_of(arm64), record_pull=False)
    for blob in arm64_blobs:
        with pytest.raises(BlobUnknown):
            registry.registry.blob_size(repository, blob.digest)

    # Pulled later, the other child is imported too.
    got = _get(pull, f"{endpoint}/v2/hub/{name}/manifests/{digest_of(arm64)}", Accept=accept)
    assert got.status_code == 200 and got.content == arm64
    for blob in arm64_blobs:
        fetched = _get(pull, f"{endpoint}/v2/hub/{name}/blobs/{blob.digest}")
        assert fetched.status_code == 200 and fetched.content == blob.data
        assert registry.registry.blob_size(repository, blob.digest) == len(blob.data)
    assert registry.registry.get_manifest(repository, digest_of(arm64), record_pull=False).digest == digest_of(arm64)
    assert _get(pull, f"{endpoint}/v2/hub/{name}/manifests/1", Accept=accept).content == index


def test_skopeo_copies_an_image_through_the_cache_with_the_upstream_digests(
    tmp_path: Path, endpoint: str, upstream: SecuredDistribution
) -> None:
    # Real gzip-compressed tar layers: skopeo compresses a layer it finds uncompressed, changing its digest.
    name, tag = f"library/skopeo-{uuid.uuid4().hex[:8]}", "1"
    layers = [Blob(tar_layer({path: os.urandom(size)}), OCI_LAYER) for path, size in (("a", 2 << 20), ("b", 100))]
    config = config_blob({"author": name})
    manifest = image_manifest(config, layers)
    upstream.push(name, [config, *layers], manifest, OCI_MANIFEST, tag)
    _rule(endpoint, upstream.host)
    skopeo = Skopeo(tmp_path / "skopeo", ecr_registry_credentials(client_for(endpoint, "ecr")))
    layout = tmp_path / "layout"
    source = f"docker://{endpoint.removeprefix('http://')}/hub/{name}:{tag}"
    copied = skopeo.copy(source, f"oci:{layout}:{tag}")
    assert copied.returncode == 0, copied.stderr

    [descriptor] = json.loads((layout / "index.json").read_text())["manifests"]
    assert descriptor["digest"] == digest_of(manifest)
    blobs = layout / "blobs" / "sha256"
    assert (blobs / descriptor["digest"].removeprefix("sha256:")).read_bytes() == manifest
    for blob in [config, *layers]:
        assert (blobs / blob.digest.removeprefix("sha256:")).read_bytes() == blob.data
    # Asked again, now of the cache: the same digests.
    inspected = skopeo.inspect(source)
    assert inspected["Digest"] == digest_of(manifest)
    assert inspected["Layers"] == [layer.digest for layer in layers]


class _ThrottlingProxy:
    """A TCP proxy to ``target`` (TLS passes through it untouched) that slows what the target sends, and tells
    when it has passed on ``mark`` bytes of one answer: time to kill the target mid-stream. It can also hang."""

    def __init__(self, target: str, *, mark: int, rate_chunk: int = 64 * 1024, pause: float = 0.01) -> None:
        host, port = target.rsplit(":", 1)
        self.target = (host, int(port))
        self.mark, self.rate_chunk, self.pause = mark, rate_chunk, pause
        self.marked = threading.Event()
        # While set, nothing is passed on in either direction: an upstream that hangs.
        self.hang = threading.Event()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.2)
        self.host = f"127.0.0.1:{self.listener.getsockname()[1]}"
        self._closing = threading.Event()
        self._threads: list[threading.Thread] = []

    def __enter__(self) -> _ThrottlingProxy:
        self._spawn(self._accept)
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._closing.set()
        for thread in self._threads:
            thread.join(timeout=10)
        self.listener.close()

    def _spawn(self, target: Any, *args: Any) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)
        self._threads.append(thread)
        thread.start()

    def _accept(self) -> None:
        while not self._closing.is_set():
            try:
                client, _ = self.listener.accept()
            except TimeoutError:
                continue
            try:
                server = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            self._spawn(self._pipe, client, server, False)
            self._spawn(self._pipe, server, client, True)

    def _pipe(self, source: socket.socket, sink: socket.socket, throttled: bool) -> None:
        source.settimeout(0.2)
        passed = 0
        deadline = time.monotonic() + TIMEOUT
        try:
            while not self._closing.is_set() and time.monotonic() < deadline:
                try:
                    data = source.recv(self.rate_chunk)
                except TimeoutError:
                    continue
                if not data:
                    break
                if self.hang.is_set():
                    continue  # swallowed, never answered
                sink.sendall(data)
                if throttled:
                    passed += len(data)
                    if passed >= self.mark:
                        self.marked.set()
                    time.sleep(self.pause)
        except OSError:
            pass
        finally:
            for end in (source, sink):
                with contextlib.suppress(OSError):
                    end.shutdown(socket.SHUT_RDWR)
                end.close()


def test_an_upstream_killed_mid_import_leaves_no_corrupt_blob_and_the_next_pull_completes(
    registry: Registry, endpoint: str, pull: requests.Session, upstream: SecuredDistribution
) -> None:
    name = f"library/killed-{uuid.uuid4().hex[:8]}"
    config, layer = config_blob({"author": name}), random_blob(24 * 1024 * 1024)
    manifest = image_manifest(config, [layer])
    upstream.push(name, [config, layer], manifest, OCI_MANIFEST, "1")
    with _ThrottlingProxy(upstream.host, mark=3 * 1024 * 1024) as proxy:
        _rule(endpoint, proxy.host)
        assert _get(pull, f"{endpoint}/v2/hub/{name}/manifests/1", Accept=OCI_MANIFEST).status_code == 200
        url = f"{endpoint}/v2/hub/{name}/blobs/{layer.digest}"

        def fetch() -> bytes | None:
            try:
                response = _get(pull, url)
            except requests.RequestException:
                return None
            return response.content if response.status_code == 200 else None

        try:
            with ThreadPoolExecutor(1) as pool:
                pending = pool.submit(fetch)
                assert proxy.marked.wait(TIMEOUT), "the blob never streamed through the proxy"
                upstream.kill()
                got = pending.result(timeout=TIMEOUT)
            # An error, or the whole blob: never a short or corrupt one.
            assert got is None or got == layer.data
            repository = registry.registry.get_repository(f"hub/{name}")
            if got is None:
                with pytest.raises(BlobUnknown):
                    registry.registry.blob_size(repository, layer.digest)
        finally:
            upstream.start()
        # The upstream back: the next pull fetches the blob whole and caches it.
        response = _get(pull, url)
        assert response.status_code == 200 and response.content == layer.data
        assert registry.registry.blob_size(repository, layer.digest) == len(layer.data)


DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"


def test_skopeo_copies_every_platform_of_a_docker_manifest_list_through_the_cache(
    tmp_path: Path, endpoint: str, upstream: SecuredDistribution
) -> None:
    name = f"library/list-{uuid.uuid4().hex[:8]}"
    children: dict[str, tuple[bytes, list[Blob]]] = {}
    for arch in ("amd64", "arm64"):
        layer = Blob(tar_layer({arch: os.urandom(4096)}), "application/vnd.docker.image.rootfs.diff.tar.gzip")
        body = {"architecture": arch, "os": "linux", "rootfs": {"type": "layers", "diff_ids": []}}
        config = Blob(json.dumps(body).encode(), "application/vnd.docker.container.image.v1+json")
        manifest = json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": DOCKER_MANIFEST,
                "config": config.descriptor(),
                "layers": [layer.descriptor()],
            }
        ).encode()
        upstream.push(name, [config, layer], manifest, DOCKER_MANIFEST, digest_of(manifest))
        children[arch] = (manifest, [config, layer])
    manifests = [
        {
            "mediaType": DOCKER_MANIFEST,
            "digest": digest_of(manifest),
            "size": len(manifest),
            "platform": {"architecture": arch, "os": "linux"},
        }
        for arch, (manifest, _) in children.items()
    ]
    listing = json.dumps({"schemaVersion": 2, "mediaType": DOCKER_LIST, "manifests": manifests}).encode()
    upstream.push(name, [], listing, DOCKER_LIST, "1")
    _rule(endpoint, upstream.host)
    skopeo = Skopeo(tmp_path / "skopeo", ecr_registry_credentials(client_for(endpoint, "ecr")))
    # dir: keeps the manifests as they are (an OCI layout would convert the Docker list to an OCI index).
    copy = tmp_path / "copy"
    source = f"docker://{endpoint.removeprefix('http://')}/hub/{name}:1"
    copied = skopeo.copy(source, f"dir:{copy}", "--preserve-digests", all_images=True)
    assert copied.returncode == 0, copied.stderr

    assert (copy / "manifest.json").read_bytes() == listing
    for manifest, parts in children.values():
        hexes = digest_of(manifest).removeprefix("sha256:")
        assert (copy / f"{hexes}.manifest.json").read_bytes() == manifest
        for blob in parts:
            assert (copy / blob.digest.removeprefix("sha256:")).read_bytes() == blob.data


def test_fsck_counts_the_parts_of_cached_images_not_pulled_yet_as_no_damage(
    registry: Registry, endpoint: str, pull: requests.Session, upstream: SecuredDistribution
) -> None:
    name = f"library/partial-{uuid.uuid4().hex[:8]}"
    children = []
    for arch in ("amd64", "arm64"):
        config, layer = config_blob({"architecture": arch, "os": "linux"}), random_blob(4096)
        manifest = image_manifest(config, [layer])
        upstream.push(name, [config, layer], manifest, OCI_MANIFEST, digest_of(manifest))
        children.append((manifest, {"architecture": arch, "os": "linux"}))
    index = index_manifest(children)
    upstream.push(name, [], index, OCI_INDEX, "1")
    _rule(endpoint, upstream.host)
    accept = f"{OCI_INDEX}, {OCI_MANIFEST}"
    assert _get(pull, f"{endpoint}/v2/hub/{name}/manifests/1", Accept=accept).status_code == 200
    amd64 = digest_of(children[0][0])
    assert _get(pull, f"{endpoint}/v2/hub/{name}/manifests/{amd64}", Accept=accept).status_code == 200

    report = Fsck(registry.store, registry.blobs, registry=registry.registry).check()  # type: ignore[arg-type]

    # The arm64 child, and both blobs of the amd64 one, are the upstream's until pulled: no damage.
    assert report.clean, report.findings
    assert report.checked["references_not_cached_yet"] == 3


def test_a_scan_on_push_of_an_imported_image_fetches_the_layers_not_pulled_yet(
    registry: Registry, endpoint: str, pull: requests.Session, upstream: SecuredDistribution
) -> None:
    name = f"library/scanned-{uuid.uuid4().hex[:8]}"
    layer = Blob(layers.layer(layers.file("etc/os-release", "ID=alpine\nVERSION_ID=3.19.1\n")), OCI_LAYER)
    config = config_blob({"architecture": "amd64", "os": "linux"})
    manifest = image_manifest(config, [layer])
    upstream.push(name, [config, layer], manifest, OCI_MANIFEST, "1")
    _rule(endpoint, upstream.host)
    ecr = client_for(endpoint, "ecr")
    ecr.put_registry_scanning_configuration(
        scanType="BASIC",
        rules=[{"scanFrequency": "SCAN_ON_PUSH", "repositoryFilters": [{"filter": "hub/*", "filterType": "WILDCARD"}]}],
    )
    # Only the manifest is pulled: the scan it queues runs before any layer has been asked for.
    assert _get(pull, f"{endpoint}/v2/hub/{name}/manifests/1", Accept=OCI_MANIFEST).status_code == 200
    registry.jobs.drain()

    found = ecr.describe_image_scan_findings(repositoryName=f"hub/{name}", imageId={"imageTag": "1"})
    assert found["imageScanStatus"]["status"] == "COMPLETE", found["imageScanStatus"]
    repository = registry.registry.get_repository(f"hub/{name}")
    assert registry.registry.blob_size(repository, layer.digest) == len(layer.data)


def test_a_hung_upstream_leaves_the_cached_tag_served_and_is_asked_again_soon(
    settings: Settings, upstream: SecuredDistribution
) -> None:
    clock = FakeClock.at_wall_time()
    interval = 3600.0
    name = f"library/hung-{uuid.uuid4().hex[:8]}"
    first, _ = _push_image(upstream, name, "latest", "first")
    with (
        _ThrottlingProxy(upstream.host, mark=1 << 62, pause=0.0) as proxy,
        _clocked(dataclasses.replace(settings, upstream_check_minutes=60), clock) as (endpoint, session),
    ):
        _rule(endpoint, proxy.host)
        url = f"{endpoint}/v2/hub/{name}/manifests/latest"
        assert _get(session, url, Accept=OCI_MANIFEST).content == first

        # The upstream hangs when the tag is due: the check gives up well before a client would, and the
        # cached image is served (a client allowing 30 s would have given up on a 60 s read timeout).
        proxy.hang.set()
        clock.advance(interval + 1)
        got = session.get(url, headers={"Accept": OCI_MANIFEST}, timeout=30)
        assert got.status_code == 200 and got.content == first

        # Back, with the tag moved: asked again minutes later, not a whole interval later.
        proxy.hang.clear()
        second, _ = _push_image(upstream, name, "latest", "second")
        clock.advance(RECHECK_AFTER_FAILURE_SECONDS + 1)
        got = _get(session, url, Accept=OCI_MANIFEST)
        assert got.status_code == 200 and got.content == second


def test_a_blob_fetch_claimed_by_a_dead_process_is_taken_over_when_its_lease_runs_out(
    settings: Settings, upstream: SecuredDistribution
) -> None:
    clock = FakeClock.at_wall_time()
    name = f"library/orphaned-{uuid.uuid4().hex[:8]}"
    _, (config, layer) = _push_image(upstream, name, "1", "orphaned")
    with clocked_registry(settings, clock) as built, live_server(built) as endpoint:
        session = bound_in_time(requests.Session())
        session.headers["Authorization"] = basic_auth_for(built, ROOT_ACCESS_KEY_ID)
        _rule(endpoint, upstream.host)
        assert _get(session, f"{endpoint}/v2/hub/{name}/manifests/1", Accept=OCI_MANIFEST).status_code == 200
        repository = built.registry.get_repository(f"hub/{name}")
        # Claims left by a process killed while fetching: its lease is never renewed.
        for blob in (config, layer):
            with built.store.write() as conn:
                assert pull_through_queries.claim_fetch(
                    conn, repository.id, blob.digest, "killed", clock(), FETCH_LEASE_SECONDS
                )

        # A pull that comes after the lease ran out takes the fetch over at once.
        clock.advance(FETCH_LEASE_SECONDS + 1)
        got = _get(session, f"{endpoint}/v2/hub/{name}/blobs/{config.digest}")
        assert got.status_code == 200 and got.content == config.data

        # A pull that finds the lease still running waits, and takes over when it runs out.
        with built.store.write() as conn:
            assert pull_through_queries.claim_fetch(
                conn, repository.id, layer.digest, "killed-again", clock(), FETCH_LEASE_SECONDS
            )
        before = upstream.blob_gets(layer.digest)
        with ThreadPoolExecutor(1) as pool:
            pending = pool.submit(_get, session, f"{endpoint}/v2/hub/{name}/blobs/{layer.digest}")
            with contextlib.suppress(TimeoutError):
                pending.result(timeout=0.5)
            assert not pending.done(), "the pull did not wait for the claim that still held its lease"
            clock.advance(FETCH_LEASE_SECONDS + 1)
            got = pending.result(timeout=TIMEOUT)
        assert got.status_code == 200 and got.content == layer.data
        assert upstream.blob_gets(layer.digest) - before == 1
        assert built.registry.blob_size(repository, layer.digest) == len(layer.data)


def test_a_rule_made_on_another_process_is_used_by_the_next_pull_at_once(
    settings: Settings, upstream: SecuredDistribution
) -> None:
    name = f"library/elsewhere-{uuid.uuid4().hex[:8]}"
    manifest, blobs = _push_image(upstream, name, "1", "elsewhere")
    # Two processes of one registry (one metadata store): this one serves the pulls, the other makes the rule.
    with clocked_registry(settings, FakeClock.at_wall_time()) as serving, live_server(serving) as endpoint:
        session = bound_in_time(requests.Session())
        session.headers["Authorization"] = basic_auth_for(serving, ROOT_ACCESS_KEY_ID)
        # The serving process reads the rules (there are none) and remembers them.
        assert _get(session, f"{endpoint}/v2/other/app/manifests/1", Accept=OCI_MANIFEST).status_code == 404
        with clocked_registry(settings, FakeClock.at_wall_time()) as other, live_server(other) as other_endpoint:
            _rule(other_endpoint, upstream.host)

        got = _get(session, f"{endpoint}/v2/hub/{name}/manifests/1", Accept=OCI_MANIFEST)
        assert got.status_code == 200 and got.content == manifest
        for blob in blobs:
            fetched = _get(session, f"{endpoint}/v2/hub/{name}/blobs/{blob.digest}")
            assert fetched.status_code == 200 and fetched.content == blob.data


def test_another_account_pulls_through_the_cache_once_the_registry_policy_grants_it(
    settings: Settings, upstream: SecuredDistribution, image: UpstreamImage
) -> None:
    # given account A's pull-through rule, and account B of the same deployment
    owner, other, domain = "000000000000", "222222222222", "registry.test"
    with (
        registry_for(dataclasses.replace(settings, registry_domain=domain)) as deployment,
        live_server(deployment) as api,
    ):
        _rule(api, upstream.host)
        _, key_id, secret = deployment.registries.accounts.create(account_id=other)
        b_ecr = aws_client("ecr", api, AwsCredentials(key_id, secret))
        token = b_ecr.get_authorization_token()["authorizationData"][0]["authorizationToken"]
        name = f"hub/{image.name}"

        def pull_as_b(path: str) -> Any:
            with TestClient(
                asgi_app(deployment),
                base_url=f"http://{owner}.dkr.ecr.us-east-1.{domain}",
                headers={"Authorization": f"Basic {token}"},
            ) as client:
                return client.get(f"/v2/{name}/{path}", headers={"Accept": OCI_MANIFEST})

        # when B pulls through A's registry before and after A's registry policy grants B what a first pull needs
        denied = pull_as_b(f"manifests/{image.tag}")
        a_ecr = client_for(api, "ecr")
        a_ecr.put_registry_policy(
            policyText=policy_json(
                {
                    "Effect": "Allow",
                    "Principal": {"AWS": f"arn:aws:iam::{other}:root"},
                    "Action": [
                        "ecr:CreateRepository",
                        "ecr:BatchImportUpstreamImage",
                        "ecr:BatchGetImage",
                        "ecr:GetDownloadUrlForLayer",
                    ],
                    "Resource": f"arn:aws:ecr:us-east-1:{owner}:repository/hub/*",
                }
            )
        )
        granted = pull_as_b(f"manifests/{image.tag}")
        blobs = [pull_as_b(f"blobs/{blob.digest}") for blob in image.blobs]

        # then B was refused in AWS's words, then got the upstream's image, cached in A's registry, not B's
        assert denied.status_code == 403, denied.text
        message = denied.json()["errors"][0]["message"]
        assert f"arn:aws:iam::{other}:root" in message and "no resource-based policy allows" in message
        assert granted.status_code == 200, granted.text
        assert granted.content == image.manifest
        assert [(got.status_code, got.content) for got in blobs] == [(200, blob.data) for blob in image.blobs]
        assert [r["repositoryName"] for r in a_ecr.describe_repositories()["repositories"]] == [name]
        assert b_ecr.describe_repositories()["repositories"] == []
