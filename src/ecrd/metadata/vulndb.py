"""Queries on the vulnerability database tables: storing advisory records in batches, finding them by package,
the counts ``ecrd vulndb status`` shows, and the advisory generation.

The advisory generation is the ``vulndb`` row of the ``generations`` table: every transaction that changes
advisory data bumps it, so a per-process cache of advisory look-ups keyed by it is never used after any
process, on any node, has changed the data. (No trigger keeps it: only ``bump_generation``'s callers write
advisories.) A database that was never imported into has no row: generation 0.

Callers hold the transaction; every function takes the connection. Long ``IN`` lists are cut into chunks that
stay well under SQLite's and PostgreSQL's bound-parameter limits.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Final, TypeVar

from sqlalchemy import Connection, bindparam, delete, func, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from ecrd.metadata.tables import generations
from ecrd.metadata.vulndb_tables import vulndb_advisories, vulndb_advisory_packages, vulndb_imports

_CHUNK: Final = 500
GENERATION_SCOPE: Final = "vulndb"
_GENERATION = select(generations.c.value).where(generations.c.scope == GENERATION_SCOPE)
_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class StoredAdvisory:
    id: str
    modified: float
    withdrawn: bool
    record: str  # the OSV JSON text
    packages: frozenset[tuple[str, str]]  # (ecosystem, normalized name)


@dataclass(frozen=True, slots=True)
class ImportRow:
    source: str
    imported_at: float
    records: int
    inserted: int
    updated: int
    unchanged: int
    skipped: int


def _chunks(items: Sequence[_T]) -> Iterator[Sequence[_T]]:
    for start in range(0, len(items), _CHUNK):
        yield items[start : start + _CHUNK]


def modified_times(conn: Connection, ids: Collection[str]) -> dict[str, float]:
    """The stored ``modified`` time of each of ``ids`` that is stored."""
    found: dict[str, float] = {}
    for chunk in _chunks(sorted(ids)):
        rows = conn.execute(
            select(vulndb_advisories.c.id, vulndb_advisories.c.modified).where(vulndb_advisories.c.id.in_(chunk))
        )
        found.update({row.id: row.modified for row in rows})
    return found


def insert_advisories(conn: Connection, advisories: Sequence[StoredAdvisory]) -> None:
    if not advisories:
        return
    conn.execute(
        insert(vulndb_advisories),
        [{"id": a.id, "modified": a.modified, "withdrawn": a.withdrawn, "record": a.record} for a in advisories],
    )
    _insert_packages(conn, advisories)


def replace_advisories(conn: Connection, advisories: Sequence[StoredAdvisory]) -> None:
    """Overwrite stored records with newer versions, and refile them under their (possibly changed) packages."""
    if not advisories:
        return
    statement = (
        update(vulndb_advisories)
        .where(vulndb_advisories.c.id == bindparam("b_id"))
        .values(modified=bindparam("b_modified"), withdrawn=bindparam("b_withdrawn"), record=bindparam("b_record"))
    )
    conn.execute(
        statement,
        [
            {"b_id": a.id, "b_modified": a.modified, "b_withdrawn": a.withdrawn, "b_record": a.record}
            for a in advisories
        ],
    )
    for chunk in _chunks([a.id for a in advisories]):
        conn.execute(delete(vulndb_advisory_packages).where(vulndb_advisory_packages.c.advisory_id.in_(chunk)))
    _insert_packages(conn, advisories)


def _insert_packages(conn: Connection, advisories: Iterable[StoredAdvisory]) -> None:
    rows = [
        {"ecosystem": ecosystem, "name": name, "advisory_id": a.id}
        for a in advisories
        for ecosystem, name in sorted(a.packages)
    ]
    if rows:
        conn.execute(insert(vulndb_advisory_packages), rows)


def records_for(conn: Connection, ecosystem: str, names: Collection[str]) -> dict[str, list[str]]:
    """name → the JSON text of every record filed under (ecosystem, name), for each of ``names`` (normalized)."""
    found: dict[str, list[str]] = {name: [] for name in names}
    for chunk in _chunks(sorted(names)):
        rows = conn.execute(
            select(vulndb_advisory_packages.c.name, vulndb_advisories.c.record)
            .join(vulndb_advisories, vulndb_advisories.c.id == vulndb_advisory_packages.c.advisory_id)
            .where(vulndb_advisory_packages.c.ecosystem == ecosystem, vulndb_advisory_packages.c.name.in_(chunk))
            .order_by(vulndb_advisory_packages.c.name, vulndb_advisory_packages.c.advisory_id)
        )
        for row in rows:
            found[row.name].append(row.record)
    return found


def generation(conn: Connection) -> int:
    value = conn.execute(_GENERATION).scalar_one_or_none()
    return 0 if value is None else int(value)


def bump_generation(conn: Connection) -> None:
    """Change the advisory generation, in the caller's transaction (the one that changes advisory data). An
    upsert, so the first import needs no migration to have made the row, and two first imports cannot
    collide."""
    dialect_insert = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
    statement = dialect_insert(generations).values(scope=GENERATION_SCOPE, value=1)
    conn.execute(
        statement.on_conflict_do_update(index_elements=[generations.c.scope], set_={"value": generations.c.value + 1})
    )


def count_records(conn: Connection) -> int:
    return int(conn.execute(select(func.count()).select_from(vulndb_advisories)).scalar_one())


def records_per_ecosystem(conn: Connection) -> list[tuple[str, int]]:
    """(ecosystem, number of records with a package in it), by ecosystem."""
    advisory_count = func.count(vulndb_advisory_packages.c.advisory_id.distinct())
    rows = conn.execute(
        select(vulndb_advisory_packages.c.ecosystem, advisory_count)
        .group_by(vulndb_advisory_packages.c.ecosystem)
        .order_by(vulndb_advisory_packages.c.ecosystem)
    )
    return [(row[0], int(row[1])) for row in rows]


def newest_modified(conn: Connection) -> float | None:
    value = conn.execute(select(func.max(vulndb_advisories.c.modified))).scalar_one()
    return None if value is None else float(value)


def record_import(conn: Connection, row: ImportRow) -> None:
    conn.execute(
        insert(vulndb_imports).values(
            source=row.source,
            imported_at=row.imported_at,
            records=row.records,
            inserted=row.inserted,
            updated=row.updated,
            unchanged=row.unchanged,
            skipped=row.skipped,
        )
    )


def last_import(conn: Connection) -> ImportRow | None:
    row = conn.execute(
        select(vulndb_imports).order_by(vulndb_imports.c.imported_at.desc(), vulndb_imports.c.id.desc()).limit(1)
    ).first()
    if row is None:
        return None
    return ImportRow(row.source, row.imported_at, row.records, row.inserted, row.updated, row.unchanged, row.skipped)
