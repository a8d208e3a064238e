"""ruff (lint and format) and mypy (strict) stay clean: the house style, checked where CI runs everything else."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.skipif(shutil.which("ruff") is None, reason="ruff is installed by scripts/test")
def test_ruff_is_clean() -> None:
    paths = [p for p in ("src", "tests", "bench") if (ROOT / p).exists()]
    result = subprocess.run(["ruff", "check", *paths], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.skipif(shutil.which("ruff") is None, reason="ruff is installed by scripts/test")
def test_the_code_is_formatted_by_ruff() -> None:
    paths = [p for p in ("src", "tests", "bench") if (ROOT / p).exists()]
    result = subprocess.run(
        ["ruff", "format", "--check", *paths], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_strict_is_clean() -> None:
    result = subprocess.run([sys.executable, "-m", "mypy"], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
