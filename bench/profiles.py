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

_FRAME = re.compile(r"^(?P<function>.*) \((?P<file>[^()]*?)(?::(?P<line>\d+))?\)$")


class Profiler:
    """``py-spy record`` of a process and its children while a ``with`` block runs."""

    def __init__(self, py_spy: str, pid: int, output: Path) -> None:
        self.argv = [py_spy, "record", "--pid", str(pid), "--subprocesses", "--format", "raw",
                     "--rate", str(SAMPLE_RATE), "--nonblocking", "--output", str(output)]
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
    where = "ecrd/" + path.rsplit("/ecrd/", 1)[1] if "/ecrd/" in path else path.rsplit("/", 1)[-1]
    return f"{where}:{match['function']}"


def summarize(raw: Path, top: int = 25) -> str:
    """Self and inclusive sample counts per function of a raw py-spy profile, as text."""
    self_counts: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in raw.read_text(errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [_short(frame) for frame in stack.split(";")
                  if not frame.startswith(("process ", "thread "))]
        if not frames:
            continue
        total += count
        self_counts[frames[-1]] += count
        for frame in set(frames):
            inclusive[frame] += count
    if total == 0:
        return f"{raw.name}: no samples (was the server busy? is ptrace allowed?)\n"
    lines = [f"{raw.name}: {total} samples of running Python threads at {SAMPLE_RATE} Hz", "", "self:"]
    lines += [f"  {count / total:6.1%}  {frame}" for frame, count in self_counts.most_common(top)]
    lines += ["", "inclusive (ecrd and its libraries):"]
    lines += [f"  {count / total:6.1%}  {frame}" for frame, count in inclusive.most_common(top * 2)
              if not frame.startswith(("threading.py", "<module>", "_base.py", "thread.py"))][:top]
    return "\n".join(lines) + "\n"
