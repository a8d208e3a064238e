"""`ecrd serve`: resolve settings, prepare the data directory and the root key, and run the HTTP server."""

from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path

from ecrd.config import SERIALIZED_ENV, Settings
from ecrd.metadata.store import MetadataStore
from ecrd.observability import lean_log_records
from ecrd.services.iam import IdentityService
from ecrd.services.secrets import SecretBox

ROOT_CREDENTIALS_FILE = "root-credentials"
HEADER_READ_TIMEOUT_MS = 10_000
MAX_REQUESTS_IN_FLIGHT = 256


def run(args: argparse.Namespace) -> int:
    from ecrd.cli.main import settings_flags

    settings = Settings.load(flags=settings_flags(args), config_file=args.config)
    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s")
    lean_log_records()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    # Migrate and make the root key once here, before workers start, so they never race on either.
    store = MetadataStore(settings.resolved_database_url)
    store.migrate()
    identity = IdentityService(
        store,
        account_id=settings.account_id,
        secret_box=SecretBox.load(
            data_dir=settings.data_dir,
            master_key=settings.master_key.reveal(),
            master_key_file=settings.master_key_file,
        ),
    )
    created = identity.bootstrap_root(
        settings.root_access_key_id or None, settings.root_secret_access_key.reveal() or None
    )
    store.dispose()
    if created is not None:
        _announce_root_key(settings, *created)
    os.environ[SERIALIZED_ENV] = settings.serialize()

    from granian.constants import Interfaces
    from granian.http import HTTP1Settings
    from granian.server import Server

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


def _announce_root_key(settings: Settings, access_key_id: str, secret: str) -> None:
    """Print the generated root key once, and keep it in a file only its owner can read."""
    path = settings.data_dir / ROOT_CREDENTIALS_FILE
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(f"AWS_ACCESS_KEY_ID={access_key_id}\nAWS_SECRET_ACCESS_KEY={secret}\n")
    print(
        "ecrd: created the account root's access key (shown once; also saved to "
        f"{path}):\n  export AWS_ACCESS_KEY_ID={access_key_id}\n  export AWS_SECRET_ACCESS_KEY={secret}",
        flush=True,
    )
