"""Queries on repository creation templates: each belongs to one registry (an account in a region), which every
query but the principal rewrite is confined to."""

from __future__ import annotations

import json
from collections.abc import Sequence

from sqlalchemy import Connection, and_, delete, func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Row
from sqlalchemy.sql.elements import ColumnElement

from ecrd.domain.creation_templates import CreationTemplate
from ecrd.domain.pull_policy import policy_from_text, policy_text
from ecrd.domain.registries import RegistryId
from ecrd.metadata.creation_templates_tables import repository_creation_templates as templates
from ecrd.metadata.repositories import exclusions_from_json, exclusions_json


def _to_template(row: Row[tuple[object, ...]]) -> CreationTemplate:
    m = row._mapping
    return CreationTemplate(
        prefix=m["prefix"],
        applied_for=tuple(json.loads(m["applied_for"])),
        description=m["description"],
        encryption_type=m["encryption_type"],
        kms_key=m["kms_key"],
        resource_tags=tuple((key, value) for key, value in json.loads(m["resource_tags"])),
        image_tag_mutability=m["image_tag_mutability"],
        mutability_exclusions=exclusions_from_json(m["mutability_exclusions"]),
        repository_policy=m["repository_policy"],
        lifecycle_policy=m["lifecycle_policy"],
        custom_role_arn=m["custom_role_arn"],
        pull_policy=policy_from_text(m["pull_policy"]),
        created_at=m["created_at"],
        updated_at=m["updated_at"],
    )


def _values(template: CreationTemplate) -> dict[str, object]:
    return {
        "prefix": template.prefix,
        "applied_for": json.dumps(list(template.applied_for)),
        "description": template.description,
        "encryption_type": template.encryption_type,
        "kms_key": template.kms_key,
        "resource_tags": json.dumps([list(tag) for tag in template.resource_tags]),
        "image_tag_mutability": template.image_tag_mutability,
        "mutability_exclusions": exclusions_json(template.mutability_exclusions),
        "repository_policy": template.repository_policy,
        "lifecycle_policy": template.lifecycle_policy,
        "custom_role_arn": template.custom_role_arn,
        "pull_policy": policy_text(template.pull_policy),
        "created_at": template.created_at,
        "updated_at": template.updated_at,
    }


def _in(registry: RegistryId) -> ColumnElement[bool]:
    return and_(templates.c.account_id == registry.account_id, templates.c.region == registry.region)


def _of(registry: RegistryId, prefix: str) -> ColumnElement[bool]:
    return and_(_in(registry), templates.c.prefix == prefix)


def get(conn: Connection, registry: RegistryId, prefix: str, *, for_update: bool = False) -> CreationTemplate | None:
    query = select(templates).where(_of(registry, prefix))
    if for_update:
        query = query.with_for_update()
    row = conn.execute(query).first()
    return _to_template(row) if row else None


def get_many(conn: Connection, registry: RegistryId, prefixes: Sequence[str]) -> list[CreationTemplate]:
    """The registry's templates of ``prefixes`` that exist, in prefix order (one indexed lookup per key)."""
    query = select(templates).where(_in(registry), templates.c.prefix.in_(prefixes)).order_by(templates.c.prefix)
    return [_to_template(row) for row in conn.execute(query)]


def page(conn: Connection, registry: RegistryId, *, after: str | None, limit: int) -> list[CreationTemplate]:
    """The registry's templates in prefix order: a keyset page of those after ``after``, at most ``limit``."""
    query = select(templates).where(_in(registry)).order_by(templates.c.prefix).limit(limit)
    if after is not None:
        query = query.where(templates.c.prefix > after)
    return [_to_template(row) for row in conn.execute(query)]


def count(conn: Connection, registry: RegistryId) -> int:
    return int(conn.execute(select(func.count()).select_from(templates).where(_in(registry))).scalar_one())


def insert_template(conn: Connection, registry: RegistryId, template: CreationTemplate) -> bool:
    """False when the registry has a template of that prefix already (made by this request or a concurrent one)."""
    dialect_insert = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
    values = {"account_id": registry.account_id, "region": registry.region, **_values(template)}
    inserted = conn.execute(
        dialect_insert(templates).values(**values).on_conflict_do_nothing().returning(templates.c.prefix)
    ).first()
    return inserted is not None


def replace_template(conn: Connection, registry: RegistryId, template: CreationTemplate) -> None:
    values = _values(template)
    del values["prefix"], values["created_at"]
    conn.execute(update(templates).where(_of(registry, template.prefix)).values(**values))


def delete_template(conn: Connection, registry: RegistryId, prefix: str) -> None:
    conn.execute(delete(templates).where(_of(registry, prefix)))


def policies_naming(conn: Connection, text: str) -> list[tuple[RegistryId, str, str]]:
    """(registry, prefix, repository policy) of the templates, in every registry, whose policy mentions ``text``
    (a principal's ARN): IAM rewrites a deleted principal in every policy that names it, whoever's it is."""
    query = select(templates.c.account_id, templates.c.region, templates.c.prefix, templates.c.repository_policy).where(
        templates.c.repository_policy.contains(text, autoescape=True)
    )
    return [(RegistryId(row.account_id, row.region), row.prefix, row.repository_policy) for row in conn.execute(query)]


def set_policy(conn: Connection, registry: RegistryId, prefix: str, policy_text: str) -> None:
    conn.execute(update(templates).where(_of(registry, prefix)).values(repository_policy=policy_text))
