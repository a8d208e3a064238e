"""An HTTP proxy in front of a real S3 server that injects the failures object stores have: 5xx and SlowDown
answers, connections dropped before or after the request reached the store, bodies cut short, and delays.

Tests arm faults with ``fail_next(kind, times=…, method=…, path=…)``; each request that matches an armed fault
suffers it (and uses up one of its ``times``), every other request is relayed unchanged. ``served`` counts
requests by method so tests can say what reached the store.
"""

from __future__ import annotations

import http.client
import socket
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Literal
from urllib.parse import urlsplit

from tests.support.ports import LOOPBACK

FaultKind = Literal["503", "500", "slowdown", "reset", "lost-answer", "cut-body", "delay"]
"""503/500/slowdown: answered by the proxy, never reaching the store. reset: the connection closes before the
request is sent on. lost-answer: the store carries the request out, then the connection closes before its
answer. cut-body: the answer's body stops halfway and the connection closes. delay: ``delay`` seconds pass
before the request is sent on."""

_ERROR_BODIES = {
    "503": (503, "ServiceUnavailable", "Please reduce your request rate."),
    "500": (500, "InternalError", "We encountered an internal error. Please try again."),
    "slowdown": (503, "SlowDown", "Please reduce your request rate."),
}
_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "proxy-connection"}


@dataclass
class _Fault:
    kind: FaultKind
    times: int
    method: str | None
    path: str | None
    delay: float

    def matches(self, method: str, path: str) -> bool:
        return (
            self.times > 0
            and (self.method is None or self.method == method)
            and (self.path is None or self.path in path)
        )


class FaultyS3Proxy:
    def __init__(self, upstream_url: str) -> None:
        parts = urlsplit(upstream_url)
        self.upstream = (parts.hostname or LOOPBACK, parts.port or 80)
        self._faults: list[_Fault] = []
        self._lock = threading.Lock()
        self.served: Counter[str] = Counter()
        self.injected: Counter[str] = Counter()
        self._server = ThreadingHTTPServer((LOOPBACK, 0), self._handler_class())
        self._server.daemon_threads = True
        self.url = f"http://{LOOPBACK}:{self._server.server_address[1]}"

    def fail_next(
        self,
        kind: FaultKind,
        *,
        times: int = 1,
        method: str | None = None,
        path: str | None = None,
        delay: float = 0.0,
    ) -> None:
        """Arm a fault for the next ``times`` requests with this method whose path (and query) contains ``path``."""
        with self._lock:
            self._faults.append(_Fault(kind, times, method, path, delay))

    def clear(self) -> None:
        """Disarm every fault and forget the counts."""
        with self._lock:
            self._faults.clear()
            self.served.clear()
            self.injected.clear()

    def _take_fault(self, method: str, path: str) -> _Fault | None:
        with self._lock:
            self.served[method] += 1
            for fault in self._faults:
                if fault.matches(method, path):
                    fault.times -= 1
                    self.injected[fault.kind] += 1
                    return fault
        return None

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                return

            def _relay(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                fault = proxy._take_fault(self.command, self.path)
                if fault is not None and fault.kind in _ERROR_BODIES:
                    self._answer_error(*_ERROR_BODIES[fault.kind])
                    return
                if fault is not None and fault.kind == "reset":
                    self._drop()
                    return
                if fault is not None and fault.kind == "delay":
                    time.sleep(fault.delay)
                upstream = http.client.HTTPConnection(*proxy.upstream, timeout=120)
                try:
                    headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP}
                    upstream.request(self.command, self.path, body=body, headers=headers)
                    answer = upstream.getresponse()
                    data = answer.read()
                    if fault is not None and fault.kind == "lost-answer":
                        self._drop()
                        return
                    self.send_response(answer.status, answer.reason)
                    for key, value in answer.getheaders():
                        # A HEAD answer keeps the store's Content-Length: the size of the object it has no body of.
                        if key.lower() not in _HOP_BY_HOP and (
                            key.lower() != "content-length" or self.command == "HEAD"
                        ):
                            self.send_header(key, value)
                    if self.command != "HEAD":
                        self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    if fault is not None and fault.kind == "cut-body" and len(data) > 1:
                        self.wfile.write(data[: len(data) // 2])
                        self.wfile.flush()
                        self._drop()
                        return
                    if self.command != "HEAD":
                        self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    self.close_connection = True  # the client gave up waiting (a delay fault): as a store sees it
                finally:
                    upstream.close()

            def _answer_error(self, status: int, code: str, message: str) -> None:
                body = (
                    f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code>'
                    f"<Message>{message}</Message></Error>"
                ).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/xml")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            def _drop(self) -> None:
                self.close_connection = True
                with suppress(OSError):
                    self.connection.shutdown(socket.SHUT_RDWR)

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _relay

        return Handler

    def serve(self) -> threading.Thread:
        thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        thread.start()
        return thread

    def shutdown(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@contextmanager
def faulty_s3_proxy(upstream_url: str) -> Iterator[FaultyS3Proxy]:
    """A running proxy to ``upstream_url``; stopped on exit."""
    proxy = FaultyS3Proxy(upstream_url)
    thread = proxy.serve()
    try:
        yield proxy
    finally:
        proxy.shutdown()
        thread.join(timeout=10)
