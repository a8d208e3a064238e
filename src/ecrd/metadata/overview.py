"""Figures of one registry (account and region) for the web console's overview: per repository (image count,
size, last push) for a page of repositories in one grouped query, pushes and pulls per day of the last days, the
largest repositories and the bytes of the blobs its repositories hold. Nothing of another registry is counted."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, Connection, Integer, cast, func, select

from ecrd.domain.registries import RegistryId
from ecrd.metadata.tables import blobs, manifests, repositories, repository_blobs


def _in(registry: RegistryId) -> ColumnElement[bool]:
    return (repositories.c.account_id == registry.account_id) & (repositories.c.region == registry.region)


def repository_summaries(
    conn: Connection, registry: RegistryId, names: Sequence[str]
) -> dict[str, tuple[int, int, float | None]]:
    """(images, bytes, last push) of each named repository; images a user pushed, not the registry's SBOMs."""
    if not names:
        return {}
    query = (
        select(
            repositories.c.name,
            func.count(manifests.c.digest),
            func.coalesce(func.sum(manifests.c.image_size), 0),
            func.max(manifests.c.pushed_at),
        )
        .select_from(repositories.outerjoin(manifests, manifests.c.repository_id == repositories.c.id))
        .where(_in(registry), repositories.c.name.in_(list(names)))
        .where((manifests.c.registry_attached.is_(None)) | (manifests.c.registry_attached.is_(False)))
        .group_by(repositories.c.name)
    )
    return {name: (int(count), int(size), pushed) for name, count, size, pushed in conn.execute(query)}


def _per_day(conn: Connection, registry: RegistryId, column: Any, *, since: float, day: float) -> dict[int, int]:
    """How many of the registry's images have ``column`` at or after ``since``, per day (0: the day ``since``
    starts), counted in the database: the rows of two busy weeks never come to Python."""
    index = cast((column - since) / day, Integer).label("day")
    query = (
        select(index, func.count())
        .select_from(manifests.join(repositories, repositories.c.id == manifests.c.repository_id))
        .where(_in(registry), column >= since, manifests.c.registry_attached.is_(False))
        .group_by(index)
    )
    return {int(number): int(count) for number, count in conn.execute(query)}


def pushes_per_day(conn: Connection, registry: RegistryId, *, since: float, day: float) -> dict[int, int]:
    return _per_day(conn, registry, manifests.c.pushed_at, since=since, day=day)


def pulls_per_day(conn: Connection, registry: RegistryId, *, since: float, day: float) -> dict[int, int]:
    """Images last pulled on each day (an image pulled again since counts on its latest day only)."""
    return _per_day(conn, registry, manifests.c.last_pulled_at, since=since, day=day)


def largest_repositories(conn: Connection, registry: RegistryId, *, limit: int) -> list[tuple[str, int]]:
    """The repositories holding the most image bytes (layers shared by images counted in each; the registry's
    SBOMs left out, as in ``repository_summaries``)."""
    total = func.sum(manifests.c.image_size)
    query = (
        select(repositories.c.name, total)
        .join(manifests, manifests.c.repository_id == repositories.c.id)
        .where(_in(registry), manifests.c.registry_attached.is_(False))
        .group_by(repositories.c.name)
        .order_by(total.desc())
        .limit(limit)
    )
    return [(name, int(size)) for name, size in conn.execute(query)]


def stored_bytes(conn: Connection, registry: RegistryId) -> dict[str, int]:
    """Bytes of the blobs the registry's repositories hold, per location, each blob counted once. Blobs are the
    deployment's, stored once however many registries link them: a blob shared with another registry counts in
    each."""
    held = (
        select(repository_blobs.c.digest)
        .join(repositories, repositories.c.id == repository_blobs.c.repository_id)
        .where(_in(registry))
    )
    query = (
        select(blobs.c.location, func.coalesce(func.sum(blobs.c.size), 0))
        .where(blobs.c.digest.in_(held))
        .group_by(blobs.c.location)
    )
    return {str(location): int(size) for location, size in conn.execute(query)}
