"""Accounts and regions: one deployment serves several accounts, each in every region of the partition.

A new ``accounts`` table; IAM entities and access keys belong to an account (IAM is global per account); the
regional resources (repositories, registry settings, KMS keys and aliases, secrets, creation templates,
pull-through cache rules, signing profiles, replication backfills) carry their account and region, and their
names are unique within them; so does each audit event (the registry it happened in, when known). The accounts
themselves are entered by the server at start (its default account) and by ``ecrd account create``. Existing
rows move to the deployment's default account and region, which ``MetadataStore.migrate`` passes in. Settings of
the whole deployment (the master key's fingerprint, the signing root) keep an empty account and region.

On SQLite a changed key or constraint means the table is made again (Alembic's batch mode): the store runs this
with foreign keys off, so dropping the old table cascades nowhere, and the access generation's triggers of each
remade table are made again here.

Revision ID: 0023
Revises: 0022
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0023"
down_revision = "0022"
branch_labels = None
depends_on = None

DEFAULT_ACCOUNT_ID = "000000000000"
DEFAULT_REGION = "us-east-1"
# registry_settings keys of the whole deployment rather than of one registry.
DEPLOYMENT_SETTINGS = ("master_key_fingerprint", "signing_authority")
# Tables whose access-generation triggers (migrations 0008 and 0015) die with them when SQLite remakes them.
_TRIGGERED = {
    "repositories",
    "registry_settings",
    "iam_users",
    "iam_roles",
    "iam_policies",
    "iam_groups",
    "iam_access_keys",
    "kms_keys",
    "kms_aliases",
}
_BUMP = "UPDATE generations SET value = value + 1 WHERE scope = 'access'"

# table → (scope columns, the old unique constraint or None, the new unique columns or None, new primary key or None)
_ACCOUNT = ("account_id",)
_REGIONAL = ("account_id", "region")
_CHANGES: dict[str, tuple[tuple[str, ...], str | None, tuple[str, ...] | None, tuple[str, ...] | None]] = {
    "repositories": (_REGIONAL, "uq_repositories_name", ("account_id", "region", "name"), None),
    "registry_settings": (_REGIONAL, None, None, ("account_id", "region", "key")),
    "iam_users": (_ACCOUNT, "uq_iam_users_name_key", ("account_id", "name_key"), None),
    "iam_roles": (_ACCOUNT, "uq_iam_roles_name_key", ("account_id", "name_key"), None),
    "iam_policies": (_ACCOUNT, "uq_iam_policies_name_key", ("account_id", "name_key"), None),
    "iam_groups": (_ACCOUNT, "uq_iam_groups_name_key", ("account_id", "name_key"), None),
    "iam_access_keys": (_ACCOUNT, None, None, None),
    "iam_password_policy": (_ACCOUNT, None, None, ("account_id",)),
    "kms_keys": (_REGIONAL, None, None, None),
    "kms_aliases": (_REGIONAL, None, None, ("account_id", "region", "name")),
    "secrets": (_REGIONAL, "uq_secrets_name", ("account_id", "region", "name"), None),
    "repository_creation_templates": (_REGIONAL, None, None, ("account_id", "region", "prefix")),
    "pull_through_cache_rules": (_REGIONAL, None, None, ("account_id", "region", "ecr_repository_prefix")),
    "signing_profiles": (_REGIONAL, None, None, ("account_id", "region", "name")),
    # Its region column names the destination: the source's is source_region.
    "replication_backfills": (("account_id", "source_region"), None, None, None),
}
_LENGTHS = {"account_id": 12, "region": 25, "source_region": 25}


def _defaults() -> tuple[str, str]:
    config = op.get_context().config
    attributes = config.attributes if config is not None else {}
    return attributes.get("default_account_id", DEFAULT_ACCOUNT_ID), attributes.get("default_region", DEFAULT_REGION)


def upgrade() -> None:
    account_id, region = _defaults()
    op.create_table(
        "accounts",
        sa.Column("account_id", sa.String(length=12), nullable=False),
        sa.Column("alias", sa.String(length=63), nullable=True),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("account_id", name=op.f("pk_accounts")),
        sa.UniqueConstraint("alias", name=op.f("uq_accounts_alias")),
    )
    sqlite = op.get_bind().dialect.name == "sqlite"
    for table, (columns, old_unique, new_unique, new_key) in _CHANGES.items():
        with op.batch_alter_table(table) as batch:
            for column in columns:
                batch.add_column(sa.Column(column, sa.String(length=_LENGTHS[column]), nullable=True))
        values = {"account_id": account_id, "region": region, "source_region": region}
        fill = sa.table(table, *(sa.column(c) for c in columns))
        op.execute(fill.update().values({c: values[c] for c in columns}))
        if table == "registry_settings":
            keyed = sa.table(table, sa.column("key"), sa.column("account_id"), sa.column("region"))
            op.execute(keyed.update().where(keyed.c.key.in_(DEPLOYMENT_SETTINGS)).values(account_id="", region=""))
        with op.batch_alter_table(table, recreate="always" if sqlite else "auto") as batch:
            for column in columns:
                batch.alter_column(column, existing_type=sa.String(length=_LENGTHS[column]), nullable=False)
            if old_unique is not None:
                batch.drop_constraint(old_unique, type_="unique")
            if new_unique is not None:
                batch.create_unique_constraint(op.f(f"uq_{table}_account_id"), list(new_unique))
            if new_key is not None:
                batch.drop_constraint(f"pk_{table}", type_="primary")
                if table == "iam_password_policy":
                    batch.drop_column("id")
                batch.create_primary_key(f"pk_{table}", list(new_key))
        if sqlite and table in _TRIGGERED:
            for event in ("insert", "update", "delete"):
                op.execute(f"DROP TRIGGER IF EXISTS ecrd_generation_{table}_{event}")
                op.execute(
                    f"CREATE TRIGGER ecrd_generation_{table}_{event} AFTER {event.upper()} ON {table} "
                    f"BEGIN {_BUMP}; END"
                )
    op.create_index("ix_kms_keys_account_id", "kms_keys", ["account_id", "region"])
    op.create_index("ix_iam_access_keys_account_id", "iam_access_keys", ["account_id"])
    # The audit trail is each account's (the registry an event happened in; nullable, as a request refused
    # before its registry was known has none): the events so far were all the default registry's.
    with op.batch_alter_table("audit_events") as batch:
        batch.add_column(sa.Column("account_id", sa.String(length=12), nullable=True))
        batch.add_column(sa.Column("region", sa.String(length=25), nullable=True))
    trail = sa.table("audit_events", sa.column("account_id"), sa.column("region"))
    op.execute(trail.update().values(account_id=account_id, region=region))
    op.create_index("ix_audit_events_account_id", "audit_events", ["account_id", "time"])


def downgrade() -> None:
    raise NotImplementedError("accounts and regions cannot be folded back into one registry")
