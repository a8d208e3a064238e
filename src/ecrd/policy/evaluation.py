"""The authorization decision: one request against a principal's identity policies and a resource policy.

The logic is IAM's (reference_policies_evaluation-logic): an explicit Deny in any applicable policy wins;
within one account an Allow from either an identity-based or the resource-based policy suffices; across
accounts both must allow. The account root user is allowed everything in its own account unless a
resource-based policy denies it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from typing import Final, Literal

from ecrd.policy.conditions import RequestContext
from ecrd.policy.document import PolicyDocument

__all__ = [
    "AuthorizationRequest",
    "Decision",
    "DecisionReason",
    "Principal",
    "evaluate",
]

DecisionReason = Literal[
    "allowed",
    "explicit_deny_identity",
    "explicit_deny_resource",
    "no_identity_allow",
    "no_resource_allow",
]


@dataclass(frozen=True)
class Principal:
    """The caller: its ARN as AWS prints it in AccessDenied messages, its account, and other ARNs naming it.

    For an assumed-role session (``arn:aws:sts::<acct>:assumed-role/<role>/<session>``) ``aliases`` holds
    the role ARN (``arn:aws:iam::<acct>:role/<path><role>``), so a resource policy naming either matches.
    """

    arn: str
    account_id: str
    aliases: tuple[str, ...] = ()


_IAM_USER: Final = re.compile(r"arn:[a-z0-9-]+:iam::[0-9]{12}:user/(?:.*/)?([^/]+)")
_IAM_ROLE: Final = re.compile(r"arn:[a-z0-9-]+:iam::[0-9]{12}:role/.+")
_PRINCIPAL_TYPES: Final = (
    (re.compile(r"arn:[a-z0-9-]+:iam::[0-9]{12}:root"), "Account"),
    (re.compile(r"arn:[a-z0-9-]+:iam::[0-9]{12}:user/.+"), "User"),
    (re.compile(r"arn:[a-z0-9-]+:sts::[0-9]{12}:assumed-role/.+"), "AssumedRole"),
    (re.compile(r"arn:[a-z0-9-]+:sts::[0-9]{12}:federated-user/.+"), "FederatedUser"),
)


@lru_cache(maxsize=1024)
def _principal_keys(principal: Principal) -> tuple[tuple[str, object], ...]:
    """Global condition keys that AWS derives from the principal (aws:PrincipalArn, aws:username, ...).

    Cached: the same callers come back request after request, and this is regex work.
    """
    principal_type = next((kind for pattern, kind in _PRINCIPAL_TYPES if pattern.fullmatch(principal.arn)), None)
    # IAM: for an assumed-role session aws:PrincipalArn is the role's ARN, not the session's.
    role = next((alias for alias in principal.aliases if _IAM_ROLE.fullmatch(alias)), None)
    keys: dict[str, object] = {
        "aws:principalarn": role if role is not None and principal_type == "AssumedRole" else principal.arn,
        "aws:principalaccount": principal.account_id,
    }
    # IAM: aws:username is present only for IAM users.
    user = _IAM_USER.fullmatch(principal.arn)
    if user is not None:
        keys["aws:username"] = user.group(1)
    if principal_type is not None:
        keys["aws:principaltype"] = principal_type
    return tuple(keys.items())


@dataclass(frozen=True)
class AuthorizationRequest:
    """One authorization question: may ``principal`` perform ``action`` on ``resource``?

    ``resource`` is an ARN, or ``"*"`` for actions without resource-level permissions
    (GetAuthorizationToken). ``resource_account`` owns the resource; None means the principal's own.
    ``context`` holds the request's condition keys (names matched case-insensitively); values are
    ``str | bool | int | datetime | list[str]``. The clock is the caller's: pass ``aws:CurrentTime``
    (a datetime) for date conditions; ``aws:EpochTime`` is derived from it when absent.
    aws:PrincipalArn, aws:PrincipalAccount, aws:PrincipalType and aws:username are derived from the
    principal unless the context sets them.
    """

    principal: Principal
    action: str
    resource: str
    resource_account: str | None
    context: Mapping[str, object] = field(default_factory=dict)
    _context: RequestContext = field(init=False, repr=False, compare=False)
    _identities: tuple[str, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        values = dict(_principal_keys(self.principal))
        values.update((key.lower(), value) for key, value in self.context.items())
        now = values.get("aws:currenttime")
        if isinstance(now, datetime) and "aws:epochtime" not in values:
            values["aws:epochtime"] = int(now.timestamp())
        object.__setattr__(self, "_context", RequestContext(values))
        object.__setattr__(self, "_identities", (self.principal.arn, *self.principal.aliases))

    @property
    def same_account(self) -> bool:
        return self.resource_account is None or self.resource_account == self.principal.account_id


@dataclass(frozen=True)
class Decision:
    """The outcome, and for a denial which rule denied (it picks AWS's wording)."""

    allowed: bool
    reason: DecisionReason

    def denial_message(self, request: AuthorizationRequest) -> str:
        """The AccessDenied message AWS gives for this denial (ecr-semantics.md §3.1)."""
        head = (
            f"User: {request.principal.arn} is not authorized to perform: {request.action} "
            f"on resource: {request.resource}"
        )
        if self.reason == "explicit_deny_identity":
            return f"{head} with an explicit deny in an identity-based policy"
        if self.reason == "explicit_deny_resource":
            return f"{head} with an explicit deny in a resource-based policy"
        if self.reason == "no_identity_allow":
            return f"{head} because no identity-based policy allows the {request.action} action"
        if self.reason == "no_resource_allow":
            return f"{head} because no resource-based policy allows the {request.action} action"
        raise ValueError("an allowed decision has no denial message")


ALLOWED: Final = Decision(True, "allowed")
EXPLICIT_DENY_IDENTITY: Final = Decision(False, "explicit_deny_identity")
EXPLICIT_DENY_RESOURCE: Final = Decision(False, "explicit_deny_resource")
NO_IDENTITY_ALLOW: Final = Decision(False, "no_identity_allow")
NO_RESOURCE_ALLOW: Final = Decision(False, "no_resource_allow")

_Outcome = Literal["deny", "allow", "none"]


def _identity_outcome(request: AuthorizationRequest, policies: Sequence[PolicyDocument]) -> _Outcome:
    context = request._context
    allowed = False
    for policy in policies:
        for statement in policy.statements:
            if (
                statement.matches_action(request.action, context)
                and statement.matches_resource(request.resource, context)
                and statement.conditions_hold(context)
            ):
                if statement.effect == "Deny":
                    return "deny"
                allowed = True
    return "allow" if allowed else "none"


def _resource_outcome(request: AuthorizationRequest, policy: PolicyDocument) -> tuple[_Outcome, bool]:
    """("deny" | "allow" | "none", whether an Allow names the principal itself rather than its account)."""
    context = request._context
    account_id = request.principal.account_id
    allowed = False
    allowed_directly = False
    for statement in policy.statements:
        named = statement.matches_principal(request._identities, account_id)
        if (
            named != "none"
            and statement.matches_action(request.action, context)
            and statement.matches_resource(request.resource, context)
            and statement.conditions_hold(context)
        ):
            if statement.effect == "Deny":
                return "deny", False
            allowed = True
            allowed_directly = allowed_directly or named == "direct"
    return ("allow" if allowed else "none"), allowed_directly


def evaluate(
    request: AuthorizationRequest,
    identity_policies: Sequence[PolicyDocument],
    resource_policy: PolicyDocument | None,
    *,
    is_account_root: bool = False,
) -> Decision:
    """Decide ``request`` under the principal's identity policies and the resource's policy (if any)."""
    if is_account_root:
        # The root user has no identity policies and every permission in its own account; a resource policy
        # can still deny it, and another account's resource must grant it access.
        identity: _Outcome = "allow"
    else:
        identity = _identity_outcome(request, identity_policies)
    resource, resource_direct = _resource_outcome(request, resource_policy) if resource_policy else ("none", False)

    if identity == "deny":
        return EXPLICIT_DENY_IDENTITY
    if resource == "deny":
        return EXPLICIT_DENY_RESOURCE

    if request.same_account:
        # A resource policy that names only the account delegates to the account's identity policies: it
        # grants nothing by itself (IAM: "This delegates authority to the account").
        if identity == "allow" or resource_direct:
            return ALLOWED
        return NO_IDENTITY_ALLOW
    if identity != "allow":
        return NO_IDENTITY_ALLOW
    if resource != "allow":
        return NO_RESOURCE_ALLOW
    return ALLOWED
