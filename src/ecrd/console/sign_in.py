"""Signing in to the console and out of it.

The sign-in page asks, as AWS's does, for the account, the user name and the password — or, as the alternative,
an access key pair. Every attempt is audited as ``signin:ConsoleLogin`` (CloudTrail's event for it), a failure
as a denial; failures are limited per user and per address (``ConsoleSessions``). The form's CSRF token is keyed
by a cookie of its own, as no session exists yet.
"""

from __future__ import annotations

import re
import secrets
from typing import Final

import anyio
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from ecrd.console import CONSOLE_PATH, ConsoleServices
from ecrd.console.web import (
    CSRF_FIELD,
    SESSION_COOKIE,
    SIGN_IN_COOKIE,
    client_ip,
    read_form,
    render,
    set_cookie,
    url,
)
from ecrd.domain.registries import RegistryId
from ecrd.errors import EcrdError, PayloadTooLarge
from ecrd.observability import record_of
from ecrd.services.console_sessions import csrf_matches, csrf_token_of

SIGN_IN_ACTION: Final = "signin:ConsoleLogin"
SIGN_OUT_ACTION: Final = "signin:ConsoleLogout"
_FORM_SECONDS: Final = 3600


def _next(target: str | None) -> str:
    """Where to go after signing in: a console page only, never another site."""
    if target and target.startswith(CONSOLE_PATH + "/") and not target.startswith("//") and "\\" not in target:
        return target
    return url("")


def _sign_in_page(
    request: Request,
    services: ConsoleServices,
    *,
    error: str = "",
    status: int = 200,
    form: dict[str, str] | None = None,
) -> Response:
    token = request.cookies.get(SIGN_IN_COOKIE) or secrets.token_urlsafe(32)
    values = form or {}
    response = render(
        "signin.html",
        {
            "csrf_token": csrf_token_of(token),
            "error": error,
            "next": _next(values.get("next") or request.query_params.get("next")),
            "account": values.get("account", services.settings.account_id),
            "user_name": values.get("user_name", ""),
            "access_key_id": values.get("access_key_id", ""),
            "method": values.get("method", "password"),
            "session": None,
            "principal": "",
            "notice": "",
        },
        status=status,
    )
    set_cookie(response, request, services, SIGN_IN_COOKIE, token, age=_FORM_SECONDS)
    return response


def routes(services: ConsoleServices) -> list[BaseRoute]:
    async def sign_in_page(request: Request) -> Response:
        return _sign_in_page(request, services)

    async def sign_in(request: Request) -> Response:
        record = record_of(request.scope)
        record.action = SIGN_IN_ACTION
        try:
            form = await read_form(request)
        except PayloadTooLarge as exc:
            record.error_code = "AccessDenied"
            return _sign_in_page(request, services, error=exc.message, status=413)
        if not csrf_matches(request.cookies.get(SIGN_IN_COOKIE, ""), form.get(CSRF_FIELD, "")):
            record.error_code = "AccessDenied"
            return _sign_in_page(
                request, services, error="The sign-in form has expired. Please try again.", status=403, form=form
            )
        account = form.get("account", "")
        # The account as named, when it is an account id at all (the log must not carry arbitrary text): the
        # attempt, allowed or not, is on that account's trail, as CloudTrail records a ConsoleLogin.
        named = account.strip() if re.fullmatch(r"[0-9]{12}", account.strip()) else None
        if named is not None:
            record.registry = RegistryId(named, services.settings.region)
        source_ip = client_ip(request)
        if form.get("method") == "access_key":
            key_id = form.get("access_key_id", "").strip()
            record.principal = f"access key {key_id[:128]}"

            def attempt() -> str:
                return services.sessions.sign_in_with_access_key(
                    account, key_id, form.get("secret_access_key", ""), source_ip=source_ip
                )
        else:
            user_name = form.get("user_name", "").strip()
            record.principal = f"arn:aws:iam::{named or services.settings.account_id}:user/{user_name[:128]}"

            def attempt() -> str:
                return services.sessions.sign_in_with_password(
                    account, user_name, form.get("password", ""), source_ip=source_ip
                )

        try:
            session_id = await anyio.to_thread.run_sync(attempt)
        except EcrdError as exc:
            record.error_code = "AccessDenied"
            return _sign_in_page(request, services, error=exc.message, status=exc.oci_status, form=form)
        response = RedirectResponse(_next(form.get("next")), status_code=303)
        set_cookie(
            response, request, services, SESSION_COOKIE, session_id, age=services.settings.console_session_minutes * 60
        )
        response.delete_cookie(SIGN_IN_COOKIE, path=CONSOLE_PATH)
        return response

    async def sign_out(request: Request) -> Response:
        record = record_of(request.scope)
        record.action = SIGN_OUT_ACTION
        session_id = request.cookies.get(SESSION_COOKIE, "")
        form = await read_form(request)
        # Signing out is harmless to forge, but a page of another site must not end a session either.
        if session_id and csrf_matches(session_id, form.get(CSRF_FIELD, "")):
            session = await anyio.to_thread.run_sync(services.sessions.resume, session_id)
            if session is not None:
                record.principal = session.caller.arn
            await anyio.to_thread.run_sync(services.sessions.sign_out, session_id)
        response = RedirectResponse(url("signin"), status_code=303)
        response.delete_cookie(SESSION_COOKIE, path=CONSOLE_PATH)
        return response

    return [
        Route(CONSOLE_PATH + "/signin", sign_in_page, methods=["GET"]),
        Route(CONSOLE_PATH + "/signin", sign_in, methods=["POST"]),
        Route(CONSOLE_PATH + "/signout", sign_out, methods=["POST"]),
    ]
