"""Progress without a terminal: a plain line as each phase ends, and a long phase's count now and then."""

from __future__ import annotations

import io

import pytest

from ecrd.cli import progress as progress_module
from ecrd.cli.progress import progress_on_stderr


def test_one_line_per_phase_as_it_ends() -> None:
    out = io.StringIO()
    with progress_on_stderr("gc", out) as progress:
        progress("blobs", 0, None)
        progress("blobs", 500, None)
        progress("blobs", 1000, None)
        progress("orphan objects", 0, None)
        progress("orphan objects", 7, 9)
    assert out.getvalue().splitlines() == ["ecrd gc: blobs: 1000 done", "ecrd gc: orphan objects: 7 of 9 done"]


def test_a_long_phase_says_how_far_it_got_meanwhile(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(progress_module, "PLAIN_INTERVAL_SECONDS", 0.0)
    out = io.StringIO()
    with progress_on_stderr("fsck", out) as progress:
        progress("verifying blobs", 1, 2)
        progress("verifying blobs", 2, 2)
    assert out.getvalue().splitlines() == [
        "ecrd fsck: verifying blobs: 1 of 2 so far",
        "ecrd fsck: verifying blobs: 2 of 2 so far",
        "ecrd fsck: verifying blobs: 2 of 2 done",
    ]


def test_nothing_is_said_of_work_that_never_started() -> None:
    out = io.StringIO()
    with progress_on_stderr("vulndb import", out):
        pass
    assert out.getvalue() == ""
