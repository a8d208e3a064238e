"""Reading an object range from S3 as ranged GETs of one window each, the next window fetched while the
consumer reads the current one.

Memory per reader is bounded by two windows (the one being read and the one in flight). A window is one
idempotent request: a timeout, reset or cut-short body mid-window is retried from the window's start, so a
pull survives a store's hiccup without the client noticing.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor

# Bytes per ranged GET: large enough that request overhead is small beside the transfer, small enough that
# two per pull stay modest in memory.
READ_WINDOW = 4 * 1024 * 1024

Fetch = Callable[[int, int], bytes]
"""Fetch(offset, length) -> exactly those bytes of the object (retrying as it sees fit)."""


class ReadAheadStream:
    """``ReadStream`` over ``fetch``: bytes ``start``..``end`` (exclusive) of one object, window by window."""

    def __init__(
        self, fetch: Fetch, start: int, end: int, first: bytes, executor: ThreadPoolExecutor, window: int
    ) -> None:
        self._fetch = fetch
        self._executor = executor
        self._window = window
        self._current = memoryview(first)
        self._next_offset = start + len(first)
        self._end = end
        self._ahead: Future[bytes] | None = None
        self._closed = False
        self._request_ahead()

    def _request_ahead(self) -> None:
        if self._next_offset < self._end:
            length = min(self._window, self._end - self._next_offset)
            self._ahead = self._executor.submit(self._fetch, self._next_offset, length)
            self._next_offset += length
        else:
            self._ahead = None

    def readinto(self, buffer: bytearray | memoryview) -> int:
        if self._closed:
            raise ValueError("read of a closed stream")
        while not self._current:
            if self._ahead is None:
                return 0
            self._current = memoryview(self._ahead.result())
            self._request_ahead()
        view = memoryview(buffer).cast("B")
        count = min(len(view), len(self._current))
        view[:count] = self._current[:count]
        self._current = self._current[count:]
        return count

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._current = memoryview(b"")
        if self._ahead is not None and not self._ahead.cancel():
            # A window already on its way: wait for it, so no request outlives its reader, and drop it.
            self._ahead.exception()
        self._ahead = None
