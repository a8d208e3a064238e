"""Tag immutability: whether a tag may be moved, given the repository's mutability and exclusion filters."""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import lru_cache

from ecrd.domain.records import MutabilityExclusion

MUTABILITY_VALUES = ("MUTABLE", "IMMUTABLE", "IMMUTABLE_WITH_EXCLUSION", "MUTABLE_WITH_EXCLUSION")


@lru_cache(maxsize=1024)
def _wildcard(pattern: str) -> re.Pattern[str]:
    # The whole tag is matched; '*' is any run of characters (ECR filters allow no other wildcard).
    return re.compile(".*".join(re.escape(part) for part in pattern.split("*")))


def matches_any(tag: str, exclusions: Iterable[MutabilityExclusion]) -> bool:
    return any(_wildcard(e.filter).fullmatch(tag) for e in exclusions)


def tag_is_immutable(mutability: str, exclusions: Iterable[MutabilityExclusion], tag: str) -> bool:
    if mutability == "IMMUTABLE":
        return True
    if mutability == "IMMUTABLE_WITH_EXCLUSION":
        return not matches_any(tag, exclusions)
    if mutability == "MUTABLE_WITH_EXCLUSION":
        return matches_any(tag, exclusions)
    return False
