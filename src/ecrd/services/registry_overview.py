"""What the web console's overview shows of one registry (the signed-in account's, in the console's region):
per-repository figures for a page of repositories, storage used, and images pushed and last pulled per day.
Read-only; the caller authorizes."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ecrd.domain.registries import RegistryId
from ecrd.metadata import overview as q
from ecrd.metadata.store import MetadataStore

DAY = 86400.0


@dataclass(frozen=True, slots=True)
class RepositorySummary:
    images: int
    bytes: int
    last_pushed_at: float | None


@dataclass(frozen=True, slots=True)
class Activity:
    """Per day (oldest first, each day's start in epoch seconds): images pushed, and images last pulled."""

    days: tuple[float, ...]
    pushes: tuple[int, ...]
    pulls: tuple[int, ...]
    stored_bytes: int
    archived_bytes: int
    largest: tuple[tuple[str, int], ...]


class RegistryOverview:
    def __init__(self, store: MetadataStore, *, clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.clock = clock

    def repository_summaries(self, registry: RegistryId, names: Sequence[str]) -> dict[str, RepositorySummary]:
        with self.store.read() as conn:
            found = q.repository_summaries(conn, registry, names)
        return {name: RepositorySummary(*found.get(name, (0, 0, None))) for name in names}

    def activity(self, registry: RegistryId, *, days: int = 14) -> Activity:
        today = self.clock() // DAY * DAY
        first = today - (days - 1) * DAY
        with self.store.read() as conn:
            pushed = q.pushes_per_day(conn, registry, since=first, day=DAY)
            pulled = q.pulls_per_day(conn, registry, since=first, day=DAY)
            largest = tuple(q.largest_repositories(conn, registry, limit=8))
            stored = q.stored_bytes(conn, registry)
        return Activity(
            days=tuple(first + i * DAY for i in range(days)),
            pushes=tuple(pushed.get(i, 0) for i in range(days)),
            pulls=tuple(pulled.get(i, 0) for i in range(days)),
            stored_bytes=stored.get("hot", 0),
            archived_bytes=sum(size for location, size in stored.items() if location != "hot"),
            largest=largest,
        )
