"""/metrics: requests by door, operation and status, bytes, storage and queue, for an allowed caller only."""

from __future__ import annotations

import dataclasses
import json

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from ecrd.app import Registry, build_registry
from ecrd.config import Settings
from tests.conftest import ROOT_ACCESS_KEY_ID, ROOT_SECRET_ACCESS_KEY
from tests.integration.test_access_control import READ_ONLY, _login
from tests.integration.test_ecr_api import client_for
from tests.support.live_server import live_server
from tests.support.oci import random_blob

GET_METRICS_POLICY = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": ["ecrd:GetMetrics", "ecr:GetAuthorizationToken"], "Resource": "*"}],
    }
)


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of an exposition, by name and labels, read with Prometheus's text-format parser."""
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(found: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str) -> float:
    return found.get((name, frozenset(labels.items())), 0.0)


def test_requests_are_counted_by_door_operation_and_status_for_a_caller_allowed_get_metrics(
    endpoint: str, registry: Registry
) -> None:
    # given a user allowed ecrd:GetMetrics, and known requests on both doors
    iam = client_for(endpoint, "iam")
    iam.create_user(UserName="scraper")
    iam.put_user_policy(UserName="scraper", PolicyName="metrics", PolicyDocument=GET_METRICS_POLICY)
    key = iam.create_access_key(UserName="scraper")["AccessKey"]
    scraper = _login(endpoint, key["AccessKeyId"], key["SecretAccessKey"])
    root = _login(endpoint, ROOT_ACCESS_KEY_ID, ROOT_SECRET_ACCESS_KEY)
    client_for(endpoint, "ecr").create_repository(repositoryName="counted")
    blob = random_blob(3000)
    digest = blob.digest
    started = root.post(f"{endpoint}/v2/counted/blobs/uploads/")
    assert started.status_code == 202
    location = started.headers["Location"]
    put = root.put(
        location if location.startswith("http") else f"{endpoint}{location}", params={"digest": digest}, data=blob.data
    )
    assert put.status_code == 201
    for _ in range(3):
        assert root.head(f"{endpoint}/v2/counted/blobs/{digest}").status_code == 200
    assert root.get(f"{endpoint}/v2/counted/manifests/missing").status_code == 404

    # when the scraper reads the metrics
    answer = scraper.get(f"{endpoint}/metrics")

    # then the requests are there by door, operation and status, and the stored blob with its bytes
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/plain")
    found = samples(answer.text)
    count = "ecrd_http_request_duration_seconds_count"
    assert value(found, count, door="oci", operation="blob:HEAD", status="200") == 3
    assert value(found, count, door="oci", operation="manifest:GET", status="404") == 1
    assert value(found, count, door="oci", operation="upload:PUT", status="201") == 1
    assert value(found, count, door="aws", operation="ecr:CreateRepository", status="200") == 1
    assert value(found, count, door="aws", operation="ecr:GetAuthorizationToken", status="200") == 2
    assert value(found, "ecrd_http_request_bytes_total", door="oci") >= 3000
    assert value(found, "ecrd_storage_blobs", location="hot") == 1
    assert value(found, "ecrd_storage_bytes", location="hot") == 3000
    assert value(found, "ecrd_job_queue_depth", kind="scan", status="queued") == 0
    # and no label carries a path
    assert not any("counted" in label for _, labels in found for _, label in labels)


def test_metrics_refuse_an_anonymous_caller_and_one_not_allowed_get_metrics(endpoint: str) -> None:
    # given a user with read-only ECR access and no ecrd:GetMetrics
    iam = client_for(endpoint, "iam")
    iam.create_user(UserName="reader")
    iam.attach_user_policy(UserName="reader", PolicyArn=READ_ONLY)
    key = iam.create_access_key(UserName="reader")["AccessKey"]
    reader = _login(endpoint, key["AccessKeyId"], key["SecretAccessKey"])

    # when each asks for the metrics
    anonymous = requests.get(f"{endpoint}/metrics", timeout=10)
    forged = requests.get(f"{endpoint}/metrics", auth=("AWS", "forged"), timeout=10)
    denied = reader.get(f"{endpoint}/metrics")

    # then the anonymous and forged callers are challenged and the reader is denied, seeing no metric
    assert anonymous.status_code == 401
    assert anonymous.headers["www-authenticate"].startswith("Basic")
    assert forged.status_code == 401
    assert denied.status_code == 403
    assert "ecrd_" not in anonymous.text + forged.text + denied.text


def test_public_metrics_answer_without_credentials(settings: Settings) -> None:
    # given a registry whose metrics are public
    registry = build_registry(dataclasses.replace(settings, metrics_public=True))
    try:
        with live_server(registry) as url:
            # when an anonymous caller scrapes
            answer = requests.get(f"{url}/metrics", timeout=10)
    finally:
        registry.close()

    # then the metrics answer
    assert answer.status_code == 200
    assert "ecrd_storage_bytes" in answer.text


def test_job_scan_and_collection_outcomes_are_counted(registry: Registry) -> None:
    # given job handlers counted by the metrics, one succeeding and one failing
    def fail(payload: dict[str, object]) -> None:
        raise RuntimeError("broken")

    handlers = registry.metrics.counting_jobs({"scan": lambda payload: None, "lifecycle-run": fail})

    # when each runs, a scan is stored and a collection reclaims two blobs
    handlers["scan"]({})
    with pytest.raises(RuntimeError):
        handlers["lifecycle-run"]({})
    registry.metrics.scan_completed("COMPLETE")
    registry.metrics.gc_collected(2, 4096)
    registry.metrics.gc_failed()

    # then the exposition shows every outcome
    found = samples(registry.metrics.exposition().decode())
    assert value(found, "ecrd_jobs_total", kind="scan", outcome="succeeded") == 1
    assert value(found, "ecrd_jobs_total", kind="lifecycle-run", outcome="failed") == 1
    assert value(found, "ecrd_scans_total", status="COMPLETE") == 1
    assert value(found, "ecrd_gc_runs_total", outcome="succeeded") == 1
    assert value(found, "ecrd_gc_runs_total", outcome="failed") == 1
    assert value(found, "ecrd_gc_reclaimed_blobs_total") == 2
    assert value(found, "ecrd_gc_reclaimed_bytes_total") == 4096
