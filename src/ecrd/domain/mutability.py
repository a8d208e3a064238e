"""Tag immutability: whether a tag may be moved, given the repository's mutability and exclusion filters."""

from __future__ import annotations

from collections.abc import Iterable

from ecrd.domain.records import MutabilityExclusion
from ecrd.domain.wildcards import wildcard_matches

MUTABILITY_VALUES = ("MUTABLE", "IMMUTABLE", "IMMUTABLE_WITH_EXCLUSION", "MUTABLE_WITH_EXCLUSION")


def matches_any(tag: str, exclusions: Iterable[MutabilityExclusion]) -> bool:
    return any(wildcard_matches(e.filter, tag) for e in exclusions)


def tag_is_immutable(mutability: str, exclusions: Iterable[MutabilityExclusion], tag: str) -> bool:
    if mutability == "IMMUTABLE":
        return True
    if mutability == "IMMUTABLE_WITH_EXCLUSION":
        return not matches_any(tag, exclusions)
    if mutability == "MUTABLE_WITH_EXCLUSION":
        return matches_any(tag, exclusions)
    return False
