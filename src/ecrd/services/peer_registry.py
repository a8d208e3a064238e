"""Talking to a peer: another ecrd deployment that serves a replication destination. Its AWS API is called with
requests signed (SigV4) by the access key configured for the peer — to find or create the destination
repository and to get a registry token — and images are pushed to its ``/v2/`` door with that token, over the
OCI distribution protocol, as any client would push them. Blobs stream from the local blob store to the peer;
none is held whole.

Failures become ``PeerFailure``s carrying a replication failure code: the peer refused the key or the action
(DESTINATION_ACCESS_DENIED), refused the image (DESTINATION_REFUSED_IMAGE), or could not be reached or failed
itself (DESTINATION_UNREACHABLE, the only kind worth retrying).
"""

from __future__ import annotations

import json
import ssl
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any, Final
from urllib.parse import quote, urljoin

import urllib3
from urllib3.exceptions import HTTPError

from ecrd.domain.replication import DESTINATION_ACCESS_DENIED, DESTINATION_REFUSED_IMAGE, DESTINATION_UNREACHABLE
from ecrd.domain.sigv4 import sign_request
from ecrd.errors import PeerFailure

ECR_TARGET_PREFIX: Final = "AmazonEC2ContainerRegistry_V20150921."
TIMEOUT: Final = urllib3.Timeout(connect=10.0, read=60.0)
# A token is used until this long before it expires (ecrd's and ECR's last 12 hours).
TOKEN_MARGIN_SECONDS: Final = 300.0
_ERROR_TEXT_LIMIT: Final = 300


class PeerConnector:
    """The connections to every peer: one pool manager, trusting the system's CAs and ``ca_file``."""

    def __init__(self, *, ca_file: str = "", clock: Callable[[], float] = time.time) -> None:
        context = ssl.create_default_context()
        if ca_file:
            context.load_verify_locations(cafile=ca_file)
        self.clock = clock
        self._pool = urllib3.PoolManager(ssl_context=context, timeout=TIMEOUT, retries=False)
        # (url, access key id, region) → (Authorization for /v2/, valid until)
        self._tokens: dict[tuple[str, str, str], tuple[str, float]] = {}

    def registry(self, url: str, *, access_key_id: str, secret_access_key: str, region: str) -> PeerRegistry:
        return PeerRegistry(self, url.rstrip("/"), access_key_id, secret_access_key, region)

    def close(self) -> None:
        self._pool.clear()


class PeerRegistry:
    """One peer, as one access key sees it."""

    def __init__(
        self, connector: PeerConnector, url: str, access_key_id: str, secret_access_key: str, region: str
    ) -> None:
        self.connector = connector
        self.url = url
        self.access_key_id = access_key_id
        self._secret = secret_access_key
        self.region = region

    def __repr__(self) -> str:
        return f"PeerRegistry({self.url!r}, access_key_id={self.access_key_id!r}, region={self.region!r})"

    # -- the AWS API -----------------------------------------------------------------------------------------

    def ecr(self, operation: str, params: dict[str, Any]) -> dict[str, Any]:
        """Call one ECR operation on the peer; its answer, or ``PeerFailure`` naming the peer's error."""
        body = json.dumps(params).encode()
        headers = sign_request(
            method="POST",
            url=self.url + "/",
            headers={"content-type": "application/x-amz-json-1.1", "x-amz-target": ECR_TARGET_PREFIX + operation},
            body=body,
            access_key_id=self.access_key_id,
            secret_access_key=self._secret,
            region=self.region,
            service="ecr",
            now=datetime.fromtimestamp(self.connector.clock(), UTC),
        )
        response = self._send("POST", self.url + "/", headers=headers, body=body)
        data = response.data
        if response.status == 200:
            return json.loads(data) if data else {}
        error = _json(data)
        code = str(error.get("__type", "")).rsplit("#", 1)[-1] or f"HTTP {response.status}"
        message = str(error.get("message") or error.get("Message") or "")[:_ERROR_TEXT_LIMIT]
        raise PeerFailure(
            f"the peer registry at {self.url} answered {operation} with {code}: {message}",
            failure_code=_failure_code(response.status, code),
            peer_code=code,
        )

    def ensure_repository(self, name: str) -> None:
        """That the destination repository exists, made with the peer's defaults when it does not."""
        try:
            self.ecr("DescribeRepositories", {"repositoryNames": [name]})
        except PeerFailure as exc:
            if exc.peer_code != "RepositoryNotFoundException":
                raise
            try:
                self.ecr("CreateRepository", {"repositoryName": name})
            except PeerFailure as created:
                if created.peer_code != "RepositoryAlreadyExistsException":  # made meanwhile by another push
                    raise

    def _authorization(self) -> str:
        key = (self.url, self.access_key_id, self.region)
        now = self.connector.clock()
        cached = self.connector._tokens.get(key)
        if cached is not None and now < cached[1]:
            return str(cached[0])
        answer = self.ecr("GetAuthorizationToken", {})
        data = answer["authorizationData"][0]
        expires = float(data.get("expiresAt", now + 3600.0))
        authorization = "Basic " + str(data["authorizationToken"])
        self.connector._tokens[key] = (authorization, expires - TOKEN_MARGIN_SECONDS)
        return authorization

    # -- the /v2/ door ---------------------------------------------------------------------------------------

    def blob_exists(self, repository: str, digest: str) -> bool:
        response = self._v2("HEAD", f"/v2/{repository}/blobs/{digest}")
        if response.status == 404:
            return False
        self._check(response, f"HEAD of blob {digest}")
        return True

    def push_blob(
        self, repository: str, digest: str, size: int, chunks: Iterable[bytes | bytearray | memoryview]
    ) -> None:
        """Upload one blob in a single PUT whose body streams ``chunks`` (``size`` bytes in all)."""
        started = self._v2("POST", f"/v2/{repository}/blobs/uploads/")
        self._check(started, f"the start of an upload of {digest}")
        location = started.headers.get("Location", "")
        separator = "&" if "?" in location else "?"
        target = urljoin(self.url + "/", location) + f"{separator}digest={quote(digest, safe=':')}"
        response = self._send(
            "PUT",
            target,
            headers={
                "authorization": self._authorization(),
                "content-type": "application/octet-stream",
                "content-length": str(size),
            },
            body=(bytes(chunk) for chunk in chunks),
        )
        self._check(response, f"the upload of {digest}")

    def put_manifest(self, repository: str, reference: str, payload: bytes, media_type: str) -> None:
        response = self._v2(
            "PUT", f"/v2/{repository}/manifests/{reference}", body=payload, headers={"content-type": media_type}
        )
        self._check(response, f"the manifest {reference}")

    def delete_manifest(self, repository: str, reference: str) -> None:
        """Delete an image (by digest) or remove a tag, the image staying (by tag); one already gone is fine."""
        response = self._v2("DELETE", f"/v2/{repository}/manifests/{reference}")
        if response.status == 404:
            return
        self._check(response, f"the deletion of {reference}")

    # -- plumbing --------------------------------------------------------------------------------------------

    def _v2(self, method: str, path: str, *, body: bytes | None = None, headers: dict[str, str] | None = None) -> Any:
        return self._send(
            method, self.url + path, headers={"authorization": self._authorization(), **(headers or {})}, body=body
        )

    def _send(self, method: str, url: str, *, headers: dict[str, str], body: Any = None) -> Any:
        try:
            return self.connector._pool.request(method, url, headers=headers, body=body, redirect=False)
        except HTTPError as exc:
            raise PeerFailure(
                f"the peer registry at {self.url} could not be reached: {exc}", failure_code=DESTINATION_UNREACHABLE
            ) from None

    def _check(self, response: Any, what: str) -> None:
        if 200 <= response.status < 300:
            return
        errors = _json(response.data).get("errors") or [{}]
        code = str(errors[0].get("code") or f"HTTP {response.status}")
        message = str(errors[0].get("message") or "")[:_ERROR_TEXT_LIMIT]
        raise PeerFailure(
            f"the peer registry at {self.url} refused {what}: {code} {message}".rstrip(),
            failure_code=_failure_code(response.status, code),
            peer_code=code,
        )


def _json(data: bytes | None) -> dict[str, Any]:
    try:
        value = json.loads(data or b"{}")
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _failure_code(status: int, code: str) -> str:
    if status in (401, 403) or code in ("AccessDeniedException", "UnrecognizedClientException", "DENIED"):
        return DESTINATION_ACCESS_DENIED
    if status >= 500 or status == 429:
        return DESTINATION_UNREACHABLE
    return DESTINATION_REFUSED_IMAGE
