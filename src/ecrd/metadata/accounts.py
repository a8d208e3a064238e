"""Queries on the accounts this deployment serves: their ids, their IAM account alias (at most one each, as IAM
allows), and when they were entered."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, insert, select, update
from sqlalchemy.engine import Row

from ecrd.metadata.tables import accounts, dialect_insert


@dataclass(frozen=True, slots=True)
class Account:
    account_id: str
    alias: str | None
    created_at: float


def _to_account(row: Row[Any]) -> Account:
    return Account(row.account_id, row.alias, row.created_at)


def get_account(conn: Connection, account_id: str) -> Account | None:
    row = conn.execute(select(accounts).where(accounts.c.account_id == account_id)).first()
    return _to_account(row) if row else None


def account_with_alias(conn: Connection, alias: str) -> Account | None:
    row = conn.execute(select(accounts).where(accounts.c.alias == alias)).first()
    return _to_account(row) if row else None


def list_accounts(conn: Connection) -> list[Account]:
    return [_to_account(row) for row in conn.execute(select(accounts).order_by(accounts.c.account_id))]


def insert_account(conn: Connection, account: Account) -> None:
    conn.execute(
        insert(accounts).values(account_id=account.account_id, alias=account.alias, created_at=account.created_at)
    )


def insert_account_if_missing(conn: Connection, account_id: str, *, created_at: float) -> None:
    """Enter the account unless it is there (every server process does at start, concurrently)."""
    statement = dialect_insert(conn)(accounts).values(account_id=account_id, alias=None, created_at=created_at)
    conn.execute(statement.on_conflict_do_nothing(index_elements=[accounts.c.account_id]))


def set_alias(conn: Connection, account_id: str, alias: str | None) -> None:
    conn.execute(update(accounts).where(accounts.c.account_id == account_id).values(alias=alias))
