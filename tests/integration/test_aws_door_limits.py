"""The AWS door's front: callers authenticated before their bodies are read, every body bounded by its
operation, unsigned payloads refused, presigned requests still served (real socket, both back ends)."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote, urlsplit

import pytest
import requests
from botocore.auth import SigV4Auth, SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from starlette.testclient import TestClient

from ecrd.app import Registry, asgi_app
from ecrd.aws.door import JSON_BODY_BYTES, QUERY_BODY_BYTES
from tests.conftest import ROOT_ACCESS_KEY_ID, ROOT_SECRET_ACCESS_KEY

ECR_TARGET = "AmazonEC2ContainerRegistry_V20150921"
JSON_TYPE = "application/x-amz-json-1.1"
FORM_TYPE = "application/x-www-form-urlencoded; charset=utf-8"
ANNOUNCED = 20 * 1024 * 1024
SENT = 64 * 1024
"""Bytes of an announced body actually sent before the answer is awaited: far less than announced."""
ANSWER_DEADLINE = 10.0
"""Seconds within which a refusal must arrive; reading the rest of an announced body would never end."""


def signed_headers(
    endpoint: str,
    service: str,
    body: bytes,
    headers: Mapping[str, str],
    *,
    key: str = ROOT_ACCESS_KEY_ID,
    secret: str = ROOT_SECRET_ACCESS_KEY,
) -> dict[str, str]:
    """The headers botocore sends for a POST of ``body`` to ``endpoint``, signed for ``service``."""
    request = AWSRequest(method="POST", url=endpoint + "/", data=body, headers=dict(headers))
    SigV4Auth(Credentials(key, secret), service, "us-east-1").add_auth(request)
    return {name: str(value) for name, value in request.headers.items()}


def ecr_headers(operation: str) -> dict[str, str]:
    return {"X-Amz-Target": f"{ECR_TARGET}.{operation}", "Content-Type": JSON_TYPE}


def announce_and_await(
    endpoint: str, headers: Mapping[str, str], *, announced: int = ANNOUNCED, chunked: bool = False
) -> tuple[int, dict[str, str], bytes, bool]:
    """Send a request's head and only the first ``SENT`` bytes of its body, then read the answer.

    Returns the status, headers and body of the answer, and whether the server closed the connection after
    it. Raises ``TimeoutError`` if no answer arrives within ``ANSWER_DEADLINE``: a server that reads the whole
    announced body before answering never answers here.
    """
    target = urlsplit(endpoint)
    lines = ["POST / HTTP/1.1", f"Host: {target.netloc}"]
    lines += [
        f"{name}: {value}"
        for name, value in headers.items()
        if name.lower() not in ("host", "content-length", "transfer-encoding")
    ]
    lines.append("Transfer-Encoding: chunked" if chunked else f"Content-Length: {announced}")
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    piece = b"{" + b" " * (SENT - 1)
    deadline = time.monotonic() + ANSWER_DEADLINE
    with socket.create_connection((target.hostname or "127.0.0.1", target.port or 80), timeout=ANSWER_DEADLINE) as sock:
        sock.sendall(head)
        try:
            if chunked:
                # A chunked body announces nothing: stream just past ``announced``, so the server can only
                # notice by counting.
                for _ in range(announced // SENT + 1):
                    sock.sendall(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
            else:
                sock.sendall(piece)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server may already have answered and closed
        received = b""
        closed = False
        while time.monotonic() < deadline:
            sock.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                data = sock.recv(65536)
            except TimeoutError:
                break
            except ConnectionResetError:
                closed = True
                break
            if not data:
                closed = True
                break
            received += data
            if _complete(received):
                # The answer is whole; wait briefly for the server to end the connection.
                # A reset counts as closed: a server closing while unread body bytes are still arriving
                # makes the kernel reset the connection.
                sock.settimeout(5.0)
                try:
                    closed = sock.recv(1) == b""
                except ConnectionResetError:
                    closed = True
                except TimeoutError:
                    closed = False
                break
    if not _complete(received):
        raise TimeoutError(f"no whole answer within {ANSWER_DEADLINE} s; received {received[:200]!r}")
    head_text, _, body = received.partition(b"\r\n\r\n")
    status_line, *header_lines = head_text.decode("latin-1").split("\r\n")
    answer_headers = {
        name.strip().lower(): value.strip() for name, _, value in (line.partition(":") for line in header_lines)
    }
    return int(status_line.split()[1]), answer_headers, body, closed


def _complete(received: bytes) -> bool:
    head, separator, body = received.partition(b"\r\n\r\n")
    if not separator:
        return False
    for line in head.decode("latin-1").split("\r\n")[1:]:
        name, _, value = line.partition(":")
        if name.strip().lower() == "content-length":
            return len(body) >= int(value.strip())
    return False


def test_an_unsigned_20_mib_body_is_refused_without_being_read(endpoint: str) -> None:
    # Given a request that announces 20 MiB but carries no signature
    # When only its head and the first 64 KiB of its body are sent
    status, headers, body, closed = announce_and_await(endpoint, ecr_headers("DescribeRepositories"))

    # Then the answer comes at once, in the protocol's shape, and the connection ends with it
    assert status in (400, 403)
    assert json.loads(body)["__type"] == "MissingAuthenticationTokenException"
    assert headers.get("connection") == "close"
    assert closed


def test_a_body_signed_by_an_unknown_key_is_refused_without_being_read(endpoint: str) -> None:
    headers = signed_headers(endpoint, "ecr", b"{}", ecr_headers("DescribeRepositories"), key="AKIAUNKNOWNKEY000000")

    status, _, body, closed = announce_and_await(endpoint, headers)

    assert status == 403
    assert json.loads(body)["__type"] == "UnrecognizedClientException"
    assert closed


def test_a_stale_signature_is_refused_without_reading_the_body(endpoint: str) -> None:
    headers = signed_headers(endpoint, "ecr", b"{}", ecr_headers("DescribeRepositories"))
    headers["X-Amz-Date"] = "20200101T000000Z"
    headers["Authorization"] = headers["Authorization"].replace(
        headers["Authorization"].split("Credential=")[1].split("/")[1], "20200101"
    )

    status, _, body, closed = announce_and_await(endpoint, headers)

    assert status == 403
    assert "Signature expired" in json.loads(body)["message"]
    assert closed


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_a_known_key_gets_no_more_body_than_its_operation_needs(endpoint: str, chunked: bool) -> None:
    # Given a request from a known key to an operation whose input is a few hundred bytes
    headers = signed_headers(endpoint, "ecr", b"{}", ecr_headers("DescribeRepositories"))

    # When it announces (or streams) more than the operation's bound
    status, answer_headers, body, closed = announce_and_await(
        endpoint, headers, announced=JSON_BODY_BYTES + 1, chunked=chunked
    )

    # Then it is refused as too large, and the rest of the body is never read
    assert status == 413
    assert json.loads(body)["__type"] == "InvalidParameterException"
    assert "exceeds the limit" in json.loads(body)["message"]
    assert answer_headers.get("connection") == "close"
    assert closed


def test_a_query_body_over_the_iam_and_sts_bound_is_refused_in_the_query_shape(endpoint: str) -> None:
    headers = signed_headers(endpoint, "iam", b"Action=ListUsers&Version=2010-05-08", {"Content-Type": FORM_TYPE})

    status, _, body, closed = announce_and_await(endpoint, headers, announced=QUERY_BODY_BYTES + 1)

    assert status == 413
    assert b"<Code>RequestEntityTooLarge</Code>" in body
    assert closed


def test_a_large_policy_within_the_query_bound_is_accepted(endpoint: str) -> None:
    # A policy document padded with whitespace to the IAM model's maximum of 131,072 characters: IAM does
    # not count whitespace against its quotas, so this is a valid request, and its form encoding fits.
    statement = {"Effect": "Allow", "Action": "ecr:DescribeRepositories", "Resource": "*"}
    compact = json.dumps({"Version": "2012-10-17", "Statement": [statement]})
    document = compact[:-1] + " " * (131072 - len(compact)) + "}"
    iam = _boto3(endpoint, "iam")
    iam.create_user(UserName="alice")
    iam.put_user_policy(UserName="alice", PolicyName="padded", PolicyDocument=document)
    assert iam.list_user_policies(UserName="alice")["PolicyNames"] == ["padded"]


def test_an_unsigned_payload_is_refused_on_a_header_signed_request(endpoint: str) -> None:
    headers = signed_headers(
        endpoint, "ecr", b"{}", {**ecr_headers("DescribeRepositories"), "X-Amz-Content-SHA256": "UNSIGNED-PAYLOAD"}
    )

    answer = requests.post(endpoint + "/", data=b'{"repositoryNames": ["swapped"]}', headers=headers, timeout=10)

    assert answer.status_code == 403
    assert answer.json()["__type"] == "InvalidSignatureException"
    assert "UNSIGNED-PAYLOAD" in answer.json()["message"]


def test_a_presigned_request_is_still_served(endpoint: str) -> None:
    # A presigned URL signs no body of its own (botocore signs the empty payload): an operation whose input
    # is all optional is called with none.
    body = b""
    request = AWSRequest(method="POST", url=endpoint + "/", data=body, headers=ecr_headers("DescribeRepositories"))
    SigV4QueryAuth(Credentials(ROOT_ACCESS_KEY_ID, ROOT_SECRET_ACCESS_KEY), "ecr", "us-east-1", expires=60).add_auth(
        request
    )
    assert "X-Amz-Signature=" in request.url

    answer = requests.post(request.url, data=body, headers=ecr_headers("DescribeRepositories"), timeout=10)

    assert answer.status_code == 200, answer.text
    assert answer.json() == {"repositories": []}


def test_a_signed_request_within_its_bound_keeps_its_connection(endpoint: str) -> None:
    with requests.Session() as session:
        for _ in range(2):
            body = b"{}"
            headers = signed_headers(endpoint, "ecr", body, ecr_headers("DescribeRepositories"))
            answer = session.post(endpoint + "/", data=body, headers=headers, timeout=10)
            assert answer.status_code == 200
            assert answer.headers.get("connection", "").lower() != "close"


def test_putting_an_iam_policy_writes_nothing_to_stderr(registry: Registry, capfd: pytest.CaptureFixture[str]) -> None:
    from ecrd.aws import shapes

    shapes._pattern.cache_clear()  # RE2 logs, if at all, when a pattern is compiled
    capfd.readouterr()
    with TestClient(asgi_app(registry), base_url="http://127.0.0.1:5000") as client:
        for action, extra in (
            ("CreateUser", {}),
            (
                "PutUserPolicy",
                {
                    "PolicyName": "p",
                    "PolicyDocument": json.dumps(
                        {
                            "Version": "2012-10-17",
                            "Statement": [{"Effect": "Allow", "Action": "ecr:*", "Resource": "*"}],
                        }
                    ),
                },
            ),
        ):
            form = {"Action": action, "Version": "2010-05-08", "UserName": "alice", **extra}
            body = "&".join(f"{k}={quote(v, safe='')}" for k, v in form.items()).encode()
            headers = signed_headers("http://127.0.0.1:5000", "iam", body, {"Content-Type": FORM_TYPE})
            assert client.post("/", content=body, headers=headers).status_code == 200
    assert "Error parsing" not in capfd.readouterr().err


def _boto3(endpoint: str, service: str) -> Any:
    from tests.support.clients import AwsCredentials, aws_client

    return aws_client(service, endpoint, AwsCredentials(ROOT_ACCESS_KEY_ID, ROOT_SECRET_ACCESS_KEY))
