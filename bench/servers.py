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
from typing import Any

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


class Target:
    """One registry process. Subclasses say how to start it and how a client authenticates."""

    name = "registry"
    ready_path = "/"

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.log_path = workdir / f"{self.name}.log"
        self._popen: subprocess.Popen[bytes] | None = None

    # -- what workloads use --------------------------------------------------------------------------------

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

    # -- process -------------------------------------------------------------------------------------------

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


class Ecrd(Target):
    """``python -m ecrd serve`` with authentication and its default at-rest encryption, as it always runs.

    ``source`` (a checkout's ``src`` folder) is put first on PYTHONPATH, to measure another version of ecrd
    than the installed one.
    """

    name = "ecrd"
    ready_path = "/healthz"

    def __init__(self, workdir: Path, *, workers: int, source: Path | None = None) -> None:
        super().__init__(workdir)
        self.workers = workers
        self.source = source
        self.data_dir = workdir / "data"
        self._password = ""
        self._ecr: Any = None

    def argv(self) -> list[str]:
        return [
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
            "--workers",
            str(self.workers),
        ]

    def environment(self) -> dict[str, str]:
        env = {key: value for key, value in os.environ.items() if not key.startswith("ECRD_")}
        env.update(
            ECRD_ROOT_ACCESS_KEY_ID=ROOT_ACCESS_KEY_ID,
            ECRD_ROOT_SECRET_ACCESS_KEY=ROOT_SECRET_ACCESS_KEY,
            PYTHONUNBUFFERED="1",
        )
        if self.source is not None:
            env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(self.source), env.get("PYTHONPATH")]))
        return env

    def after_start(self) -> None:
        import boto3
        from botocore.config import Config

        self._ecr = boto3.session.Session(
            aws_access_key_id=ROOT_ACCESS_KEY_ID,
            aws_secret_access_key=ROOT_SECRET_ACCESS_KEY,
            region_name=REGION,
        ).client(
            "ecr", endpoint_url=self.url, config=Config(connect_timeout=5, read_timeout=60, retries={"max_attempts": 1})
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
            "workers": self.workers,
            "source": str(self.source or "installed"),
            "auth": "Basic AWS:<registry token>",
            "encryption": "AES256 (default)",
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


class Distribution(Target):
    """CNCF distribution 2.8 (Debian's ``docker-registry``): filesystem driver, in-memory blob descriptor cache
    (as its example config), no auth, access log off — the reference at its fastest."""

    name = "distribution"
    ready_path = "/v2/"

    def __init__(self, workdir: Path, *, binary: Path = DISTRIBUTION_BINARY, in_memory: bool = False) -> None:
        super().__init__(workdir)
        self.binary = binary
        # In memory: no disk at all, for measuring what a client alone costs (the "client floor").
        self.in_memory = in_memory
        if in_memory:
            self.name = "distribution-in-memory"

    def argv(self) -> list[str]:
        storage = self.workdir / "storage"
        storage.mkdir(parents=True, exist_ok=True)
        config = self.workdir / "config.yml"
        backend = "  inmemory: {}" if self.in_memory else f"  filesystem:\n    rootdirectory: {storage}"
        config.write_text(_DISTRIBUTION_CONFIG.format(storage=backend, addr=self.host))
        return [str(self.binary), "serve", str(config)]

    def environment(self) -> dict[str, str]:
        # REGISTRY_* variables override the config file in distribution; keep the file authoritative.
        return {key: value for key, value in os.environ.items() if not key.startswith("REGISTRY_")}

    def describe(self) -> dict[str, Any]:
        version = subprocess.run([str(self.binary), "--version"], capture_output=True, text=True, timeout=10)
        return {
            **super().describe(),
            "version": version.stdout.strip(),
            "auth": "none",
            "config": f"{'in-memory storage' if self.in_memory else 'filesystem'}, inmemory blobdescriptor "
            "cache, log level warn, no access log",
        }
