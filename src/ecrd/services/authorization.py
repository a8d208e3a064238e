"""The one policy engine's front: authorizes every request of both doors with IAM and repository policies."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Mapping
from typing import Protocol

from ecrd.domain.account_settings import registry_policy_governs
from ecrd.domain.arns import parse_repository_arn
from ecrd.domain.caches import BoundedCache
from ecrd.domain.registries import RegistryId, is_account_id
from ecrd.errors import AccessDenied
from ecrd.metadata import repositories as repo_queries
from ecrd.metadata.generations import GenerationCache, Generations
from ecrd.metadata.store import MetadataStore
from ecrd.policy.document import PolicyDocument, parse_policy
from ecrd.policy.evaluation import AuthorizationRequest, Decision, Principal, evaluate
from ecrd.policy.explanation import Explanation, explain
from ecrd.services.access import Caller, CallerKind, request_context
from ecrd.services.account_settings import registry_policy_scope

REGISTRY_POLICY_KEY = "registry_policy"

# What a decision depends on besides the policies (which the access generation pins): the principal (its ARN,
# account, aliases, kind and user id choose its identity policies), the action, the resource and the repository.
DecisionKey = tuple[str, str, tuple[str, ...], CallerKind, str, str, str, str | None, RegistryId | None]


class IdentityPolicies(Protocol):
    def identity_policies(self, caller: Caller) -> list[PolicyDocument]: ...


class PolicyCache:
    """Parsed resource policies by the hash of their text: a policy is parsed once per process."""

    def __init__(self, capacity: int = 2048) -> None:
        self.documents: BoundedCache[str, PolicyDocument] = BoundedCache(capacity)

    def parse(self, text: str) -> PolicyDocument:
        key = hashlib.sha256(text.encode()).hexdigest()
        return self.documents.get_or_load(key, lambda: parse_policy(text, kind="resource"))


class PolicyAuthorizer:
    def __init__(
        self,
        store: MetadataStore,
        identity: IdentityPolicies,
        *,
        account_id: str,
        clock: Callable[[], float] = time.time,
        generations: Generations | None = None,
    ) -> None:
        self.store = store
        self.identity = identity
        self.account_id = account_id
        self.clock = clock
        self.policies = PolicyCache()
        self._resource_policies: GenerationCache[tuple[RegistryId | None, str | None, bool], PolicyDocument | None] = (
            GenerationCache(generations)
        )
        self._registry_scope: GenerationCache[RegistryId, str] = GenerationCache(generations, capacity=64)
        # Decisions reached without reading the request's condition keys: the same question gets the same
        # answer until the access generation moves. None marks a question whose policies read them (a time or
        # address condition, a policy variable): it is decided again on every request.
        self._decisions: GenerationCache[DecisionKey, Decision | None] = GenerationCache(generations)

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
        """Allow or refuse ``action`` on ``resource`` (an ARN, or ``*``). ``registry``: the registry (account and
        region) a ``*`` resource of ECR stands for, whose registry policy takes part; a repository's ARN names
        its own."""
        registry = _registry_of(resource) or registry
        if context:
            # Keys of the caller's own (a KMS encryption context…) make every request a question of its own.
            decision = self._decide(caller, action, resource, repository, registry, context)[0]
        else:
            key = (
                caller.arn,
                caller.account_id,
                caller.aliases,
                caller.kind,
                caller.user_id,
                action,
                resource,
                repository,
                registry,
            )
            decided: list[Decision] = []

            def decide() -> Decision | None:
                decision, reusable = self._decide(caller, action, resource, repository, registry, None)
                decided.append(decision)
                return decision if reusable else None

            remembered = self._decisions.get(key, decide)
            if decided:
                decision = decided[0]
            elif remembered is not None:
                decision = remembered
            else:
                decision = self._decide(caller, action, resource, repository, registry, None)[0]
        if not decision.allowed:
            raise AccessDenied(decision.denial_message(self._request(caller, action, resource, registry, None)))

    def explain(
        self,
        caller: Caller,
        action: str,
        resource: str,
        *,
        repository: str | None = None,
        registry: RegistryId | None = None,
    ) -> Explanation:
        """The decision ``authorize`` would reach, statement by statement (the console's policy check)."""
        registry = _registry_of(resource) or registry
        resource_policy = self._resource_policy(
            repository, registry, registry_scope=self._registry_governs(action, registry)
        )
        identity_policies = [] if caller.is_root else self.identity.identity_policies(caller)
        return explain(
            self._request(caller, action, resource, registry, None),
            [(f"identity policy {number}", document) for number, document in enumerate(identity_policies, 1)],
            ("resource policy", resource_policy) if resource_policy is not None else None,
            is_account_root=caller.is_root,
        )

    def _decide(
        self,
        caller: Caller,
        action: str,
        resource: str,
        repository: str | None,
        registry: RegistryId | None,
        context: Mapping[str, object] | None,
    ) -> tuple[Decision, bool]:
        """The decision, and whether it holds for any request of this principal, action and resource (no
        policy involved reads the request's condition keys)."""
        resource_policy = self._resource_policy(
            repository, registry, registry_scope=self._registry_governs(action, registry)
        )
        identity_policies = [] if caller.is_root else self.identity.identity_policies(caller)
        request = self._request(caller, action, resource, registry, context)
        decision = evaluate(request, identity_policies, resource_policy, is_account_root=caller.is_root)
        policies = [*identity_policies, *([resource_policy] if resource_policy is not None else [])]
        return decision, not any(policy.reads_request_context for policy in policies)

    def _request(
        self,
        caller: Caller,
        action: str,
        resource: str,
        registry: RegistryId | None,
        context: Mapping[str, object] | None,
    ) -> AuthorizationRequest:
        return AuthorizationRequest(
            principal=Principal(arn=caller.arn, account_id=caller.account_id, aliases=caller.aliases),
            action=action,
            resource=resource,
            # A "*" of ECR stands for its registry: another account's needs that registry's grant.
            resource_account=_account_of(resource) or (registry.account_id if registry is not None else None),
            context=self._context(caller, context),
        )

    def _registry_governs(self, action: str, registry: RegistryId | None) -> bool:
        """Whether the registry policy takes part in deciding ``action``: its scope (REGISTRY_POLICY_SCOPE) says
        which actions, read once per access generation, which any change of the setting moves."""
        if not action.startswith("ecr:") or registry is None:
            return False
        scope = self._registry_scope.get(registry, lambda: self._read_registry_scope(registry))
        return registry_policy_governs(scope, action)

    def _read_registry_scope(self, registry: RegistryId) -> str:
        with self.store.read() as conn:
            return registry_policy_scope(conn, registry)

    def _resource_policy(
        self, repository: str | None, registry: RegistryId | None, *, registry_scope: bool
    ) -> PolicyDocument | None:
        if registry is None:
            return None
        key = (registry, repository, registry_scope)
        return self._resource_policies.get(
            key, lambda: self._read_resource_policy(registry, repository, registry_scope=registry_scope)
        )

    def _read_resource_policy(
        self, registry: RegistryId, name: str | None, *, registry_scope: bool
    ) -> PolicyDocument | None:
        texts: list[str] = []
        with self.store.read() as conn:
            if name is not None:
                found = repo_queries.get_by_name(conn, registry, name)
                if found is not None:
                    text = repo_queries.get_policy(conn, found.id)
                    if text:
                        texts.append(text)
            # The registry policy governs ECR actions only (with scope V1, only replication's); it must never grant
            # IAM, STS or KMS actions.
            registry_text = (
                repo_queries.get_registry_setting(conn, registry, REGISTRY_POLICY_KEY) if registry_scope else None
            )
            if registry_text:
                texts.append(registry_text)
        if not texts:
            return None
        documents = [self.policies.parse(text) for text in texts]
        if len(documents) == 1:
            return documents[0]
        # The registry policy applies alongside the repository's: one resource policy of both statements.
        return PolicyDocument(
            version=documents[0].version,
            statements=tuple(s for d in documents for s in d.statements),
        )

    def _context(self, caller: Caller, extra: Mapping[str, object] | None) -> dict[str, object]:
        return request_context(caller, self.clock(), extra)


def _registry_of(resource: str) -> RegistryId | None:
    """The registry a repository ARN names (None for any other resource)."""
    parsed = parse_repository_arn(resource)
    return RegistryId(parsed[1], parsed[0]) if parsed else None


def _account_of(resource: str) -> str | None:
    """The account that owns an ARN's resource (None for ``*`` and ARNs without one: the caller's own)."""
    parts = resource.split(":", 5)
    if len(parts) == 6 and parts[0] == "arn" and is_account_id(parts[4]):
        return parts[4]
    return None
