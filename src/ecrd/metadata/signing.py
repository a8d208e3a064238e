"""Queries of image signing: signing profiles (each of one registry, an account in a region), the deployment's
signing authority, and images' signing statuses (of a repository, so of its registry)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection, and_, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.sql.elements import ColumnElement

from ecrd.domain.registries import DEPLOYMENT, RegistryId
from ecrd.metadata.signing_tables import image_signing_statuses as statuses
from ecrd.metadata.signing_tables import signing_profiles as profiles
from ecrd.metadata.tables import registry_settings


@dataclass(frozen=True, slots=True)
class ProfileRow:
    name: str
    kms_key: str
    certificate: str
    created_at: float


@dataclass(frozen=True, slots=True)
class SigningStatusRow:
    profile_arn: str
    status: str
    failure_code: str | None
    failure_reason: str | None
    signature_digest: str | None


def _insert(conn: Connection):  # type: ignore[no-untyped-def]
    return pg_insert if conn.dialect.name == "postgresql" else sqlite_insert


def keep_deployment_setting(conn: Connection, key: str, value: str) -> str:
    """Store ``value`` under the deployment's ``key`` (the empty account and region: the signing authority is one
    for the whole deployment) unless a value is there already; the value that stands either way. Two first writes
    at once (PostgreSQL runs them side by side) agree on one."""
    where = _deployment_setting(key)
    conn.execute(
        _insert(conn)(registry_settings)
        .values(account_id=DEPLOYMENT.account_id, region=DEPLOYMENT.region, key=key, value=value)
        .on_conflict_do_nothing()
    )
    return str(conn.execute(select(registry_settings.c.value).where(where)).scalar_one())


def deployment_setting(conn: Connection, key: str) -> str | None:
    return conn.execute(select(registry_settings.c.value).where(_deployment_setting(key))).scalar_one_or_none()


def _deployment_setting(key: str) -> ColumnElement[bool]:
    return and_(
        registry_settings.c.account_id == DEPLOYMENT.account_id,
        registry_settings.c.region == DEPLOYMENT.region,
        registry_settings.c.key == key,
    )


def _in(registry: RegistryId) -> ColumnElement[bool]:
    return and_(profiles.c.account_id == registry.account_id, profiles.c.region == registry.region)


def insert_profile(conn: Connection, registry: RegistryId, row: ProfileRow) -> bool:
    """Add a profile to the registry; False when it has one of that name."""
    result = conn.execute(
        _insert(conn)(profiles)
        .values(
            account_id=registry.account_id,
            region=registry.region,
            name=row.name,
            kms_key=row.kms_key,
            certificate=row.certificate,
            created_at=row.created_at,
        )
        .on_conflict_do_nothing()
    )
    return bool(result.rowcount)


def get_profile(conn: Connection, registry: RegistryId, name: str) -> ProfileRow | None:
    row = conn.execute(select(profiles).where(_in(registry), profiles.c.name == name)).one_or_none()
    return None if row is None else ProfileRow(row.name, row.kms_key, row.certificate, row.created_at)


def list_profiles(conn: Connection, registry: RegistryId) -> list[ProfileRow]:
    rows = conn.execute(select(profiles).where(_in(registry)).order_by(profiles.c.name))
    return [ProfileRow(row.name, row.kms_key, row.certificate, row.created_at) for row in rows]


def set_status(
    conn: Connection,
    repository_id: int,
    digest: str,
    row: SigningStatusRow,
    now: float,
) -> None:
    values = {
        "status": row.status,
        "failure_code": row.failure_code,
        "failure_reason": row.failure_reason,
        "signature_digest": row.signature_digest,
        "updated_at": now,
    }
    statement = _insert(conn)(statuses).values(
        repository_id=repository_id, digest=digest, profile_arn=row.profile_arn, **values
    )
    conn.execute(
        statement.on_conflict_do_update(
            index_elements=[statuses.c.repository_id, statuses.c.digest, statuses.c.profile_arn], set_=values
        )
    )


def statuses_of(conn: Connection, repository_id: int, digest: str) -> list[SigningStatusRow]:
    rows = conn.execute(
        select(statuses)
        .where(statuses.c.repository_id == repository_id, statuses.c.digest == digest)
        .order_by(statuses.c.profile_arn)
    )
    return [
        SigningStatusRow(row.profile_arn, row.status, row.failure_code, row.failure_reason, row.signature_digest)
        for row in rows
    ]
