"""Change counters in the metadata store, and the per-process caches they keep correct.

Identities, policies, repository settings and keys are read on every request but change rarely. Each process
caches what it read, tagged with the "access" generation current when it started reading; triggers in the
database bump that generation in the same transaction as any change to those tables (migration 0008). A
request first reads the generation (one indexed single-row query) and drops every entry cached under an older
one — so a change committed by any process, on any node sharing the database, is seen by the next request
everywhere, and a cache never outlives what it caches. Reading the generation *before* the data makes a race
harmless: data read after a concurrent change is filed under the older generation and dropped next request.
"""

from __future__ import annotations

import contextvars
import threading
from collections.abc import Callable, Hashable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Generic, TypeVar

from sqlalchemy import select

from ecrd.domain.caches import BoundedCache
from ecrd.metadata.tables import generations

if TYPE_CHECKING:
    from ecrd.metadata.store import MetadataStore

ACCESS = "access"

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

_ACCESS_QUERY = select(generations.c.value).where(generations.c.scope == ACCESS)


class _Pin:
    """The generation of one unit of work (a worker-thread call of a request), read at its first lookup: a
    unit that looks nothing up (writing a batch of an upload) costs no query."""

    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value: int | None = None


_pinned: contextvars.ContextVar[_Pin | None] = contextvars.ContextVar("ecrd_access_generation", default=None)


def forget_pinned_generation() -> None:
    """After a unit of work writes, its later lookups must see its own change: the next one reads the
    generation again (a write that touched no access table leaves it, and the cache, as they were)."""
    pin = _pinned.get()
    if pin is not None:
        pin.value = None


def access_generation(store: MetadataStore) -> int:
    rows = store.fetch(_ACCESS_QUERY)
    # A database without the row (never, but fail safe): nothing is cached.
    return int(rows[0][0]) if rows else -1


class Generations:
    """The current access generation: pinned for a unit of work, or read from the store."""

    def __init__(self, store: MetadataStore) -> None:
        self.store = store

    def read(self) -> int:
        return access_generation(self.store)

    def current(self) -> int:
        pin = _pinned.get()
        if pin is None:
            return self.read()
        if pin.value is None:
            pin.value = self.read()
        return pin.value

    def call_pinned(self, func: Callable[..., V], args: tuple[object, ...]) -> V:
        """``func(*args)`` as one unit of work (``pinned``, without a context manager's cost on the hot path)."""
        if _pinned.get() is not None:
            return func(*args)
        token = _pinned.set(_Pin())
        try:
            return func(*args)
        finally:
            _pinned.reset(token)

    @contextmanager
    def pinned(self) -> Iterator[None]:
        """A unit of work: every cache lookup inside it uses the one generation its first lookup read."""
        if _pinned.get() is not None:
            yield
            return
        token = _pinned.set(_Pin())
        try:
            yield
        finally:
            _pinned.reset(token)


class GenerationCache(Generic[K, V]):
    """A bounded per-process map whose entries live only as long as the access generation they were read at.
    Without ``generations`` (a service built bare, as in unit tests) it caches nothing."""

    def __init__(self, generations: Generations | None, *, capacity: int = 4096) -> None:
        self.generations = generations
        # Values are kept in 1-tuples, so a loaded None (no such repository, no policy) is remembered too.
        self._items: BoundedCache[K, tuple[V]] = BoundedCache(capacity)
        self._generation: int | None = None
        self._lock = threading.Lock()

    @property
    def capacity(self) -> int:
        return self._items.capacity

    def get(self, key: K, load: Callable[[], V]) -> V:
        if self.generations is None:
            return load()
        generation = self.generations.current()
        if generation < 0:
            return load()
        with self._lock:
            if generation != self._generation:
                self._items.clear()
                self._generation = generation
            else:
                found = self._items.get(key)
                if found is not None:
                    return found[0]
        value = load()
        with self._lock:
            # Filed only if no newer generation was seen meanwhile; a full cache drops its least recently used
            # entry (a miss costs one query, and bounded memory matters more under key spraying).
            if generation == self._generation:
                self._items.put(key, (value,))
        return value
