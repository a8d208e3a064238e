"""ecrd as a cluster for end-to-end tests: several ``ecrd serve`` nodes on one PostgreSQL database and one blob
store, with nginx in front, round robin — all started and stopped by the test.

Every node has the same master key and root key and tells clients the balancer's URL (``--public-url``), so
tokens, Location headers and SigV4 scopes are the cluster's, not a node's. The blobs live in one of the two
places a deployment keeps them (``BlobPlacement``): a bucket of an S3 endpoint (``--storage-url s3://…``, each
node with a data directory of its own), or a directory every node shares (one ``--data-dir`` on a shared
filesystem).
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import re
import secrets
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import psycopg

from ecrd.storage.filesystem import INCOMING
from tests.support.clients import (
    TEST_ACCESS_KEY_ID,
    TEST_SECRET_ACCESS_KEY,
    Credentials,
    ToolFailed,
    ecr_client,
    ecr_registry_credentials,
    run_tool,
)
from tests.support.databases import database_url
from tests.support.nginx import NginxBalancer
from tests.support.ports import LOOPBACK, free_port
from tests.support.registry_process import POLL_INTERVAL, EcrdProcess, ServerFailed, http_answers
from tests.support.seaweedfs import S3Endpoint

DEFAULT_NODES = 3

StorageMode = Literal["s3", "shared-directory"]
STORAGE_MODES: tuple[StorageMode, ...] = ("s3", "shared-directory")

SCANNED = re.compile(r" scanned (\S+@sha256:[0-9a-f]{64}): ")
"""The line a node logs for each scan it ran (``ecrd.scanning``)."""


@dataclass(frozen=True)
class BlobPlacement:
    """Where the cluster's blobs live: a bucket on ``s3`` (each node keeps local state in its own directory), or
    ``shared_directory``, every node's ``--data-dir``."""

    s3: S3Endpoint | None = None
    bucket: str = ""
    shared_directory: Path | None = None

    @property
    def mode(self) -> StorageMode:
        return "s3" if self.s3 is not None else "shared-directory"

    def data_dir(self, node_workdir: Path) -> Path:
        return self.shared_directory if self.shared_directory is not None else node_workdir / "data"

    def environment(self) -> dict[str, str]:
        """The ``ECRD_*`` settings of the blob store, the same for every node and for ``ecrd fsck``."""
        if self.s3 is None:
            return {}
        return {
            "ECRD_STORAGE_URL": self.s3.storage_url(self.bucket, "registry"),
            "ECRD_S3_ENDPOINT_URL": self.s3.url,
            "ECRD_S3_REGION": self.s3.region,
            "ECRD_S3_ACCESS_KEY_ID": self.s3.access_key_id,
            "ECRD_S3_SECRET_ACCESS_KEY": self.s3.secret_access_key,
        }

    def stored_objects(self) -> int:
        """How many objects the blob store holds (a bucket listing; files under the shared directory)."""
        if self.s3 is not None:
            return int(self.s3.client().list_objects_v2(Bucket=self.bucket).get("KeyCount", 0))
        assert self.shared_directory is not None
        return sum(1 for path in self.shared_directory.rglob("*") if path.is_file())


class ClusterNode(EcrdProcess):
    """One ``ecrd serve`` of the cluster: its own port, the data directory its ``BlobPlacement`` gives it, the
    cluster's public URL; the database, master key, root key and blob store come from ``ECRD_*`` variables, the
    same for every node and for the commands an operator runs beside them (``Cluster.fsck``)."""

    def __init__(
        self, workdir: Path, *, index: int, data_dir: Path, public_url: str, env: dict[str, str], port: int
    ) -> None:
        super().__init__(workdir, port=port, data_dir=data_dir, env=env)
        self.index = index
        self.public_url = public_url

    def argv(self) -> list[str]:
        # After the node's own address, which EcrdProcess gives as the public URL: the last flag given wins.
        return [*super().argv(), "--public-url", self.public_url]

    def scanned_images(self) -> list[str]:
        """``REPOSITORY@DIGEST`` of every scan this node ran, one entry per run, from its log."""
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return SCANNED.findall(text)


class Cluster:
    """Started nodes behind a started balancer; ``url``/``host`` are the balancer's, ``nodes[i].url`` a node's."""

    def __init__(
        self,
        workdir: Path,
        database: str,
        nodes: Sequence[ClusterNode],
        balancer: NginxBalancer,
        placement: BlobPlacement,
    ) -> None:
        self.workdir = workdir
        self.database_url = database
        self.placement = placement
        self.nodes = list(nodes)
        self.balancer = balancer
        self._ecr: Any = None
        self._credentials: Credentials | None = None

    @property
    def url(self) -> str:
        return self.balancer.url

    @property
    def host(self) -> str:
        return self.balancer.host

    def reference(self, repository: str, tag_or_digest: str) -> str:
        """``HOST/REPO:TAG`` or ``HOST/REPO@sha256:…`` on the balancer, as docker and skopeo take it."""
        separator = "@" if ":" in tag_or_digest else ":"
        return f"{self.host}/{repository}{separator}{tag_or_digest}"

    @property
    def ecr(self) -> Any:
        """boto3's ECR client (root) through the balancer."""
        if self._ecr is None:
            self._ecr = ecr_client(self.url)
        return self._ecr

    @property
    def credentials(self) -> Credentials:
        """Registry credentials from GetAuthorizationToken through the balancer: valid on every node."""
        if self._credentials is None:
            self._credentials = ecr_registry_credentials(self.ecr)
        return self._credentials

    def node_of(self, upstream: str) -> ClusterNode:
        """The node listening on ``upstream`` (``127.0.0.1:port``, as nginx's access log names it)."""
        for node in self.nodes:
            if node.host == upstream:
                return node
        raise KeyError(upstream)

    def outsider(self, name: str, **env: str) -> ClusterNode:
        """A node configured like the others but for ``env`` (``ECRD_*`` overrides), outside the balancer and not
        started: for what must refuse to join."""
        model = self.nodes[0]
        workdir = self.workdir / name
        return ClusterNode(
            workdir,
            index=len(self.nodes),
            data_dir=self.placement.data_dir(workdir),
            public_url=model.public_url,
            env={**model.env, **env},
            port=free_port(),
        )

    def ensure_running(self) -> None:
        """Start again any node a test killed, and wait until every node answers."""
        for node in self.nodes:
            if not node.running:
                node.start()
            node_ready = http_answers(f"{node.url}/healthz", 200)
            if not node_ready():
                raise ServerFailed(f"node {node.index} does not answer /healthz\n{node.describe_log()}")

    def node_storing_incoming_file(self, *, min_bytes: int, timeout: float) -> ClusterNode:
        """The node that is storing a request's bytes, observed rather than predicted: the one whose processes hold
        open a temporary file of at least ``min_bytes`` in the shared directory's incoming area. Other writers
        (a scan storing its SBOM, say) hold smaller files, and which node nginx picks need not be guessed."""
        directory = self.placement.shared_directory
        if directory is None:
            raise AssertionError("only a shared directory shows which node is writing")
        incoming = directory / INCOMING
        deadline = time.monotonic() + timeout
        while True:
            for node in self.nodes:
                if node.running and any(_size(path) >= min_bytes for path in _files_open_in(node.pid, incoming)):
                    return node
            if time.monotonic() >= deadline:
                raise AssertionError(
                    f"no node stored {min_bytes} bytes of a request within {timeout:.0f} s\n{self.describe_logs()}"
                )
            time.sleep(POLL_INTERVAL)

    def fsck(self, *args: str) -> dict[str, Any]:
        """``ecrd fsck --json ARGS`` run beside the cluster, as an operator would; its report (exit under
        ``exit``)."""
        node = self.nodes[0]
        argv = [sys.executable, "-m", "ecrd", "fsck", "--json", *args, "--data-dir", str(node.data_dir)]
        try:
            done = run_tool(argv, timeout=120, env=node.environment(), check=False)
        except ToolFailed as exc:  # pragma: no cover - run_tool raises only on a timeout here
            raise AssertionError(f"ecrd fsck did not finish: {exc}") from None
        assert done.returncode in (0, 1), f"ecrd fsck failed ({done.returncode}):\n{done.stdout}\n{done.stderr}"
        report: dict[str, Any] = json.loads(done.stdout)
        report["exit"] = done.returncode
        return report

    def query(self, sql: str, *params: object) -> list[tuple[Any, ...]]:
        """Rows of one read-only query on the cluster's database (what a test inspects: the job queue)."""
        with psycopg.connect(self.database_url, autocommit=True) as conn:
            return list(conn.execute(sql, params).fetchall())  # type: ignore[arg-type]

    def describe_logs(self, lines: int = 30) -> str:
        parts = [f"--- node {node.index} ({node.host}) ---\n{node.log_tail(lines)}" for node in self.nodes]
        parts.append(self.balancer.log_tail(lines))
        return "\n".join(parts)


def _start_nodes(nodes: Sequence[ClusterNode]) -> None:
    """Start every node at once (they migrate and make the root key concurrently, as a rolling deploy would),
    then wait for each."""
    servers = [node.spawn() for node in nodes]
    for node, server in zip(nodes, servers, strict=True):
        server.wait_until(
            http_answers(f"{node.url}/healthz", 200),
            timeout=node.startup_timeout,
            what=f"answering 200 on GET {node.url}/healthz",
        )


@contextlib.contextmanager
def running_cluster(
    workdir: Path, placement: BlobPlacement, *, nodes: int = DEFAULT_NODES, nginx: str
) -> Iterator[Cluster]:
    """A fresh database, ``nodes`` ecrd nodes storing blobs as ``placement`` says and nginx in front; everything
    stopped (and the database dropped) afterwards, whatever happened."""
    workdir.mkdir(parents=True, exist_ok=True)
    balancer_port = free_port()
    public_url = f"http://{LOOPBACK}:{balancer_port}"
    with database_url("postgresql", workdir) as database:
        env = {
            "ECRD_DATABASE_URL": database,
            "ECRD_MASTER_KEY": base64.b64encode(secrets.token_bytes(32)).decode(),
            "ECRD_ROOT_ACCESS_KEY_ID": TEST_ACCESS_KEY_ID,
            "ECRD_ROOT_SECRET_ACCESS_KEY": TEST_SECRET_ACCESS_KEY,
            **placement.environment(),
        }
        members = []
        for index in range(nodes):
            node_workdir = workdir / f"node-{index}"
            members.append(
                ClusterNode(
                    node_workdir,
                    index=index,
                    data_dir=placement.data_dir(node_workdir),
                    public_url=public_url,
                    env=env,
                    port=free_port(),
                )
            )
        balancer = NginxBalancer(workdir / "nginx", [node.host for node in members], binary=nginx, port=balancer_port)
        try:
            _start_nodes(members)
            balancer.start()
            yield Cluster(workdir, database, members, balancer, placement)
        finally:
            balancer.stop()
            for node in members:
                node.stop()


def _files_open_in(group: int, directory: Path) -> list[Path]:
    """The files under ``directory`` that processes of process group ``group`` (a node and its workers) hold
    open, from ``/proc``."""
    found: list[Path] = []
    prefix = str(directory) + "/"
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if os.getpgid(int(proc.name)) != group:
                continue
            for fd in (proc / "fd").iterdir():
                with contextlib.suppress(OSError):
                    target = os.readlink(fd)
                    if target.startswith(prefix):
                        found.append(Path(target))
        except OSError:  # the process ended meanwhile, or is not ours to read
            continue
    return found


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0
