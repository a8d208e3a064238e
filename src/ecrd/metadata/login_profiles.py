"""Queries on IAM login profiles (a user's console password, stored only hashed) and the account password policy
(one per account: IAM is global per account)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, delete, insert, select, update

from ecrd.metadata.iam_tables import iam_login_profiles, iam_password_policy


@dataclass(frozen=True, slots=True)
class LoginProfileRecord:
    user_id: str
    password_hash: str
    previous_hashes: tuple[str, ...]
    password_reset_required: bool
    created_at: float
    password_changed_at: float


def get_login_profile(conn: Connection, user_id: str, *, for_update: bool = False) -> LoginProfileRecord | None:
    query = select(iam_login_profiles).where(iam_login_profiles.c.user_id == user_id)
    row = conn.execute(query.with_for_update() if for_update else query).first()
    if row is None:
        return None
    m = row._mapping
    return LoginProfileRecord(
        m["user_id"],
        m["password_hash"],
        tuple(json.loads(m["previous_hashes"])),
        bool(m["password_reset_required"]),
        m["created_at"],
        m["password_changed_at"],
    )


def insert_login_profile(conn: Connection, profile: LoginProfileRecord) -> None:
    conn.execute(
        insert(iam_login_profiles).values(
            user_id=profile.user_id,
            password_hash=profile.password_hash,
            previous_hashes=json.dumps(list(profile.previous_hashes)),
            password_reset_required=profile.password_reset_required,
            created_at=profile.created_at,
            password_changed_at=profile.password_changed_at,
        )
    )


def update_login_profile(conn: Connection, user_id: str, **values: Any) -> None:
    if "previous_hashes" in values:
        values["previous_hashes"] = json.dumps(list(values["previous_hashes"]))
    conn.execute(update(iam_login_profiles).where(iam_login_profiles.c.user_id == user_id).values(**values))


def delete_login_profile(conn: Connection, user_id: str) -> bool:
    return conn.execute(delete(iam_login_profiles).where(iam_login_profiles.c.user_id == user_id)).rowcount > 0


def get_password_policy(conn: Connection, account_id: str) -> dict[str, Any] | None:
    table = iam_password_policy
    text = conn.execute(select(table.c.policy).where(table.c.account_id == account_id)).scalar()
    return None if text is None else dict(json.loads(text))


def put_password_policy(conn: Connection, account_id: str, policy: dict[str, Any]) -> None:
    conn.execute(delete(iam_password_policy).where(iam_password_policy.c.account_id == account_id))
    conn.execute(insert(iam_password_policy).values(account_id=account_id, policy=json.dumps(policy, sort_keys=True)))


def delete_password_policy(conn: Connection, account_id: str) -> bool:
    table = iam_password_policy
    return conn.execute(delete(table).where(table.c.account_id == account_id)).rowcount > 0
