"""The real OSV advisory data in tests/data/vulndata (see its README for sources and licences): where it is and
how to read records of it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

VULNDATA = Path(__file__).resolve().parents[1] / "data" / "vulndata"
DATA_FILES = sorted(VULNDATA.glob("*.osv.jsonl"))


def records(name: str) -> Iterator[dict[str, Any]]:
    """The records of one data file, e.g. ``records("pypi")``."""
    with (VULNDATA / f"{name}.osv.jsonl").open(encoding="utf-8") as lines:
        for line in lines:
            if line.strip():
                yield json.loads(line)


def record(name: str, advisory_id: str) -> dict[str, Any]:
    for found in records(name):
        if found["id"] == advisory_id:
            return found
    raise KeyError(advisory_id)
