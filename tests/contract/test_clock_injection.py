"""Wall time has one source: the clock the composition root is given (``build_registry(settings, clock=...)``).

No module under src/ reads the wall clock itself (``time.time()``, ``datetime.now()``…); durations and timeouts
use ``time.monotonic()`` or ``time.perf_counter()``, which no test needs to move. And the composition root hands
its clock to everything it builds that takes one, so a fake clock reaches every service and both doors.
"""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import pytest

import ecrd.app

SRC = Path(__file__).resolve().parents[2] / "src" / "ecrd"
APP = SRC / "app.py"
# The command line is the process's outer edge, beside the composition root: it turns a user's "--since 2h" into
# a moment before anything is built. The application it starts reads time only through its clock.
EDGES = {SRC / "cli"}
MODULES = sorted(p for p in SRC.rglob("*.py") if "migrations" not in p.parts and p.parent not in EDGES)

# Attribute calls that read the wall clock: time.time(), time.time_ns(), datetime.now(), datetime.utcnow(),
# datetime.today(), date.today(). A datetime made from a given timestamp (fromtimestamp) is no clock.
_WALL_CLOCK_ATTRIBUTES = {"time", "time_ns", "now", "utcnow", "today"}
_WALL_CLOCK_OWNERS = {"time", "datetime", "date", "dt"}


def _owner_name(node: ast.expr) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return None


def wall_clock_reads(source: str) -> list[str]:
    """Where ``source`` reads the wall clock itself: the line and what it calls."""
    found: list[str] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            owner = _owner_name(node.func.value)
            if node.func.attr in _WALL_CLOCK_ATTRIBUTES and owner in _WALL_CLOCK_OWNERS:
                found.append(f"line {node.lineno}: {owner}.{node.func.attr}()")
        elif isinstance(node, ast.ImportFrom) and node.module == "time":
            found += [
                f"line {node.lineno}: from time import {alias.name}"
                for alias in node.names
                if alias.name in {"time", "time_ns"}
            ]
    return found


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(SRC)))
def test_no_module_reads_the_wall_clock_itself(path: Path) -> None:
    found = wall_clock_reads(path.read_text())
    assert not found, f"{path.relative_to(SRC)} reads the wall clock ({'; '.join(found)}): take a clock instead"


@pytest.mark.parametrize(
    ("source", "reads"),
    [
        ("import time\nx = time.time()\n", True),
        ("import time\nx = time.time_ns()\n", True),
        ("from time import time\n", True),
        ("import datetime as dt\nx = dt.datetime.now(dt.UTC)\n", True),
        ("from datetime import datetime\nx = datetime.utcnow()\n", True),
        ("import datetime\nx = datetime.date.today()\n", True),
        ("import time\nx = time.monotonic()\ny = time.perf_counter()\n", False),
        ("import datetime as dt\nx = dt.datetime.fromtimestamp(clock(), dt.UTC)\n", False),
        ("import time\ndef f(clock=time.time):\n    return clock()\n", False),
    ],
)
def test_the_check_tells_wall_clock_reads_from_durations_and_injected_clocks(source: str, reads: bool) -> None:
    assert bool(wall_clock_reads(source)) is reads


def _takes_a_clock(target: object) -> bool:
    """A class or factory function of ecrd that takes a ``clock`` parameter."""
    module = getattr(target, "__module__", "")
    if not callable(target) or not module.startswith("ecrd.") or module == "ecrd.app":
        return False
    try:
        return "clock" in inspect.signature(target).parameters
    except (TypeError, ValueError):
        return False


def test_the_composition_root_gives_its_clock_to_everything_that_takes_one() -> None:
    tree = ast.parse(APP.read_text())
    built = [node for node in ast.walk(tree) if isinstance(node, ast.Call) and isinstance(node.func, ast.Name)]
    takers = [call for call in built if _takes_a_clock(getattr(ecrd.app, call.func.id, None))]  # type: ignore[attr-defined]
    names = {call.func.id for call in takers}  # type: ignore[attr-defined]
    # The services that read time, the AWS door (SigV4's request-time window) and the request log are among them.
    assert {
        "RegistryTokens",
        "KeyService",
        "RegistryService",
        "UploadService",
        "AwsDoor",
        "PolicyAuthorizer",
        "JobRunner",
        "ScanningService",
        "RequestLog",
    } <= names
    missing = sorted(
        f"{call.func.id} (line {call.lineno})"
        for call in takers  # type: ignore[attr-defined]
        if not any(keyword.arg == "clock" for keyword in call.keywords)
    )
    assert not missing, f"app.py builds these without its clock: {', '.join(missing)}"
