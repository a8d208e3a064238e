"""`ecrd serve`: resolve settings, prepare the data directory and the root key, and run the HTTP server."""

from __future__ import annotations

import argparse
import logging
import os
import sys

from ecrd.config import SERIALIZED_ENV, Settings
from ecrd.metadata.store import MetadataStore
from ecrd.services.iam import IdentityService
from ecrd.services.secrets import SecretBox

ROOT_CREDENTIALS_FILE = "root-credentials"


def run(args: argparse.Namespace) -> int:
    from ecrd.cli.main import settings_flags

    settings = Settings.load(flags=settings_flags(args), config_file=args.config)
    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s")
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
    # The HTTP server's supervisor only starts and watches workers: it runs in a fresh interpreter that
    # imports granian and the settings, not the ~600 modules of ecrd this process loaded to migrate (~45 MB
    # less resident). Same PID, so signals and process managers see no difference.
    sys.stdout.flush()
    sys.stderr.flush()
    entry = "from ecrd.cli.supervise import main; raise SystemExit(main())"
    os.execv(sys.executable, [sys.executable, "-c", entry])  # noqa: S606 - this interpreter, fixed arguments


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
