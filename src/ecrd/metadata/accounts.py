"""Queries on the accounts a deployment serves (placeholder until the accounts work lands)."""

from __future__ import annotations

from sqlalchemy import Connection, select

from ecrd.metadata.tables import accounts, dialect_insert


def exists(conn: Connection, account_id: str) -> bool:
    return conn.execute(select(accounts.c.account_id).where(accounts.c.account_id == account_id)).first() is not None


def ensure(conn: Connection, account_id: str, created_at: float) -> None:
    conn.execute(
        dialect_insert(conn)(accounts).values(account_id=account_id, created_at=created_at).on_conflict_do_nothing()
    )
