"""A private docker engine for the test session, and the docker CLI pointed at it.

The engine keeps everything under one temporary directory — data root, exec root (with the containerd it
starts for itself), pid file, socket, config file — and touches no host networking (no bridge, no iptables,
no IP forwarding), so it runs beside any other dockerd on the machine; should it find a system containerd
running and use that instead, its own containerd namespaces keep its images apart. Registries on
127.0.0.0/8 are insecure (plain HTTP) to docker by default, so no ``insecure-registries`` setting is needed.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import signal
import subprocess
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

from tests.support.clients import TOOL_TIMEOUT, Credentials, ToolFailed, run_tool
from tests.support.images import Image, write_docker_archive
from tests.support.registry_process import ServerProcess

DOCKERD_STARTUP_TIMEOUT = 60.0

_CLIENT_ENV_DROPPED = ("DOCKER_HOST", "DOCKER_CONTEXT", "DOCKER_TLS_VERIFY", "DOCKER_CERT_PATH", "DOCKER_CONFIG")


_SYSTEM_BINARY_DIRS = ("/usr/local/sbin", "/usr/sbin", "/sbin")

PUSHED_DIGEST = re.compile(r"digest: (sha256:[0-9a-f]{64}) size: \d+")
"""The line ``docker push`` ends with: ``<tag>: digest: sha256:… size: N``."""


def dockerd_binary() -> str | None:
    """dockerd, also where a PATH without the sbin directories would miss it (Debian puts it in /usr/sbin)."""
    return shutil.which("dockerd") or shutil.which("dockerd", path=os.pathsep.join(_SYSTEM_BINARY_DIRS))


def docker_cli_binary() -> str | None:
    return shutil.which("docker")


class DockerClient:
    """The docker CLI on one engine, with its own ``DOCKER_CONFIG`` so ``docker login`` stays private."""

    def __init__(self, host: str, config_dir: Path, *, binary: str = "docker") -> None:
        self.host = host
        self.binary = binary
        self.config_dir = config_dir
        config_dir.mkdir(parents=True, exist_ok=True)
        config_file = config_dir / "config.json"
        if not config_file.exists():
            config_file.write_text("{}")
        env = {key: value for key, value in os.environ.items() if key not in _CLIENT_ENV_DROPPED}
        env["DOCKER_CONFIG"] = str(config_dir)
        self.env = env
        self._secrets: list[str] = []

    def __call__(
        self, *args: str, timeout: float = TOOL_TIMEOUT, input: str | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        """``docker -H <engine> ARGS``; raises ``ToolFailed`` on a non-zero exit when ``check``."""
        return run_tool(
            [self.binary, "-H", self.host, *args],
            timeout=timeout,
            env=self.env,
            input=input,
            check=check,
            redact=self._secrets,
        )

    def login(
        self, registry: str, username: str, password: str, *, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        """``docker login --password-stdin``; the password never appears in argv or in error messages."""
        self._secrets.append(password)
        return self(
            "login", "--username", username, "--password-stdin", registry, input=password, timeout=60, check=check
        )

    def login_with(
        self, registry: str, credentials: Credentials, *, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        return self.login(registry, credentials.username, credentials.password, check=check)

    def login_from_command(
        self,
        registry: str,
        password_command: Sequence[str],
        *,
        env: Mapping[str, str],
        username: str = "AWS",
        check: bool = True,
    ) -> subprocess.CompletedProcess[str]:
        """``PASSWORD_COMMAND | docker login --username USER --password-stdin REGISTRY``, a real shell pipe.

        ``env`` is the pipeline's environment (the password command's settings); docker keeps its own
        config directory and engine. ``pipefail``: a failing password command fails the login too.
        """
        login = [self.binary, "-H", self.host, "login", "--username", username, "--password-stdin", registry]
        script = f"set -o pipefail; {shlex.join(password_command)} | {shlex.join(login)}"
        pipeline_env = {key: value for key, value in env.items() if key not in _CLIENT_ENV_DROPPED}
        pipeline_env["DOCKER_CONFIG"] = str(self.config_dir)
        return run_tool(["bash", "-c", script], timeout=120, env=pipeline_env, check=check)

    def load_image(self, image: Image, reference: str, workdir: Path) -> None:
        """Load ``image`` as ``reference`` from a docker archive written under ``workdir`` (no network)."""
        workdir.mkdir(parents=True, exist_ok=True)
        archive = workdir / f"{image.config_digest.partition(':')[2]}.tar"
        write_docker_archive(archive, image, repo_tags=[reference])
        self.load(archive)
        assert self.image_id(reference) == image.config_digest

    def push(self, reference: str) -> str:
        """``docker push REFERENCE`` → the manifest digest it reports."""
        output = self("push", reference).stdout
        found = PUSHED_DIGEST.search(output)
        assert found, f"docker push printed no digest:\n{output}"
        return found.group(1)

    def image_id(self, reference: str) -> str:
        """The local image id (``sha256:`` + digest of its config) of ``reference``."""
        return self("image", "inspect", "--format", "{{.Id}}", reference, timeout=60).stdout.strip()

    def repo_digests(self, reference: str) -> list[str]:
        out = self("image", "inspect", "--format", "{{json .RepoDigests}}", reference, timeout=60).stdout
        digests: list[str] = json.loads(out)
        return digests

    def has_image(self, reference: str) -> bool:
        return self("image", "inspect", reference, timeout=60, check=False).returncode == 0

    def load(self, archive: Path) -> subprocess.CompletedProcess[str]:
        return self("load", "--input", str(archive))

    def remove_images(self, *references: str) -> None:
        """``docker rmi --force`` that tolerates references already gone."""
        for reference in references:
            if self.has_image(reference):
                self("rmi", "--force", reference, timeout=120)


class DockerDaemon:
    """``dockerd`` on a unix socket under ``workdir``, started and stopped by the test session."""

    def __init__(self, workdir: Path, *, binary: str = "dockerd", hosts_file: Path | None = None) -> None:
        self.workdir = workdir
        self.binary = binary
        # A hosts file of the engine's own (host names mapped for it alone), seen through a mount namespace.
        self.hosts_file = hosts_file
        self.socket_path = workdir / "docker.sock"
        self.host = f"unix://{self.socket_path}"
        self.log_path = workdir / "dockerd.log"
        self._server: ServerProcess | None = None

    @property
    def config_file(self) -> Path:
        return self.workdir / "daemon.json"

    def argv(self) -> list[str]:
        config_file = self.config_file
        # An explicit empty config file: the machine's /etc/docker/daemon.json must not apply.
        config_file.write_text("{}")
        namespace = f"ecrd-e2e-{os.getpid()}"
        private_hosts = (
            ["unshare", "--mount", "--propagation", "private", "sh", "-c", 'mount --bind "$0" /etc/hosts && exec "$@"',
             str(self.hosts_file)]
            if self.hosts_file is not None
            else []
        )  # fmt: skip
        return [
            *private_hosts,
            self.binary,
            "--config-file", str(config_file),
            "--host", self.host,
            "--data-root", str(self.workdir / "data"),
            "--exec-root", str(self.workdir / "exec"),
            "--pidfile", str(self.workdir / "dockerd.pid"),
            "--storage-driver", "vfs",
            "--bridge", "none",
            "--iptables=false",
            "--ip6tables=false",
            "--ip-masq=false",
            "--ip-forward=false",
            "--userland-proxy=false",
            # Used only if a system containerd is found running; otherwise dockerd starts its own under
            # the exec root. Own namespaces keep this engine's images apart from any other engine's.
            "--containerd-namespace", namespace,
            "--containerd-plugins-namespace", f"{namespace}-plugins",
            "--log-level", "info",
        ]  # fmt: skip

    def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        # dockerd looks up runc, containerd and docker-init on PATH; Debian puts some of them in /usr/sbin.
        env = dict(os.environ)
        env["PATH"] = os.pathsep.join([env.get("PATH", os.defpath), *_SYSTEM_BINARY_DIRS])
        self._server = ServerProcess("dockerd", self.argv(), self.log_path, env=env)
        self._server.spawn()
        probe = DockerClient(self.host, self.workdir / "probe-config")

        def answers_info() -> bool:
            try:
                return probe("info", "--format", "{{.ServerVersion}}", timeout=10, check=False).returncode == 0
            except ToolFailed:
                return False

        try:
            self._server.wait_until(answers_info, timeout=DOCKERD_STARTUP_TIMEOUT, what="answering `docker info`")
        except BaseException:
            self._server.stop()
            raise

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop(grace=30.0)

    @contextmanager
    def registry_mirrors(self, *mirrors: str) -> Iterator[None]:
        """The engine with ``registry-mirrors`` set for the block: written to its config file and reloaded by a
        SIGHUP (a setting dockerd reloads live), then emptied again the same way. No second engine needed."""
        self._reload(list(mirrors))
        try:
            yield
        finally:
            self._reload([])  # an empty list, not an absent key: a reload keeps what its file does not name

    def _reload(self, mirrors: list[str]) -> None:
        assert self._server is not None, "the engine is not running"
        self.config_file.write_text(json.dumps({"registry-mirrors": mirrors}))
        mirrors = [mirror.rstrip("/") + "/" for mirror in mirrors]
        os.kill(self._server.pid, signal.SIGHUP)
        probe = DockerClient(self.host, self.workdir / "probe-config")

        def reloaded() -> bool:
            shown = probe("info", "--format", "{{json .RegistryConfig.Mirrors}}", timeout=10, check=False)
            return shown.returncode == 0 and (json.loads(shown.stdout or "null") or []) == mirrors

        self._server.wait_until(reloaded, timeout=DOCKERD_STARTUP_TIMEOUT, what=f"reloaded with mirrors {mirrors}")

    def client(self, config_dir: Path) -> DockerClient:
        """A docker CLI on this engine whose credentials live in ``config_dir``."""
        return DockerClient(self.host, config_dir, binary=docker_cli_binary() or "docker")

    def log_tail(self, lines: int = 60) -> str:
        return self._server.log_tail(lines) if self._server is not None else ""

    def describe_log(self, lines: int = 60) -> str:
        return self._server.describe_log(lines) if self._server is not None else "dockerd never started"

    def __enter__(self) -> DockerDaemon:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
