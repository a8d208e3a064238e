"""IAM entities by name, as every identity concern needs them: users, roles and groups (and the owner of a policy
attachment) looked up with IAM's NoSuchEntity wording, and the create transaction in which a concurrent create
of the same name reads as EntityAlreadyExists."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Final, Literal, Protocol, TypeVar

from sqlalchemy import Connection
from sqlalchemy.exc import IntegrityError

from ecrd.domain.pages import Page
from ecrd.errors import DeleteConflict, EntityAlreadyExists, LimitExceeded, NoSuchEntity
from ecrd.metadata import accounts as accounts_q
from ecrd.metadata import iam as q
from ecrd.metadata.iam import GroupRecord, Owner, RoleRecord, UserRecord
from ecrd.metadata.store import MetadataStore
from ecrd.services.iam.constraints import NAME, PATH, PATH_PREFIX, check_text
from ecrd.services.iam.limits import MARKERS, name_after

Tagged = Literal["user", "role"]
"""The entities that carry tags (IAM does not tag groups)."""

_ENTITY_ARN: Final = re.compile(
    r"arn:aws:iam::(?P<account>[0-9]{12}):(?P<kind>user|role)(?P<path>/(?:.*/)?)(?P<name>[^/]+)"
)
# What claims to be a user's or role's ARN, well formed or not.
_ENTITY_KIND: Final = re.compile(r"arn:aws:iam::(?P<account>[0-9]{12}):(?:user|role)(?:/.*)?")

PrincipalDeleted = Callable[[str, str], None]
"""Called with (ARN, unique id) after a user or role is deleted: policies naming it must stop matching a new
entity of the same name, as IAM's do."""


def user_named(conn: Connection, name: str, *, account_id: str, for_update: bool = False) -> UserRecord:
    user = q.get_user(conn, name, account_id=account_id, for_update=for_update)
    if user is None:
        raise NoSuchEntity(f"The user with name {name} cannot be found.")
    return user


def role_named(conn: Connection, name: str, *, account_id: str, for_update: bool = False) -> RoleRecord:
    role = q.get_role(conn, name, account_id=account_id, for_update=for_update)
    if role is None:
        raise NoSuchEntity(f"The role with name {name} cannot be found.")
    return role


def group_named(conn: Connection, name: str, *, account_id: str, for_update: bool = False) -> GroupRecord:
    group = q.get_group(conn, name, account_id=account_id, for_update=for_update)
    if group is None:
        raise NoSuchEntity(f"The group with name {name} cannot be found.")
    return group


def entity_named(
    conn: Connection, owner: Tagged, name: str, *, account_id: str, for_update: bool = False
) -> UserRecord | RoleRecord:
    """The user or role of the account called ``name``."""
    if owner == "user":
        return user_named(conn, name, account_id=account_id, for_update=for_update)
    return role_named(conn, name, account_id=account_id, for_update=for_update)


def owner_named(
    conn: Connection, owner: Owner, name: str, *, account_id: str, for_update: bool = False
) -> tuple[str, str]:
    """(id, name) of the user, role or group of the account called ``name``."""
    entity = (
        group_named(conn, name, account_id=account_id, for_update=for_update)
        if owner == "group"
        else entity_named(conn, owner, name, account_id=account_id, for_update=for_update)
    )
    return entity.id, entity.name


def named_principal_exists(conn: Connection, arn: str, *, account_id: str) -> bool:
    """Whether the IAM user or role ARN that a policy names stands for an existing one (path included), looked up
    in the ARN's own account: ``account_id``'s, or any other this deployment serves. An account root (its ARN or
    bare id) passes for any account, as in IAM, and so do principals of accounts served elsewhere, which nothing
    here can check."""
    claimed = _ENTITY_KIND.fullmatch(arn)
    if claimed is None:
        return True
    owner_account = claimed["account"]
    if owner_account != account_id and accounts_q.get_account(conn, owner_account) is None:
        return True
    match = _ENTITY_ARN.fullmatch(arn)
    if match is None:
        return False  # "user" or "role" without a name names nobody
    name = match["name"]
    found: UserRecord | RoleRecord | None = (
        q.get_user(conn, name, account_id=owner_account)
        if match["kind"] == "user"
        else q.get_role(conn, name, account_id=owner_account)
    )
    return found is not None and found.path == match["path"] and found.name == name


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
    account_id: str,
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
        entity = find(conn, name, account_id=account_id, for_update=True)
        if (
            new_name is not None
            and new_name.lower() != entity.name.lower()
            and taken(conn, new_name, account_id=account_id)
        ):
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
    count: Callable[[Connection, str], int],
    quota: str,
    maximum: int,
    *,
    account_id: str,
) -> None:
    """What every create checks in its transaction: the name is free in the account (``taken`` is what holds it,
    if anything) and the account's quota (``quota``, IAM's name for it) has room for one more."""
    if taken is not None:
        raise exists
    if count(conn, account_id) >= maximum:
        raise LimitExceeded(f"Cannot exceed quota for {quota}: {maximum}")


_Entity = TypeVar("_Entity", UserRecord, RoleRecord, GroupRecord)


class _EntityRows(Protocol[_Entity]):
    def __call__(
        self, conn: Connection, *, account_id: str, path_prefix: str, after: str | None, limit: int
    ) -> list[_Entity]: ...


def list_entities(
    store: MetadataStore,
    rows: _EntityRows[_Entity],
    path_prefix: str,
    marker: str | None,
    max_items: int | None,
    *,
    account_id: str,
) -> Page[_Entity]:
    """ListUsers, ListRoles and ListGroups: a page of the account's users, roles or groups under a path, by name
    (IAM names ignore case)."""
    check_text(path_prefix, "pathPrefix", PATH_PREFIX, 1, 512)
    size = MARKERS.size(max_items)
    after = name_after(marker)
    with store.read() as conn:
        found = rows(conn, account_id=account_id, path_prefix=path_prefix, after=after, limit=size + 1)
    return MARKERS.page_of_rows(found, size, lambda entity: entity.name.lower())
