"""The server's Prometheus metrics: what every request and background run adds to them, and ``/metrics``.

Requests are counted by door (``oci``, ``aws``), operation (the AWS operation or the OCI route and method, never
the path) and status, with their latency and bytes; background work by its outcome; what the registry stores
and the job queue owes are read from the metadata store when scraped. Several worker processes serve one port:
under ``ecrd serve`` each keeps its values in files of a directory the serve command empties at start
(prometheus_client's multiprocess mode), and a scrape answered by any worker sums them all
(docs/decisions/0025-metrics-and-credential-helper.md).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import anyio
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from starlette.types import Receive, Scope, Send

from ecrd.errors import AccessDenied, AuthenticationError, EcrdError
from ecrd.observability import record_of
from ecrd.services.access import AccessService
from ecrd.services.identity import RegistryAuthenticator
from ecrd.services.usage import RegistryUsage

# The action a scraper must be allowed, on resource "*", unless the metrics are public (--metrics-public).
GET_METRICS_ACTION = "ecrd:GetMetrics"
METRICS_PATH = "/metrics"
# Request latency buckets: the hot reads answer in about a millisecond, pushes of large layers take minutes.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)
JOB_STATUSES = ("queued", "running")
# The content type of the text format prometheus_client's exposition writes.
TEXT_FORMAT = CONTENT_TYPE_LATEST.encode()
CHALLENGE = (b"www-authenticate", b'Basic realm="ecrd metrics"')

Handler = Callable[[dict[str, Any]], None]


def door_of(path: str) -> str:
    """The door a path reaches: the label value of every request (a bounded set, whatever the path)."""
    if path == "/":
        return "aws"
    if path.startswith("/v2"):
        return "oci"
    return "other"


class RegistryMetrics:
    """The metrics one server process records, and the exposition of all of them."""

    def __init__(
        self,
        usage: RegistryUsage,
        *,
        job_kinds: tuple[str, ...] = (),
        multiprocess_dir: Path | None = None,
    ) -> None:
        self.usage = usage
        self.job_kinds = job_kinds
        self.multiprocess_dir = multiprocess_dir
        # A registry of this object's own (not prometheus_client's global one): several applications in one
        # process (tests) each count their own requests.
        self.registry = CollectorRegistry(auto_describe=False)
        self._latency = Histogram(
            "ecrd_http_request_duration_seconds",
            "Requests by door, operation and status: latency, from the request's start to its last byte sent "
            "(the histogram's _count is the number of requests)",
            ("door", "operation", "status"),
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self._bytes_in = Counter(
            "ecrd_http_request_bytes", "Bytes of request bodies received", ("door",), registry=self.registry
        )
        self._bytes_out = Counter(
            "ecrd_http_response_bytes", "Bytes of response bodies sent", ("door",), registry=self.registry
        )
        self._jobs = Counter(
            "ecrd_jobs", "Background jobs run, by kind and outcome", ("kind", "outcome"), registry=self.registry
        )
        self._scans = Counter("ecrd_scans", "Image scans stored, by status", ("status",), registry=self.registry)
        self._gc_runs = Counter(
            "ecrd_gc_runs", "Online garbage collections, by outcome", ("outcome",), registry=self.registry
        )
        self._gc_blobs = Counter(
            "ecrd_gc_reclaimed_blobs", "Blobs deleted by garbage collection", registry=self.registry
        )
        self._gc_bytes = Counter(
            "ecrd_gc_reclaimed_bytes", "Bytes deleted by garbage collection", registry=self.registry
        )
        self._webhook_deliveries = Counter(
            "ecrd_webhook_deliveries",
            "Attempts at delivering registry events to webhooks, by outcome (delivered, retried, dead)",
            ("outcome",),
            registry=self.registry,
        )
        self._replications = Counter(
            "ecrd_replications",
            "Image replications ended, by status (COMPLETE, FAILED)",
            ("status",),
            registry=self.registry,
        )
        # Each request looks its series up here first: the label lookup of prometheus_client (validation, a
        # lock) costs more than the observation itself.
        self._latency_series: dict[tuple[str, str, int], Any] = {}
        self._byte_series: dict[str, tuple[Any, Any]] = {}

    # -- recording ---------------------------------------------------------------------------------------

    def observe_request(
        self, path: str, operation: str, status: int, bytes_in: int, bytes_out: int, seconds: float
    ) -> None:
        door = door_of(path)
        key = (door, operation, status)
        series = self._latency_series.get(key)
        if series is None:
            series = self._latency_series[key] = self._latency.labels(door, operation, str(status))
        series.observe(seconds)
        if bytes_in or bytes_out:
            counters = self._byte_series.get(door)
            if counters is None:
                counters = self._byte_series[door] = (self._bytes_in.labels(door), self._bytes_out.labels(door))
            if bytes_in:
                counters[0].inc(bytes_in)
            if bytes_out:
                counters[1].inc(bytes_out)

    def counting_jobs(self, handlers: Mapping[str, Handler]) -> dict[str, Handler]:
        """``handlers`` (job kind → handler), each counting its runs' outcomes."""
        return {kind: self._counting(kind, handler) for kind, handler in handlers.items()}

    def _counting(self, kind: str, handler: Handler) -> Handler:
        succeeded, failed = self._jobs.labels(kind, "succeeded"), self._jobs.labels(kind, "failed")

        def run(payload: dict[str, Any]) -> None:
            try:
                handler(payload)
            except Exception:
                failed.inc()
                raise
            succeeded.inc()

        return run

    def scan_completed(self, status: str) -> None:
        self._scans.labels(status).inc()

    def gc_collected(self, blobs: int, size: int) -> None:
        self._gc_runs.labels("succeeded").inc()
        self._gc_blobs.inc(blobs)
        self._gc_bytes.inc(size)

    def gc_failed(self) -> None:
        self._gc_runs.labels("failed").inc()

    def webhook_attempted(self, outcome: str) -> None:
        self._webhook_deliveries.labels(outcome).inc()

    def replication_ended(self, status: str) -> None:
        self._replications.labels(status).inc()

    # -- exposition --------------------------------------------------------------------------------------

    def exposition(self) -> bytes:
        """The text format of every worker's counts and the registry's usage (blocking: files and queries)."""
        if self.multiprocess_dir is None:
            registry = self.registry
        else:
            # Loaded by the first scrape: a worker that is never scraped does without it.
            from prometheus_client.multiprocess import MultiProcessCollector

            registry = CollectorRegistry(auto_describe=False)
            MultiProcessCollector(registry, path=str(self.multiprocess_dir))  # type: ignore[no-untyped-call]
        return generate_latest(_WithUsage(registry, self.usage, self.job_kinds))


class _WithUsage:
    """A registry's metrics and the usage gauges, read at the time of the scrape (the usage's snapshot)."""

    def __init__(self, registry: CollectorRegistry, usage: RegistryUsage, job_kinds: tuple[str, ...]) -> None:
        self.registry = registry
        self.usage = usage
        self.job_kinds = job_kinds

    def collect(self) -> Iterator[Metric]:
        yield from self.registry.collect()
        snapshot = self.usage.snapshot()
        blobs = GaugeMetricFamily("ecrd_storage_blobs", "Blobs stored, by location", labels=("location",))
        size = GaugeMetricFamily("ecrd_storage_bytes", "Bytes of blobs stored, by location", labels=("location",))
        for stored in snapshot.storage:
            blobs.add_metric((stored.location,), stored.blobs)
            size.add_metric((stored.location,), stored.bytes)
        yield blobs
        yield size
        depth = GaugeMetricFamily("ecrd_job_queue_depth", "Jobs not yet done", labels=("kind", "status"))
        age = GaugeMetricFamily(
            "ecrd_job_queue_oldest_age_seconds", "Age of the oldest job not yet done", labels=("kind", "status")
        )
        found = {(jobs.kind, jobs.status): jobs for jobs in snapshot.jobs}
        # Every known kind is shown, at zero when none waits: a series that disappears cannot be alerted on.
        keys = sorted({(kind, status) for kind in self.job_kinds for status in JOB_STATUSES} | set(found))
        for kind, status in keys:
            jobs = found.get((kind, status))
            depth.add_metric((kind, status), jobs.count if jobs else 0)
            age.add_metric((kind, status), jobs.oldest_age_seconds if jobs else 0.0)
        yield depth
        yield age


class MetricsEndpoint:
    """``GET /metrics``: the exposition, to a caller allowed ``ecrd:GetMetrics`` unless the metrics are public.

    The caller proves itself as on ``/v2/``: Basic ``AWS:<registry token>`` (``aws ecr get-login-password``, or the
    credential helper); a scraper reads it from a file that is refreshed before the token expires.
    """

    def __init__(
        self,
        metrics: RegistryMetrics,
        authenticator: RegistryAuthenticator,
        access: AccessService,
        *,
        public: bool = False,
    ) -> None:
        self.metrics = metrics
        self.authenticator = authenticator
        self.access = access
        self.public = public

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        record = record_of(scope)
        record.operation = "metrics"
        if scope["method"] not in ("GET", "HEAD"):
            await _respond(send, 405, b"method not allowed\n", [(b"allow", b"GET, HEAD")])
            return
        record.action = GET_METRICS_ACTION
        authorization = _header(scope, b"authorization")
        client = scope.get("client")
        secure = scope.get("scheme") == "https"
        try:
            body = await anyio.to_thread.run_sync(
                self._answer, authorization, client[0] if client else "", secure, scope
            )
        except EcrdError as exc:
            record.error_code = exc.oci_code
            record.challenge = isinstance(exc, AuthenticationError) and authorization is None
            extra = [CHALLENGE] if isinstance(exc, AuthenticationError) else []
            status = exc.oci_status if isinstance(exc, (AuthenticationError, AccessDenied)) else 500
            await _respond(send, status, exc.message.encode() + b"\n", extra)
            return
        await _respond(send, 200, b"" if scope["method"] == "HEAD" else body, [], length=len(body))

    def _answer(self, authorization: str | None, source_ip: str, secure: bool, scope: Scope) -> bytes:
        if not self.public:
            caller = self.authenticator.authenticate(authorization, source_ip=source_ip, secure=secure)
            record_of(scope).principal = caller.arn
            self.access.check_registry(caller, GET_METRICS_ACTION)
        return self.metrics.exposition()


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return bytes(value).decode("latin-1")
    return None


async def _respond(
    send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]], *, length: int | None = None
) -> None:
    content_type = TEXT_FORMAT if status == 200 else b"text/plain; charset=utf-8"
    size = str(len(body) if length is None else length).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", content_type), (b"content-length", size), *headers],
        }
    )
    await send({"type": "http.response.body", "body": body})
