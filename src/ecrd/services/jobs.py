"""Background work on a queue in the metadata store: enqueued with the change that needs it, claimed with row
locks by any process, retried when its worker dies or it fails."""

from __future__ import annotations

import logging
import os
import socket
import time
import uuid
from collections.abc import Callable, Mapping
from typing import Any

from ecrd.metadata import jobs as job_queries
from ecrd.metadata.store import MetadataStore

log = logging.getLogger("ecrd.jobs")

Handler = Callable[[dict[str, Any]], None]
# A running job whose worker has not finished it in this long is taken to be orphaned (its process died).
DEFAULT_LEASE_SECONDS = 300.0
MAX_ATTEMPTS = 3
# How often a runner looks for jobs claimed by dead processes of its own machine.
REAP_INTERVAL_SECONDS = 10.0


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process: alive
    return True


class JobRunner:
    def __init__(
        self,
        store: MetadataStore,
        handlers: Mapping[str, Handler],
        *,
        lease_seconds: float = DEFAULT_LEASE_SECONDS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.handlers = handlers
        self.lease_seconds = lease_seconds
        self.clock = clock
        self.host = socket.gethostname()
        self.worker_id = f"{self.host}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._reaped_at: float | None = None

    def reap_dead_workers(self) -> int:
        """Requeue the jobs that processes of this machine claimed and died running (SIGKILL, OOM, power cut
        of a restarted machine), so they run again now rather than when their lease ends. Workers of other
        machines are left to the lease: their liveness cannot be seen from here."""
        with self.store.read() as conn:
            claims = job_queries.running_claims(conn, f"{self.host}:")
        released = 0
        for job_id, worker in claims:
            pid = worker.split(":")[-2] if worker.count(":") >= 2 else ""
            if worker == self.worker_id or not pid.isdigit() or _process_alive(int(pid)):
                continue
            with self.store.write() as conn:
                if job_queries.release(conn, job_id, worker, self.clock()):
                    released += 1
                    log.info("job %s was claimed by %s, which died: queued again", job_id, worker)
        return released

    def run_once(self) -> bool:
        """Claim and run one job; False when none was ready."""
        now = self.clock()
        if self._reaped_at is None or now - self._reaped_at >= REAP_INTERVAL_SECONDS:
            self._reaped_at = now
            self.reap_dead_workers()
        with self.store.write() as conn:
            job = job_queries.claim(conn, self.worker_id, self.clock(), self.lease_seconds)
        if job is None:
            return False
        handler = self.handlers.get(job.kind)
        try:
            if handler is None:
                raise RuntimeError(f"no handler for jobs of kind {job.kind!r}")
            handler(job.payload)
        except Exception as exc:
            log.exception("job %s (%s) failed on attempt %d", job.id, job.kind, job.attempts)
            retry_at = self.clock() + 30.0 * job.attempts if job.attempts < MAX_ATTEMPTS else None
            with self.store.write() as conn:
                job_queries.fail(conn, job.id, f"{type(exc).__name__}: {exc}", self.clock(), retry_at=retry_at)
            return True
        with self.store.write() as conn:
            job_queries.finish(conn, job.id, self.clock())
        return True

    def drain(self, limit: int = 1000) -> int:
        """Run ready jobs until none is left (tests, and the CLI); returns how many ran."""
        count = 0
        while count < limit and self.run_once():
            count += 1
        return count
