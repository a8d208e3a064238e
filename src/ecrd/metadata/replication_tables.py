"""The tables of replication: the peers (registries of other ecrd deployments that destinations may name) and
each image's replication status per destination."""

from __future__ import annotations

from sqlalchemy import Column, Float, ForeignKey, Integer, String, Table, Text

from ecrd.metadata.tables import REGION, account_column, metadata

# A destination (registry id and region) served by another ecrd deployment: where it answers and the access key
# replication signs with there. The secret is stored sealed by the deployment's master key, never in clear.
replication_peers = Table(
    "replication_peers",
    metadata,
    Column("registry_id", String(12), primary_key=True),
    Column("region", String(25), primary_key=True),
    Column("url", String(1024), nullable=False),
    Column("access_key_id", String(128), nullable=False),
    Column("sealed_secret", Text, nullable=False),
    Column("created_at", Float, nullable=False),
)

# One image's replication to one destination: IN_PROGRESS until it is there (COMPLETE) or has failed for good.
image_replications = Table(
    "image_replications",
    metadata,
    Column("repository_id", Integer, ForeignKey("repositories.id", ondelete="CASCADE"), primary_key=True),
    Column("digest", String(160), primary_key=True),
    Column("region", String(25), primary_key=True),
    Column("registry_id", String(12), primary_key=True),
    Column("status", String(16), nullable=False),
    Column("failure_code", String(64)),
    Column("attempts", Integer, nullable=False),
    Column("updated_at", Float, nullable=False),
)

# A replication backfill: the images that existed before the configuration, replicated to one destination.
replication_backfills = Table(
    "replication_backfills",
    metadata,
    Column("id", String(36), primary_key=True),
    # The registry whose images the backfill replicates (``region`` is the destination's).
    account_column(),
    Column("source_region", REGION, nullable=False),
    Column("region", String(25), nullable=False),
    Column("registry_id", String(12), nullable=False),
    Column("status", String(16), nullable=False),
    Column("failure_code", String(64)),
    Column("total", Integer, nullable=False),
    Column("completed", Integer, nullable=False),
    Column("failed", Integer, nullable=False),
    Column("started_at", Float, nullable=False),
    Column("ended_at", Float),
)

# One image and tag of a backfill (ECR: "each image and tag combination is replicated as a single replication"):
# PENDING until replicated, then COMPLETE or FAILED.
replication_backfill_results = Table(
    "replication_backfill_results",
    metadata,
    Column("backfill_id", String(36), ForeignKey("replication_backfills.id", ondelete="CASCADE"), primary_key=True),
    Column("number", Integer, primary_key=True),
    Column("repository_id", Integer, nullable=False),
    Column("repository_name", String(256), nullable=False),
    Column("digest", String(160), nullable=False),
    Column("tag", String(300)),
    Column("status", String(16), nullable=False),
    Column("failure_code", String(64)),
)
