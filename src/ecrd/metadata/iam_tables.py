"""The identity schema: IAM users, roles, policies and access keys, on the registry's one ``metadata``.

IAM names are unique without regard to case ("you cannot create resources named both MyResource and
myresource", IAM quotas page), so every named table stores the name as given and a ``name_key`` (its lower case)
that carries the unique constraint and serves lookups. Secrets are stored sealed by ``SecretBox`` with the access
key id as associated data; session tokens only as their SHA-256. Times are epoch seconds (float).
"""

from __future__ import annotations

from sqlalchemy import Boolean, Column, Float, ForeignKey, Index, Integer, String, Table, Text, UniqueConstraint

from ecrd.metadata.tables import ACCOUNT_ID, account_column, metadata

IAM_ID = String(32)
NAME = String(128)
# Listings page by name_key; byte order on both back ends (SQLite compares BINARY) keeps pages and their order
# the same everywhere, whatever collation a PostgreSQL database was created with.
NAME_KEY = String(128).with_variant(String(128, collation="C"), "postgresql")
IAM_PATH = String(512)
ARN = String(2048)

iam_users = Table(
    "iam_users",
    metadata,
    Column("id", IAM_ID, primary_key=True),  # the UserId, AIDA…
    account_column(),
    Column("name", NAME, nullable=False),
    Column("name_key", NAME_KEY, nullable=False),
    Column("path", IAM_PATH, nullable=False),
    Column("created_at", Float, nullable=False),
    Column("tags", Text, nullable=False),  # JSON [{"Key":…, "Value":…}], in the order given
    UniqueConstraint("account_id", "name_key"),
)

iam_roles = Table(
    "iam_roles",
    metadata,
    Column("id", IAM_ID, primary_key=True),  # the RoleId, AROA…
    account_column(),
    Column("name", NAME, nullable=False),
    Column("name_key", NAME_KEY, nullable=False),
    Column("path", IAM_PATH, nullable=False),
    Column("created_at", Float, nullable=False),
    Column("description", String(1000), nullable=False),
    Column("max_session_duration", Integer, nullable=False),
    Column("assume_role_policy", Text, nullable=False),
    Column("tags", Text, nullable=False),
    UniqueConstraint("account_id", "name_key"),
)

# Customer managed policies; their documents live in iam_policy_versions. AWS managed policies are code
# (ecrd.policy.managed) and appear here only as attachment ARNs.
iam_policies = Table(
    "iam_policies",
    metadata,
    Column("id", IAM_ID, primary_key=True),  # the PolicyId, ANPA…
    account_column(),
    Column("name", NAME, nullable=False),
    Column("name_key", NAME_KEY, nullable=False),
    Column("path", IAM_PATH, nullable=False),
    Column("description", String(1000), nullable=False),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
    Column("default_version_id", String(16), nullable=False),
    # IAM never reuses a version number, even after the version is deleted.
    Column("next_version", Integer, nullable=False),
    Column("tags", Text, nullable=False),
    UniqueConstraint("account_id", "name_key"),
)

iam_policy_versions = Table(
    "iam_policy_versions",
    metadata,
    Column("policy_id", IAM_ID, ForeignKey("iam_policies.id", ondelete="CASCADE"), primary_key=True),
    Column("version_id", String(16), primary_key=True),
    Column("document", Text, nullable=False),
    Column("created_at", Float, nullable=False),
)

iam_user_policies = Table(
    "iam_user_policies",
    metadata,
    Column("user_id", IAM_ID, ForeignKey("iam_users.id", ondelete="CASCADE"), primary_key=True),
    Column("name_key", NAME_KEY, primary_key=True),
    Column("name", NAME, nullable=False),
    Column("document", Text, nullable=False),
)

iam_role_policies = Table(
    "iam_role_policies",
    metadata,
    Column("role_id", IAM_ID, ForeignKey("iam_roles.id", ondelete="CASCADE"), primary_key=True),
    Column("name_key", NAME_KEY, primary_key=True),
    Column("name", NAME, nullable=False),
    Column("document", Text, nullable=False),
)

# An attachment's policy_ref is the ARN of an AWS managed policy or the id of a customer managed one (whose
# ARN holds the account id, which the operator may change); policy_id is set for the latter, and its foreign
# key (without cascade) keeps an attached policy from being deleted underneath its users and roles.
iam_user_attachments = Table(
    "iam_user_attachments",
    metadata,
    Column("user_id", IAM_ID, ForeignKey("iam_users.id", ondelete="CASCADE"), primary_key=True),
    Column("policy_ref", ARN, primary_key=True),
    Column("policy_id", IAM_ID, ForeignKey("iam_policies.id")),
    Column("attached_at", Float, nullable=False),
)
Index("ix_iam_user_attachments_policy_ref", iam_user_attachments.c.policy_ref)
Index("ix_iam_user_attachments_policy_id", iam_user_attachments.c.policy_id)

iam_role_attachments = Table(
    "iam_role_attachments",
    metadata,
    Column("role_id", IAM_ID, ForeignKey("iam_roles.id", ondelete="CASCADE"), primary_key=True),
    Column("policy_ref", ARN, primary_key=True),
    Column("policy_id", IAM_ID, ForeignKey("iam_policies.id")),
    Column("attached_at", Float, nullable=False),
)
Index("ix_iam_role_attachments_policy_ref", iam_role_attachments.c.policy_ref)
Index("ix_iam_role_attachments_policy_id", iam_role_attachments.c.policy_id)

# Long-term keys (of the root or a user) and temporary credentials (GetSessionToken, AssumeRole) alike, so
# that authenticating any request is one primary-key lookup. principal is "root", "user" or "role".
# Temporary credentials go with their user or role (cascade): deleting the principal revokes its sessions.
iam_access_keys = Table(
    "iam_access_keys",
    metadata,
    Column("access_key_id", String(128), primary_key=True),
    # The account the key answers as (the root's keys have no user or role to say it).
    account_column(),
    Column("principal", String(8), nullable=False),
    Column("user_id", IAM_ID, ForeignKey("iam_users.id", ondelete="CASCADE")),
    Column("role_id", IAM_ID, ForeignKey("iam_roles.id", ondelete="CASCADE")),
    Column("session_name", String(64)),
    Column("secret", Text, nullable=False),  # SecretBox.seal(secret, context=access_key_id)
    Column("session_token_hash", String(64)),  # sha256 hex; set exactly for temporary credentials
    Column("status", String(16), nullable=False),
    Column("created_at", Float, nullable=False),
    Column("expires_at", Float),
)
Index("ix_iam_access_keys_account_id", iam_access_keys.c.account_id)
Index("ix_iam_access_keys_user_id", iam_access_keys.c.user_id)
Index("ix_iam_access_keys_role_id", iam_access_keys.c.role_id)
Index("ix_iam_access_keys_expires_at", iam_access_keys.c.expires_at)

# Groups hold no credentials of their own: a group's inline and attached policies apply to its members, so a
# member's identity policies are its own and those of every group it belongs to. IAM groups carry no tags.
iam_groups = Table(
    "iam_groups",
    metadata,
    Column("id", IAM_ID, primary_key=True),  # the GroupId, AGPA…
    account_column(),
    Column("name", NAME, nullable=False),
    Column("name_key", NAME_KEY, nullable=False),
    Column("path", IAM_PATH, nullable=False),
    Column("created_at", Float, nullable=False),
    UniqueConstraint("account_id", "name_key"),
)

iam_group_members = Table(
    "iam_group_members",
    metadata,
    Column("group_id", IAM_ID, ForeignKey("iam_groups.id", ondelete="CASCADE"), primary_key=True),
    Column("user_id", IAM_ID, ForeignKey("iam_users.id", ondelete="CASCADE"), primary_key=True),
)
Index("ix_iam_group_members_user_id", iam_group_members.c.user_id)

iam_group_policies = Table(
    "iam_group_policies",
    metadata,
    Column("group_id", IAM_ID, ForeignKey("iam_groups.id", ondelete="CASCADE"), primary_key=True),
    Column("name_key", NAME_KEY, primary_key=True),
    Column("name", NAME, nullable=False),
    Column("document", Text, nullable=False),
)

iam_group_attachments = Table(
    "iam_group_attachments",
    metadata,
    Column("group_id", IAM_ID, ForeignKey("iam_groups.id", ondelete="CASCADE"), primary_key=True),
    Column("policy_ref", ARN, primary_key=True),
    Column("policy_id", IAM_ID, ForeignKey("iam_policies.id")),
    Column("attached_at", Float, nullable=False),
)
Index("ix_iam_group_attachments_policy_ref", iam_group_attachments.c.policy_ref)
Index("ix_iam_group_attachments_policy_id", iam_group_attachments.c.policy_id)

# A user's console password (CreateLoginProfile): only its salted scrypt hash (ecrd.services.iam.passwords), the
# hashes of the passwords it replaced (as many as the password policy's PasswordReusePrevention asks to keep, at
# most 24), and when it was last set, from which MaxPasswordAge counts.
iam_login_profiles = Table(
    "iam_login_profiles",
    metadata,
    Column("user_id", IAM_ID, ForeignKey("iam_users.id", ondelete="CASCADE"), primary_key=True),
    Column("password_hash", String(256), nullable=False),
    Column("previous_hashes", Text, nullable=False),  # JSON list, newest first
    Column("password_reset_required", Boolean, nullable=False),
    Column("created_at", Float, nullable=False),
    Column("password_changed_at", Float, nullable=False),
)

# The account password policy (UpdateAccountPasswordPolicy): at most one row per account, its settings as IAM's
# PasswordPolicy structure in JSON. No row: no policy set, IAM's default rules apply.
iam_password_policy = Table(
    "iam_password_policy",
    metadata,
    Column("account_id", ACCOUNT_ID, primary_key=True),
    Column("policy", Text, nullable=False),
)
