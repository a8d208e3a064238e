"""ecrd's own signer (``ecrd.domain.sigv4.sign_request``, for requests to a peer ecrd's AWS API) against the door's
verifier and against botocore's signer: the same request signs to the same signature."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

import botocore.auth
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from ecrd.aws.sigv4 import parse_signed_request, verify_signature
from ecrd.domain.sigv4 import sign_request
from ecrd.errors import InvalidSignature

NOW = datetime(2026, 12, 6, 10, 30, 15, tzinfo=UTC)
KEY, SECRET = "AKIAPEERPEERPEERPEER", "peer-secret/with+odd=characters"
URL = "http://127.0.0.1:5999/"
BODY = b'{"repositoryNames":["team/app"]}'
HEADERS = {"Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": "AmazonEC2ContainerRegistry_V20150921.X"}


def _signed(body: bytes = BODY) -> dict[str, str]:
    return sign_request(
        method="POST",
        url=URL,
        headers=HEADERS,
        body=body,
        access_key_id=KEY,
        secret_access_key=SECRET,
        region="eu-west-1",
        service="ecr",
        now=NOW,
    )


def _verify(headers: dict[str, str], body: bytes) -> None:
    verify_signature(
        parse_signed_request("POST", headers, b""),
        method="POST",
        path=b"/",
        query_string=b"",
        headers=headers,
        payload_sha256=hashlib.sha256(body).hexdigest(),
        secret_access_key=SECRET,
        now=NOW,
        expected_region="eu-west-1",
        allowed_services={"ecr"},
    )


def test_a_signed_request_passes_the_doors_verifier() -> None:
    _verify(_signed(), BODY)


def test_a_changed_body_fails_the_verifier() -> None:
    with pytest.raises(InvalidSignature):
        _verify(_signed(), BODY + b" ")


def test_the_signature_is_the_one_botocore_computes_for_the_same_request(monkeypatch: pytest.MonkeyPatch) -> None:
    signed = _signed()
    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda: NOW.replace(tzinfo=None))
    request = AWSRequest(method="POST", url=URL, data=BODY, headers={**HEADERS})
    request.headers["X-Amz-Content-SHA256"] = signed["x-amz-content-sha256"]
    SigV4Auth(Credentials(KEY, SECRET), "ecr", "eu-west-1").add_auth(request)
    assert request.headers["Authorization"] == signed["authorization"]
