"""Principals by name and ARN: the ARN of the root, a user or a role (the resource an IAM action is authorized on),
whether an ARN that a policy names stands for an existing user or role, and what users and roles alike have
(a name, tags)."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Final, Protocol

from sqlalchemy import Connection

from ecrd.metadata import iam as q
from ecrd.metadata.iam import GroupRecord, Owner, RoleRecord, UserRecord
from ecrd.metadata.store import MetadataStore
from ecrd.services.iam.entities import Tagged, entity_named, named_principal_exists, owner_named
from ecrd.services.iam.tags import tag_entity, untag_entity


class _Lookup(Protocol):
    def __call__(
        self, conn: Connection, name: str, *, account_id: str
    ) -> UserRecord | RoleRecord | GroupRecord | None: ...


_LOOKUPS: Final[dict[Owner, _Lookup]] = {"user": q.get_user, "role": q.get_role, "group": q.get_group}


class Principals:
    def __init__(self, store: MetadataStore, *, account_id: str, clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.account_id = account_id
        self.clock = clock

    @property
    def root_arn(self) -> str:
        return f"arn:aws:iam::{self.account_id}:root"

    def root_created_at(self) -> float:
        """When the account root got its first access key: what ecrd knows of the root's creation date."""
        with self.store.read() as conn:
            keys = q.list_access_keys(conn, None, account_id=self.account_id)
        return min((key.created_at for key in keys), default=self.clock())

    def entity_arn(self, owner: Owner, name: str) -> str:
        """The ARN a user, role or group has, or would have at the root path: the resource to authorize an action
        on."""
        with self.store.read() as conn:
            found = _LOOKUPS[owner](conn, name, account_id=self.account_id)
        return found.arn(self.account_id) if found else f"arn:aws:iam::{self.account_id}:{owner}/{name}"

    def group_arn(self, name: str) -> str:
        return self.entity_arn("group", name)

    def user_arn(self, name: str) -> str:
        return self.entity_arn("user", name)

    def role_arn(self, name: str) -> str:
        return self.entity_arn("role", name)

    def entity(self, owner: Tagged, name: str) -> UserRecord | RoleRecord:
        """The user or role called ``name`` (NoSuchEntity when there is none)."""
        with self.store.read() as conn:
            return entity_named(conn, owner, name, account_id=self.account_id)

    def stored_name(self, owner: Owner, name: str) -> str:
        """The name of the user, role or group called ``name`` as it was created (IAM names ignore case)."""
        with self.store.read() as conn:
            return owner_named(conn, owner, name, account_id=self.account_id)[1]

    def tag(self, owner: Tagged, name: str, tags: Sequence[tuple[str, str]]) -> None:
        tag_entity(self.store, owner, name, tags, account_id=self.account_id)

    def untag(self, owner: Tagged, name: str, keys: Sequence[str]) -> None:
        untag_entity(self.store, owner, name, keys, account_id=self.account_id)

    def principal_exists(self, arn: str) -> bool:
        """Whether an IAM user or role ARN names an existing entity (path included) of its account, when that is
        this account or another this deployment serves; an account root, or a principal of an account served
        elsewhere, cannot be checked and passes (as in IAM)."""
        with self.store.read() as conn:
            return named_principal_exists(conn, arn, account_id=self.account_id)
