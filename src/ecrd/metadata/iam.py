"""Queries on the identity tables: users, groups, roles, managed and inline policies, attachments, group
memberships and access keys.

IAM is global per account: every user, role, group, customer managed policy and access key belongs to one account
(``account_id``), and every lookup by name, listing and count is of one account's rows. Rows found by their own
id (a user's, a role's, a policy's, a key's) need no account: those ids are unique in the whole deployment.

Named entities are looked up by ``name_key`` (the name in lower case), as IAM names are unique without regard
to case within an account. Listing functions order by ``name_key`` and start after a given key, returning up to
``limit`` rows; callers ask for one more than a page to learn whether the listing is truncated.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final, Literal

from sqlalchemy import Connection, String, Table, and_, cast, delete, func, insert, null, select, union_all, update
from sqlalchemy.engine import Row
from sqlalchemy.sql.elements import ColumnElement

from ecrd.metadata.iam_tables import (
    iam_access_keys,
    iam_group_attachments,
    iam_group_members,
    iam_group_policies,
    iam_groups,
    iam_policies,
    iam_policy_versions,
    iam_role_attachments,
    iam_role_policies,
    iam_roles,
    iam_user_attachments,
    iam_user_policies,
    iam_users,
)

Owner = Literal["user", "role", "group"]
"""Who holds inline policies and attachments."""
Principal = Literal["root", "user", "role"]
"""Whose credentials an access key is."""
Tags = tuple[tuple[str, str], ...]

# An access key's status: only an Active key signs requests.
ACTIVE: Final = "Active"
INACTIVE: Final = "Inactive"

AWS_POLICY_ARN_PREFIX: Final = "arn:aws:iam::aws:policy"
# Any fixed number serves; it only has to differ from the other advisory locks ecrd takes (migrations: 4242001).
_IDENTITY_LOCK: Final = 4242002
# PostgreSQL's two-key advisory locks take 32-bit integers: an account's lock is the account id modulo this
# (two accounts sharing a lock only wait for each other, they never decide for each other).
_LOCK_KEY_SPACE: Final = 2**31


# -- records ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class UserRecord:
    id: str
    name: str
    path: str
    created_at: float
    tags: Tags

    def arn(self, account_id: str) -> str:
        return f"arn:aws:iam::{account_id}:user{self.path}{self.name}"


@dataclass(frozen=True, slots=True)
class RoleRecord:
    id: str
    name: str
    path: str
    created_at: float
    description: str
    max_session_duration: int
    assume_role_policy: str
    tags: Tags

    def arn(self, account_id: str) -> str:
        return f"arn:aws:iam::{account_id}:role{self.path}{self.name}"


@dataclass(frozen=True, slots=True)
class GroupRecord:
    """An IAM group: a name and a path, no credentials and no tags (IAM does not tag groups)."""

    id: str
    name: str
    path: str
    created_at: float

    def arn(self, account_id: str) -> str:
        return f"arn:aws:iam::{account_id}:group{self.path}{self.name}"


@dataclass(frozen=True, slots=True)
class PolicyRecord:
    """A managed policy: customer managed (stored) or AWS managed (``aws_managed``, from ecrd.policy.managed)."""

    id: str
    name: str
    path: str
    description: str
    created_at: float
    updated_at: float
    default_version_id: str
    attachment_count: int
    tags: Tags
    aws_managed: bool = False

    def arn(self, account_id: str) -> str:
        if self.aws_managed:
            return f"{AWS_POLICY_ARN_PREFIX}{self.path}{self.name}"
        return f"arn:aws:iam::{account_id}:policy{self.path}{self.name}"


@dataclass(frozen=True, slots=True)
class PolicyVersionRecord:
    version_id: str
    document: str
    is_default: bool
    created_at: float


@dataclass(frozen=True, slots=True)
class InlinePolicyRecord:
    name: str
    document: str


@dataclass(frozen=True, slots=True)
class AttachmentRecord:
    """An attached policy: ``policy_ref`` is an AWS managed policy's ARN, or a customer policy's id (and then
    ``name`` and ``path`` are that policy's)."""

    policy_ref: str
    policy_id: str | None
    name: str | None
    path: str | None


@dataclass(frozen=True, slots=True)
class AccessKeyRecord:
    """A long-term access key as ListAccessKeys shows it; ``user_name`` is None for the account root's keys."""

    access_key_id: str
    user_name: str | None
    status: str
    created_at: float


@dataclass(frozen=True, slots=True)
class CredentialRecord:
    """Everything authenticating with an access key needs, from one primary-key lookup; ``account_id`` is the
    account the key answers as."""

    access_key_id: str
    account_id: str
    principal: Principal
    status: str
    sealed_secret: str
    session_token_hash: str | None
    session_name: str | None
    created_at: float
    expires_at: float | None
    user_id: str | None
    user_name: str | None
    user_path: str | None
    role_id: str | None
    role_name: str | None
    role_path: str | None

    @property
    def temporary(self) -> bool:
        return self.session_token_hash is not None


# -- helpers ---------------------------------------------------------------------------------------------


def tags_json(tags: Tags) -> str:
    return json.dumps([{"Key": key, "Value": value} for key, value in tags])


def _tags(text: str) -> Tags:
    return tuple((item["Key"], item["Value"]) for item in json.loads(text))


def _page_after(column: Any, after: str | None) -> ColumnElement[bool] | None:
    return None if after is None else column > after


# Users, roles and groups are IAM entities with a case-insensitive name and a path: one query each serves all.
_ENTITIES: Final[dict[Owner, Table]] = {"user": iam_users, "role": iam_roles, "group": iam_groups}
_INLINE: Final[dict[Owner, Table]] = {"user": iam_user_policies, "role": iam_role_policies, "group": iam_group_policies}
_ATTACHMENTS: Final[dict[Owner, Table]] = {
    "user": iam_user_attachments,
    "role": iam_role_attachments,
    "group": iam_group_attachments,
}


def _entity_named(conn: Connection, table: Table, name: str, *, account_id: str, for_update: bool) -> Row[Any] | None:
    query = select(table).where(table.c.account_id == account_id, table.c.name_key == name.lower())
    if for_update:
        query = query.with_for_update()
    return conn.execute(query).first()


def _entities_listed(
    conn: Connection, table: Table, *, account_id: str, path_prefix: str, after: str | None, limit: int
) -> list[Row[Any]]:
    query = (
        select(table)
        .where(table.c.account_id == account_id, table.c.path.startswith(path_prefix, autoescape=True))
        .order_by(table.c.name_key)
        .limit(limit)
    )
    condition = _page_after(table.c.name_key, after)
    if condition is not None:
        query = query.where(condition)
    return list(conn.execute(query))


def _count(conn: Connection, table: Table, account_id: str | None) -> int:
    """Rows of ``table`` in the account, or in the whole deployment when ``account_id`` is None (``ecrd status``)."""
    query = select(func.count()).select_from(table)
    if account_id is not None:
        query = query.where(table.c.account_id == account_id)
    return int(conn.execute(query).scalar_one())


def set_tags(conn: Connection, owner: Literal["user", "role"], owner_id: str, tags: Tags) -> None:
    """Replace the tags of the user or role ``owner_id``."""
    table = _ENTITIES[owner]
    conn.execute(update(table).where(table.c.id == owner_id).values(tags=tags_json(tags)))


def lock_identity(conn: Connection, account_id: str | None = None) -> None:
    """Serialize a check-then-write across processes for the rest of this transaction: of one account's identity
    (its root's keys), or of the whole deployment when ``account_id`` is None (the master key's fingerprint).

    SQLite write transactions already are serial (BEGIN IMMEDIATE); PostgreSQL's READ COMMITTED lets two
    transactions both see "no root key yet", so there a transaction-scoped advisory lock does it.
    """
    if conn.dialect.name != "postgresql":
        return
    if account_id is None:
        conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_IDENTITY_LOCK})")
    else:
        key = int(account_id) % _LOCK_KEY_SPACE
        conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_IDENTITY_LOCK}, {key})")


# -- users -----------------------------------------------------------------------------------------------


def _to_user(row: Row[Any]) -> UserRecord:
    m = row._mapping
    return UserRecord(m["id"], m["name"], m["path"], m["created_at"], _tags(m["tags"]))


def get_user(conn: Connection, name: str, *, account_id: str, for_update: bool = False) -> UserRecord | None:
    row = _entity_named(conn, iam_users, name, account_id=account_id, for_update=for_update)
    return _to_user(row) if row else None


def user_by_id(conn: Connection, user_id: str) -> tuple[str, UserRecord] | None:
    """The user of a unique id, with its account; None when it is gone."""
    row = conn.execute(select(iam_users).where(iam_users.c.id == user_id)).first()
    return None if row is None else (str(row.account_id), _to_user(row))


def insert_user(conn: Connection, user: UserRecord, *, account_id: str) -> None:
    conn.execute(
        insert(iam_users).values(
            id=user.id,
            account_id=account_id,
            name=user.name,
            name_key=user.name.lower(),
            path=user.path,
            created_at=user.created_at,
            tags=tags_json(user.tags),
        )
    )


def list_users(
    conn: Connection, *, account_id: str, path_prefix: str, after: str | None, limit: int
) -> list[UserRecord]:
    rows = _entities_listed(conn, iam_users, account_id=account_id, path_prefix=path_prefix, after=after, limit=limit)
    return [_to_user(row) for row in rows]


def count_users(conn: Connection, account_id: str | None = None) -> int:
    """The account's users, or every account's when ``account_id`` is None (``ecrd status``)."""
    return _count(conn, iam_users, account_id)


def _rename(conn: Connection, table: Table, entity_id: str, *, name: str, path: str) -> None:
    conn.execute(update(table).where(table.c.id == entity_id).values(name=name, name_key=name.lower(), path=path))


def update_user(conn: Connection, user_id: str, *, name: str, path: str) -> None:
    _rename(conn, iam_users, user_id, name=name, path=path)


def delete_user(conn: Connection, user_id: str) -> None:
    conn.execute(delete(iam_users).where(iam_users.c.id == user_id))


# -- roles -----------------------------------------------------------------------------------------------


def _to_role(row: Row[Any]) -> RoleRecord:
    m = row._mapping
    return RoleRecord(
        id=m["id"],
        name=m["name"],
        path=m["path"],
        created_at=m["created_at"],
        description=m["description"],
        max_session_duration=m["max_session_duration"],
        assume_role_policy=m["assume_role_policy"],
        tags=_tags(m["tags"]),
    )


def get_role(conn: Connection, name: str, *, account_id: str, for_update: bool = False) -> RoleRecord | None:
    row = _entity_named(conn, iam_roles, name, account_id=account_id, for_update=for_update)
    return _to_role(row) if row else None


def insert_role(conn: Connection, role: RoleRecord, *, account_id: str) -> None:
    conn.execute(
        insert(iam_roles).values(
            id=role.id,
            account_id=account_id,
            name=role.name,
            name_key=role.name.lower(),
            path=role.path,
            created_at=role.created_at,
            description=role.description,
            max_session_duration=role.max_session_duration,
            assume_role_policy=role.assume_role_policy,
            tags=tags_json(role.tags),
        )
    )


def list_roles(
    conn: Connection, *, account_id: str, path_prefix: str, after: str | None, limit: int
) -> list[RoleRecord]:
    rows = _entities_listed(conn, iam_roles, account_id=account_id, path_prefix=path_prefix, after=after, limit=limit)
    return [_to_role(row) for row in rows]


def count_roles(conn: Connection, account_id: str | None) -> int:
    return _count(conn, iam_roles, account_id)


def update_role(conn: Connection, role_id: str, **values: object) -> None:
    """Set any of description, max_session_duration, assume_role_policy."""
    allowed = {"description", "max_session_duration", "assume_role_policy"}
    unknown = set(values) - allowed
    if unknown:
        raise ValueError(f"not role settings: {sorted(unknown)}")
    if values:
        conn.execute(update(iam_roles).where(iam_roles.c.id == role_id).values(**values))


def delete_role(conn: Connection, role_id: str) -> None:
    conn.execute(delete(iam_roles).where(iam_roles.c.id == role_id))


# -- groups and their members ----------------------------------------------------------------------------


def _to_group(row: Row[Any]) -> GroupRecord:
    m = row._mapping
    return GroupRecord(m["id"], m["name"], m["path"], m["created_at"])


def get_group(conn: Connection, name: str, *, account_id: str, for_update: bool = False) -> GroupRecord | None:
    row = _entity_named(conn, iam_groups, name, account_id=account_id, for_update=for_update)
    return _to_group(row) if row else None


def insert_group(conn: Connection, group: GroupRecord, *, account_id: str) -> None:
    conn.execute(
        insert(iam_groups).values(
            id=group.id,
            account_id=account_id,
            name=group.name,
            name_key=group.name.lower(),
            path=group.path,
            created_at=group.created_at,
        )
    )


def list_groups(
    conn: Connection, *, account_id: str, path_prefix: str, after: str | None, limit: int
) -> list[GroupRecord]:
    rows = _entities_listed(conn, iam_groups, account_id=account_id, path_prefix=path_prefix, after=after, limit=limit)
    return [_to_group(row) for row in rows]


def count_groups(conn: Connection, account_id: str | None) -> int:
    return _count(conn, iam_groups, account_id)


def update_group(conn: Connection, group_id: str, *, name: str, path: str) -> None:
    _rename(conn, iam_groups, group_id, name=name, path=path)


def delete_group(conn: Connection, group_id: str) -> None:
    conn.execute(delete(iam_groups).where(iam_groups.c.id == group_id))


def add_member(conn: Connection, group_id: str, user_id: str) -> None:
    conn.execute(insert(iam_group_members).values(group_id=group_id, user_id=user_id))


def remove_member(conn: Connection, group_id: str, user_id: str) -> bool:
    members = iam_group_members
    result = conn.execute(delete(members).where(members.c.group_id == group_id, members.c.user_id == user_id))
    return result.rowcount > 0


def group_members(conn: Connection, group_id: str, *, after: str | None, limit: int) -> list[UserRecord]:
    """A page of the group's members by name key (GetGroup lists them)."""
    query = (
        select(iam_users)
        .join(iam_group_members, iam_group_members.c.user_id == iam_users.c.id)
        .where(iam_group_members.c.group_id == group_id)
        .order_by(iam_users.c.name_key)
        .limit(limit)
    )
    condition = _page_after(iam_users.c.name_key, after)
    if condition is not None:
        query = query.where(condition)
    return [_to_user(row) for row in conn.execute(query)]


def count_members(conn: Connection, group_id: str) -> int:
    return _count_owned(conn, iam_group_members, iam_group_members.c.group_id, group_id)


def groups_of_user(conn: Connection, user_id: str) -> list[GroupRecord]:
    """The groups a user is a member of, by name key (at most GroupsPerUser of them)."""
    rows = conn.execute(
        select(iam_groups)
        .join(iam_group_members, iam_group_members.c.group_id == iam_groups.c.id)
        .where(iam_group_members.c.user_id == user_id)
        .order_by(iam_groups.c.name_key)
    )
    return [_to_group(row) for row in rows]


# -- customer managed policies ---------------------------------------------------------------------------


def _attachment_count(policy_id: Any) -> ColumnElement[int]:
    users, roles, groups = (
        select(func.count()).select_from(table).where(table.c.policy_id == policy_id).scalar_subquery()
        for table in _ATTACHMENTS.values()
    )
    return (users + roles + groups).label("attachment_count")


def _policy_query() -> Any:
    return select(iam_policies, _attachment_count(iam_policies.c.id))


def _to_policy(row: Row[Any]) -> PolicyRecord:
    m = row._mapping
    return PolicyRecord(
        id=m["id"],
        name=m["name"],
        path=m["path"],
        description=m["description"],
        created_at=m["created_at"],
        updated_at=m["updated_at"],
        default_version_id=m["default_version_id"],
        attachment_count=int(m["attachment_count"]),
        tags=_tags(m["tags"]),
    )


def get_policy(conn: Connection, name: str, *, account_id: str, for_update: bool = False) -> PolicyRecord | None:
    query = _policy_query().where(iam_policies.c.account_id == account_id, iam_policies.c.name_key == name.lower())
    if for_update:
        # Lock the policy's row only: PostgreSQL refuses FOR UPDATE over the aggregate subqueries' tables.
        query = query.with_for_update(of=iam_policies)
    row = conn.execute(query).first()
    return _to_policy(row) if row else None


def insert_policy(conn: Connection, policy: PolicyRecord, document: str, *, account_id: str) -> None:
    conn.execute(
        insert(iam_policies).values(
            id=policy.id,
            account_id=account_id,
            name=policy.name,
            name_key=policy.name.lower(),
            path=policy.path,
            description=policy.description,
            created_at=policy.created_at,
            updated_at=policy.updated_at,
            default_version_id=policy.default_version_id,
            next_version=2,
            tags=tags_json(policy.tags),
        )
    )
    conn.execute(
        insert(iam_policy_versions).values(
            policy_id=policy.id, version_id=policy.default_version_id, document=document, created_at=policy.created_at
        )
    )


def list_policies(
    conn: Connection, *, account_id: str, path_prefix: str, only_attached: bool, from_key: str | None, limit: int
) -> list[PolicyRecord]:
    """Customer policies by name from ``from_key`` on (inclusive: the caller merges in AWS managed ones)."""
    count = _attachment_count(iam_policies.c.id)
    query = (
        select(iam_policies, count)
        .where(iam_policies.c.account_id == account_id, iam_policies.c.path.startswith(path_prefix, autoescape=True))
        .order_by(iam_policies.c.name_key)
        .limit(limit)
    )
    if only_attached:
        query = query.where(_attachment_count(iam_policies.c.id) > 0)
    if from_key is not None:
        query = query.where(iam_policies.c.name_key >= from_key)
    return [_to_policy(row) for row in conn.execute(query)]


def count_policies(conn: Connection, account_id: str | None) -> int:
    return _count(conn, iam_policies, account_id)


def delete_policy(conn: Connection, policy_id: str) -> None:
    conn.execute(delete(iam_policies).where(iam_policies.c.id == policy_id))


def list_policy_versions(conn: Connection, policy_id: str) -> list[PolicyVersionRecord]:
    rows = conn.execute(
        select(iam_policy_versions, iam_policies.c.default_version_id)
        .join(iam_policies, iam_policies.c.id == iam_policy_versions.c.policy_id)
        .where(iam_policy_versions.c.policy_id == policy_id)
        .order_by(iam_policy_versions.c.created_at.desc(), iam_policy_versions.c.version_id.desc())
    )
    return [
        PolicyVersionRecord(row.version_id, row.document, row.version_id == row.default_version_id, row.created_at)
        for row in rows
    ]


def get_policy_version(conn: Connection, policy_id: str, version_id: str) -> PolicyVersionRecord | None:
    row = conn.execute(
        select(iam_policy_versions, iam_policies.c.default_version_id)
        .join(iam_policies, iam_policies.c.id == iam_policy_versions.c.policy_id)
        .where(iam_policy_versions.c.policy_id == policy_id, iam_policy_versions.c.version_id == version_id)
    ).first()
    if row is None:
        return None
    return PolicyVersionRecord(row.version_id, row.document, row.version_id == row.default_version_id, row.created_at)


def add_policy_version(
    conn: Connection, policy_id: str, document: str, *, created_at: float, make_default: bool
) -> str:
    """Store a new version under the policy's next number; return its id (``v<n>``)."""
    number = conn.execute(select(iam_policies.c.next_version).where(iam_policies.c.id == policy_id)).scalar_one()
    version_id = f"v{number}"
    conn.execute(
        insert(iam_policy_versions).values(
            policy_id=policy_id, version_id=version_id, document=document, created_at=created_at
        )
    )
    values: dict[str, object] = {"next_version": number + 1, "updated_at": created_at}
    if make_default:
        values["default_version_id"] = version_id
    conn.execute(update(iam_policies).where(iam_policies.c.id == policy_id).values(**values))
    return version_id


def set_default_policy_version(conn: Connection, policy_id: str, version_id: str, *, at: float) -> None:
    conn.execute(
        update(iam_policies).where(iam_policies.c.id == policy_id).values(default_version_id=version_id, updated_at=at)
    )


def delete_policy_version(conn: Connection, policy_id: str, version_id: str) -> None:
    conn.execute(
        delete(iam_policy_versions).where(
            iam_policy_versions.c.policy_id == policy_id, iam_policy_versions.c.version_id == version_id
        )
    )


# -- inline policies -------------------------------------------------------------------------------------


def _inline(owner: Owner) -> tuple[Table, Any]:
    table = _INLINE[owner]
    return table, table.c[f"{owner}_id"]


def _count_owned(conn: Connection, table: Table, owner_column: Any, owner_id: str) -> int:
    return int(conn.execute(select(func.count()).select_from(table).where(owner_column == owner_id)).scalar_one())


def put_inline_policy(conn: Connection, owner: Owner, owner_id: str, name: str, document: str) -> None:
    table, owner_column = _inline(owner)
    key = name.lower()
    conn.execute(delete(table).where(owner_column == owner_id, table.c.name_key == key))
    conn.execute(
        insert(table).values({owner_column.key: owner_id, "name_key": key, "name": name, "document": document})
    )


def get_inline_policy(conn: Connection, owner: Owner, owner_id: str, name: str) -> InlinePolicyRecord | None:
    table, owner_column = _inline(owner)
    row = conn.execute(
        select(table.c.name, table.c.document).where(owner_column == owner_id, table.c.name_key == name.lower())
    ).first()
    return InlinePolicyRecord(row.name, row.document) if row else None


def list_inline_policies(conn: Connection, owner: Owner, owner_id: str) -> list[InlinePolicyRecord]:
    table, owner_column = _inline(owner)
    rows = conn.execute(
        select(table.c.name, table.c.document).where(owner_column == owner_id).order_by(table.c.name_key)
    )
    return [InlinePolicyRecord(row.name, row.document) for row in rows]


def delete_inline_policy(conn: Connection, owner: Owner, owner_id: str, name: str) -> bool:
    table, owner_column = _inline(owner)
    result = conn.execute(delete(table).where(owner_column == owner_id, table.c.name_key == name.lower()))
    return result.rowcount > 0


def count_inline_policies(conn: Connection, owner: Owner, owner_id: str) -> int:
    return _count_owned(conn, *_inline(owner), owner_id)


# -- attachments -----------------------------------------------------------------------------------------


def _attachments(owner: Owner) -> tuple[Table, Any]:
    table = _ATTACHMENTS[owner]
    return table, table.c[f"{owner}_id"]


def attach_policy(
    conn: Connection, owner: Owner, owner_id: str, *, policy_ref: str, policy_id: str | None, at: float
) -> bool:
    """Attach unless already attached (IAM answers a repeated attach with success); True when added."""
    table, owner_column = _attachments(owner)
    exists = conn.execute(select(table.c.policy_ref).where(owner_column == owner_id, table.c.policy_ref == policy_ref))
    if exists.first() is not None:
        return False
    conn.execute(
        insert(table).values(
            {owner_column.key: owner_id, "policy_ref": policy_ref, "policy_id": policy_id, "attached_at": at}
        )
    )
    return True


def detach_policy(conn: Connection, owner: Owner, owner_id: str, policy_ref: str) -> bool:
    table, owner_column = _attachments(owner)
    result = conn.execute(delete(table).where(owner_column == owner_id, table.c.policy_ref == policy_ref))
    return result.rowcount > 0


def list_attachments(conn: Connection, owner: Owner, owner_id: str) -> list[AttachmentRecord]:
    table, owner_column = _attachments(owner)
    rows = conn.execute(
        select(table.c.policy_ref, table.c.policy_id, iam_policies.c.name, iam_policies.c.path)
        .select_from(table.outerjoin(iam_policies, iam_policies.c.id == table.c.policy_id))
        .where(owner_column == owner_id)
        .order_by(table.c.attached_at, table.c.policy_ref)
    )
    return [AttachmentRecord(row.policy_ref, row.policy_id, row.name, row.path) for row in rows]


def count_attachments(conn: Connection, owner: Owner, owner_id: str) -> int:
    return _count_owned(conn, *_attachments(owner), owner_id)


def aws_policy_attachment_counts(conn: Connection, *, account_id: str) -> dict[str, int]:
    """How many users, roles and groups of the account each AWS managed policy (by ARN) is attached to (AWS
    managed policies are shared by every account, their attachments are each account's own)."""
    counts: dict[str, int] = {}
    for owner, table in _ATTACHMENTS.items():
        entities, owner_column = _ENTITIES[owner], table.c[f"{owner}_id"]
        rows = conn.execute(
            select(table.c.policy_ref, func.count())
            .join(entities, entities.c.id == owner_column)
            .where(table.c.policy_id.is_(None), entities.c.account_id == account_id)
            .group_by(table.c.policy_ref)
        )
        for ref, count in rows:
            counts[ref] = counts.get(ref, 0) + int(count)
    return counts


def entities_for_policy(
    conn: Connection, policy_ref: str, *, account_id: str
) -> tuple[list[UserRecord], list[RoleRecord], list[GroupRecord]]:
    """The account's users, roles and groups a policy is attached to (an AWS managed policy's ARN is attached
    in many accounts)."""

    def attached(owner: Owner) -> list[Row[Any]]:
        entities, (attachments, owner_column) = _ENTITIES[owner], _attachments(owner)
        return list(
            conn.execute(
                select(entities)
                .join(attachments, owner_column == entities.c.id)
                .where(attachments.c.policy_ref == policy_ref, entities.c.account_id == account_id)
                .order_by(entities.c.name_key)
            )
        )

    return (
        [_to_user(row) for row in attached("user")],
        [_to_role(row) for row in attached("role")],
        [_to_group(row) for row in attached("group")],
    )


def identity_documents(conn: Connection, owner: Owner, owner_id: str) -> list[tuple[str | None, str | None]]:
    """The policies in force for a user or role, in one query: ``(None, text)`` for inline policies and
    attached customer policies (their default version), ``(arn, None)`` for attached AWS managed ones. A user's
    include those of every group it is a member of."""
    queries = _owner_documents(owner, lambda column: column == owner_id)
    if owner == "user":
        member_of = select(iam_group_members.c.group_id).where(iam_group_members.c.user_id == owner_id)
        queries += _owner_documents("group", lambda column: column.in_(member_of))
    rows = conn.execute(union_all(*queries))
    return [(None, row.document) if row.document is not None else (row.ref, None) for row in rows]


def _owner_documents(owner: Owner, owners: Callable[[Any], ColumnElement[bool]]) -> list[Any]:
    """The inline and attached policy queries of the owners of kind ``owner`` that ``owners`` selects (a
    condition on an owner id column)."""
    inline, inline_owner = _inline(owner)
    attached, attached_owner = _attachments(owner)
    inline_query = select(cast(null(), String).label("ref"), inline.c.document.label("document")).where(
        owners(inline_owner)
    )
    attached_query = (
        select(
            attached.c.policy_ref.label("ref"),
            iam_policy_versions.c.document.label("document"),
        )
        .select_from(
            attached.outerjoin(iam_policies, iam_policies.c.id == attached.c.policy_id).outerjoin(
                iam_policy_versions,
                and_(
                    iam_policy_versions.c.policy_id == iam_policies.c.id,
                    iam_policy_versions.c.version_id == iam_policies.c.default_version_id,
                ),
            )
        )
        .where(owners(attached_owner))
    )
    return [inline_query, attached_query]


# -- access keys -----------------------------------------------------------------------------------------


def insert_access_key(
    conn: Connection,
    *,
    access_key_id: str,
    account_id: str,
    principal: Principal,
    sealed_secret: str,
    created_at: float,
    user_id: str | None = None,
    role_id: str | None = None,
    session_name: str | None = None,
    session_token_hash: str | None = None,
    expires_at: float | None = None,
    status: str = ACTIVE,
) -> None:
    conn.execute(
        insert(iam_access_keys).values(
            access_key_id=access_key_id,
            account_id=account_id,
            principal=principal,
            user_id=user_id,
            role_id=role_id,
            session_name=session_name,
            secret=sealed_secret,
            session_token_hash=session_token_hash,
            status=status,
            created_at=created_at,
            expires_at=expires_at,
        )
    )


def get_credential(conn: Connection, access_key_id: str) -> CredentialRecord | None:
    """The key with its user or role, in one indexed query (it runs on every request)."""
    keys = iam_access_keys
    row = conn.execute(
        select(
            keys,
            iam_users.c.name.label("user_name"),
            iam_users.c.path.label("user_path"),
            iam_roles.c.name.label("role_name"),
            iam_roles.c.path.label("role_path"),
        )
        .select_from(
            keys.outerjoin(iam_users, iam_users.c.id == keys.c.user_id).outerjoin(
                iam_roles, iam_roles.c.id == keys.c.role_id
            )
        )
        .where(keys.c.access_key_id == access_key_id)
    ).first()
    if row is None:
        return None
    m = row._mapping
    return CredentialRecord(
        access_key_id=m["access_key_id"],
        account_id=m["account_id"],
        principal=m["principal"],
        status=m["status"],
        sealed_secret=m["secret"],
        session_token_hash=m["session_token_hash"],
        session_name=m["session_name"],
        created_at=m["created_at"],
        expires_at=m["expires_at"],
        user_id=m["user_id"],
        user_name=m["user_name"],
        user_path=m["user_path"],
        role_id=m["role_id"],
        role_name=m["role_name"],
        role_path=m["role_path"],
    )


def _long_term_keys_of(account_id: str, user_id: str | None) -> list[ColumnElement[bool]]:
    keys = iam_access_keys
    owner = keys.c.user_id == user_id if user_id is not None else keys.c.principal == "root"
    return [keys.c.account_id == account_id, owner, keys.c.session_token_hash.is_(None)]


def list_access_keys(conn: Connection, user_id: str | None, *, account_id: str) -> list[AccessKeyRecord]:
    """The long-term keys of a user of the account, or of the account root when ``user_id`` is None."""
    keys = iam_access_keys
    rows = conn.execute(
        select(keys.c.access_key_id, keys.c.status, keys.c.created_at, iam_users.c.name)
        .select_from(keys.outerjoin(iam_users, iam_users.c.id == keys.c.user_id))
        .where(*_long_term_keys_of(account_id, user_id))
        .order_by(keys.c.created_at, keys.c.access_key_id)
    )
    return [AccessKeyRecord(row.access_key_id, row.name, row.status, row.created_at) for row in rows]


def count_access_keys(conn: Connection, user_id: str | None, *, account_id: str) -> int:
    keys_of = _long_term_keys_of(account_id, user_id)
    return int(conn.execute(select(func.count()).select_from(iam_access_keys).where(*keys_of)).scalar_one())


def count_long_term_keys(conn: Connection, account_id: str | None = None) -> int:
    """The long-term access keys of the account (of every account when ``account_id`` is None): its users' and
    the root's (not the temporary ones STS issues)."""
    keys = iam_access_keys
    query = select(func.count()).select_from(keys).where(keys.c.session_token_hash.is_(None))
    if account_id is not None:
        query = query.where(keys.c.account_id == account_id)
    return int(conn.execute(query).scalar_one())


def owns_access_key(conn: Connection, access_key_id: str, user_id: str | None, *, account_id: str) -> bool:
    found = conn.execute(
        select(iam_access_keys.c.access_key_id).where(
            iam_access_keys.c.access_key_id == access_key_id, *_long_term_keys_of(account_id, user_id)
        )
    ).first()
    return found is not None


def set_access_key_status(conn: Connection, access_key_id: str, status: str) -> None:
    conn.execute(update(iam_access_keys).where(iam_access_keys.c.access_key_id == access_key_id).values(status=status))


def set_access_key_secret(conn: Connection, access_key_id: str, sealed_secret: str) -> None:
    conn.execute(
        update(iam_access_keys).where(iam_access_keys.c.access_key_id == access_key_id).values(secret=sealed_secret)
    )


def delete_access_key(conn: Connection, access_key_id: str) -> None:
    conn.execute(delete(iam_access_keys).where(iam_access_keys.c.access_key_id == access_key_id))


def delete_expired_credentials(conn: Connection, now: float) -> int:
    result = conn.execute(
        delete(iam_access_keys).where(iam_access_keys.c.expires_at.is_not(None), iam_access_keys.c.expires_at <= now)
    )
    return int(result.rowcount)
