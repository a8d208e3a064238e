"""The key service's schema: KMS keys, their aliases and tags, on the registry's one ``metadata``.

A key's material is stored only sealed by ``SecretBox`` (the master key in the data directory), with the key id
as associated data, so the database alone reveals no key. Alias names and tag keys are case-sensitive in KMS and
listings page by them; they compare bytewise on both back ends (SQLite compares BINARY; PostgreSQL gets the "C"
collation), so pages and their order are the same everywhere. Times are epoch seconds (float).
"""

from __future__ import annotations

from sqlalchemy import Column, Float, ForeignKey, Index, Integer, String, Table, Text, text

from ecrd.metadata.tables import ACCOUNT_ID, REGION, account_column, metadata, region_column

KEY_ID = String(36)  # a UUID, as KMS key ids are
ALIAS_NAME = String(256).with_variant(String(256, collation="C"), "postgresql")
TAG_KEY = String(128).with_variant(String(128, collation="C"), "postgresql")

kms_keys = Table(
    "kms_keys",
    metadata,
    Column("id", KEY_ID, primary_key=True),
    account_column(),
    region_column(),
    Column("description", Text, nullable=False),
    Column("key_usage", String(32), nullable=False),
    Column("key_spec", String(32), nullable=False),
    Column("key_manager", String(16), nullable=False),  # CUSTOMER | AWS
    Column("state", String(32), nullable=False),  # Enabled | Disabled | PendingDeletion
    Column("policy", Text, nullable=False),
    Column("material", Text, nullable=False),  # sealed by SecretBox, context "kms-key-material:<id>"
    Column("created_at", Float, nullable=False),
    Column("created_by", String(2048), nullable=False),
    Column("deletion_date", Float),
    Column("pending_window_days", Integer),
    # Automatic rotation: its period in days while it is on (NULL: off), and when the material is next rotated.
    Column("rotation_period_days", Integer),
    Column("next_rotation_at", Float),
    # The version of the material encryption uses: 0 the original (``material``), n the n-th rotation's.
    Column("material_version", Integer, nullable=False, server_default=text("0")),
)
Index("ix_kms_keys_account_id", kms_keys.c.account_id, kms_keys.c.region)
Index("ix_kms_keys_deletion_date", kms_keys.c.deletion_date)
Index("ix_kms_keys_next_rotation_at", kms_keys.c.next_rotation_at)

# The materials a key's rotations made, kept (like the original) as long as the key: every blob a version made
# decrypts with it. Sealed as the original is, with the version in the context ("kms-key-material:<id>:<n>").
kms_key_materials = Table(
    "kms_key_materials",
    metadata,
    Column("key_id", KEY_ID, ForeignKey("kms_keys.id", ondelete="CASCADE"), primary_key=True),
    Column("version", Integer, primary_key=True),  # 1, 2, …
    Column("material", Text, nullable=False),
    Column("rotation_type", String(16), nullable=False),  # AUTOMATIC | ON_DEMAND
    Column("created_at", Float, nullable=False),
)

kms_aliases = Table(
    "kms_aliases",
    metadata,
    Column("account_id", ACCOUNT_ID, primary_key=True),
    Column("region", REGION, primary_key=True),
    Column("name", ALIAS_NAME, primary_key=True),
    Column("key_id", KEY_ID, ForeignKey("kms_keys.id", ondelete="CASCADE"), nullable=False),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
)
Index("ix_kms_aliases_key_id", kms_aliases.c.key_id)

kms_key_tags = Table(
    "kms_key_tags",
    metadata,
    Column("key_id", KEY_ID, ForeignKey("kms_keys.id", ondelete="CASCADE"), primary_key=True),
    Column("tag_key", TAG_KEY, primary_key=True),
    Column("tag_value", String(256), nullable=False),
)
