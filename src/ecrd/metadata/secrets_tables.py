"""The secrets service's schema: secrets, their versions and staging labels, and their tags, on the registry's one
``metadata``.

A version's value is stored only encrypted: sealed (AES-256-GCM) with a data key of its own, and that data key
only as the KMS ciphertext blob the secret's key made of it, so neither the database nor the master key alone
reveals a value. A staging label names at most one version of a secret: the primary key says so. Names and tag
keys compare bytewise on both back ends (SQLite compares BINARY; PostgreSQL gets the "C" collation), so
listings page the same everywhere. Times are epoch seconds (float).
"""

from __future__ import annotations

from sqlalchemy import Column, Float, ForeignKey, Index, LargeBinary, String, Table, Text, UniqueConstraint

from ecrd.metadata.tables import account_column, metadata, region_column

SECRET_ID = String(36)  # a UUID of our own: the name can be reused once a secret is deleted
SECRET_NAME = String(512).with_variant(String(512, collation="C"), "postgresql")
VERSION_ID = String(64)  # a client request token: 32 to 64 characters
TAG_KEY = String(128).with_variant(String(128, collation="C"), "postgresql")

secrets = Table(
    "secrets",
    metadata,
    Column("id", SECRET_ID, primary_key=True),
    account_column(),
    region_column(),
    Column("name", SECRET_NAME, nullable=False),
    Column("arn", String(2048), nullable=False),
    Column("description", Text),
    Column("kms_key_id", String(2048)),  # the key as the caller named it; None: the AWS managed key
    Column("secret_type", String(256)),
    Column("policy", Text),
    Column("created_at", Float, nullable=False),
    Column("last_changed_at", Float, nullable=False),
    Column("last_accessed_at", Float),
    Column("deleted_at", Float),  # when DeleteSecret was called; None unless scheduled for deletion
    Column("deletion_date", Float),  # when it is gone for good
    UniqueConstraint("account_id", "region", "name"),
)
Index("ix_secrets_created_at", secrets.c.created_at, secrets.c.id)
Index("ix_secrets_deletion_date", secrets.c.deletion_date)

secret_versions = Table(
    "secret_versions",
    metadata,
    Column("secret_id", SECRET_ID, ForeignKey("secrets.id", ondelete="CASCADE"), primary_key=True),
    Column("version_id", VERSION_ID, primary_key=True),
    Column("created_at", Float, nullable=False),
    Column("kind", String(8), nullable=False),  # string | binary
    Column("key_arn", String(2048), nullable=False),  # the KMS key that wrapped the data key
    Column("wrapped_key", LargeBinary, nullable=False),  # KMS ciphertext blob of the data key
    Column("sealed_value", LargeBinary, nullable=False),  # nonce + AES-256-GCM of the value
    Column("last_accessed_at", Float),
)
Index("ix_secret_versions_created_at", secret_versions.c.secret_id, secret_versions.c.created_at)

secret_version_stages = Table(
    "secret_version_stages",
    metadata,
    Column("secret_id", SECRET_ID, ForeignKey("secrets.id", ondelete="CASCADE"), primary_key=True),
    Column("stage", String(256), primary_key=True),
    Column("version_id", VERSION_ID, nullable=False),
)

secret_tags = Table(
    "secret_tags",
    metadata,
    Column("secret_id", SECRET_ID, ForeignKey("secrets.id", ondelete="CASCADE"), primary_key=True),
    Column("tag_key", TAG_KEY, primary_key=True),
    Column("tag_value", String(256), nullable=False),
)
