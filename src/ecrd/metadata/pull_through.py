"""Queries on pull-through cache rules (each of one registry, an account in a region), blob fetch claims and tag
check times (of a repository, so of its registry)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Connection, and_, delete, func, select, update
from sqlalchemy.engine import Row
from sqlalchemy.sql.elements import ColumnElement

from ecrd.domain.pull_through import PullThroughRule, covering_rule
from ecrd.domain.registries import RegistryId
from ecrd.metadata.pull_through_tables import pull_through_cache_rules as rules
from ecrd.metadata.pull_through_tables import pull_through_fetches as fetches
from ecrd.metadata.pull_through_tables import pull_through_tag_checks as checks
from ecrd.metadata.tables import dialect_insert, repositories

_FIELDS = (
    "ecr_repository_prefix",
    "upstream_registry_url",
    "upstream_registry",
    "upstream_repository_prefix",
    "credential_arn",
    "custom_role_arn",
    "created_at",
    "updated_at",
)


def _to_rule(row: Row[tuple[object, ...]]) -> PullThroughRule:
    return PullThroughRule(**{name: row._mapping[name] for name in _FIELDS})


def _values(rule: PullThroughRule) -> dict[str, object]:
    return {name: getattr(rule, name) for name in _FIELDS}


def _in(registry: RegistryId) -> ColumnElement[bool]:
    return and_(rules.c.account_id == registry.account_id, rules.c.region == registry.region)


def _of(registry: RegistryId, prefix: str) -> ColumnElement[bool]:
    return and_(_in(registry), rules.c.ecr_repository_prefix == prefix)


def get(conn: Connection, registry: RegistryId, prefix: str, *, for_update: bool = False) -> PullThroughRule | None:
    query = select(rules).where(_of(registry, prefix))
    if for_update:
        query = query.with_for_update()
    row = conn.execute(query).first()
    return _to_rule(row) if row else None


def get_many(conn: Connection, registry: RegistryId, prefixes: Sequence[str]) -> list[PullThroughRule]:
    query = (
        select(rules)
        .where(_in(registry), rules.c.ecr_repository_prefix.in_(prefixes))
        .order_by(rules.c.ecr_repository_prefix)
    )
    return [_to_rule(row) for row in conn.execute(query)]


def page(conn: Connection, registry: RegistryId, *, after: str | None, limit: int) -> list[PullThroughRule]:
    query = select(rules).where(_in(registry)).order_by(rules.c.ecr_repository_prefix).limit(limit)
    if after is not None:
        query = query.where(rules.c.ecr_repository_prefix > after)
    return [_to_rule(row) for row in conn.execute(query)]


def count(conn: Connection, registry: RegistryId) -> int:
    return int(conn.execute(select(func.count()).select_from(rules).where(_in(registry))).scalar_one())


def insert_rule(conn: Connection, registry: RegistryId, rule: PullThroughRule) -> bool:
    """False when the registry has a rule of that prefix already."""
    inserted = conn.execute(
        dialect_insert(conn)(rules)
        .values(account_id=registry.account_id, region=registry.region, **_values(rule))
        .on_conflict_do_nothing()
        .returning(rules.c.ecr_repository_prefix)
    ).first()
    return inserted is not None


def replace_rule(conn: Connection, registry: RegistryId, rule: PullThroughRule) -> None:
    values = _values(rule)
    del values["ecr_repository_prefix"], values["created_at"]
    conn.execute(update(rules).where(_of(registry, rule.ecr_repository_prefix)).values(**values))


def delete_rule(conn: Connection, registry: RegistryId, prefix: str) -> None:
    conn.execute(delete(rules).where(_of(registry, prefix)))


def cached_repository_ids(conn: Connection) -> set[int]:
    """The repositories, of every registry, that a pull-through cache rule of their own registry covers (fsck's
    question: a whole deployment's)."""
    by_registry: dict[RegistryId, list[PullThroughRule]] = {}
    for row in conn.execute(select(rules)):
        by_registry.setdefault(RegistryId(row.account_id, row.region), []).append(_to_rule(row))
    if not by_registry:
        return set()
    query = select(repositories.c.id, repositories.c.name, repositories.c.account_id, repositories.c.region)
    return {
        row.id
        for row in conn.execute(query)
        if covering_rule(by_registry.get(RegistryId(row.account_id, row.region), ()), row.name) is not None
    }


# -- blob fetch claims ----------------------------------------------------------------------------------------


def claim_fetch(conn: Connection, repository_id: int, digest: str, claim: str, now: float, lease: float) -> bool:
    """Whether ``claim`` now holds the fetch of ``digest`` into the repository: a new row, or one whose holder
    let its lease run out."""
    inserted = conn.execute(
        dialect_insert(conn)(fetches)
        .values(repository_id=repository_id, digest=digest, claim=claim, claimed_at=now)
        .on_conflict_do_nothing()
        .returning(fetches.c.digest)
    ).first()
    if inserted is not None:
        return True
    taken = conn.execute(
        update(fetches)
        .where(fetches.c.repository_id == repository_id, fetches.c.digest == digest, fetches.c.claimed_at < now - lease)
        .values(claim=claim, claimed_at=now)
    )
    return taken.rowcount == 1


def renew_fetch(conn: Connection, repository_id: int, digest: str, claim: str, now: float) -> bool:
    """Extend a held claim's lease; False when another process took it over."""
    renewed = conn.execute(
        update(fetches)
        .where(fetches.c.repository_id == repository_id, fetches.c.digest == digest, fetches.c.claim == claim)
        .values(claimed_at=now)
    )
    return renewed.rowcount == 1


def release_fetch(conn: Connection, repository_id: int, digest: str, claim: str) -> None:
    conn.execute(
        delete(fetches).where(
            fetches.c.repository_id == repository_id, fetches.c.digest == digest, fetches.c.claim == claim
        )
    )


def fetch_claimed(conn: Connection, repository_id: int, digest: str, now: float, lease: float) -> bool:
    """Whether a claim whose lease has not run out holds the fetch of ``digest`` into the repository."""
    query = select(fetches.c.claim).where(
        fetches.c.repository_id == repository_id, fetches.c.digest == digest, fetches.c.claimed_at >= now - lease
    )
    return conn.execute(query).first() is not None


# -- tag checks -----------------------------------------------------------------------------------------------


def tag_checked_at(conn: Connection, repository_id: int, tag: str) -> float | None:
    query = select(checks.c.checked_at).where(checks.c.repository_id == repository_id, checks.c.tag == tag)
    value = conn.execute(query).scalar_one_or_none()
    return float(value) if value is not None else None


def set_tag_checked(conn: Connection, repository_id: int, tag: str, now: float) -> None:
    statement = dialect_insert(conn)(checks).values(repository_id=repository_id, tag=tag, checked_at=now)
    conn.execute(
        statement.on_conflict_do_update(index_elements=[checks.c.repository_id, checks.c.tag], set_={"checked_at": now})
    )
