"""IAM users and their long-term access keys (the root's keys too): create, read, list, change, tag, delete.

Every write that checks before it writes runs in one transaction and locks the user's row (or, for the account
root, takes the identity advisory lock), so two processes cannot both pass a check only one of them may pass.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from sqlalchemy import Connection

from ecrd.domain.pages import Page
from ecrd.errors import DeleteConflict, EntityAlreadyExists, LimitExceeded, NoSuchEntity
from ecrd.metadata import iam as q
from ecrd.metadata import login_profiles
from ecrd.metadata.iam import ACTIVE, INACTIVE, AccessKeyRecord, Tags, UserRecord
from ecrd.metadata.store import MetadataStore
from ecrd.services.iam.constraints import NAME, PATH, check_text, invalid
from ecrd.services.iam.entities import (
    PrincipalDeleted,
    creating,
    list_entities,
    refuse_delete_with_policies,
    refuse_taken_or_over_quota,
    rename_entity,
    user_named,
)
from ecrd.services.iam.identifiers import new_access_key_id, new_secret, unique_id
from ecrd.services.iam.limits import MARKERS, MAX_ACCESS_KEYS, MAX_USERS
from ecrd.services.iam.tags import check_tags, tag_entity, untag_entity
from ecrd.services.secrets import SecretBox

__all__ = ["AccessKeyRecord", "NewAccessKey", "Tags", "UserRecord", "UserService"]


@dataclass(frozen=True, slots=True)
class NewAccessKey:
    """A key as CreateAccessKey returns it: the only time its secret is shown."""

    access_key_id: str
    secret_access_key: str
    user_name: str | None
    status: str
    created_at: float


class UserService:
    def __init__(
        self,
        store: MetadataStore,
        *,
        account_id: str,
        secret_box: SecretBox,
        on_principal_deleted: list[PrincipalDeleted],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.account_id = account_id
        self.secret_box = secret_box
        self.on_principal_deleted = on_principal_deleted
        self.clock = clock

    # -- users --------------------------------------------------------------------------------------------

    def create_user(self, name: str, *, path: str = "/", tags: Sequence[tuple[str, str]] = ()) -> UserRecord:
        check_text(name, "userName", NAME, 1, 64)
        check_text(path, "path", PATH, 1, 512)
        user = UserRecord(unique_id("AIDA"), name, path, self.clock(), check_tags(tags))
        exists = EntityAlreadyExists(f"User with name {name} already exists.")
        with creating(self.store, exists) as conn:
            taken = q.get_user(conn, name, account_id=self.account_id)
            refuse_taken_or_over_quota(
                conn, exists, taken, q.count_users, "UsersPerAccount", MAX_USERS, account_id=self.account_id
            )
            q.insert_user(conn, user, account_id=self.account_id)
        return user

    def get_user(self, name: str) -> UserRecord:
        with self.store.read() as conn:
            return user_named(conn, name, account_id=self.account_id)

    def list_users(
        self, *, path_prefix: str = "/", marker: str | None = None, max_items: int | None = None
    ) -> Page[UserRecord]:
        return list_entities(self.store, q.list_users, path_prefix, marker, max_items, account_id=self.account_id)

    def update_user(self, name: str, *, new_name: str | None = None, new_path: str | None = None) -> None:
        rename_entity(
            self.store, "user", name, account_id=self.account_id, new_name=new_name, new_path=new_path, max_name=64
        )

    def delete_user(self, name: str) -> None:
        with self.store.write() as conn:
            user = user_named(conn, name, account_id=self.account_id, for_update=True)
            # IAM refuses to delete a user that still has things attached, naming the first it finds.
            if q.count_access_keys(conn, user.id, account_id=self.account_id):
                raise DeleteConflict("Cannot delete entity, must delete access keys first.")
            if login_profiles.get_login_profile(conn, user.id) is not None:
                raise DeleteConflict("Cannot delete entity, must delete login profile first.")
            refuse_delete_with_policies(conn, "user", user.id)
            if q.groups_of_user(conn, user.id):
                raise DeleteConflict("Cannot delete entity, must remove user from all groups first.")
            # Temporary credentials of the user (GetSessionToken) go with it (foreign key cascade).
            q.delete_user(conn, user.id)
        for hook in self.on_principal_deleted:
            hook(user.arn(self.account_id), user.id)

    def tag_user(self, name: str, tags: Sequence[tuple[str, str]]) -> None:
        tag_entity(self.store, "user", name, tags, account_id=self.account_id)

    def untag_user(self, name: str, keys: Sequence[str]) -> None:
        untag_entity(self.store, "user", name, keys, account_id=self.account_id)

    def list_user_tags(self, name: str) -> Tags:
        return self.get_user(name).tags

    # -- access keys --------------------------------------------------------------------------------------

    def create_access_key(self, user_name: str | None) -> NewAccessKey:
        """A new long-term key for the user, or for the account root when ``user_name`` is None."""
        now = self.clock()
        key_id, secret = new_access_key_id("AKIA"), new_secret()
        with self.store.write() as conn:
            user = (
                user_named(conn, user_name, account_id=self.account_id, for_update=True)
                if user_name is not None
                else None
            )
            if user is None:
                q.lock_identity(conn, self.account_id)
            if q.count_access_keys(conn, user.id if user else None, account_id=self.account_id) >= MAX_ACCESS_KEYS:
                raise LimitExceeded(f"Cannot exceed quota for AccessKeysPerUser: {MAX_ACCESS_KEYS}")
            q.insert_access_key(
                conn,
                access_key_id=key_id,
                account_id=self.account_id,
                principal="user" if user else "root",
                user_id=user.id if user else None,
                sealed_secret=self.secret_box.seal(secret, context=key_id),
                created_at=now,
            )
        return NewAccessKey(key_id, secret, user.name if user else None, ACTIVE, now)

    def list_access_keys(
        self, user_name: str | None, *, marker: str | None = None, max_items: int | None = None
    ) -> Page[AccessKeyRecord]:
        with self.store.read() as conn:
            user = user_named(conn, user_name, account_id=self.account_id) if user_name is not None else None
            # At most two long-term keys each (MAX_ACCESS_KEYS): a page of them is cut in memory.
            found = q.list_access_keys(conn, user.id if user else None, account_id=self.account_id)
            keys = sorted(found, key=lambda key: key.access_key_id)
        return MARKERS.page_of(keys, lambda key: key.access_key_id, marker, max_items)

    def update_access_key(self, user_name: str | None, access_key_id: str, status: str) -> None:
        if status not in (ACTIVE, INACTIVE):
            raise invalid(status, "status", "Member must satisfy enum value set: [Active, Inactive]")
        with self.store.write() as conn:
            self._owned_key(conn, user_name, access_key_id)
            q.set_access_key_status(conn, access_key_id, status)

    def delete_access_key(self, user_name: str | None, access_key_id: str) -> None:
        with self.store.write() as conn:
            self._owned_key(conn, user_name, access_key_id)
            q.delete_access_key(conn, access_key_id)

    def _owned_key(self, conn: Connection, user_name: str | None, access_key_id: str) -> None:
        user = user_named(conn, user_name, account_id=self.account_id) if user_name is not None else None
        if not q.owns_access_key(conn, access_key_id, user.id if user else None, account_id=self.account_id):
            raise NoSuchEntity(f"The Access Key with id {access_key_id} cannot be found.")
