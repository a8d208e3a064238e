"""IAM policy documents: parsing and validating policy JSON into frozen, pre-compiled values.

``parse_policy`` is the one way text becomes a ``PolicyDocument``; every problem it finds is a
``MalformedPolicyDocument`` whose message names the element at fault, e.g.
``Invalid policy document: Statement[1]: missing Effect``. Statements are numbered from 0; a ``Statement``
given as a single object is called ``Statement``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Final, Literal, NoReturn, cast

from ecrd.errors import MalformedPolicyDocument
from ecrd.policy.conditions import Condition, PatternSet, RequestContext

__all__ = [
    "POLICY_VERSIONS",
    "Effect",
    "PolicyDocument",
    "PolicyKind",
    "PrincipalMatch",
    "PrincipalSet",
    "Statement",
    "parse_policy",
]

PolicyKind = Literal["identity", "resource"]
Effect = Literal["Allow", "Deny"]
PrincipalMatch = Literal["none", "account", "direct"]
"""How a principal is named: not at all, through its account (a delegation), or itself (or by ``*``)."""

POLICY_VERSIONS: Final = ("2012-10-17", "2008-10-17")
# IAM: policy variables are recognized only in policies whose Version is 2012-10-17; in older versions
# "${aws:username}" is literal text.
_VARIABLES_VERSION: Final = "2012-10-17"
# IAM: a policy without a Version element is evaluated as version 2008-10-17.
_DEFAULT_VERSION: Final = "2008-10-17"

_DOCUMENT_KEYS: Final = frozenset({"Version", "Id", "Statement"})
_STATEMENT_KEYS: Final = frozenset(
    {
        "Sid",
        "Effect",
        "Action",
        "NotAction",
        "Resource",
        "NotResource",
        "Principal",
        "NotPrincipal",
        "Condition",
    }
)
_UNIQUE_ID: Final = re.compile(r"(?:AIDA|AROA)[A-Z0-9]{8,}")
_PRINCIPAL_TYPES: Final = frozenset({"AWS", "Service", "Federated", "CanonicalUser"})

# "service:Action": the service prefix is fixed text; the action part may use the * and ? wildcards.
_ACTION: Final = re.compile(r"\*|[A-Za-z0-9-]+:[A-Za-z0-9_*?-]+")
_ACCOUNT_ID: Final = re.compile(r"[0-9]{12}")
_ACCOUNT_ROOT_ARN: Final = re.compile(r"arn:[a-z0-9-]+:iam::([0-9]{12}):root")
_PRINCIPAL_ARN: Final = re.compile(r"arn:[a-z0-9-]+:(?:iam|sts)::[0-9]{12}:[^*?]+")


# -- values ----------------------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class PrincipalSet:
    """The principals named by a Principal or NotPrincipal element.

    ``everyone`` is the bare ``"Principal": "*"`` form. In ``aws``, ``"*"`` means every AWS principal, a
    12-digit account ID or ``arn:aws:iam::<account>:root`` names the account (IAM: this "delegates
    authority to the account"; it does not mean only the root user), anything else is a user, role or
    session ARN matched exactly (IAM allows no wildcards in principal ARNs).
    """

    aws: tuple[str, ...] = ()
    service: tuple[str, ...] = ()
    federated: tuple[str, ...] = ()
    canonical_user: tuple[str, ...] = ()
    everyone: bool = False
    _any_aws: bool = field(init=False, repr=False, compare=False)
    _accounts: frozenset[str] = field(init=False, repr=False, compare=False)
    _arns: frozenset[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        accounts: set[str] = set()
        arns: set[str] = set()
        for entry in self.aws:
            root = _ACCOUNT_ROOT_ARN.fullmatch(entry)
            if _ACCOUNT_ID.fullmatch(entry):
                accounts.add(entry)
            elif root is not None:
                accounts.add(root.group(1))
            elif entry != "*":
                arns.add(entry)
        object.__setattr__(self, "_any_aws", self.everyone or "*" in self.aws)
        object.__setattr__(self, "_accounts", frozenset(accounts))
        object.__setattr__(self, "_arns", frozenset(arns))

    def match(self, identities: Sequence[str], account_id: str) -> PrincipalMatch:
        """How this set names the IAM principal known by ``identities`` (ARN and aliases) in ``account_id``.

        Service, federated and canonical-user entries never name an IAM principal.
        """
        if self._any_aws or any(identity in self._arns for identity in identities):
            return "direct"
        if account_id in self._accounts:
            return "account"
        return "none"


@dataclass(frozen=True, kw_only=True)
class Statement:
    """One policy statement, with its Action, Resource and condition matchers compiled at construction.

    Exactly one of ``actions``/``not_actions`` is set; at most one of ``resources``/``not_resources`` and
    of ``principals``/``not_principals``. Neither resource field set means the resource being accessed (an
    ECR repository policy has no Resource: the repository is implied).
    """

    sid: str | None = None
    effect: Effect
    actions: tuple[str, ...] | None = None
    not_actions: tuple[str, ...] | None = None
    resources: tuple[str, ...] | None = None
    not_resources: tuple[str, ...] | None = None
    principals: PrincipalSet | None = None
    not_principals: PrincipalSet | None = None
    conditions: tuple[Condition, ...] = ()
    policy_variables: bool = True
    _action_patterns: PatternSet = field(init=False, repr=False, compare=False)
    _resource_patterns: PatternSet | None = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if (self.actions is None) == (self.not_actions is None):
            raise ValueError("a statement needs exactly one of actions and not_actions")
        if self.resources is not None and self.not_resources is not None:
            raise ValueError("a statement takes at most one of resources and not_resources")
        if self.principals is not None and self.not_principals is not None:
            raise ValueError("a statement takes at most one of principals and not_principals")
        actions = self.actions if self.actions is not None else self.not_actions
        # IAM: action names are case-insensitive; resource ARNs are case-sensitive. Actions hold no variables.
        object.__setattr__(
            self, "_action_patterns", PatternSet(actions or (), case_sensitive=False, policy_variables=False)
        )
        resources = self.resources if self.resources is not None else self.not_resources
        object.__setattr__(
            self,
            "_resource_patterns",
            None
            if resources is None
            else PatternSet(resources, case_sensitive=True, policy_variables=self.policy_variables),
        )

    def matches_action(self, action: str, context: RequestContext) -> bool:
        return self._action_patterns.matches(action, context) != (self.not_actions is not None)

    def matches_resource(self, resource: str, context: RequestContext) -> bool:
        if self._resource_patterns is None:
            return True
        return self._resource_patterns.matches(resource, context) != (self.not_resources is not None)

    def matches_principal(self, identities: Sequence[str], account_id: str) -> PrincipalMatch:
        """How the statement's Principal/NotPrincipal names this principal (``direct`` if it has neither)."""
        if self.principals is not None:
            return self.principals.match(identities, account_id)
        if self.not_principals is not None:
            # NotPrincipal applies to every principal it does not name.
            return "direct" if self.not_principals.match(identities, account_id) == "none" else "none"
        return "direct"

    def conditions_hold(self, context: RequestContext) -> bool:
        # IAM: the operators of a condition block, and the keys under each, are ANDed.
        return all(condition.evaluate(context) for condition in self.conditions)

    @property
    def reads_request_context(self) -> bool:
        """Whether the statement looks at the request's condition keys (a Condition, or a policy variable in
        its Resource): if not, whether it applies depends only on the principal, action and resource."""
        return bool(self.conditions) or (self._resource_patterns is not None and self._resource_patterns.has_variables)


@dataclass(frozen=True)
class PolicyDocument:
    """A parsed policy: its Version, its statements in document order, and its optional Id."""

    version: str
    statements: tuple[Statement, ...]
    id: str | None = None

    @property
    def reads_request_context(self) -> bool:
        """Whether any statement looks at the request's condition keys (time, source address, tags…): if none
        does, the policy's answer for a principal, action and resource is the same on every request."""
        return any(statement.reads_request_context for statement in self.statements)


# -- parsing ---------------------------------------------------------------------------------------------


class _Invalid(Exception):
    """A problem found while parsing, with the path of the element at fault."""

    def __init__(self, where: str, problem: str) -> None:
        super().__init__(f"{where}: {problem}" if where else problem)


def _fail(where: str, problem: str) -> NoReturn:
    raise _Invalid(where, problem)


def _reject_duplicates(pairs: list[tuple[str, object]]) -> dict[str, object]:
    # json.loads silently keeps the last of repeated keys; IAM rejects the document instead.
    result: dict[str, object] = {}
    for key, value in pairs:
        if key in result:
            raise _Invalid("", f"duplicate key '{key}'")
        result[key] = value
    return result


def _reject_constant(name: str) -> NoReturn:
    raise _Invalid("", f"'{name}' is not valid JSON")


def _load(text: str) -> object:
    try:
        return json.loads(text, object_pairs_hook=_reject_duplicates, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        _fail("", f"not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})")
    except (ValueError, RecursionError) as exc:
        # ValueError: an integer too long to convert; RecursionError: nesting deeper than the parser allows.
        _fail("", f"not valid JSON ({type(exc).__name__})")


def _string_list(value: object, where: str, element: str) -> tuple[str, ...]:
    """A string or a non-empty list of strings (how IAM writes Action, Resource and principal values)."""
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list):
        if not value:
            _fail(where, f"{element} must not be empty")
        if all(isinstance(item, str) for item in value):
            return tuple(cast(list[str], value))
    _fail(where, f"{element} must be a string or a list of strings")


def _parse_actions(value: object, where: str, element: str) -> tuple[str, ...]:
    actions = _string_list(value, where, element)
    for action in actions:
        if _ACTION.fullmatch(action) is None:
            _fail(where, f"{element} '{action}' is not of the form 'service:Action' or '*'")
    return actions


def _parse_resources(value: object, where: str, element: str) -> tuple[str, ...]:
    resources = _string_list(value, where, element)
    for resource in resources:
        if resource != "*" and not (resource.startswith("arn:") and resource.count(":") >= 5):
            _fail(where, f"{element} '{resource}' must be '*' or an ARN")
    return resources


def _parse_principal(value: object, where: str, element: str) -> PrincipalSet:
    if value == "*":
        return PrincipalSet(everyone=True)
    if not isinstance(value, dict):
        _fail(where, f'{element} must be "*" or an object such as {{"AWS": ...}}')
    if not value:
        _fail(where, f"{element} must not be empty")
    parts: dict[str, tuple[str, ...]] = {}
    for kind, entries in value.items():
        if kind not in _PRINCIPAL_TYPES:
            _fail(where, f"{element} has unknown principal type '{kind}'")
        names = _string_list(entries, where, f"{element}.{kind}")
        for name in names:
            if not name:
                _fail(where, f"{element}.{kind} must not contain an empty string")
            if kind == "AWS" and not (
                name == "*"
                or _ACCOUNT_ID.fullmatch(name)
                or _PRINCIPAL_ARN.fullmatch(name)
                # IAM shows a deleted principal by its unique id; such a statement matches no one any more.
                or _UNIQUE_ID.fullmatch(name)
            ):
                _fail(where, f"invalid principal '{name}': use '*', an account ID or an IAM/STS ARN")
        parts[kind] = names
    return PrincipalSet(
        aws=parts.get("AWS", ()),
        service=parts.get("Service", ()),
        federated=parts.get("Federated", ()),
        canonical_user=parts.get("CanonicalUser", ()),
    )


def _condition_value(value: object, where: str) -> str:
    # JSON booleans and numbers are written as strings in IAM's canonical form.
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, int | float):
        return json.dumps(value)
    _fail(where, "condition values must be strings, numbers or booleans")


def _parse_conditions(value: object, where: str, policy_variables: bool) -> tuple[Condition, ...]:
    if not isinstance(value, dict):
        _fail(where, "Condition must be an object")
    conditions: list[Condition] = []
    for operator_name, block in value.items():
        if not isinstance(block, dict) or not block:
            _fail(where, f"Condition operator '{operator_name}' must map condition keys to values")
        for key, raw in block.items():
            if not key:
                _fail(where, f"Condition operator '{operator_name}' has an empty condition key")
            items = raw if isinstance(raw, list) else [raw]
            if not items:
                _fail(where, f"Condition '{operator_name}' on '{key}' has no values")
            values = tuple(_condition_value(item, where) for item in items)
            try:
                conditions.append(Condition(operator_name, key, values, policy_variables))
            except ValueError as exc:
                _fail(where, f"Condition: {exc}")
    return tuple(conditions)


def _parse_statement(raw: object, where: str, kind: PolicyKind, policy_variables: bool) -> Statement:
    if not isinstance(raw, dict):
        _fail(where, "must be an object")
    unknown = sorted(set(raw) - _STATEMENT_KEYS)
    if unknown:
        _fail(where, f"unknown element '{unknown[0]}'")

    sid = raw.get("Sid")
    if sid is not None and not isinstance(sid, str):
        _fail(where, "Sid must be a string")

    if "Effect" not in raw:
        _fail(where, "missing Effect")
    effect = raw["Effect"]
    if effect not in ("Allow", "Deny"):
        _fail(where, f"Effect must be 'Allow' or 'Deny', not {json.dumps(effect)}")

    if "Action" in raw and "NotAction" in raw:
        _fail(where, "has both Action and NotAction")
    if "Action" not in raw and "NotAction" not in raw:
        _fail(where, "missing Action")
    actions = _parse_actions(raw["Action"], where, "Action") if "Action" in raw else None
    not_actions = _parse_actions(raw["NotAction"], where, "NotAction") if "NotAction" in raw else None

    if "Resource" in raw and "NotResource" in raw:
        _fail(where, "has both Resource and NotResource")
    if kind == "identity" and "Resource" not in raw and "NotResource" not in raw:
        _fail(where, "missing Resource")
    resources = _parse_resources(raw["Resource"], where, "Resource") if "Resource" in raw else None
    not_resources = _parse_resources(raw["NotResource"], where, "NotResource") if "NotResource" in raw else None

    principals: PrincipalSet | None = None
    not_principals: PrincipalSet | None = None
    if kind == "identity":
        for element in ("Principal", "NotPrincipal"):
            if element in raw:
                _fail(where, f"{element} is not allowed in an identity-based policy")
    else:
        if "Principal" in raw and "NotPrincipal" in raw:
            _fail(where, "has both Principal and NotPrincipal")
        if "Principal" not in raw and "NotPrincipal" not in raw:
            _fail(where, "missing Principal")
        if "Principal" in raw:
            principals = _parse_principal(raw["Principal"], where, "Principal")
        else:
            not_principals = _parse_principal(raw["NotPrincipal"], where, "NotPrincipal")

    conditions = _parse_conditions(raw["Condition"], where, policy_variables) if "Condition" in raw else ()

    try:
        return Statement(
            sid=sid,
            effect=cast(Effect, effect),
            actions=actions,
            not_actions=not_actions,
            resources=resources,
            not_resources=not_resources,
            principals=principals,
            not_principals=not_principals,
            conditions=conditions,
            policy_variables=policy_variables,
        )
    except ValueError as exc:
        # A malformed policy variable in a Resource surfaces when its patterns compile.
        _fail(where, str(exc))


def _parse_document(text: str, kind: PolicyKind) -> PolicyDocument:
    if not isinstance(text, str):
        _fail("", "the policy must be text")
    if not text.strip():
        _fail("", "the policy is empty")
    document = _load(text)
    if not isinstance(document, dict):
        _fail("", "the policy must be a JSON object")
    unknown = sorted(set(document) - _DOCUMENT_KEYS)
    if unknown:
        _fail("", f"unknown element '{unknown[0]}'")

    version = document.get("Version", _DEFAULT_VERSION)
    if version not in POLICY_VERSIONS:
        _fail("Version", f"must be one of {', '.join(POLICY_VERSIONS)}, not {json.dumps(version)}")
    policy_id = document.get("Id")
    if policy_id is not None and not isinstance(policy_id, str):
        _fail("Id", "must be a string")

    if "Statement" not in document:
        _fail("", "missing Statement")
    raw_statements = document["Statement"]
    policy_variables = version == _VARIABLES_VERSION
    statements: list[Statement]
    if isinstance(raw_statements, dict):
        statements = [_parse_statement(raw_statements, "Statement", kind, policy_variables)]
    elif isinstance(raw_statements, list):
        if not raw_statements:
            _fail("Statement", "must not be empty")
        statements = [
            _parse_statement(raw, f"Statement[{index}]", kind, policy_variables)
            for index, raw in enumerate(raw_statements)
        ]
    else:
        _fail("Statement", "must be an object or a list of objects")
    return PolicyDocument(version=cast(str, version), statements=tuple(statements), id=policy_id)


def parse_policy(text: str, *, kind: PolicyKind) -> PolicyDocument:
    """Parse and validate a policy document.

    ``kind="identity"``: a policy attached to a user, group or role; it has no Principal and every statement
    needs Resource or NotResource. ``kind="resource"``: a repository or registry policy; every statement
    needs Principal or NotPrincipal, and Resource may be absent (the resource the policy is attached to).

    Raises ``MalformedPolicyDocument`` for anything else, its message pointing at the problem.
    """
    if kind not in ("identity", "resource"):
        raise ValueError(f"kind must be 'identity' or 'resource', not {kind!r}")
    try:
        return _parse_document(text, kind)
    except _Invalid as exc:
        raise MalformedPolicyDocument(f"Invalid policy document: {exc}") from None


def replace_principal(policy_text: str, arn: str, unique_id: str) -> str:
    """The policy with ``arn`` replaced by ``unique_id`` wherever a Principal or NotPrincipal names it."""
    document = json.loads(policy_text)
    statements = document.get("Statement", [])
    for statement in statements if isinstance(statements, list) else [statements]:
        for element in ("Principal", "NotPrincipal"):
            principal = statement.get(element) if isinstance(statement, dict) else None
            if isinstance(principal, dict) and "AWS" in principal:
                names = principal["AWS"]
                if isinstance(names, str):
                    principal["AWS"] = unique_id if names == arn else names
                elif isinstance(names, list):
                    principal["AWS"] = [unique_id if name == arn else name for name in names]
    return json.dumps(document)
