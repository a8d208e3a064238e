"""Metadata databases for tests: a fresh SQLite file, or a PostgreSQL database made and dropped per test.

Both start at the newest schema, copied from a template this process migrated once (PostgreSQL's ``CREATE
DATABASE … TEMPLATE``, a file copy for SQLite): the schema a test gets is exactly what the migrations make, without
each of a thousand tests running them again (half a second each on PostgreSQL). ``migrated=False`` gives an empty
database, for tests of the migrations themselves.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest

from ecrd.metadata.store import MetadataStore

POSTGRES_ADMIN_URL = os.environ.get("ECRD_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres")
BACKENDS = ("sqlite", "postgresql")

_templates: dict[str, str] = {}


def postgres_available() -> bool:
    try:
        with psycopg.connect(POSTGRES_ADMIN_URL, connect_timeout=3):
            return True
    except psycopg.Error:
        return False


def _admin(statement: str) -> None:
    with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as conn:
        conn.execute(statement)


def _postgres_url(name: str) -> str:
    return f"{POSTGRES_ADMIN_URL.rsplit('/', 1)[0]}/{name}"


def _migrated(url: str) -> None:
    store = MetadataStore(url)
    try:
        store.migrate()
    finally:
        store.dispose()


def _postgres_template() -> str:
    """A database this process migrated once, copied for each test (dropped when the process ends)."""
    if "postgresql" not in _templates:
        name = f"ecrd_template_{os.getpid()}_{uuid.uuid4().hex[:6]}"
        _admin(f'CREATE DATABASE "{name}"')
        atexit.register(_admin, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        _migrated(_postgres_url(name))
        _templates["postgresql"] = name
    return _templates["postgresql"]


def _sqlite_template() -> str:
    if "sqlite" not in _templates:
        directory = tempfile.mkdtemp(prefix="ecrd-template-")
        atexit.register(shutil.rmtree, directory, True)
        path = Path(directory) / "metadata.db"
        _migrated(f"sqlite:///{path}")
        _templates["sqlite"] = str(path)
    return _templates["sqlite"]


@contextmanager
def database_url(backend: str, tmp_path: Path, *, migrated: bool = True) -> Iterator[str]:
    if backend == "sqlite":
        path = tmp_path / "metadata.db"
        if migrated:
            shutil.copyfile(_sqlite_template(), path)
        yield f"sqlite:///{path}"
        return
    if not postgres_available():
        pytest.fail(f"PostgreSQL is not reachable at {POSTGRES_ADMIN_URL}; scripts/test starts it")
    name = f"ecrd_test_{uuid.uuid4().hex[:12]}"
    _admin(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{_postgres_template()}"' if migrated else ""))
    try:
        yield _postgres_url(name)
    finally:
        _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
