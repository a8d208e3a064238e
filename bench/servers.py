"""The two registries under test, as processes on free loopback ports: ``ecrd serve`` and CNCF distribution.

Each runs in its own session (process group) with its own data directory, so stopping it ends every
worker it forked and nothing outlives the benchmark. A ``Target`` is what a workload sees of a registry:
its address, the Authorization header it needs (ecrd) or not (distribution), and how to make a repository.
"""

from __future__ import annotations

import base64
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING, Any

from measure import Usage, UsageMeter

if TYPE_CHECKING:
    from s3 import Bucket

LOOPBACK = "127.0.0.1"
STARTUP_TIMEOUT = 90.0
STOP_GRACE = 10.0
ROOT_ACCESS_KEY_ID = "AKIAECRDBENCHROOT001"
ROOT_SECRET_ACCESS_KEY = "ecrd/bench/RootSecretKey/0000000000000000"
REGION = "us-east-1"
DISTRIBUTION_BINARY = Path("/usr/bin/docker-registry")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        port: int = sock.getsockname()[1]
        return port


class ServerFailed(RuntimeError):
    """A server did not start, with the tail of its log."""


class Process:
    """A server process on a free loopback port, ready once ``_ready`` says so; stopped with its process group."""

    name = "server"
    ready_path = "/"

    def __init__(self, workdir: Path, *, port: int | None = None) -> None:
        self.workdir = workdir
        self.port = port if port is not None else free_port()
        self.log_path = workdir / f"{self.name}.log"
        self._popen: subprocess.Popen[bytes] | None = None

    @property
    def host(self) -> str:
        return f"{LOOPBACK}:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.host}"

    @property
    def pid(self) -> int:
        assert self._popen is not None, f"{self.name} is not running"
        return self._popen.pid

    def argv(self) -> list[str]:
        raise NotImplementedError

    def environment(self) -> dict[str, str]:
        return dict(os.environ)

    def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        argv = self.argv()
        with self.log_path.open("ab") as log:
            log.write(f"==> {' '.join(argv)}\n".encode())
            log.flush()
            self._popen = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self.environment(),
                start_new_session=True,
            )
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while not self._ready():
            if self._popen.poll() is not None:
                raise ServerFailed(f"{self.name} exited with {self._popen.returncode}:\n{self.log_tail()}")
            if time.monotonic() > deadline:
                self.stop()
                raise ServerFailed(f"{self.name} not ready within {STARTUP_TIMEOUT:.0f} s:\n{self.log_tail()}")
            time.sleep(0.1)
        self.after_start()

    def after_start(self) -> None:
        """Anything to do once the server answers (log in, …)."""

    def _ready(self) -> bool:
        try:
            with urllib.request.urlopen(self.url + self.ready_path, timeout=2) as response:
                return bool(response.status == 200)
        except (urllib.error.URLError, OSError):
            return False

    def stop(self) -> None:
        """SIGTERM the process group, wait, then SIGKILL whatever is left of it."""
        popen = self._popen
        if popen is None:
            return
        if popen.poll() is None:
            self._signal(signal.SIGTERM)
            try:
                popen.wait(timeout=STOP_GRACE)
            except subprocess.TimeoutExpired:
                self._signal(signal.SIGKILL)
                popen.wait(timeout=STOP_GRACE)
        self._signal(signal.SIGKILL)  # workers forked by the leader may outlive it

    def _signal(self, signum: signal.Signals) -> None:
        assert self._popen is not None
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self._popen.pid, signum)

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return ""


class NodesMeter:
    """``UsageMeter`` over the process trees of a registry's nodes: CPU summed, peak RSS the highest of any node
    (``node_peaks``: each node's)."""

    def __init__(self, roots: list[int]) -> None:
        self.meters = [UsageMeter(root) for root in roots]
        self.usage = Usage()
        self.node_peaks: list[int] = []

    def __enter__(self) -> NodesMeter:
        for meter in self.meters:
            meter.__enter__()
        return self

    def __exit__(self, *exc_info: object) -> None:
        for meter in self.meters:
            meter.__exit__(*exc_info)
        usages = [meter.usage for meter in self.meters]
        threads: dict[str, float] = {}
        for usage in usages:
            for name, seconds in usage.threads.items():
                threads[name] = round(threads.get(name, 0.0) + seconds, 3)
        self.node_peaks = [usage.peak_rss for usage in usages]
        self.usage = Usage(
            cpu_seconds=sum(usage.cpu_seconds for usage in usages),
            peak_rss=max(self.node_peaks),
            start_rss=max(usage.start_rss for usage in usages),
            threads=threads,
        )


class Target(Process):
    """One registry under test. Subclasses say how to start it and how a client authenticates."""

    name = "registry"

    @property
    def authorization(self) -> str | None:
        """The value of the Authorization header every /v2/ request carries; None for no auth."""
        return None

    @property
    def skopeo_creds(self) -> str | None:
        """``user:password`` for skopeo's ``--creds``; None for no auth."""
        return None

    def create_repository(self, name: str) -> None:
        """Make ``name`` ready for a push (distribution creates repositories on push)."""

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "url": self.url}

    def node_pids(self) -> list[int]:
        """The root process of each node serving this registry (one, unless it is a cluster)."""
        return [self.pid]

    def meter(self) -> NodesMeter:
        """What this registry spends during a ``with`` block: CPU and peak RSS of each node's process tree."""
        return NodesMeter(self.node_pids())

    def helpers(self) -> dict[str, int]:
        """Processes that serve this registry alone (a balancer in front), by role: their CPU is reported apart."""
        return {}


class Ecrd(Target):
    """``python -m ecrd serve`` with authentication and its default at-rest encryption, as it always runs.

    ``source`` (a checkout's ``src`` folder) is put first on PYTHONPATH, to measure another version of ecrd
    than the installed one. By default blobs and metadata live in its data folder (SQLite); ``bucket`` puts the
    blobs in an S3 bucket, ``database_url`` the metadata in PostgreSQL. A node of a cluster is also told the
    balancer's URL (``public_url``) and the cluster's master key (in ``environment``), and is logged in to
    through the balancer rather than directly.
    """

    name = "ecrd"
    ready_path = "/healthz"

    def __init__(
        self,
        workdir: Path,
        *,
        workers: int | None,
        source: Path | None = None,
        bucket: Bucket | None = None,
        database_url: str = "",
        public_url: str = "",
        env: dict[str, str] | None = None,
        login: bool = True,
    ) -> None:
        super().__init__(workdir)
        self.workers = workers
        self.source = source
        self.bucket = bucket
        self.database_url = database_url
        self.public_url = public_url
        self.extra_env = env or {}
        self.login_on_start = login
        self.data_dir = workdir / "data"
        self._password = ""
        self._ecr: Any = None

    def argv(self) -> list[str]:
        argv = [
            sys.executable,
            "-m",
            "ecrd",
            "serve",
            "--host",
            LOOPBACK,
            "--port",
            str(self.port),
            "--data-dir",
            str(self.data_dir),
        ]
        if self.workers is not None:  # None: ecrd's own default (one worker per usable CPU)
            argv += ["--workers", str(self.workers)]
        if self.bucket is not None:
            argv += [
                "--storage-url",
                self.bucket.storage_url("blobs"),
                "--s3-endpoint-url",
                self.bucket.endpoint_url,
                "--s3-region",
                self.bucket.region,
            ]
        if self.public_url:
            argv += ["--public-url", self.public_url]
        return argv

    def environment(self) -> dict[str, str]:
        env = {key: value for key, value in os.environ.items() if not key.startswith("ECRD_")}
        env.update(
            ECRD_ROOT_ACCESS_KEY_ID=ROOT_ACCESS_KEY_ID,
            ECRD_ROOT_SECRET_ACCESS_KEY=ROOT_SECRET_ACCESS_KEY,
            PYTHONUNBUFFERED="1",
        )
        if self.bucket is not None:
            env.update(
                ECRD_S3_ACCESS_KEY_ID=self.bucket.access_key_id,
                ECRD_S3_SECRET_ACCESS_KEY=self.bucket.secret_access_key,
            )
        if self.database_url:
            env["ECRD_DATABASE_URL"] = self.database_url
        env.update(self.extra_env)
        if self.source is not None:
            env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(self.source), env.get("PYTHONPATH")]))
        return env

    def after_start(self) -> None:
        if self.login_on_start:
            self.login(self.url)

    def login(self, url: str) -> None:
        """GetAuthorizationToken at ``url`` (the node, or the balancer in front of it): the registry password."""
        import boto3
        from botocore.config import Config

        self._ecr = boto3.session.Session(
            aws_access_key_id=ROOT_ACCESS_KEY_ID,
            aws_secret_access_key=ROOT_SECRET_ACCESS_KEY,
            region_name=REGION,
        ).client(
            "ecr", endpoint_url=url, config=Config(connect_timeout=5, read_timeout=60, retries={"max_attempts": 1})
        )
        token = self._ecr.get_authorization_token()["authorizationData"][0]["authorizationToken"]
        user, _, self._password = base64.b64decode(token).decode().partition(":")
        assert user == "AWS", "GetAuthorizationToken did not return AWS:<password>"

    @property
    def authorization(self) -> str:
        return "Basic " + base64.b64encode(f"AWS:{self._password}".encode()).decode()

    @property
    def skopeo_creds(self) -> str:
        return f"AWS:{self._password}"

    def create_repository(self, name: str) -> None:
        self._ecr.create_repository(repositoryName=name)

    def describe(self) -> dict[str, Any]:
        return {
            **super().describe(),
            "workers": self.workers if self.workers is not None else "default",
            "source": str(self.source or "installed"),
            "auth": "Basic AWS:<registry token>",
            "encryption": "AES256 (default)",
            "blobs": self.bucket.storage_url("blobs") if self.bucket is not None else "filesystem (--data-dir)",
            "metadata": "PostgreSQL" if self.database_url else "SQLite (--data-dir)",
        }


_DISTRIBUTION_CONFIG = """\
version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
{storage}
  cache:
    blobdescriptor: inmemory
  delete:
    enabled: true
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: {addr}
  secret: ecrd-bench-distribution-secret
"""


_DISTRIBUTION_S3 = """\
  s3:
    accesskey: {bucket.access_key_id}
    secretkey: {bucket.secret_access_key}
    region: {bucket.region}
    regionendpoint: {bucket.endpoint_url}
    bucket: {bucket.name}
    secure: false
    v4auth: true
    forcepathstyle: true
  redirect:
    disable: true"""
"""distribution's own S3 driver at its defaults (10 MiB parts). 2.8 addresses buckets path-style whenever
``regionendpoint`` is set and ignores ``forcepathstyle``, which later versions need. Redirects are off: by
default distribution sends a pull to a presigned URL of the store, and ecrd (which decrypts) serves the bytes
itself, so both serve them for a like-for-like pull."""


class Distribution(Target):
    """CNCF distribution 2.8 (Debian's ``docker-registry``): filesystem driver (or its S3 driver on ``bucket``),
    in-memory blob descriptor cache (as its example config), no auth, access log off — the reference at its
    fastest."""

    name = "distribution"
    ready_path = "/v2/"

    def __init__(
        self,
        workdir: Path,
        *,
        binary: Path = DISTRIBUTION_BINARY,
        in_memory: bool = False,
        bucket: Bucket | None = None,
    ) -> None:
        super().__init__(workdir)
        self.binary = binary
        # In memory: no disk at all, for measuring what a client alone costs (the "client floor").
        self.in_memory = in_memory
        self.bucket = bucket
        if in_memory:
            self.name = "distribution-in-memory"

    def _storage(self) -> str:
        if self.in_memory:
            return "  inmemory: {}"
        if self.bucket is not None:
            return _DISTRIBUTION_S3.format(bucket=self.bucket)
        storage = self.workdir / "storage"
        storage.mkdir(parents=True, exist_ok=True)
        return f"  filesystem:\n    rootdirectory: {storage}"

    def argv(self) -> list[str]:
        config = self.workdir / "config.yml"
        config.write_text(_DISTRIBUTION_CONFIG.format(storage=self._storage(), addr=self.host))
        return [str(self.binary), "serve", str(config)]

    def environment(self) -> dict[str, str]:
        # REGISTRY_* variables override the config file in distribution; keep the file authoritative. AWS_*
        # ones would reach its S3 client (AWS_CA_BUNDLE makes it refuse to start): its config has all it needs.
        return {key: value for key, value in os.environ.items() if not key.startswith(("REGISTRY_", "AWS_"))}

    def describe(self) -> dict[str, Any]:
        version = subprocess.run([str(self.binary), "--version"], capture_output=True, text=True, timeout=10)
        storage = "in-memory storage" if self.in_memory else "filesystem"
        if self.bucket is not None:
            storage = f"S3 driver on bucket {self.bucket.name} (10 MiB parts, redirects off)"
        return {
            **super().describe(),
            "version": version.stdout.strip(),
            "auth": "none",
            "config": f"{storage}, inmemory blobdescriptor cache, log level warn, no access log",
        }
