"""`ecrd serve`: resolve settings, prepare the data directory and the root key, and run the HTTP server."""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import socket
import ssl
import sys
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization

from ecrd.cli.supervise import LISTEN_BACKLOG
from ecrd.config import METRICS_DIR_ENV, SERIALIZED_ENV, Settings, SettingsError
from ecrd.metadata.store import MetadataStore
from ecrd.services.accounts import AccountService
from ecrd.services.iam.authentication import Authenticator
from ecrd.services.secrets import MasterKeyMismatch, SecretBox, check_master_key

ROOT_CREDENTIALS_FILE = "root-credentials"
# What the server creates (database, blobs, uploads, keys) is its user's alone: the data directory holds the
# master key, the sealed credentials and data keys, and every stored image.
PRIVATE_UMASK = 0o077
PRIVATE_DIRECTORY = 0o700
EXIT_CANNOT_LISTEN = 1
EXIT_OTHER_MASTER_KEY = 1
# malloc arenas of each server process (glibc's MALLOC_ARENA_MAX; its default is 8 per CPU).
MALLOC_ARENAS = 2

log = logging.getLogger("ecrd")


def run(args: argparse.Namespace) -> int:
    from ecrd.cli.main import settings_flags

    settings = Settings.load(flags=settings_flags(args), config_file=args.config)
    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s")
    os.umask(PRIVATE_UMASK)  # inherited by the supervisor and its workers
    check_tls_files(settings)
    try:
        listener = listen(settings)
    except OSError as exc:
        print(f"ecrd: cannot listen on {settings.host}:{settings.port}: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_CANNOT_LISTEN
    make_private_directory(settings.data_dir)
    # Migrate and make the root key once here, before workers start, so they never race on either.
    store = MetadataStore(settings.resolved_database_url)
    store.migrate(default_account_id=settings.account_id, default_region=settings.region)
    secret_box = SecretBox.load(
        data_dir=settings.data_dir, master_key=settings.master_key.reveal(), master_key_file=settings.master_key_file
    )
    try:
        check_master_key(store, secret_box)
    except MasterKeyMismatch as exc:
        store.dispose()
        print(f"ecrd: cannot serve {settings.resolved_public_url}: {exc}", file=sys.stderr)
        return EXIT_OTHER_MASTER_KEY
    AccountService(store, secret_box=secret_box).ensure(settings.account_id)
    authentication = Authenticator(store, account_id=settings.account_id, secret_box=secret_box)
    created = authentication.bootstrap_root(
        settings.root_access_key_id or None, settings.root_secret_access_key.reveal() or None
    )
    store.dispose()
    if created is not None:
        _announce_root_key(settings, *created)
    os.environ[SERIALIZED_ENV] = settings.serialize()
    os.environ[METRICS_DIR_ENV] = str(fresh_metrics_dir(settings.metrics_dir))
    # glibc gives each thread that allocates its own malloc arena, up to 8 per CPU, and an arena keeps what it
    # freed: with anyio's worker threads a worker peaked 10-35 MB higher under load (decision 0016). Read by
    # the supervisor's C library as it starts, and inherited by the workers it forks; an operator's own value
    # stands.
    os.environ.setdefault("MALLOC_ARENA_MAX", str(MALLOC_ARENAS))
    # The HTTP server's supervisor only starts and watches workers: it runs in a fresh interpreter that
    # imports granian and the settings, not the ~600 modules of ecrd this process loaded to migrate (~45 MB
    # less resident). Same PID, so signals and process managers see no difference.
    sys.stdout.flush()
    sys.stderr.flush()
    entry = "from ecrd.cli.supervise import main; raise SystemExit(main())"
    argv = [sys.executable, "-c", entry, str(listener.fileno())]
    os.execv(sys.executable, argv)  # noqa: S606 - this interpreter, fixed arguments


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


def listen(settings: Settings) -> socket.socket:
    """Bind and listen on the server's address before anything else is done, so a port in use stops the start
    at once; the socket is inherited by the supervisor, which shares it with its workers.

    SO_REUSEADDR lets a restart bind while the last run's connections linger in TIME_WAIT; unlike SO_REUSEPORT
    (granian's own choice on Linux) it never lets a second listener onto the port.
    """
    family, kind, protocol, _, address = socket.getaddrinfo(
        settings.host, settings.port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )[0]
    listener = socket.socket(family, kind, protocol)
    try:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(address)
        listener.listen(LISTEN_BACKLOG)
    except OSError:
        listener.close()
        raise
    listener.set_inheritable(True)
    return listener


def fresh_metrics_dir(path: Path) -> Path:
    """An empty directory for the workers' metric files. The last run's files are removed: its counters ended
    with its processes, and a restart begins the counts again, as Prometheus expects of a restarted target."""
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(mode=PRIVATE_DIRECTORY)
    return path


def make_private_directory(data_dir: Path) -> None:
    """Create the data directory for the server's user alone, and take back one an earlier version left open."""
    data_dir.mkdir(mode=PRIVATE_DIRECTORY, parents=True, exist_ok=True)
    try:
        data_dir.chmod(PRIVATE_DIRECTORY)
    except PermissionError:
        # Another user's directory, shared on purpose (a volume): theirs to protect; the files made here are not.
        log.warning("cannot make %s private to this user (it is not theirs)", data_dir)


def check_tls_files(settings: Settings) -> None:
    """Refuse a certificate and key that cannot serve HTTPS, saying why, before any worker tries them."""
    if not settings.tls_cert:
        return
    cert, key = Path(settings.tls_cert), Path(settings.tls_key)

    def refuse(problem: str) -> SettingsError:
        return SettingsError(f"cannot serve HTTPS with --tls-cert {cert} and --tls-key {key}: {problem}")

    try:
        cert_pem, key_pem = cert.read_bytes(), key.read_bytes()
    except OSError as exc:
        raise refuse(f"cannot read {exc.filename}: {exc.strerror}") from None
    if b"PRIVATE KEY-----" in cert_pem and b"CERTIFICATE-----" in key_pem:
        raise refuse("the two are swapped (the certificate file holds a key and the key file a certificate)")
    try:
        leaf = x509.load_pem_x509_certificates(cert_pem)[0]
    except ValueError:
        raise refuse(f"{cert} holds no PEM certificate") from None
    try:
        private_key = serialization.load_pem_private_key(key_pem, password=None)
    except TypeError:
        raise refuse(f"{key} is encrypted; ecrd needs the key unencrypted") from None
    except (ValueError, UnsupportedAlgorithm):
        raise refuse(f"{key} holds no PEM private key") from None
    raw = serialization.PublicFormat.SubjectPublicKeyInfo
    if leaf.public_key().public_bytes(serialization.Encoding.DER, raw) != private_key.public_key().public_bytes(
        serialization.Encoding.DER, raw
    ):
        raise refuse(f"the key in {key} is not the key of the certificate in {cert}")
    # The TLS library's own check, for anything the parse above accepts that it would not.
    try:
        ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER).load_cert_chain(cert, key, password=lambda: b"")
    except ssl.SSLError as exc:
        raise refuse(exc.reason or str(exc)) from None
