"""The HTTP server's supervisor: what `ecrd serve` becomes once the data directory is ready.

It imports only the settings and granian — the workers import the application — so the process that lives
as long as the server stays small. Settings come from the serve command through the environment.
"""

from __future__ import annotations

from pathlib import Path

from ecrd.config import Settings

HEADER_READ_TIMEOUT_MS = 10_000
MAX_REQUESTS_IN_FLIGHT = 256


def main() -> int:
    from granian.constants import Interfaces
    from granian.http import HTTP1Settings
    from granian.server import Server

    settings = Settings.from_serialized_environment()
    server = Server(
        "ecrd.app:create_app",
        address=settings.host,
        port=settings.port,
        interface=Interfaces.ASGI,
        workers=settings.workers,
        factory=True,
        log_level=settings.log_level,  # type: ignore[arg-type]
        log_access=False,
        # A client gets this long to send a request's headers (also the idle limit of a kept-alive
        # connection), so stalled or trickling clients cannot pile up; in-flight requests per worker are
        # bounded so a flood queues in the kernel's backlog instead of exhausting memory.
        http1_settings=HTTP1Settings(header_read_timeout=HEADER_READ_TIMEOUT_MS),
        backpressure=MAX_REQUESTS_IN_FLIGHT,
        ssl_cert=Path(settings.tls_cert) if settings.tls_cert else None,
        ssl_key=Path(settings.tls_key) if settings.tls_key else None,
    )
    print(f"ecrd: serving on {settings.resolved_public_url} (data in {settings.data_dir})", flush=True)
    server.serve()
    return 0
