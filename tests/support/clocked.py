"""An in-process registry living on a fake clock, and a /v2/ client logged in to it as the account root: for
tests that move time (grace periods, expiries) instead of waiting for it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from starlette.testclient import TestClient

from ecrd.app import Registry, asgi_app, build_registry
from ecrd.config import Settings
from tests.conftest import ROOT_ACCESS_KEY_ID, ROOT_SECRET_ACCESS_KEY, basic_auth_for
from tests.support.clock import FakeClock


@contextmanager
def clocked_registry(settings: Settings, clock: FakeClock) -> Iterator[Registry]:
    built = build_registry(settings, clock=clock)
    built.identity.authentication.bootstrap_root(ROOT_ACCESS_KEY_ID, ROOT_SECRET_ACCESS_KEY)
    try:
        yield built
    finally:
        built.close()


@contextmanager
def root_client(registry: Registry) -> Iterator[TestClient]:
    """A /v2/ client with the root's registry token (issued at the registry's time: it expires on its clock)."""
    with TestClient(
        asgi_app(registry),
        base_url="http://127.0.0.1:5000",
        headers={"Authorization": basic_auth_for(registry, ROOT_ACCESS_KEY_ID)},
    ) as client:
        yield client
