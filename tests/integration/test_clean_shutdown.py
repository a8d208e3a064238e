"""A server that shuts down lets its housekeeping finish first and leaves no database connection behind."""

from __future__ import annotations

import threading
import time

import psycopg
import pytest
from starlette.testclient import TestClient

from ecrd.app import Registry, asgi_app
from ecrd.config import Settings


def _server_connections(admin: psycopg.Connection[tuple[int]], database: str, blocker_pid: int) -> int:
    row = admin.execute(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND pid NOT IN (pg_backend_pid(), %s)",
        (database, blocker_pid),
    ).fetchone()
    assert row is not None
    return int(row[0])


def _housekeeping_waits_on_a_lock(admin: psycopg.Connection[tuple[int]], database: str) -> bool:
    row = admin.execute(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND wait_event_type = 'Lock'", (database,)
    ).fetchone()
    return row is not None and int(row[0]) > 0


@pytest.mark.parametrize("backend", [pytest.param("postgresql", marks=pytest.mark.postgres)])
def test_shutdown_waits_for_housekeeping_in_flight_and_closes_every_connection(
    registry: Registry, settings: Settings
) -> None:
    database = settings.database_url.rsplit("/", 1)[1]
    with (
        psycopg.connect(settings.database_url, autocommit=True) as admin,
        psycopg.connect(settings.database_url) as blocker,
    ):
        # Hold the upload sessions table so the housekeeping started with the server (upload expiry) is still
        # reading it when shutdown begins: the window in which a shutdown used to dispose the engine under it.
        blocker.execute("LOCK TABLE uploads IN ACCESS EXCLUSIVE MODE")
        client = TestClient(asgi_app(registry), base_url="http://127.0.0.1:5000")
        client.__enter__()
        try:
            deadline = time.monotonic() + 10
            while not _housekeeping_waits_on_a_lock(admin, database):
                assert time.monotonic() < deadline, "upload expiry never reached the locked table"
                time.sleep(0.05)
        finally:
            release = threading.Timer(2.0, blocker.rollback)
            release.start()
            started = time.monotonic()
            client.__exit__(None, None, None)
            shutdown_seconds = time.monotonic() - started
            release.join(timeout=10)
        assert shutdown_seconds >= 1.5, "shutdown returned while housekeeping still held a connection"
        # A closed client's backend leaves pg_stat_activity a moment later; a leaked one stays.
        deadline = time.monotonic() + 1.5
        while _server_connections(admin, database, blocker.info.backend_pid) > 0:
            assert time.monotonic() < deadline, "the server left a database connection open after shutdown"
            time.sleep(0.05)
