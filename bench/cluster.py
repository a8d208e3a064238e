"""The benchmark's cluster mode: registries behind nginx, ecrd as 1 or 2 nodes on one PostgreSQL and one bucket.

A ``Balanced`` target is nginx (round robin, bodies streamed both ways, keep-alive to the nodes) in front of
one or more registry processes. Workloads see only nginx's address; the server cost is the nodes' (CPU summed,
peak RSS per node: the highest of any node), and nginx's CPU is reported apart as the proxy's. distribution runs
behind its own nginx too, so both pay the same hop.
"""

from __future__ import annotations

import base64
import contextlib
import getpass
import os
import secrets
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from s3 import Bucket
from servers import LOOPBACK, Distribution, Ecrd, Process, Target

POSTGRES_ADMIN_URL = os.environ.get("ECRD_BENCH_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres")

_NGINX_CONFIG = """\
worker_processes auto;
{user}
pid {workdir}/nginx.pid;
error_log {workdir}/error.log warn;

events {{
    worker_connections 4096;
}}

http {{
    access_log off;
    client_body_temp_path {workdir}/temp/client_body;
    proxy_temp_path {workdir}/temp/proxy;
    fastcgi_temp_path {workdir}/temp/fastcgi;
    uwsgi_temp_path {workdir}/temp/uwsgi;
    scgi_temp_path {workdir}/temp/scgi;

    upstream registry {{
{servers}
        keepalive 128;
    }}

    server {{
        listen {listen};
        client_max_body_size 0;
        proxy_request_buffering off;
        proxy_buffering off;
        proxy_http_version 1.1;
        proxy_set_header Connection "";
        proxy_set_header Host $http_host;
        proxy_read_timeout 300s;
        proxy_send_timeout 300s;

        location / {{
            proxy_pass http://registry;
        }}
    }}
}}
"""


class Nginx(Process):
    """nginx in the foreground with its configuration, pid file and temporary files in its work folder."""

    name = "nginx"

    def __init__(self, workdir: Path, *, binary: str, port: int) -> None:
        super().__init__(workdir, port=port)
        self.upstreams: list[str] = []
        self.binary = binary

    def argv(self) -> list[str]:
        for temp in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"):
            (self.workdir / "temp" / temp).mkdir(parents=True, exist_ok=True)
        config = self.workdir / "nginx.conf"
        # Run by root, nginx hands its workers to ``nobody``, who cannot enter the run's private folder.
        user = f"user {getpass.getuser()};" if os.geteuid() == 0 else ""
        servers = "\n".join(f"        server {upstream};" for upstream in self.upstreams)
        config.write_text(_NGINX_CONFIG.format(workdir=self.workdir, user=user, servers=servers, listen=self.host))
        return [self.binary, "-p", str(self.workdir), "-c", str(config), "-g", "daemon off;"]

    def _ready(self) -> bool:
        try:
            socket.create_connection((LOOPBACK, self.port), timeout=1).close()
        except OSError:
            return False
        return True


class Balanced(Target):
    """Registry processes behind one nginx: the address, credentials and cost workloads see."""

    def __init__(self, name: str, workdir: Path, *, nginx: str) -> None:
        self.name = name
        super().__init__(workdir)
        self.members: list[Target] = []
        self.nginx = Nginx(workdir / "nginx", binary=nginx, port=self.port)

    @property
    def pid(self) -> int:
        return self.members[0].pid

    def node_pids(self) -> list[int]:
        return [member.pid for member in self.members]

    def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        for member in self.members:
            member.start()
        self.nginx.upstreams = [member.host for member in self.members]
        self.nginx.start()
        first = self.members[0]
        if isinstance(first, Ecrd):
            first.login(self.url)  # through the balancer, as a client would: the token is the cluster's

    def stop(self) -> None:
        self.nginx.stop()
        for member in self.members:
            member.stop()

    def log_tail(self, lines: int = 40) -> str:
        parts = [f"[{member.name} {member.host}]\n{member.log_tail(lines)}" for member in self.members]
        return "\n".join([*parts, f"[nginx]\n{self.nginx.log_tail(lines)}"])

    @property
    def authorization(self) -> str | None:
        return self.members[0].authorization

    @property
    def skopeo_creds(self) -> str | None:
        return self.members[0].skopeo_creds

    def create_repository(self, name: str) -> None:
        self.members[0].create_repository(name)

    def helpers(self) -> dict[str, int]:
        return {"proxy": self.nginx.pid}

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "url": self.url,
            "balancer": "nginx, round robin, unbuffered both ways, keep-alive to the nodes",
            "nodes": [member.describe() for member in self.members],
        }


@contextlib.contextmanager
def postgres_database(label: str) -> Iterator[str]:
    """A fresh PostgreSQL database for one cluster, dropped afterwards; yields its URL."""
    try:
        import psycopg
    except ImportError:
        raise RuntimeError("the cluster mode needs psycopg: pip install -e '.[postgresql]'") from None
    name = f"ecrd_bench_{label}_{uuid.uuid4().hex[:8]}"
    try:
        with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True, connect_timeout=5) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
    except psycopg.Error as error:
        raise RuntimeError(f"PostgreSQL at {POSTGRES_ADMIN_URL} (ECRD_BENCH_POSTGRES): {error}") from None
    try:
        yield f"{POSTGRES_ADMIN_URL.rsplit('/', 1)[0]}/{name}"
    finally:
        with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True, connect_timeout=5) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def ecrd_cluster(
    workdir: Path,
    *,
    nodes: int,
    workers: int,
    bucket: Bucket,
    database_url: str,
    nginx: str,
    source: Path | None = None,
) -> Balanced:
    """``nodes`` ecrd nodes sharing a database, a bucket, a master key and the balancer's public URL."""
    shared = {"ECRD_MASTER_KEY": base64.b64encode(secrets.token_bytes(32)).decode()}
    balanced = Balanced(f"ecrd×{nodes}", workdir, nginx=nginx)
    for index in range(nodes):
        balanced.members.append(
            Ecrd(
                workdir / f"node-{index + 1}",
                workers=workers,
                source=source,
                bucket=bucket,
                database_url=database_url,
                public_url=balanced.url,
                env=shared,
                login=False,
            )
        )
    return balanced


def balanced_distribution(workdir: Path, *, binary: Path, bucket: Bucket, nginx: str) -> Balanced:
    """distribution on its S3 driver behind its own nginx: the same hop as the ecrd clusters pay."""
    balanced = Balanced("distribution", workdir, nginx=nginx)
    balanced.members.append(Distribution(workdir / "node-1", binary=binary, bucket=bucket))
    return balanced
