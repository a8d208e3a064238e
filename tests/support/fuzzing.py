"""Hostile-input testing: bounded Hypothesis settings, a raw ASGI client, the protocol-shape checks every answer
must pass, canaries around the data directory, SigV4 signing at a chosen moment, and request values drawn from
the botocore models.

Runs are reproducible (``derandomize=True``, no example database) and bounded twice: by example counts and by
a wall-clock budget per test. ``ECRD_FUZZ_SCALE`` multiplies both (``ECRD_FUZZ_SCALE=20`` for a long local run).
"""

from __future__ import annotations

import base64
import builtins
import hashlib
import json
import os
import re
import secrets
import time
import urllib.parse
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from unittest import mock

import anyio
import anyio.abc
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from starlette.types import ASGIApp, Message

from ecrd.errors import EcrdError

FUZZ_SCALE = float(os.environ.get("ECRD_FUZZ_SCALE", "1"))
"""Multiplies every example count and time budget of the fuzz tier."""

HOST = "127.0.0.1:5000"
"""The Host the in-process doors are addressed as (the registry fixtures' public URL)."""


def fuzz_settings(max_examples: int) -> settings:
    """Reproducible and bounded: the same examples on every run, no deadline per example (CI machines vary)."""
    return settings(
        max_examples=max(1, int(max_examples * FUZZ_SCALE)),
        deadline=None,
        derandomize=True,
        database=None,
        print_blob=True,
        suppress_health_check=[
            HealthCheck.function_scoped_fixture,
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
            HealthCheck.filter_too_much,
            HealthCheck.large_base_example,
        ],
    )


@dataclass
class Budget:
    """A wall-clock bound for one fuzz test: examples after it is spent pass without running."""

    seconds: float
    started: float = field(default_factory=time.monotonic)
    cases: int = 0

    def spent(self) -> bool:
        return time.monotonic() - self.started > self.seconds * FUZZ_SCALE

    def count(self) -> None:
        self.cases += 1


# -- a raw ASGI client -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RawResponse:
    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes

    def header(self, name: str) -> str | None:
        wanted = name.lower()
        return next((value for key, value in self.headers if key == wanted), None)

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass(frozen=True)
class RawRequest:
    """One request as a server hands it to the application after parsing the request line and headers."""

    method: str
    raw_path: bytes
    query: bytes = b""
    headers: tuple[tuple[bytes, bytes], ...] = ()
    body: bytes = b""
    chunk_size: int | None = None

    @property
    def path(self) -> str:
        # What uvicorn puts in scope["path"]: the percent-decoded target (UTF-8, undecodable bytes replaced).
        return urllib.parse.unquote(self.raw_path.decode("latin-1"), errors="replace")

    def describe(self) -> str:
        head = f"{self.method} {self.raw_path!r} query={self.query[:300]!r}"
        headers = ", ".join(f"{k.decode('latin-1')}: {v[:200]!r}" for k, v in self.headers)
        return f"{head}\nheaders: {headers}\nbody ({len(self.body)} bytes): {self.body[:300]!r}"

    def sent_text(self) -> str:
        """Everything the client said, as text: error messages may quote it back."""
        parts = [
            self.path,
            self.raw_path.decode("latin-1"),
            urllib.parse.unquote(self.query.decode("latin-1")),
            self.query.decode("latin-1"),
            self.body.decode("utf-8", "replace"),
            urllib.parse.unquote(self.body.decode("latin-1")),
        ]
        parts += [v.decode("latin-1") for _, v in self.headers]
        return "\n".join(parts)


class NoResponse(AssertionError):
    """The application returned without completing a response: a client would see the connection drop."""


def _as_bytes(value: str | bytes) -> bytes:
    """Text as a client puts it on the wire: Latin-1 where it can (http.client's rule for headers), else UTF-8."""
    if isinstance(value, bytes):
        return value
    try:
        return value.encode("latin-1")
    except UnicodeEncodeError:
        return value.encode("utf-8", "surrogateescape")


class AsgiClient:
    """Sends requests exactly as given — any method, raw path bytes, repeated or malformed headers, a body in
    chunks — straight to an ASGI application, as a server does after parsing the request.

    Unlike an HTTP client it normalizes nothing (no dot-segment removal, no header validation), so it reaches
    the doors with what a hostile client can put on the wire. Anything the application raises propagates.
    """

    def __init__(
        self,
        app: ASGIApp,
        portal: anyio.abc.BlockingPortal,
        *,
        host: str = HOST,
        headers: Sequence[tuple[str, str]] = (),
    ) -> None:
        self.app = app
        self.portal = portal
        self.host = host
        self.default_headers = tuple((k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers)
        self.sent = 0

    def build(
        self,
        method: str,
        raw_path: str | bytes,
        *,
        query: str | bytes = b"",
        headers: Iterable[tuple[str | bytes, str | bytes]] = (),
        body: bytes = b"",
        chunk_size: int | None = None,
        default_headers: bool = True,
    ) -> RawRequest:
        given = tuple((_as_bytes(k).lower(), _as_bytes(v)) for k, v in headers)
        names = {k for k, _ in given}
        extra = [(b"host", self.host.encode())] if b"host" not in names else []
        if body and not names & {b"content-length", b"transfer-encoding"}:
            # An HTTP/1.1 server sees a body only through one of these; give it the one a client would send.
            extra.append((b"content-length", str(len(body)).encode()))
        if default_headers:
            extra += [(k, v) for k, v in self.default_headers if k not in names]
        return RawRequest(method, _as_bytes(raw_path), _as_bytes(query), tuple(extra) + given, body, chunk_size)

    def request(self, method: str, raw_path: str | bytes, **kwargs: Any) -> RawResponse:
        return self.send(self.build(method, raw_path, **kwargs))

    def send(self, request: RawRequest) -> RawResponse:
        self.sent += 1
        return self.portal.call(self._run, request)

    async def _run(self, request: RawRequest) -> RawResponse:
        scope = {
            "type": "http",
            "asgi": {"version": "3.0", "spec_version": "2.3"},
            "http_version": "1.1",
            "method": request.method,
            "scheme": "http",
            "path": request.path,
            "raw_path": request.raw_path,
            "root_path": "",
            "query_string": request.query,
            "headers": [list(pair) for pair in request.headers],
            "client": ("127.0.0.1", 40000),
            "server": ("127.0.0.1", 5000),
            "state": {},
            "extensions": {},
        }
        size = request.chunk_size or max(len(request.body), 1)
        chunks = [request.body[i : i + size] for i in range(0, len(request.body), size)] or [b""]
        finished = anyio.Event()
        status: list[int] = []
        headers: list[tuple[str, str]] = []
        parts: list[bytes] = []

        async def receive() -> Message:
            if chunks:
                chunk = chunks.pop(0)
                return {"type": "http.request", "body": chunk, "more_body": bool(chunks)}
            await finished.wait()
            return {"type": "http.disconnect"}

        async def send(message: Message) -> None:
            if message["type"] == "http.response.start":
                status.append(message["status"])
                headers.extend((k.decode("latin-1").lower(), v.decode("latin-1")) for k, v in message["headers"])
            elif message["type"] == "http.response.body":
                parts.append(message.get("body", b""))
                if not message.get("more_body", False):
                    finished.set()

        try:
            await self.app(scope, receive, send)
        finally:
            done = finished.is_set()
            finished.set()
        if not status or not done:
            raise NoResponse(f"no complete response to\n{request.describe()}")
        return RawResponse(status[0], tuple(headers), b"".join(parts))


@contextmanager
def asgi_client(app: ASGIApp, **kwargs: Any) -> Iterator[AsgiClient]:
    with anyio.from_thread.start_blocking_portal() as portal:
        yield AsgiClient(app, portal, **kwargs)


# -- what every answer must look like ---------------------------------------------------------------------

_EXCEPTION_NAMES = sorted(
    name for name, value in vars(builtins).items() if isinstance(value, type) and issubclass(value, BaseException)
)
PYTHON_LEAK = re.compile(
    r"Traceback \(most recent call last\)"
    r'|File "[^"\n]*", line \d+'
    r"|\b(?:" + "|".join(_EXCEPTION_NAMES) + r")\b(?=[:(])"
    r"|\b(?:sqlalchemy|psycopg|sqlite3|starlette|anyio|botocore)\.[a-z_]"
    r"|<(?:class|function|module|bound method) '?"
    r"|site-packages/|/ecrd/[a-z_]+\.py"
)


def python_leaks(body: str, sent: str = "") -> list[str]:
    """Fragments of a Python exception, traceback or internal name in ``body`` that the client did not send."""
    return [m.group(0) for m in PYTHON_LEAK.finditer(body) if m.group(0) not in sent]


def _error_classes() -> list[type[EcrdError]]:
    found: list[type[EcrdError]] = []
    pending: list[type[EcrdError]] = [EcrdError]
    while pending:
        cls = pending.pop()
        found.append(cls)
        pending.extend(cls.__subclasses__())
    return found


OCI_ERROR_CODES = frozenset(cls.oci_code for cls in _error_classes()) - {"UNKNOWN"}
"""Codes a client may see in an OCI error body; UNKNOWN is the internal error's."""


def oci_problems(response: RawResponse, request: RawRequest) -> list[str]:
    """What is wrong with an answer of the /v2/ door: a 5xx, a body not in the spec's error shape, a leak."""
    problems: list[str] = []
    if response.status >= 500:
        problems.append(f"status {response.status}")
    if response.header("docker-distribution-api-version") != "registry/2.0":
        problems.append("no Docker-Distribution-API-Version: registry/2.0 header")
    if response.status >= 400 and request.method != "HEAD":
        try:
            body = response.json()
            errors = body["errors"]
            assert isinstance(errors, list) and errors
            for entry in errors:
                assert isinstance(entry, dict)
                assert entry["code"] in OCI_ERROR_CODES, f"code {entry['code']!r}"
                assert isinstance(entry["message"], str)
        except (ValueError, KeyError, TypeError, AssertionError) as exc:
            problems.append(f"error body not in the OCI shape ({exc!r}): {response.text[:300]!r}")
    if response.status == 401 and not (response.header("www-authenticate") or "").startswith("Basic "):
        problems.append("401 without a Basic WWW-Authenticate challenge")
    problems += [f"leaks {leak!r}" for leak in python_leaks(response.text, request.sent_text())]
    return problems


def aws_json_problems(response: RawResponse, request: RawRequest) -> list[str]:
    """What is wrong with an answer of the AWS door in JSON 1.1: a 5xx, no ``__type``, a leak."""
    problems: list[str] = []
    if response.status >= 500:
        problems.append(f"status {response.status}")
    if not response.header("x-amzn-requestid"):
        problems.append("no x-amzn-RequestId header")
    try:
        body = response.json()
        assert isinstance(body, dict), "not an object"
        if response.status >= 400:
            assert isinstance(body.get("__type"), str) and body["__type"], "no __type"
            assert body["__type"] != "ServerException", "ServerException"
            assert isinstance(body.get("message"), str), "no message"
            assert response.header("content-type") == "application/x-amz-json-1.1", "content type"
    except (ValueError, AssertionError) as exc:
        problems.append(f"body not in the JSON 1.1 shape ({exc}): {response.text[:300]!r}")
    problems += [f"leaks {leak!r}" for leak in python_leaks(response.text, request.sent_text())]
    return problems


def query_problems(response: RawResponse, request: RawRequest) -> list[str]:
    """What is wrong with an answer of the AWS door in the Query protocol: a 5xx, InternalFailure, no
    ``<ErrorResponse>`` for an error, a leak."""
    problems: list[str] = []
    if response.status >= 500:
        problems.append(f"status {response.status}")
    try:
        root = ET.fromstring(response.body)
        tag = root.tag.rsplit("}", 1)[-1]
        if response.status >= 400:
            assert tag == "ErrorResponse", f"root <{tag}>"
            code = root.findtext("{*}Error/{*}Code")
            assert code, "no Error/Code"
            assert code != "InternalFailure", "InternalFailure"
            assert root.find("{*}Error/{*}Message") is not None, "no Error/Message"
            assert root.findtext("{*}RequestId"), "no RequestId"
        else:
            assert tag.endswith("Response"), f"root <{tag}>"
    except (ET.ParseError, AssertionError) as exc:
        problems.append(f"body not in the Query shape ({exc}): {response.text[:300]!r}")
    problems += [f"leaks {leak!r}" for leak in python_leaks(response.text, request.sent_text())]
    return problems


def assert_no_problems(problems: list[str], request: RawRequest, response: RawResponse) -> None:
    assert not problems, "; ".join(problems) + f"\n{request.describe()}\n-> {response.status} {response.text[:600]!r}"


# -- canaries around the data directory ---------------------------------------------------------------------

_DATA_DIR_LAYOUT = re.compile(
    r"blobs/sha256/[0-9a-f]{2}/[0-9a-f]{64}|blobs/sha512/[0-9a-f]{2}/[0-9a-f]{128}"
    r"|uploads/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}(?:/[0-9]{20}|/sealed)?"
    r"|keys/master\.key|metadata\.db(?:-wal|-shm|-journal)?"
)


class Canaries:
    """Files planted around the data directory, named as a traversal would reach them, that no request may
    read, change or delete; and a record of everything outside the data directory, where no request may
    create a file.

    The planted files hold a random secret: a response that contains it read a file it had no business
    reading.
    """

    def __init__(self, root: Path, data_dir: Path) -> None:
        self.root = root
        self.data_dir = data_dir.resolve()
        self.secret = secrets.token_hex(16)
        content = f"canary {self.secret}\n".encode()
        hexdigest = hashlib.sha256(content).hexdigest()
        self.digest = f"sha256:{hexdigest}"
        self.planted = [
            root / "canary.txt",
            root / "etc" / "passwd",
            root / "blobs" / "sha256" / hexdigest[:2] / hexdigest,
            root / "uploads" / str(uuid.uuid4()),
            self.data_dir.parent / "keys" / "master.key",
        ]
        for path in self.planted:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(content)
        self.before = self.snapshot()

    def _outside(self) -> Iterator[Path]:
        for path in sorted(self.root.rglob("*")):
            if (
                path.is_file()
                and not path.resolve().is_relative_to(self.data_dir)
                and not path.name.startswith("metadata.db")
            ):
                yield path

    def snapshot(self) -> dict[str, tuple[int, str]]:
        return {
            str(path.relative_to(self.root)): (path.stat().st_size, hashlib.sha256(path.read_bytes()).hexdigest())
            for path in self._outside()
        }

    def problems(self, bodies: Iterable[bytes] = ()) -> list[str]:
        found: list[str] = []
        after = self.snapshot()
        for name in sorted(set(self.before) | set(after)):
            if name not in after:
                found.append(f"{name} outside the data directory was deleted")
            elif name not in self.before:
                found.append(f"{name} was created outside the data directory")
            elif after[name] != self.before[name]:
                found.append(f"{name} outside the data directory was modified")
        for path in sorted(self.data_dir.rglob("*")):
            relative = path.relative_to(self.data_dir).as_posix()
            if path.is_file() and not _DATA_DIR_LAYOUT.fullmatch(relative):
                found.append(f"unexpected file {relative} in the data directory")
        secret = self.secret.encode()
        found += ["a response carried a canary's content" for body in bodies if secret in body][:1]
        return found


# -- SigV4, signed as botocore signs ------------------------------------------------------------------------


@dataclass(frozen=True)
class Key:
    access_key_id: str
    secret_access_key: str
    session_token: str | None = None

    def __repr__(self) -> str:
        return f"Key({self.access_key_id!r}, secret='***')"


def sign(
    key: Key,
    service: str,
    body: bytes,
    headers: Mapping[str, str],
    *,
    region: str = "us-east-1",
    url: str = f"http://{HOST}/",
    at: datetime | None = None,
) -> dict[str, str]:
    """The headers botocore's SigV4Auth adds to a POST of ``body``; signed at ``at`` (aware UTC) if given."""
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    request = AWSRequest(method="POST", url=url, data=body, headers=dict(headers))
    auth = SigV4Auth(Credentials(key.access_key_id, key.secret_access_key, key.session_token), service, region)
    if at is None:
        auth.add_auth(request)
    else:

        def frozen(remove_tzinfo: bool = True) -> datetime:
            return at.replace(tzinfo=None) if remove_tzinfo else at

        with mock.patch("botocore.auth.get_current_datetime", frozen):
            auth.add_auth(request)
    return {name: str(value) for name, value in request.headers.items()}


JSON_TARGET_PREFIXES = {
    "ecr": "AmazonEC2ContainerRegistry_V20150921",
    "kms": "TrentService",
    "secretsmanager": "secretsmanager",
}
QUERY_VERSIONS = {"iam": "2010-05-08", "sts": "2011-06-15"}
JSON_CONTENT_TYPE = "application/x-amz-json-1.1"
FORM_CONTENT_TYPE = "application/x-www-form-urlencoded; charset=utf-8"


def json_body(service: str, operation: str, params: Mapping[str, Any]) -> bytes:
    """The JSON 1.1 body boto3 sends for ``params`` (blobs base64-encoded by botocore's own serializer)."""
    from botocore.serialize import create_serializer

    from ecrd.aws.models import service_model

    model = service_model(service).operation_model(operation)
    serializer = create_serializer("json", include_validation=False)
    body: bytes = serializer.serialize_to_request(dict(params), model)["body"]
    return body


def query_form(service: str, operation: str, params: Mapping[str, Any]) -> dict[str, str]:
    """The flattened Query form boto3 sends for ``params`` (``Tags.member.1.Key`` …), Action and Version included."""
    from botocore.serialize import create_serializer

    from ecrd.aws.models import service_model

    model = service_model(service).operation_model(operation)
    serializer = create_serializer("query", include_validation=False)
    form: dict[str, str] = serializer.serialize_to_request(dict(params), model)["body"]
    return form


# -- values drawn from botocore shapes ---------------------------------------------------------------------

ACCOUNT = "000000000000"
WEIRD_TEXT = (
    "",
    " ",
    "*",
    "?",
    "..",
    "../../canary.txt",
    "%2e%2e%2f",
    "a\x00b",
    "\x00",
    "\ud7ff",
    "é",
    "ሴ",
    "\u202e",
    "${aws:username}",
    "<x>&amp;",
    "'\"",
    "a" * 300,
    "0",
    "-1",
    "1e309",
    "true",
    "null",
    "{}",
    "[]",
)
PLAUSIBLE_TEXT = (
    "app",
    "team/app",
    "other",
    "does-not-exist",
    ACCOUNT,
    "latest",
    "v1",
    "alice",
    "bob",
    "reader",
    "/",
    "/dev/",
    "AES256",
    "KMS",
    "IMMUTABLE",
    "MUTABLE",
    "alias/aws/ecr",
    "alias/fuzz",
    "ENCRYPT_DECRYPT",
    "sha256:" + "0" * 64,
    "sha256:" + "a" * 64,
    f"arn:aws:ecr:us-east-1:{ACCOUNT}:repository/app",
    f"arn:aws:iam::{ACCOUNT}:user/alice",
    f"arn:aws:iam::{ACCOUNT}:role/reader",
    f"arn:aws:iam::{ACCOUNT}:policy/fuzz",
    "arn:aws:iam::aws:policy/AmazonEC2ContainerRegistryReadOnly",
    "arn:aws:kms:us-east-1:000000000000:key/00000000-0000-0000-0000-000000000000",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
    json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "ecr:*", "Resource": "*"}]}),
    json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": "*", "Action": "ecr:*"}]}),
    json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"}, "Action": "sts:AssumeRole"}
            ],
        }
    ),
    json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": "sha256:" + "0" * 64,
                "size": 2,
            },
            "layers": [],
        }
    ),
    base64.b64encode(b"not a ciphertext").decode(),
)


def _compiled(pattern: str | None) -> re.Pattern[str] | None:
    if not pattern:
        return None
    try:
        return re.compile(pattern)
    except re.error:
        return None  # a Java-only construct


SLOW_PATTERNS = frozenset({r"^[a-z0-9*](?:[._\-/a-z0-9*]?[a-z0-9*]+)*$"})
"""Model patterns that backtrack exponentially in Python's re (reported as a bug, pinned by a strict xfail in
tests/fuzz/test_http_fuzz.py): strings for them stay short, or the fuzz would hang the server it tests."""
SLOW_PATTERN_MAX = 12


def _text(shape: Any, pool: Sequence[str], wild: bool) -> st.SearchStrategy[str]:
    meta = shape.metadata
    low = int(meta.get("min", 0))
    high = max(low, min(int(meta.get("max", 64)), 64))
    enum = getattr(shape, "enum", None) or []
    if meta.get("pattern") in SLOW_PATTERNS:
        return st.one_of(
            st.sampled_from(["*", "app", "team/*", "a*b"]),
            st.text("abz09*._-/!", min_size=low, max_size=SLOW_PATTERN_MAX),
        )
    plausible = st.sampled_from(tuple(pool) + PLAUSIBLE_TEXT)
    if not wild:
        # Values a careful client would send: the model's own enums, names of things that exist, and text
        # within the declared length.
        pattern = _compiled(meta.get("pattern"))
        fitting = [
            text
            for text in (*pool, *PLAUSIBLE_TEXT)
            if low <= len(text) <= int(meta.get("max", 10**9)) and (pattern is None or pattern.fullmatch(text))
        ]
        return (
            st.sampled_from(enum)
            if enum
            else st.sampled_from(fitting)
            if fitting
            else st.text("abcdefgh0123456789", min_size=low, max_size=high)
        )
    options: list[st.SearchStrategy[str]] = [
        plausible,
        plausible,
        st.text(min_size=low, max_size=high),
        st.sampled_from(WEIRD_TEXT),
    ]
    if enum:
        options.insert(0, st.sampled_from(enum))
    return st.one_of(*options)


def shape_values(shape: Any, pool: Sequence[str] = (), depth: int = 0, *, wild: bool = True) -> st.SearchStrategy[Any]:
    """Python values of the shape's types (str, int, bool, bytes, lists, dicts) as boto3 would accept them.

    ``wild`` values reach beyond the model's constraints (any text, any size of integer): what a hostile client
    may send. Tame ones stay within them, drawn from ``pool`` (names of things that exist) and plausible text,
    so that calls get past validation and into the operations.
    """
    kind = shape.type_name
    meta = shape.metadata
    if kind == "structure":
        if depth > 5:
            return st.just({})
        required = set(shape.required_members)
        members = {name: shape_values(member, pool, depth + 1, wild=wild) for name, member in shape.members.items()}
        return st.fixed_dictionaries(
            {name: s for name, s in members.items() if name in required},
            optional={name: s for name, s in members.items() if name not in required},
        )
    if kind == "list":
        low = 0 if wild else int(meta.get("min", 0))
        high = max(low, min(int(meta.get("max", 3)), 3))
        return st.lists(shape_values(shape.member, pool, depth + 1, wild=wild), min_size=low, max_size=high)
    if kind == "map":
        return st.dictionaries(
            _text(shape.key, pool, wild), shape_values(shape.value, pool, depth + 1, wild=wild), max_size=3
        )
    if kind == "string":
        return _text(shape, pool, wild)
    if kind in ("integer", "long"):
        low, high = meta.get("min"), meta.get("max")
        inside = st.integers(min_value=low if low is not None else 0, max_value=high if high is not None else 2**31)
        return st.one_of(inside, st.integers(min_value=-(2**62), max_value=2**62)) if wild else inside
    if kind == "boolean":
        return st.booleans()
    if kind == "blob":
        return st.binary(min_size=0 if wild else max(int(meta.get("min", 0)), 1), max_size=64)
    if kind in ("float", "double"):
        return st.floats(allow_nan=False, allow_infinity=False, width=32)
    if kind == "timestamp":
        return st.integers(min_value=0, max_value=2**31)
    return st.none()


JSON_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**62), max_value=2**62),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=20),
    st.sampled_from(WEIRD_TEXT),
)
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=20,
)


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield prefix
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _paths(item, (*prefix, index))


def mutate_json(data: st.DataObject, value: Any) -> Any:
    """``value`` with one part replaced by a value of another type, removed, or joined by an unknown member."""
    paths = list(_paths(value))
    path = data.draw(st.sampled_from(paths), label="mutated path")
    action = data.draw(st.sampled_from(["replace", "delete", "add", "wrap"]), label="mutation")
    if not path:
        return data.draw(JSON_VALUES) if action != "wrap" else [value]
    copy = json.loads(json.dumps(value))
    parent = copy
    for step in path[:-1]:
        parent = parent[step]
    last = path[-1]
    if action == "replace":
        parent[last] = data.draw(JSON_VALUES, label="replacement")
    elif action == "delete":
        del parent[last]
    elif action == "wrap":
        parent[last] = [parent[last]]
    elif isinstance(parent, dict):
        parent[data.draw(st.text(max_size=12), label="new key")] = data.draw(JSON_VALUES, label="new value")
    else:
        parent.append(data.draw(JSON_VALUES, label="new item"))
    return copy
