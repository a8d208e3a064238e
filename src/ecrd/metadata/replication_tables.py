"""The tables of replication: the peers (registries of other ecrd deployments that destinations may name) and
each image's replication status per destination."""

from __future__ import annotations

from sqlalchemy import Column, Float, ForeignKey, Integer, String, Table, Text

from ecrd.metadata.tables import metadata

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
