"""The /v2/ door: route, authenticate, map to an ECR action, call the handler, render errors once."""

from __future__ import annotations

import base64
import functools
import logging
from collections.abc import Awaitable, Callable

import anyio
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from ecrd.domain.names import check_repository_name
from ecrd.errors import AuthenticationError, EcrdError, NotFound, RepositoryNotFound, UnsupportedOperation
from ecrd.observability import RequestRecord, record_of
from ecrd.oci import blobs, listing, manifests, uploads
from ecrd.oci.actions import action_for
from ecrd.oci.context import OciRegistries, OciRequest, OciServices
from ecrd.oci.protocol import API_VERSION, API_VERSION_HEADER, ROUTES
from ecrd.oci.responses import render_error, render_internal_error
from ecrd.services.access import Caller
from ecrd.services.identity import RegistryAuthenticator
from ecrd.services.tokens import download_scope

log = logging.getLogger("ecrd.oci")

Handler = Callable[[OciRequest], Awaitable[Response]]
BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
_API_VERSION_RAW = (API_VERSION_HEADER.lower().encode("latin-1"), API_VERSION.encode("latin-1"))

HANDLERS: dict[tuple[str, str], Handler] = {
    ("base", "GET"): listing.get_base,
    ("base", "HEAD"): listing.get_base,
    ("catalog", "GET"): listing.get_catalog,
    ("tags", "GET"): listing.get_tags,
    ("referrers", "GET"): listing.get_referrers,
    ("manifest", "GET"): manifests.get_manifest,
    ("manifest", "HEAD"): manifests.get_manifest,
    ("manifest", "PUT"): manifests.put_manifest,
    ("manifest", "DELETE"): manifests.delete_manifest,
    ("blob", "GET"): blobs.get_blob,
    ("blob", "HEAD"): blobs.get_blob,
    ("blob", "DELETE"): blobs.delete_blob,
    ("upload", "POST"): uploads.post_upload,
    ("upload", "PATCH"): uploads.patch_upload,
    ("upload", "PUT"): uploads.put_upload,
    ("upload", "GET"): uploads.get_upload,
    ("upload", "DELETE"): uploads.delete_upload,
}


class OciDoor:
    def __init__(self, registries: OciRegistries, *, realm: str) -> None:
        self.registries = registries
        # ECR challenges with Basic auth, naming its endpoint as the realm.
        self.challenge = f'Basic realm="{realm}/",service="ecr.amazonaws.com"'

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        try:
            response = await self._handle(request)
        except ClientDisconnect:
            return
        response.raw_headers.append(_API_VERSION_RAW)
        if response.status_code >= 400 and scope["method"] in BODY_METHODS:
            # An upload refused before its body was read leaves the body unread on the connection: say the
            # connection ends here, so a pooling client does not send its next request into it.
            response.raw_headers.append((b"connection", b"close"))
        await response(scope, receive, send)

    async def _handle(self, request: Request) -> Response:
        try:
            return await self._dispatch(request)
        except AuthenticationError as exc:
            record = record_of(request.scope)
            record.error_code = exc.oci_code
            record.challenge = "authorization" not in request.headers and "token" not in request.query_params
            return render_error(exc, extra_headers={"WWW-Authenticate": self.challenge})
        except EcrdError as exc:
            record_of(request.scope).error_code = exc.oci_code
            return render_error(exc)
        except ClientDisconnect:
            raise
        except Exception:
            record = record_of(request.scope)
            log.exception(
                "internal error handling %s %s (request id %s)",
                request.method,
                request.scope["path"],
                record.request_id,
            )
            return render_internal_error(record)

    async def _dispatch(self, request: Request) -> Response:
        # The scope's own strings: Request.url would build (and parse back) the whole URL.
        path: str = request.scope["path"]
        method: str = request.scope["method"]
        for route, marker, pattern in ROUTES:
            if marker not in path:
                continue  # the pattern cannot match without its fixed text: one substring test, not a regex
            match = pattern.fullmatch(path)
            if match is None:
                continue
            params = match.groupdict()
            if "name" in params:
                check_repository_name(params["name"])
            handler = HANDLERS.get((route, method))
            if handler is None:
                raise UnsupportedOperation(f"method {method} is not supported on this endpoint")
            record = record_of(request.scope)
            record.action = action_for(route, method) or "-"
            record.operation = f"{route}:{method}"
            record.repository = params.get("name")
            services, authenticator = await self._registry(request)
            authenticate = functools.partial(
                self._authenticate_and_record, authenticator, request, route, params, record
            )
            req = OciRequest(request, route, params, action_for(route, method), authenticate, services)
            return await handler(req)
        return render_error(NotFound("no such endpoint", detail={"path": path[:200]}))

    async def _registry(self, request: Request) -> tuple[OciServices, RegistryAuthenticator]:
        """The services of the registry the request's host names."""
        host = ""
        for name, value in request.scope["headers"]:
            if name == b"host":
                host = value.decode("latin-1")
                break
        registry = self.registries.known_registry_of_host(host)
        if registry is None:
            # An account not seen yet (or none at all) is a store read: never on the event loop.
            registry = await anyio.to_thread.run_sync(self.registries.registry_of_host, host)
        if registry is not None:
            record_of(request.scope).registry = registry
        if registry is None:
            # ECR's host names of an account or region not served here.
            raise RepositoryNotFound("no registry of this host name is served here", detail={"host": host[:200]})
        return self.registries.oci(registry)

    def _authenticate_and_record(
        self,
        authenticator: RegistryAuthenticator,
        request: Request,
        route: str,
        params: dict[str, str],
        record: RequestRecord,
    ) -> Caller:
        caller = self._authenticate(authenticator, request, route, params)
        record.principal = caller.arn
        return caller

    @staticmethod
    def _authenticate(
        authenticator: RegistryAuthenticator, request: Request, route: str, params: dict[str, str]
    ) -> Caller:
        client = request.scope.get("client")
        authorization = request.headers.get("authorization")
        # Only a presigned download carries a query; parsing an empty one costs as much as the rest of this.
        token = request.query_params.get("token") if request.scope.get("query_string") else None
        scope = None
        if authorization is None and token and route == "blob" and request.method == "GET":
            # GetDownloadUrlForLayer hands out blob URLs carrying a token scoped to that one blob.
            authorization = "Basic " + base64.b64encode(f"AWS:{token}".encode()).decode()
            scope = download_scope(params["name"], params["digest"])
        return authenticator.authenticate(
            authorization,
            source_ip=client[0] if client else "",
            secure=request.scope.get("scheme") == "https",
            scope=scope,
        )
