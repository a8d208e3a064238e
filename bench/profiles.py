"""Profiles of ecrd under a workload: py-spy attached to the server's process tree, and a plain-text summary.

py-spy writes collapsed stacks (``--format raw``: one ``frame;frame;… count`` line per distinct stack, the
format flamegraph.pl and speedscope open). The summary ranks functions by self samples (where the CPU is)
and by inclusive samples (which call paths cost it).
"""

from __future__ import annotations

import re
import signal
import subprocess
from collections import Counter
from pathlib import Path

SAMPLE_RATE = 200
STOP_TIMEOUT = 60.0

MODES = {"cpu": [], "gil": ["--gil"], "wall": ["--idle"]}
"""py-spy's views: threads running (cpu), only the thread holding the GIL (gil), every thread (wall)."""

_FRAME = re.compile(r"^(?P<function>.*) \((?P<file>[^()]*?)(?::(?P<line>\d+))?\)$")


class Profiler:
    """``py-spy record`` of a process and its children while a ``with`` block runs."""

    def __init__(self, py_spy: str, pid: int, output: Path, *, mode: str = "cpu") -> None:
        self.argv = [
            py_spy,
            "record",
            "--pid",
            str(pid),
            "--subprocesses",
            "--format",
            "raw",
            "--rate",
            str(SAMPLE_RATE),
            "--nonblocking",
            "--threads",
            "--output",
            str(output),
            *MODES[mode],
        ]
        self.output = output
        self._popen: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Profiler:
        self.output.parent.mkdir(parents=True, exist_ok=True)
        log = self.output.with_suffix(".log").open("wb")
        self._popen = subprocess.Popen(self.argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        log.close()
        return self

    def __exit__(self, *exc_info: object) -> None:
        popen = self._popen
        if popen is None:
            return
        popen.send_signal(signal.SIGINT)  # py-spy writes its output on SIGINT
        try:
            popen.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            popen.kill()
            popen.wait(timeout=10)


def _short(frame: str) -> str:
    """``function (path/to/file.py:123)`` → ``file.py:function`` with the package path kept for ecrd."""
    match = _FRAME.match(frame)
    if match is None:
        return frame
    path = match["file"]
    if "/ecrd/" in path:
        path = "ecrd/" + path.rsplit("/ecrd/", 1)[1]
    where = path if path.startswith("ecrd/") else path.rsplit("/", 1)[-1]
    return f"{where}:{match['function']}"


WAITS = frozenset(
    {
        "threading.py:Condition.wait",
        "threading.py:Event.wait",
        "queue.py:Queue.get",
        "selectors.py:EpollSelector.select",
        "time.sleep",
    }
)
"""Leaf frames of threads that wait: py-spy sometimes samples them as running; they are not CPU."""


def summarize(raw: Path, top: int = 25, *, keep_waits: bool = False) -> str:
    """Self and inclusive sample counts per function of a raw py-spy profile, as text.

    Stacks ending in a wait are left out. Inclusive counts are listed for ecrd's own functions (which call
    paths cost the CPU) and self counts for every function (where it is spent).
    """
    self_counts: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = waiting = 0
    for line in raw.read_text(errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [_short(frame) for frame in stack.split(";") if not frame.startswith(("process ", "thread "))]
        if not frames:
            continue
        if frames[-1] in WAITS and not keep_waits:
            waiting += count
            continue
        total += count
        self_counts[frames[-1]] += count
        for frame in set(frames):
            if frame.startswith("ecrd/") and not frame.startswith(("ecrd/__main__", "ecrd/cli/")):
                inclusive[frame] += count
    if total == 0:
        return f"{raw.name}: no samples (was the server busy? is ptrace allowed?)\n"
    lines = [
        f"{raw.name}: {total} busy samples at {SAMPLE_RATE} Hz ({waiting} waiting, left out)",
        "",
        "self (where the CPU is):",
    ]
    lines += [f"  {count / total:6.1%}  {frame}" for frame, count in self_counts.most_common(top)]
    lines += ["", "inclusive, ecrd functions (which call paths cost it):"]
    lines += [f"  {count / total:6.1%}  {frame}" for frame, count in inclusive.most_common(top)]
    return "\n".join(lines) + "\n"
