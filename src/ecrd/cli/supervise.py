"""The HTTP server's supervisor: what `ecrd serve` becomes once the data directory is ready.

It imports only the settings and granian — the workers import the application — so the process that lives
as long as the server stays small. Settings come from the serve command through the environment, the
listening socket as an inherited file descriptor named in argv. It owns how workers live: they share that
one socket, log the access lines, and die with the supervisor.
"""

from __future__ import annotations

import copy
import ctypes
import functools
import os
import signal
import socket
import sys
import threading
import time
from pathlib import Path
from typing import Any

from granian._granian import SocketHolder
from granian.constants import Interfaces
from granian.http import HTTP1Settings
from granian.log import LOGGING_CONFIG
from granian.server import MPServer

from ecrd.config import Settings

HEADER_READ_TIMEOUT_MS = 10_000
MAX_REQUESTS_IN_FLIGHT = 256
# Connections the kernel queues for the workers to accept (granian's default).
LISTEN_BACKLOG = 1024
# How often a worker checks that its supervisor is still its parent, should the parent-death signal not fire.
PARENT_WATCH_SECONDS = 1.0
# prctl(2): the signal the kernel sends a process when the thread that forked it ends.
PR_SET_PDEATHSIG = 1
# How often a worker hands the memory its allocator holds free back to the system (malloc_trim).
TRIM_INTERVAL_SECONDS = 30.0
# Lines written as they are (the access log is one JSON document a line), and ecrd's own diagnostics.
ACCESS_FORMAT = "access"
DIAGNOSTIC_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"


class SharedSocketServer(MPServer):
    """granian's multi-process server, serving one socket the serve command bound and listens on.

    On Linux granian has each worker bind its own socket with SO_REUSEPORT, which also lets any other process
    of the same user bind the port: a second server would start beside the first and the kernel would split
    requests between two registries. One socket without SO_REUSEPORT, shared by the workers, makes a port in
    use a start-up error, as on every other server.
    """

    def __init__(self, listener: socket.socket, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.listener = listener

    def _init_shared_socket(self) -> None:
        # What granian's own _init_shared_socket leaves on other systems, given its socket: no listener spec
        # (workers then serve the holder's descriptor), the holder, its descriptor, and a socket object.
        # granian's stubs type these attributes as always None and the holder as made without arguments
        # (it takes the descriptor, whether it is a Unix socket, and the backlog).
        self._ssp = None
        self._shd = SocketHolder(self.listener.fileno(), False, self.backlog)  # type: ignore[call-arg,assignment]
        self._sfd = self.listener.fileno()  # type: ignore[assignment]
        self._sso = self.listener


def main() -> int:
    settings = Settings.from_serialized_environment()
    listener = socket.socket(fileno=int(sys.argv[1]))
    server = SharedSocketServer(
        listener,
        "ecrd.app:create_app",
        address=settings.host,
        port=settings.port,
        interface=Interfaces.ASGI,
        workers=settings.resolved_workers,
        factory=True,
        log_level=settings.log_level,
        log_access=False,  # ecrd writes its own access line, with the principal and the action
        log_dictconfig=logging_config(settings.log_level),
        # A client gets this long to send a request's headers (also the idle limit of a kept-alive
        # connection), so stalled or trickling clients cannot pile up; in-flight requests per worker are
        # bounded so a flood queues in the kernel's backlog instead of exhausting memory.
        http1_settings=HTTP1Settings(header_read_timeout=HEADER_READ_TIMEOUT_MS),
        backpressure=MAX_REQUESTS_IN_FLIGHT,
        backlog=LISTEN_BACKLOG,
        ssl_cert=Path(settings.tls_cert) if settings.tls_cert else None,
        ssl_key=Path(settings.tls_key) if settings.tls_key else None,
    )
    print(f"ecrd: serving on {settings.resolved_public_url} (data in {settings.data_dir})", flush=True)
    server.serve(target_loader=functools.partial(worker_app, os.getpid()), wrap_loader=False)
    return 0


def logging_config(level: str) -> dict[str, Any]:
    """granian's logging, plus ecrd's: access lines on stdout as they are, diagnostics on stderr. The workers
    apply it before they build the application (and the supervisor for itself)."""
    config: dict[str, Any] = copy.deepcopy(LOGGING_CONFIG)
    config["formatters"]["ecrd"] = {"()": "logging.Formatter", "fmt": DIAGNOSTIC_FORMAT}
    config["handlers"]["ecrd"] = {"formatter": "ecrd", "class": "logging.StreamHandler", "stream": "ext://sys.stderr"}
    config["handlers"]["ecrd.access"] = {
        "formatter": ACCESS_FORMAT,
        "class": "logging.StreamHandler",
        "stream": "ext://sys.stdout",
    }
    config["loggers"]["ecrd"] = {"handlers": ["ecrd"], "level": level.upper(), "propagate": False}
    # Access lines are INFO: a server run at "warning" or "error" writes none.
    config["loggers"]["ecrd.access"] = {"handlers": ["ecrd.access"], "level": level.upper(), "propagate": False}
    return config


def worker_app(supervisor_pid: int) -> Any:
    """Runs first in each worker: ties the worker's life to the supervisor's, then builds the application."""
    # A forked worker inherits the supervisor's SIGTERM and SIGINT handlers, which only flag the supervisor's
    # state in this copy: a stop arriving while the application is built would be lost and the supervisor
    # would wait for this worker forever. The defaults end it; granian installs its own once it serves.
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    die_with_parent(supervisor_pid)
    from ecrd.app import create_app

    app = create_app()
    return_free_memory_periodically()
    return app


def die_with_parent(parent_pid: int) -> None:
    """End this process when ``parent_pid`` does, however it ends (SIGKILL, the OOM killer, a crash).

    A worker left behind would keep serving the port, re-parented to init, beside whatever starts next. The
    kernel's parent-death signal is the certain way (SIGKILL: the supervisor is gone, so nothing would finish
    a graceful stop, and the data is crash-safe by design); a thread watching the parent covers systems
    without prctl.
    """
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
    except (OSError, AttributeError):
        pass  # no prctl (not Linux): the watch below still ends the worker
    if os.getppid() != parent_pid:
        # The parent died before the signal was asked for: nobody will send it.
        os._exit(1)
    threading.Thread(target=_watch_parent, args=(parent_pid,), name="ecrd-parent-watch", daemon=True).start()


def return_free_memory_periodically() -> None:
    """Hand back to the system, now and every few seconds, the memory the C allocator holds free.

    glibc returns freed memory only from the top of a heap, and keeps the rest for reuse: the garbage of building
    the application (parsed service models, compiled statements) and of a burst of requests (4 MiB body messages
    of parallel pulls) would stay resident for the life of the worker. ``malloc_trim`` releases every free page
    of every arena; it takes each arena's lock briefly, so it runs on a thread of its own, not the event loop.
    """
    try:
        trim = ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):
        return  # not glibc: its allocator returns memory by its own rules
    trim.argtypes = [ctypes.c_size_t]

    def trim_forever() -> None:
        while True:
            trim(0)
            time.sleep(TRIM_INTERVAL_SECONDS)

    threading.Thread(target=trim_forever, name="ecrd-memory-trim", daemon=True).start()


def _watch_parent(parent_pid: int) -> None:
    while os.getppid() == parent_pid:
        time.sleep(PARENT_WATCH_SECONDS)
    os.kill(os.getpid(), signal.SIGKILL)
