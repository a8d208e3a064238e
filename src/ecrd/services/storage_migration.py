"""Moving a registry's stored objects from one blob driver to another, online and resumably (`ecrd migrate-storage`).

Objects are copied as they are stored (sealed by ecrd, so no key is needed) with ``copy_object``, which makes
each copy visible whole or not at all: a run that is stopped at any point leaves only whole objects behind, and
the next run skips them. A pass walks the source's and the target's listings side by side — both come in name
order, as the driver contract promises — so it costs one listing of each store, not a look-up per object.

The registry may keep serving from the source while a pass runs: what it writes meanwhile is copied by the
next pass, and a last pass after the registry stopped writing leaves the target holding every object the
source holds. ``verify`` says whether it does.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from enum import Enum

from ecrd.storage.blob_store import BLOBS, UPLOADS
from ecrd.storage.driver import BlobDriver, ObjectInfo, ObjectNotFound
from ecrd.storage.transfer import copy_object

# Everything the blob store keeps: blobs, and the parts of uploads in progress (so that an upload begun before
# the switch can be continued after it).
MIGRATED_PREFIXES = (BLOBS, UPLOADS)
# Object stores keep modification times to the second (S3's LastModified): a copy made within the second of
# its source's last change must not look older than it.
TIMESTAMP_SLACK_SECONDS = 1.0
DEFAULT_JOBS = 4
# Names kept for the report of each kind of difference; the counts are always whole.
SAMPLE_SIZE = 10


class Outcome(Enum):
    COPIED = "copied"
    SKIPPED = "skipped"
    """Already in the target: same size, and not older than the source's object."""
    VANISHED = "vanished"
    """Listed in the source but gone before it was copied (collected as garbage, or an upload that finished)."""


@dataclass(frozen=True, slots=True)
class ObjectMigrated:
    """What a pass did with one object of the source."""

    name: str
    size: int
    outcome: Outcome


@dataclass
class PassReport:
    """One pass: how many objects (and bytes) it copied, skipped and found gone, and how long it took."""

    objects: dict[Outcome, int] = field(default_factory=lambda: dict.fromkeys(Outcome, 0))
    bytes: dict[Outcome, int] = field(default_factory=lambda: dict.fromkeys(Outcome, 0))
    only_in_target: int = 0
    """Objects the target holds and the source does not (deleted from the source since an earlier pass)."""
    seconds: float = 0.0

    def count(self, event: ObjectMigrated) -> None:
        self.objects[event.outcome] += 1
        self.bytes[event.outcome] += event.size


@dataclass
class Verification:
    """Whether the target holds every object of the source, as the source is now."""

    objects: int = 0
    bytes: int = 0
    missing: int = 0
    """Objects of the source the target lacks, or holds at another size or older."""
    missing_names: list[str] = field(default_factory=list)
    only_in_target: int = 0

    @property
    def complete(self) -> bool:
        return self.missing == 0


def is_current(source: ObjectInfo, target: ObjectInfo) -> bool:
    """Whether ``target`` is a copy of ``source`` as it is now. Objects are written whole and, under one name,
    hold the same bytes but for a blob stored again after it was deleted (sealed with a new key, at the same
    size): a target object older than its source is such a stale copy."""
    return target.size == source.size and target.modified_at + TIMESTAMP_SLACK_SECONDS >= source.modified_at


def side_by_side(
    source: Iterator[ObjectInfo], target: Iterator[ObjectInfo]
) -> Iterator[tuple[ObjectInfo | None, ObjectInfo | None]]:
    """Pairs of same-named objects from two listings in name order; ``None`` on the side that lacks one.

    The target may gain objects while this runs (the copies of the source's): only under names the walk has
    reached, which a listing in name order has passed by then."""
    ahead = next(target, None)
    for item in source:
        while ahead is not None and ahead.name < item.name:
            yield None, ahead
            ahead = next(target, None)
        if ahead is not None and ahead.name == item.name:
            yield item, ahead
            ahead = next(target, None)
        else:
            yield item, None
    while ahead is not None:
        yield None, ahead
        ahead = next(target, None)


class StorageMigration:
    """Copies the objects of ``source`` that ``target`` lacks, ``jobs`` at a time, and checks the result."""

    def __init__(
        self,
        source: BlobDriver,
        target: BlobDriver,
        *,
        jobs: int = DEFAULT_JOBS,
        prefixes: Sequence[str] = MIGRATED_PREFIXES,
        on_object: Callable[[ObjectMigrated], None] | None = None,
    ) -> None:
        if jobs < 1:
            raise ValueError("jobs must be at least 1")
        self.source = source
        self.target = target
        self.jobs = jobs
        self.prefixes = tuple(prefixes)
        self.on_object = on_object

    def copy_pass(self) -> PassReport:
        """Copy what the target lacks (or holds stale); skip what it holds. Raises what a store raises (the
        copies made until then stay, whole, for the next pass)."""
        report = PassReport()
        started = time.monotonic()
        in_flight: deque[Future[ObjectMigrated]] = deque()
        with ThreadPoolExecutor(max_workers=self.jobs, thread_name_prefix="migrate") as pool:
            try:
                for prefix in self.prefixes:
                    pairs = side_by_side(self.source.list(prefix), self.target.list(prefix))
                    for source_info, target_info in pairs:
                        if source_info is None:
                            report.only_in_target += 1
                        elif target_info is not None and is_current(source_info, target_info):
                            self._done(report, ObjectMigrated(source_info.name, source_info.size, Outcome.SKIPPED))
                        else:
                            in_flight.append(pool.submit(self._copy, source_info))
                            # A bounded window: the listing is not read further ahead than the copies.
                            while len(in_flight) >= 2 * self.jobs:
                                self._done(report, in_flight.popleft().result())
                while in_flight:
                    self._done(report, in_flight.popleft().result())
            except BaseException:
                for pending in in_flight:
                    pending.cancel()
                raise
        report.seconds = time.monotonic() - started
        return report

    def verify(self) -> Verification:
        """Compare the two stores' listings: every object of the source must be current in the target."""
        result = Verification()
        for prefix in self.prefixes:
            for source_info, target_info in side_by_side(self.source.list(prefix), self.target.list(prefix)):
                if source_info is None:
                    result.only_in_target += 1
                    continue
                result.objects += 1
                result.bytes += source_info.size
                if target_info is None or not is_current(source_info, target_info):
                    result.missing += 1
                    if len(result.missing_names) < SAMPLE_SIZE:
                        result.missing_names.append(source_info.name)
        return result

    def _copy(self, info: ObjectInfo) -> ObjectMigrated:
        try:
            size = copy_object(self.source, info.name, self.target)
        except ObjectNotFound:
            return ObjectMigrated(info.name, 0, Outcome.VANISHED)
        return ObjectMigrated(info.name, size, Outcome.COPIED)

    def _done(self, report: PassReport, event: ObjectMigrated) -> None:
        report.count(event)
        if self.on_object is not None:
            self.on_object(event)
