"""SQLite's writers, queued instead of sleeping: a gate every write transaction on one database file passes first.

SQLite lets one writer at a time hold the database; the others, in ``BEGIN IMMEDIATE``, wait in its busy handler,
which sleeps between tries (1, 2, 5 … up to 100 ms) and cannot be woken when the lock is released. With a dozen
concurrent writers a commit that takes a millisecond leaves the next writer asleep for tens of them, and the last
in line for seconds: PutImage from 16 clients had a p99 of 1.5 s. The gate is a lock in two parts: a thread lock
(threads of one process wait on a futex, woken at once) and ``flock`` on a file beside the database (processes
wait in the kernel), so at most one writer per database reaches SQLite's lock, and the next starts as soon as
the last commits.

The gate only orders writers; SQLite's lock still guards the data. A writer that cannot pass within
``WAIT_SECONDS`` (a stuck holder) goes on without it and meets SQLite's own busy timeout, as before.
"""

from __future__ import annotations

import errno
import fcntl
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

WAIT_SECONDS = 30.0
"""How long a writer waits at the gate before it goes on to SQLite's own lock (its busy timeout is the same)."""
_POLL_FIRST, _POLL_MAX = 0.0001, 0.001
"""Between tries of another process's flock (only one thread per process polls; the others wait on the thread
lock): short enough that the gate's hand-over costs less than SQLite's first sleep."""


class WriteGate:
    """The gate of one SQLite database file (``<database>-writer.lock``)."""

    def __init__(self, database: Path) -> None:
        self.path = database.with_name(database.name + "-writer.lock")
        self._threads = threading.Lock()
        self._fd: int | None = None
        self._fd_pid = 0
        self._holder = threading.local()

    @contextmanager
    def passage(self) -> Iterator[None]:
        """Hold the gate for the block (a write transaction). Re-entered by the thread that holds it, it lets
        the inner block through without waiting (SQLite then orders the two, as it always did)."""
        if getattr(self._holder, "inside", False):
            yield
            return
        deadline = time.monotonic() + WAIT_SECONDS
        if not self._threads.acquire(timeout=WAIT_SECONDS):
            yield  # a stuck writer in this process: SQLite's busy timeout decides, as without the gate
            return
        try:
            fd = self._locked_file(deadline)
            self._holder.inside = True
            try:
                yield
            finally:
                self._holder.inside = False
                if fd is not None:
                    fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            self._threads.release()

    def _locked_file(self, deadline: float) -> int | None:
        """The lock file's descriptor with its flock held, or None if another process held it past the
        deadline."""
        fd = self._file()
        pause = _POLL_FIRST
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return fd
            except OSError as exc:
                if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN):
                    raise
            if time.monotonic() >= deadline:
                return None
            time.sleep(pause)
            pause = min(pause * 2, _POLL_MAX)

    def _file(self) -> int:
        # A descriptor inherited over fork shares its flock with the parent: a child opens its own.
        # Called with the thread lock held.
        if self._fd is None or self._fd_pid != os.getpid():
            self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            self._fd_pid = os.getpid()
        return self._fd
