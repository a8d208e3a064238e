"""The one bounded in-process cache: a thread-safe map with a capacity, evicting the least recently used entry.

Every per-process shortcut (parsed policies, credentials, running upload hashes, advisory look-ups) is one of
these, so memory stays bounded however many distinct keys clients send. A cache is only ever a shortcut: its
owner decides when an entry may be trusted (a generation, a size, an expiry) and loads again otherwise.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")

_MISSING = object()


class BoundedCache(Generic[K, V]):
    def __init__(self, capacity: int = 4096) -> None:
        if capacity < 1:
            raise ValueError("a cache holds at least one entry")
        self.capacity = capacity
        self._items: OrderedDict[K, V] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._items)

    def get(self, key: K) -> V | None:
        with self._lock:
            value = self._items.get(key, _MISSING)  # type: ignore[arg-type]
            if value is _MISSING:
                return None
            self._items.move_to_end(key)
            return value  # type: ignore[return-value]

    def put(self, key: K, value: V) -> None:
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > self.capacity:
                self._items.popitem(last=False)

    def pop(self, key: K) -> V | None:
        with self._lock:
            return self._items.pop(key, None)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()

    def get_or_load(self, key: K, load: Callable[[], V]) -> V:
        """The cached value, or ``load()``'s, filed. Loads run outside the lock (two may race; both agree)."""
        found = self.get(key)
        if found is not None:
            return found
        value = load()
        if value is not None:
            self.put(key, value)
        return value
