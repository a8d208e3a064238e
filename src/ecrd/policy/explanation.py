"""Why the policy engine decides as it does: the decision of ``evaluate`` and, for every statement of every
policy that took part, whether it applies to the request and what it says — the console's "can this principal
do this action here?". The same matching functions as ``evaluate``, so the explanation cannot differ from the
decision it explains. Pure."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ecrd.policy.document import PolicyDocument, Statement
from ecrd.policy.evaluation import AuthorizationRequest, Decision, evaluate


@dataclass(frozen=True, slots=True)
class StatementVerdict:
    """One statement: where it is, its effect, and which of its parts match the request."""

    policy: str
    index: int
    sid: str | None
    effect: str
    principal: bool
    action: bool
    resource: bool
    conditions: bool

    @property
    def applies(self) -> bool:
        return self.principal and self.action and self.resource and self.conditions

    @property
    def says(self) -> str:
        if self.applies:
            return "denies the request" if self.effect == "Deny" else "allows the request"
        missing = [
            part
            for part, holds in (
                ("principal", self.principal),
                ("action", self.action),
                ("resource", self.resource),
                ("conditions", self.conditions),
            )
            if not holds
        ]
        return "does not apply: its " + ", ".join(missing) + (" does" if len(missing) == 1 else " do") + " not match"


@dataclass(frozen=True, slots=True)
class Explanation:
    decision: Decision
    statements: tuple[StatementVerdict, ...]
    denial_message: str | None


def _verdict(
    request: AuthorizationRequest, policy: str, index: int, statement: Statement, *, resource_policy: bool
) -> StatementVerdict:
    context = request._context
    principal = (
        statement.matches_principal(request._identities, request.principal.account_id) != "none"
        if resource_policy
        else True
    )
    return StatementVerdict(
        policy=policy,
        index=index,
        sid=statement.sid,
        effect=statement.effect,
        principal=principal,
        action=statement.matches_action(request.action, context),
        resource=statement.matches_resource(request.resource, context),
        conditions=statement.conditions_hold(context),
    )


def explain(
    request: AuthorizationRequest,
    identity_policies: Sequence[tuple[str, PolicyDocument]],
    resource_policy: tuple[str, PolicyDocument] | None,
    *,
    is_account_root: bool = False,
) -> Explanation:
    """The decision on ``request`` and a verdict for each statement of the named policies, in order."""
    decision = evaluate(
        request,
        [document for _, document in identity_policies],
        resource_policy[1] if resource_policy else None,
        is_account_root=is_account_root,
    )
    verdicts = [
        _verdict(request, name, index, statement, resource_policy=False)
        for name, document in identity_policies
        for index, statement in enumerate(document.statements)
    ]
    if resource_policy is not None:
        name, document = resource_policy
        verdicts.extend(
            _verdict(request, name, index, statement, resource_policy=True)
            for index, statement in enumerate(document.statements)
        )
    message = None if decision.allowed else decision.denial_message(request)
    return Explanation(decision, tuple(verdicts), message)
