"""Progress of long admin commands on stderr: a live display on a terminal, a few plain lines otherwise.

stdout keeps only the command's result (text or JSON), so ``ecrd gc --json > report.json`` stays parseable and
a log collecting stderr gets one line per phase rather than a redrawn bar.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TextIO

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, SpinnerColumn, TaskID, TextColumn, TimeElapsedColumn
from rich.progress import Progress as RichProgress

from ecrd.domain.progress import Progress

# Without a terminal, a phase still running says how far it got at most this often.
PLAIN_INTERVAL_SECONDS = 30.0


@contextmanager
def progress_on_stderr(command: str, stream: TextIO | None = None) -> Iterator[Progress]:
    """A callback showing ``command``'s progress on stderr (``stream``), for the duration of the block."""
    out = stream if stream is not None else sys.stderr
    if out.isatty():
        with _live(out) as callback:
            yield callback
    else:
        plain = _PlainLines(command, out)
        try:
            yield plain
        finally:
            plain.finish()


@contextmanager
def _live(out: TextIO) -> Iterator[Progress]:
    display = RichProgress(
        SpinnerColumn(),
        TextColumn("{task.description:<16}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=Console(file=out),
    )
    tasks: dict[str, TaskID] = {}

    def callback(phase: str, done: int, total: int | None) -> None:
        if phase not in tasks:
            for previous in tasks.values():  # phases run one after another: an earlier one is over
                display.update(previous, total=display.tasks[previous].completed)
            tasks[phase] = display.add_task(phase, total=total)
        display.update(tasks[phase], completed=done, total=total)

    with display:
        yield callback
        for task in tasks.values():
            display.update(task, total=display.tasks[task].completed)


class _PlainLines:
    """One line when a phase ends (and, for a long one, every ``PLAIN_INTERVAL_SECONDS`` while it runs)."""

    def __init__(self, command: str, out: TextIO) -> None:
        self.command = command
        self.out = out
        self.phase: str | None = None
        self.done = 0
        self.total: int | None = None
        self.said_at = time.monotonic()

    def __call__(self, phase: str, done: int, total: int | None) -> None:
        if phase != self.phase:
            self._say(finished=True)
            self.phase, self.said_at = phase, time.monotonic()
        self.done, self.total = done, total
        if time.monotonic() - self.said_at >= PLAIN_INTERVAL_SECONDS:
            self._say(finished=False)

    def finish(self) -> None:
        self._say(finished=True)
        self.phase = None

    def _say(self, *, finished: bool) -> None:
        if self.phase is None:
            return
        of = f" of {self.total}" if self.total is not None else ""
        state = "done" if finished else "so far"
        print(f"ecrd {self.command}: {self.phase}: {self.done}{of} {state}", file=self.out, flush=True)
        self.said_at = time.monotonic()
