"""What a server costs while a workload runs: CPU time and memory of its whole process tree, read from /proc.

CPU is ``utime + stime`` of every process in the tree (threads included), read before and after a workload;
memory is the summed RSS of the tree, sampled by a background thread. Per-thread CPU is also kept, grouped by
thread name, so a Python server's time splits into its event loop, its worker threads and the HTTP server's
native threads without a profiler.
"""

from __future__ import annotations

import hashlib
import os
import random
import re
import statistics
import struct
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")
MB = 1_000_000
MiB = 1 << 20
GiB = 1 << 30

SAMPLE_INTERVAL = 0.05
"""Seconds between two RSS samples."""

TREE_REFRESH = 1.0
"""Seconds between two walks of /proc for the process tree (workers may be spawned late)."""


def _stat_fields(path: Path) -> list[str] | None:
    """Fields of a /proc stat file after the command name (which may hold spaces and parentheses)."""
    try:
        text = path.read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    return text[text.rfind(")") + 2 :].split()


def _comm(path: Path) -> str:
    try:
        return path.read_text().strip()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return "?"


def tree_pids(root: int) -> list[int]:
    """``root`` and all its descendants that are alive now."""
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        fields = _stat_fields(Path(entry.path) / "stat")
        if fields is None:
            continue
        children.setdefault(int(fields[1]), []).append(int(entry.name))
    if not Path(f"/proc/{root}").exists():
        return []
    found: list[int] = []
    pending = [root]
    while pending:
        pid = pending.pop()
        if pid not in found:
            found.append(pid)
            pending.extend(children.get(pid, []))
    return found


def cpu_seconds(pids: Iterable[int]) -> float:
    """User plus system CPU seconds used so far by ``pids`` (each with all its threads)."""
    ticks = 0
    for pid in pids:
        fields = _stat_fields(Path(f"/proc/{pid}/stat"))
        if fields is not None:
            ticks += int(fields[11]) + int(fields[12])
    return ticks / CLOCK_TICKS


def rss_bytes(pids: Iterable[int]) -> int:
    total = 0
    for pid in pids:
        fields = _stat_fields(Path(f"/proc/{pid}/stat"))
        if fields is not None:
            total += int(fields[21]) * PAGE_SIZE
    return total


_DIGITS = re.compile(r"[-_ ]?\d+$")


def thread_cpu(pids: Iterable[int]) -> dict[str, float]:
    """CPU seconds per thread name (trailing numbers dropped, so pools add up), over all ``pids``.

    Python threads carry the process name; a process's main thread (for a granian worker: the event loop)
    is told apart as ``name (main thread)``.
    """
    by_name: dict[str, float] = {}
    for pid in pids:
        try:
            tasks = list(os.scandir(f"/proc/{pid}/task"))
        except (FileNotFoundError, ProcessLookupError):
            continue
        for task in tasks:
            fields = _stat_fields(Path(task.path) / "stat")
            if fields is None:
                continue
            name = _DIGITS.sub("", _comm(Path(task.path) / "comm")) or "?"
            if task.name == str(pid):
                name += " (main thread)"
            by_name[name] = by_name.get(name, 0.0) + (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
    return by_name


class RssSampler:
    """Samples the summed RSS of a process tree in a background thread; ``peak`` is the highest seen."""

    def __init__(self, root: int) -> None:
        self.root = root
        self.peak = 0
        self.samples: list[tuple[float, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        pids = tree_pids(self.root)
        refreshed = time.monotonic()
        start = refreshed
        while not self._stop.is_set():
            now = time.monotonic()
            if now - refreshed > TREE_REFRESH:
                pids, refreshed = tree_pids(self.root), now
            rss = rss_bytes(pids)
            self.samples.append((now - start, rss))
            self.peak = max(self.peak, rss)
            self._stop.wait(SAMPLE_INTERVAL)


@dataclass
class Usage:
    """What one server spent during one workload run."""

    cpu_seconds: float = 0.0
    peak_rss: int = 0
    start_rss: int = 0
    threads: dict[str, float] = field(default_factory=dict)


class UsageMeter:
    """``with UsageMeter(pid) as meter: …`` → ``meter.usage``: CPU and peak RSS of the tree during the block."""

    def __init__(self, root: int) -> None:
        self.root = root
        self.usage = Usage()
        self._sampler = RssSampler(root)
        self._cpu0 = 0.0
        self._threads0: dict[str, float] = {}

    def __enter__(self) -> UsageMeter:
        pids = tree_pids(self.root)
        self._cpu0 = cpu_seconds(pids)
        self._threads0 = thread_cpu(pids)
        self.usage.start_rss = rss_bytes(pids)
        self._sampler.__enter__()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._sampler.__exit__(*exc_info)
        pids = tree_pids(self.root)
        self.usage.cpu_seconds = cpu_seconds(pids) - self._cpu0
        self.usage.peak_rss = max(self._sampler.peak, rss_bytes(pids))
        after = thread_cpu(pids)
        self.usage.threads = {
            name: round(seconds - self._threads0.get(name, 0.0), 3)
            for name, seconds in after.items()
            if seconds - self._threads0.get(name, 0.0) > 0.005
        }
        # Threads that ended meanwhile (anyio retires idle worker threads) still count in their process.
        exited = self.usage.cpu_seconds - sum(self.usage.threads.values())
        if exited > 0.02:
            self.usage.threads["(threads that exited)"] = round(exited, 3)


@dataclass(frozen=True)
class Summary:
    """Median with min and max of a few repetitions."""

    median: float
    low: float
    high: float
    values: tuple[float, ...]

    @classmethod
    def of(cls, values: Sequence[float]) -> Summary:
        return cls(statistics.median(values), min(values), max(values), tuple(values))

    def as_json(self) -> dict[str, object]:
        return {"median": self.median, "min": self.low, "max": self.high, "values": list(self.values)}


# -- the disk's limit ---------------------------------------------------------------------------------------------

_POOL = 32 * MiB
_STRIDE = 104_729 * 31


@cache
def _random_pool() -> bytes:
    return random.Random(20261205).randbytes(_POOL)


def _incompressible(size: int) -> Iterator[tuple[bytes, memoryview]]:
    """``size`` bytes in MiB pieces, each a unique 16-byte header and a slice of a random pool: what a push sends
    (the client's blobs are made the same way), incompressible and never the same MiB twice, at no CPU cost."""
    pool = memoryview(_random_pool())
    for index, position in enumerate(range(0, size, MiB)):
        length = min(MiB, size - position)
        header = struct.pack(">QQ", 0xD15C, index)[:length]
        offset = (index * _STRIDE) % (_POOL - MiB)
        yield header, pool[offset + len(header) : offset + length]


@dataclass(frozen=True)
class DiskLimit:
    """What the machine itself does with ``size`` bytes, measured next to a push of that size."""

    write_mbps: float
    """A sequential write of incompressible bytes to a new file, fsynced at the end (then removed)."""
    sha256_mbps: float
    """sha256 of the same bytes from memory, one core."""


def disk_limit(directory: Path, size: int) -> DiskLimit:
    """The disk's limit for a push of ``size`` bytes into ``directory``'s filesystem: the bytes written as a
    registry writes a blob (in order, then one fsync), with nothing else (no network, no hashing)."""
    pieces = list(_incompressible(size))  # the pool is made before the clock
    path = directory / f".disk-limit-{os.getpid()}"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        start = time.perf_counter()
        for header, body in pieces:
            os.writev(fd, [header, body])
        os.fsync(fd)
        write_seconds = time.perf_counter() - start
    finally:
        os.close(fd)
        path.unlink(missing_ok=True)
    hasher = hashlib.sha256()
    start = time.perf_counter()
    for header, body in pieces:
        hasher.update(header)
        hasher.update(body)
    hash_seconds = time.perf_counter() - start
    return DiskLimit(size / write_seconds / MB, size / hash_seconds / MB)
