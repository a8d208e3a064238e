"""Webhooks: the operator's receivers of registry events, and their delivery — at least once, HMAC-signed,
retried with backoff and jitter, dead-lettered after a limit — by a dispatcher any number of processes run,
each delivery claimed with a lease."""

from __future__ import annotations

import logging
import os
import random
import secrets
import socket
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

import urllib3
from urllib3.exceptions import HTTPError

from ecrd.domain.events import (
    EVENT_ID_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    EventFilter,
    retry_delay,
    signature,
)
from ecrd.metadata import events as q
from ecrd.metadata.store import MetadataStore
from ecrd.services.secrets import SecretBox

log = logging.getLogger("ecrd.events")

# Deliveries one dispatcher claims at a time; the lease outlasts them all at their timeout.
CLAIM_BATCH = 5
# Events turned into deliveries per transaction.
DISPATCH_BATCH = 200
PRUNE_BATCH = 1000
BACKOFF_BASE_SECONDS = 30.0
BACKOFF_CAP_SECONDS = 3600.0
USER_AGENT = "ecrd-webhooks/1"


def _secret_context(webhook_id: int) -> str:
    return f"ecrd webhook secret {webhook_id}"


def host_of(url: str) -> str:
    """What a log line may say of a webhook's URL: its scheme and host (a path may hold a token, as chat
    tools' incoming-webhook URLs do)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname or ''}{f':{parts.port}' if parts.port else ''}"


def check_webhook_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"a webhook URL is http:// or https:// and names a host, not {host_of(url)!r}")
    return url


@dataclass(frozen=True, slots=True)
class WebhookInfo:
    """A webhook as ``ecrd events webhook list`` shows it (never its secret)."""

    id: int
    url: str
    filter: EventFilter
    created_at: float


class WebhookService:
    """The operator's webhooks: added with a secret (sealed by the master key, bound to the webhook), listed,
    removed; and the deliveries, listed and redelivered."""

    def __init__(self, store: MetadataStore, secret_box: SecretBox, *, clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.secret_box = secret_box
        self.clock = clock

    def add(self, url: str, event_filter: EventFilter, secret: str | None = None) -> tuple[int, str]:
        """A new webhook and its signing secret (generated when none is given): the only time it is shown."""
        check_webhook_url(url)
        secret = secret or secrets.token_urlsafe(32)
        with self.store.write() as conn:
            webhook_id = q.add_webhook(conn, url, event_filter, self.clock())
            q.set_secret(conn, webhook_id, self.secret_box.seal(secret, context=_secret_context(webhook_id)))
        return webhook_id, secret

    def list_webhooks(self) -> list[WebhookInfo]:
        with self.store.read() as conn:
            return [WebhookInfo(w.id, w.url, w.filter, w.created_at) for w in q.list_webhooks(conn)]

    def remove(self, webhook_id: int) -> bool:
        with self.store.write() as conn:
            return q.remove_webhook(conn, webhook_id)

    def deliveries(self, statuses: tuple[str, ...] = q.DELIVERY_STATUSES, limit: int = 100) -> list[q.DeliveryRecord]:
        with self.store.read() as conn:
            return q.list_deliveries(conn, statuses=statuses, limit=limit)

    def redeliver(self, delivery_id: int | None = None) -> int:
        """Queue dead-lettered deliveries again: one, or every one."""
        with self.store.write() as conn:
            return q.redeliver(conn, self.clock(), delivery_id=delivery_id)

    def open_secret(self, webhook_id: int, sealed: str) -> str:
        return self.secret_box.open(sealed, context=_secret_context(webhook_id))


@dataclass(frozen=True, slots=True)
class Attempt:
    """What one POST came to: the status answered (None when none was), and what went wrong."""

    status: int | None
    error: str | None

    @property
    def delivered(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


class WebhookDispatcher:
    """Turns events into deliveries and makes them. Every server process runs one; deliveries are claimed with a
    lease (SKIP LOCKED on PostgreSQL, the write gate on SQLite), so each attempt is made by one process, and a
    process that dies mid-delivery leaves it to another when the lease ends. At least once: a receiver may see an
    event twice (the event id, in a header and the body, tells it); order is not kept across deliveries."""

    def __init__(
        self,
        store: MetadataStore,
        webhooks: WebhookService,
        *,
        max_attempts: int,
        timeout_seconds: float,
        retention_seconds: float,
        lease_seconds: float | None = None,
        clock: Callable[[], float] = time.time,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        self.store = store
        self.webhooks = webhooks
        self.max_attempts = max_attempts
        self.timeout_seconds = timeout_seconds
        self.retention_seconds = retention_seconds
        # A claim's deliveries are made one after another, each within its timeout.
        self.lease_seconds = lease_seconds if lease_seconds is not None else 2 * CLAIM_BATCH * timeout_seconds + 60.0
        self.clock = clock
        self.jitter = jitter
        self.worker_id = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        # Called with each attempt's outcome (delivered, retried, dead): the metrics count them.
        self.on_attempt: list[Callable[[str], None]] = []
        self._pool: urllib3.PoolManager | None = None

    def run_once(self) -> int:
        """Dispatch new events, then claim and make the deliveries that are due; returns how many were tried."""
        with self.store.read() as conn:
            if not q.work_waiting(conn, self.clock(), self.lease_seconds):
                return 0
        with self.store.write() as conn:
            q.dispatch(conn, self.clock(), DISPATCH_BATCH)
        with self.store.write() as conn:
            claimed = q.claim_deliveries(conn, self.worker_id, self.clock(), self.lease_seconds, CLAIM_BATCH)
        for delivery in claimed:
            self._deliver(delivery)
        return len(claimed)

    def drain(self, limit: int = 100) -> int:
        """Run until nothing is due (tests, and the CLI); bounded by ``limit`` rounds."""
        total = 0
        for _ in range(limit):
            tried = self.run_once()
            total += tried
            if not tried:
                break
        return total

    def prune(self) -> int:
        """Forget events past the retention whose deliveries are all made or dead-lettered."""
        before = self.clock() - self.retention_seconds
        with self.store.write() as conn:
            return q.prune(conn, before, PRUNE_BATCH)

    def _deliver(self, delivery: q.Delivery) -> None:
        try:
            secret = self.webhooks.open_secret(delivery.webhook_id, delivery.sealed_secret)
        except ValueError as exc:
            attempt = Attempt(None, str(exc))
        else:
            attempt = self._post(delivery, secret)
        now = self.clock()
        if attempt.delivered:
            outcome, status, retry_at = "delivered", q.DELIVERED, None
        elif delivery.attempts >= self.max_attempts:
            outcome, status, retry_at = "dead", q.DEAD, None
        else:
            delay = retry_delay(
                delivery.attempts, base=BACKOFF_BASE_SECONDS, cap=BACKOFF_CAP_SECONDS, jitter=self.jitter()
            )
            outcome, status, retry_at = "retried", q.PENDING, now + delay
        with self.store.write() as conn:
            q.settle(
                conn,
                delivery.id,
                self.worker_id,
                now,
                status=status,
                next_attempt_at=retry_at,
                last_status=attempt.status,
                last_error=attempt.error,
            )
        if outcome != "delivered":
            log.warning(
                "event %s to webhook %d (%s): attempt %d failed (%s): %s",
                delivery.event_id,
                delivery.webhook_id,
                host_of(delivery.url),
                delivery.attempts,
                attempt.error,
                "dead-lettered" if outcome == "dead" else "will retry",
            )
        for hook in self.on_attempt:
            hook(outcome)

    def _post(self, delivery: q.Delivery, secret: str) -> Attempt:
        body = delivery.body.encode()
        timestamp = str(int(self.clock()))
        headers = {
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            EVENT_ID_HEADER: delivery.event_id,
            TIMESTAMP_HEADER: timestamp,
            SIGNATURE_HEADER: signature(secret, timestamp, body),
        }
        if self._pool is None:
            self._pool = urllib3.PoolManager(timeout=urllib3.Timeout(total=self.timeout_seconds), retries=False)
        try:
            response = self._pool.request(
                "POST", delivery.url, body=body, headers=headers, redirect=False, preload_content=False
            )
        except HTTPError as exc:
            return Attempt(None, type(exc).__name__)
        try:
            # The answer's body is not wanted; a little is read so the connection can be kept.
            response.read(4096, decode_content=False)
        except HTTPError:
            pass
        finally:
            response.release_conn()
        if 200 <= response.status < 300:
            return Attempt(response.status, None)
        return Attempt(response.status, f"HTTP {response.status}")
