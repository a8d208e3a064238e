"""Key and secrets services over one metadata store, built as the composition root builds them (one set per
registry: an account in a region), for service-level tests of several accounts and regions.

Callers are made here rather than through IAM: ``PolicyBook`` is the identity-policy source the services ask
(``IdentityPolicies``), holding each test principal's inline policies, so a test states who may do what
without the IAM service.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ecrd.domain.registries import RegistryId
from ecrd.metadata.store import MetadataStore
from ecrd.policy.document import PolicyDocument, parse_policy
from ecrd.services.access import Caller, CallerKind
from ecrd.services.kms import KeyService
from ecrd.services.secrets import SecretBox
from ecrd.services.secrets_manager import SecretsManagerService
from tests.support.databases import database_url

ACCOUNT = "000000000000"
OTHER_ACCOUNT = "111111111111"
REGION = "us-east-1"
OTHER_REGION = "eu-west-1"
HOME = RegistryId(ACCOUNT, REGION)


@dataclass
class PolicyBook:
    """Identity policies by principal ARN: what IAM would answer for each test principal."""

    documents: dict[str, list[PolicyDocument]] = field(default_factory=dict)

    def identity_policies(self, caller: Caller) -> list[PolicyDocument]:
        return list(self.documents.get(caller.arn, []))


@dataclass
class Deployment:
    """One metadata store and master key serving every account and region, as one ecrd deployment does."""

    store: MetadataStore
    database_url: str
    data_dir: Path
    clock: Callable[[], float]
    policies: PolicyBook = field(default_factory=PolicyBook)

    @property
    def secret_box(self) -> SecretBox:
        return SecretBox.from_data_dir(self.data_dir)

    def key_service(self, registry: RegistryId = HOME, store: MetadataStore | None = None) -> KeyService:
        return KeyService(
            store or self.store,
            account_id=registry.account_id,
            region=registry.region,
            secret_box=self.secret_box,
            clock=self.clock,
            identity=self.policies,
        )

    def secrets_service(self, registry: RegistryId = HOME, kms: KeyService | None = None) -> SecretsManagerService:
        return SecretsManagerService(
            self.store,
            kms or self.key_service(registry),
            account_id=registry.account_id,
            region=registry.region,
            identity=self.policies,
            clock=self.clock,
        )

    def root(self, account_id: str = ACCOUNT) -> Caller:
        return Caller(
            arn=f"arn:aws:iam::{account_id}:root", account_id=account_id, kind=CallerKind.ROOT, user_id=account_id
        )

    def user(self, name: str, *policies: str, account_id: str = ACCOUNT) -> Caller:
        """An IAM user of ``account_id`` with the given inline policies."""
        arn = f"arn:aws:iam::{account_id}:user/{name}"
        self.policies.documents[arn] = [parse_policy(document, kind="identity") for document in policies]
        return Caller(
            arn=arn,
            account_id=account_id,
            kind=CallerKind.USER,
            user_id=f"AIDA{name.upper():0<17}"[:21],
            username=name,
        )


@contextmanager
def deployment(backend: str, directory: Path, clock: Callable[[], float]) -> Iterator[Deployment]:
    with database_url(backend, directory) as url:
        store = MetadataStore(url)
        try:
            yield Deployment(store, url, directory / "data", clock)
        finally:
            store.dispose()


def policy(*statements: dict[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def allow(action: str | list[str] = "kms:*", resource: str = "*") -> dict[str, Any]:
    return {"Effect": "Allow", "Action": action, "Resource": resource}


def grant(principal: str, action: str | list[str] = "kms:*", effect: str = "Allow") -> dict[str, Any]:
    return {"Effect": effect, "Principal": {"AWS": principal}, "Action": action, "Resource": "*"}
