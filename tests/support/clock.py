"""The one fake clock of the test suite: wall-clock seconds that move only when a test moves them.

It is what ``ecrd.app.build_registry(settings, clock=...)`` and every service take as ``clock``: a callable
returning epoch seconds. Tests advance it instead of sleeping.
"""

from __future__ import annotations

import datetime as dt
import threading

START = 1_700_000_000.0
"""A fixed moment (2023-11-14T22:13:20Z), for tests whose dates must not depend on when they run."""


class FakeClock:
    """Epoch seconds, starting at ``start`` and moved by ``advance``; safe to read from server threads."""

    def __init__(self, start: float = START) -> None:
        self._now = start
        self._lock = threading.Lock()

    @classmethod
    def at_wall_time(cls) -> FakeClock:
        """A clock starting now: for tests whose clients sign with the real time (SigV4) but whose server must
        then be moved, e.g. to expire a token."""
        return cls(dt.datetime.now(dt.UTC).timestamp())

    def now(self) -> float:
        with self._lock:
            return self._now

    def __call__(self) -> float:
        return self.now()

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._now += seconds

    def set(self, moment: float) -> None:
        with self._lock:
            self._now = moment
