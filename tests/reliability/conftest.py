"""Fixtures of the reliability tests: the figures each run reports, printed in pytest's summary."""

from __future__ import annotations

import pytest

from tests.support.crash import Figures

_FIGURES: list[Figures] = []


@pytest.fixture
def reliability_figures() -> list[Figures]:
    """Where a test leaves the figures of its run; they are printed at the end of the session."""
    return _FIGURES


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not _FIGURES:
        return
    terminalreporter.section("reliability figures")
    for figures in _FIGURES:
        for line in figures.lines():
            terminalreporter.write_line(line)
