"""The tables of image signing: the signing profiles (each a KMS key and the certificate the registry's CA
issued for it) and the signing status of each image under each profile of the signing configuration."""

from __future__ import annotations

from sqlalchemy import Column, Float, ForeignKey, Integer, String, Table, Text

from ecrd.metadata.tables import ACCOUNT_ID, DIGEST, REGION, metadata

# The profile's key is a KMS signing key (its ARN); the certificate, issued for its public key, is PEM.
signing_profiles = Table(
    "signing_profiles",
    metadata,
    Column("account_id", ACCOUNT_ID, primary_key=True),
    Column("region", REGION, primary_key=True),
    Column("name", String(64), primary_key=True),
    Column("kms_key", String(2048), nullable=False),
    Column("certificate", Text, nullable=False),
    Column("created_at", Float, nullable=False),
)

# One row per image and profile that a signing rule asked for: IN_PROGRESS from the push until the signing job
# ends, then COMPLETE (with the signature's digest) or FAILED. Gone with the repository.
image_signing_statuses = Table(
    "image_signing_statuses",
    metadata,
    Column("repository_id", Integer, ForeignKey("repositories.id", ondelete="CASCADE"), primary_key=True),
    Column("digest", DIGEST, primary_key=True),
    Column("profile_arn", String(200), primary_key=True),
    Column("status", String(16), nullable=False),
    Column("failure_code", String(64)),
    Column("failure_reason", String(1024)),
    Column("signature_digest", DIGEST),
    Column("updated_at", Float, nullable=False),
)
