"""nginx as the load balancer in front of several registry nodes: round robin, streaming, run as a child process.

No root and no system nginx: the configuration, pid file, logs and temporary directories all live under one
working directory, and nginx runs in the foreground (``nginx -p DIR -c FILE -g 'daemon off;'``) as a child of
the test, in its own process group. One worker process, so round robin is one deterministic rotation over the
nodes that are up; the access log names the node (``$upstream_addr``) that served each request.
"""

from __future__ import annotations

import getpass
import os
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from tests.support.ports import LOOPBACK, free_port
from tests.support.registry_process import POLL_INTERVAL, ServerProcess, http_answers

NGINX_BINARY_DIRS = ("/usr/sbin", "/usr/local/sbin", "/sbin")
STARTUP_TIMEOUT = 15.0

FAIL_TIMEOUT_SECONDS = 2
"""How long nginx leaves a node that refused a connection out of the rotation: short, so a restarted node is
back in the rotation by the next test."""

_LOG_FIELDS = ("$request_method", "$uri", "$status", "$upstream_addr", "$upstream_status")
ACCESS_LOG_FORMAT = "\\t".join(_LOG_FIELDS)

_CONFIG = """\
worker_processes 1;
{user}
pid {workdir}/nginx.pid;
error_log {workdir}/error.log info;

events {{
    worker_connections 1024;
}}

http {{
    log_format ecrd_cluster '{log_format}';
    access_log {workdir}/access.log ecrd_cluster;

    client_body_temp_path {workdir}/temp/client_body;
    proxy_temp_path {workdir}/temp/proxy;
    fastcgi_temp_path {workdir}/temp/fastcgi;
    uwsgi_temp_path {workdir}/temp/uwsgi;
    scgi_temp_path {workdir}/temp/scgi;

    upstream ecrd_nodes {{
{servers}
        keepalive 16;
    }}

    server {{
        listen {listen};

        # Layers are gigabytes and stream through: no body limit, no buffering to disk either way.
        client_max_body_size 0;
        proxy_request_buffering off;
        proxy_buffering off;

        proxy_http_version 1.1;
        proxy_set_header Connection "";
        # SigV4 signs the Host header, and the registry builds its Location headers from its public URL.
        proxy_set_header Host $http_host;
        proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
        proxy_connect_timeout 2s;
        proxy_read_timeout 300s;
        proxy_send_timeout 300s;

        # A node that cannot be reached (refused, reset before an answer, 502/503) is skipped. nginx never
        # resends a POST or PATCH once it reached a node (no non_idempotent), nor any request whose unbuffered
        # body it already began to send: those fail to the client, which retries.
        proxy_next_upstream error timeout http_502 http_503;
        proxy_next_upstream_tries 0;
        proxy_next_upstream_timeout 30s;

        location / {{
            proxy_pass http://ecrd_nodes;
        }}
    }}
}}
"""


def nginx_binary() -> str | None:
    return shutil.which("nginx") or shutil.which("nginx", path=os.pathsep.join(NGINX_BINARY_DIRS))


@dataclass(frozen=True)
class ProxiedRequest:
    """One line of nginx's access log."""

    method: str
    path: str
    status: int
    upstreams: tuple[str, ...]
    """The nodes (``127.0.0.1:port``) nginx tried, in order: more than one when it moved on from a dead node."""


class NginxBalancer:
    """nginx on a free loopback port, passing every request round robin to ``upstreams`` (``host:port``)."""

    def __init__(self, workdir: Path, upstreams: Sequence[str], *, binary: str, port: int | None = None) -> None:
        self.workdir = workdir
        self.upstreams = list(upstreams)
        self.binary = binary
        self.port = port if port is not None else free_port()
        self.config_path = workdir / "nginx.conf"
        self.access_log = workdir / "access.log"
        self._server: ServerProcess | None = None

    @property
    def host(self) -> str:
        return f"{LOOPBACK}:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.host}"

    def configuration(self) -> str:
        servers = "\n".join(
            f"        server {upstream} max_fails=1 fail_timeout={FAIL_TIMEOUT_SECONDS}s;"
            for upstream in self.upstreams
        )
        # Run by root, nginx would hand its worker to ``nobody``, who cannot enter the test's private directory.
        user = f"user {getpass.getuser()};" if os.geteuid() == 0 else ""
        return _CONFIG.format(
            workdir=self.workdir,
            user=user,
            log_format=ACCESS_LOG_FORMAT,
            servers=servers,
            listen=self.host,
        )

    def start(self) -> None:
        """Write the configuration and start nginx; ready once a request reaches a node through it."""
        for temp in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"):
            (self.workdir / "temp" / temp).mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(self.configuration())
        argv = [
            self.binary,
            "-p", str(self.workdir),
            "-c", str(self.config_path),
            "-e", str(self.workdir / "error.log"),
            "-g", "daemon off;",
        ]  # fmt: skip
        self._server = ServerProcess("nginx", argv, self.workdir / "nginx.out")
        self._server.spawn()
        try:
            self._server.wait_until(
                http_answers(f"{self.url}/healthz", 200), timeout=STARTUP_TIMEOUT, what="passing /healthz to a node"
            )
        except BaseException:
            self._server.stop()
            raise

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop(grace=10.0)

    def requests(self) -> list[ProxiedRequest]:
        """Every request nginx has finished, oldest first."""
        if not self.access_log.exists():
            return []
        found = []
        for line in self.access_log.read_text(errors="replace").splitlines():
            method, path, status, upstreams, _ = line.split("\t")
            addresses = tuple(address.strip() for address in upstreams.split(",") if address.strip() not in ("", "-"))
            found.append(ProxiedRequest(method, path, int(status), addresses))
        return found

    def logged_after(
        self, count: int, matching: Callable[[ProxiedRequest], bool], *, timeout: float = 10.0
    ) -> ProxiedRequest:
        """The first request past the first ``count`` logged that is ``matching``, waiting for it."""
        return self.all_logged_after(count, matching, expected=1, timeout=timeout)[0]

    def all_logged_after(
        self, count: int, matching: Callable[[ProxiedRequest], bool], *, expected: int, timeout: float = 10.0
    ) -> list[ProxiedRequest]:
        """The requests past the first ``count`` logged that are ``matching``, once at least ``expected`` of them
        are: nginx logs a request once it has ended on both sides, which may be after its client has read the
        whole answer (or seconds after its client saw it fail)."""
        deadline = time.monotonic() + timeout
        while True:
            found = [request for request in self.requests()[count:] if matching(request)]
            if len(found) >= expected:
                return found
            if time.monotonic() >= deadline:
                raise AssertionError(
                    f"nginx logged {len(found)} such requests, not {expected}, after the first {count} "
                    f"within {timeout:.0f} s"
                )
            time.sleep(POLL_INTERVAL)

    def log_tail(self, lines: int = 40) -> str:
        texts = []
        for name in ("error.log", "access.log"):
            path = self.workdir / name
            if path.exists():
                texts.append(
                    f"--- nginx {name} ---\n" + "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
                )
        return "\n".join(texts)
