"""IAM entities by name, as every identity concern needs them: users, roles and groups (and the owner of a policy
attachment) looked up with IAM's NoSuchEntity wording, and the create transaction in which a concurrent create
of the same name reads as EntityAlreadyExists."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Literal, Protocol, TypeVar

from sqlalchemy import Connection
from sqlalchemy.exc import IntegrityError

from ecrd.domain.pages import Page
from ecrd.errors import DeleteConflict, EntityAlreadyExists, LimitExceeded, NoSuchEntity
from ecrd.metadata import iam as q
from ecrd.metadata.iam import GroupRecord, Owner, RoleRecord, UserRecord
from ecrd.metadata.store import MetadataStore
from ecrd.services.iam.constraints import NAME, PATH, PATH_PREFIX, check_text
from ecrd.services.iam.limits import MARKERS, name_after

Tagged = Literal["user", "role"]
"""The entities that carry tags (IAM does not tag groups)."""

PrincipalDeleted = Callable[[str, str], None]
"""Called with (ARN, unique id) after a user or role is deleted: policies naming it must stop matching a new
entity of the same name, as IAM's do."""


def user_named(conn: Connection, name: str, *, for_update: bool = False) -> UserRecord:
    user = q.get_user(conn, name, for_update=for_update)
    if user is None:
        raise NoSuchEntity(f"The user with name {name} cannot be found.")
    return user


def role_named(conn: Connection, name: str, *, for_update: bool = False) -> RoleRecord:
    role = q.get_role(conn, name, for_update=for_update)
    if role is None:
        raise NoSuchEntity(f"The role with name {name} cannot be found.")
    return role


def group_named(conn: Connection, name: str, *, for_update: bool = False) -> GroupRecord:
    group = q.get_group(conn, name, for_update=for_update)
    if group is None:
        raise NoSuchEntity(f"The group with name {name} cannot be found.")
    return group


def entity_named(conn: Connection, owner: Tagged, name: str, *, for_update: bool = False) -> UserRecord | RoleRecord:
    """The user or role called ``name``."""
    if owner == "user":
        return user_named(conn, name, for_update=for_update)
    return role_named(conn, name, for_update=for_update)


def owner_named(conn: Connection, owner: Owner, name: str, *, for_update: bool = False) -> tuple[str, str]:
    """(id, name) of the user, role or group called ``name``."""
    entity = (
        group_named(conn, name, for_update=for_update)
        if owner == "group"
        else entity_named(conn, owner, name, for_update=for_update)
    )
    return entity.id, entity.name


def refuse_delete_with_policies(conn: Connection, owner: Owner, owner_id: str) -> None:
    """IAM refuses to delete a user, role or group that still has policies, naming the first kind it finds:
    DeleteUser and DeleteGroup look at inline policies first, DeleteRole at attached ones."""
    inline = (q.count_inline_policies, "Cannot delete entity, must delete policies first.")
    attached = (q.count_attachments, "Cannot delete entity, must detach all policies first.")
    for count, message in (attached, inline) if owner == "role" else (inline, attached):
        if count(conn, owner, owner_id):
            raise DeleteConflict(message)


def rename_entity(
    store: MetadataStore,
    owner: Literal["user", "group"],
    name: str,
    *,
    new_name: str | None,
    new_path: str | None,
    max_name: int,
) -> None:
    """UpdateUser and UpdateGroup: a new name (free in any case) and/or path for the user or group ``name``."""
    noun = owner.capitalize()
    if new_name is not None:
        check_text(new_name, f"new{noun}Name", NAME, 1, max_name)
    if new_path is not None:
        check_text(new_path, "newPath", PATH, 1, 512)
    exists = EntityAlreadyExists(f"{noun} with name {new_name} already exists.")
    find, taken, rename = (
        (user_named, q.get_user, q.update_user) if owner == "user" else (group_named, q.get_group, q.update_group)
    )
    with creating(store, exists) as conn:
        entity = find(conn, name, for_update=True)
        if new_name is not None and new_name.lower() != entity.name.lower() and taken(conn, new_name):
            raise exists
        rename(conn, entity.id, name=new_name or entity.name, path=new_path or entity.path)


@contextmanager
def creating(store: MetadataStore, exists: EntityAlreadyExists) -> Iterator[Connection]:
    """A write transaction whose unique-name violation (a concurrent create) reads as ``exists``."""
    try:
        with store.write() as conn:
            yield conn
    except IntegrityError:
        raise exists from None


def refuse_taken_or_over_quota(
    conn: Connection,
    exists: EntityAlreadyExists,
    taken: object | None,
    count: Callable[[Connection], int],
    quota: str,
    maximum: int,
) -> None:
    """What every create checks in its transaction: the name is free (``taken`` is what holds it, if anything)
    and the account's quota (``quota``, IAM's name for it) has room for one more."""
    if taken is not None:
        raise exists
    if count(conn) >= maximum:
        raise LimitExceeded(f"Cannot exceed quota for {quota}: {maximum}")


_Entity = TypeVar("_Entity", UserRecord, RoleRecord, GroupRecord)


class _EntityRows(Protocol[_Entity]):
    def __call__(self, conn: Connection, *, path_prefix: str, after: str | None, limit: int) -> list[_Entity]: ...


def list_entities(
    store: MetadataStore, rows: _EntityRows[_Entity], path_prefix: str, marker: str | None, max_items: int | None
) -> Page[_Entity]:
    """ListUsers, ListRoles and ListGroups: a page of the users, roles or groups under a path, by name (IAM names
    ignore case)."""
    check_text(path_prefix, "pathPrefix", PATH_PREFIX, 1, 512)
    size = MARKERS.size(max_items)
    after = name_after(marker)
    with store.read() as conn:
        found = rows(conn, path_prefix=path_prefix, after=after, limit=size + 1)
    return MARKERS.page_of_rows(found, size, lambda entity: entity.name.lower())
