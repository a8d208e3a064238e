"""Filling a registry for the scale benchmark: where each image goes, and pushing images with parallel clients.

Every image is a small OCI manifest that shares one config blob and one layer with all the others and differs
by one annotation (its number), so an image costs the registry a manifest and a tag, not blobs. Image ``i`` is
tagged ``i<7 digits>`` and its manifest bytes are a function of ``i`` alone: the harness recomputes any image's
digest instead of keeping a million of them in memory.

Layout: one large repository (``scale-big``) holds half of the images, up to 10⁵; the rest go into repositories
of 10, 100 and 1000 images in turn (``scale-r<5 digits>``), so a registry of 10⁶ images has one repository of
10⁵ and about 2,400 small ones.
"""

from __future__ import annotations

import base64
import bisect
import hashlib
import http.client
import json
import os
import random
import time
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from urllib.parse import urlsplit

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
BIG_REPOSITORY = "scale-big"
BIG_MAX = 100_000
SMALL_SIZES = (10, 100, 1000)
SEED_REPOSITORY = "scale-seed"
CHUNK = 250
"""Images one client pushes per task: small enough to stop near a deadline, big enough to keep clients busy."""
HTTP_TIMEOUT = 120.0

_CONFIG = json.dumps(
    {"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": []}}, sort_keys=True
).encode()
_LAYER = random.Random(15).randbytes(512)
CONFIG_DIGEST = "sha256:" + hashlib.sha256(_CONFIG).hexdigest()
LAYER_DIGEST = "sha256:" + hashlib.sha256(_LAYER).hexdigest()


def tag_of(index: int) -> str:
    return f"i{index:07d}"


def manifest_of(index: int) -> bytes:
    """Image ``index``'s manifest: the shared config and layer, and its number as an annotation."""
    return json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": CONFIG_DIGEST, "size": len(_CONFIG)},
            "layers": [{"mediaType": OCI_LAYER, "digest": LAYER_DIGEST, "size": len(_LAYER)}],
            "annotations": {"org.ecrd.bench.image": str(index)},
        },
        separators=(",", ":"),
    ).encode()


def digest_of(index: int) -> str:
    return "sha256:" + hashlib.sha256(manifest_of(index)).hexdigest()


@dataclass
class Repository:
    name: str
    start: int
    """Number of the first image of this repository."""
    capacity: int
    count: int = 0

    def indexes(self) -> range:
        return range(self.start, self.start + self.count)


@dataclass
class Layout:
    """Which repository holds which images. Images are numbered from 0, the large repository's first."""

    repositories: list[Repository] = field(default_factory=list)
    big: Repository = field(default_factory=lambda: Repository(BIG_REPOSITORY, 0, BIG_MAX))
    next_index: int = BIG_MAX
    """Numbers from BIG_MAX up go to the small repositories, in order."""

    @property
    def total(self) -> int:
        return self.big.count + sum(r.count for r in self.repositories)

    def plan(self, target: int) -> list[tuple[Repository, int, int]]:
        """The (repository, first image, count) runs that grow the registry to ``target`` images; the new
        repositories are added to the layout (empty until ``filled`` says otherwise)."""
        runs: list[tuple[Repository, int, int]] = []
        big_wanted = min(target // 2, BIG_MAX)
        if big_wanted > self.big.count:
            runs.append((self.big, self.big.start + self.big.count, big_wanted - self.big.count))
        missing = target - big_wanted - sum(r.count for r in self.repositories)
        planned = {id(r): r.count for r in self.repositories}
        while missing > 0:
            current = self.repositories[-1] if self.repositories else None
            if current is None or planned[id(current)] >= current.capacity:
                capacity = SMALL_SIZES[len(self.repositories) % len(SMALL_SIZES)]
                current = Repository(f"scale-r{len(self.repositories):05d}", self.next_index, capacity)
                self.next_index += capacity
                self.repositories.append(current)
                planned[id(current)] = 0
            take = min(missing, current.capacity - planned[id(current)])
            runs.append((current, current.start + planned[id(current)], take))
            planned[id(current)] += take
            missing -= take
        return runs

    def all_repositories(self) -> list[Repository]:
        return [r for r in [self.big, *self.repositories] if r.count or r is self.big]

    def sampler(self, rng: random.Random) -> ImageSampler:
        return ImageSampler([r for r in [self.big, *self.repositories] if r.count], rng)


class ImageSampler:
    """Images drawn uniformly among all stored ones (every image equally likely, whatever its repository)."""

    def __init__(self, repositories: list[Repository], rng: random.Random) -> None:
        self.repositories = repositories
        self.rng = rng
        self.ends: list[int] = []
        total = 0
        for repository in repositories:
            total += repository.count
            self.ends.append(total)
        self.total = total

    def image(self) -> tuple[Repository, int]:
        position = self.rng.randrange(self.total)
        at = bisect.bisect_right(self.ends, position)
        repository = self.repositories[at]
        before = self.ends[at - 1] if at else 0
        return repository, repository.start + position - before

    def in_repository(self, repository: Repository) -> int:
        return repository.start + self.rng.randrange(repository.count)


# -- pushing ---------------------------------------------------------------------------------------------------

_connection: http.client.HTTPConnection | None = None
_owner = 0


def _request(
    host: str, authorization: str, method: str, target: str, body: bytes, headers: dict[str, str]
) -> tuple[int, bytes]:
    """One request on this process's keep-alive connection (reopened once if the server closed it)."""
    global _connection, _owner
    if _owner != os.getpid():
        # A forked client must not share its parent's socket: open its own.
        _connection, _owner = None, os.getpid()
    for attempt in range(2):
        if _connection is None:
            _connection = http.client.HTTPConnection(host, timeout=HTTP_TIMEOUT)
        try:
            _connection.request(method, target, body=body, headers={"Authorization": authorization, **headers})
            response = _connection.getresponse()
            return response.status, response.read()
        except (ConnectionError, http.client.HTTPException):
            _connection.close()
            _connection = None
            if attempt:
                raise
    raise AssertionError("unreachable")


def push_run(host: str, authorization: str, repository: str, first: int, count: int) -> int:
    """Push images ``first`` … ``first + count - 1`` (each by its tag) to ``repository``; returns the count."""
    for index in range(first, first + count):
        status, body = _request(
            host,
            authorization,
            "PUT",
            f"/v2/{repository}/manifests/{tag_of(index)}",
            manifest_of(index),
            {"Content-Type": OCI_MANIFEST},
        )
        if status != 201:
            raise RuntimeError(f"PUT manifest {repository}:{tag_of(index)} -> {status}: {body[:300]!r}")
    return count


def _chunks(runs: list[tuple[Repository, int, int]]) -> Iterator[tuple[Repository, int, int]]:
    for repository, first, count in runs:
        for start in range(first, first + count, CHUNK):
            yield repository, start, min(CHUNK, first + count - start)


def prepare_repository(host: str, authorization: str, name: str) -> None:
    """Mount the shared config and layer into a new repository from the seed repository (no bytes move)."""
    for digest in (CONFIG_DIGEST, LAYER_DIGEST):
        status, body = _request(
            host, authorization, "POST", f"/v2/{name}/blobs/uploads/?mount={digest}&from={SEED_REPOSITORY}", b"", {}
        )
        if status != 201:
            raise RuntimeError(f"mount {digest} into {name} -> {status}: {body[:300]!r}")


def start_upload_location(host: str, authorization: str, repository: str) -> str:
    """POST an upload and return its Location as a request target."""
    conn = http.client.HTTPConnection(host, timeout=HTTP_TIMEOUT)
    try:
        conn.request("POST", f"/v2/{repository}/blobs/uploads/", headers={"Authorization": authorization})
        response = conn.getresponse()
        response.read()
        if response.status != 202:
            raise RuntimeError(f"start upload -> {response.status}")
        parts = urlsplit(response.headers["Location"])
        return parts.path + (f"?{parts.query}" if parts.query else "")
    finally:
        conn.close()


def push_blob(host: str, authorization: str, repository: str, data: bytes) -> str:
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    location = start_upload_location(host, authorization, repository)
    separator = "&" if "?" in location else "?"
    status, body = _request(
        host,
        authorization,
        "PUT",
        f"{location}{separator}digest={digest}",
        data,
        {"Content-Type": "application/octet-stream"},
    )
    if status != 201:
        raise RuntimeError(f"PUT blob {digest} -> {status}: {body[:300]!r}")
    return digest


def seed(host: str, authorization: str) -> None:
    push_blob(host, authorization, SEED_REPOSITORY, _CONFIG)
    push_blob(host, authorization, SEED_REPOSITORY, _LAYER)


@dataclass
class FillResult:
    images: int
    seconds: float
    repositories_created: int
    seconds_creating: float
    stopped_early: bool

    @property
    def rate(self) -> float:
        return self.images / self.seconds if self.seconds > 0 else 0.0


def basic_authorization(password: str) -> str:
    return "Basic " + base64.b64encode(f"AWS:{password}".encode()).decode()


def fill(
    layout: Layout,
    target: int,
    *,
    host: str,
    authorization: str,
    create_repository: object,
    clients: int,
    deadline: float,
    log: object,
) -> FillResult:
    """Grow the registry to ``target`` images with ``clients`` processes pushing in parallel, each on its own
    keep-alive connection; stops at ``deadline`` (monotonic) with what was pushed so far counted."""
    runs = layout.plan(target)
    new = [r for r in {id(r): r for r, _first, _count in runs}.values() if r.count == 0]
    started = time.monotonic()
    for repository in new:
        create_repository(repository.name)  # type: ignore[operator]
        prepare_repository(host, authorization, repository.name)
    created_seconds = time.monotonic() - started
    pushed = 0
    stopped = False
    last_log = time.monotonic()
    started = time.monotonic()
    chunks = _chunks(runs)
    with ProcessPoolExecutor(max_workers=clients) as pool:
        pending: dict[Future[int], tuple[Repository, int, int]] = {}
        exhausted = False
        while pending or not exhausted:
            while not exhausted and not stopped and len(pending) < clients * 2:
                chunk = next(chunks, None)
                if chunk is None:
                    exhausted = True
                    break
                repository, first, count = chunk
                pending[pool.submit(push_run, host, authorization, repository.name, first, count)] = chunk
            if not pending:
                break
            done, _ = wait(pending, timeout=60, return_when=FIRST_COMPLETED)
            for future in done:
                repository, _first, count = pending.pop(future)
                # Chunks are submitted in order and all finish before the pool closes: each repository's
                # stored images stay a prefix of its numbers, which is what the sampler draws from.
                repository.count += future.result()
                pushed += count
            if time.monotonic() > deadline and not stopped:
                stopped = True
                exhausted = True
            if time.monotonic() - last_log > 30:
                last_log = time.monotonic()
                elapsed = time.monotonic() - started
                log(f"  {pushed} images pushed in {elapsed:.0f} s ({pushed / elapsed:.0f}/s)")  # type: ignore[operator]
    return FillResult(pushed, time.monotonic() - started, len(new), created_seconds, stopped)
