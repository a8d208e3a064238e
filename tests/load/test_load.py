"""A bounded load test of a real `ecrd serve`: tens of clients mixing pushes, pulls, tag listing and API calls,
then stalled and trickling clients. It reports errors, latency percentiles and the server's memory, and checks
that nothing failed, memory stayed flat and stalled clients could not starve the others.

The CI run is bounded (about a minute); ``ECRD_LOAD_SECONDS`` makes it longer."""

from __future__ import annotations

import hashlib
import json
import os
import random
import socket
import statistics
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests

from tests.support.clients import ROOT_CREDENTIALS, aws_client
from tests.support.registry_process import EcrdProcess

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]

CLIENTS = 24
SECONDS = float(os.environ.get("ECRD_LOAD_SECONDS", "40"))
OPERATIONS_CAP = 20_000  # a hard bound whatever the duration


def _tree_rss_mb(pid: int) -> float:
    """Resident memory of a process and its descendants, from /proc."""
    total = 0
    pids = [pid]
    while pids:
        current = pids.pop()
        try:
            with open(f"/proc/{current}/status") as fh:
                for line in fh:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
            children = Path(f"/proc/{current}/task/{current}/children").read_text().split()
        except (FileNotFoundError, ProcessLookupError):
            continue
        pids.extend(int(child) for child in children)
    return total / 1024


@dataclass
class Tally:
    latencies: dict[str, list[float]] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, kind: str, seconds: float, problem: str | None = None) -> None:
        with self.lock:
            self.latencies.setdefault(kind, []).append(seconds)
            if problem:
                self.errors.append(f"{kind}: {problem}")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EcrdProcess]:
    process = EcrdProcess(
        tmp_path_factory.mktemp("load"),
        extra_args=["--workers", "2"],
        env={
            "ECRD_ROOT_ACCESS_KEY_ID": ROOT_CREDENTIALS.access_key_id,
            "ECRD_ROOT_SECRET_ACCESS_KEY": ROOT_CREDENTIALS.secret_access_key,
        },
    )
    process.start()
    try:
        yield process
    finally:
        process.stop()


def _session(url: str) -> requests.Session:
    token = aws_client("ecr", url).get_authorization_token()["authorizationData"][0]["authorizationToken"]
    session = requests.Session()
    session.headers["Authorization"] = f"Basic {token}"
    return session


def _push(session: requests.Session, url: str, repo: str, tag: str, rng: random.Random) -> None:
    layer = rng.randbytes(rng.choice((1024, 64 * 1024, 512 * 1024)))
    config = json.dumps({"architecture": "amd64", "os": "linux", "n": rng.random()}).encode()
    for blob in (layer, config):
        digest = "sha256:" + hashlib.sha256(blob).hexdigest()
        response = session.post(f"{url}/v2/{repo}/blobs/uploads/?digest={digest}", data=blob, timeout=60)
        response.raise_for_status()
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": "sha256:" + hashlib.sha256(config).hexdigest(),
                "size": len(config),
            },
            "layers": [
                {
                    "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                    "digest": "sha256:" + hashlib.sha256(layer).hexdigest(),
                    "size": len(layer),
                }
            ],
        }
    ).encode()
    session.put(
        f"{url}/v2/{repo}/manifests/{tag}",
        data=manifest,
        timeout=60,
        headers={"Content-Type": "application/vnd.oci.image.manifest.v1+json"},
    ).raise_for_status()


def _client(url: str, index: int, deadline: float, budget: list[int], tally: Tally) -> None:
    rng = random.Random(index)
    session = _session(url)
    ecr = aws_client("ecr", url)
    repo = f"load/repo-{index % 4}"
    while time.monotonic() < deadline:
        with tally.lock:
            if budget[0] <= 0:
                return
            budget[0] -= 1
        kind = rng.choices(("push", "pull", "tags", "api"), weights=(2, 5, 2, 1))[0]
        started = time.perf_counter()
        problem = None
        try:
            if kind == "push":
                _push(session, url, repo, f"t{index}-{rng.randrange(5)}", rng)
            elif kind == "pull":
                tag = f"t{rng.randrange(CLIENTS)}-{rng.randrange(5)}"
                manifest = session.get(
                    f"{url}/v2/{repo}/manifests/{tag}",
                    timeout=60,
                    headers={"Accept": "application/vnd.oci.image.manifest.v1+json"},
                )
                if manifest.status_code == 200:
                    for layer in manifest.json()["layers"]:
                        blob = session.get(f"{url}/v2/{repo}/blobs/{layer['digest']}", timeout=60)
                        if hashlib.sha256(blob.content).hexdigest() != layer["digest"].split(":")[1]:
                            problem = "pulled blob does not match its digest"
                elif manifest.status_code != 404:
                    problem = f"manifest GET answered {manifest.status_code}"
            elif kind == "tags":
                response = session.get(f"{url}/v2/{repo}/tags/list?n=50", timeout=60)
                if response.status_code not in (200, 404):
                    problem = f"tags/list answered {response.status_code}"
            else:
                ecr.describe_images(repositoryName=repo, maxResults=20)
        except Exception as exc:
            problem = f"{type(exc).__name__}: {str(exc)[:200]}"
        tally.record(kind, time.perf_counter() - started, problem)


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] * 1000


def test_mixed_load_has_no_errors_and_flat_memory(server: EcrdProcess) -> None:
    # given a registry with four repositories
    ecr = aws_client("ecr", server.url)
    for i in range(4):
        ecr.create_repository(repositoryName=f"load/repo-{i}")
    pid = server._server.pid  # type: ignore[union-attr]
    tally = Tally()
    budget = [OPERATIONS_CAP]
    rss: list[float] = []
    deadline = time.monotonic() + SECONDS

    # when tens of clients push, pull, list and call the API for a bounded time, memory sampled throughout
    threads = [
        threading.Thread(target=_client, args=(server.url, i, deadline, budget, tally), daemon=True)
        for i in range(CLIENTS)
    ]
    for thread in threads:
        thread.start()
    while any(t.is_alive() for t in threads):
        rss.append(_tree_rss_mb(pid))
        time.sleep(0.5)
    for thread in threads:
        thread.join(timeout=60)

    # then nothing failed, and the memory of the second half of the run is no higher than the first's plus slack
    operations = sum(len(v) for v in tally.latencies.values())
    report = {
        kind: {"count": len(v), "p50_ms": round(_percentile(v, 0.5), 1), "p99_ms": round(_percentile(v, 0.99), 1)}
        for kind, v in sorted(tally.latencies.items())
    }
    half = len(rss) // 2
    summary = {
        "clients": CLIENTS,
        "seconds": SECONDS,
        "operations": operations,
        "errors": len(tally.errors),
        "per_kind": report,
        "rss_mb": {
            "first_half_peak": max(rss[:half] or [0]),
            "second_half_peak": max(rss[half:] or [0]),
            "median": statistics.median(rss) if rss else 0,
        },
    }
    print("\nload test:", json.dumps(summary, indent=2))
    assert tally.errors == []
    assert operations > CLIENTS
    assert summary["rss_mb"]["second_half_peak"] <= summary["rss_mb"]["first_half_peak"] + 64


def test_stalled_and_trickling_clients_cannot_starve_the_others(server: EcrdProcess) -> None:
    # given many connections that send half a request and stall, and some that trickle a body byte by byte
    stalled = []
    host, port = server.host.split(":")
    for _ in range(200):
        sock = socket.create_connection((host, int(port)), timeout=5)
        sock.sendall(b"GET /v2/ HTTP/1.1\r\nHost: x\r\n")  # headers never finished
        stalled.append(sock)
    token = aws_client("ecr", server.url).get_authorization_token()["authorizationData"][0]["authorizationToken"]
    trickling = []
    for _ in range(20):
        sock = socket.create_connection((host, int(port)), timeout=5)
        sock.sendall(
            f"POST /v2/load/repo-0/blobs/uploads/?digest=sha256:{'0' * 64} HTTP/1.1\r\nHost: x\r\n"
            f"Authorization: Basic {token}\r\nContent-Length: 1000000\r\n\r\nx".encode()
        )
        trickling.append(sock)
    try:
        # when a normal client asks for something
        started = time.monotonic()
        response = _session(server.url).get(f"{server.url}/v2/load/repo-0/tags/list", timeout=10)

        # then it is served promptly
        assert response.status_code in (200, 404)
        assert time.monotonic() - started < 5
    finally:
        for sock in stalled + trickling:
            sock.close()
