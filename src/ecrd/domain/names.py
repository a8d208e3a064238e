"""Repository names and tags: ECR's name rules and the OCI tag grammar."""

from __future__ import annotations

import re

from ecrd.errors import NameInvalid, TagInvalid

# ECR's pattern (botocore model, RepositoryName): lowercase components joined by '/', each component made of
# alphanumerics separated by '.', '_', '__' or runs of '-'; 2–256 characters in all.
_REPOSITORY_NAME = re.compile(r"[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*)*")
REPOSITORY_NAME_MIN = 2
REPOSITORY_NAME_MAX = 256

# OCI distribution spec: tags match [a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}.
_TAG = re.compile(r"[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}")


def is_repository_name(name: str) -> bool:
    return REPOSITORY_NAME_MIN <= len(name) <= REPOSITORY_NAME_MAX and _REPOSITORY_NAME.fullmatch(name) is not None


def check_repository_name(name: str) -> str:
    """Return ``name`` when ECR would accept it as a repository name, else raise NameInvalid."""
    if not is_repository_name(name):
        shown = name if len(name) <= 300 else name[:300] + "…"
        raise NameInvalid(
            f"Invalid parameter at 'repositoryName' failed to satisfy constraint: 'must satisfy regular "
            f"expression '{_REPOSITORY_NAME.pattern}' and have length between {REPOSITORY_NAME_MIN} and "
            f"{REPOSITORY_NAME_MAX}' (got {shown!r})",
            detail={"name": shown},
        )
    return name


def is_tag(tag: str) -> bool:
    return _TAG.fullmatch(tag) is not None


def check_tag(tag: str) -> str:
    if not is_tag(tag):
        shown = tag if len(tag) <= 300 else tag[:300] + "…"
        raise TagInvalid(
            f"invalid tag {shown!r}: a tag must match [a-zA-Z0-9_][a-zA-Z0-9._-]{{0,127}}", detail={"tag": shown}
        )
    return tag
