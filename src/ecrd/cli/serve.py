"""`ecrd serve`: resolve settings, prepare the data directory, and run the HTTP server."""

from __future__ import annotations

import argparse
import logging
import os

from ecrd.config import SERIALIZED_ENV, Settings
from ecrd.metadata.store import MetadataStore


def run(args: argparse.Namespace) -> int:
    from ecrd.cli.main import settings_flags

    settings = Settings.load(flags=settings_flags(args), config_file=args.config)
    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s")
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    # Migrate once here, before workers start, so they never race on the schema.
    store = MetadataStore(settings.resolved_database_url)
    store.migrate()
    store.dispose()
    os.environ[SERIALIZED_ENV] = settings.serialize()

    from granian.constants import Interfaces
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
    )
    print(f"ecrd: serving on {settings.resolved_public_url} (data in {settings.data_dir})", flush=True)
    server.serve()
    return 0
