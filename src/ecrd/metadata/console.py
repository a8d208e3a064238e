"""Queries on the web console's sessions and its count of failed sign-ins."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection, delete, insert, select, update

from ecrd.metadata.console_tables import console_sessions, console_sign_in_failures


@dataclass(frozen=True, slots=True)
class ConsoleSessionRecord:
    id_hash: str
    method: str
    user_id: str | None
    user_name: str | None
    access_key_id: str | None
    must_change_password: bool
    created_at: float
    expires_at: float


def insert_session(conn: Connection, session: ConsoleSessionRecord) -> None:
    conn.execute(
        insert(console_sessions).values(
            id_hash=session.id_hash,
            method=session.method,
            user_id=session.user_id,
            user_name=session.user_name,
            access_key_id=session.access_key_id,
            must_change_password=session.must_change_password,
            created_at=session.created_at,
            expires_at=session.expires_at,
        )
    )


def get_session(conn: Connection, id_hash: str) -> ConsoleSessionRecord | None:
    row = conn.execute(select(console_sessions).where(console_sessions.c.id_hash == id_hash)).first()
    if row is None:
        return None
    m = row._mapping
    return ConsoleSessionRecord(
        m["id_hash"],
        m["method"],
        m["user_id"],
        m["user_name"],
        m["access_key_id"],
        bool(m["must_change_password"]),
        m["created_at"],
        m["expires_at"],
    )


def clear_must_change_password(conn: Connection, id_hash: str) -> None:
    conn.execute(
        update(console_sessions).where(console_sessions.c.id_hash == id_hash).values(must_change_password=False)
    )


def delete_session(conn: Connection, id_hash: str) -> None:
    conn.execute(delete(console_sessions).where(console_sessions.c.id_hash == id_hash))


def delete_expired_sessions(conn: Connection, now: float) -> int:
    return conn.execute(delete(console_sessions).where(console_sessions.c.expires_at <= now)).rowcount


def failures(conn: Connection, subject: str, *, since: float) -> int:
    """Failed sign-ins of ``subject`` in the window begun at or after ``since``."""
    table = console_sign_in_failures
    found = conn.execute(
        select(table.c.failures).where(table.c.subject == subject, table.c.window_started_at >= since)
    ).scalar()
    return int(found or 0)


def count_failure(conn: Connection, subject: str, *, now: float, since: float) -> None:
    """One more failure of ``subject``: in its window, or the first of a new one when its window began before
    ``since``. Called in a write transaction (serial on SQLite; the row lock on PostgreSQL)."""
    table = console_sign_in_failures
    current = conn.execute(
        select(table.c.window_started_at).where(table.c.subject == subject).with_for_update()
    ).first()
    if current is None:
        conn.execute(insert(table).values(subject=subject, failures=1, window_started_at=now))
    elif current.window_started_at < since:
        conn.execute(update(table).where(table.c.subject == subject).values(failures=1, window_started_at=now))
    else:
        conn.execute(update(table).where(table.c.subject == subject).values(failures=table.c.failures + 1))


def forget_failures(conn: Connection, subject: str) -> None:
    conn.execute(delete(console_sign_in_failures).where(console_sign_in_failures.c.subject == subject))
