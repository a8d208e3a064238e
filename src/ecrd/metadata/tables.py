"""The metadata schema: every table of the registry, as SQLAlchemy Core tables.

Times are epoch seconds (float), which is what the AWS API speaks. Blob content lives in the blob store;
manifests, being small and read on every pull, live here (sealed with their repository's manifest key) so a
manifest GET is one indexed lookup.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Connection,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

DIGEST = String(200)
# The registry a regional row belongs to: its account and its region (IAM rows carry the account alone).
ACCOUNT_ID = String(12)
REGION = String(25)


def account_column() -> Column[str]:
    return Column("account_id", ACCOUNT_ID, nullable=False)


def region_column() -> Column[str]:
    return Column("region", REGION, nullable=False)


def dialect_insert(conn: Connection):  # type: ignore[no-untyped-def]  # the dialect's insert construct
    """The INSERT of the connection's dialect: both have ``on_conflict_do_nothing`` and ``…_do_update``."""
    return pg_insert if conn.dialect.name == "postgresql" else sqlite_insert


repositories = Table(
    "repositories",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    account_column(),
    region_column(),
    Column("name", String(256), nullable=False),
    Column("created_at", Float, nullable=False),
    Column("image_tag_mutability", String(32), nullable=False, default="MUTABLE"),
    Column("mutability_exclusions", Text, nullable=False, default="[]"),
    Column("scan_on_push", Boolean, nullable=False, default=False),
    Column("encryption_type", String(16), nullable=False, default="AES256"),
    Column("kms_key", String(2048)),
    # The data key that seals this repository's manifests, wrapped by the repository's key.
    Column("manifest_key", LargeBinary),
    Column("policy_text", Text),
    # The image pull policy (JSON), absent unless one is set.
    Column("pull_policy", Text),
    UniqueConstraint("account_id", "region", "name"),
)

repository_tags = Table(
    "repository_tags",
    metadata,
    Column("repository_id", Integer, ForeignKey("repositories.id", ondelete="CASCADE"), primary_key=True),
    Column("key", String(128), primary_key=True),
    Column("value", String(256), nullable=False),
)

# A verified blob present in the blob store. A repository sees it only through repository_blobs.
blobs = Table(
    "blobs",
    metadata,
    Column("digest", DIGEST, primary_key=True),
    Column("size", BigInteger, nullable=False),
    Column("created_at", Float, nullable=False),
    # Which store holds the bytes: "hot" (the blob store) or "archive" (the archive location, once no image that
    # is not archived references the blob). Moves copy first, then flip this, then delete the old copy.
    Column("location", String(8), nullable=False, default="hot", server_default="hot"),
)

Index("ix_blobs_location", blobs.c.location)

repository_blobs = Table(
    "repository_blobs",
    metadata,
    Column("repository_id", Integer, ForeignKey("repositories.id", ondelete="CASCADE"), primary_key=True),
    Column("digest", DIGEST, ForeignKey("blobs.digest"), primary_key=True),
    Column("created_at", Float, nullable=False),
    # The blob's data key, wrapped by this repository's key: one stored copy, one wrapping per repository.
    Column("wrapped_key", LargeBinary),
)
Index("ix_repository_blobs_digest", repository_blobs.c.digest)

manifests = Table(
    "manifests",
    metadata,
    Column("repository_id", Integer, ForeignKey("repositories.id", ondelete="CASCADE"), primary_key=True),
    Column("digest", DIGEST, primary_key=True),
    Column("media_type", String(255), nullable=False),
    Column("artifact_type", String(255)),
    Column("subject_digest", DIGEST),
    Column("payload", LargeBinary, nullable=False),
    Column("size", BigInteger, nullable=False),
    # Sum of config and layer sizes: ECR's imageSizeInBytes.
    Column("image_size", BigInteger, nullable=False),
    Column("pushed_at", Float, nullable=False),
    Column("last_pulled_at", Float),
    # A referrer the registry attached itself (a scan's SBOM): it describes its subject only, and is deleted with
    # it. Referrers that users push are theirs to delete.
    Column("registry_attached", Boolean, nullable=False, default=False, server_default=false()),
    # ECR's imageStatus: ACTIVE, ARCHIVED (in the archive storage class: listed, never pulled) or ACTIVATING
    # (being restored). Only ACTIVE images are pulled.
    Column("image_status", String(16), nullable=False, default="ACTIVE", server_default="ACTIVE"),
    Column("last_archived_at", Float),
    Column("last_activated_at", Float),
)
Index("ix_manifests_subject", manifests.c.repository_id, manifests.c.subject_digest)

# What a manifest references: its blobs (config, layers) and, for an index, its child manifests.
manifest_references = Table(
    "manifest_references",
    metadata,
    Column("repository_id", Integer, ForeignKey("repositories.id", ondelete="CASCADE"), primary_key=True),
    Column("manifest_digest", DIGEST, primary_key=True),
    Column("target_digest", DIGEST, primary_key=True),
    Column("kind", String(8), nullable=False),  # "blob" | "manifest"
)
Index("ix_manifest_references_target", manifest_references.c.repository_id, manifest_references.c.target_digest)

tags = Table(
    "tags",
    metadata,
    Column("repository_id", Integer, ForeignKey("repositories.id", ondelete="CASCADE"), primary_key=True),
    Column("name", String(300), primary_key=True),
    Column("manifest_digest", DIGEST, nullable=False),
    Column("updated_at", Float, nullable=False),
)
# Also ListImages' keyset order (digest, then tag): a page is read in index order and stops at its limit.
Index("ix_tags_manifest", tags.c.repository_id, tags.c.manifest_digest, tags.c.name)

uploads = Table(
    "uploads",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("repository_id", Integer, ForeignKey("repositories.id", ondelete="CASCADE"), nullable=False),
    Column("size", BigInteger, nullable=False, default=0),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
    Column("wrapped_key", LargeBinary),
)

# Settings of one registry (account and region): its policy, scanning, replication and signing configuration,
# account settings. Settings of the whole deployment have an empty account and region.
registry_settings = Table(
    "registry_settings",
    metadata,
    Column("account_id", ACCOUNT_ID, primary_key=True),
    Column("region", REGION, primary_key=True),
    Column("key", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)


# Change counters that per-process caches are checked against (see ecrd.metadata.generations): triggers bump
# the "access" row whenever identities, policies, repository settings or keys change, in the same transaction.
# The accounts this deployment serves: the default one (entered at the server's start) and those made by
# ``ecrd account create``.
accounts = Table(
    "accounts",
    metadata,
    Column("account_id", ACCOUNT_ID, primary_key=True),
    Column("alias", String(63), unique=True),
    Column("created_at", Float, nullable=False),
)

generations = Table(
    "generations",
    metadata,
    Column("scope", String(64), primary_key=True),
    Column("value", BigInteger, nullable=False, default=0),
)
