"""Queries on repository creation templates."""

from __future__ import annotations

import json
from collections.abc import Sequence

from sqlalchemy import Connection, delete, func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Row

from ecrd.domain.creation_templates import CreationTemplate
from ecrd.domain.pull_policy import policy_from_text, policy_text
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


def get(conn: Connection, prefix: str, *, for_update: bool = False) -> CreationTemplate | None:
    query = select(templates).where(templates.c.prefix == prefix)
    if for_update:
        query = query.with_for_update()
    row = conn.execute(query).first()
    return _to_template(row) if row else None


def get_many(conn: Connection, prefixes: Sequence[str]) -> list[CreationTemplate]:
    """The templates of ``prefixes`` that exist, in prefix order (one indexed lookup per key)."""
    query = select(templates).where(templates.c.prefix.in_(prefixes)).order_by(templates.c.prefix)
    return [_to_template(row) for row in conn.execute(query)]


def page(conn: Connection, *, after: str | None, limit: int) -> list[CreationTemplate]:
    """Templates in prefix order: a keyset page of those after ``after``, at most ``limit``."""
    query = select(templates).order_by(templates.c.prefix).limit(limit)
    if after is not None:
        query = query.where(templates.c.prefix > after)
    return [_to_template(row) for row in conn.execute(query)]


def count(conn: Connection) -> int:
    return int(conn.execute(select(func.count()).select_from(templates)).scalar_one())


def insert_template(conn: Connection, template: CreationTemplate) -> bool:
    """False when a template of that prefix exists already (made by this request or a concurrent one)."""
    dialect_insert = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
    inserted = conn.execute(
        dialect_insert(templates).values(**_values(template)).on_conflict_do_nothing().returning(templates.c.prefix)
    ).first()
    return inserted is not None


def replace_template(conn: Connection, template: CreationTemplate) -> None:
    values = _values(template)
    del values["prefix"], values["created_at"]
    conn.execute(update(templates).where(templates.c.prefix == template.prefix).values(**values))


def delete_template(conn: Connection, prefix: str) -> None:
    conn.execute(delete(templates).where(templates.c.prefix == prefix))


def policies_naming(conn: Connection, text: str) -> list[tuple[str, str]]:
    """(prefix, repository policy) of the templates whose policy mentions ``text`` (a principal's ARN)."""
    query = select(templates.c.prefix, templates.c.repository_policy).where(
        templates.c.repository_policy.contains(text, autoescape=True)
    )
    return [(row.prefix, row.repository_policy) for row in conn.execute(query)]


def set_policy(conn: Connection, prefix: str, policy_text: str) -> None:
    conn.execute(update(templates).where(templates.c.prefix == prefix).values(repository_policy=policy_text))
