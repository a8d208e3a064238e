"""The metadata store's write transactions: only the BEGIN is retried, the caller's block runs once."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from ecrd.metadata.store import MetadataStore
from tests.support.databases import database_url


@pytest.fixture
def store(backend: str, tmp_path: Path) -> Iterator[MetadataStore]:
    with database_url(backend, tmp_path) as url:
        built = MetadataStore(url)
        with built.write() as conn:
            conn.execute(text("CREATE TABLE probe (value INTEGER)"))
        yield built
        built.dispose()


def _locked() -> OperationalError:
    return OperationalError("INSERT INTO probe VALUES (1)", {}, sqlite3.OperationalError("database is locked"))


def test_a_lock_error_inside_the_block_reaches_the_caller_once_and_rolls_back(store: MetadataStore) -> None:
    runs = 0
    with pytest.raises(OperationalError, match="database is locked"), store.write() as conn:
        runs += 1
        conn.execute(text("INSERT INTO probe VALUES (1)"))
        raise _locked()
    assert runs == 1
    with store.read() as conn:
        assert conn.execute(text("SELECT count(*) FROM probe")).scalar_one() == 0


def test_any_error_inside_the_block_reaches_the_caller_unchanged(store: MetadataStore) -> None:
    with pytest.raises(KeyError), store.write() as conn:
        conn.execute(text("INSERT INTO probe VALUES (1)"))
        raise KeyError("mine")
    with store.write() as conn:
        conn.execute(text("INSERT INTO probe VALUES (2)"))
    with store.read() as conn:
        assert conn.execute(text("SELECT value FROM probe")).scalars().all() == [2]


@pytest.mark.parametrize("backend", ["sqlite"])
def test_a_begin_that_waits_for_another_writer_proceeds_once_it_is_done(store: MetadataStore, tmp_path: Path) -> None:
    other = sqlite3.connect(tmp_path / "metadata.db", isolation_level=None, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")
    releaser = threading.Timer(0.3, other.execute, args=("COMMIT",))
    releaser.start()
    started = time.monotonic()
    try:
        with store.write() as conn:
            conn.execute(text("INSERT INTO probe VALUES (3)"))
    finally:
        releaser.join()
        other.close()
    assert time.monotonic() - started >= 0.25
    with store.read() as conn:
        assert conn.execute(text("SELECT value FROM probe")).scalars().all() == [3]
