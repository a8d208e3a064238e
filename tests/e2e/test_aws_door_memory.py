"""A real `ecrd serve` under a flood of unsigned 20 MiB bodies: each is refused unread, and memory stays flat."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.test_aws_door_limits import announce_and_await, ecr_headers
from tests.support.registry_process import EcrdProcess

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

REQUESTS = 200
CLIENT_THREADS = 8
"""Requests in flight at once: each sends its whole body, as a careless or hostile client would."""
BODY_BYTES = 20 * 1024 * 1024
GROWTH_BOUND_MIB = 64.0
"""Allowed growth of the server's resident memory: buffering even three such bodies at once would exceed it."""
FLOOD_DEADLINE = 120.0
SAMPLE_INTERVAL = 0.05


@pytest.fixture
def server(tmp_path: Path) -> Iterator[EcrdProcess]:
    process = EcrdProcess(tmp_path / "ecrd")
    with process:
        yield process


def tree_rss_mib(pid: int) -> float:
    """Resident memory of ``pid`` (the supervisor) and its descendants (the workers), from /proc."""
    total_kib = 0
    pending = [pid]
    while pending:
        current = pending.pop()
        try:
            for line in Path(f"/proc/{current}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total_kib += int(line.split()[1])
            pending += [int(child) for child in Path(f"/proc/{current}/task/{current}/children").read_text().split()]
        except (FileNotFoundError, ProcessLookupError):
            continue
    return total_kib / 1024


def send_unsigned_body(host: str, port: int, payload: bytes) -> None:
    """POST an unsigned JSON 1.1 request with a whole 20 MiB body; whatever the server does, end in bounded time."""
    head = (
        f"POST / HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/x-amz-json-1.1\r\n"
        "X-Amz-Target: AmazonEC2ContainerRegistry_V20150921.DescribeRepositories\r\n"
        f"Content-Length: {len(payload)}\r\n\r\n"
    ).encode()
    with socket.create_connection((host, port), timeout=30) as sock:
        try:
            sock.sendall(head)
            sock.sendall(payload)
            sock.recv(65536)
        except (BrokenPipeError, ConnectionResetError, TimeoutError):
            pass  # refused and closed while the body was still on its way: what a server should do


def test_unsigned_bodies_are_refused_unread_and_memory_stays_flat(server: EcrdProcess) -> None:
    # Given a warm server (its workers have loaded the application and answered once)
    status, headers, _, closed = announce_and_await(server.url, ecr_headers("DescribeRepositories"))
    assert (status, headers.get("connection"), closed) == (403, "close", True)
    baseline = tree_rss_mib(server.pid)
    peak = baseline

    # When 200 unsigned requests each send a whole 20 MiB body, eight at a time
    payload = b"{" + b" " * (BODY_BYTES - 1)
    remaining = iter(range(REQUESTS))
    lock = threading.Lock()
    deadline = time.monotonic() + FLOOD_DEADLINE

    def client() -> None:
        while time.monotonic() < deadline:
            with lock:
                if next(remaining, None) is None:
                    return
            send_unsigned_body("127.0.0.1", server.port, payload)

    threads = [threading.Thread(target=client, daemon=True) for _ in range(CLIENT_THREADS)]
    for thread in threads:
        thread.start()
    while any(thread.is_alive() for thread in threads) and time.monotonic() < deadline + 10:
        peak = max(peak, tree_rss_mib(server.pid))
        time.sleep(SAMPLE_INTERVAL)
    for thread in threads:
        thread.join(timeout=10)
    after = tree_rss_mib(server.pid)

    # Then every request was dealt with in time, the server still answers, and its memory barely moved
    assert not any(thread.is_alive() for thread in threads), "the flood did not finish in time"
    assert next(remaining, None) is None, "not every request was sent before the deadline"
    status, _, _, _ = announce_and_await(server.url, ecr_headers("DescribeRepositories"))
    assert status == 403
    assert peak - baseline < GROWTH_BOUND_MIB, f"RSS {baseline:.0f} MiB → peak {peak:.0f} MiB (after: {after:.0f})"
    assert after - baseline < GROWTH_BOUND_MIB
