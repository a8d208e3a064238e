"""The table of repository creation templates: one row per prefix, holding what a repository created from it
starts with."""

from __future__ import annotations

from sqlalchemy import Column, Float, String, Table, Text

from ecrd.metadata.tables import ACCOUNT_ID, REGION, metadata

# Lists (appliedFor, resource tags, mutability exclusions) are JSON texts: they are read and written whole, with
# the template, and never queried into.
repository_creation_templates = Table(
    "repository_creation_templates",
    metadata,
    Column("account_id", ACCOUNT_ID, primary_key=True),
    Column("region", REGION, primary_key=True),
    Column("prefix", String(256), primary_key=True),
    Column("applied_for", Text, nullable=False),
    Column("description", String(256)),
    Column("encryption_type", String(16), nullable=False),
    Column("kms_key", String(2048)),
    Column("resource_tags", Text, nullable=False),
    Column("image_tag_mutability", String(32), nullable=False),
    Column("mutability_exclusions", Text, nullable=False),
    Column("repository_policy", Text),
    Column("lifecycle_policy", Text),
    Column("custom_role_arn", String(2048)),
    # ecrd's own: the image pull policy (JSON) of the repositories the template creates.
    Column("pull_policy", Text),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
)
