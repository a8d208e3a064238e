"""Registry-wide figures for the web console's overview: per repository (image count, size, last push) for a
page of repositories in one grouped query, and the push and pull times of the last days."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Connection, func, select

from ecrd.metadata.tables import manifests, repositories


def repository_summaries(conn: Connection, names: Sequence[str]) -> dict[str, tuple[int, int, float | None]]:
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
        .where(repositories.c.name.in_(list(names)))
        .where((manifests.c.registry_attached.is_(None)) | (manifests.c.registry_attached.is_(False)))
        .group_by(repositories.c.name)
    )
    return {name: (int(count), int(size), pushed) for name, count, size, pushed in conn.execute(query)}


def push_times(conn: Connection, *, since: float) -> list[float]:
    query = select(manifests.c.pushed_at).where(
        manifests.c.pushed_at >= since, manifests.c.registry_attached.is_(False)
    )
    return [float(value) for value in conn.scalars(query)]


def pull_times(conn: Connection, *, since: float) -> list[float]:
    return [
        float(value)
        for value in conn.scalars(select(manifests.c.last_pulled_at).where(manifests.c.last_pulled_at >= since))
    ]


def largest_repositories(conn: Connection, *, limit: int) -> list[tuple[str, int]]:
    """The repositories holding the most image bytes (layers shared by images counted in each; the registry's
    SBOMs left out, as in ``repository_summaries``)."""
    total = func.sum(manifests.c.image_size)
    query = (
        select(repositories.c.name, total)
        .join(manifests, manifests.c.repository_id == repositories.c.id)
        .where(manifests.c.registry_attached.is_(False))
        .group_by(repositories.c.name)
        .order_by(total.desc())
        .limit(limit)
    )
    return [(name, int(size)) for name, size in conn.execute(query)]
