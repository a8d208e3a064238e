"""The SigV4 verifier against botocore's real signer, AWS's published test suite, and hostile input."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta, timezone
from urllib.parse import urlsplit

import botocore.auth
import pytest
from botocore.auth import SigV4Auth, SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from hypothesis import given, settings
from hypothesis import strategies as st

from ecrd.aws.sigv4 import (
    SignedRequest,
    canonical_request,
    check_scope_and_time,
    parse_signed_request,
    signing_key,
    string_to_sign,
    verify_signature,
)
from ecrd.errors import (
    AuthenticationError,
    EcrdError,
    IncompleteSignature,
    InvalidSignature,
    MissingAuthentication,
    RequestExpired,
)

MISMATCH = (
    "The request signature we calculated does not match the signature you provided. Check your AWS Secret "
    "Access Key and signing method. Consult the service documentation for details."
)

# -- requests signed by botocore ----------------------------------------------------------------------

ACCESS_KEY = "AKIAIOSFODNN7EXAMPLE"
SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
SESSION_TOKEN = "IQoJb3JpZ2luX2VjEPT//////////wEaCXVzLWVhc3QtMSJHMEUCIQD+example/token+with=chars"
SIGNED_AT = datetime(2024, 3, 1, 12, 0, 0, tzinfo=UTC)
ENDPOINT = "https://api.ecr.us-east-1.example.test"


@dataclass(frozen=True)
class WireRequest:
    """A request as the server receives it: raw target parts, header pairs, body bytes."""

    method: str
    path: str
    query: str
    headers: tuple[tuple[str, str], ...]
    body: bytes

    def with_header(self, name: str, value: str) -> WireRequest:
        headers = tuple((n, value if n.lower() == name.lower() else v) for n, v in self.headers)
        return replace(self, headers=headers)

    def header(self, name: str) -> str:
        return next(v for n, v in self.headers if n.lower() == name.lower())


@pytest.fixture(autouse=True)
def botocore_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    """botocore stamps X-Amz-Date from its own clock; pin it so every test runs at SIGNED_AT."""

    def fixed(remove_tzinfo: bool = True) -> datetime:
        return SIGNED_AT.replace(tzinfo=None) if remove_tzinfo else SIGNED_AT

    monkeypatch.setattr(botocore.auth, "get_current_datetime", fixed)


def botocore_sign(
    method: str,
    url: str,
    *,
    service: str = "ecr",
    region: str = "us-east-1",
    headers: dict[str, str] | None = None,
    body: bytes = b"",
    params: dict[str, str] | list[tuple[str, str]] | None = None,
    token: str | None = None,
    secret: str = SECRET,
    presign_expires: int | None = None,
) -> WireRequest:
    request = AWSRequest(method=method, url=url, headers=headers or {}, data=body, params=params or {})
    credentials = Credentials(ACCESS_KEY, secret, token)
    if presign_expires is None:
        SigV4Auth(credentials, service, region).add_auth(request)
    else:
        SigV4QueryAuth(credentials, service, region, expires=presign_expires).add_auth(request)
    prepared = request.prepare()
    target = urlsplit(prepared.url)
    wire_headers = [(name, value) for name, value in prepared.headers.items()]
    if not any(name.lower() == "host" for name, _ in wire_headers):
        # botocore signs the URL's host; the HTTP client then sends it as the Host header.
        wire_headers.append(("Host", target.netloc))
    raw_body = prepared.body or b""
    return WireRequest(
        method=prepared.method,
        path=target.path,
        query=target.query,
        headers=tuple(wire_headers),
        body=raw_body if isinstance(raw_body, bytes) else raw_body.encode(),
    )


def verify(
    wire: WireRequest,
    *,
    secret: str = SECRET,
    now: datetime = SIGNED_AT,
    region: str = "us-east-1",
    services: Sequence[str] = ("ecr",),
) -> SignedRequest:
    signed = parse_signed_request(wire.method, wire.headers, wire.query)
    verify_signature(
        signed,
        method=wire.method,
        path=wire.path,
        query_string=wire.query,
        headers=wire.headers,
        payload_sha256=hashlib.sha256(wire.body).hexdigest(),
        secret_access_key=secret,
        now=now,
        expected_region=region,
        allowed_services=services,
    )
    return signed


def ecr_json_request(*, token: str | None = None) -> WireRequest:
    return botocore_sign(
        "POST",
        ENDPOINT + "/",
        headers={
            "Content-Type": "application/x-amz-json-1.1",
            "X-Amz-Target": "AmazonEC2ContainerRegistry_V20150921.DescribeRepositories",
        },
        body=b'{"repositoryNames":["team/app"],"maxResults":5}',
        token=token,
    )


def iam_form_request() -> WireRequest:
    return botocore_sign(
        "POST",
        "https://iam.example.test/",
        service="iam",
        headers={"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"},
        body=b"Action=ListUsers&Version=2010-05-08&PathPrefix=%2Fdivision_abc%2F",
    )


def special_query_request() -> WireRequest:
    # botocore form-encodes params on the wire ("a+b", "%2F") but signs them "%20"-encoded.
    return botocore_sign(
        "GET",
        ENDPOINT + "/",
        params=[
            ("prefix", "a b+c/d?e=f&g"),
            ("name", "ü-é ሴ"),
            ("empty", ""),
            ("marks", "~*'()!$,;:@"),
            ("repeat", "2"),
            ("repeat", "1"),
            ("key with space+plus", "v"),
        ],
    )


def encoded_path_request() -> WireRequest:
    # A path as clients send it: already percent-encoded once (spaces, UTF-8), so SigV4 encodes it again.
    return botocore_sign("GET", ENDPOINT + "/v2/my%20repo/caf%C3%A9/manifests/l%C3%A4test-1")


def sts_query_request() -> WireRequest:
    return botocore_sign(
        "GET",
        "https://sts.example.test/?Action=GetCallerIdentity&Version=2011-06-15",
        service="sts",
        token=SESSION_TOKEN,
    )


def http_port_request() -> WireRequest:
    return botocore_sign(
        "POST", "http://localhost:5000/", body=b"{}", headers={"Content-Type": "application/x-amz-json-1.1"}
    )


# name -> (how to build the signed request, the service it is signed for)
BOTOCORE_CASES: dict[str, tuple[Callable[[], WireRequest], str]] = {
    "ecr json": (ecr_json_request, "ecr"),
    "ecr json with session token": (lambda: ecr_json_request(token=SESSION_TOKEN), "ecr"),
    "iam form body": (iam_form_request, "iam"),
    "sts query with session token": (sts_query_request, "sts"),
    "special characters in query": (special_query_request, "ecr"),
    "query written in the url": (lambda: botocore_sign("GET", ENDPOINT + "/?b=2&a=1&a=0&c"), "ecr"),
    "encoded unicode and space path": (encoded_path_request, "ecr"),
    "raw unicode and space path": (lambda: botocore_sign("GET", ENDPOINT + "/my repo/café/ሴ"), "ecr"),
    "host with port over http": (http_port_request, "ecr"),
    "empty body": (lambda: botocore_sign("POST", ENDPOINT + "/"), "ecr"),
}


def build_case(name: str) -> tuple[WireRequest, tuple[str, ...]]:
    build, service = BOTOCORE_CASES[name]
    return build(), (service,)


@pytest.mark.parametrize("case", sorted(BOTOCORE_CASES))
def test_request_signed_by_botocore_verifies(case: str) -> None:
    wire, services = build_case(case)

    signed = verify(wire, services=services)

    assert signed.access_key_id == ACCESS_KEY
    assert signed.amz_date == SIGNED_AT
    assert signed.service == services[0]


def test_session_token_is_read_from_the_signed_header() -> None:
    wire = ecr_json_request(token=SESSION_TOKEN)

    signed = verify(wire)

    assert signed.security_token == SESSION_TOKEN
    assert "x-amz-security-token" in signed.signed_headers


def test_wire_query_uses_plus_for_space_yet_verifies() -> None:
    wire = special_query_request()

    assert "a+b%2Bc" in wire.query  # form-encoded on the wire …
    verify(wire)  # … and signed as "a%20b%2Bc"


def test_raw_path_may_be_passed_as_bytes() -> None:
    wire = botocore_sign("GET", ENDPOINT + "/my repo/café")
    signed = parse_signed_request(wire.method, wire.headers, wire.query)

    verify_signature(
        signed,
        method=wire.method,
        path="/my repo/café".encode(),
        query_string=wire.query.encode(),
        headers=dict(wire.headers),
        payload_sha256=hashlib.sha256(b"").hexdigest(),
        secret_access_key=SECRET,
        now=SIGNED_AT,
        expected_region="us-east-1",
        allowed_services={"ecr"},
    )


def test_unsigned_headers_may_change() -> None:
    wire = ecr_json_request()

    verify(replace(wire, headers=(*wire.headers, ("User-Agent", "curl/8"), ("X-Forwarded-For", "10.0.0.1"))))


# -- every single-bit tamper fails --------------------------------------------------------------------


def bit_flips(text: str, *, bits: int = 7) -> Iterator[tuple[int, str]]:
    """Every variant of ``text`` with one bit of one character flipped (ASCII stays ASCII with 7 bits)."""
    for index, char in enumerate(text):
        for bit in range(bits):
            yield index, text[:index] + chr(ord(char) ^ (1 << bit)) + text[index + 1 :]


def is_hex_case_change_in_escape(original: str, index: int, tampered: str) -> bool:
    """RFC 3986 §6.2.2.1: "%2f" and "%2F" are the same octet, so such a flip is no tamper in a query."""
    in_escape = "%" in (original[index - 1 : index], original[index - 2 : index - 1])
    return in_escape and original[index] in "abcdefABCDEF" and tampered[index] == original[index].swapcase()


TAMPER_CASES = ["ecr json with session token", "special characters in query", "encoded unicode and space path"]


@pytest.mark.parametrize("case", TAMPER_CASES)
def test_every_method_bit_flip_fails(case: str) -> None:
    wire, services = build_case(case)
    for _, method in bit_flips(wire.method):
        with pytest.raises(InvalidSignature, match="does not match"):
            verify(replace(wire, method=method), services=services)


@pytest.mark.parametrize("case", TAMPER_CASES)
def test_every_path_bit_flip_fails(case: str) -> None:
    wire, services = build_case(case)
    for _, path in bit_flips(wire.path):
        with pytest.raises(InvalidSignature, match="does not match"):
            verify(replace(wire, path=path), services=services)


@pytest.mark.parametrize("case", TAMPER_CASES)
def test_every_query_bit_flip_fails_unless_it_names_the_same_octets(case: str) -> None:
    wire, services = build_case(case)
    for index, query in bit_flips(wire.query):
        tampered = replace(wire, query=query)
        if is_hex_case_change_in_escape(wire.query, index, query):
            verify(tampered, services=services)
        else:
            with pytest.raises(InvalidSignature, match="does not match"):
                verify(tampered, services=services)


@pytest.mark.parametrize("case", TAMPER_CASES)
def test_every_signed_header_value_bit_flip_fails(case: str) -> None:
    wire, services = build_case(case)
    signed = parse_signed_request(wire.method, wire.headers, wire.query)
    for name in signed.signed_headers:
        if name == "x-amz-date":
            continue  # the date has its own test: its tampers fail for more reasons than the signature
        for _, value in bit_flips(wire.header(name)):
            with pytest.raises(InvalidSignature, match="does not match"):
                verify(wire.with_header(name, value), services=services)


@pytest.mark.parametrize("case", TAMPER_CASES)
def test_every_date_bit_flip_fails(case: str) -> None:
    wire, services = build_case(case)
    for _, value in bit_flips(wire.header("X-Amz-Date")):
        with pytest.raises(AuthenticationError):
            verify(wire.with_header("X-Amz-Date", value), services=services)


def test_every_body_bit_flip_fails() -> None:
    wire = ecr_json_request(token=SESSION_TOKEN)
    for index in range(len(wire.body)):
        for bit in range(8):
            body = bytearray(wire.body)
            body[index] ^= 1 << bit
            with pytest.raises(InvalidSignature, match="does not match"):
                verify(replace(wire, body=bytes(body)))


def test_every_secret_bit_flip_fails() -> None:
    wire = ecr_json_request()
    for _, secret in bit_flips(SECRET):
        with pytest.raises(InvalidSignature) as raised:
            verify(wire, secret=secret)
        assert raised.value.message == MISMATCH
        assert secret not in raised.value.message


@pytest.mark.parametrize(
    ("shift", "error", "message"),
    [
        (timedelta(seconds=1), InvalidSignature, "does not match"),
        (timedelta(seconds=-1), InvalidSignature, "does not match"),
        (timedelta(days=-1), InvalidSignature, "Date in Credential scope does not match YYYYMMDD"),
        (timedelta(minutes=16), RequestExpired, "Signature not yet current"),
        (timedelta(minutes=-16), RequestExpired, "Signature expired"),
    ],
)
def test_shifted_date_fails(shift: timedelta, error: type[EcrdError], message: str) -> None:
    wire = ecr_json_request()
    moved = (SIGNED_AT + shift).strftime("%Y%m%dT%H%M%SZ")

    with pytest.raises(error, match=message):
        verify(wire.with_header("X-Amz-Date", moved))


def test_signing_for_another_region_fails() -> None:
    wire = botocore_sign("POST", ENDPOINT + "/", region="us-west-2", body=b"{}")

    with pytest.raises(InvalidSignature) as raised:
        verify(wire, region="us-east-1")

    assert raised.value.message == "Credential should be scoped to a valid region, not 'us-west-2'. "


def test_signing_for_another_service_fails() -> None:
    wire = botocore_sign("POST", ENDPOINT + "/", service="iam", body=b"{}")

    with pytest.raises(InvalidSignature) as raised:
        verify(wire, services=("ecr",))

    assert raised.value.message == "Credential should be scoped to correct service: 'ecr'. "


@pytest.mark.parametrize(("old", "new"), [("us-east-1", "us-west-2"), ("/ecr/", "/iam/")])
def test_rewritten_scope_that_looks_valid_still_fails(old: str, new: str) -> None:
    wire = ecr_json_request()
    forged = wire.with_header("Authorization", wire.header("Authorization").replace(old, new))

    with pytest.raises(InvalidSignature, match="does not match"):
        verify(forged, region="us-west-2" if old == "us-east-1" else "us-east-1", services=("ecr", "iam"))


def test_signed_header_missing_from_the_request_fails() -> None:
    wire = ecr_json_request()
    without_target = tuple((n, v) for n, v in wire.headers if n.lower() != "x-amz-target")

    with pytest.raises(InvalidSignature, match="does not match"):
        verify(replace(wire, headers=without_target))


def test_content_sha256_header_must_match_the_body() -> None:
    wire = botocore_sign(
        "POST", ENDPOINT + "/", body=b"{}", headers={"X-Amz-Content-SHA256": hashlib.sha256(b"{}").hexdigest()}
    )
    verify(wire)

    with pytest.raises(InvalidSignature) as raised:
        verify(replace(wire, body=b"[]"))

    assert raised.value.message == "The provided 'x-amz-content-sha256' header does not match what was computed."


def test_unsigned_payload_is_refused_on_header_signed_requests() -> None:
    # botocore signs every ECR, IAM, STS and KMS payload (no operation of theirs is "v4-unsigned-body"); a
    # request that leaves its body unsigned could have that body swapped in flight.
    wire = botocore_sign("POST", ENDPOINT + "/", body=b"{}", headers={"X-Amz-Content-SHA256": "UNSIGNED-PAYLOAD"})

    with pytest.raises(InvalidSignature) as raised:
        verify(wire)

    assert "UNSIGNED-PAYLOAD" in raised.value.message
    with pytest.raises(InvalidSignature):
        verify(replace(wire, body=b"anything"))


def test_scope_and_time_are_checked_before_the_body_is_known() -> None:
    wire = botocore_sign("POST", ENDPOINT + "/", body=b"{}", region="eu-west-1")
    signed = parse_signed_request(wire.method, wire.headers, wire.query)

    with pytest.raises(InvalidSignature, match="region"):
        check_scope_and_time(signed, now=SIGNED_AT, expected_region="us-east-1", allowed_services=("ecr",))
    with pytest.raises(RequestExpired):
        check_scope_and_time(
            signed, now=SIGNED_AT + timedelta(hours=1), expected_region="eu-west-1", allowed_services=("ecr",)
        )
    check_scope_and_time(signed, now=SIGNED_AT, expected_region="eu-west-1", allowed_services=("ecr",))


def test_host_must_be_a_signed_header() -> None:
    signed = parse_signed_request(
        "GET",
        {
            "Authorization": f"AWS4-HMAC-SHA256 Credential={SUITE_SCOPE}, SignedHeaders=x-amz-date, Signature=00",
            "X-Amz-Date": "20150830T123600Z",
        },
        "",
    )

    with pytest.raises(IncompleteSignature) as raised:
        verify_suite(signed, path="/", query="", headers=[("X-Amz-Date", "20150830T123600Z")])

    assert raised.value.message == "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization."


def test_wrong_scope_terminator_fails() -> None:
    signed = suite_signed("get-vanilla")
    with pytest.raises(InvalidSignature) as raised:
        verify_suite(replace(signed, terminator="aws4_reqest"), path="/", query="", headers=SUITE_HEADERS)

    assert raised.value.message == (
        "Credential should be scoped with a valid terminator: 'aws4_request', not 'aws4_reqest'. "
    )


# -- presigned URLs -----------------------------------------------------------------------------------


def presigned_sts(*, token: str | None = None, expires: int = 60) -> WireRequest:
    return botocore_sign(
        "GET",
        "https://sts.example.test/?Action=GetCallerIdentity&Version=2011-06-15",
        service="sts",
        token=token,
        presign_expires=expires,
    )


def test_presigned_url_verifies_until_it_expires() -> None:
    wire = presigned_sts(token=SESSION_TOKEN, expires=60)

    signed = verify(wire, services=("sts",), now=SIGNED_AT + timedelta(seconds=60))

    assert signed.presigned
    assert signed.expires == 60
    assert signed.security_token == SESSION_TOKEN
    with pytest.raises(RequestExpired, match="Request has expired"):
        verify(wire, services=("sts",), now=SIGNED_AT + timedelta(seconds=61))


def test_presigned_url_from_the_future_is_not_yet_current() -> None:
    wire = presigned_sts(expires=3600)

    with pytest.raises(RequestExpired, match="Signature not yet current"):
        verify(wire, services=("sts",), now=SIGNED_AT - timedelta(minutes=15, seconds=1))


def test_every_presigned_query_bit_flip_fails_unless_it_names_the_same_octets() -> None:
    wire = presigned_sts(token=SESSION_TOKEN)
    for index, query in bit_flips(wire.query):
        tampered = replace(wire, query=query)
        if is_hex_case_change_in_escape(wire.query, index, query):
            verify(tampered, services=("sts",))
        else:
            with pytest.raises(AuthenticationError):
                verify(tampered, services=("sts",))


def test_presigned_iam_list_users_example_verifies() -> None:
    # The IAM ListUsers presigned URL built with the suite's key and date, as other SigV4 implementations
    # carry it; the body is empty and Content-Type, Host and X-Amz-Date are signed headers.
    query = (
        "Action=ListUsers&Version=2010-05-08&X-Amz-Algorithm=AWS4-HMAC-SHA256"
        "&X-Amz-Credential=AKIDEXAMPLE%2F20150830%2Fus-east-1%2Fiam%2Faws4_request&X-Amz-Date=20150830T123600Z"
        "&X-Amz-Expires=60&X-Amz-SignedHeaders=content-type%3Bhost%3Bx-amz-date"
        "&X-Amz-Signature=63613d9c6a68b0e499ed9beeeabe0c4f3295742554209d6f109fe3c9563f56c3"
    )
    headers = [
        ("Content-Type", "application/x-www-form-urlencoded; charset=utf-8"),
        ("Host", "iam.amazonaws.com"),
        ("X-Amz-Date", "20150830T123600Z"),
    ]
    signed = parse_signed_request("GET", headers, query)

    verify_suite(signed, path="/", query=query, headers=headers, services=("iam",))


@pytest.mark.parametrize(
    ("query", "message"),
    [
        (
            "X-Amz-Algorithm=AWS4-HMAC-SHA256",
            "AWS query-string parameters must include 'X-Amz-Credential'. AWS query-string parameters must "
            "include 'X-Amz-Signature'. AWS query-string parameters must include 'X-Amz-SignedHeaders'. AWS "
            "query-string parameters must include 'X-Amz-Date'. Re-examine the query-string parameters.",
        ),
        (
            "X-Amz-Algorithm=AWS4-HMAC-SHA1&X-Amz-Credential=A%2F20150830%2Fus-east-1%2Fs%2Faws4_request"
            "&X-Amz-Signature=00&X-Amz-SignedHeaders=host&X-Amz-Date=20150830T123600Z",
            "X-Amz-Algorithm only supports 'AWS4-HMAC-SHA256'",
        ),
        (
            "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=A%2F20150830%2Fus-east-1%2Fs%2Faws4_request"
            "&X-Amz-Signature=00&X-Amz-SignedHeaders=host&X-Amz-Date=20150830T123600Z&X-Amz-Expires=604801",
            "X-Amz-Expires must be less than a week (in seconds) that is 604800",
        ),
        (
            "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=A%2F20150830%2Fus-east-1%2Fs%2Faws4_request"
            "&X-Amz-Signature=00&X-Amz-SignedHeaders=host&X-Amz-Date=20150830T123600Z&X-Amz-Expires=-5",
            "X-Amz-Expires should be a number",
        ),
        (
            "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Algorithm=AWS4-HMAC-SHA256",
            "AWS query-string parameter 'X-Amz-Algorithm' must appear only once.",
        ),
    ],
)
def test_malformed_presigned_query_is_incomplete(query: str, message: str) -> None:
    with pytest.raises(IncompleteSignature) as raised:
        parse_signed_request("GET", [("Host", "h")], query)

    assert raised.value.message == message


def test_header_and_query_signatures_together_are_refused() -> None:
    wire = presigned_sts()
    headers = (*wire.headers, ("Authorization", suite_authorization("get-vanilla")))

    with pytest.raises(IncompleteSignature, match="Only one auth mechanism allowed"):
        parse_signed_request(wire.method, headers, wire.query)


# -- AWS's SigV4 test suite ---------------------------------------------------------------------------
#
# Facts from AWS's "Signature Version 4 test suite" (aws-sig-v4-test-suite, 2015-08-30 edition): the
# request each case sends and the signature AWS publishes for it. Key AKIDEXAMPLE, secret
# wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY, scope 20150830/us-east-1/service/aws4_request. The suite's
# post-x-www-form-urlencoded-parameters content type is "charset=utf8" and neither form case signs
# content-length, whatever its .creq files say; the published signatures are what is reproduced here.

SUITE_SECRET = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
SUITE_NOW = datetime(2015, 8, 30, 12, 36, 0, tzinfo=UTC)
SUITE_SCOPE = "AKIDEXAMPLE/20150830/us-east-1/service/aws4_request"
SUITE_HEADERS = [("Host", "example.amazonaws.com"), ("X-Amz-Date", "20150830T123600Z")]
SUITE_TOKEN = (
    "AQoDYXdzEPT//////////wEXAMPLEtc764bNrC9SAPBSM22wDOk4x4HIZ8j4FZTwdQWLWsKWHGBuFqwAeMicRXmxfpSPfIeoIYRqTflfK"
    "D8YUuwthAx7mSEI/qkPpKPi/kMcGdQrmGdeehM4IC1NtBmUpp2wUE8phUZampKsburEDy0KPkyQDYwT7WZ0wq5VSXDvp75YU9HFvlR"
    "d8Tx6q6fE8YQcHNVXAkiY9q6d+xo0rKwT38xVqr7ZD0u0iPPkUL64lIZbqBAz+scqKmlzm8FDrypNC9Yjc8fPOLn9FX9KSYvKTr4rv"
    "x3iSIlTJabIQwj2ICCR/oLxBA=="
)
UNRESERVED = "-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
EMPTY_SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"


@dataclass(frozen=True)
class SuiteCase:
    method: str
    path: str
    query: str
    signed_headers: str
    signature: str
    extra_headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""


VANILLA = "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"
HOST_DATE = "host;x-amz-date"
MY_HEADER = "host;my-header1;x-amz-date"
FORM = "application/x-www-form-urlencoded"

SUITE: dict[str, SuiteCase] = {
    "get-vanilla": SuiteCase("GET", "/", "", HOST_DATE, VANILLA),
    "get-vanilla-empty-query-key": SuiteCase(
        "GET", "/", "Param1=value1", HOST_DATE, "a67d582fa61cc504c4bae71f336f98b97f1ea3c7a6bfe1b6e45aec72011b9aeb"
    ),
    "get-vanilla-query-order-key": SuiteCase(
        "GET",
        "/",
        "Param1=value2&Param1=Value1",
        HOST_DATE,
        "eedbc4e291e521cf13422ffca22be7d2eb8146eecf653089df300a15b2382bd1",
    ),
    "get-vanilla-query-order-key-case": SuiteCase(
        "GET",
        "/",
        "Param2=value2&Param1=value1",
        HOST_DATE,
        "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500",
    ),
    "get-vanilla-query-order-value": SuiteCase(
        "GET",
        "/",
        "Param1=value2&Param1=value1",
        HOST_DATE,
        "5772eed61e12b33fae39ee5e7012498b51d56abc0abb7c60486157bd471c4694",
    ),
    "get-vanilla-query-unreserved": SuiteCase(
        "GET",
        "/",
        f"{UNRESERVED}={UNRESERVED}",
        HOST_DATE,
        "9c3e54bfcdf0b19771a7f523ee5669cdf59bc7cc0884027167c21bb143a40197",
    ),
    "get-vanilla-utf8-query": SuiteCase(
        "GET", "/", "ሴ=bar", HOST_DATE, "2cdec8eed098649ff3a119c94853b13c643bcf08f8b0a1d91e12c9027818dd04"
    ),
    "get-unreserved": SuiteCase(
        "GET", f"/{UNRESERVED}", "", HOST_DATE, "07ef7494c76fa4850883e2b006601f940f8a34d404d0cfa977f52a65bbf5f24f"
    ),
    "get-utf8": SuiteCase(
        "GET", "/ሴ", "", HOST_DATE, "8318018e0b0f223aa2bbf98705b62bb787dc9c0e678f255a891fd03141be5d85"
    ),
    "get-space": SuiteCase(
        "GET", "/example space/", "", HOST_DATE, "652487583200325589f1fba4c7e578f72c47cb61beeca81406b39ddec1366741"
    ),
    "get-relative": SuiteCase("GET", "/example/..", "", HOST_DATE, VANILLA),
    "get-relative-relative": SuiteCase("GET", "/example1/example2/../..", "", HOST_DATE, VANILLA),
    "get-slash": SuiteCase("GET", "//", "", HOST_DATE, VANILLA),
    "get-slash-dot-slash": SuiteCase("GET", "/./", "", HOST_DATE, VANILLA),
    "get-slash-pointless-dot": SuiteCase(
        "GET", "/./example", "", HOST_DATE, "ef75d96142cf21edca26f06005da7988e4f8dc83a165a80865db7089db637ec5"
    ),
    "get-slashes": SuiteCase(
        "GET", "//example//", "", HOST_DATE, "9a624bd73a37c9a373b5312afbebe7a714a789de108f0bdfe846570885f57e84"
    ),
    "get-header-key-duplicate": SuiteCase(
        "GET",
        "/",
        "",
        MY_HEADER,
        "c9d5ea9f3f72853aea855b47ea873832890dbdd183b4468f858259531a5138ea",
        (("My-Header1", "value2"), ("My-Header1", "value2"), ("My-Header1", "value1")),
    ),
    "get-header-value-order": SuiteCase(
        "GET",
        "/",
        "",
        MY_HEADER,
        "08c7e5a9acfcfeb3ab6b2185e75ce8b1deb5e634ec47601a50643f830c755c01",
        (("My-Header1", "value4"), ("My-Header1", "value1"), ("My-Header1", "value3"), ("My-Header1", "value2")),
    ),
    "get-header-value-trim": SuiteCase(
        "GET",
        "/",
        "",
        "host;my-header1;my-header2;x-amz-date",
        "acc3ed3afb60bb290fc8d2dd0098b9911fcaa05412b367055dee359757a9c736",
        (("My-Header1", " value1"), ("My-Header2", ' "a   b   c"')),
    ),
    "post-vanilla": SuiteCase(
        "POST", "/", "", HOST_DATE, "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b"
    ),
    "post-vanilla-query": SuiteCase(
        "POST", "/", "Param1=value1", HOST_DATE, "28038455d6de14eafc1f9222cf5aa6f1a96197d7deb8263271d420d138af7f11"
    ),
    "post-header-key-sort": SuiteCase(
        "POST",
        "/",
        "",
        MY_HEADER,
        "c5410059b04c1ee005303aed430f6e6645f61f4dc9e1461ec8f8916fdf18852c",
        (("My-Header1", "value1"),),
    ),
    "post-header-value-case": SuiteCase(
        "POST",
        "/",
        "",
        MY_HEADER,
        "cdbc9802e29d2942e5e10b5bccfdd67c5f22c7c4e8ae67b53629efa58b974b7d",
        (("My-Header1", "VALUE1"),),
    ),
    "post-x-www-form-urlencoded": SuiteCase(
        "POST",
        "/",
        "",
        "content-type;host;x-amz-date",
        "ff11897932ad3f4e8b18135d722051e5ac45fc38421b1da7b9d196a0fe09473a",
        (("Content-Type", FORM), ("Content-Length", "13")),
        b"Param1=value1",
    ),
    "post-x-www-form-urlencoded-parameters": SuiteCase(
        "POST",
        "/",
        "",
        "content-type;host;x-amz-date",
        "1a72ec8f64bd914b0e42e42607c7fbce7fb2c7465f63e3092b3b0d39fa77a6fe",
        (("Content-Type", f"{FORM}; charset=utf8"), ("Content-Length", "13")),
        b"Param1=value1",
    ),
    "post-sts-header-before": SuiteCase(
        "POST",
        "/",
        "",
        "host;x-amz-date;x-amz-security-token",
        "85d96828115b5dc0cfc3bd16ad9e210dd772bbebba041836c64533a82be05ead",
        (("X-Amz-Security-Token", SUITE_TOKEN),),
    ),
    "post-sts-header-after": SuiteCase(
        "POST",
        "/",
        "",
        HOST_DATE,
        "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b",
        (("X-Amz-Security-Token", SUITE_TOKEN),),
    ),
}


def suite_authorization(name: str) -> str:
    case = SUITE[name]
    return f"AWS4-HMAC-SHA256 Credential={SUITE_SCOPE}, SignedHeaders={case.signed_headers}, Signature={case.signature}"


def suite_headers(name: str) -> list[tuple[str, str]]:
    return [*SUITE_HEADERS, *SUITE[name].extra_headers]


def suite_signed(name: str) -> SignedRequest:
    case = SUITE[name]
    return parse_signed_request(
        case.method, [*suite_headers(name), ("Authorization", suite_authorization(name))], case.query
    )


def verify_suite(
    signed: SignedRequest,
    *,
    path: str,
    query: str,
    headers: Sequence[tuple[str, str]],
    method: str = "GET",
    body: bytes = b"",
    now: datetime = SUITE_NOW,
    services: Sequence[str] = ("service",),
) -> None:
    verify_signature(
        signed,
        method=method,
        path=path,
        query_string=query,
        headers=headers,
        payload_sha256=hashlib.sha256(body).hexdigest(),
        secret_access_key=SUITE_SECRET,
        now=now,
        expected_region="us-east-1",
        allowed_services=services,
    )


@pytest.mark.parametrize("name", sorted(SUITE))
def test_aws_suite_case_verifies(name: str) -> None:
    case = SUITE[name]

    verify_suite(
        suite_signed(name),
        method=case.method,
        path=case.path,
        query=case.query,
        headers=suite_headers(name),
        body=case.body,
    )


@pytest.mark.parametrize("name", sorted(SUITE))
def test_aws_suite_case_with_one_signature_digit_changed_fails(name: str) -> None:
    case = SUITE[name]
    signed = suite_signed(name)
    last = signed.signature[-1]
    forged = replace(signed, signature=signed.signature[:-1] + ("0" if last != "0" else "1"))

    with pytest.raises(InvalidSignature, match="does not match"):
        verify_suite(
            forged, method=case.method, path=case.path, query=case.query, headers=suite_headers(name), body=case.body
        )


@pytest.mark.parametrize(
    ("name", "canonical", "hashed"),
    [
        (
            "get-vanilla",
            f"GET\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\n{EMPTY_SHA256}",
            "bb579772317eb040ac9ed261061d46c1f17a8133879d6129b6e1c25292927e63",
        ),
        (
            "get-vanilla-query-order-key",
            "GET\n/\nParam1=Value1&Param1=value2\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\n"
            f"host;x-amz-date\n{EMPTY_SHA256}",
            "704b4cef673542d84cdff252633f065e8daeba5f168b77116f8b1bcaf3d38f89",
        ),
        (
            "get-utf8",
            "GET\n/%E1%88%B4\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\n"
            f"{EMPTY_SHA256}",
            "2a0a97d02205e45ce2e994789806b19270cfbbb0921b278ccf58f5249ac42102",
        ),
        (
            "get-slashes",
            "GET\n/example/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\n"
            f"{EMPTY_SHA256}",
            "cb96b4ac96d501f7c5c15bc6d67b3035061cfced4af6585ad927f7e6c985c015",
        ),
        (
            "get-header-value-trim",
            'GET\n/\n\nhost:example.amazonaws.com\nmy-header1:value1\nmy-header2:"a b c"\n'
            "x-amz-date:20150830T123600Z\n\nhost;my-header1;my-header2;x-amz-date\n"
            f"{EMPTY_SHA256}",
            "a726db9b0df21c14f559d0a978e563112acb1b9e05476f0a6a1c7d68f28605c7",
        ),
        (
            "get-header-key-duplicate",
            "GET\n/\n\nhost:example.amazonaws.com\nmy-header1:value2,value2,value1\nx-amz-date:20150830T123600Z\n\n"
            f"host;my-header1;x-amz-date\n{EMPTY_SHA256}",
            "dc7f04a3abfde8d472b0ab1a418b741b7c67174dad1551b4117b15527fbe966c",
        ),
        (
            "post-x-www-form-urlencoded",
            "POST\n/\n\ncontent-type:application/x-www-form-urlencoded\nhost:example.amazonaws.com\n"
            "x-amz-date:20150830T123600Z\n\ncontent-type;host;x-amz-date\n"
            "9095672bbd1f56dfc5b65f3e153adc8731a4a654192329106275f4c7b24d0b6e",
            "42a5e5bb34198acb3e84da4f085bb7927f2bc277ca766e6d19c73c2154021281",
        ),
    ],
)
def test_aws_suite_canonical_request_and_string_to_sign(name: str, canonical: str, hashed: str) -> None:
    case = SUITE[name]
    signed = suite_signed(name)

    built = canonical_request(
        method=case.method,
        path=case.path,
        query_string=case.query,
        headers=suite_headers(name),
        signed_headers=signed.signed_headers,
        payload_hash=hashlib.sha256(case.body).hexdigest(),
    )

    assert built == canonical
    assert string_to_sign(SUITE_NOW, signed.credential_scope, built) == (
        f"AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/service/aws4_request\n{hashed}"
    )


def test_aws_suite_session_token_is_reported_whether_signed_or_not() -> None:
    assert suite_signed("post-sts-header-before").security_token == SUITE_TOKEN
    assert suite_signed("post-sts-header-after").security_token == SUITE_TOKEN


def test_signing_key_matches_the_aws_derivation_example() -> None:
    # AWS's "derive a signing key" example: this secret, 20120215, us-east-1, iam.
    key = signing_key(SUITE_SECRET, "20120215", "us-east-1", "iam")

    assert key.hex() == "f4780e2d9f65fa895f9c67b32ce1baf0b0d8a43505a000a1a9e090d414db404d"


def test_signing_key_is_cached_across_requests() -> None:
    signing_key.cache_clear()
    for _ in range(3):
        verify_suite(suite_signed("get-vanilla"), path="/", query="", headers=SUITE_HEADERS)

    info = signing_key.cache_info()
    assert (info.misses, info.hits) == (1, 2)
    assert info.maxsize is not None


def test_date_header_is_used_when_x_amz_date_is_absent() -> None:
    # The 2011 edition of AWS's suite signs with the Date header: get-vanilla, service "host".
    headers = [("Date", "Mon, 09 Sep 2011 23:36:00 GMT"), ("Host", "host.foo.com")]
    authorization = (
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20110909/us-east-1/host/aws4_request, SignedHeaders=date;host, "
        "Signature=b27ccfbfa7df52a200ff74193ca6e32d4b48b8856fab7ebf1c595d0670a7e470"
    )
    signed = parse_signed_request("GET", [*headers, ("Authorization", authorization)], "")

    assert signed.amz_date == datetime(2011, 9, 9, 23, 36, tzinfo=UTC)
    verify_suite(
        signed, path="/", query="", headers=headers, now=signed.amz_date + timedelta(minutes=1), services=("host",)
    )


# -- the clock ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "now",
    [
        SUITE_NOW,
        SUITE_NOW + timedelta(minutes=15),
        SUITE_NOW - timedelta(minutes=15),
        (SUITE_NOW + timedelta(minutes=15)).astimezone(timezone(timedelta(hours=2))),
    ],
)
def test_clock_skew_of_up_to_fifteen_minutes_is_accepted(now: datetime) -> None:
    verify_suite(suite_signed("get-vanilla"), path="/", query="", headers=SUITE_HEADERS, now=now)


@pytest.mark.parametrize(
    ("now", "message"),
    [
        (
            SUITE_NOW + timedelta(minutes=15, seconds=1),
            "Signature expired: 20150830T123600Z is now earlier than 20150830T123601Z (20150830T125101Z - 15 min.)",
        ),
        (
            datetime(2015, 8, 30, 13, 1, tzinfo=UTC),
            "Signature expired: 20150830T123600Z is now earlier than 20150830T124600Z (20150830T130100Z - 15 min.)",
        ),
        (
            SUITE_NOW - timedelta(minutes=15, seconds=1),
            "Signature not yet current: 20150830T123600Z is still later than 20150830T123559Z "
            "(20150830T122059Z + 15 min.)",
        ),
    ],
)
def test_clock_skew_beyond_fifteen_minutes_is_refused(now: datetime, message: str) -> None:
    with pytest.raises(RequestExpired) as raised:
        verify_suite(suite_signed("get-vanilla"), path="/", query="", headers=SUITE_HEADERS, now=now)

    assert raised.value.message == message


def test_naive_now_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        verify_suite(suite_signed("get-vanilla"), path="/", query="", headers=SUITE_HEADERS, now=datetime(2015, 8, 30))


# -- missing and malformed authentication -------------------------------------------------------------


@pytest.mark.parametrize("headers", [[], [("Authorization", "")], [("Authorization", "   ")], [("Host", "h")]])
def test_request_without_authentication_is_missing_authentication(headers: list[tuple[str, str]]) -> None:
    with pytest.raises(MissingAuthentication) as raised:
        parse_signed_request("POST", headers, "Action=ListUsers")

    assert raised.value.message == "Missing Authentication Token"


REQUIRES_ALL = (
    "Authorization header requires 'Credential' parameter. Authorization header requires 'Signature' "
    "parameter. Authorization header requires 'SignedHeaders' parameter."
)
REQUIRES_DATE = "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header."
GOOD_CREDENTIAL = f"Credential={SUITE_SCOPE}"


@pytest.mark.parametrize(
    ("authorization", "message"),
    [
        ("Basic dXNlcjpwYXNz", REQUIRES_ALL),
        ("Bearer eyJhbGciOiJIUzI1NiJ9.e30.x", REQUIRES_ALL),
        ("AWS AKIDEXAMPLE:frJIUN8DYpKDtOLCwo//yllqDzg=", REQUIRES_ALL),
        ("AWS4-HMAC-SHA256", REQUIRES_ALL),
        ("AWS4-HMAC-SHA256 ", REQUIRES_ALL),
        ("AWS4-HMAC-SHA256 ,,, ,", REQUIRES_ALL),
        (
            f"AWS4-HMAC-SHA256 {GOOD_CREDENTIAL}, SignedHeaders=host",
            "Authorization header requires 'Signature' parameter.",
        ),
        (
            f"AWS4-HMAC-SHA256 {GOOD_CREDENTIAL}, Signature=00",
            "Authorization header requires 'SignedHeaders' parameter.",
        ),
        (
            "AWS4-HMAC-SHA256 SignedHeaders=host, Signature=00",
            "Authorization header requires 'Credential' parameter.",
        ),
        (
            f"AWS4-HMAC-SHA256 {GOOD_CREDENTIAL}, SignedHeaders=, Signature=00",
            "Authorization header requires 'SignedHeaders' parameter.",
        ),
        (
            f"AWS4-HMAC-SHA512 {GOOD_CREDENTIAL}, SignedHeaders=host, Signature=00",
            "Unsupported AWS 'algorithm': 'AWS4-HMAC-SHA512'; only 'AWS4-HMAC-SHA256' is supported.",
        ),
        (
            f"AWS4-ECDSA-P256-SHA256 {GOOD_CREDENTIAL}, SignedHeaders=host, Signature=00",
            "Unsupported AWS 'algorithm': 'AWS4-ECDSA-P256-SHA256'; only 'AWS4-HMAC-SHA256' is supported.",
        ),
        (
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/aws4_request, SignedHeaders=host, Signature=00",
            "Credential must have exactly 5 slash-delimited elements, e.g. keyid/date/region/service/term, got "
            "'AKIDEXAMPLE/20150830/us-east-1/aws4_request'",
        ),
        (
            "AWS4-HMAC-SHA256 Credential=AK/ID/20150830/us-east-1/service/aws4_request, SignedHeaders=host, "
            "Signature=00",
            "Credential must have exactly 5 slash-delimited elements, e.g. keyid/date/region/service/term, got "
            "'AK/ID/20150830/us-east-1/service/aws4_request'",
        ),
        (
            f"AWS4-HMAC-SHA256 {GOOD_CREDENTIAL}, {GOOD_CREDENTIAL}, SignedHeaders=host, Signature=00",
            "Authorization header has a duplicate 'Credential' parameter.",
        ),
        (
            f"AWS4-HMAC-SHA256 {GOOD_CREDENTIAL}, SignedHeaders=host;;x-amz-date, Signature=00",
            "SignedHeaders must be a semicolon-separated list of header names, got 'host;;x-amz-date'.",
        ),
    ],
)
def test_malformed_authorization_header_is_incomplete(authorization: str, message: str) -> None:
    headers = [*SUITE_HEADERS, ("Authorization", authorization)]

    with pytest.raises(IncompleteSignature) as raised:
        parse_signed_request("GET", headers, "")

    assert raised.value.message == message


def test_component_without_equal_sign_is_reported_hashed_not_echoed() -> None:
    authorization = f"AWS4-HMAC-SHA256 {GOOD_CREDENTIAL}, SignedHeaders=host, hunter2"

    with pytest.raises(IncompleteSignature) as raised:
        parse_signed_request("GET", [*SUITE_HEADERS, ("Authorization", authorization)], "")

    assert raised.value.message.startswith("Invalid key=value pair (missing equal-sign) in Authorization header")
    assert "hunter2" not in raised.value.message


def test_authorization_without_any_date_lists_every_requirement() -> None:
    with pytest.raises(IncompleteSignature) as raised:
        parse_signed_request("GET", [("Authorization", "Basic x")], "")

    assert raised.value.message == f"{REQUIRES_ALL} {REQUIRES_DATE}"


def test_complete_authorization_without_a_date_requires_one() -> None:
    with pytest.raises(IncompleteSignature) as raised:
        parse_signed_request("GET", {"Authorization": suite_authorization("get-vanilla")}, "")

    assert raised.value.message == REQUIRES_DATE


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("X-Amz-Date", "2015-08-30T12:36:00Z"),
        ("X-Amz-Date", "20151330T123600Z"),
        ("X-Amz-Date", "20150830T123600"),
        ("X-Amz-Date", "２０１５０８３０T123600Z"),
        ("Date", "Sun, 30 Aug 2015 12:36:00 +0000"),
        ("Date", "Sun, 31 Feb 2015 12:36:00 GMT"),
    ],
)
def test_malformed_date_is_incomplete(name: str, value: str) -> None:
    headers = [("Host", "example.amazonaws.com"), (name, value), ("Authorization", suite_authorization("get-vanilla"))]

    with pytest.raises(IncompleteSignature, match="Date must be in"):
        parse_signed_request("GET", headers, "")


def test_repeated_authorization_header_is_incomplete() -> None:
    authorization = ("Authorization", suite_authorization("get-vanilla"))

    with pytest.raises(IncompleteSignature, match="must appear only once"):
        parse_signed_request("GET", [*SUITE_HEADERS, authorization, authorization], "")


def test_header_names_are_case_insensitive_in_mappings_and_pairs() -> None:
    lower = {"authorization": suite_authorization("get-vanilla"), "x-amz-date": "20150830T123600Z"}
    upper = [("AUTHORIZATION", suite_authorization("get-vanilla")), ("X-AMZ-DATE", "20150830T123600Z")]

    assert parse_signed_request("GET", lower, "") == parse_signed_request("GET", upper, "")


# -- hostile input never escapes as anything but an ecrd error ----------------------------------------

FRAGMENTS = st.sampled_from(
    [
        "AWS4-HMAC-SHA256",
        "AWS4-",
        " ",
        ",",
        ", ",
        "=",
        "/",
        ";",
        "\t",
        "Credential=",
        "SignedHeaders=",
        "Signature=",
        SUITE_SCOPE,
        "aws4_request",
        "host;x-amz-date",
        "20150830",
        "20150830T123600Z",
        "99991231T235959Z",
        "00000101T000000Z",
        "\x00",
        "é",
        "ሴ",
        "\ud800",
        "%",
        "%2F",
        "+",
        "&",
        "X-Amz-Algorithm=",
        "X-Amz-Credential=",
        "X-Amz-Signature=",
        "X-Amz-SignedHeaders=",
        "X-Amz-Date=",
        "X-Amz-Expires=",
        "X-Amz-Security-Token=",
        "604800",
        "-1",
        "٣",
    ]
)
GRAMMARISH = st.lists(st.one_of(FRAGMENTS, st.text(max_size=4)), max_size=14).map("".join)
ANY_TEXT = st.one_of(st.text(), GRAMMARISH)
HEADER_NAMES = st.one_of(
    st.sampled_from(["Authorization", "authorization", "X-Amz-Date", "Date", "X-Amz-Security-Token", "Host"]),
    st.text(max_size=8),
)


def outcome(call: Callable[[], object]) -> object:
    """What ``call`` returns, or the ecrd error it raises; any other exception escapes and fails the test."""
    try:
        return call()
    except EcrdError as error:
        return error


@settings(max_examples=400, deadline=None)
@given(
    headers=st.lists(st.tuples(HEADER_NAMES, ANY_TEXT), max_size=5),
    query=st.one_of(ANY_TEXT, st.binary()),
    path=st.one_of(st.text(), st.binary()),
)
def test_hostile_input_raises_only_ecrd_errors(
    headers: list[tuple[str, str]], query: str | bytes, path: str | bytes
) -> None:
    parsed = outcome(lambda: parse_signed_request("POST", headers, query))

    assert isinstance(parsed, SignedRequest | EcrdError)
    if isinstance(parsed, SignedRequest):
        verified = outcome(
            lambda: verify_signature(
                parsed,
                method="POST",
                path=path,
                query_string=query,
                headers=headers,
                payload_sha256=EMPTY_SHA256,
                secret_access_key=SUITE_SECRET,
                now=SUITE_NOW,
                expected_region="us-east-1",
                allowed_services={"service"},
            )
        )
        assert verified is None or isinstance(verified, EcrdError)


@settings(max_examples=400, deadline=None)
@given(authorization=ANY_TEXT, date=st.one_of(st.just("20150830T123600Z"), ANY_TEXT))
def test_hostile_authorization_header_raises_only_ecrd_errors(authorization: str, date: str) -> None:
    headers = [("Host", "example.amazonaws.com"), ("X-Amz-Date", date), ("Authorization", authorization)]

    assert isinstance(outcome(lambda: parse_signed_request("GET", headers, "")), SignedRequest | EcrdError)


@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_mutated_valid_authorization_raises_only_ecrd_errors(data: st.DataObject) -> None:
    original = suite_authorization("get-header-value-trim")
    start = data.draw(st.integers(0, len(original)))
    end = data.draw(st.integers(start, len(original)))
    mutated = original[:start] + data.draw(ANY_TEXT) + original[end:]
    headers = suite_headers("get-header-value-trim")

    parsed = outcome(lambda: parse_signed_request("GET", [*headers, ("Authorization", mutated)], ""))

    assert isinstance(parsed, SignedRequest | EcrdError)
    if isinstance(parsed, SignedRequest):
        verified = outcome(lambda: verify_suite(parsed, path="/", query="", headers=headers))
        assert verified is None or isinstance(verified, EcrdError)
