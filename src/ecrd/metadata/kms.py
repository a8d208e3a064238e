"""Queries on the key service's tables: keys, their rotated materials, aliases and key tags.

Keys and aliases are regional: each belongs to one registry (an account in a region). Key ids are UUIDs, unique
across registries, so a key's rotated materials and tags are found by its id alone; a key is looked up within the
registry a reference names, and aliases are named within their registry. The periodic sweeps (due rotations, the
purge of deleted keys) cover every registry at once.

Keys whose deletion date has passed are gone as far as every reader is concerned, whether or not the purge has
removed their rows yet: lookups and listings take ``now`` and leave them out. Listing functions order by their
key column and start after a given value, returning up to ``limit`` rows; callers ask for one more than a page
to learn whether the listing is truncated.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from sqlalchemy import Connection, and_, delete, func, insert, or_, select, update
from sqlalchemy.engine import Row
from sqlalchemy.sql.elements import ColumnElement

from ecrd.domain.registries import RegistryId
from ecrd.metadata.kms_tables import kms_aliases, kms_key_materials, kms_key_tags, kms_keys

PENDING_DELETION: Final = "PendingDeletion"
ENABLED: Final = "Enabled"
# Any fixed number serves; it only has to differ from the other advisory locks ecrd takes (migrations: 4242001,
# identity: 4242002).
_KEYS_LOCK: Final = 4242004


@dataclass(frozen=True, slots=True)
class KeyRow:
    """A stored key. ``material`` is sealed; it never leaves the key service."""

    id: str
    registry: RegistryId  # the account and region the key lives in
    description: str
    key_usage: str
    key_spec: str
    key_manager: str
    state: str
    policy: str
    material: str
    created_at: float
    created_by: str
    deletion_date: float | None
    pending_window_days: int | None
    rotation_period_days: int | None = None
    next_rotation_at: float | None = None
    material_version: int = 0


@dataclass(frozen=True, slots=True)
class MaterialRow:
    """A material a rotation made (``material`` sealed), or, as version 0, the key's original."""

    key_id: str
    version: int
    material: str
    rotation_type: str | None
    created_at: float


@dataclass(frozen=True, slots=True)
class AliasRow:
    name: str
    key_id: str
    created_at: float
    updated_at: float


def lock_keys(conn: Connection) -> None:
    """Serialize a check-then-write across processes for the rest of this transaction (on SQLite, write
    transactions already are serial: BEGIN IMMEDIATE)."""
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_KEYS_LOCK})")


def _live(now: float) -> ColumnElement[bool]:
    """Keys not yet deleted: not pending deletion, or with a deletion date still ahead."""
    return or_(kms_keys.c.state != PENDING_DELETION, kms_keys.c.deletion_date > now)


# -- keys ------------------------------------------------------------------------------------------------


def _to_key(row: Row[Any]) -> KeyRow:
    m = row._mapping
    return KeyRow(
        id=m["id"],
        registry=RegistryId(m["account_id"], m["region"]),
        description=m["description"],
        key_usage=m["key_usage"],
        key_spec=m["key_spec"],
        key_manager=m["key_manager"],
        state=m["state"],
        policy=m["policy"],
        material=m["material"],
        created_at=m["created_at"],
        created_by=m["created_by"],
        deletion_date=m["deletion_date"],
        pending_window_days=m["pending_window_days"],
        rotation_period_days=m["rotation_period_days"],
        next_rotation_at=m["next_rotation_at"],
        material_version=m["material_version"],
    )


def insert_key(conn: Connection, key: KeyRow) -> None:
    conn.execute(
        insert(kms_keys).values(
            id=key.id,
            account_id=key.registry.account_id,
            region=key.registry.region,
            description=key.description,
            key_usage=key.key_usage,
            key_spec=key.key_spec,
            key_manager=key.key_manager,
            state=key.state,
            policy=key.policy,
            material=key.material,
            created_at=key.created_at,
            created_by=key.created_by,
            deletion_date=key.deletion_date,
            pending_window_days=key.pending_window_days,
            rotation_period_days=key.rotation_period_days,
            next_rotation_at=key.next_rotation_at,
        )
    )


def _key_in(registry: RegistryId) -> ColumnElement[bool]:
    return and_(kms_keys.c.account_id == registry.account_id, kms_keys.c.region == registry.region)


def get_key(
    conn: Connection, registry: RegistryId, key_id: str, *, now: float, for_update: bool = False
) -> KeyRow | None:
    """The live key of that id in ``registry``."""
    query = select(kms_keys).where(kms_keys.c.id == key_id, _key_in(registry), _live(now))
    if for_update:
        query = query.with_for_update()
    row = conn.execute(query).first()
    return _to_key(row) if row else None


def get_key_in_region(conn: Connection, region: str, key_id: str, *, now: float) -> KeyRow | None:
    """The live key of that id in ``region``, whichever account it belongs to (a ciphertext names its key by id
    alone, and may have been made with another account's key)."""
    query = select(kms_keys).where(kms_keys.c.id == key_id, kms_keys.c.region == region, _live(now))
    row = conn.execute(query).first()
    return _to_key(row) if row else None


def list_keys(conn: Connection, registry: RegistryId, *, now: float, after: str | None, limit: int) -> list[KeyRow]:
    query = select(kms_keys).where(_key_in(registry), _live(now)).order_by(kms_keys.c.id).limit(limit)
    if after is not None:
        query = query.where(kms_keys.c.id > after)
    return [_to_key(row) for row in conn.execute(query)]


def update_key(conn: Connection, key_id: str, **values: object) -> None:
    conn.execute(update(kms_keys).where(kms_keys.c.id == key_id).values(**values))


# -- rotation --------------------------------------------------------------------------------------------


def policies_naming(conn: Connection, text: str) -> list[tuple[str, str]]:
    """(key id, key policy) of every key, in every registry, whose policy mentions ``text`` (a principal's ARN)."""
    query = select(kms_keys.c.id, kms_keys.c.policy).where(kms_keys.c.policy.contains(text, autoescape=True))
    rows = conn.execute(query)
    return [(row.id, row.policy) for row in rows]


def get_material(conn: Connection, key_id: str, version: int) -> str | None:
    """The sealed material of a rotated version (1, 2, …), if the key has it."""
    query = select(kms_key_materials.c.material).where(
        kms_key_materials.c.key_id == key_id, kms_key_materials.c.version == version
    )
    return conn.execute(query).scalar_one_or_none()


def insert_material(conn: Connection, key_id: str, version: int, material: str, rotation_type: str, at: float) -> None:
    conn.execute(
        insert(kms_key_materials).values(
            key_id=key_id, version=version, material=material, rotation_type=rotation_type, created_at=at
        )
    )
    conn.execute(update(kms_keys).where(kms_keys.c.id == key_id).values(material_version=version))


def count_rotations(conn: Connection, key_id: str, rotation_type: str) -> int:
    query = select(func.count()).where(
        kms_key_materials.c.key_id == key_id, kms_key_materials.c.rotation_type == rotation_type
    )
    return int(conn.execute(query).scalar_one())


def list_rotations(conn: Connection, key_id: str, *, after: int, limit: int) -> list[MaterialRow]:
    """Rotated materials by version, after ``after``, without their sealed material."""
    query = (
        select(kms_key_materials)
        .where(kms_key_materials.c.key_id == key_id, kms_key_materials.c.version > after)
        .order_by(kms_key_materials.c.version)
        .limit(limit)
    )
    return [
        MaterialRow(m["key_id"], m["version"], "", m["rotation_type"], m["created_at"])
        for m in (row._mapping for row in conn.execute(query))
    ]


def due_rotations(conn: Connection, now: float) -> list[tuple[str, float, int]]:
    """(id, due date, period in days) of the Enabled keys whose automatic rotation is due, in every registry."""
    query = select(kms_keys.c.id, kms_keys.c.next_rotation_at, kms_keys.c.rotation_period_days).where(
        kms_keys.c.next_rotation_at <= now,
        kms_keys.c.rotation_period_days.is_not(None),
        kms_keys.c.state == ENABLED,
    )
    return [(key_id, due, days) for key_id, due, days in conn.execute(query.order_by(kms_keys.c.next_rotation_at))]


def claim_rotation(conn: Connection, key_id: str, due: float, next_due: float) -> int | None:
    """Move an Enabled key's rotation due at ``due`` on to ``next_due``; the material version this rotation
    makes, or None when the key is not (or no longer) due at ``due`` — another process rotated it, or it
    changed. The UPDATE's condition decides between processes: one of them matches the row."""
    claimed = conn.execute(
        update(kms_keys)
        .where(
            kms_keys.c.id == key_id,
            kms_keys.c.next_rotation_at == due,
            kms_keys.c.rotation_period_days.is_not(None),
            kms_keys.c.state == ENABLED,
        )
        .values(next_rotation_at=next_due)
    )
    if claimed.rowcount != 1:
        return None
    version = conn.execute(select(kms_keys.c.material_version).where(kms_keys.c.id == key_id)).scalar_one()
    return int(version) + 1


def delete_deleted_keys(conn: Connection, now: float) -> list[str]:
    """Remove the keys whose deletion date has passed, in every registry (their aliases and tags go with them);
    their ids."""
    due = and_(kms_keys.c.state == PENDING_DELETION, kms_keys.c.deletion_date <= now)
    ids = [row[0] for row in conn.execute(select(kms_keys.c.id).where(due).with_for_update())]
    if ids:
        conn.execute(delete(kms_keys).where(kms_keys.c.id.in_(ids)))
    return ids


# -- aliases ---------------------------------------------------------------------------------------------


def _to_alias(row: Row[Any]) -> AliasRow:
    m = row._mapping
    return AliasRow(m["name"], m["key_id"], m["created_at"], m["updated_at"])


def _alias_in(registry: RegistryId) -> ColumnElement[bool]:
    return and_(kms_aliases.c.account_id == registry.account_id, kms_aliases.c.region == registry.region)


def _alias(registry: RegistryId, name: str) -> ColumnElement[bool]:
    return and_(_alias_in(registry), kms_aliases.c.name == name)


def get_alias(
    conn: Connection, registry: RegistryId, name: str, *, now: float, for_update: bool = False
) -> AliasRow | None:
    """The alias of ``registry``, if it names a key that is not deleted."""
    query = (
        select(kms_aliases)
        .join(kms_keys, kms_keys.c.id == kms_aliases.c.key_id)
        .where(_alias(registry, name), _live(now))
    )
    if for_update:
        query = query.with_for_update(of=kms_aliases)
    row = conn.execute(query).first()
    return _to_alias(row) if row else None


def delete_alias(conn: Connection, registry: RegistryId, name: str) -> None:
    conn.execute(delete(kms_aliases).where(_alias(registry, name)))


def delete_stale_alias(conn: Connection, registry: RegistryId, name: str, *, now: float) -> None:
    """Free the name of an alias whose key is deleted but not yet purged (and never a live alias, which a
    concurrent transaction may just have made)."""
    deleted_keys = select(kms_keys.c.id).where(kms_keys.c.state == PENDING_DELETION, kms_keys.c.deletion_date <= now)
    conn.execute(delete(kms_aliases).where(_alias(registry, name), kms_aliases.c.key_id.in_(deleted_keys)))


def insert_alias(conn: Connection, registry: RegistryId, name: str, key_id: str, *, at: float) -> None:
    conn.execute(
        insert(kms_aliases).values(
            account_id=registry.account_id,
            region=registry.region,
            name=name,
            key_id=key_id,
            created_at=at,
            updated_at=at,
        )
    )


def retarget_alias(conn: Connection, registry: RegistryId, name: str, key_id: str, *, at: float) -> None:
    conn.execute(update(kms_aliases).where(_alias(registry, name)).values(key_id=key_id, updated_at=at))


def list_aliases(
    conn: Connection, registry: RegistryId, *, now: float, key_id: str | None, after: str | None, limit: int
) -> list[AliasRow]:
    query = (
        select(kms_aliases)
        .join(kms_keys, kms_keys.c.id == kms_aliases.c.key_id)
        .where(_alias_in(registry), _live(now))
        .order_by(kms_aliases.c.name)
        .limit(limit)
    )
    if key_id is not None:
        query = query.where(kms_aliases.c.key_id == key_id)
    if after is not None:
        query = query.where(kms_aliases.c.name > after)
    return [_to_alias(row) for row in conn.execute(query)]


# -- tags ------------------------------------------------------------------------------------------------


def get_tags(conn: Connection, key_id: str) -> dict[str, str]:
    query = select(kms_key_tags.c.tag_key, kms_key_tags.c.tag_value).where(kms_key_tags.c.key_id == key_id)
    return {key: value for key, value in conn.execute(query.order_by(kms_key_tags.c.tag_key))}


def list_tags(conn: Connection, key_id: str, *, after: str | None, limit: int) -> list[tuple[str, str]]:
    query = (
        select(kms_key_tags.c.tag_key, kms_key_tags.c.tag_value)
        .where(kms_key_tags.c.key_id == key_id)
        .order_by(kms_key_tags.c.tag_key)
        .limit(limit)
    )
    if after is not None:
        query = query.where(kms_key_tags.c.tag_key > after)
    return [(key, value) for key, value in conn.execute(query)]


def put_tags(conn: Connection, key_id: str, tags: Mapping[str, str]) -> None:
    """Add tags, replacing the values of keys the key already has."""
    if not tags:
        return
    conn.execute(delete(kms_key_tags).where(kms_key_tags.c.key_id == key_id, kms_key_tags.c.tag_key.in_(tags)))
    conn.execute(insert(kms_key_tags), [{"key_id": key_id, "tag_key": k, "tag_value": v} for k, v in tags.items()])


def delete_tags(conn: Connection, key_id: str, keys: Sequence[str]) -> None:
    if keys:
        conn.execute(delete(kms_key_tags).where(kms_key_tags.c.key_id == key_id, kms_key_tags.c.tag_key.in_(keys)))
