"""The web console at /console: a door for browsers, serving server-rendered pages (decision 0028).

Like the AWS console it is a client of the AWS API: every page runs the API's own operation functions in-process
(``AwsDoor.invoke``) as the signed-in principal, so the one policy engine decides and a denial reads as AWS's.
This module holds only what the composition root needs; the pages, templates and Jinja2 load on the first
request to /console, so a server whose console is never opened does not hold them.
"""

from __future__ import annotations

from dataclasses import dataclass

from starlette.types import ASGIApp, Receive, Scope, Send

from ecrd.aws.door import AwsDoor
from ecrd.config import Settings
from ecrd.services.audit import AuditTrail
from ecrd.services.console_sessions import ConsoleSessions
from ecrd.services.registry_overview import RegistryOverview

CONSOLE_PATH = "/console"


@dataclass(frozen=True, slots=True)
class ConsoleServices:
    settings: Settings
    aws: AwsDoor
    sessions: ConsoleSessions
    overview: RegistryOverview
    audit: AuditTrail


def is_console_path(path: str) -> bool:
    return path == CONSOLE_PATH or path.startswith(CONSOLE_PATH + "/")


class Console:
    """The console's ASGI application, built on its first request."""

    def __init__(self, services: ConsoleServices) -> None:
        self.services = services
        self._app: ASGIApp | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self._app is None:
            from ecrd.console.web import console_app

            self._app = console_app(self.services)
        await self._app(scope, receive, send)


__all__ = ["CONSOLE_PATH", "Console", "ConsoleServices", "is_console_path"]
