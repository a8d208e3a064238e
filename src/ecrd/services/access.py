"""The access seam: who is calling, and the one question every request asks — may they do this here?"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Protocol

from ecrd.domain.arns import repository_arn
from ecrd.domain.registries import RegistryId


class CallerKind(Enum):
    """What sort of principal a caller is, decided once where its credentials are authenticated, so that no
    rule has to read it back out of an ARN."""

    ROOT = "root"  # the account root: arn:aws:iam::<account>:root
    USER = "user"  # an IAM user, with its own key or a GetSessionToken session: arn:aws:iam::<account>:user/…
    ASSUMED_ROLE = "assumed-role"  # a session of a role: arn:aws:sts::<account>:assumed-role/<role>/<session>


@dataclass(frozen=True, slots=True)
class Caller:
    """An authenticated principal and the facts about its request that policies may test."""

    arn: str
    account_id: str
    kind: CallerKind
    user_id: str = ""
    username: str = ""
    access_key_id: str = ""
    aliases: tuple[str, ...] = ()
    source_ip: str = ""
    secure_transport: bool = False
    # Temporary credentials end with their session; registry tokens must not outlive them.
    expires_at: float | None = None
    extra: Mapping[str, object] = field(default_factory=dict)

    @property
    def is_root(self) -> bool:
        return self.kind is CallerKind.ROOT


def request_context(caller: Caller, now: float, extra: Mapping[str, object] | None = None) -> dict[str, object]:
    """The global condition keys of a request by ``caller`` at ``now`` (epoch seconds), plus ``extra``:
    the one definition every policy decision (ECR, IAM, STS, KMS) uses."""
    context: dict[str, object] = {
        "aws:PrincipalArn": caller.aliases[0] if caller.aliases else caller.arn,
        "aws:PrincipalAccount": caller.account_id,
        "aws:userid": caller.user_id,
        "aws:CurrentTime": dt.datetime.fromtimestamp(now, tz=dt.UTC),
        "aws:EpochTime": int(now),
        "aws:SecureTransport": caller.secure_transport,
    }
    if caller.username:
        context["aws:username"] = caller.username
    if caller.source_ip:
        context["aws:SourceIp"] = caller.source_ip
    if extra:
        context.update(extra)
    return context


def request_tag_context(tags: Mapping[str, str] | Sequence[tuple[str, str]]) -> dict[str, object]:
    """The condition keys of tags a request sets (aws:RequestTag/<key>, aws:TagKeys): the one definition of
    ECR, KMS and Secrets Manager."""
    pairs = list(tags.items()) if isinstance(tags, Mapping) else list(tags)
    context: dict[str, object] = {f"aws:RequestTag/{key}": value for key, value in pairs}
    context["aws:TagKeys"] = [key for key, _ in pairs]
    return context


class Authorizer(Protocol):
    def authorize(
        self,
        caller: Caller,
        action: str,
        resource: str,
        *,
        repository: str | None = None,
        registry: RegistryId | None = None,
        context: Mapping[str, object] | None = None,
    ) -> None:
        """Return when ``caller`` may perform ``action`` on ``resource``; raise AccessDenied otherwise."""
        ...


class AllowAll:
    """Authorizes everything: for an embedded registry with authentication turned off, and for tests."""

    def authorize(
        self,
        caller: Caller,
        action: str,
        resource: str,
        *,
        repository: str | None = None,
        registry: RegistryId | None = None,
        context: Mapping[str, object] | None = None,
    ) -> None:
        return None


@dataclass(frozen=True, slots=True)
class AccessService:
    """Maps (caller, action, repository name) to the authorizer's question with the repository's ARN."""

    authorizer: Authorizer
    region: str
    account_id: str

    @property
    def registry_id(self) -> RegistryId:
        return RegistryId(self.account_id, self.region)

    def repository_arn(self, name: str) -> str:
        return repository_arn(self.region, self.account_id, name)

    def check_repository(
        self, caller: Caller, action: str, name: str, context: Mapping[str, object] | None = None
    ) -> None:
        self.authorizer.authorize(caller, action, self.repository_arn(name), repository=name, context=context)

    def check_registry(self, caller: Caller, action: str, context: Mapping[str, object] | None = None) -> None:
        """Actions without resource-level permissions (GetAuthorizationToken, the catalog) use resource '*';
        the registry's policy still takes part."""
        self.authorizer.authorize(caller, action, "*", registry=self.registry_id, context=context)
