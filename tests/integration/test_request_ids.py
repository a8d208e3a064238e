"""One request id per request: the id a client is shown in an error is the one in the server's log line."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from ecrd.app import Registry
from tests.support.oci import random_blob


def _break_blob_file(data_dir: Path, digest: str) -> None:
    """Make the stored blob unreadable as a failing disk or a bad restore would: a symlink loop (ELOOP)."""
    algorithm, hex_digest = digest.split(":", 1)
    path = data_dir / "blobs" / algorithm / hex_digest[:2] / hex_digest
    assert path.is_file()
    path.unlink()
    path.symlink_to(path)


def test_an_internal_error_shows_the_request_id_of_its_log_line(
    client: TestClient, registry: Registry, caplog: pytest.LogCaptureFixture
) -> None:
    # given a stored blob whose file can no longer be opened
    registry.registry.create_repository("broken/app")
    blob = random_blob(2048)
    assert client.post(f"/v2/broken/app/blobs/uploads/?digest={blob.digest}", content=blob.data).status_code == 201
    _break_blob_file(registry.settings.data_dir, blob.digest)
    caplog.set_level(logging.INFO, logger="ecrd")

    # when a client asks for it
    response = client.get(f"/v2/broken/app/blobs/{blob.digest}")

    # then it gets a 500 in the spec's shape whose request id is the one of the access line and the traceback
    assert response.status_code == 500
    error = response.json()["errors"][0]
    assert error["code"] == "UNKNOWN"
    shown = error["detail"]["requestId"]
    lines = [json.loads(r.getMessage()) for r in caplog.records if r.name == "ecrd.access"]
    line = next(line for line in lines if line["path"] == f"/v2/broken/app/blobs/{blob.digest}")
    assert line["requestId"] == shown
    assert line["status"] == 500
    assert line["error"] == "UNKNOWN"
    logged = [r for r in caplog.records if r.exc_info is not None and shown in r.getMessage()]
    assert logged, "the traceback is logged with the request id the client was shown"
    assert "Traceback" not in response.text
