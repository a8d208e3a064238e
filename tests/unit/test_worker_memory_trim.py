"""A server worker hands the memory its C allocator holds free back to the system, from a thread of its own."""

from __future__ import annotations

import threading

from ecrd.cli import supervise


def test_the_worker_trims_its_free_memory_on_a_daemon_thread() -> None:
    # when a worker starts returning free memory
    supervise.return_free_memory_periodically()

    # then a daemon thread does it (the event loop never waits on the allocator's locks)
    trimmers = [thread for thread in threading.enumerate() if thread.name == "ecrd-memory-trim"]
    assert trimmers
    assert all(thread.daemon for thread in trimmers)
