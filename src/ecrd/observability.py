"""Operators' view of every request: one structured log line each, and the audit trail of writes and denials.

``RequestLog`` wraps the application. The doors fill in the request's ``RequestRecord`` (who, which action,
which repository, which error) as they learn it; when the response is sent the record becomes a JSON log line
on the ``ecrd.access`` logger and, for writes and denials, an audit event in the metadata store. Nothing secret
is logged: no headers, no bodies, no query strings (they may carry registry tokens).
"""

from __future__ import annotations

import itertools
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from json.encoder import encode_basestring_ascii  # type: ignore[attr-defined]
from typing import Protocol

import anyio
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ecrd.domain.records import AuditEvent
from ecrd.domain.registries import RegistryId

access_log = logging.getLogger("ecrd.access")
log = logging.getLogger("ecrd")

SCOPE_KEY = "ecrd.record"
READ_VERBS = ("Describe", "List", "Get", "BatchGet", "BatchCheck")
DENIAL_CODES = frozenset({"DENIED", "UNAUTHORIZED", "AccessDeniedException", "AccessDenied", "KmsException"})


def lean_log_records() -> None:
    """Log records without thread and process names, nor the caller's file and line: no format here shows them,
    and looking them up costs a third of a small request's logging (the caller by walking the stack, which
    the logging module skips when ``_srcfile`` is None, as its source invites). Called in every server worker."""
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    logging._srcfile = None


# Request ids are UUIDs in form (AWS's RequestId is one): a random prefix drawn once per process, then a counter.
# As unique as a fresh uuid4 each time across processes and nodes, at a tenth of its cost.
_ID_PREFIX = str(uuid.uuid4())[:24]
_id_counter = itertools.count()


def new_request_id() -> str:
    return f"{_ID_PREFIX}{next(_id_counter) & 0xFFFFFFFFFFFF:012x}"


def access_line(
    method: str,
    path: str,
    status: int,
    record: RequestRecord,
    counts: dict[str, int],
    seconds: float,
    source_ip: str,
) -> str:
    """The request's access line: one JSON object, the same text ``json.dumps`` would make of its fields
    (strings escaped to ASCII, compact separators), written out field by field at a third of the cost."""
    return (
        f'{{"requestId":{_text(record.request_id)},"method":{_text(method)},"path":{_text(path)},'
        f'"status":{int(status)},"principal":{_text(record.principal)},"action":{_text(record.action)},'
        f'"repository":{_text(record.repository)},"error":{_text(record.error_code)},'
        f'"bytesIn":{int(counts["in"])},"bytesOut":{int(counts["out"])},'
        f'"durationMs":{round(seconds * 1000, 2)!r},"sourceIp":{_text(source_ip)}}}'
    )


def _text(value: str | None) -> str:
    return "null" if value is None else encode_basestring_ascii(value)


@dataclass
class RequestRecord:
    request_id: str = field(default_factory=new_request_id)
    principal: str = "-"
    action: str = "-"
    repository: str | None = None
    error_code: str | None = None
    # The operation for the metrics: the AWS operation (``ecr:BatchGetImage``) or the OCI route and method
    # (``manifest:GET``), set only once the door knows it names one of its own: a bounded set of values.
    operation: str = "-"
    # A request that carried no credentials at all and was answered with the registry's auth challenge: how
    # docker, podman and skopeo begin every session. The log shows it; the audit trail does not count it a denial.
    challenge: bool = False
    # A response whose outcome is known only once its body is whole (a blob imported from an upstream as it is
    # sent): audited before its last part goes out, or as failed when it ends short.
    audit_when_complete: bool = False
    # The registry the request is answered in, once a door knows it: whose audit trail its event is on.
    registry: RegistryId | None = None


def record_of(scope: Scope) -> RequestRecord:
    """The request's record (a detached one when no RequestLog wraps the application, as in some tests)."""
    found = scope.get(SCOPE_KEY)
    if not isinstance(found, RequestRecord):
        found = RequestRecord()
        scope[SCOPE_KEY] = found
    return found


def is_write(action: str) -> bool:
    verb = action.split(":", 1)[-1]
    return action != "-" and not verb.startswith(READ_VERBS)


class AuditSink(Protocol):
    def record(self, event: AuditEvent) -> None: ...


class RequestObserver(Protocol):
    def observe_request(
        self, path: str, operation: str, status: int, bytes_in: int, bytes_out: int, seconds: float
    ) -> None:
        """Count one finished request (the metrics)."""
        ...


class RequestLog:
    def __init__(
        self,
        app: ASGIApp,
        audit: AuditSink | None,
        *,
        clock: Callable[[], float] = time.time,
        observer: RequestObserver | None = None,
    ) -> None:
        self.app = app
        self.audit = audit
        self.clock = clock
        self.observer = observer

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] == "/healthz":
            await self.app(scope, receive, send)
            return
        record = record_of(scope)
        started = time.perf_counter()
        counts = {"in": 0, "out": 0, "status": 0}
        audited = False

        async def counting_receive() -> Message:
            message = await receive()
            if message["type"] == "http.request":
                counts["in"] += len(message.get("body", b""))
            return message

        async def counting_send(message: Message) -> None:
            nonlocal audited
            if message["type"] == "http.response.start":
                counts["status"] = message["status"]
            elif message["type"] == "http.response.body":
                counts["out"] += len(message.get("body", b""))
            complete = message["type"] == "http.response.body" and not message.get("more_body", False)
            if not audited and (
                complete or (message["type"] == "http.response.start" and not record.audit_when_complete)
            ):
                # Audited before the client hears the outcome: an acknowledged write is always on record.
                audited = True
                await self._audit(scope, record, counts["status"])
            await send(message)

        try:
            await self.app(scope, counting_receive, counting_send)
        finally:
            if not audited and record.audit_when_complete and counts["status"]:
                # The body ended short after a successful start: the write it stood for failed.
                await self._audit(scope, record, counts["status"], failed=True)
            await self._finish(scope, record, counts, time.perf_counter() - started)

    async def _finish(self, scope: Scope, record: RequestRecord, counts: dict[str, int], seconds: float) -> None:
        status = counts["status"] or 499  # 499: the client went away before a response began
        if self.observer is not None:
            self.observer.observe_request(scope["path"], record.operation, status, counts["in"], counts["out"], seconds)
        if not access_log.isEnabledFor(logging.INFO):
            return
        client = scope.get("client")
        source_ip = client[0] if client else ""
        access_log.info(access_line(scope["method"], scope["path"], status, record, counts, seconds, source_ip))

    async def _audit(self, scope: Scope, record: RequestRecord, status: int, *, failed: bool = False) -> None:
        denied = record.error_code in DENIAL_CODES or status in (401, 403)
        if self.audit is None or record.challenge or not (denied or is_write(record.action)):
            return
        client = scope.get("client")
        outcome = "denied" if denied else ("allowed" if status < 400 and not failed else "failed")
        event = AuditEvent(
            self.clock(),
            record.request_id,
            record.principal,
            record.action,
            record.repository,
            outcome,
            status,
            record.error_code,
            client[0] if client else "",
            record.registry,
        )
        try:
            await anyio.to_thread.run_sync(self.audit.record, event)
        except Exception:
            log.exception("could not record the audit event of request %s", record.request_id)
