"""The metadata store: one SQLAlchemy engine, transactions that behave alike on SQLite and PostgreSQL."""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Dialect, Engine, Executable, RootTransaction, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.pool import QueuePool

from ecrd.metadata.generations import forget_pinned_generation
from ecrd.metadata.write_gate import WriteGate

# How often a BEGIN that found the database locked is tried before the error reaches the caller.
_BEGIN_ATTEMPTS = 5
# Threads that keep a SQLite connection of their own for ``fetch`` (the event loop first: it runs the hot reads);
# others borrow from the pool. Each kept connection holds its own page cache, so they are few.
_KEPT_READ_CONNECTIONS = 4


class MissingDatabaseDriver(RuntimeError):
    """The database URL names a back end whose driver is not installed."""


class MetadataStore:
    """Owns the engine. ``read()`` and ``write()`` open transactions; queries take the connection."""

    def __init__(self, url: str) -> None:
        parsed = make_url(url)
        if parsed.drivername in ("postgresql", "postgres"):
            parsed = parsed.set(drivername="postgresql+psycopg")
        self.is_sqlite = parsed.get_backend_name() == "sqlite"
        self._write_gate: WriteGate | None = None
        if self.is_sqlite:
            if parsed.database and parsed.database != ":memory:":
                _private_database_files(Path(parsed.database))
                self._write_gate = WriteGate(Path(parsed.database))
            # Connections are kept: opening one (file, WAL index, PRAGMAs, schema) costs ~5× a query, and the last
            # one to close checkpoints the WAL. The pool covers anyio's 40 worker threads.
            self.engine: Engine = create_engine(
                parsed,
                poolclass=QueuePool,
                pool_size=16,
                max_overflow=32,
                connect_args={"timeout": 30, "check_same_thread": False},
            )
            event.listen(self.engine, "connect", _sqlite_on_connect)
            event.listen(self.engine, "begin", _sqlite_on_begin)
        else:
            try:
                self.engine = create_engine(parsed, pool_size=10, max_overflow=20, pool_pre_ping=True)
            except ModuleNotFoundError as exc:
                # The driver is an extra, so the embedded default installs lean.
                raise MissingDatabaseDriver(
                    f"{parsed.get_backend_name()} needs its driver, which is not installed: "
                    "pip install 'ecrd[postgresql]'"
                ) from exc
        # By statement object: the hot reads are module-level constants, compiled once per store.
        self._prepared: dict[Executable, _PreparedRead] = {}
        # SQLite connections taken out of the pool for good by the first threads that ``fetch``: a checkout and
        # return through the pool (with its reset) cost as much as the query itself.
        self._kept = threading.local()
        self._kept_connections: list[Any] = []
        self._kept_lock = threading.Lock()

    def migrate(self, *, default_account_id: str | None = None, default_region: str | None = None) -> None:
        """Bring the schema to the newest revision (idempotent; safe to race from several processes).
        ``default_account_id``/``default_region``: where rows made before accounts and regions existed belong
        (the server's default account and region; migration 0023)."""
        # Imported here: Alembic (with Mako and Pygments) is ~10 MB that a server worker, started on a database
        # its serve command migrated, never needs.
        from ecrd.metadata.migrations.runner import upgrade_to_head

        defaults = {
            key: value
            for key, value in (("default_account_id", default_account_id), ("default_region", default_region))
            if value is not None
        }
        with self._migration_connection() as conn:
            if not self.is_sqlite:
                # Serialize concurrent starts; SQLite's BEGIN IMMEDIATE already does.
                conn.exec_driver_sql("SELECT pg_advisory_xact_lock(4242001)")
            upgrade_to_head(conn, defaults)
            if self.is_sqlite:
                broken = conn.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
                if broken:
                    raise RuntimeError(f"a migration left rows without their parents: {broken[:5]}")

    @contextmanager
    def _migration_connection(self) -> Iterator[Connection]:
        """A write transaction for migrations. On SQLite its connection has foreign keys off (set before BEGIN:
        SQLite ignores the pragma inside a transaction): a migration that remakes a table drops the old one,
        which with foreign keys on would first delete every row that references it."""
        if not self.is_sqlite:
            with self.write() as conn:
                yield conn
            return
        with self._write_gate.passage() if self._write_gate is not None else contextlib.nullcontext():
            conn = self.engine.connect()
            try:
                _sqlite_pragma(conn, "PRAGMA foreign_keys=OFF")
                conn.info["ecrd_immediate"] = True
                with conn.begin():
                    yield conn
            finally:
                _sqlite_pragma(conn, "PRAGMA foreign_keys=ON")
                conn.close()

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """Reads. On SQLite each statement runs in its own implicit transaction (no BEGIN/ROLLBACK round
        trips: a fifth of a small request's cost); every read here is a single statement or tolerates that."""
        with self.engine.connect() as conn:
            if self.is_sqlite:
                conn.info["ecrd_autocommit"] = True
            try:
                yield conn
                conn.rollback()
            finally:
                # The flag lives on the pooled connection: it must never reach the next (writing) user.
                conn.info.pop("ecrd_autocommit", None)

    @contextmanager
    def snapshot(self) -> Iterator[Connection]:
        """A read transaction whose statements all see one snapshot (``ecrd fsck`` compares whole tables):
        BEGIN on SQLite (a snapshot from its first read, in WAL mode), REPEATABLE READ on PostgreSQL."""
        with self.engine.connect() as conn:
            if not self.is_sqlite:
                conn = conn.execution_options(isolation_level="REPEATABLE READ")
            with conn.begin():
                yield conn

    @contextmanager
    def write(self, *, flush: bool = True) -> Iterator[Connection]:
        """A write transaction. On SQLite it starts with BEGIN IMMEDIATE, so concurrent writers queue up
        instead of failing on a lock upgrade; on PostgreSQL callers take row locks where they need them.

        With ``flush=False`` the commit does not wait for the disk (SQLite ``synchronous=NORMAL``, PostgreSQL
        ``synchronous_commit=off``): it survives a crash of this process, and reaches the disk with the next
        flushed commit or checkpoint, but a power loss (or a PostgreSQL crash) right after may lose it. For
        records that may lag their subject by a moment, never for the registry's own state."""
        with self._write_gate.passage() if self._write_gate is not None else contextlib.nullcontext():
            conn, transaction = self._begin_write(flush)
            try:
                with transaction:
                    if not flush and not self.is_sqlite:
                        conn.exec_driver_sql("SET LOCAL synchronous_commit TO OFF")
                    yield conn
            finally:
                forget_pinned_generation()
                if not flush and self.is_sqlite:
                    _sqlite_pragma(conn, "PRAGMA synchronous=FULL")
                conn.close()

    def _begin_write(self, flush: bool) -> tuple[Connection, RootTransaction]:
        """A connection with its write transaction begun. Only the BEGIN is retried: it has done nothing yet,
        whereas the caller's block runs once, and whatever it raises reaches the caller unchanged."""
        for attempt in range(_BEGIN_ATTEMPTS):
            conn = self.engine.connect()
            try:
                if self.is_sqlite:
                    conn.info.pop("ecrd_autocommit", None)
                    conn.info["ecrd_immediate"] = True
                    if not flush:
                        _sqlite_pragma(conn, "PRAGMA synchronous=NORMAL")
                return conn, conn.begin()
            except OperationalError as exc:
                if not flush and self.is_sqlite:
                    _sqlite_pragma(conn, "PRAGMA synchronous=FULL")
                conn.close()
                # "database is locked" survives busy_timeout only under heavy contention; begin again.
                if not self.is_sqlite or "locked" not in str(exc) or attempt == _BEGIN_ATTEMPTS - 1:
                    raise
                time.sleep(0.05 * (attempt + 1))
        raise AssertionError("unreachable")

    def fetch(self, statement: Executable, params: Mapping[str, object] | None = None) -> list[tuple[Any, ...]]:
        """Rows of a read run on the driver's own connection, its SQL compiled once: for the few reads on every
        request (through a Connection a small query costs ~55 µs on SQLite, this way ~15). Values come back as
        the driver returns them (no type processing: SQLite gives 0/1 for booleans), so keep to plain columns."""
        prepared = self._prepared.get(statement)
        if prepared is None:
            prepared = self._prepared[statement] = _PreparedRead.compile(statement, self.engine.dialect)
        kept = self._kept_connection() if self.is_sqlite else None
        if kept is not None:
            # Autocommit (see _sqlite_on_connect): the statement is its own read transaction, seeing every commit.
            cursor = kept.execute(prepared.sql, prepared.arguments(params))
            try:
                return list(cursor.fetchall())
            finally:
                cursor.close()
        connection = self.engine.raw_connection()
        try:
            cursor = connection.cursor()
            try:
                cursor.execute(prepared.sql, prepared.arguments(params))
                return list(cursor.fetchall())
            finally:
                cursor.close()
        finally:
            # Back to the pool, which rolls back PostgreSQL's implicit transaction (SQLite reads run without one).
            connection.close()

    def _kept_connection(self) -> Any:
        """This thread's own SQLite connection, made on its first read; None once enough threads have one."""
        connection = getattr(self._kept, "connection", None)
        if connection is not None or getattr(self._kept, "refused", False):
            return connection
        with self._kept_lock:
            if len(self._kept_connections) >= _KEPT_READ_CONNECTIONS:
                self._kept.refused = True
                return None
            # Detached: the pool forgets it (and makes another when it needs one); its PRAGMAs are set.
            pooled = self.engine.raw_connection()
            connection = pooled.dbapi_connection
            pooled.detach()
            self._kept_connections.append(connection)
        self._kept.connection = connection
        return connection

    def dispose(self) -> None:
        with self._kept_lock:
            for connection in self._kept_connections:
                connection.close()
            self._kept_connections.clear()
            # Threads that read again (a store used after dispose, as the pool allows) make new ones.
            self._kept = threading.local()
        self.engine.dispose()


@dataclass(frozen=True, slots=True)
class _PreparedRead:
    sql: str
    defaults: dict[str, Any]
    # The order of the parameters for drivers with positional placeholders (sqlite3's "?"); None for named ones.
    order: tuple[str, ...] | None

    @classmethod
    def compile(cls, statement: Executable, dialect: Dialect) -> _PreparedRead:
        compiled = statement.compile(dialect=dialect)  # type: ignore[attr-defined]
        order = tuple(compiled.positiontup) if compiled.positional else None
        return cls(compiled.string, dict(compiled.construct_params(_check=False)), order)

    def arguments(self, params: Mapping[str, object] | None) -> tuple[Any, ...] | dict[str, Any]:
        values = {**self.defaults, **params} if params else self.defaults
        if self.order is not None:
            return tuple(values[name] for name in self.order)
        return values


def _private_database_files(path: Path) -> None:
    """The database file, and its -wal and -shm files, readable and writable by their owner only: they hold
    the registry's users, keys, policies and wrapped data keys. SQLite gives the -wal and -shm files it creates
    the database file's mode, so a new database file is made 0600 before SQLite first opens it; files an
    earlier version left open to others are taken back."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    # Where the file cannot be made, SQLite says so when it opens it.
    with contextlib.suppress(FileExistsError, PermissionError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    for name in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        # Missing is fine (no -wal yet); another user's file, shared on purpose, is theirs to protect.
        with contextlib.suppress(FileNotFoundError, PermissionError):
            name.chmod(0o600)


def _sqlite_on_connect(dbapi_connection: Any, _record: Any) -> None:
    # Take transaction control from the sqlite3 module so BEGIN is ours to emit (and can be IMMEDIATE).
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def _sqlite_pragma(conn: Connection, pragma: str) -> None:
    # On the driver's connection, outside any transaction (sqlite3 runs in autocommit mode here).
    conn.connection.driver_connection.execute(pragma)  # type: ignore[union-attr]


def _sqlite_on_begin(conn: Connection) -> None:
    if conn.info.pop("ecrd_autocommit", False):
        return
    conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.info.pop("ecrd_immediate", False) else "BEGIN")
