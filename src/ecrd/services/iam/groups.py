"""IAM groups and their members: create, read (with its members), list, rename, delete, and add and remove users.

A group has no credentials: it gives its members the policies embedded in it and attached to it (``permissions``
holds those, ``documents`` reads them for each member). Every write that checks before it writes locks the rows
it decides on: the group's, and for a membership the user's too, so a user cannot pass the GroupsPerUser quota
by joining two groups at once, nor be deleted while it joins one.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from ecrd.domain.pages import Page
from ecrd.errors import DeleteConflict, EntityAlreadyExists, LimitExceeded, NoSuchEntity
from ecrd.metadata import iam as q
from ecrd.metadata.iam import GroupRecord, UserRecord
from ecrd.metadata.store import MetadataStore
from ecrd.services.iam.constraints import NAME, PATH, check_text
from ecrd.services.iam.entities import (
    creating,
    group_named,
    list_entities,
    refuse_delete_with_policies,
    refuse_taken_or_over_quota,
    rename_entity,
    user_named,
)
from ecrd.services.iam.identifiers import unique_id
from ecrd.services.iam.limits import MARKERS, MAX_GROUPS, MAX_GROUPS_PER_USER, name_after

__all__ = ["GroupMembers", "GroupRecord", "GroupService"]

# The model's groupNameType: [\w+=,.@-]+, 1 to 128 characters (users' names stop at 64).
GROUP_NAME_MAX = 128


@dataclass(frozen=True, slots=True)
class GroupMembers:
    """GetGroup's answer: the group and a page of its members."""

    group: GroupRecord
    users: Page[UserRecord]


class GroupService:
    def __init__(self, store: MetadataStore, *, account_id: str, clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.account_id = account_id
        self.clock = clock

    def create_group(self, name: str, *, path: str = "/") -> GroupRecord:
        check_text(name, "groupName", NAME, 1, GROUP_NAME_MAX)
        check_text(path, "path", PATH, 1, 512)
        group = GroupRecord(unique_id("AGPA"), name, path, self.clock())
        exists = EntityAlreadyExists(f"Group with name {name} already exists.")
        with creating(self.store, exists) as conn:
            taken = q.get_group(conn, name, account_id=self.account_id)
            refuse_taken_or_over_quota(
                conn, exists, taken, q.count_groups, "GroupsPerAccount", MAX_GROUPS, account_id=self.account_id
            )
            q.insert_group(conn, group, account_id=self.account_id)
        return group

    def get_group(self, name: str, *, marker: str | None = None, max_items: int | None = None) -> GroupMembers:
        size = MARKERS.size(max_items)
        after = name_after(marker)
        with self.store.read() as conn:
            group = group_named(conn, name, account_id=self.account_id)
            members = q.group_members(conn, group.id, after=after, limit=size + 1)
        return GroupMembers(group, MARKERS.page_of_rows(members, size, lambda user: user.name.lower()))

    def list_groups(
        self, *, path_prefix: str = "/", marker: str | None = None, max_items: int | None = None
    ) -> Page[GroupRecord]:
        return list_entities(self.store, q.list_groups, path_prefix, marker, max_items, account_id=self.account_id)

    def update_group(self, name: str, *, new_name: str | None = None, new_path: str | None = None) -> None:
        rename_entity(
            self.store,
            "group",
            name,
            account_id=self.account_id,
            new_name=new_name,
            new_path=new_path,
            max_name=GROUP_NAME_MAX,
        )

    def delete_group(self, name: str) -> None:
        with self.store.write() as conn:
            group = group_named(conn, name, account_id=self.account_id, for_update=True)
            # "The group must not contain any users or have any attached policies" (DeleteGroup).
            if q.count_members(conn, group.id):
                raise DeleteConflict("Cannot delete entity, must remove users from group first.")
            refuse_delete_with_policies(conn, "group", group.id)
            q.delete_group(conn, group.id)

    def add_user_to_group(self, group_name: str, user_name: str) -> None:
        with self.store.write() as conn:
            group = group_named(conn, group_name, account_id=self.account_id, for_update=True)
            user = user_named(conn, user_name, account_id=self.account_id, for_update=True)
            groups = q.groups_of_user(conn, user.id)
            if group.id in {joined.id for joined in groups}:
                return  # IAM: adding a member again succeeds and changes nothing
            if len(groups) >= MAX_GROUPS_PER_USER:
                raise LimitExceeded(f"Cannot exceed quota for GroupsPerUser: {MAX_GROUPS_PER_USER}")
            q.add_member(conn, group.id, user.id)

    def remove_user_from_group(self, group_name: str, user_name: str) -> None:
        with self.store.write() as conn:
            group = group_named(conn, group_name, account_id=self.account_id, for_update=True)
            user = user_named(conn, user_name, account_id=self.account_id, for_update=True)
            if not q.remove_member(conn, group.id, user.id):
                raise NoSuchEntity(f"The user with name {user_name} cannot be found.")

    def list_groups_for_user(
        self, user_name: str, *, marker: str | None = None, max_items: int | None = None
    ) -> Page[GroupRecord]:
        with self.store.read() as conn:
            user = user_named(conn, user_name, account_id=self.account_id)
            # At most GroupsPerUser (10) groups: a page is cut in memory by the same keyset rule.
            groups = q.groups_of_user(conn, user.id)
        return MARKERS.page_of(groups, lambda group: group.name.lower(), marker, max_items)
