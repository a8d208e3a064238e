"""Registry servers as real processes for end-to-end tests: ``ecrd serve`` and the CNCF distribution registry.

Both kinds share one small shape (``RegistryProcess``): a free port on 127.0.0.1, a log file, a readiness
probe polled against a deadline, and ``stop`` (SIGTERM, then SIGKILL) or ``kill`` (SIGKILL at once, to
simulate a crash). ``ServerProcess`` underneath is the generic part, also used for the private dockerd.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import requests

from tests.support.clients import Credentials, run_tool
from tests.support.ports import LOOPBACK, free_port

POLL_INTERVAL = 0.1
"""Seconds between two readiness probes; waiting on the child for this long also notices its death."""

PROBE_TIMEOUT = 2.0
"""Seconds one readiness HTTP request may take."""


class ServerFailed(RuntimeError):
    """A server process died, never became ready, or would not stop; the message carries its log tail."""


class ServerProcess:
    """One long-running child process with its output captured to a log file.

    The child runs in its own session (process group), so ``kill`` also ends any workers it forked,
    and nothing it leaves behind outlives the test session.
    """

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        log_path: Path,
        *,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
    ) -> None:
        self.name = name
        self.argv = [str(arg) for arg in argv]
        self.log_path = log_path
        self.env = dict(os.environ if env is None else env)
        self.cwd = cwd
        self._popen: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        return self._require_popen().pid

    @property
    def running(self) -> bool:
        return self._popen is not None and self._popen.poll() is None

    def spawn(self) -> None:
        """Start the child (appending to the log, so a restart keeps the earlier run's lines)."""
        if self.running:
            raise ServerFailed(f"{self.name} is already running (pid {self.pid})")
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            log.write(f"==> {' '.join(self.argv)}\n".encode())
            log.flush()
            self._popen = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self.env,
                cwd=self.cwd,
                start_new_session=True,
            )

    def wait_until(self, ready: Callable[[], bool], *, timeout: float, what: str) -> None:
        """Poll ``ready`` until it answers True; fail with the log tail if the child dies or time runs out."""
        popen = self._require_popen()
        deadline = time.monotonic() + timeout
        while True:
            if ready():
                return
            returncode = popen.poll()
            if returncode is not None:
                raise ServerFailed(f"{self.name} exited with status {returncode} before {what}.\n{self.describe_log()}")
            if time.monotonic() >= deadline:
                raise ServerFailed(f"{self.name} was not {what} within {timeout:.0f} s.\n{self.describe_log()}")
            with contextlib.suppress(subprocess.TimeoutExpired):
                popen.wait(timeout=POLL_INTERVAL)

    def stop(self, *, grace: float = 15.0) -> None:
        """SIGTERM the process group and wait up to ``grace`` seconds, then SIGKILL it."""
        popen = self._popen
        if popen is None or popen.returncode is not None:
            return
        self._signal_group(signal.SIGTERM)
        try:
            popen.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            self._signal_group(signal.SIGKILL)
            popen.wait(timeout=grace)
        # Workers forked by the leader may outlive its clean exit; the group id is still ours.
        self._signal_group(signal.SIGKILL)

    def kill(self) -> None:
        """SIGKILL the child and everything in its process group, as a crash would, and reap it."""
        popen = self._popen
        if popen is None or popen.returncode is not None:
            return
        self._signal_group(signal.SIGKILL)
        popen.wait(timeout=15.0)

    def log_tail(self, lines: int = 60) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def describe_log(self, lines: int = 60) -> str:
        return f"--- last {lines} lines of {self.log_path} ---\n{self.log_tail(lines)}\n--- end of log ---"

    def _signal_group(self, signum: signal.Signals) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pid, signum)

    def _require_popen(self) -> subprocess.Popen[bytes]:
        if self._popen is None:
            raise ServerFailed(f"{self.name} was never started")
        return self._popen


def http_answers(url: str, status: int, *, verify: bool | str = True) -> Callable[[], bool]:
    """A readiness probe: True once ``GET url`` answers ``status``."""

    def probe() -> bool:
        try:
            return requests.get(url, timeout=PROBE_TIMEOUT, verify=verify).status_code == status
        except requests.RequestException:
            return False

    return probe


class RegistryProcess:
    """A registry server on ``127.0.0.1:<port>`` speaking plain HTTP (or HTTPS, trusting ``ca_file``)."""

    kind: str
    ready_path: str
    startup_timeout: float = 30.0
    scheme: str = "http"
    ca_file: str | None = None

    def __init__(self, workdir: Path, *, port: int | None = None) -> None:
        self.workdir = workdir
        self.port = port if port is not None else free_port()
        self._server: ServerProcess | None = None

    @property
    def host(self) -> str:
        """``127.0.0.1:<port>``, the registry part of an image reference."""
        return f"{LOOPBACK}:{self.port}"

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.host}"

    @property
    def log_path(self) -> Path:
        return self.workdir / f"{self.kind}.log"

    @property
    def running(self) -> bool:
        return self._server is not None and self._server.running

    @property
    def pid(self) -> int:
        """The server's process id (its workers are its descendants)."""
        if self._server is None:
            raise ServerFailed(f"{self.kind} never started")
        return self._server.pid

    def argv(self) -> list[str]:
        raise NotImplementedError

    def environment(self) -> dict[str, str]:
        return dict(os.environ)

    def spawn(self) -> ServerProcess:
        """Start the server without waiting for it to be ready."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._server = ServerProcess(self.kind, self.argv(), self.log_path, env=self.environment())
        self._server.spawn()
        return self._server

    def start(self) -> None:
        """Start the server (again, after ``stop`` or ``kill``: same port, same data) and wait until ready."""
        self._server = self.spawn()
        try:
            self._server.wait_until(
                http_answers(self.url + self.ready_path, 200, verify=self.ca_file or True),
                timeout=self.startup_timeout,
                what=f"answering 200 on GET {self.url}{self.ready_path}",
            )
        except BaseException:
            self._server.stop()
            raise

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()

    def kill(self) -> None:
        if self._server is not None:
            self._server.kill()

    def log_tail(self, lines: int = 60) -> str:
        return self._server.log_tail(lines) if self._server is not None else ""

    def describe_log(self, lines: int = 60) -> str:
        return self._server.describe_log(lines) if self._server is not None else f"{self.kind} never started"

    def __enter__(self) -> RegistryProcess:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.url} log={self.log_path}>"


class EcrdProcess(RegistryProcess):
    """``python -m ecrd serve`` on a free port with its own data directory.

    ``ECRD_*`` variables of the calling environment are dropped so the developer's shell cannot change
    what the tests run against; ``env`` adds the ones a test wants.
    """

    kind = "ecrd"
    ready_path = "/healthz"

    def __init__(
        self,
        workdir: Path,
        *,
        port: int | None = None,
        data_dir: Path | None = None,
        extra_args: Sequence[str] = (),
        env: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(workdir, port=port)
        self.data_dir = data_dir if data_dir is not None else workdir / "data"
        self.extra_args = list(extra_args)
        self.env = dict(env or {})

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
            # Tests address the server, and docker logs in to it, by the address it listens on (a loopback
            # host's default public URL would say localhost).
            "--public-url",
            f"{self.scheme}://{LOOPBACK}:{self.port}",
            *self.extra_args,
        ]

    def environment(self) -> dict[str, str]:
        env = {key: value for key, value in os.environ.items() if not key.startswith("ECRD_")}
        env["PYTHONUNBUFFERED"] = "1"
        env.update(self.env)
        return env

    def command(self, *args: str, timeout: float = 120.0) -> subprocess.CompletedProcess[str]:
        """``python -m ecrd ARGS --data-dir DATA_DIR`` in the server's environment, as an operator runs a command
        beside the server (e.g. ``vulndb import``); raises ``ToolFailed`` on a non-zero exit."""
        argv = [sys.executable, "-m", "ecrd", *args, "--data-dir", str(self.data_dir), *self.extra_args]
        return run_tool(argv, timeout=timeout, env=self.environment())


DISTRIBUTION_BINARY = Path("/usr/bin/docker-registry")

_DISTRIBUTION_CONFIG = """\
version: 0.1
log:
  level: info
  formatter: text
storage:
  filesystem:
    rootdirectory: {root}
  delete:
    enabled: true
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: {addr}
  secret: ecrd-e2e-distribution-secret
{http_extra}{extra}"""


class DistributionProcess(RegistryProcess):
    """The CNCF distribution registry (2.8, Debian's ``docker-registry``): filesystem storage, no auth,
    deletes enabled — the reference the e2e tests are validated against."""

    kind = "distribution"
    ready_path = "/v2/"

    def __init__(self, workdir: Path, *, port: int | None = None, binary: Path = DISTRIBUTION_BINARY) -> None:
        super().__init__(workdir, port=port)
        self.binary = binary
        self.storage_dir = workdir / "storage"
        self.config_path = workdir / "config.yml"

    def argv(self) -> list[str]:
        self.storage_dir.mkdir(parents=True, exist_ok=True)
        http_extra, extra = self.config_sections()
        self.config_path.write_text(
            _DISTRIBUTION_CONFIG.format(root=self.storage_dir, addr=self.host, http_extra=http_extra, extra=extra)
        )
        return [str(self.binary), "serve", str(self.config_path)]

    def config_sections(self) -> tuple[str, str]:
        """YAML lines added under ``http:`` and top-level sections added to the configuration (none: plain HTTP,
        no auth)."""
        return "", ""

    def environment(self) -> dict[str, str]:
        # REGISTRY_* variables override the config file in distribution; keep the file authoritative.
        return {key: value for key, value in os.environ.items() if not key.startswith("REGISTRY_")}


TargetKind = Literal["ecrd", "distribution"]
TARGET_KINDS: tuple[TargetKind, ...] = ("ecrd", "distribution")


@dataclass(frozen=True)
class RegistryUnderTest:
    """What an end-to-end test sees of the registry it drives: where it is, how to log in, what it supports."""

    kind: TargetKind
    process: RegistryProcess
    credentials: Credentials | None
    ecr: Any = field(default=None, repr=False)
    """A boto3 ECR client on ecrd's AWS door; None for distribution, which has no AWS door."""

    @property
    def host(self) -> str:
        return self.process.host

    @property
    def url(self) -> str:
        return self.process.url

    @property
    def supports_referrers(self) -> bool:
        """distribution 2.8 predates the OCI 1.1 referrers API."""
        return self.kind == "ecrd"

    def reference(self, repository: str, tag_or_digest: str) -> str:
        """``HOST/REPO:TAG`` or ``HOST/REPO@sha256:…``, as docker and skopeo take it."""
        separator = "@" if ":" in tag_or_digest else ":"
        return f"{self.host}/{repository}{separator}{tag_or_digest}"
