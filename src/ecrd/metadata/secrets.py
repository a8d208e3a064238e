"""Queries on the secrets service's tables (Secrets Manager's secrets, not the master key of ``services.secrets``):
secrets, their versions and staging labels, and their tags.

A secret whose deletion date has passed is gone as far as every reader is concerned, whether or not the purge
has removed its rows yet: lookups and listings take ``now`` and leave it out.

Secrets are regional: each belongs to one registry (an account in a region), its name unique within it. A name
is looked up within a registry; a full ARN names its own account and region, and finds its secret wherever it
is. The purge of deleted secrets covers every registry at once.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal

from sqlalchemy import Connection, and_, delete, func, insert, or_, select, tuple_, update
from sqlalchemy.engine import Row
from sqlalchemy.sql.elements import ColumnElement

from ecrd.domain.registries import RegistryId
from ecrd.metadata.secrets_tables import secret_tags, secret_version_stages, secret_versions, secrets

# Any fixed number serves; it only has to differ from the other advisory locks ecrd takes (migrations: 4242001,
# identity: 4242002, keys: 4242004).
_SECRETS_LOCK: Final = 4242013

SortColumn = Literal["created_at", "last_changed_at", "last_accessed_at", "name"]


@dataclass(frozen=True, slots=True)
class SecretRow:
    id: str
    account_id: str
    region: str
    name: str
    arn: str
    description: str | None
    kms_key_id: str | None
    secret_type: str | None
    policy: str | None
    created_at: float
    last_changed_at: float
    last_accessed_at: float | None
    deleted_at: float | None
    deletion_date: float | None


@dataclass(frozen=True, slots=True)
class VersionRow:
    """A stored version. ``sealed_value`` and ``wrapped_key`` are ciphertext; only the secrets service opens them."""

    secret_id: str
    version_id: str
    created_at: float
    kind: str
    key_arn: str
    wrapped_key: bytes
    sealed_value: bytes
    last_accessed_at: float | None


def lock_secrets(conn: Connection) -> None:
    """Serialize a check-then-write on names across processes for the rest of this transaction (on SQLite,
    write transactions already are serial: BEGIN IMMEDIATE)."""
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_SECRETS_LOCK})")


def _live(now: float) -> ColumnElement[bool]:
    return or_(secrets.c.deletion_date.is_(None), secrets.c.deletion_date > now)


def _to_secret(row: Row[Any]) -> SecretRow:
    m = row._mapping
    return SecretRow(**{name: m[name] for name in SecretRow.__slots__})


def _to_version(row: Row[Any]) -> VersionRow:
    m = row._mapping
    return VersionRow(**{name: m[name] for name in VersionRow.__slots__})


# -- secrets ---------------------------------------------------------------------------------------------


def insert_secret(conn: Connection, secret: SecretRow) -> None:
    conn.execute(insert(secrets).values(**{name: getattr(secret, name) for name in SecretRow.__slots__}))


def _in(registry: RegistryId) -> ColumnElement[bool]:
    return and_(secrets.c.account_id == registry.account_id, secrets.c.region == registry.region)


def find_secret(
    conn: Connection,
    registry: RegistryId | None,
    *,
    name: str | None = None,
    arn: str | None = None,
    now: float,
    for_update: bool = False,
) -> SecretRow | None:
    """The live secret of that name in ``registry``, or of that ARN (in ``registry`` only, unless None: an ARN
    names the secret's own account and region)."""
    query = select(secrets).where(_live(now))
    if registry is not None:
        query = query.where(_in(registry))
    elif name is not None:
        raise ValueError("a secret name is looked up within a registry")
    query = query.where(secrets.c.name == name) if name is not None else query.where(secrets.c.arn == arn)
    if for_update:
        query = query.with_for_update()
    row = conn.execute(query).first()
    return _to_secret(row) if row else None


def update_secret(conn: Connection, secret_id: str, **values: object) -> None:
    conn.execute(update(secrets).where(secrets.c.id == secret_id).values(**values))


def policies_naming(conn: Connection, text: str) -> list[tuple[str, str]]:
    """(secret id, policy) of every secret, in every registry, whose resource policy mentions ``text``."""
    rows = conn.execute(select(secrets.c.id, secrets.c.policy).where(secrets.c.policy.contains(text)))
    return [(row.id, row.policy) for row in rows]


def delete_secret(conn: Connection, secret_id: str) -> None:
    conn.execute(delete(secrets).where(secrets.c.id == secret_id))


def delete_deleted_secrets(conn: Connection, now: float, *, named: tuple[RegistryId, str] | None = None) -> int:
    """Remove the secrets, in every registry, whose deletion date has passed (their versions and tags go with
    them), or only the one holding a name in a registry (``named``); how many there were."""
    due = and_(secrets.c.deletion_date.is_not(None), secrets.c.deletion_date <= now)
    if named is not None:
        registry, name = named
        due = and_(due, _in(registry), secrets.c.name == name)
    return int(conn.execute(delete(secrets).where(due)).rowcount or 0)


def list_secrets(
    conn: Connection,
    registry: RegistryId,
    *,
    now: float,
    include_deleted: bool,
    order: SortColumn,
    descending: bool,
    after: tuple[Any, str] | None,
    limit: int,
) -> list[SecretRow]:
    """The registry's secrets in (``order``, id) order after the position ``after``; a secret never accessed
    sorts as 0."""
    column: ColumnElement[Any] = secrets.c[order]
    if order == "last_accessed_at":
        column = func.coalesce(secrets.c.last_accessed_at, 0.0)
    query = select(secrets).where(_in(registry), _live(now))
    if not include_deleted:
        query = query.where(secrets.c.deletion_date.is_(None))
    key = tuple_(column, secrets.c.id)
    if after is not None:
        position = tuple_(*after)
        query = query.where(key < position if descending else key > position)
    ordering = (column.desc(), secrets.c.id.desc()) if descending else (column, secrets.c.id)
    query = query.order_by(*ordering)
    return [_to_secret(row) for row in conn.execute(query.limit(limit))]


# -- versions and staging labels -------------------------------------------------------------------------


def insert_version(conn: Connection, version: VersionRow) -> None:
    conn.execute(insert(secret_versions).values(**{name: getattr(version, name) for name in VersionRow.__slots__}))


def get_version(conn: Connection, secret_id: str, version_id: str) -> VersionRow | None:
    query = select(secret_versions).where(
        secret_versions.c.secret_id == secret_id, secret_versions.c.version_id == version_id
    )
    row = conn.execute(query).first()
    return _to_version(row) if row else None


def list_versions(conn: Connection, secret_id: str) -> list[VersionRow]:
    """The versions of a secret, oldest first."""
    query = (
        select(secret_versions)
        .where(secret_versions.c.secret_id == secret_id)
        .order_by(secret_versions.c.created_at, secret_versions.c.version_id)
    )
    return [_to_version(row) for row in conn.execute(query)]


def reseal_version(
    conn: Connection, secret_id: str, version_id: str, key_arn: str, wrapped_key: bytes, sealed_value: bytes
) -> None:
    conn.execute(
        update(secret_versions)
        .where(secret_versions.c.secret_id == secret_id, secret_versions.c.version_id == version_id)
        .values(key_arn=key_arn, wrapped_key=wrapped_key, sealed_value=sealed_value)
    )


def touch_version(conn: Connection, secret_id: str, version_id: str, at: float) -> None:
    conn.execute(
        update(secret_versions)
        .where(secret_versions.c.secret_id == secret_id, secret_versions.c.version_id == version_id)
        .values(last_accessed_at=at)
    )


def delete_versions(conn: Connection, secret_id: str, version_ids: Sequence[str]) -> None:
    if version_ids:
        conn.execute(
            delete(secret_versions).where(
                secret_versions.c.secret_id == secret_id, secret_versions.c.version_id.in_(version_ids)
            )
        )


def stages_of(conn: Connection, secret_ids: Iterable[str]) -> dict[str, dict[str, str]]:
    """Each secret's staging labels: {secret id: {label: version id}}."""
    ids = list(secret_ids)
    found: dict[str, dict[str, str]] = {secret_id: {} for secret_id in ids}
    if ids:
        query = select(secret_version_stages).where(secret_version_stages.c.secret_id.in_(ids))
        for row in conn.execute(query.order_by(secret_version_stages.c.stage)):
            found[row.secret_id][row.stage] = row.version_id
    return found


def set_stages(conn: Connection, secret_id: str, stages: Mapping[str, str | None]) -> None:
    """Point each label at its version (None: take the label off whatever version holds it)."""
    if not stages:
        return
    conn.execute(
        delete(secret_version_stages).where(
            secret_version_stages.c.secret_id == secret_id, secret_version_stages.c.stage.in_(list(stages))
        )
    )
    placed = [
        {"secret_id": secret_id, "stage": stage, "version_id": version}
        for stage, version in stages.items()
        if version is not None
    ]
    if placed:
        conn.execute(insert(secret_version_stages), placed)


# -- tags ------------------------------------------------------------------------------------------------


def tags_of(conn: Connection, secret_ids: Iterable[str]) -> dict[str, list[tuple[str, str]]]:
    ids = list(secret_ids)
    found: dict[str, list[tuple[str, str]]] = {secret_id: [] for secret_id in ids}
    if ids:
        query = select(secret_tags).where(secret_tags.c.secret_id.in_(ids)).order_by(secret_tags.c.tag_key)
        for row in conn.execute(query):
            found[row.secret_id].append((row.tag_key, row.tag_value))
    return found


def put_tags(conn: Connection, secret_id: str, tags: Mapping[str, str]) -> None:
    """Add tags, replacing the values of keys the secret already has."""
    if not tags:
        return
    delete_tags(conn, secret_id, list(tags))
    conn.execute(insert(secret_tags), [{"secret_id": secret_id, "tag_key": k, "tag_value": v} for k, v in tags.items()])


def delete_tags(conn: Connection, secret_id: str, keys: Sequence[str]) -> None:
    if keys:
        conn.execute(delete(secret_tags).where(secret_tags.c.secret_id == secret_id, secret_tags.c.tag_key.in_(keys)))
