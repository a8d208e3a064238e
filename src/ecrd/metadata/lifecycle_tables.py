"""Tables of lifecycle policies: the policy of each repository, its latest preview, what runs did, and the
principals whose pulls do not count as use."""

from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, Column, Float, ForeignKey, Index, Integer, String, Table, Text

from ecrd.metadata.tables import DIGEST, metadata

# One policy per repository. The run lease (``run_claimed_by``/``run_claimed_at``) lets one process at a time
# act on the repository; a lease older than its term belongs to a process that died mid-run.
lifecycle_policies = Table(
    "lifecycle_policies",
    metadata,
    Column("repository_id", Integer, ForeignKey("repositories.id", ondelete="CASCADE"), primary_key=True),
    Column("policy_text", Text, nullable=False),
    Column("updated_at", Float, nullable=False),
    Column("last_evaluated_at", Float),
    Column("run_claimed_by", String(128)),
    Column("run_claimed_at", Float),
)

# The latest preview of each repository: IN_PROGRESS until its job writes the results, then COMPLETE or FAILED.
lifecycle_previews = Table(
    "lifecycle_previews",
    metadata,
    Column("repository_id", Integer, ForeignKey("repositories.id", ondelete="CASCADE"), primary_key=True),
    Column("policy_text", Text, nullable=False),
    Column("status", String(16), nullable=False),
    Column("started_at", Float, nullable=False),
    Column("finished_at", Float),
)

# The images a preview would act on, paged by digest (the primary key is the keyset order).
lifecycle_preview_results = Table(
    "lifecycle_preview_results",
    metadata,
    Column("repository_id", Integer, ForeignKey("repositories.id", ondelete="CASCADE"), primary_key=True),
    Column("digest", DIGEST, primary_key=True),
    Column("image_tags", Text, nullable=False),  # JSON list
    Column("tagged", Boolean, nullable=False),
    Column("pushed_at", Float, nullable=False),
    Column("action", String(16), nullable=False),  # EXPIRE | TRANSITION
    Column("target_storage_class", String(16)),
    Column("rule_priority", Integer, nullable=False),
    Column("storage_class", String(16), nullable=False),
)

# What runs did, written in the transaction of the action itself: the rule behind each expired image.
lifecycle_actions = Table(
    "lifecycle_actions",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("time", Float, nullable=False),
    Column("run_id", String(36), nullable=False),
    Column("repository", String(256), nullable=False),
    Column("digest", DIGEST, nullable=False),
    Column("image_tags", Text, nullable=False),  # JSON list
    Column("rule_priority", Integer, nullable=False),
    Column("action", String(16), nullable=False),
    Column("target_storage_class", String(16)),
)
Index("ix_lifecycle_actions_time", lifecycle_actions.c.time)

# ECR's pull-time update exclusions: pulls by these IAM users and roles leave lastRecordedPullTime alone.
pull_time_exclusions = Table(
    "pull_time_exclusions",
    metadata,
    Column("principal_arn", String(200), primary_key=True),
    Column("created_at", Float, nullable=False),
)
