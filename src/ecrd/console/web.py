"""The console's web layer: routes, the session cookie, CSRF checks, form parsing, and rendering pages.

Every page handler is a blocking function of a ``View`` (run in a worker thread): the signed-in session, the
query and form, and ``call`` — an AWS operation run as the session's principal. Errors the services raise are
shown on the page in AWS's words (an AccessDenied as AWS words it); nothing else reaches the browser but a
request id.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final
from urllib.parse import parse_qsl, quote, urlencode

import anyio
import jinja2
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route, Router
from starlette.staticfiles import StaticFiles

from ecrd.aws.context import AwsContext, AwsServices
from ecrd.console import CONSOLE_PATH, ConsoleServices
from ecrd.domain.registries import RegistryId
from ecrd.errors import AccessDenied, EcrdError, InternalError, PayloadTooLarge
from ecrd.observability import RequestRecord, record_of
from ecrd.services.console_sessions import ConsoleSession, csrf_matches

log = logging.getLogger("ecrd.console")

SESSION_COOKIE: Final = "ecrd_console_session"
# The sign-in form has no session yet: its CSRF token is keyed by a cookie of its own (double submit).
SIGN_IN_COOKIE: Final = "ecrd_console_sign_in"
# The region the pages show, as last chosen: a preference, not a secret.
REGION_COOKIE: Final = "ecrd_console_region"
REGION_COOKIE_SECONDS: Final = 30 * 86400
CSRF_FIELD: Final = "csrf_token"
# The largest form: a policy of up to 10,240 characters (ECR's quota) or a lifecycle policy of 30,720, each
# character up to nine bytes form-encoded.
FORM_BYTES: Final = 512 * 1024
# No script, style, font or image from anywhere but the console itself: it works air-gapped, and injected
# markup cannot load or run anything.
SECURITY_HEADERS: Final = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


def url(path: str = "", **query: object) -> str:
    """A console URL: ``path`` below /console, its segments quoted, and the query (None values left out)."""
    target = CONSOLE_PATH + "/" + quote(path.lstrip("/"), safe="/:@")
    shown = {key: value for key, value in query.items() if value not in (None, "")}
    return target + ("?" + urlencode(shown) if shown else "")


def _size(value: object) -> str:
    number = float(value) if isinstance(value, int | float) else 0.0
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if number < 1024 or unit == "TiB":
            return f"{number:.0f} {unit}" if unit == "B" else f"{number:.1f} {unit}"
        number /= 1024
    return f"{number:.1f} TiB"


def _when(value: object) -> str:
    if isinstance(value, dt.datetime):
        moment = value.astimezone(dt.UTC)
    elif isinstance(value, int | float):
        moment = dt.datetime.fromtimestamp(value, dt.UTC)
    else:
        return "—"
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC")


def _short(digest: object) -> str:
    text = str(digest or "")
    return text[:19] if text.startswith("sha256:") else text


_TEMPLATES: Final = jinja2.Environment(
    loader=jinja2.PackageLoader("ecrd.console", "templates"),
    autoescape=True,
    undefined=jinja2.ChainableUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
_TEMPLATES.filters.update(size=_size, when=_when, short=_short)
_TEMPLATES.globals.update(url=url)


def render(template: str, context: Mapping[str, Any], *, status: int = 200) -> HTMLResponse:
    html = _TEMPLATES.get_template(template).render(**context)
    return HTMLResponse(html, status_code=status, headers=SECURITY_HEADERS)


@dataclass
class View:
    """One request of a signed-in principal, as a page handler sees it."""

    services: ConsoleServices
    session: ConsoleSession
    record: RequestRecord
    path_params: Mapping[str, str]
    query: Mapping[str, str]
    form: Mapping[str, str] = field(default_factory=dict)
    method: str = "GET"
    # The region chosen (``region_of``): the deployment's default until another is.
    region: str = ""
    # What the request log records of a form's write, kept while the page is read again to show its outcome.
    _pinned: tuple[str, str | None, str | None] | None = None

    def pin_record(self) -> None:
        """Keep the record of the write just done (or refused): the reads that follow must not replace it."""
        self._pinned = (self.record.action, self.record.repository, self.record.error_code)

    def restore_record(self) -> None:
        if self._pinned is not None:
            self.record.action, self.record.repository, self.record.error_code = self._pinned

    @property
    def registry_id(self) -> RegistryId:
        """The registry the console shows: the signed-in principal's account, in the region chosen."""
        return RegistryId(self.session.caller.account_id, self.region or self.services.settings.region)

    @property
    def registry(self) -> AwsServices:
        """The services of ``registry_id`` (built on first use: call from the handler's worker thread)."""
        return self.services.aws.registries.aws(self.registry_id)

    def call(self, service: str, operation: str, **params: Any) -> dict[str, Any]:
        """The AWS operation, run as the session's principal: authorized, validated and audited as the API's."""
        context = AwsContext(self.session.caller, self.registry, self.record.request_id, self.record)
        return self.services.aws.invoke(context, service, operation, params)

    def may(self, action: str, resource: str, *, repository: str | None = None) -> bool:
        """Whether the principal may do ``action`` (to show or hide a button; the action itself is authorized
        again when it runs)."""
        try:
            self.registry.access.authorizer.authorize(self.session.caller, action, resource, repository=repository)
        except AccessDenied:
            return False
        return True

    def may_on_repository(self, action: str, name: str) -> bool:
        return self.may(action, self.registry.access.repository_arn(name), repository=name)

    def authorize(self, action: str, resource: str, *, repository: str | None = None) -> None:
        """Authorize an action that is no AWS API operation of its own (a console page's read), as the API would."""
        self.record.action = action
        self.registry.access.authorizer.authorize(self.session.caller, action, resource, repository=repository)

    @property
    def registry_host(self) -> str:
        """Where docker reaches ``registry_id``: its ECR host name under the registry domain, else the public
        host (the default registry's)."""
        return self.services.settings.registry_host_for(self.registry_id)

    def page(self, template: str, *, http_status: int = 200, **context: Any) -> HTMLResponse:
        return render(template, {**self.base_context(), **context}, status=http_status)

    def base_context(self) -> dict[str, Any]:
        settings = self.services.settings
        return {
            "session": self.session,
            "principal": self.session.caller.arn,
            "csrf_token": self.session.csrf_token,
            "account_id": self.registry_id.account_id,
            "region": self.registry_id.region,
            "registry_host": self.registry_host,
            "regions": sorted(self.services.settings.served_regions),
            "endpoint_url": settings.resolved_public_url,
            "notice": "",
            "error": "",
        }


Handler = Callable[[View], Response]


async def read_form(request: Request) -> dict[str, str]:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > FORM_BYTES:
        raise PayloadTooLarge(f"The form exceeds {FORM_BYTES} bytes")
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > FORM_BYTES:
            raise PayloadTooLarge(f"The form exceeds {FORM_BYTES} bytes")
    try:
        return dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True))
    except UnicodeDecodeError:
        return {}


def client_ip(request: Request) -> str:
    return request.client.host if request.client else ""


def _secure(request: Request, services: ConsoleServices) -> bool:
    return request.url.scheme == "https" or services.settings.resolved_public_url.startswith("https://")


def set_cookie(
    response: Response, request: Request, services: ConsoleServices, name: str, value: str, *, age: int
) -> None:
    """A console cookie: never readable by scripts, never sent with a cross-site request, HTTPS-only when the
    console is served over HTTPS, and only to /console."""
    response.set_cookie(
        name,
        value,
        max_age=age,
        path=CONSOLE_PATH,
        httponly=True,
        samesite="strict",
        secure=_secure(request, services),
    )


_NO_CONTEXT: Final = {"session": None, "principal": "", "csrf_token": "", "notice": "", "error": ""}


def error_page(
    exc: EcrdError, record: RequestRecord, context: Mapping[str, Any], *, status: int | None = None
) -> HTMLResponse:
    if status is None:
        status = exc.oci_status if exc.oci_status in (400, 401, 403, 404, 409, 413, 429) else 400
    shown = {**_NO_CONTEXT, **context, "message": exc.message, "request_id": record.request_id}
    return render("error.html", shown, status=status)


def region_of(request: Request, services: ConsoleServices) -> str:
    """The region the pages show: the one a page's ``?region=`` names, else the one chosen before (a cookie),
    else the default; a name the deployment does not serve is no choice. Switching is harmless to forge (it
    changes only what is shown, and the header says which region it is), so a plain link may do it."""
    served = services.settings.served_regions
    for chosen in (request.query_params.get("region"), request.cookies.get(REGION_COOKIE)):
        if chosen is not None and chosen in served:
            return chosen
    return services.settings.region


def _session_context(session: ConsoleSession) -> dict[str, Any]:
    return {"session": session, "principal": session.caller.arn, "csrf_token": session.csrf_token}


def page(services: ConsoleServices, handler: Handler) -> Callable[[Request], Awaitable[Response]]:
    """The Starlette endpoint of a page: resume the session (else to sign-in), check the CSRF token of a form,
    run the handler in a worker thread, and show what went wrong in AWS's words."""

    async def endpoint(request: Request) -> Response:
        record = record_of(request.scope)
        session = await anyio.to_thread.run_sync(
            lambda: services.sessions.resume(
                request.cookies.get(SESSION_COOKIE, ""),
                source_ip=client_ip(request),
                secure_transport=request.url.scheme == "https",
            )
        )
        if session is None:
            target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            return RedirectResponse(url("signin", next=target), status_code=303)
        record.principal = session.caller.arn
        form: dict[str, str] = {}
        if request.method == "POST":
            try:
                form = await read_form(request)
            except PayloadTooLarge as exc:
                return error_page(exc, record, _session_context(session))
            if not csrf_matches(session.session_id, form.get(CSRF_FIELD, "")):
                record.action = "console:Form"
                record.error_code = "AccessDenied"
                denied = AccessDenied("The form has expired or did not come from this console. Reload the page.")
                return error_page(denied, record, _session_context(session))
        if session.must_change_password and not request.url.path.startswith(url("change-password")):
            return RedirectResponse(url("change-password"), status_code=303)
        region = region_of(request, services)
        view = View(
            services,
            session,
            record,
            request.path_params,
            dict(request.query_params),
            form,
            request.method,
            region,
        )
        record.registry = view.registry_id
        try:
            response = await anyio.to_thread.run_sync(handler, view)
            if request.query_params.get("region") == region != request.cookies.get(REGION_COOKIE):
                set_cookie(response, request, services, REGION_COOKIE, region, age=REGION_COOKIE_SECONDS)
            return response
        except EcrdError as exc:
            record.error_code = exc.aws_type
            return error_page(exc, record, view.base_context())
        except Exception:
            # A fault of ours: the browser gets the request id, the log the traceback.
            log.exception("internal error in the console (request id %s)", record.request_id)
            fault = InternalError("Something went wrong on the server. Quote the request id when reporting it.")
            return error_page(fault, record, view.base_context(), status=500)
        finally:
            view.restore_record()

    return endpoint


def console_app(services: ConsoleServices) -> Router:
    from ecrd.console import pages, sign_in

    routes: list[BaseRoute] = [
        Route(CONSOLE_PATH, lambda request: RedirectResponse(url(""), status_code=303)),
        *sign_in.routes(services),
        *[
            Route(CONSOLE_PATH + path, page(services, handler), methods=methods)
            for path, handler, methods in pages.PAGES
        ],
        Mount(CONSOLE_PATH + "/static", StaticFiles(packages=[("ecrd.console", "static")]), name="static"),
    ]
    return Router(routes)
