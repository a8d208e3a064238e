"""A real HTTP server around an in-process registry, for clients that need a socket (boto3, the AWS CLI)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import uvicorn

from ecrd.app import Registry, asgi_app


def free_loopback_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def live_server(registry: Registry, *, port: int | None = None) -> Iterator[str]:
    """Serve ``registry`` on 127.0.0.1 (on ``port``, else a free one) in a background thread; yield its URL."""
    port = port if port is not None else free_loopback_port()
    config = uvicorn.Config(asgi_app(registry), host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the in-process server did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
