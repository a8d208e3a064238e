"""IAM tags on users, roles and policies: the model's constraints, keys that ignore case, the 50-tag quota, and
putting them on and taking them off a user or role."""

from __future__ import annotations

import unicodedata
from collections.abc import Callable, Iterable, Sequence
from typing import Final

from ecrd.errors import InvalidParameter, TooManyTags
from ecrd.metadata import iam as q
from ecrd.metadata.iam import Tags
from ecrd.metadata.store import MetadataStore
from ecrd.services.iam.constraints import invalid
from ecrd.services.iam.entities import Tagged, entity_named

MAX_TAGS: Final = 50
_TAG_PUNCTUATION: Final = frozenset("_.:/=+-@")


def _tag_text_valid(text: str) -> bool:
    # The model's [\p{L}\p{Z}\p{N}_.:/=+\-@]: letters, separators (spaces), numbers and a little punctuation.
    return all(ch in _TAG_PUNCTUATION or unicodedata.category(ch)[0] in "LZN" for ch in text)


def check_tags(tags: Sequence[tuple[str, str]]) -> Tags:
    if len(tags) > MAX_TAGS:
        raise TooManyTags("The number of tags has reached the maximum limit.")
    seen: set[str] = set()
    for index, (key, value) in enumerate(tags, start=1):
        if not 1 <= len(key) <= 128 or not _tag_text_valid(key):
            raise invalid(
                key,
                f"tags.{index}.member.key",
                r"Member must satisfy regular expression pattern: "
                r"[\p{L}\p{Z}\p{N}_.:/=+\-@]+ and have length between 1 and 128",
            )
        if len(value) > 256 or not _tag_text_valid(value):
            raise invalid(
                value,
                f"tags.{index}.member.value",
                r"Member must satisfy regular expression pattern: "
                r"[\p{L}\p{Z}\p{N}_.:/=+\-@]* and have length less than or equal to 256",
            )
        # IAM tag keys are case-insensitive.
        if key.lower() in seen:
            raise InvalidParameter("Duplicate tag keys found. Please note that Tag keys are case insensitive.")
        seen.add(key.lower())
    return tuple((key, value) for key, value in tags)


def merge_tags(existing: Tags, added: Tags) -> Tags:
    """``existing`` with ``added`` (checked) put in: a key given again, in any case, replaces its value."""
    replaced = {key.lower() for key, _ in added}
    merged = tuple(pair for pair in existing if pair[0].lower() not in replaced) + added
    if len(merged) > MAX_TAGS:
        raise TooManyTags("The number of tags has reached the maximum limit.")
    return merged


def without_tags(existing: Tags, keys: Iterable[str]) -> Tags:
    removed = {key.lower() for key in keys}
    return tuple(pair for pair in existing if pair[0].lower() not in removed)


def tag_entity(
    store: MetadataStore, owner: Tagged, name: str, tags: Sequence[tuple[str, str]], *, account_id: str
) -> None:
    """TagUser and TagRole: put ``tags`` on the account's user or role called ``name``."""
    added = check_tags(tags)
    _retag(store, owner, name, account_id, lambda existing: merge_tags(existing, added))


def untag_entity(store: MetadataStore, owner: Tagged, name: str, keys: Sequence[str], *, account_id: str) -> None:
    """UntagUser and UntagRole: take the tags with these keys (in any case) off the account's user or role."""
    _retag(store, owner, name, account_id, lambda existing: without_tags(existing, keys))


def _retag(store: MetadataStore, owner: Tagged, name: str, account_id: str, change: Callable[[Tags], Tags]) -> None:
    # The entity's row is locked, so two concurrent tag changes cannot both start from the same old tags.
    with store.write() as conn:
        entity = entity_named(conn, owner, name, account_id=account_id, for_update=True)
        q.set_tags(conn, owner, entity.id, change(entity.tags))
