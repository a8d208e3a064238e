"""Continuous scanning: after an import changes the advisory database, the images under an ENHANCED
configuration's CONTINUOUS_SCAN rules are matched again from their stored inventories — no layer is read.

Every import that changes advisories queues one ``rematch-findings`` job in the transaction that records it
(``ecrd.services.vulndb``). A job re-matches one bounded batch of images (key order, those matched at an older
advisory generation) and, in the same transaction that writes the batch's findings, queues the job for the
next batch: the work survives a restart at the batch it reached, never blocks the import, and a second import
meanwhile only makes later batches use newer data (an image already matched at the newest generation is
skipped). Each image's findings are replaced in one statement, only if no scan completed since they were read;
an image whose findings changed is audited, and reported to ``ScanningService.on_findings_changed`` in the
commit.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from typing import Any, Final, Protocol

from sqlalchemy import Connection

from ecrd.domain.caches import BoundedCache
from ecrd.domain.records import AuditEvent
from ecrd.domain.registries import RegistryId
from ecrd.metadata import audit as audit_queries
from ecrd.metadata import inventories as inventory_queries
from ecrd.metadata import jobs as job_queries
from ecrd.metadata.inventories import ReplacedFindings, StoredInventory
from ecrd.metadata.store import MetadataStore
from ecrd.services.scanning import FindingsChange
from ecrd.services.vulndb import REMATCH_JOB, VulnerabilityDatabase

log = logging.getLogger("ecrd.scanning")

REMATCH_BATCH: Final = 500
# Distinct (ecosystem, package, version) judgements a process keeps while it re-matches.
KNOWN_PACKAGES: Final = 50_000
REMATCH_PRINCIPAL: Final = "continuous-scanning"
FINDINGS_CHANGED_ACTION: Final = "scanning:FindingsChanged"


class ContinuousScanning(Protocol):
    """What a re-match needs of scanning: the repositories a continuous rule covers (id → name) and the hooks
    told of each image whose findings changed. ``ScanningService`` is one registry's; the server passes every
    registry's at once."""

    on_findings_changed: list[Callable[[Connection, FindingsChange, float], None]]

    def continuous_repositories(self) -> dict[int, str]: ...

    def registry_of(self, repository_id: int) -> RegistryId | None:
        """The registry of a repository ``continuous_repositories`` named (its audit events are on its trail)."""
        ...


class FindingsRematch:
    """The ``rematch-findings`` job: one batch of continuously scanned images matched against the advisories
    of now."""

    def __init__(
        self,
        store: MetadataStore,
        scanning: ContinuousScanning,
        vulndb: VulnerabilityDatabase,
        *,
        clock: Callable[[], float] = time.time,
        batch_size: int = REMATCH_BATCH,
    ) -> None:
        self.store = store
        self.scanning = scanning
        self.vulndb = vulndb
        self.clock = clock
        self.batch_size = batch_size
        # Judgements of (ecosystem, package, version) at one advisory generation, shared by the batches of a
        # re-match: images of later batches hold mostly the same packages.
        self._known: tuple[int, BoundedCache[Any, Any]] | None = None

    def run_job(self, payload: dict[str, Any]) -> None:
        after_value = payload.get("after")
        after = None if after_value is None else (int(after_value[0]), str(after_value[1]))
        repositories = self.scanning.continuous_repositories()
        if not repositories:
            return
        advisories = self.vulndb.snapshot()
        with self.store.read() as conn:
            batch = inventory_queries.batch_to_rematch(
                conn, repositories.keys(), advisories.generation, after, self.batch_size
            )
        if not batch:
            return
        # The scanner and its libraries load with the first re-match, as with the first scan.
        from ecrd.scanner.enhanced import inventory_from_document, observe
        from ecrd.scanner.matching import match_inventories
        from ecrd.scanner.scan import finding_to_ecr, severity_counts

        inventories = [inventory_from_document(item.inventory) for item in batch]
        if self._known is None or self._known[0] != advisories.generation:
            self._known = (advisories.generation, BoundedCache(KNOWN_PACKAGES))
        matched = match_inventories(inventories, advisories, known=self._known[1])
        now = self.clock()
        replaced: list[ReplacedFindings] = []
        changes: dict[tuple[int, str], FindingsChange] = {}
        for item, (os, packages), findings in zip(batch, inventories, matched, strict=True):
            observations = observe(item.enhanced_findings, findings, os, packages, now)
            # An observation opened, changed or closed now is a change; the basic findings are made of the same
            # fields, so they changed only then.
            if not any(record["updated_at"] == now for record in observations):
                continue
            basic = [finding_to_ecr(f) for f in findings]
            counts = severity_counts(findings)
            replaced.append(
                ReplacedFindings(
                    item.repository_id,
                    item.digest,
                    item.completed_at,
                    now,
                    advisories.newest_modified,
                    counts,
                    basic,
                    observations,
                )
            )
            changes[(item.repository_id, item.digest)] = _change(
                repositories[item.repository_id], item, observations, counts
            )
        run_id = str(uuid.uuid4())
        with self.store.write() as conn:
            written = inventory_queries.replace_findings(conn, replaced)
            lost = {(r.repository_id, r.digest) for r in replaced} - written
            # An image a scan answered meanwhile keeps that scan's generation; the others are matched now.
            inventory_queries.mark_matched(
                conn,
                [(i.repository_id, i.digest) for i in batch if (i.repository_id, i.digest) not in lost],
                advisories.generation,
            )
            for key in sorted(written):
                for hook in self.scanning.on_findings_changed:
                    hook(conn, changes[key], now)
                audit_queries.insert_event(
                    conn,
                    AuditEvent(
                        now,
                        run_id,
                        REMATCH_PRINCIPAL,
                        FINDINGS_CHANGED_ACTION,
                        changes[key].repository,
                        "allowed",
                        200,
                        None,
                        "",
                        self.scanning.registry_of(changes[key].repository_id),
                    ),
                )
            if len(batch) == self.batch_size:
                last = batch[-1]
                job_queries.enqueue(conn, REMATCH_JOB, {"after": [last.repository_id, last.digest]}, now)
        log.info(
            "re-matched %d images against advisory generation %d: %d changed",
            len(batch),
            advisories.generation,
            len(written),
        )


def _change(
    repository: str, item: StoredInventory, observations: list[dict[str, Any]], counts: dict[str, int]
) -> FindingsChange:
    from ecrd.scanner.enhanced import active_keys

    before, after = active_keys(item.enhanced_findings), active_keys(observations)
    names = {record["key"]: record["finding"]["name"] for record in (*item.enhanced_findings, *observations)}
    return FindingsChange(
        repository,
        item.repository_id,
        item.digest,
        tuple(sorted({names[key] for key in after - before})),
        tuple(sorted({names[key] for key in before - after})),
        counts,
    )
