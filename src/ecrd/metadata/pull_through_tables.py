"""The tables of the pull-through cache: the rules, the claims on blobs being fetched from an upstream, and when
each cached tag was last compared with its upstream."""

from __future__ import annotations

from sqlalchemy import Column, Float, ForeignKey, Integer, String, Table

from ecrd.metadata.tables import ACCOUNT_ID, REGION, metadata

pull_through_cache_rules = Table(
    "pull_through_cache_rules",
    metadata,
    Column("account_id", ACCOUNT_ID, primary_key=True),
    Column("region", REGION, primary_key=True),
    Column("ecr_repository_prefix", String(32), primary_key=True),
    Column("upstream_registry_url", String(1024), nullable=False),
    Column("upstream_registry", String(64)),
    Column("upstream_repository_prefix", String(32), nullable=False),
    Column("credential_arn", String(612)),
    Column("custom_role_arn", String(2048)),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
)

# One row while a process fetches a blob from an upstream into a repository: the others wait for it instead of
# fetching the same bytes again. A claim whose holder died is taken over once it is older than the lease.
pull_through_fetches = Table(
    "pull_through_fetches",
    metadata,
    Column("repository_id", Integer, ForeignKey("repositories.id", ondelete="CASCADE"), primary_key=True),
    Column("digest", String(160), primary_key=True),
    Column("claim", String(36), nullable=False),
    Column("claimed_at", Float, nullable=False),
)

# When a cached tag was last compared with the upstream's (ECR: "at most once every 24 hours").
pull_through_tag_checks = Table(
    "pull_through_tag_checks",
    metadata,
    Column("repository_id", Integer, ForeignKey("repositories.id", ondelete="CASCADE"), primary_key=True),
    Column("tag", String(300), primary_key=True),
    Column("checked_at", Float, nullable=False),
)
