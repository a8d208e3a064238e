"""IAM condition operators, and the wildcard and policy-variable matching they share with Action and Resource.

Everything here is compiled once when a policy is parsed; evaluating a condition against a request does no
parsing and compiles no regular expression, except for patterns holding policy variables, whose compiled
form is cached by its final source.
"""

from __future__ import annotations

import base64
import binascii
import enum
import ipaddress
import operator
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from typing import Final, Generic, Literal, Protocol, TypeVar

__all__ = [
    "CONDITION_OPERATORS",
    "Condition",
    "PatternSet",
    "RequestContext",
    "SetQualifier",
    "context_text",
]

SetQualifier = Literal["ForAnyValue", "ForAllValues"]

_MULTI_VALUE_TYPES: Final = (list, tuple, set, frozenset)


# -- request context -----------------------------------------------------------------------------------


def context_text(value: object) -> str:
    """The string form IAM compares a context value as (booleans are ``true``/``false``)."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        moment = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
        return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")
    return str(value)


class RequestContext:
    """A request's condition keys and values, looked up case-insensitively.

    IAM: "Condition key names are not case-sensitive." Keys are folded once here so that every lookup during
    evaluation is one dictionary access.
    """

    __slots__ = ("_values",)

    def __init__(self, values: Mapping[str, object]) -> None:
        self._values: dict[str, object] = {key.lower(): value for key, value in values.items()}

    def values(self, key: str) -> tuple[object, ...]:
        """The values of ``key`` (already lower-cased); empty when the key is absent or an empty set."""
        value = self._values.get(key)
        if value is None:
            return ()
        if isinstance(value, _MULTI_VALUE_TYPES):
            return tuple(item for item in value if item is not None)
        return (value,)

    def variable(self, key: str) -> str | None:
        """The substitution for ``${key}``; None when absent or multivalued (IAM substitutes one value)."""
        value = self._values.get(key)
        if value is None or isinstance(value, _MULTI_VALUE_TYPES):
            return None
        return context_text(value)


# -- wildcards and policy variables ----------------------------------------------------------------------


class _Wild(enum.Enum):
    STAR = "*"
    ONE = "?"


_Token = str | _Wild
_WILDCARD_SPLIT: Final = re.compile(r"([*?])")


def _tokenize(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    for piece in _WILDCARD_SPLIT.split(text):
        if piece == "*":
            tokens.append(_Wild.STAR)
        elif piece == "?":
            tokens.append(_Wild.ONE)
        elif piece:
            tokens.append(piece)
    return tokens


def _glob_source(tokens: Sequence[_Token], any_char: str) -> str:
    """Regex source that fully matches the glob ``tokens``, in time linear in the subject's length.

    A naive translation (``*`` → ``.*``) backtracks exponentially on patterns such as ``*a*a*a*a*b``, and
    repository policies are written by users while evaluation runs on every request. The segments between
    stars have fixed lengths, so matching each one at its leftmost possible position is always safe (the
    classic greedy glob argument); atomic groups make the engine commit to that position.
    """
    segments: list[list[_Token]] = [[]]
    for token in tokens:
        if token is _Wild.STAR:
            segments.append([])
        else:
            segments[-1].append(token)

    def literal(segment: Sequence[_Token]) -> str:
        return "".join(any_char if token is _Wild.ONE else re.escape(str(token)) for token in segment)

    if len(segments) == 1:
        return literal(segments[0])
    head, *middle, tail = segments
    parts = [literal(head)]
    parts.extend(f"(?>{any_char}*?{literal(segment)})" for segment in middle if segment)
    parts.append(f"{any_char}*{literal(tail)}")
    return "".join(parts)


def _arn_source(tokens: Sequence[_Token]) -> str:
    """Regex source for an ARN pattern whose six colon-separated components are matched one by one.

    IAM (ArnLike): "Each of the six colon-delimited components of the ARN is checked separately and each can
    include multi-character match wildcards (*) or single-character match wildcards (?)." So a wildcard does
    not cross a colon, except in the last component (the resource part may itself contain colons).
    """
    components: list[list[_Token]] = [[]]
    for token in tokens:
        if isinstance(token, str) and len(components) < 6 and ":" in token:
            first, *rest = token.split(":", 6 - len(components))
            if first:
                components[-1].append(first)
            for piece in rest:
                components.append([piece] if piece else [])
        else:
            components[-1].append(token)
    last = len(components) - 1
    return ":".join(
        _glob_source(component, "." if index == last else "[^:]") for index, component in enumerate(components)
    )


@lru_cache(maxsize=4096)
def _compile(source: str, flags: int) -> re.Pattern[str]:
    return re.compile(source, flags)


@dataclass(frozen=True)
class _Variable:
    key: str  # lower-cased context key
    default: str | None


@dataclass(frozen=True)
class _Escaped:
    """``${*}``, ``${?}`` and ``${$}``: a literal character where a wildcard or variable would be read."""

    char: str


_TemplatePiece = str | _Variable | _Escaped
_LiteralPart = TypeVar("_LiteralPart")
_VARIABLE_REFERENCE: Final = re.compile(r"\$\{([^}]*)\}")
_VARIABLE_BODY: Final = re.compile(r"\s*([^\s,'][^,']*?)\s*(?:,\s*'([^']*)'\s*)?")


@dataclass(frozen=True)
class _Template:
    """A value holding policy variables (``${aws:username}``), resolved against each request."""

    pieces: tuple[_TemplatePiece, ...]

    def text(self, context: RequestContext) -> str | None:
        """The value with variables substituted; None when a variable has no value and no default."""
        parts = self._substituted(context, lambda literal: (literal,))
        return None if parts is None else "".join(parts)

    def tokens(self, context: RequestContext) -> list[_Token] | None:
        """The value as glob tokens: substituted values are literal text, never wildcards."""
        return self._substituted(context, _tokenize)

    def _substituted(
        self, context: RequestContext, literal: Callable[[str], Iterable[_LiteralPart]]
    ) -> list[_LiteralPart | str] | None:
        """The pieces in order, the template's own text given by ``literal``, each variable by its value (or
        default); None when a variable has neither."""
        out: list[_LiteralPart | str] = []
        for piece in self.pieces:
            if isinstance(piece, str):
                out.extend(literal(piece))
            elif isinstance(piece, _Escaped):
                out.append(piece.char)
            else:
                value = context.variable(piece.key)
                if value is None:
                    value = piece.default
                if value is None:
                    return None
                out.append(value)
        return out


def _parse_template(text: str) -> _Template | None:
    """The template for ``text``, or None when it holds no policy variable.

    Raises ValueError for a ``${...}`` that is not a well-formed variable reference.
    """
    if "${" not in text:
        return None
    pieces: list[_TemplatePiece] = []
    position = 0
    found = False
    for reference in _VARIABLE_REFERENCE.finditer(text):
        found = True
        if reference.start() > position:
            pieces.append(text[position : reference.start()])
        body = reference.group(1)
        if body in ("*", "?", "$"):
            pieces.append(_Escaped(body))
        else:
            parsed = _VARIABLE_BODY.fullmatch(body)
            if parsed is None:
                raise ValueError(f"invalid policy variable '${{{body}}}'")
            pieces.append(_Variable(parsed.group(1).lower(), parsed.group(2)))
        position = reference.end()
    if not found:
        return None
    if position < len(text):
        pieces.append(text[position:])
    return _Template(tuple(pieces))


class PatternSet:
    """A union of wildcard patterns (``*`` and ``?``), compiled once and matched in one regex call.

    Patterns without wildcards are looked up in a set; patterns holding policy variables (when the policy
    version allows them) are rendered per request, their compiled form cached by source.
    """

    __slots__ = ("_arn", "_case_sensitive", "_exact", "_flags", "_match_all", "_regex", "_templates")

    def __init__(
        self,
        patterns: Iterable[str],
        *,
        case_sensitive: bool,
        policy_variables: bool,
        arn: bool = False,
    ) -> None:
        self._case_sensitive = case_sensitive
        self._arn = arn
        # DOTALL: an IAM wildcard matches every character, newlines included.
        self._flags = re.DOTALL | (0 if case_sensitive else re.IGNORECASE)
        exact: set[str] = set()
        sources: list[str] = []
        templates: list[_Template] = []
        match_all = False
        for pattern in patterns:
            template = _parse_template(pattern) if policy_variables else None
            if template is not None:
                templates.append(template)
            elif pattern == "*":
                match_all = True
            elif "*" in pattern or "?" in pattern:
                sources.append(self._source(_tokenize(pattern)))
            else:
                exact.add(pattern if case_sensitive else pattern.lower())
        self._match_all = match_all
        self._exact = frozenset(exact)
        self._regex = re.compile("|".join(f"(?:{s})" for s in sources), self._flags) if sources else None
        self._templates = tuple(templates)

    @property
    def has_variables(self) -> bool:
        """Whether a pattern holds a policy variable: what it matches then depends on the request."""
        return bool(self._templates)

    def _source(self, tokens: Sequence[_Token]) -> str:
        return _arn_source(tokens) if self._arn else _glob_source(tokens, ".")

    def matches(self, value: str, context: RequestContext) -> bool:
        if self._match_all:
            return True
        if (value if self._case_sensitive else value.lower()) in self._exact:
            return True
        if self._regex is not None and self._regex.fullmatch(value) is not None:
            return True
        for template in self._templates:
            tokens = template.tokens(context)
            if tokens is not None and _compile(self._source(tokens), self._flags).fullmatch(value) is not None:
                return True
        return False


# -- value matchers, one per operator family -------------------------------------------------------------


class _ValueMatcher(Protocol):
    def matches(self, value: object, context: RequestContext) -> bool:
        """Whether one context value matches any of the condition's policy values."""
        ...


class _StringEquals:
    __slots__ = ("_fold", "_static", "_templates")

    def __init__(self, values: Sequence[str], policy_variables: bool, *, fold: bool) -> None:
        self._fold = fold
        static: set[str] = set()
        templates: list[_Template] = []
        for value in values:
            template = _parse_template(value) if policy_variables else None
            if template is None:
                static.add(value.casefold() if fold else value)
            else:
                templates.append(template)
        self._static = frozenset(static)
        self._templates = tuple(templates)

    def matches(self, value: object, context: RequestContext) -> bool:
        text = context_text(value)
        if self._fold:
            text = text.casefold()
        if text in self._static:
            return True
        for template in self._templates:
            expected = template.text(context)
            if expected is not None and (expected.casefold() if self._fold else expected) == text:
                return True
        return False


class _StringLike:
    __slots__ = ("_patterns",)

    def __init__(self, values: Sequence[str], policy_variables: bool, *, arn: bool) -> None:
        self._patterns = PatternSet(values, case_sensitive=True, policy_variables=policy_variables, arn=arn)

    def matches(self, value: object, context: RequestContext) -> bool:
        return self._patterns.matches(context_text(value), context)


class _ArnLike(_StringLike):
    __slots__ = ()

    def matches(self, value: object, context: RequestContext) -> bool:
        # Only ARNs (strings) can match an ARN pattern; anything else is a non-match, not an error.
        return isinstance(value, str) and self._patterns.matches(value, context)


# ASCII digits only: in a str pattern \d also matches other scripts' digits.
_NUMBER: Final = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_Ordered = TypeVar("_Ordered", Decimal, datetime)
_Actual = TypeVar("_Actual")
_Expected = TypeVar("_Expected")


def _comparison(name: str) -> Callable[[_Ordered, _Ordered], bool]:
    """The comparison ``context_value <op> policy_value`` that a Numeric* or Date* operator names."""
    comparisons: dict[str, Callable[[_Ordered, _Ordered], bool]] = {
        "eq": operator.eq,
        "lt": operator.lt,
        "le": operator.le,
        "gt": operator.gt,
        "ge": operator.ge,
    }
    return comparisons[name]


def _parse_number(text: str) -> Decimal:
    stripped = text.strip()
    if _NUMBER.fullmatch(stripped) is None:
        raise ValueError(f"'{text}' is not a number")
    return Decimal(stripped)


def _context_number(value: object) -> Decimal | None:
    if isinstance(value, bool):
        return None
    try:
        if isinstance(value, Decimal):
            number = value
        elif isinstance(value, int | float):
            number = Decimal(value)
        elif isinstance(value, str):
            number = _parse_number(value)
        else:
            return None
    except (ValueError, InvalidOperation):
        return None
    # Decimal NaN raises on ordering comparisons; an infinite or NaN context value matches nothing.
    return number if number.is_finite() else None


_EPOCH: Final = re.compile(r"[+-]?[0-9]+(?:\.[0-9]+)?")


def _parse_date(text: str) -> datetime:
    """An ISO 8601 date-time or a POSIX epoch in seconds; a naive date-time is taken as UTC."""
    stripped = text.strip()
    try:
        if _EPOCH.fullmatch(stripped):
            return datetime.fromtimestamp(float(stripped), UTC)
        moment = datetime.fromisoformat(stripped)
    except (ValueError, OverflowError, OSError) as exc:
        raise ValueError(f"'{text}' is not an ISO 8601 date or an epoch time") from exc
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _context_date(value: object) -> datetime | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=UTC)
    if isinstance(value, int | float | Decimal):
        value = str(value)
    if isinstance(value, str):
        try:
            return _parse_date(value)
        except ValueError:
            return None
    return None


class _Compared(Generic[_Actual, _Expected]):
    """The Numeric, Date, Bool, Null, BinaryEquals and IpAddress operators: the context value, read as the
    operator's type (or not at all: no match), compared with each of the policy's values, parsed when the
    policy is."""

    __slots__ = ("_compare", "_read", "_values")

    def __init__(
        self,
        values: Iterable[_Expected],
        read: Callable[[object], _Actual | None],
        compare: Callable[[_Actual, _Expected], bool],
    ) -> None:
        self._values: tuple[_Expected, ...] = tuple(values)
        self._read: Callable[[object], _Actual | None] = read
        self._compare: Callable[[_Actual, _Expected], bool] = compare

    def matches(self, value: object, context: RequestContext) -> bool:
        actual = self._read(value)
        return actual is not None and any(self._compare(actual, expected) for expected in self._values)


def _parse_bool(text: str) -> bool:
    folded = text.strip().lower()
    if folded not in ("true", "false"):
        raise ValueError(f"'{text}' is not true or false")
    return folded == "true"


def _context_bool(value: object) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return _parse_bool(value)
    return None


_Network = ipaddress.IPv4Network | ipaddress.IPv6Network
_Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def _parse_network(text: str) -> _Network:
    try:
        return ipaddress.ip_network(text.strip(), strict=False)
    except ValueError as exc:
        raise ValueError(f"'{text}' is not an IP address or CIDR range") from exc


def _context_address(value: object) -> _Address | None:
    if isinstance(value, ipaddress.IPv4Address | ipaddress.IPv6Address):
        return value
    if isinstance(value, str):
        try:
            return ipaddress.ip_address(value.strip())
        except ValueError:
            return None
    return None


def _in_network(address: _Address, network: _Network) -> bool:
    # ``in`` does not check the IP version, so 0.0.0.1 would otherwise fall inside ::/0.
    return address.version == network.version and address in network


def _parse_base64(text: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except binascii.Error as exc:
        raise ValueError(f"'{text}' is not base64") from exc


def _context_bytes(value: object) -> bytes | None:
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        try:
            return _parse_base64(value)
        except ValueError:
            return None
    return None


# -- the operator table ----------------------------------------------------------------------------------

_MatcherFactory = Callable[[Sequence[str], bool], _ValueMatcher]


@dataclass(frozen=True)
class _OperatorSpec:
    name: str
    negated: bool
    build: _MatcherFactory


def _family(names: dict[str, tuple[bool, _MatcherFactory]]) -> dict[str, _OperatorSpec]:
    return {name.lower(): _OperatorSpec(name, negated, build) for name, (negated, build) in names.items()}


def _string_equals(values: Sequence[str], variables: bool) -> _ValueMatcher:
    return _StringEquals(values, variables, fold=False)


def _string_equals_ignore_case(values: Sequence[str], variables: bool) -> _ValueMatcher:
    return _StringEquals(values, variables, fold=True)


def _string_like(values: Sequence[str], variables: bool) -> _ValueMatcher:
    return _StringLike(values, variables, arn=False)


def _arn_like(values: Sequence[str], variables: bool) -> _ValueMatcher:
    return _ArnLike(values, variables, arn=True)


def _numeric(name: str) -> _MatcherFactory:
    compare: Callable[[Decimal, Decimal], bool] = _comparison(name)
    return lambda values, _variables: _Compared(map(_parse_number, values), _context_number, compare)


def _date(name: str) -> _MatcherFactory:
    compare: Callable[[datetime, datetime], bool] = _comparison(name)
    return lambda values, _variables: _Compared(map(_parse_date, values), _context_date, compare)


def _bool(values: Sequence[str], variables: bool) -> _ValueMatcher:
    return _Compared(map(_parse_bool, values), _context_bool, operator.eq)


def _binary(values: Sequence[str], variables: bool) -> _ValueMatcher:
    return _Compared(map(_parse_base64, values), _context_bytes, operator.eq)


def _ip_address(values: Sequence[str], variables: bool) -> _ValueMatcher:
    return _Compared[_Address, _Network](map(_parse_network, values), _context_address, _in_network)


_OPERATORS: Final[dict[str, _OperatorSpec]] = _family(
    {
        "StringEquals": (False, _string_equals),
        "StringNotEquals": (True, _string_equals),
        "StringEqualsIgnoreCase": (False, _string_equals_ignore_case),
        "StringNotEqualsIgnoreCase": (True, _string_equals_ignore_case),
        "StringLike": (False, _string_like),
        "StringNotLike": (True, _string_like),
        # IAM documents ArnEquals and ArnLike (and their negations) as the same per-component wildcard match.
        "ArnEquals": (False, _arn_like),
        "ArnLike": (False, _arn_like),
        "ArnNotEquals": (True, _arn_like),
        "ArnNotLike": (True, _arn_like),
        "NumericEquals": (False, _numeric("eq")),
        "NumericNotEquals": (True, _numeric("eq")),
        "NumericLessThan": (False, _numeric("lt")),
        "NumericLessThanEquals": (False, _numeric("le")),
        "NumericGreaterThan": (False, _numeric("gt")),
        "NumericGreaterThanEquals": (False, _numeric("ge")),
        "DateEquals": (False, _date("eq")),
        "DateNotEquals": (True, _date("eq")),
        "DateLessThan": (False, _date("lt")),
        "DateLessThanEquals": (False, _date("le")),
        "DateGreaterThan": (False, _date("gt")),
        "DateGreaterThanEquals": (False, _date("ge")),
        "Bool": (False, _bool),
        "BinaryEquals": (False, _binary),
        "IpAddress": (False, _ip_address),
        "NotIpAddress": (True, _ip_address),
        "Null": (False, _bool),
    }
)

CONDITION_OPERATORS: Final[frozenset[str]] = frozenset(spec.name for spec in _OPERATORS.values())
"""The base operator names (each also valid with the ``IfExists`` suffix, except Null, and a set prefix)."""

_QUALIFIERS: Final[dict[str, SetQualifier]] = {"foranyvalue": "ForAnyValue", "forallvalues": "ForAllValues"}
_IF_EXISTS: Final = "ifexists"


def _split_operator(name: str) -> tuple[SetQualifier | None, _OperatorSpec, bool]:
    """(set qualifier, base operator, IfExists) for an operator name, matched case-insensitively."""
    qualifier: SetQualifier | None = None
    base = name
    if ":" in name:
        prefix, _, base = name.partition(":")
        found = _QUALIFIERS.get(prefix.lower())
        if found is None:
            raise ValueError(f"unknown condition operator '{name}'")
        qualifier = found
    folded = base.lower()
    spec = _OPERATORS.get(folded)
    if_exists = False
    if spec is None and folded.endswith(_IF_EXISTS):
        spec = _OPERATORS.get(folded[: -len(_IF_EXISTS)])
        if_exists = spec is not None
    if spec is None:
        raise ValueError(f"unknown condition operator '{name}'")
    if if_exists and spec.name == "Null":
        raise ValueError("the Null operator cannot take the IfExists suffix")
    return qualifier, spec, if_exists


@dataclass(frozen=True)
class Condition:
    """One key of a condition block, under one operator: ``{"<operator>": {"<key>": [<values>]}}``.

    Construction validates and compiles: it raises ValueError when the operator is unknown or a value does
    not fit it (a date for Date*, a CIDR for IpAddress, ...).
    """

    operator: str
    key: str
    values: tuple[str, ...]
    policy_variables: bool = True
    qualifier: SetQualifier | None = field(init=False, repr=False, compare=False)
    if_exists: bool = field(init=False, repr=False, compare=False)
    negated: bool = field(init=False, repr=False, compare=False)
    _key: str = field(init=False, repr=False, compare=False)
    _null: bool = field(init=False, repr=False, compare=False)
    _matcher: _ValueMatcher = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        qualifier, spec, if_exists = _split_operator(self.operator)
        if not self.values:
            raise ValueError(f"condition '{self.operator}' on '{self.key}' has no values")
        canonical = f"{qualifier + ':' if qualifier else ''}{spec.name}{'IfExists' if if_exists else ''}"
        object.__setattr__(self, "operator", canonical)
        object.__setattr__(self, "qualifier", qualifier)
        object.__setattr__(self, "if_exists", if_exists)
        object.__setattr__(self, "negated", spec.negated)
        object.__setattr__(self, "_key", self.key.lower())
        object.__setattr__(self, "_null", spec.name == "Null")
        object.__setattr__(self, "_matcher", spec.build(self.values, self.policy_variables))

    def evaluate(self, context: RequestContext) -> bool:
        present = context.values(self._key)
        if self._null:
            # Null: "true" asks that the key be absent, "false" that it be present.
            return self._matcher.matches(not present, context)
        if not present:
            if self.if_exists:
                return True
            if self.qualifier == "ForAllValues":
                # IAM: ForAllValues "also returns true if there are no context keys in the request".
                return True
            if self.qualifier == "ForAnyValue":
                return False
            # IAM: "If the policy condition requires that the key is not matched, such as StringNotLike or
            # ArnNotLike, and the right key is not present, the condition is true."
            return self.negated
        matcher = self._matcher
        if self.qualifier == "ForAllValues":
            return all(matcher.matches(value, context) != self.negated for value in present)
        if self.qualifier == "ForAnyValue":
            return any(matcher.matches(value, context) != self.negated for value in present)
        # Without a set operator a multivalued key matches when any of its values does; a negated operator
        # holds when none does (the NOR of its values).
        return any(matcher.matches(value, context) for value in present) != self.negated
