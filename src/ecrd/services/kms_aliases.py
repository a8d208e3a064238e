"""A KMS key's aliases and tags: friendly names that point at one key each, and the key's tag set.

Aliases are named within a registry (an account in a region) and point only at keys of it ("The alias and its
associated KMS key must be in the same AWS account and Region"); neither aliases nor tags are managed across
accounts."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from sqlalchemy.exc import IntegrityError

from ecrd.domain.pages import Page
from ecrd.errors import KmsAlreadyExists, KmsLimitExceeded, KmsNotFound
from ecrd.metadata import kms as q
from ecrd.services.kms_keys import (
    LIST_ALIASES,
    LIST_TAGS,
    MAX_TAGS,
    AliasRecord,
    KeyRing,
    check_alias_name,
    check_alias_target,
    check_tags,
)


class KeyAliasesAndTags(KeyRing):
    """Aliases (made, moved, deleted, listed by name) and tags (at most 50 per key) of customer managed keys."""

    # -- tags ---------------------------------------------------------------------------------------------

    def tag_resource(self, key: str, tags: Mapping[str, str] | Iterable[tuple[str, str]]) -> None:
        """Add tags to the key, replacing the values of tag keys it has (at most 50 tags per key)."""
        added = check_tags(tags)
        now = self.clock()
        with self.store.write() as conn:
            current = self._record(self._find(conn, key, now, for_update=True, own=True))
            self._customer_managed(current)
            self._not_pending_deletion(current)
            if len(q.get_tags(conn, current.key_id).keys() | added.keys()) > MAX_TAGS:
                raise KmsLimitExceeded(f"A key can have at most {MAX_TAGS} tags.")
            q.put_tags(conn, current.key_id, added)

    def untag_resource(self, key: str, tag_keys: Sequence[str]) -> None:
        now = self.clock()
        with self.store.write() as conn:
            current = self._record(self._find(conn, key, now, for_update=True, own=True))
            self._customer_managed(current)
            self._not_pending_deletion(current)
            q.delete_tags(conn, current.key_id, list(tag_keys))

    def list_resource_tags(
        self, key: str, *, limit: int | None = None, marker: str | None = None
    ) -> Page[tuple[str, str]]:
        """The key's tags by tag key, a keyset page at a time."""
        size, after = LIST_TAGS.size(limit), LIST_TAGS.position(marker)
        with self.store.read() as conn:
            row = self._find(conn, key, self.clock(), own=True)
            rows = q.list_tags(conn, row.id, after=after, limit=size + 1)
        return LIST_TAGS.paging.page_of_rows(rows, size, lambda tag: tag[0])

    # -- aliases ------------------------------------------------------------------------------------------

    def create_alias(self, name: str, target: str) -> AliasRecord:
        check_alias_name(name)
        check_alias_target(target)
        exists = KmsAlreadyExists(f"An alias with the name {self.alias_arn(name)} already exists")
        now = self.clock()
        try:
            with self.store.write() as conn:
                key = self._record(self._find(conn, target, now, for_update=True, own=True))
                self._customer_managed(key)
                self._not_pending_deletion(key)
                if q.get_alias(conn, self.registry, name, now=now) is not None:
                    raise exists
                q.delete_stale_alias(conn, self.registry, name, now=now)
                q.insert_alias(conn, self.registry, name, key.key_id, at=now)
        except IntegrityError:
            raise exists from None  # created a moment ago by someone else
        return AliasRecord(name, self.alias_arn(name), key.key_id, now, now)

    def get_alias(self, name: str) -> AliasRecord:
        with self.store.read() as conn:
            found = q.get_alias(conn, self.registry, name, now=self.clock())
        if found is None:
            raise KmsNotFound(f"Alias {self.alias_arn(name)} is not found.")
        return self._alias_record(found)

    def update_alias(self, name: str, target: str) -> AliasRecord:
        """Point an existing alias at another key."""
        check_alias_name(name)
        check_alias_target(target)
        now = self.clock()
        with self.store.write() as conn:
            alias = q.get_alias(conn, self.registry, name, now=now, for_update=True)
            if alias is None:
                raise KmsNotFound(f"Alias {self.alias_arn(name)} is not found.")
            key = self._record(self._find(conn, target, now, for_update=True, own=True))
            self._customer_managed(key)
            self._not_pending_deletion(key)
            q.retarget_alias(conn, self.registry, name, key.key_id, at=now)
        return AliasRecord(name, self.alias_arn(name), key.key_id, alias.created_at, now)

    def delete_alias(self, name: str) -> None:
        check_alias_name(name)
        with self.store.write() as conn:
            if q.get_alias(conn, self.registry, name, now=self.clock(), for_update=True) is None:
                raise KmsNotFound(f"Alias {self.alias_arn(name)} is not found.")
            q.delete_alias(conn, self.registry, name)

    def list_aliases(
        self, *, key: str | None = None, limit: int | None = None, marker: str | None = None
    ) -> Page[AliasRecord]:
        """The registry's aliases by name, all of them or those of one of its keys, a keyset page at a time."""
        size, after = LIST_ALIASES.size(limit), LIST_ALIASES.position(marker)
        now = self.clock()
        with self.store.read() as conn:
            key_id = self._find(conn, key, now, own=True).id if key is not None else None
            rows = q.list_aliases(conn, self.registry, now=now, key_id=key_id, after=after, limit=size + 1)
        return LIST_ALIASES.paging.page_of_rows(
            [self._alias_record(row) for row in rows], size, lambda alias: alias.name
        )
