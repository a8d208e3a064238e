"""The web console's state: its sign-in sessions and the count of failed sign-ins that limits guessing.

Both live in the metadata store, not in a process, so that every server process (and node) honours a session
and a sign-out at once, and failures count wherever they land. A session is stored only by the SHA-256 of its
random id (the cookie); the id itself is never stored.
"""

from __future__ import annotations

from sqlalchemy import Boolean, Column, Float, Index, Integer, String, Table

from ecrd.metadata.tables import metadata

console_sessions = Table(
    "console_sessions",
    metadata,
    Column("id_hash", String(64), primary_key=True),
    # How it was signed in: "password" (an IAM user's login profile) or "access_key" (a key pair).
    Column("method", String(16), nullable=False),
    # The user (password) or the access key id (access_key) it acts as, re-checked on every request.
    Column("user_id", String(32)),
    Column("user_name", String(128)),
    Column("access_key_id", String(128)),
    Column("must_change_password", Boolean, nullable=False),
    Column("created_at", Float, nullable=False),
    Column("expires_at", Float, nullable=False),
)
Index("ix_console_sessions_expires_at", console_sessions.c.expires_at)

# Failed sign-ins per subject ("user:<account>:<name>" or "ip:<address>") within the current window.
console_sign_in_failures = Table(
    "console_sign_in_failures",
    metadata,
    Column("subject", String(256), primary_key=True),
    Column("failures", Integer, nullable=False),
    Column("window_started_at", Float, nullable=False),
)
