"""/metrics of a real `ecrd serve` with two workers: every scrape shows the whole server's counts."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from tests.support.clients import TEST_ACCESS_KEY_ID, TEST_SECRET_ACCESS_KEY, ecr_client
from tests.support.oci import random_blob
from tests.support.registry_process import EcrdProcess

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]

ROOT_ENV = {"ECRD_ROOT_ACCESS_KEY_ID": TEST_ACCESS_KEY_ID, "ECRD_ROOT_SECRET_ACCESS_KEY": TEST_SECRET_ACCESS_KEY}
HEADS = 40
SCRAPES = 8
COUNT = "ecrd_http_request_duration_seconds_count"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[EcrdProcess]:
    process = EcrdProcess(tmp_path / "ecrd", env=ROOT_ENV, extra_args=["--workers", "2"])
    process.start()
    try:
        yield process
    finally:
        process.stop()


def _authorization(server: EcrdProcess) -> str:
    token = ecr_client(server.url).get_authorization_token()["authorizationData"][0]["authorizationToken"]
    return "Basic " + token


def _scrape(server: EcrdProcess, authorization: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    # A connection of its own each time (no session): the kernel hands each to either worker.
    answer = requests.get(f"{server.url}/metrics", headers={"Authorization": authorization}, timeout=10)
    assert answer.status_code == 200, answer.text
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(answer.text)
        for sample in family.samples
    }


def _heads(found: dict[tuple[str, frozenset[tuple[str, str]]], float]) -> float:
    labels = frozenset({"door": "oci", "operation": "blob:HEAD", "status": "200"}.items())
    return found.get((COUNT, labels), 0.0)


def test_every_scrape_of_a_two_worker_server_counts_the_requests_of_both_workers(server: EcrdProcess) -> None:
    # given a blob, and known requests each on a connection of its own, so that both workers serve some
    ecr_client(server.url).create_repository(repositoryName="scraped")
    authorization = _authorization(server)
    headers = {"Authorization": authorization}
    blob = random_blob(5000)
    started = requests.post(f"{server.url}/v2/scraped/blobs/uploads/", headers=headers, timeout=10)
    location = started.headers["Location"]
    url = location if location.startswith("http") else server.url + location
    put = requests.put(url, params={"digest": blob.digest}, data=blob.data, headers=headers, timeout=10)
    assert put.status_code == 201
    for _ in range(HEADS):
        assert requests.head(f"{server.url}/v2/scraped/blobs/{blob.digest}", headers=headers, timeout=10).ok

    # when the metrics are scraped several times
    scrapes = [_scrape(server, authorization) for _ in range(SCRAPES)]

    # then each scrape, whichever worker answered it, holds every request of the server
    assert {_heads(found) for found in scrapes} == {HEADS}
    last = scrapes[-1]
    assert last[(COUNT, frozenset({"door": "aws", "operation": "ecr:CreateRepository", "status": "200"}.items()))] == 1
    assert last[("ecrd_http_request_bytes_total", frozenset({("door", "oci")}))] >= 5000
    assert last[("ecrd_storage_bytes", frozenset({("location", "hot")}))] == 5000
    # and the scrapes themselves are counted, as the door "other"
    metrics = frozenset({"door": "other", "operation": "metrics", "status": "200"}.items())
    assert last[(COUNT, metrics)] >= SCRAPES - 1
    # and the two workers keep their values in files of the metrics directory
    pids = {path.stem.rsplit("_", 1)[-1] for path in (server.data_dir / "metrics").glob("*.db")}
    assert len(pids) >= 2


def test_a_restarted_server_counts_from_zero_and_refuses_anonymous_scrapes(server: EcrdProcess) -> None:
    # given a server that has answered requests, then is restarted
    authorization = _authorization(server)
    assert requests.get(f"{server.url}/v2/", headers={"Authorization": authorization}, timeout=10).ok
    server.stop()
    server.start()

    # when it is scraped anonymously, then with a token
    anonymous = requests.get(f"{server.url}/metrics", timeout=10)
    found = _scrape(server, _authorization(server))

    # then the anonymous scrape is challenged, and the last run's requests are gone from the counts
    assert anonymous.status_code == 401
    assert "ecrd_" not in anonymous.text
    base = frozenset({"door": "oci", "operation": "base:GET", "status": "200"}.items())
    assert found.get((COUNT, base), 0.0) == 0
    assert base64.b64decode(authorization.split()[1]).startswith(b"AWS:")
