"""An in-process registry living on a fake clock, and a /v2/ client logged in to it as the account root: for
tests that move time (grace periods, expiries) instead of waiting for it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from ecrd.app import Registry
from ecrd.config import Settings
from tests.conftest import registry_for, root_client
from tests.support.clock import FakeClock


@contextmanager
def clocked_registry(settings: Settings, clock: FakeClock) -> Iterator[Registry]:
    with registry_for(settings, clock) as built:
        yield built


__all__ = ["clocked_registry", "root_client"]
