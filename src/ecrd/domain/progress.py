"""How long work says how far it got: a callback its caller may pass, which knows nothing of how it is shown."""

from __future__ import annotations

from collections.abc import Callable

# Called with the phase (a few words: "blobs", "orphan objects"), the items done in it so far, and its total
# when known in advance (None otherwise). Calls come from the working thread; a phase's counts only grow.
Progress = Callable[[str, int, int | None], None]


def no_progress(_phase: str, _done: int, _total: int | None) -> None:
    """The callback of a caller that does not watch."""
