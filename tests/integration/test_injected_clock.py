"""The application runs on the clock it is given: both doors and every service read time from the clock passed
to the composition root, so a test moves time instead of sleeping."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest
from starlette.testclient import TestClient

from ecrd.app import Registry, asgi_app, build_registry
from ecrd.config import Settings
from tests.conftest import ROOT_ACCESS_KEY_ID, ROOT_SECRET_ACCESS_KEY
from tests.support.clock import START, FakeClock
from tests.support.fuzzing import JSON_CONTENT_TYPE, JSON_TARGET_PREFIXES, Key, json_body, sign

TWELVE_HOURS = 12 * 3600
ROOT = Key(ROOT_ACCESS_KEY_ID, ROOT_SECRET_ACCESS_KEY)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(START)


@pytest.fixture
def registry(settings: Settings, clock: FakeClock) -> Iterator[Registry]:
    built = build_registry(settings, clock=clock)
    built.identity.authentication.bootstrap_root(ROOT_ACCESS_KEY_ID, ROOT_SECRET_ACCESS_KEY)
    yield built
    built.close()


@pytest.fixture
def http(registry: Registry) -> Iterator[TestClient]:
    with TestClient(asgi_app(registry), base_url="http://127.0.0.1:5000") as client:
        yield client


def ecr_call(http: TestClient, operation: str, *, signed_at: float) -> dict[str, object]:
    body = json_body("ecr", operation, {})
    headers = {"Content-Type": JSON_CONTENT_TYPE, "X-Amz-Target": f"{JSON_TARGET_PREFIXES['ecr']}.{operation}"}
    headers |= sign(ROOT, "ecr", body, headers, at=dt.datetime.fromtimestamp(signed_at, dt.UTC))
    response = http.post("/", content=body, headers=headers)
    answer: dict[str, object] = response.json()
    answer["status"] = response.status_code
    return answer


def test_a_registry_token_expires_when_the_clock_passes_twelve_hours(http: TestClient, clock: FakeClock) -> None:
    issued = ecr_call(http, "GetAuthorizationToken", signed_at=clock())
    assert issued["status"] == 200, issued
    data = issued["authorizationData"][0]  # type: ignore[index]
    assert data["expiresAt"] == START + TWELVE_HOURS
    login = {"Authorization": "Basic " + data["authorizationToken"]}
    assert http.get("/v2/", headers=login).status_code == 200

    clock.advance(TWELVE_HOURS - 1)
    assert http.get("/v2/", headers=login).status_code == 200
    clock.advance(2)
    expired = http.get("/v2/", headers=login)
    assert expired.status_code == 403
    assert expired.json()["errors"][0]["message"] == (
        "Your authorization token has expired. Reauthenticate and try again."
    )


def test_a_request_signed_sixteen_minutes_before_the_clock_is_refused(http: TestClient, clock: FakeClock) -> None:
    assert ecr_call(http, "DescribeRegistry", signed_at=clock() - 14 * 60)["status"] == 200
    refused = ecr_call(http, "DescribeRegistry", signed_at=clock() - 16 * 60)
    assert refused["status"] == 403, refused
    assert refused["__type"] == "InvalidSignatureException"
    assert str(refused["message"]).startswith("Signature expired: 20231114T215720Z is now earlier than")


def test_a_request_signed_at_the_real_time_is_refused_by_a_registry_living_elsewhere_in_time(
    http: TestClient,
) -> None:
    now = dt.datetime.now(dt.UTC).timestamp()
    refused = ecr_call(http, "DescribeRegistry", signed_at=now)
    assert refused["status"] == 403, refused
    assert refused["__type"] == "InvalidSignatureException"
    assert str(refused["message"]).startswith("Signature not yet current")
