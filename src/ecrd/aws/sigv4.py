"""Verifies AWS Signature Version 4 on requests to the AWS door: what a request declares, and what it signed.

The verifier is pure: no I/O, no clock (``now`` is passed in), no logging. Looking up the secret for an access
key id, and checking that a session token belongs to that key, are the caller's job (``InvalidClientToken``
when the key is unknown), between :func:`parse_signed_request` and :func:`verify_signature`.

Rules are AWS's "Create a signed AWS API request" / "Elements of an AWS API request signature" pages (cited
below as *SigV4 docs*) and AWS's SigV4 test suite; where those are silent, botocore's signer
(``botocore.auth``) is the reference, because the AWS CLI and boto3 are the clients ecrd must accept byte for
byte.

Input conventions, matching ASGI/Starlette:

- ``headers`` is either a ``Mapping[str, str]`` or an iterable of ``(name, value)`` pairs. Names are
  matched case-insensitively. Pass pairs (or a multi-valued mapping such as Starlette's ``Headers``, whose
  ``items()`` yields every occurrence) so that a repeated header keeps all its values. Values are the wire
  bytes decoded as latin-1, as Starlette does; botocore sends ``str`` values latin-1-encoded and signs them
  UTF-8-encoded, and encoding the latin-1-decoded value as UTF-8 reproduces exactly that.
- ``path`` and ``query_string`` are the raw request-target parts as sent (ASGI ``raw_path`` and
  ``query_string``), preferably as ``bytes``; a ``str`` is encoded as UTF-8.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from ecrd.domain.sigv4 import (
    ALGORITHM,
    QUERY_SIGNATURE,
    SCOPE_TERMINATOR,
    Headers,
    canonical_request,
    format_amz_date,
    signing_key,
    string_to_sign,
)
from ecrd.domain.sigv4 import decode_query as _decode_query
from ecrd.domain.sigv4 import header_pairs as _header_pairs
from ecrd.domain.sigv4 import to_bytes as _to_bytes
from ecrd.errors import IncompleteSignature, InvalidSignature, MissingAuthentication, RequestExpired

__all__ = [
    "ALGORITHM",
    "MAX_CLOCK_SKEW",
    "MAX_PRESIGN_EXPIRES",
    "SCOPE_TERMINATOR",
    "UNSIGNED_PAYLOAD",
    "Headers",
    "SignedRequest",
    "canonical_request",
    "check_scope_and_time",
    "format_amz_date",
    "parse_signed_request",
    "signing_key",
    "string_to_sign",
    "verify_signature",
]

UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"
# AWS refuses a request whose X-Amz-Date is more than 15 minutes from its own clock, either way ("Signature
# expired: … (… - 15 min.)", "Signature not yet current: … (… + 15 min.)").
MAX_CLOCK_SKEW = timedelta(minutes=15)
# SigV4 docs (query auth): "X-Amz-Expires ... The minimum value you can set is 1, and the maximum is 604800
# (seven days)."
MAX_PRESIGN_EXPIRES = 604800

HEADER_AUTHORIZATION = "authorization"
HEADER_AMZ_DATE = "x-amz-date"
HEADER_DATE = "date"
HEADER_SECURITY_TOKEN = "x-amz-security-token"
HEADER_CONTENT_SHA256 = "x-amz-content-sha256"
HEADER_HOST = "host"

PARAM_CREDENTIAL = "Credential"
PARAM_SIGNED_HEADERS = "SignedHeaders"
PARAM_SIGNATURE = "Signature"

QUERY_ALGORITHM = "X-Amz-Algorithm"
QUERY_CREDENTIAL = "X-Amz-Credential"
QUERY_SIGNED_HEADERS = "X-Amz-SignedHeaders"
QUERY_DATE = "X-Amz-Date"
QUERY_EXPIRES = "X-Amz-Expires"
QUERY_SECURITY_TOKEN = "X-Amz-Security-Token"
_QUERY_AUTH_PARAMS = (QUERY_ALGORITHM, QUERY_CREDENTIAL, QUERY_SIGNATURE, QUERY_SIGNED_HEADERS, QUERY_DATE)

MESSAGE_MISSING_AUTHENTICATION = "Missing Authentication Token"
MESSAGE_SIGNATURE_MISMATCH = (
    "The request signature we calculated does not match the signature you provided. Check your AWS Secret "
    "Access Key and signing method. Consult the service documentation for details."
)
MESSAGE_CONTENT_SHA256_MISMATCH = "The provided 'x-amz-content-sha256' header does not match what was computed."
MESSAGE_UNSIGNED_PAYLOAD = (
    "The request signature we calculated does not match the signature you provided: this service signs every "
    "payload, and 'x-amz-content-sha256: UNSIGNED-PAYLOAD' is not accepted on a header-signed request."
)
MESSAGE_HOST_NOT_SIGNED = "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization."
MESSAGE_PRESIGN_EXPIRED = "Request has expired"
MESSAGE_BOTH_MECHANISMS = (
    "Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter or the Authorization header "
    "should be specified"
)

_AMZ_DATE = re.compile(r"([0-9]{4})([0-9]{2})([0-9]{2})T([0-9]{2})([0-9]{2})([0-9]{2})Z")
# RFC 9110 §5.6.7 IMF-fixdate, the one HTTP date format a sender may generate.
_IMF_FIXDATE = re.compile(
    r"(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun), ([0-9]{2}) "
    r"(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) ([0-9]{4}) ([0-9]{2}):([0-9]{2}):([0-9]{2}) GMT"
)
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


@dataclass(frozen=True)
class SignedRequest:
    """What a request declares about its signature, from its Authorization header or presigned query string.

    Nothing here is trusted until :func:`verify_signature` has passed.
    """

    access_key_id: str
    date: str
    """The credential scope's date, ``YYYYMMDD``, as declared (checked against ``amz_date`` on verify)."""
    region: str
    service: str
    signed_headers: tuple[str, ...]
    """Lower-cased header names in the order declared."""
    signature: str
    amz_date: datetime
    """The request time (UTC) from ``X-Amz-Date``, else the ``Date`` header."""
    security_token: str | None
    terminator: str
    """The credential scope's last element; verify requires ``aws4_request``."""
    presigned: bool
    """True when the signature came in the query string (``X-Amz-Signature``) rather than a header."""
    expires: int | None
    """Seconds the presigned URL stays valid (``X-Amz-Expires``); None for header auth or when absent."""

    @property
    def credential_scope(self) -> str:
        return f"{self.date}/{self.region}/{self.service}/{self.terminator}"


# -- parsing ------------------------------------------------------------------------------------------


def parse_signed_request(method: str, headers: Headers, query_string: str | bytes) -> SignedRequest:
    """Read the signature a request declares; raise an ``AuthenticationError`` for none or a malformed one.

    ``method`` is accepted so callers pass the whole request line; SigV4 declares the same things for every
    method, so it does not change the result. Only ecrd errors escape, whatever the input.
    """
    del method  # SigV4's declarations do not depend on the method (see docstring).
    pairs = _header_pairs(headers)
    query = _decode_query(_to_bytes(query_string))
    authorization = _single_header(pairs, HEADER_AUTHORIZATION)
    presigned = any(name in _QUERY_AUTH_PARAMS for name, _ in query)
    if authorization is not None and authorization.strip():
        if presigned:
            raise IncompleteSignature(MESSAGE_BOTH_MECHANISMS)
        return _parse_authorization_header(authorization.strip(), pairs)
    if presigned:
        return _parse_presigned_query(query)
    raise MissingAuthentication(MESSAGE_MISSING_AUTHENTICATION)


def _parse_authorization_header(value: str, pairs: list[tuple[str, str]]) -> SignedRequest:
    # SigV4 docs: "Authorization: AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/
    # aws4_request, SignedHeaders=host;range;x-amz-date, Signature=fe5f80f7…" — the algorithm, a space, then
    # comma-separated key=value components (botocore writes ", "; other signers write ",").
    algorithm, _, rest = value.partition(" ")
    date_value = _single_header(pairs, HEADER_AMZ_DATE)
    http_date_value = _single_header(pairs, HEADER_DATE)
    has_date = date_value is not None or http_date_value is not None
    if algorithm != ALGORITHM:
        if algorithm.startswith("AWS4-"):
            raise IncompleteSignature(f"Unsupported AWS 'algorithm': '{algorithm}'; only '{ALGORITHM}' is supported.")
        # Another scheme altogether (Basic, Bearer, SigV2 "AWS key:sig"): AWS answers that none of the SigV4
        # components is there.
        raise IncompleteSignature(_requirements_message(_HEADER_PARAMS, has_date=has_date))

    params: dict[str, str] = {}
    for component in rest.split(","):
        item = component.strip()
        if not item:
            continue
        key, equals, component_value = item.partition("=")
        if not equals:
            # AWS's own wording; it hashes the header rather than echo it, which keeps any secret a
            # misdirected client put there out of responses and logs.
            digest = hashlib.sha256(value.encode("utf-8", "surrogatepass")).digest()
            raise IncompleteSignature(
                "Invalid key=value pair (missing equal-sign) in Authorization header (hashed with SHA-256 "
                f"and encoded with Base64): '{base64.b64encode(digest).decode()}'."
            )
        key = key.strip()
        if key in params:
            raise IncompleteSignature(f"Authorization header has a duplicate '{key}' parameter.")
        params[key] = component_value.strip()

    missing = tuple(name for name in _HEADER_PARAMS if not params.get(name))
    if missing or not has_date:
        raise IncompleteSignature(_requirements_message(missing, has_date=has_date))

    access_key_id, scope_date, region, service, terminator = _parse_credential(params[PARAM_CREDENTIAL])
    # SigV4 docs: X-Amz-Date takes precedence; the Date header is the fallback.
    if date_value is not None:
        amz_date = _parse_amz_date(date_value)
    elif http_date_value is not None:
        amz_date = _parse_http_date(http_date_value)
    else:  # excluded by has_date above; kept so that the types say so too
        raise IncompleteSignature(_requirements_message((), has_date=False))
    return SignedRequest(
        access_key_id=access_key_id,
        date=scope_date,
        region=region,
        service=service,
        signed_headers=_parse_signed_headers(params[PARAM_SIGNED_HEADERS]),
        signature=params[PARAM_SIGNATURE],
        amz_date=amz_date,
        security_token=_single_header(pairs, HEADER_SECURITY_TOKEN),
        terminator=terminator,
        presigned=False,
        expires=None,
    )


_HEADER_PARAMS = (PARAM_CREDENTIAL, PARAM_SIGNATURE, PARAM_SIGNED_HEADERS)


def _requirements_message(missing: Iterable[str], *, has_date: bool) -> str:
    # AWS lists every missing part at once, in this order, e.g. "Authorization header requires 'Credential'
    # parameter. Authorization header requires 'Signature' parameter. …". AWS then echoes the header
    # ("Authorization=…"); ecrd does not, since the value may be another scheme's secret (Basic, Bearer).
    sentences = [f"Authorization header requires '{name}' parameter." for name in missing]
    if not has_date:
        sentences.append("Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header.")
    return " ".join(sentences)


def _parse_presigned_query(query: list[tuple[str, str]]) -> SignedRequest:
    # SigV4 docs (query auth): the signature travels as X-Amz-Algorithm, X-Amz-Credential, X-Amz-Date,
    # X-Amz-Expires, X-Amz-SignedHeaders, X-Amz-Signature and, with temporary credentials,
    # X-Amz-Security-Token.
    values: dict[str, str] = {}
    for name, value in query:
        if name in _QUERY_AUTH_PARAMS or name in (QUERY_EXPIRES, QUERY_SECURITY_TOKEN):
            if name in values:
                raise IncompleteSignature(f"AWS query-string parameter '{name}' must appear only once.")
            values[name] = value
    missing = [name for name in _QUERY_AUTH_PARAMS if not values.get(name)]
    if missing:
        raise IncompleteSignature(
            " ".join(f"AWS query-string parameters must include '{name}'." for name in missing)
            + " Re-examine the query-string parameters."
        )
    if values[QUERY_ALGORITHM] != ALGORITHM:
        raise IncompleteSignature(f"X-Amz-Algorithm only supports '{ALGORITHM}'")
    access_key_id, scope_date, region, service, terminator = _parse_credential(values[QUERY_CREDENTIAL])
    return SignedRequest(
        access_key_id=access_key_id,
        date=scope_date,
        region=region,
        service=service,
        signed_headers=_parse_signed_headers(values[QUERY_SIGNED_HEADERS]),
        signature=values[QUERY_SIGNATURE],
        amz_date=_parse_amz_date(values[QUERY_DATE]),
        security_token=values.get(QUERY_SECURITY_TOKEN),
        terminator=terminator,
        presigned=True,
        expires=_parse_expires(values.get(QUERY_EXPIRES)),
    )


def _parse_expires(value: str | None) -> int | None:
    if value is None:
        return None
    # ASCII digits only: int() would also accept "+5", " 5", "1_000" and non-ASCII digits.
    if not re.fullmatch(r"[0-9]{1,7}", value):
        raise IncompleteSignature("X-Amz-Expires should be a number")
    expires = int(value)
    if expires < 1:
        raise IncompleteSignature("X-Amz-Expires must be non-negative")
    if expires > MAX_PRESIGN_EXPIRES:
        raise IncompleteSignature(f"X-Amz-Expires must be less than a week (in seconds) that is {MAX_PRESIGN_EXPIRES}")
    return expires


def _parse_credential(credential: str) -> tuple[str, str, str, str, str]:
    # SigV4 docs: "Credential: Your access key ID and the scope information … <your-access-key-id>/<date>/
    # <aws-region>/<aws-service>/aws4_request". An access key id never contains "/", so exactly five parts.
    parts = credential.split("/")
    if len(parts) != 5:
        raise IncompleteSignature(
            "Credential must have exactly 5 slash-delimited elements, e.g. keyid/date/region/service/term, "
            f"got '{credential}'"
        )
    access_key_id, scope_date, region, service, terminator = parts
    return access_key_id, scope_date, region, service, terminator


def _parse_signed_headers(value: str) -> tuple[str, ...]:
    # SigV4 docs: "SignedHeaders: A semicolon-separated list of request headers that you used to compute
    # Signature. The list includes header names only, and the header names must be in lowercase."
    names = tuple(name.lower() for name in value.split(";"))
    if any(not name for name in names):
        raise IncompleteSignature(f"SignedHeaders must be a semicolon-separated list of header names, got '{value}'.")
    return names


def _parse_amz_date(value: str) -> datetime:
    # SigV4 docs: "The date must be in the ISO 8601 basic format (YYYYMMDD'T'HHMMSS'Z')", always UTC.
    match = _AMZ_DATE.fullmatch(value)
    if match is not None:
        year, month, day, hour, minute, second = (int(group) for group in match.groups())
        try:
            return datetime(year, month, day, hour, minute, second, tzinfo=UTC)
        except ValueError:
            pass  # e.g. month 13: falls through to the same answer as any other malformed date.
    raise IncompleteSignature(
        f"Date must be in ISO-8601 'basic format'. Got '{value}'. See http://en.wikipedia.org/wiki/ISO_8601"
    )


def _parse_http_date(value: str) -> datetime:
    # SigV4 docs: "If you include a date header [instead of X-Amz-Date] … the date must be in the format
    # specified by RFC 7231" — the IMF-fixdate a sender must generate.
    match = _IMF_FIXDATE.fullmatch(value.strip())
    if match is not None:
        day, month, year, hour, minute, second = match.groups()
        try:
            return datetime(
                int(year), _MONTHS.index(month) + 1, int(day), int(hour), int(minute), int(second), tzinfo=UTC
            )
        except ValueError:
            pass
    raise IncompleteSignature(f"Date must be in RFC 7231 IMF-fixdate format. Got '{value}'.")


# -- verification -------------------------------------------------------------------------------------


def verify_signature(
    signed: SignedRequest,
    *,
    method: str,
    path: str | bytes,
    query_string: str | bytes,
    headers: Headers,
    payload_sha256: str,
    secret_access_key: str,
    now: datetime,
    expected_region: str,
    allowed_services: Collection[str],
) -> None:
    """Check a request's scope, clock and signature; return quietly or raise an ``AuthenticationError``.

    ``payload_sha256`` is the lower-case hex SHA-256 of the body as received. ``now`` must be timezone-aware.
    Cheap checks run first, so that a request with a foreign scope never reaches key derivation (and the
    signing-key cache only ever holds keys for this region, these services and today or yesterday).
    """
    check_scope_and_time(signed, now=now, expected_region=expected_region, allowed_services=allowed_services)
    pairs = _header_pairs(headers)
    creq = canonical_request(
        method=method,
        path=path,
        query_string=query_string,
        headers=pairs,
        signed_headers=signed.signed_headers,
        payload_hash=_payload_hash(pairs, payload_sha256, presigned=signed.presigned),
        presigned=signed.presigned,
    )
    sts = string_to_sign(signed.amz_date, signed.credential_scope, creq)
    key = signing_key(secret_access_key, signed.date, signed.region, signed.service)
    expected = hmac.new(key, sts.encode("utf-8"), hashlib.sha256).hexdigest()
    # Constant time, so a client cannot learn the expected signature a byte at a time from response timing.
    if not hmac.compare_digest(expected.encode("ascii"), signed.signature.encode("utf-8", "surrogatepass")):
        raise InvalidSignature(MESSAGE_SIGNATURE_MISMATCH)


def check_scope_and_time(
    signed: SignedRequest, *, now: datetime, expected_region: str, allowed_services: Collection[str]
) -> None:
    """The checks that need neither the body nor the secret: scope, signed host, clock.

    A server runs them before it reads a body, so that a request it will refuse anyway costs it no bytes;
    :func:`verify_signature` runs them again, so it stays complete on its own.
    """
    if now.tzinfo is None:
        raise ValueError("now must be a timezone-aware datetime")
    _check_scope(signed, expected_region=expected_region, allowed_services=allowed_services)
    # SigV4 docs: "The host header must be included as a signed header." Unsigned, a captured signature
    # could be replayed against another endpoint.
    if HEADER_HOST not in signed.signed_headers:
        raise IncompleteSignature(MESSAGE_HOST_NOT_SIGNED)
    _check_time(signed, now.astimezone(UTC))


def _check_scope(signed: SignedRequest, *, expected_region: str, allowed_services: Collection[str]) -> None:
    # SigV4 docs: the credential scope is "date/region/service/aws4_request", and the date "must match the
    # value that you used in previous steps" (the X-Amz-Date's YYYYMMDD).
    if signed.terminator != SCOPE_TERMINATOR:
        raise InvalidSignature(
            f"Credential should be scoped with a valid terminator: '{SCOPE_TERMINATOR}', not '{signed.terminator}'. "
        )
    amz_date = format_amz_date(signed.amz_date)
    if signed.date != amz_date[:8]:
        raise InvalidSignature(
            "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: "
            f"'{signed.date}' != '{amz_date[:8]}', from '{amz_date}'."
        )
    if signed.region != expected_region:
        raise InvalidSignature(f"Credential should be scoped to a valid region, not '{signed.region}'. ")
    if signed.service not in allowed_services:
        expected = " or ".join(f"'{service}'" for service in sorted(allowed_services))
        raise InvalidSignature(f"Credential should be scoped to correct service: {expected}. ")


def _check_time(signed: SignedRequest, now: datetime) -> None:
    # Arithmetic only on ``now``: the declared date may sit at datetime's limits (year 9999) and overflow.
    if signed.presigned and signed.expires is not None:
        # SigV4 docs (query auth): X-Amz-Expires "provides the time period, in seconds, for which the
        # generated presigned URL is valid" — counted from X-Amz-Date, the last second included.
        if signed.amz_date < now - timedelta(seconds=signed.expires):
            raise RequestExpired(MESSAGE_PRESIGN_EXPIRED)
    elif signed.amz_date < now - MAX_CLOCK_SKEW:
        # Exactly 15 minutes old is still accepted; AWS words the refusal like this.
        stamp, now_stamp = format_amz_date(signed.amz_date), format_amz_date(now)
        earliest = format_amz_date(now - MAX_CLOCK_SKEW)
        raise RequestExpired(f"Signature expired: {stamp} is now earlier than {earliest} ({now_stamp} - 15 min.)")
    if signed.amz_date > now + MAX_CLOCK_SKEW:
        stamp, now_stamp = format_amz_date(signed.amz_date), format_amz_date(now)
        latest = format_amz_date(now + MAX_CLOCK_SKEW)
        raise RequestExpired(f"Signature not yet current: {stamp} is still later than {latest} ({now_stamp} + 15 min.)")


def _payload_hash(pairs: list[tuple[str, str]], payload_sha256: str, *, presigned: bool) -> str:
    # botocore puts X-Amz-Content-SHA256, when the request carries it, into the canonical request in place
    # of its own hash; the header must then tell the truth about the body.
    declared = _single_header(pairs, HEADER_CONTENT_SHA256)
    if declared is None:
        return payload_sha256
    if declared == UNSIGNED_PAYLOAD and not presigned:
        # botocore leaves a payload unsigned only for operations modelled "v4-unsigned-body" (S3's, over
        # HTTPS); no ECR, IAM, STS or KMS operation is. Accepting it would let whoever relays a header-signed
        # request replace its body. Presigned URLs are left as they were: S3-style presigners (botocore's
        # S3SigV4QueryAuth) sign UNSIGNED-PAYLOAD, and a URL's body is chosen by whoever holds the URL.
        raise InvalidSignature(MESSAGE_UNSIGNED_PAYLOAD)
    if declared != UNSIGNED_PAYLOAD and declared != payload_sha256:
        raise InvalidSignature(MESSAGE_CONTENT_SHA256_MISMATCH)
    return declared


# -- input helpers ------------------------------------------------------------------------------------


def _single_header(pairs: list[tuple[str, str]], name: str) -> str | None:
    found = None
    for header, value in pairs:
        if header == name:
            if found is not None:
                raise IncompleteSignature(f"The '{name}' header must appear only once.")
            found = value
    return found
