"""IAM entities by name, as every identity concern needs them: users and roles (and the owner of a policy
attachment) looked up with IAM's NoSuchEntity wording, and the create transaction in which a concurrent create
of the same name reads as EntityAlreadyExists."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from sqlalchemy import Connection
from sqlalchemy.exc import IntegrityError

from ecrd.errors import EntityAlreadyExists, NoSuchEntity
from ecrd.metadata import iam as q
from ecrd.metadata.iam import Owner, RoleRecord, UserRecord
from ecrd.metadata.store import MetadataStore

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


def owner_named(conn: Connection, owner: Owner, name: str, *, for_update: bool = False) -> tuple[str, str]:
    """(id, name) of the user or role called ``name``."""
    if owner == "user":
        user = user_named(conn, name, for_update=for_update)
        return user.id, user.name
    role = role_named(conn, name, for_update=for_update)
    return role.id, role.name


@contextmanager
def creating(store: MetadataStore, exists: EntityAlreadyExists) -> Iterator[Connection]:
    """A write transaction whose unique-name violation (a concurrent create) reads as ``exists``."""
    try:
        with store.write() as conn:
            yield conn
    except IntegrityError:
        raise exists from None
