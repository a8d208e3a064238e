"""Migration 0023: a single-account registry's rows move to the default account and region, whole.

The database is brought to revision 0022 (the schema before accounts), filled the way that schema was filled,
then migrated to the head as a server start does: every repository keeps its images, tags and blob links (SQLite
remakes the tables whose keys change, which with foreign keys on would have deleted every child row), names stay
unique within a registry only, and the caches' change counter still moves when a remade table changes.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import Connection, text

from ecrd.metadata.migrations.runner import alembic_config
from ecrd.metadata.store import MetadataStore
from tests.support.databases import database_url


@pytest.fixture
def old_store(backend: str, tmp_path: Path) -> Iterator[MetadataStore]:
    with database_url(backend, tmp_path, migrated=False) as url:
        store = MetadataStore(url)
        with store.write() as conn:
            command.upgrade(alembic_config(conn), "0022")
        try:
            yield store
        finally:
            store.dispose()


def _fill_0022(conn: Connection) -> None:
    statements = [
        "INSERT INTO repositories (name, created_at, image_tag_mutability, mutability_exclusions, scan_on_push,"
        " encryption_type) VALUES ('team/app', 1.0, 'MUTABLE', '[]', false, 'AES256')",
        "INSERT INTO blobs (digest, size, created_at, location) VALUES ('sha256:aa', 3, 1.0, 'hot')",
        "INSERT INTO repository_blobs (repository_id, digest, created_at) VALUES (1, 'sha256:aa', 1.0)",
        "INSERT INTO manifests (repository_id, digest, media_type, payload, size, image_size, pushed_at,"
        " registry_attached, image_status) VALUES (1, 'sha256:mm', 'application/vnd.oci.image.manifest.v1+json',"
        " 'x', 1, 3, 1.0, false, 'ACTIVE')",
        "INSERT INTO tags (repository_id, name, manifest_digest, updated_at) VALUES (1, 'latest', 'sha256:mm', 1.0)",
        "INSERT INTO registry_settings (key, value) VALUES ('registry_policy', '{}')",
        "INSERT INTO registry_settings (key, value) VALUES ('master_key_fingerprint', 'f')",
        "INSERT INTO iam_users (id, name, name_key, path, created_at, tags)"
        " VALUES ('AIDAEXAMPLE', 'ci', 'ci', '/', 1.0, '[]')",
        "INSERT INTO iam_access_keys (access_key_id, principal, user_id, secret, status, created_at)"
        " VALUES ('AKIAEXAMPLE', 'user', 'AIDAEXAMPLE', 's', 'Active', 1.0)",
        "INSERT INTO iam_password_policy (id, policy) VALUES (1, '{}')",
        "INSERT INTO audit_events (time, request_id, principal, action, repository, outcome, status, source_ip)"
        " VALUES (1.0, 'r-1', 'arn:aws:iam::123456789012:user/ci', 'ecr:PutImage', 'team/app', 'allowed', 200, '')",
    ]
    for statement in statements:
        conn.execute(text(statement))


def _access_generation(conn: Connection) -> int:
    return int(conn.execute(text("SELECT value FROM generations WHERE scope = 'access'")).scalar_one())


def test_rows_move_to_the_default_registry_whole(old_store: MetadataStore) -> None:
    with old_store.write() as conn:
        _fill_0022(conn)

    old_store.migrate(default_account_id="123456789012", default_region="eu-west-1")

    with old_store.read() as conn:
        assert conn.execute(text("SELECT account_id, region, name FROM repositories")).all() == [
            ("123456789012", "eu-west-1", "team/app")
        ]
        # Nothing cascaded from the remade repositories table.
        assert conn.execute(text("SELECT count(*) FROM manifests")).scalar_one() == 1
        assert conn.execute(text("SELECT count(*) FROM tags")).scalar_one() == 1
        assert conn.execute(text("SELECT count(*) FROM repository_blobs")).scalar_one() == 1
        settings = set(conn.execute(text("SELECT account_id, region, key FROM registry_settings")).all())
        assert settings == {("123456789012", "eu-west-1", "registry_policy"), ("", "", "master_key_fingerprint")}
        assert conn.execute(text("SELECT account_id FROM iam_users")).scalar_one() == "123456789012"
        assert conn.execute(text("SELECT account_id FROM iam_access_keys")).scalar_one() == "123456789012"
        assert conn.execute(text("SELECT account_id FROM iam_password_policy")).scalar_one() == "123456789012"
        # and the audit trail so far is the default registry's
        assert conn.execute(text("SELECT account_id, region FROM audit_events")).all() == [
            ("123456789012", "eu-west-1")
        ]
        before = _access_generation(conn)

    with old_store.write() as conn:
        # Another account may now hold a repository, and a user, of the same name; one registry may not twice.
        conn.execute(
            text(
                "INSERT INTO repositories (account_id, region, name, created_at, image_tag_mutability,"
                " mutability_exclusions, scan_on_push, encryption_type)"
                " VALUES ('210987654321', 'eu-west-1', 'team/app', 2.0, 'MUTABLE', '[]', false, 'AES256')"
            )
        )
        conn.execute(
            text(
                "INSERT INTO iam_users (id, account_id, name, name_key, path, created_at, tags) VALUES"
                " ('AIDAOTHER', '210987654321', 'ci', 'ci', '/', 2.0, '[]')"
            )
        )
    with old_store.read() as conn:
        # The triggers of the remade tables still announce changes to the caches.
        assert _access_generation(conn) > before
    with pytest.raises(Exception, match=r"(?i)unique|duplicate"), old_store.write() as conn:
        conn.execute(
            text(
                "INSERT INTO repositories (account_id, region, name, created_at, image_tag_mutability,"
                " mutability_exclusions, scan_on_push, encryption_type)"
                " VALUES ('123456789012', 'eu-west-1', 'team/app', 3.0, 'MUTABLE', '[]', false, 'AES256')"
            )
        )
