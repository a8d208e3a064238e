"""Amazon Resource Names of registry resources."""

from __future__ import annotations


def repository_arn(region: str, account_id: str, name: str) -> str:
    return f"arn:aws:ecr:{region}:{account_id}:repository/{name}"


def parse_repository_arn(arn: str) -> tuple[str, str, str] | None:
    """Return (region, account, name) of an ECR repository ARN, or None when it is not one."""
    parts = arn.split(":", 5)
    if len(parts) != 6 or parts[0] != "arn" or parts[2] != "ecr" or not parts[5].startswith("repository/"):
        return None
    return parts[3], parts[4], parts[5][len("repository/") :]
