"""Registries: an account in a region, as ECR counts them, and the regions a deployment serves.

One ecrd deployment serves several accounts, each in every region of the AWS partition. A registry — ECR's
unit of repositories, registry policy, scanning and replication configuration — is one account in one region;
IAM is global per account. ``RegistryId`` names one, and everything regional is stored under it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# The regions of the aws partition (botocore's endpoints data lists the same; a unit test holds them equal).
PARTITION_REGIONS: tuple[str, ...] = (
    "af-south-1",
    "ap-east-1",
    "ap-east-2",
    "ap-northeast-1",
    "ap-northeast-2",
    "ap-northeast-3",
    "ap-south-1",
    "ap-south-2",
    "ap-southeast-1",
    "ap-southeast-2",
    "ap-southeast-3",
    "ap-southeast-4",
    "ap-southeast-5",
    "ap-southeast-6",
    "ap-southeast-7",
    "ca-central-1",
    "ca-west-1",
    "eu-central-1",
    "eu-central-2",
    "eu-north-1",
    "eu-south-1",
    "eu-south-2",
    "eu-west-1",
    "eu-west-2",
    "eu-west-3",
    "il-central-1",
    "me-central-1",
    "me-south-1",
    "mx-central-1",
    "sa-east-1",
    "us-east-1",
    "us-east-2",
    "us-west-1",
    "us-west-2",
)

_ACCOUNT_ID = re.compile(r"[0-9]{12}")


@dataclass(frozen=True, slots=True, order=True)
class RegistryId:
    """One registry: an account in a region."""

    account_id: str
    region: str

    def __str__(self) -> str:
        return f"{self.account_id}/{self.region}"


# Settings of the whole deployment (the master key's fingerprint, the signing root) rather than of one registry.
DEPLOYMENT = RegistryId("", "")


def is_account_id(text: str) -> bool:
    return _ACCOUNT_ID.fullmatch(text) is not None


def registry_host(registry: RegistryId, domain: str) -> str:
    """ECR's registry host name: ``ACCOUNT.dkr.ecr.REGION.DOMAIN``."""
    return f"{registry.account_id}.dkr.ecr.{registry.region}.{domain}"


def registry_from_host(host: str, domain: str) -> RegistryId | None:
    """The registry a host name names under ``domain`` (any port dropped), or None when it names none."""
    name = host.rsplit(":", 1)[0] if host.count(":") == 1 else host
    suffix = "." + domain.lower()
    name = name.lower()
    if not domain or not name.endswith(suffix):
        return None
    parts = name[: -len(suffix)].split(".")
    if len(parts) != 4 or parts[1:3] != ["dkr", "ecr"] or not is_account_id(parts[0]):
        return None
    return RegistryId(parts[0], parts[3])
