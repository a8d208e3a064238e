"""Queries on repositories and their resource tags."""

from __future__ import annotations

import json

from sqlalchemy import Connection, and_, delete, func, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Row
from sqlalchemy.sql.elements import ColumnElement

from ecrd.domain.pull_policy import PullPolicy, policy_from_text, policy_text
from ecrd.domain.records import MutabilityExclusion, Repository
from ecrd.domain.registries import RegistryId
from ecrd.metadata.tables import manifests, registry_settings, repositories, repository_tags


def _to_repository(row: Row[tuple[object, ...]]) -> Repository:
    m = row._mapping
    exclusions = exclusions_from_json(m["mutability_exclusions"])
    return Repository(
        id=m["id"],
        registry=RegistryId(m["account_id"], m["region"]),
        name=m["name"],
        created_at=m["created_at"],
        image_tag_mutability=m["image_tag_mutability"],
        mutability_exclusions=exclusions,
        scan_on_push=m["scan_on_push"],
        encryption_type=m["encryption_type"],
        kms_key=m["kms_key"],
        manifest_key=m["manifest_key"],
        pull_policy=policy_from_text(m["pull_policy"]),
    )


def _get_where(conn: Connection, condition: ColumnElement[bool], *, for_update: bool) -> Repository | None:
    query = select(repositories).where(condition)
    if for_update:
        query = query.with_for_update()
    row = conn.execute(query).first()
    return _to_repository(row) if row else None


def get_by_id(conn: Connection, repository_id: int, *, for_update: bool = False) -> Repository | None:
    return _get_where(conn, repositories.c.id == repository_id, for_update=for_update)


def get_by_name(conn: Connection, registry: RegistryId, name: str, *, for_update: bool = False) -> Repository | None:
    return _get_where(conn, and_(_in_registry(registry), repositories.c.name == name), for_update=for_update)


def _in_registry(registry: RegistryId) -> ColumnElement[bool]:
    return and_(repositories.c.account_id == registry.account_id, repositories.c.region == registry.region)


def insert_repository(
    conn: Connection,
    registry: RegistryId,
    *,
    name: str,
    created_at: float,
    image_tag_mutability: str,
    mutability_exclusions: tuple[MutabilityExclusion, ...],
    scan_on_push: bool,
    encryption_type: str,
    kms_key: str | None,
    manifest_key: bytes,
) -> Repository:
    result = conn.execute(
        insert(repositories).values(
            account_id=registry.account_id,
            region=registry.region,
            name=name,
            created_at=created_at,
            image_tag_mutability=image_tag_mutability,
            mutability_exclusions=exclusions_json(mutability_exclusions),
            scan_on_push=scan_on_push,
            encryption_type=encryption_type,
            kms_key=kms_key,
            manifest_key=manifest_key,
        )
    )
    repository_id = result.inserted_primary_key[0] if result.inserted_primary_key else None
    found = get_by_name(conn, registry, name)
    assert found is not None and found.id == repository_id
    return found


def exclusions_json(exclusions: tuple[MutabilityExclusion, ...]) -> str:
    """Mutability exclusion filters as stored (in ECR's JSON shape), by repositories and creation templates."""
    return json.dumps([{"filterType": e.filter_type, "filter": e.filter} for e in exclusions])


def exclusions_from_json(text: str) -> tuple[MutabilityExclusion, ...]:
    return tuple(MutabilityExclusion(item["filterType"], item["filter"]) for item in json.loads(text))


def update_settings(
    conn: Connection,
    repository_id: int,
    *,
    image_tag_mutability: str | None = None,
    mutability_exclusions: tuple[MutabilityExclusion, ...] | None = None,
    scan_on_push: bool | None = None,
) -> None:
    values: dict[str, object] = {}
    if image_tag_mutability is not None:
        values["image_tag_mutability"] = image_tag_mutability
    if mutability_exclusions is not None:
        values["mutability_exclusions"] = exclusions_json(mutability_exclusions)
    if scan_on_push is not None:
        values["scan_on_push"] = scan_on_push
    if values:
        conn.execute(update(repositories).where(repositories.c.id == repository_id).values(**values))


def set_pull_policy(conn: Connection, repository_id: int, policy: PullPolicy | None) -> None:
    conn.execute(update(repositories).where(repositories.c.id == repository_id).values(pull_policy=policy_text(policy)))


def list_names(conn: Connection, registry: RegistryId, *, after: str | None, limit: int) -> list[str]:
    query = select(repositories.c.name).where(_in_registry(registry)).order_by(repositories.c.name).limit(limit)
    if after is not None:
        query = query.where(repositories.c.name > after)
    return list(conn.execute(query).scalars())


def list_repositories(
    conn: Connection, registry: RegistryId, *, names: list[str] | None, after: str | None, limit: int
) -> list[Repository]:
    """A registry's repositories by name (a keyset page: those after ``after``, at most ``limit``)."""
    query = select(repositories).where(_in_registry(registry)).order_by(repositories.c.name).limit(limit)
    if names is not None:
        query = query.where(repositories.c.name.in_(names))
    if after is not None:
        query = query.where(repositories.c.name > after)
    return [_to_repository(row) for row in conn.execute(query)]


def count_images(conn: Connection, repository_id: int) -> int:
    return int(
        conn.execute(
            select(func.count()).select_from(manifests).where(manifests.c.repository_id == repository_id)
        ).scalar_one()
    )


def count_repositories_and_images(conn: Connection) -> tuple[int, int]:
    """(repositories, images) of the whole registry: an image is a stored manifest, tagged or not."""
    repository_count = conn.execute(select(func.count()).select_from(repositories)).scalar_one()
    image_count = conn.execute(select(func.count()).select_from(manifests)).scalar_one()
    return int(repository_count), int(image_count)


def delete_repository(conn: Connection, repository_id: int) -> None:
    conn.execute(delete(repositories).where(repositories.c.id == repository_id))


def get_policy(conn: Connection, repository_id: int) -> str | None:
    return conn.execute(
        select(repositories.c.policy_text).where(repositories.c.id == repository_id)
    ).scalar_one_or_none()


def policies_naming(conn: Connection, text: str) -> list[tuple[int, str]]:
    """(repository id, policy) of every repository policy that mentions ``text``."""
    rows = conn.execute(
        select(repositories.c.id, repositories.c.policy_text).where(repositories.c.policy_text.contains(text))
    )
    return [(row.id, row.policy_text) for row in rows]


def set_policy(conn: Connection, repository_id: int, policy_text: str | None) -> None:
    conn.execute(update(repositories).where(repositories.c.id == repository_id).values(policy_text=policy_text))


def get_resource_tags(conn: Connection, repository_id: int) -> dict[str, str]:
    rows = conn.execute(
        select(repository_tags.c.key, repository_tags.c.value)
        .where(repository_tags.c.repository_id == repository_id)
        .order_by(repository_tags.c.key)
    )
    return {row.key: row.value for row in rows}


def put_resource_tags(conn: Connection, repository_id: int, tags: dict[str, str]) -> None:
    if not tags:
        return
    conn.execute(
        delete(repository_tags).where(
            repository_tags.c.repository_id == repository_id, repository_tags.c.key.in_(list(tags))
        )
    )
    conn.execute(
        insert(repository_tags), [{"repository_id": repository_id, "key": k, "value": v} for k, v in tags.items()]
    )


def delete_resource_tags(conn: Connection, repository_id: int, keys: list[str]) -> None:
    conn.execute(
        delete(repository_tags).where(repository_tags.c.repository_id == repository_id, repository_tags.c.key.in_(keys))
    )


# -- registry-wide settings (the registry policy, scanning configuration, …) ------------------------------


def get_registry_setting(conn: Connection, registry: RegistryId, key: str) -> str | None:
    return conn.execute(select(registry_settings.c.value).where(_setting_of(registry, key))).scalar_one_or_none()


def registry_setting_values(conn: Connection, key: str, *, containing: str | None = None) -> dict[RegistryId, str]:
    """One setting's value in every registry that set it (only the values that mention ``containing``, e.g. a
    principal's ARN, when it is given)."""
    query = select(registry_settings.c.account_id, registry_settings.c.region, registry_settings.c.value).where(
        registry_settings.c.key == key
    )
    if containing is not None:
        query = query.where(registry_settings.c.value.contains(containing, autoescape=True))
    return {RegistryId(row.account_id, row.region): row.value for row in conn.execute(query)}


def set_registry_setting(conn: Connection, registry: RegistryId, key: str, value: str) -> None:
    # An upsert: two first writes of one key at once (PostgreSQL runs them side by side) both succeed, the later
    # one's value kept, where an UPDATE-then-INSERT would fail the second on the primary key.
    dialect_insert = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
    statement = dialect_insert(registry_settings).values(
        account_id=registry.account_id, region=registry.region, key=key, value=value
    )
    conn.execute(
        statement.on_conflict_do_update(
            index_elements=[registry_settings.c.account_id, registry_settings.c.region, registry_settings.c.key],
            set_={"value": value},
        )
    )


def delete_registry_setting(conn: Connection, registry: RegistryId, key: str) -> bool:
    return bool(conn.execute(delete(registry_settings).where(_setting_of(registry, key))).rowcount)


def _setting_of(registry: RegistryId, key: str) -> ColumnElement[bool]:
    return and_(
        registry_settings.c.account_id == registry.account_id,
        registry_settings.c.region == registry.region,
        registry_settings.c.key == key,
    )
