"""Talking to an upstream registry of a pull-through cache rule over the OCI distribution API: HTTPS (or plain
HTTP to hosts the operator marked insecure), Basic credentials, and the token dance of the distribution spec's
auth (a ``Bearer`` challenge names a token endpoint, asked with the Basic credentials for a pull token).

Failures become ``EcrdError``s that say what the upstream answered: 404 as the OCI "unknown" errors, anything
else (refused credentials, 5xx, an unreachable host) as ``UpstreamFailure``. Blobs are read as streams, never
held whole.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import ssl
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import urlencode

import urllib3
from urllib3.exceptions import HTTPError

from ecrd.domain import media_types as mt
from ecrd.domain.caches import BoundedCache
from ecrd.domain.digests import Digest
from ecrd.domain.manifests import MAX_MANIFEST_BYTES
from ecrd.errors import BlobUnknown, EcrdError, ManifestUnknown, UpstreamFailure

MANIFEST_ACCEPT: Final = ", ".join(sorted(mt.MANIFESTS))
# Bytes read from an upstream per chunk of a blob: what one event-loop hop hands the client.
CHUNK_SIZE: Final = 1024 * 1024
# Seconds to connect and between two reads; an upstream slower than this is "down" for the pull.
TIMEOUT: Final = urllib3.Timeout(connect=10.0, read=60.0)
# For the re-check of a cached tag, which has the cached image to fall back on: a hung upstream must not hold
# the pull for a minute.
CHECK_TIMEOUT: Final = urllib3.Timeout(connect=5.0, read=5.0)
# A token is reused for at most this long (a token endpoint's ``expires_in`` defaults to 60 s in the spec).
TOKEN_SECONDS: Final = 50.0
_CHALLENGE_PARAM = re.compile(r'(\w+)="([^"]*)"')
_ERROR_TEXT_LIMIT: Final = 300


@dataclass(frozen=True, slots=True)
class UpstreamCredentials:
    """A rule's secret as ECR reads it: ``{"username": …, "accessToken": …}``."""

    username: str
    access_token: str

    def __repr__(self) -> str:
        return f"UpstreamCredentials(username={self.username!r}, access_token=***)"

    @property
    def basic(self) -> str:
        return "Basic " + base64.b64encode(f"{self.username}:{self.access_token}".encode()).decode()


@dataclass(frozen=True, slots=True)
class UpstreamManifest:
    payload: bytes
    media_type: str
    digest: str


class UpstreamBlob:
    """A blob being read from the upstream: its size and its bytes in chunks, read as they are asked for."""

    def __init__(self, response: Any, size: int) -> None:
        self._response = response
        self.size = size

    def chunks(self) -> Iterator[bytes]:
        try:
            yield from self._response.stream(CHUNK_SIZE, decode_content=False)
        except HTTPError as exc:
            raise UpstreamFailure(f"the upstream registry stopped sending the blob: {exc}") from None
        finally:
            self.close()

    def close(self) -> None:
        # A connection with unread bytes of this blob cannot carry another request: it is closed, not pooled.
        if not self._response.isclosed():
            self._response.close()
        self._response.release_conn()


class UpstreamConnector:
    """The connections to every upstream: one pool manager, trusting the system's CAs and ``ca_file``."""

    def __init__(self, *, ca_file: str = "", insecure_hosts: frozenset[str] = frozenset()) -> None:
        context = ssl.create_default_context()
        if ca_file:
            context.load_verify_locations(cafile=ca_file)
        self.insecure_hosts = insecure_hosts
        self._pool = urllib3.PoolManager(ssl_context=context, timeout=TIMEOUT, retries=False)
        # (host, scope, hash of the credentials) → (Authorization, fetched at): reused while young. The hash, not the
        # user name: a rule whose secret changed must not ride on the old secret's answer.
        self._tokens: BoundedCache[tuple[str, str, str], tuple[str, float]] = BoundedCache(1024)

    def registry(
        self, host: str, credentials: UpstreamCredentials | None, *, timeout: urllib3.Timeout = TIMEOUT
    ) -> UpstreamRegistry:
        scheme = "http" if host in self.insecure_hosts else "https"
        return UpstreamRegistry(self, f"{scheme}://{host}", host, credentials, timeout)

    def close(self) -> None:
        self._pool.clear()


class UpstreamRegistry:
    """One upstream registry, as one rule's credentials see it."""

    def __init__(
        self,
        connector: UpstreamConnector,
        base_url: str,
        host: str,
        credentials: UpstreamCredentials | None,
        timeout: urllib3.Timeout = TIMEOUT,
    ) -> None:
        self.connector = connector
        self.base_url = base_url
        self.host = host
        self.credentials = credentials
        self.timeout = timeout

    # -- the operations --------------------------------------------------------------------------------------

    def check(self, repository: str | None = None) -> None:
        """That the upstream answers and accepts the credentials: ``GET /v2/``, the spec's "end-1"."""
        response = self._request("GET", "/v2/", f"repository:{repository}:pull" if repository else "")
        self._ok(response, what="the API version check", unknown=None)

    def head_manifest(self, repository: str, reference: str) -> str:
        """The digest the upstream's ``reference`` names now (a HEAD: Docker Hub does not count it as a pull)."""
        response = self._request(
            "HEAD", f"/v2/{repository}/manifests/{reference}", _scope(repository), accept=MANIFEST_ACCEPT
        )
        self._ok(response, what=f"manifest {repository}:{reference}", unknown=ManifestUnknown)
        digest = response.headers.get("Docker-Content-Digest")
        if digest:
            return str(Digest.parse(digest))
        # Without the header only the body says which manifest it is.
        return self.get_manifest(repository, reference).digest

    def get_manifest(self, repository: str, reference: str) -> UpstreamManifest:
        response = self._request(
            "GET", f"/v2/{repository}/manifests/{reference}", _scope(repository), accept=MANIFEST_ACCEPT, stream=True
        )
        try:
            self._ok(response, what=f"manifest {repository}:{reference}", unknown=ManifestUnknown)
            payload = response.read(MAX_MANIFEST_BYTES + 1, decode_content=True)
        except HTTPError as exc:
            raise UpstreamFailure(f"the upstream registry {self.host} stopped sending the manifest: {exc}") from None
        finally:
            response.release_conn()
        if len(payload) > MAX_MANIFEST_BYTES:
            raise UpstreamFailure(f"the upstream manifest {repository}:{reference} is larger than 4 MiB")
        media_type = (response.headers.get("Content-Type") or "").split(";", 1)[0].strip()
        if ":" in reference:
            wanted = Digest.parse(reference)
            digest = str(Digest.of(payload, wanted.algorithm))
            if digest != reference:
                raise UpstreamFailure(
                    f"the upstream registry {self.host} sent a manifest whose digest is {digest}, not {reference}"
                )
        else:
            digest = str(Digest.of(payload))
        return UpstreamManifest(payload, media_type, digest)

    def head_blob(self, repository: str, digest: str) -> int:
        response = self._request("HEAD", f"/v2/{repository}/blobs/{digest}", _scope(repository))
        self._ok(response, what=f"blob {digest}", unknown=BlobUnknown)
        return _length(response)

    def open_blob(self, repository: str, digest: str) -> UpstreamBlob:
        response = self._request("GET", f"/v2/{repository}/blobs/{digest}", _scope(repository), stream=True)
        try:
            self._ok(response, what=f"blob {digest}", unknown=BlobUnknown)
        except EcrdError:
            response.release_conn()
            raise
        return UpstreamBlob(response, _length(response))

    # -- requests and the auth dance -------------------------------------------------------------------------

    def _request(self, method: str, path: str, scope: str, *, accept: str | None = None, stream: bool = False) -> Any:
        headers = {"Accept": accept} if accept else {}
        key = (self.host, scope, _fingerprint(self.credentials))
        remembered = self.connector._tokens.get(key)
        if remembered is not None and time.monotonic() - remembered[1] < TOKEN_SECONDS:
            headers["Authorization"] = remembered[0]
        response = self._send(method, self.base_url + path, headers, stream)
        if response.status != 401:
            return response
        challenge = response.headers.get("WWW-Authenticate", "")
        # The refusal's body is read off the connection, which then carries the answer to the challenge.
        response.drain_conn()
        response.release_conn()
        authorization = self._answer(challenge, scope)
        self.connector._tokens.put(key, (authorization, time.monotonic()))
        return self._send(method, self.base_url + path, {**headers, "Authorization": authorization}, stream)

    def _answer(self, challenge: str, scope: str) -> str:
        """The Authorization header that answers ``challenge`` (distribution spec, "Token Authentication")."""
        kind, _, params_text = challenge.partition(" ")
        if kind.lower() == "basic":
            if self.credentials is None:
                raise UpstreamFailure(
                    f"the upstream registry {self.host} asks for credentials and the rule has none (credentialArn)"
                )
            return self.credentials.basic
        if kind.lower() != "bearer":
            raise UpstreamFailure(f"the upstream registry {self.host} answered 401 with no usable challenge")
        params = dict(_CHALLENGE_PARAM.findall(params_text))
        realm = params.get("realm")
        if not realm or not realm.startswith(("https://", "http://")):
            raise UpstreamFailure(f"the upstream registry {self.host} named no token endpoint in its challenge")
        query = {"service": params.get("service", "")}
        if params.get("scope") or scope:
            query["scope"] = params.get("scope") or scope
        headers = {"Authorization": self.credentials.basic} if self.credentials else {}
        response = self._send("GET", f"{realm}?{urlencode(query)}", headers, False)
        if response.status != 200:
            raise UpstreamFailure(
                f"the token endpoint of the upstream registry {self.host} answered {response.status}: "
                f"{_error_text(response.data)}"
            )
        try:
            body = json.loads(response.data)
            token = body.get("token") or body.get("access_token")
        except (ValueError, AttributeError):
            token = None
        if not isinstance(token, str) or not token:
            raise UpstreamFailure(f"the token endpoint of the upstream registry {self.host} sent no token")
        return f"Bearer {token}"

    def _send(self, method: str, url: str, headers: dict[str, str], stream: bool) -> Any:
        try:
            return self.connector._pool.request(
                method, url, headers=headers, preload_content=not stream, redirect=True, timeout=self.timeout
            )
        except HTTPError as exc:
            raise UpstreamFailure(f"the upstream registry {self.host} could not be reached: {_reason(exc)}") from None

    def _ok(self, response: Any, *, what: str, unknown: type[EcrdError] | None) -> None:
        status = response.status
        if 200 <= status < 300:
            return
        said = _error_text(response.data if response.headers.get("Content-Length") != "0" else b"")
        message = f"the upstream registry {self.host} answered {status} for {what}" + (f": {said}" if said else "")
        if status == 404 and unknown is not None:
            raise unknown(message)
        raise UpstreamFailure(message)


def _fingerprint(credentials: UpstreamCredentials | None) -> str:
    return hashlib.sha256(credentials.basic.encode()).hexdigest() if credentials else ""


def _scope(repository: str) -> str:
    return f"repository:{repository}:pull"


def _length(response: Any) -> int:
    try:
        return int(response.headers["Content-Length"])
    except (KeyError, ValueError):
        raise UpstreamFailure("the upstream registry sent a blob without its length") from None


def _reason(exc: HTTPError) -> str:
    reason = getattr(exc, "reason", None)
    return str(reason or exc)[:_ERROR_TEXT_LIMIT]


def _error_text(data: bytes | None) -> str:
    """What an upstream's error body says: the spec's ``errors[].message`` (or code), else its text, bounded."""
    if not data:
        return ""
    try:
        errors = json.loads(data).get("errors") or []
        said = "; ".join(f"{e.get('code', '')} {e.get('message', '')}".strip() for e in errors if isinstance(e, dict))
    except (ValueError, AttributeError):
        said = data[:_ERROR_TEXT_LIMIT].decode("utf-8", "replace")
    return said[:_ERROR_TEXT_LIMIT]
