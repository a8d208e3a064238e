"""A server's memory stays flat under a repeated mixed load: once its caches and pools are warm, answering the
same requests again keeps nothing more (no per-request retention anywhere on the OCI or the AWS door).

Measured with tracemalloc on the allocations made by the server's code (ecrd, SQLAlchemy, Starlette, anyio,
uvicorn); the test's own clients (boto3, requests) run in the same process and are left out.
"""

from __future__ import annotations

import base64
import gc
import tracemalloc

import pytest
import requests

from tests.integration.test_ecr_api import client_for
from tests.support.oci import OCI_MANIFEST, config_blob, digest_of, image_manifest, random_blob

pytestmark = [pytest.mark.parametrize("backend", ["sqlite"]), pytest.mark.timeout(300)]

REPOSITORY = "team/flat"
IMAGES = 8
WARM_ROUNDS = 3
MEASURED_ROUNDS = 6
# Kept across the measured rounds (~1,000 requests): a leak of a few hundred bytes per request would exceed it.
GROWTH_BOUND_BYTES = 256 * 1024
SERVER_CODE = ("*/ecrd/*", "*/sqlalchemy/*", "*/starlette/*", "*/anyio/*", "*/uvicorn/*", "*/sqlite3/*")


def _push(session: requests.Session, url: str, data: bytes) -> str:
    digest = digest_of(data)
    started = session.post(f"{url}/v2/{REPOSITORY}/blobs/uploads/", timeout=30)
    started.raise_for_status()
    location = started.headers["Location"]
    location = location if location.startswith("http") else url + location
    session.put(location, params={"digest": digest}, data=data, timeout=30).raise_for_status()
    return digest


def _server_bytes(snapshot: tracemalloc.Snapshot) -> int:
    filters = [tracemalloc.Filter(True, pattern) for pattern in SERVER_CODE]
    return sum(stat.size for stat in snapshot.filter_traces(filters).statistics("filename"))


def test_a_repeated_mixed_load_keeps_no_memory(endpoint: str) -> None:
    # given a repository of a few images, and clients of both doors
    ecr, iam, kms, sts = (client_for(endpoint, name) for name in ("ecr", "iam", "kms", "sts"))
    ecr.create_repository(repositoryName=REPOSITORY)
    token = ecr.get_authorization_token()["authorizationData"][0]["authorizationToken"]
    session = requests.Session()
    session.auth = tuple(base64.b64decode(token).decode().split(":", 1))  # type: ignore[assignment]
    config, layer = config_blob(), random_blob(2048)
    _push(session, endpoint, config.data)
    layer_digest = _push(session, endpoint, layer.data)
    manifests = [image_manifest(config, [layer], annotations={"n": str(i)}) for i in range(IMAGES)]

    def one_round() -> None:
        for number, manifest in enumerate(manifests):
            tag = f"v{number}"
            put = session.put(
                f"{endpoint}/v2/{REPOSITORY}/manifests/{tag}",
                data=manifest,
                headers={"Content-Type": OCI_MANIFEST},
                timeout=30,
            )
            put.raise_for_status()
            for response in (
                session.get(f"{endpoint}/v2/{REPOSITORY}/manifests/{tag}", headers={"Accept": OCI_MANIFEST}),
                session.head(f"{endpoint}/v2/{REPOSITORY}/manifests/{digest_of(manifest)}"),
                session.head(f"{endpoint}/v2/{REPOSITORY}/blobs/{layer_digest}"),
                session.get(f"{endpoint}/v2/{REPOSITORY}/blobs/{layer_digest}"),
                session.get(f"{endpoint}/v2/{REPOSITORY}/tags/list", params={"n": "3", "last": tag}),
                session.get(f"{endpoint}/v2/_catalog"),
            ):
                response.raise_for_status()
            ecr.describe_images(repositoryName=REPOSITORY, imageIds=[{"imageTag": tag}])
            ecr.batch_get_image(repositoryName=REPOSITORY, imageIds=[{"imageTag": tag}])
        ecr.list_images(repositoryName=REPOSITORY)
        ecr.describe_repositories()
        ecr.get_authorization_token()
        iam.list_users()
        kms.list_keys()
        sts.get_caller_identity()

    # when the same mixed load runs again and again after its caches and pools are warm
    for _ in range(WARM_ROUNDS):
        one_round()
    tracemalloc.start(1)
    try:
        one_round()
        gc.collect()
        before = _server_bytes(tracemalloc.take_snapshot())
        for _ in range(MEASURED_ROUNDS):
            one_round()
        gc.collect()
        after = _server_bytes(tracemalloc.take_snapshot())
    finally:
        tracemalloc.stop()

    # then the server's code holds no more than it did
    assert after - before < GROWTH_BOUND_BYTES, f"server allocations grew by {after - before} bytes"
