"""ecrd's ECR API against moto_server on identical boto3 calls: ``python bench/run.py --moto``."""

from __future__ import annotations


def main(argv: list[str]) -> int:
    raise SystemExit("not written yet")
