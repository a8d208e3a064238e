"""The pure parts of registry events: ECR's envelope, webhook filters, the retry schedule and the signature."""

from __future__ import annotations

import hashlib
import hmac
import json

import pytest

from ecrd.domain.events import (
    IMAGE_ACTION,
    IMAGE_SCAN,
    EventFilter,
    Origin,
    build_event,
    image_action,
    image_scan,
    retry_delay,
    signature,
    signature_valid,
)


def test_an_event_has_eventbridges_envelope_and_leaves_out_absent_detail() -> None:
    event = build_event(
        Origin("123456789012", "eu-west-1"),
        IMAGE_ACTION,
        image_action("DELETE", "team/app", "sha256:" + "a" * 64, tag=None),
        event_id="13cde686-328b-6117-af20-0e5566167482",
        moment=1573869274.0,
        repository="team/app",
    )
    assert json.loads(event.body) == {
        "version": "0",
        "id": "13cde686-328b-6117-af20-0e5566167482",
        "detail-type": "ECR Image Action",
        "source": "aws.ecr",
        "account": "123456789012",
        "time": "2019-11-16T01:54:34Z",
        "region": "eu-west-1",
        "resources": ["arn:aws:ecr:eu-west-1:123456789012:repository/team/app"],
        "detail": {
            "result": "SUCCESS",
            "repository-name": "team/app",
            "image-digest": "sha256:" + "a" * 64,
            "action-type": "DELETE",
        },
    }


def test_a_scan_event_names_only_the_severities_found() -> None:
    detail = image_scan("app", "sha256:x", status="COMPLETE", tags=["v1"], severity_counts={"HIGH": 2, "LOW": 0})
    assert detail["finding-severity-counts"] == {"HIGH": 2}
    assert detail["image-tags"] == ["v1"]


@pytest.mark.parametrize(
    ("event_filter", "detail_type", "repository", "taken"),
    [
        (EventFilter(), IMAGE_SCAN, None, True),
        (EventFilter((IMAGE_SCAN,)), IMAGE_ACTION, "app", False),
        (EventFilter((IMAGE_SCAN,)), IMAGE_SCAN, "app", True),
        (EventFilter((), ("team-a/*",)), IMAGE_ACTION, "team-a/api", True),
        (EventFilter((), ("team-a/*",)), IMAGE_ACTION, "team-b/api", False),
        (EventFilter((), ("team-a/*",)), IMAGE_ACTION, None, False),
    ],
)
def test_a_filter_takes_its_types_and_repositories(
    event_filter: EventFilter, detail_type: str, repository: str | None, taken: bool
) -> None:
    assert event_filter.matches(detail_type, repository) is taken


def test_retries_back_off_exponentially_up_to_the_cap_with_half_of_it_jittered() -> None:
    delays = [retry_delay(n, base=30.0, cap=3600.0, jitter=0.0) for n in range(1, 10)]
    assert delays[:4] == [15.0, 30.0, 60.0, 120.0]
    assert delays[-1] == 1800.0
    assert retry_delay(3, base=30.0, cap=3600.0, jitter=0.999) < 120.0
    assert retry_delay(3, base=30.0, cap=3600.0, jitter=0.5) == 90.0


def test_the_signature_is_the_hmac_of_timestamp_and_body_a_receiver_computes() -> None:
    body = b'{"id":"1"}'
    expected = "v1=" + hmac.new(b"s3cret", b"1700000000." + body, hashlib.sha256).hexdigest()
    assert signature("s3cret", "1700000000", body) == expected
    assert signature_valid("s3cret", "1700000000", body, expected)
    assert not signature_valid("s3cret", "1700000001", body, expected)
    assert not signature_valid("s3cret", "1700000000", body + b" ", expected)
