"""The account settings as stored (one registry_settings row each, absent until first set) and what the registry
policy scope asks of a registry policy."""

from __future__ import annotations

from sqlalchemy import Connection

from ecrd.domain.account_settings import (
    REGISTRY_POLICY_SCOPE,
    V1_REGISTRY_ACTIONS,
    V2_SERVICE,
    account_setting,
    check_account_setting,
)
from ecrd.domain.registries import RegistryId
from ecrd.errors import InvalidParameter
from ecrd.metadata import repositories as repo_queries
from ecrd.policy.conditions import PatternSet, RequestContext
from ecrd.policy.document import PolicyDocument

_KEY_PREFIX = "account_setting:"
_NO_CONTEXT = RequestContext({})
# ECR's answer to a registry policy it refuses (hashicorp/terraform-provider-aws#40933: actions beyond V1's).
INVALID_REGISTRY_POLICY = (
    "Invalid parameter at 'PolicyText' failed to satisfy constraint: 'Invalid registry policy provided'"
)


def read_account_setting(conn: Connection, registry: RegistryId, name: str) -> str:
    """The setting's value, or its default when the registry never set it."""
    setting = account_setting(name)
    return repo_queries.get_registry_setting(conn, registry, _KEY_PREFIX + name) or setting.default


def write_account_setting(conn: Connection, registry: RegistryId, name: str, value: str) -> None:
    check_account_setting(name, value)
    repo_queries.set_registry_setting(conn, registry, _KEY_PREFIX + name, value)


def registry_policy_scope(conn: Connection, registry: RegistryId) -> str:
    return read_account_setting(conn, registry, REGISTRY_POLICY_SCOPE)


def _in_scope(pattern: str, scope: str) -> bool:
    """Whether the action pattern names at least one action the scope governs."""
    if scope != "V1":
        # A pattern is '*' or 'service:Action' with a literal service (the parser enforces it).
        return pattern == "*" or pattern.partition(":")[0].lower() == V2_SERVICE
    patterns = PatternSet((pattern,), case_sensitive=False, policy_variables=False)
    return any(patterns.matches(action, _NO_CONTEXT) for action in V1_REGISTRY_ACTIONS)


def check_registry_policy_scope(document: PolicyDocument, scope: str) -> None:
    """Refuse a registry policy naming an action its scope does not govern. ECR's guide: with V1, "If any
    additional actions are added to the registry policy, an error will occur"; a pattern naming some governed
    action (``ecr:*`` is allowed there) passes, and only the governed actions it names take effect."""
    for statement in document.statements:
        patterns = statement.actions if statement.actions is not None else statement.not_actions
        if not all(_in_scope(pattern, scope) for pattern in patterns or ()):
            raise InvalidParameter(INVALID_REGISTRY_POLICY)
