"""The Signature Version 4 algorithm itself: the canonical request, the string to sign and the signing key, as
AWS's "Create a signed AWS API request" pages (*SigV4 docs*) and its SigV4 test suite define them, with botocore's
signer (``botocore.auth``) as the reference where those are silent. Pure: no I/O, no clock.

The AWS door verifies requests with it (``ecrd.aws.sigv4``); ``sign_request`` signs ecrd's own requests to another
ecrd's AWS API (replication to a peer), so what ecrd sends is canonicalized by the very code that checks what it
receives.

``headers`` is a ``Mapping[str, str]`` or ``(name, value)`` pairs in wire order, names matched case-insensitively;
``path`` and ``query_string`` are the raw request-target parts as sent, preferably ``bytes``.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from urllib.parse import quote_from_bytes, unquote_to_bytes, urlsplit

ALGORITHM = "AWS4-HMAC-SHA256"
SCOPE_TERMINATOR = "aws4_request"
QUERY_SIGNATURE = "X-Amz-Signature"

Headers = Mapping[str, str] | Iterable[tuple[str, str]]
"""Request headers: a mapping, or ``(name, value)`` pairs in wire order."""


def sign_request(
    *,
    method: str,
    url: str,
    headers: Mapping[str, str],
    body: bytes,
    access_key_id: str,
    secret_access_key: str,
    region: str,
    service: str,
    now: datetime,
) -> dict[str, str]:
    """The headers of a header-signed request: ``headers`` with Host, X-Amz-Date, X-Amz-Content-SHA256 and the
    Authorization that signs them all and the body."""
    parts = urlsplit(url)
    payload_hash = hashlib.sha256(body).hexdigest()
    signed: dict[str, str] = {
        **{name.lower(): value for name, value in headers.items()},
        "host": parts.netloc,
        "x-amz-date": format_amz_date(now),
        "x-amz-content-sha256": payload_hash,
    }
    names = sorted(signed)
    canonical = canonical_request(
        method=method,
        path=parts.path or "/",
        query_string=parts.query,
        headers=signed,
        signed_headers=names,
        payload_hash=payload_hash,
    )
    date = format_amz_date(now)[:8]
    scope = f"{date}/{region}/{service}/{SCOPE_TERMINATOR}"
    key = signing_key(secret_access_key, date, region, service)
    signature = hmac.new(key, string_to_sign(now, scope, canonical).encode(), hashlib.sha256).hexdigest()
    signed["authorization"] = (
        f"{ALGORITHM} Credential={access_key_id}/{scope}, SignedHeaders={';'.join(names)}, Signature={signature}"
    )
    return signed


def canonical_request(
    *,
    method: str,
    path: str | bytes,
    query_string: str | bytes,
    headers: Headers,
    signed_headers: Iterable[str],
    payload_hash: str,
    presigned: bool = False,
) -> str:
    """Build the canonical request exactly as AWS does.

    SigV4 docs: ``HTTPMethod \\n CanonicalURI \\n CanonicalQueryString \\n CanonicalHeaders \\n SignedHeaders
    \\n HashedPayload``, where CanonicalHeaders ends with its own newline. For a presigned request the
    canonical query string leaves out ``X-Amz-Signature``.
    """
    names = sorted({name.lower() for name in signed_headers})
    return "\n".join(
        [
            # RFC 9110 §9.1: the method token is case-sensitive, so it is used as sent (botocore sends and
            # signs upper case).
            method,
            _canonical_uri(to_bytes(path)),
            _canonical_query(to_bytes(query_string), presigned=presigned),
            _canonical_headers(header_pairs(headers), names),
            ";".join(names),
            payload_hash,
        ]
    )


def string_to_sign(amz_date: datetime, credential_scope: str, canonical: str) -> str:
    """SigV4 docs: ``Algorithm \\n RequestDateTime \\n CredentialScope \\n HashedCanonicalRequest``."""
    hashed = hashlib.sha256(canonical.encode("utf-8", "surrogatepass")).hexdigest()
    return "\n".join([ALGORITHM, format_amz_date(amz_date), credential_scope, hashed])


def format_amz_date(moment: datetime) -> str:
    """ISO 8601 basic format in UTC, ``YYYYMMDD'T'HHMMSS'Z'`` (zero-padded on every platform, unlike strftime)."""
    utc = moment.astimezone(UTC)
    return f"{utc.year:04d}{utc.month:02d}{utc.day:02d}T{utc.hour:02d}{utc.minute:02d}{utc.second:02d}Z"


@functools.lru_cache(maxsize=1024)
def signing_key(secret: str, date: str, region: str, service: str) -> bytes:
    """Derive the per-key, per-day, per-region, per-service signing key.

    SigV4 docs: ``kDate = HMAC("AWS4" + secret, date)``, ``kRegion = HMAC(kDate, region)``, ``kService =
    HMAC(kRegion, service)``, ``kSigning = HMAC(kService, "aws4_request")``. Four HMACs that change once a day
    per key, so they are cached; the cache is bounded (LRU) and never logged or exposed, since its keys hold
    the secrets. It is functools' memo rather than a ``BoundedCache``: the answer is a pure function of the
    arguments, so no entry can ever be stale and there is no owner's rule to apply before trusting one.
    """
    key = _hmac(f"AWS4{secret}".encode(), date)
    key = _hmac(key, region)
    key = _hmac(key, service)
    return _hmac(key, SCOPE_TERMINATOR)


def _hmac(key: bytes, message: str) -> bytes:
    return hmac.new(key, message.encode("utf-8"), hashlib.sha256).digest()


def _canonical_uri(path: bytes) -> str:
    # SigV4 docs: "Normalize URI paths according to RFC 3986. Remove redundant and relative path components.
    # Each path segment must be URI-encoded twice (except for Amazon S3 which only gets URI-encoded once)."
    # The path on the wire is already encoded once (botocore's serializers quote labels), so encoding the
    # raw path once more — "%" included — is the second encoding. A raw path with bytes a client never
    # encoded (the test suite's "/example space/", "/ሴ") gets its one encoding here too.
    return quote_from_bytes(_normalize_path(path), safe="/")


def _normalize_path(path: bytes) -> bytes:
    # SigV4 docs: "If the absolute path is empty, use a forward slash character (/)."
    if not path:
        return b"/"
    # RFC 3986 §5.2.4 dot-segment removal, plus "AWS services require consecutive slashes to be removed"
    # (test suite "get-slashes": "//example//" -> "/example/"). Like botocore and the JavaScript SDK, a
    # trailing ".." keeps no trailing slash ("/a/b/.." -> "/a") where RFC 3986 would write "/a/", and a
    # target that is not origin-form ("." or "a/..") normalizes to nothing rather than to "/".
    segments: list[bytes] = []
    for segment in path.split(b"/"):
        if segment in (b"", b"."):
            continue
        if segment == b"..":
            if segments:
                segments.pop()
            continue
        segments.append(segment)
    leading = b"/" if path.startswith(b"/") else b""
    trailing = b"/" if segments and path.endswith(b"/") else b""
    return leading + b"/".join(segments) + trailing


def _canonical_query(query: bytes, *, presigned: bool) -> str:
    # SigV4 docs: "URI-encode each parameter name and value … Sort the parameters in the canonical query
    # string alphabetically by key name … If a key has more than one value, sort by value"; unreserved
    # characters (A-Z a-z 0-9 - _ . ~) stay, every other byte becomes %XY with upper-case hex, "=" with an
    # empty value for a bare key. Decoding first and re-encoding makes "%7e", "%7E" and "~" the same octet,
    # as RFC 3986 §6.2.2 says they are.
    encoded: list[tuple[str, str]] = []
    for name, value in split_query(query):
        # SigV4 docs (query auth): "The canonical query string must include all the query parameters …
        # except for X-Amz-Signature."
        if presigned and name == QUERY_SIGNATURE.encode():
            continue
        encoded.append((quote_from_bytes(name, safe=""), quote_from_bytes(value, safe="")))
    encoded.sort()
    return "&".join(f"{name}={value}" for name, value in encoded)


def split_query(query: bytes) -> list[tuple[bytes, bytes]]:
    """Decoded ``(name, value)`` octets in order; "+" decodes to a space and empty pieces are dropped.

    "+" is a space because botocore's ``AWSRequest`` sends parameters form-encoded ("a+b") while signing them
    as "a%20b", and AWS's test suite (post-vanilla-query-nonunreserved) canonicalizes a "+" as "%20". Empty
    pieces ("a=1&&b=2", a trailing "&") carry no parameter for any query parser, so they sign nothing.
    """
    result: list[tuple[bytes, bytes]] = []
    for piece in query.split(b"&"):
        if not piece:
            continue
        name, _, value = piece.partition(b"=")
        result.append((unquote_to_bytes(name.replace(b"+", b" ")), unquote_to_bytes(value.replace(b"+", b" "))))
    return result


def decode_query(query: bytes) -> list[tuple[str, str]]:
    return [(name.decode("utf-8", "replace"), value.decode("utf-8", "replace")) for name, value in split_query(query)]


def _canonical_headers(pairs: list[tuple[str, str]], names: list[str]) -> str:
    # SigV4 docs: "CanonicalHeaders = Lowercase(HeaderName) + ':' + Trimall(HeaderValue) + '\n'", sorted by
    # name; "Trimall … removes excess white space before and after values, and converts sequential spaces to a
    # single space", and a repeated header's values are joined with commas in the order they arrived (test
    # suite "get-header-key-duplicate"). Like botocore and the JavaScript SDK, any whitespace counts.
    values: dict[str, list[str]] = {name: [] for name in names}
    for name, value in pairs:
        if name in values:
            values[name].append(" ".join(value.split()))
    # A signed header the request does not carry is signed as empty, so it fails as a mismatch.
    return "".join(f"{name}:{','.join(values[name])}\n" for name in names)


def header_pairs(headers: Headers) -> list[tuple[str, str]]:
    items = headers.items() if isinstance(headers, Mapping) else headers
    return [(name.lower(), value) for name, value in items]


def to_bytes(value: str | bytes) -> bytes:
    if isinstance(value, bytes):
        return value
    try:
        # Round-trips a str that was decoded from wire bytes with errors="surrogateescape".
        return value.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return value.encode("utf-8", "surrogatepass")
