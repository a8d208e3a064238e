"""How ecrd's cost per request grows with the number of images: ``python bench/run.py --scale``."""

from __future__ import annotations


def main(argv: list[str]) -> int:
    raise SystemExit("not written yet")
