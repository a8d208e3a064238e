"""What the scale benchmark measures at each size: one request of each operation against images drawn at random,
repeated, with the latency of each and the server's CPU per request; full listings of the large repository; the
metadata database's size.

A page "at a random place" of an ECR listing starts after a random image: its nextToken is built the way ecrd
builds one (``ecrd.domain.pages``: the URL-safe base64 of the JSON position), so a probe is not always the first,
hot page. The OCI listings take their position in the clear (``last``).
"""

from __future__ import annotations

import base64
import http.client
import json
import random
import sqlite3
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from measure import UsageMeter
from scale_fill import OCI_MANIFEST, Layout, digest_of, tag_of

PAGE = 100
FULL_LISTING_PAGE = 1000
BATCH_IDS = 10
HTTP_TIMEOUT = 120.0


def _token(position: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(position, separators=(",", ":")).encode()).decode()


@dataclass
class OperationResult:
    name: str
    requests: int
    p50_ms: float
    p90_ms: float
    p99_ms: float
    mean_ms: float
    server_cpu_ms: float
    """Server CPU per request (the whole process tree, from /proc)."""

    def as_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


class Oci:
    """One keep-alive connection to /v2/."""

    def __init__(self, host: str, authorization: str) -> None:
        self.host = host
        self.authorization = authorization
        self.conn = http.client.HTTPConnection(host, timeout=HTTP_TIMEOUT)

    def get(self, target: str, *, method: str = "GET", accept: str | None = None) -> tuple[int, bytes, str]:
        headers = {"Authorization": self.authorization}
        if accept:
            headers["Accept"] = accept
        for attempt in range(2):
            try:
                self.conn.request(method, target, headers=headers)
                response = self.conn.getresponse()
                body = response.read()
                break
            except (ConnectionError, http.client.HTTPException):
                # The server closes a connection left idle (during a fill): reconnect once.
                self.conn.close()
                self.conn = http.client.HTTPConnection(self.host, timeout=HTTP_TIMEOUT)
                if attempt:
                    raise
        if response.status != 200:
            raise RuntimeError(f"{method} {target} -> {response.status}: {body[:300]!r}")
        return response.status, body, response.headers.get("Link", "")

    def close(self) -> None:
        self.conn.close()


class Probes:
    """The operations, each one request with its arguments drawn from ``rng`` among the stored images."""

    def __init__(self, layout: Layout, oci: Oci, ecr: Any, rng: random.Random) -> None:
        self.layout = layout
        self.oci = oci
        self.ecr = ecr
        self.rng = rng
        self.sampler = layout.sampler(rng)
        self.big = layout.big
        self.names = sorted(r.name for r in layout.all_repositories())

    def _image(self) -> tuple[str, int]:
        repository, index = self.sampler.image()
        return repository.name, index

    def _ids_in_one_repository(self) -> tuple[str, list[dict[str, str]]]:
        repository, _ = self.sampler.image()
        indexes = {self.sampler.in_repository(repository) for _ in range(BATCH_IDS)}
        return repository.name, [{"imageTag": tag_of(i)} for i in sorted(indexes)]

    def _list_images_position(self) -> list[str]:
        # ListImages' position is (digest, tag) of the last item of the previous page.
        index = self.sampler.in_repository(self.big)
        return [digest_of(index), tag_of(index)]

    def operations(self) -> dict[str, Callable[[], object]]:
        big = self.big.name

        def manifest(method: str, by_digest: bool) -> Callable[[], object]:
            def run() -> object:
                name, index = self._image()
                reference = digest_of(index) if by_digest else tag_of(index)
                return self.oci.get(f"/v2/{name}/manifests/{reference}", method=method, accept=OCI_MANIFEST)

            return run

        def big_digest() -> str:
            return digest_of(self.sampler.in_repository(self.big))

        return {
            "manifest GET by tag": manifest("GET", False),
            "manifest GET by digest": manifest("GET", True),
            "manifest HEAD by tag": manifest("HEAD", False),
            "manifest HEAD by digest": manifest("HEAD", True),
            "tags/list page (n=100, last)": lambda: self.oci.get(
                f"/v2/{big}/tags/list?n={PAGE}&last={tag_of(self.sampler.in_repository(self.big))}"
            ),
            "_catalog page (n=100, last)": lambda: self.oci.get(
                f"/v2/_catalog?n={PAGE}&last={self.rng.choice(self.names)}"
            ),
            "ListImages page": lambda: self.ecr.list_images(
                repositoryName=big, maxResults=PAGE, nextToken=_token(self._list_images_position())
            ),
            "ListImages page (filter TAGGED)": lambda: self.ecr.list_images(
                repositoryName=big,
                maxResults=PAGE,
                nextToken=_token(self._list_images_position()),
                filter={"tagStatus": "TAGGED"},
            ),
            "DescribeImages page": lambda: self.ecr.describe_images(
                repositoryName=big, maxResults=PAGE, nextToken=_token(big_digest())
            ),
            "DescribeImages page (filter TAGGED)": lambda: self.ecr.describe_images(
                repositoryName=big,
                maxResults=PAGE,
                nextToken=_token(big_digest()),
                filter={"tagStatus": "TAGGED"},
            ),
            "DescribeImages (10 imageIds)": lambda: self.ecr.describe_images(
                **dict(zip(("repositoryName", "imageIds"), self._ids_in_one_repository(), strict=True))
            ),
            "BatchGetImage (10 imageIds)": lambda: self.ecr.batch_get_image(
                **dict(zip(("repositoryName", "imageIds"), self._ids_in_one_repository(), strict=True))
            ),
            "DescribeRepositories page": lambda: self.ecr.describe_repositories(
                maxResults=PAGE, nextToken=_token(self.rng.choice(self.names))
            ),
            "GetAuthorizationToken": lambda: self.ecr.get_authorization_token(),
        }


def measure_operation(
    name: str, run: Callable[[], object], *, requests: int, warmup: int, root: int
) -> OperationResult:
    for _ in range(warmup):
        run()
    latencies: list[float] = []
    with UsageMeter(root) as meter:
        for _ in range(requests):
            started = time.perf_counter()
            run()
            latencies.append((time.perf_counter() - started) * 1000)
    return OperationResult(
        name=name,
        requests=requests,
        p50_ms=_percentile(latencies, 0.5),
        p90_ms=_percentile(latencies, 0.9),
        p99_ms=_percentile(latencies, 0.99),
        mean_ms=statistics.fmean(latencies),
        server_cpu_ms=meter.usage.cpu_seconds * 1000 / requests,
    )


@dataclass
class FullListing:
    name: str
    items: int
    pages: int
    seconds: float
    server_cpu_seconds: float

    @property
    def ms_per_1000(self) -> float:
        return self.seconds * 1e6 / self.items if self.items else 0.0

    def as_json(self) -> dict[str, Any]:
        return {**self.__dict__, "ms_per_1000_items": self.ms_per_1000}


def full_listings(probes: Probes, *, root: int, deadline: float) -> list[FullListing]:
    """Every page of ListImages and of tags/list over the large repository (pages of 1000), timed."""
    out = []
    big = probes.big.name

    def list_images() -> tuple[int, int]:
        items, pages, token = 0, 0, None
        while time.monotonic() < deadline:
            kwargs: dict[str, Any] = {"repositoryName": big, "maxResults": FULL_LISTING_PAGE}
            if token:
                kwargs["nextToken"] = token
            answer = probes.ecr.list_images(**kwargs)
            items += len(answer["imageIds"])
            pages += 1
            token = answer.get("nextToken")
            if not token:
                break
        return items, pages

    def tags_list() -> tuple[int, int]:
        items, pages, target = 0, 0, f"/v2/{big}/tags/list?n={FULL_LISTING_PAGE}"
        while time.monotonic() < deadline:
            _status, body, link = probes.oci.get(target)
            items += len(json.loads(body)["tags"] or [])
            pages += 1
            if not link:
                break
            target = link[link.index("<") + 1 : link.index(">")]
        return items, pages

    for name, walk in (("ListImages (all pages)", list_images), ("tags/list (all pages)", tags_list)):
        with UsageMeter(root) as meter:
            started = time.perf_counter()
            items, pages = walk()
            seconds = time.perf_counter() - started
        out.append(FullListing(name, items, pages, seconds, meter.usage.cpu_seconds))
    return out


def sqlite_size(path: Path) -> dict[str, int]:
    """The database file and its WAL after a checkpoint (TRUNCATE: the WAL is folded in and emptied if it can)."""
    with sqlite3.connect(path, timeout=30) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        page_size = conn.execute("PRAGMA page_size").fetchone()[0]
        free = conn.execute("PRAGMA freelist_count").fetchone()[0]
    wal = path.with_name(path.name + "-wal")
    return {
        "file_bytes": path.stat().st_size,
        "wal_bytes": wal.stat().st_size if wal.exists() else 0,
        "free_bytes": page_size * free,
    }


def sqlite_tables(path: Path) -> dict[str, int]:
    """Bytes per table and index (the dbstat virtual table, when SQLite has it)."""
    try:
        with sqlite3.connect(path, timeout=30) as conn:
            rows = conn.execute("SELECT name, SUM(pgsize) FROM dbstat GROUP BY name").fetchall()
    except sqlite3.Error:
        return {}
    return {name: int(size) for name, size in rows}


def postgres_size(url: str) -> dict[str, Any]:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        database = conn.execute("SELECT pg_database_size(current_database())").fetchone()
        tables = conn.execute(
            "SELECT relname, pg_total_relation_size(relid) FROM pg_catalog.pg_statio_user_tables"
        ).fetchall()
    return {"database_bytes": int(database[0]) if database else 0, "tables": {n: int(s) for n, s in tables}}
