"""SQLite's writers queue at a gate (a thread lock and an flock beside the database) instead of sleeping in SQLite's
busy handler; the gate orders writers and never stands in the way of one for longer than SQLite itself would."""

from __future__ import annotations

import fcntl
import multiprocessing
import os
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from ecrd.metadata import write_gate
from ecrd.metadata.store import MetadataStore
from ecrd.metadata.write_gate import WriteGate


@pytest.fixture
def database(tmp_path: Path) -> Path:
    return tmp_path / "metadata.db"


@pytest.fixture
def store(database: Path) -> Iterator[MetadataStore]:
    built = MetadataStore(f"sqlite:///{database}")
    with built.write() as conn:
        conn.execute(text("CREATE TABLE probe (value INTEGER)"))
    yield built
    built.dispose()


def _another_process_could_lock(path: Path) -> bool:
    """Whether a writer elsewhere would pass the gate now (a descriptor of its own: another process's view)."""
    fd = os.open(path, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return True
    finally:
        os.close(fd)


def test_a_write_transaction_holds_the_gate_against_other_processes_until_it_ends(
    store: MetadataStore, database: Path
) -> None:
    gate = database.with_name("metadata.db-writer.lock")
    with store.write() as conn:
        conn.execute(text("INSERT INTO probe VALUES (1)"))
        assert gate.exists()
        assert not _another_process_could_lock(gate)
    assert _another_process_could_lock(gate)
    assert oct(gate.stat().st_mode & 0o777) == oct(0o600)


def test_writers_of_many_threads_all_commit(store: MetadataStore) -> None:
    def write(value: int) -> None:
        for offset in range(20):
            with store.write() as conn:
                conn.execute(text("INSERT INTO probe VALUES (:v)"), {"v": value * 100 + offset})

    threads = [threading.Thread(target=write, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    with store.read() as conn:
        assert conn.execute(text("SELECT count(DISTINCT value) FROM probe")).scalar_one() == 160


def _child_tries_the_gate(gate: WriteGate, answer: multiprocessing.SimpleQueue[bool]) -> None:
    fd = gate._file()  # what the child's next writer would lock
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        answer.put(False)
    else:
        answer.put(True)


def test_a_forked_child_does_not_share_its_parents_hold_on_the_gate(database: Path) -> None:
    # given a gate held by this process (its descriptor would be inherited by a fork)
    gate = WriteGate(database)
    context = multiprocessing.get_context("fork")
    answer: multiprocessing.SimpleQueue[bool] = context.SimpleQueue()
    with gate.passage():
        # when a forked child tries it
        child = context.Process(target=_child_tries_the_gate, args=(gate, answer))
        child.start()
        child.join(timeout=30)
        # then the child is kept out: it opened a descriptor of its own
        assert answer.get() is False


def test_a_writer_goes_on_without_the_gate_when_its_holder_is_stuck(
    store: MetadataStore, database: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given the gate held elsewhere and never released (a stuck process), and a short wait
    monkeypatch.setattr(write_gate, "WAIT_SECONDS", 0.2)
    stuck = os.open(database.with_name("metadata.db-writer.lock"), os.O_RDWR)
    fcntl.flock(stuck, fcntl.LOCK_EX)
    try:
        # when this process writes, then it goes on to SQLite's own lock, which is free, and commits
        with store.write() as conn:
            conn.execute(text("INSERT INTO probe VALUES (7)"))
    finally:
        os.close(stuck)
    with store.read() as conn:
        assert conn.execute(text("SELECT value FROM probe")).scalars().all() == [7]


def test_a_thread_that_holds_the_gate_passes_it_again_without_waiting(database: Path) -> None:
    gate = WriteGate(database)
    with gate.passage(), gate.passage():
        assert not _another_process_could_lock(gate.path)
    assert _another_process_could_lock(gate.path)
