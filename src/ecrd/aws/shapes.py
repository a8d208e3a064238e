"""Reading and writing values by botocore shape: input validation, Query form decoding, XML and JSON output.

Validation follows the model's constraints (required members, types, lengths, ranges, enums, patterns) and
reports the first violation in the service's own words, so clients see what AWS would tell them.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import re
from collections.abc import Callable, Mapping
from functools import cache, lru_cache
from typing import Any
from xml.sax.saxutils import escape

import re2  # type: ignore[import-untyped]

from ecrd.errors import EcrdError, InvalidParameter, SerializationError, ValidationError

# Characters XML 1.0 cannot carry, even escaped.
_NOT_XML = re.compile("[^\x09\x0a\x0d\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


class ShapeViolation(Exception):
    def __init__(self, path: str, value: object, constraint: str, *, serialization: bool = False) -> None:
        super().__init__(constraint)
        self.path = path
        self.value = value
        self.constraint = constraint
        self.serialization = serialization


# The models write code points as Java does, "\u0009"; RE2 spells them "\x{0009}". Five or six hex digits
# are one code point: STS's "\u10000-\u10FFFF" is the range of the planes above the BMP.
_JAVA_CODE_POINT = re.compile(r"\\u([0-9A-Fa-f]{4,6})")


def _re2_code_point(match: re.Match[str]) -> str:
    return f"\\x{{{match.group(1)}}}"


def _re2_options() -> Any:
    options = re2.Options()
    # RE2's C++ logs every pattern it cannot parse to file descriptor 2; such a pattern is handled below.
    options.log_errors = False
    return options


_RE2_OPTIONS = _re2_options()


@lru_cache(maxsize=512)
def _pattern(pattern: str) -> Any:
    """The model's pattern compiled by RE2, which matches in linear time: several model patterns backtrack
    exponentially in Python's ``re`` (``(?:[._-]?[a-z0-9]+)*`` on "aaaa…!"), and input is the attacker's."""
    try:
        return re2.compile(_JAVA_CODE_POINT.sub(_re2_code_point, pattern), options=_RE2_OPTIONS)
    except re2.error:
        return None  # a construct RE2 lacks (lookaround, backreference): skip rather than risk a stall


def _check_scalar_constraints(shape: Any, value: Any, path: str) -> None:
    meta = shape.metadata
    if isinstance(value, str | list | dict | bytes):
        size = len(value)
        if "min" in meta and size < meta["min"]:
            raise ShapeViolation(path, value, f"Member must have length greater than or equal to {meta['min']}")
        if "max" in meta and size > meta["max"]:
            raise ShapeViolation(path, value, f"Member must have length less than or equal to {meta['max']}")
    elif isinstance(value, int | float) and not isinstance(value, bool):
        if "min" in meta and value < meta["min"]:
            raise ShapeViolation(path, value, f"Member must have value greater than or equal to {meta['min']}")
        if "max" in meta and value > meta["max"]:
            raise ShapeViolation(path, value, f"Member must have value less than or equal to {meta['max']}")
    if isinstance(value, str):
        enum = getattr(shape, "enum", None)
        if enum and value not in enum:
            raise ShapeViolation(path, value, f"Member must satisfy enum value set: [{', '.join(enum)}]")
        pattern = meta.get("pattern")
        if pattern:
            compiled = _pattern(pattern)
            if compiled is not None and compiled.search(value) is None:
                raise ShapeViolation(path, value, f"Member must satisfy regular expression pattern: {pattern}")


def _member_path(parent: str, name: str) -> str:
    return f"{parent}.{name}" if parent else name


# What an error message shows of a value the model marks sensitive (a secret's value, a password).
SENSITIVE_VALUE = "***"


def convert(shape: Any, value: Any, path: str = "") -> Any:
    """Check ``value`` (decoded JSON or Query form) against ``shape`` and return it in Python types. A value
    the model marks sensitive is never repeated in the error a violation becomes."""
    if not shape.metadata.get("sensitive"):
        return _convert(shape, value, path)
    try:
        return _convert(shape, value, path)
    except ShapeViolation as violation:
        violation.value = SENSITIVE_VALUE
        raise


def _convert(shape: Any, value: Any, path: str) -> Any:
    kind = shape.type_name
    if kind == "structure":
        if not isinstance(value, Mapping):
            raise ShapeViolation(path, value, "Member must be an object", serialization=True)
        out: dict[str, Any] = {}
        for name in shape.required_members:
            if value.get(name) is None:
                raise ShapeViolation(_member_path(path, _lower_first(name)), None, "Member must not be null")
        for name, member_value in value.items():
            member = shape.members.get(name)
            if member is None or member_value is None:
                continue  # AWS ignores unknown members
            out[name] = convert(member, member_value, _member_path(path, _lower_first(name)))
        return out
    if kind == "list":
        if not isinstance(value, list):
            raise ShapeViolation(path, value, "Member must be a list", serialization=True)
        _check_scalar_constraints(shape, value, path)
        return [convert(shape.member, item, f"{path}.{i + 1}.member") for i, item in enumerate(value)]
    if kind == "map":
        if not isinstance(value, Mapping):
            raise ShapeViolation(path, value, "Member must be a map", serialization=True)
        _check_scalar_constraints(shape, value, path)
        return {convert(shape.key, k, path): convert(shape.value, v, f"{path}.{k}") for k, v in value.items()}
    if kind == "string":
        if not isinstance(value, str):
            raise ShapeViolation(path, value, "Member must be a string", serialization=True)
        if "\x00" in value:
            # No AWS string member may hold NUL (and PostgreSQL text cannot store it).
            raise ShapeViolation(path, value.replace("\x00", "\\0"), "Member must not contain the NUL character")
        _check_scalar_constraints(shape, value, path)
        return value
    if kind in ("integer", "long"):
        if isinstance(value, str) and re.fullmatch(r"-?[0-9]{1,19}", value):
            value = int(value)
        if not isinstance(value, int) or isinstance(value, bool):
            raise ShapeViolation(path, value, "Member must be an integer", serialization=True)
        _check_scalar_constraints(shape, value, path)
        return value
    if kind in ("float", "double"):
        try:
            number = float(value) if isinstance(value, str) else value
        except ValueError:
            number = None
        if not isinstance(number, int | float) or isinstance(number, bool):
            raise ShapeViolation(path, value, "Member must be a number", serialization=True)
        _check_scalar_constraints(shape, number, path)
        return number
    if kind == "boolean":
        if isinstance(value, str) and value in ("true", "false"):
            return value == "true"
        if not isinstance(value, bool):
            raise ShapeViolation(path, value, "Member must be a boolean", serialization=True)
        return value
    if kind == "timestamp":
        return _parse_timestamp(value, path)
    if kind == "blob":
        if not isinstance(value, str):
            raise ShapeViolation(path, value, "Member must be base64-encoded data", serialization=True)
        try:
            data = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            raise ShapeViolation(path, "…", "Member must be base64-encoded data", serialization=True) from None
        _check_scalar_constraints(shape, data, path)
        return data
    return value


def _parse_timestamp(value: Any, path: str) -> dt.datetime:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return dt.datetime.fromtimestamp(value, tz=dt.UTC)
    if isinstance(value, str):
        try:
            parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            parsed = None
        if parsed is not None:
            return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)
    raise ShapeViolation(path, value, "Member must be a timestamp", serialization=True)


def _lower_first(name: str) -> str:
    return name[:1].lower() + name[1:]


def validation_error(violation: ShapeViolation, *, protocol: str) -> EcrdError:
    """Word a violation as the service does: ECR (JSON) says InvalidParameterException, the Query
    services say ValidationError; a value of the wrong type is a SerializationException in JSON."""
    shown = violation.value if isinstance(violation.value, str | int | float | bool) else None
    if violation.serialization and protocol == "json":
        return SerializationError(f"Unexpected value at '{violation.path}': {violation.constraint}")
    if protocol == "json":
        return InvalidParameter(
            f"Invalid parameter at '{violation.path}' failed to satisfy constraint: '{violation.constraint}'"
        )
    value_text = "null" if shown is None else str(shown)[:256]
    return ValidationError(
        f"1 validation error detected: Value '{value_text}' at '{violation.path}' failed to satisfy "
        f"constraint: {violation.constraint}"
    )


# -- Query protocol input -------------------------------------------------------------------------------


def query_input(shape: Any, form: Mapping[str, str]) -> dict[str, Any]:
    """Rebuild nested values from flattened Query parameters (``Tags.member.1.Key``), guided by the shape.

    Every dotted prefix of every key is indexed once, so decoding is linear in the size of the form.
    """
    if shape is None:
        return {}
    prefixes: set[str] = set()
    for key in form:
        parts = key.split(".")
        for end in range(1, len(parts)):
            prefixes.add(".".join(parts[:end]))
    return _query_value(shape, form, "", prefixes) or {}


def _query_value(shape: Any, form: Mapping[str, str], key: str, prefixes: set[str]) -> Any:
    kind = shape.type_name
    if kind == "structure":
        out: dict[str, Any] = {}
        for name, member in shape.members.items():
            sub = member.serialization.get("name", name)
            value = _query_value(member, form, f"{key}.{sub}" if key else sub, prefixes)
            if value is not None:
                out[name] = value
        return out or None
    if kind == "list":
        base = key if shape.serialization.get("flattened") else f"{key}.member"
        items = []
        index = 1
        while f"{base}.{index}" in form or f"{base}.{index}" in prefixes:
            items.append(_query_value(shape.member, form, f"{base}.{index}", prefixes))
            index += 1
        if not items and form.get(key) == "":
            return []  # "Name=" is how the Query protocol spells an empty list
        return items or None
    if kind == "map":
        result: dict[str, Any] = {}
        index = 1
        while f"{key}.entry.{index}.key" in form:
            entry = f"{key}.entry.{index}"
            result[form[f"{entry}.key"]] = _query_value(shape.value, form, f"{entry}.value", prefixes)
            index += 1
        return result or None
    return form.get(key)


# -- output ---------------------------------------------------------------------------------------------


def to_json(shape: Any, value: Any) -> Any:
    """Python values → JSON 1.1 values: timestamps as epoch seconds, blobs as base64, absent members left out."""
    if value is None or shape is None:
        return value
    writer = _json_writer(shape)
    return value if writer is None else writer(value)


# Values of these shapes are written as they are: walking into them would cost a call each and change nothing.
_JSON_AS_IS = frozenset({"string", "integer", "long", "boolean", "float", "double"})

_Writer = Callable[[Any], Any]


@cache
def _json_writer(shape: Any) -> _Writer | None:
    """The writer of values of ``shape``, made once per shape (a model's shapes live as long as the process);
    None when its values are written as they are. A response's cost is then one call per value that needs one,
    not a walk of the model for every item of a page."""
    kind = shape.type_name
    if kind in _JSON_AS_IS:
        return None
    if kind == "structure":
        return _StructureWriter(shape)
    if kind == "list":
        return _ListWriter(shape.member)
    if kind == "map":
        return _MapWriter(shape.value)
    if kind == "timestamp":
        return _write_timestamp
    if kind == "blob":
        return _write_blob
    return None


class _StructureWriter:
    __slots__ = ("_members", "_shape")

    def __init__(self, shape: Any) -> None:
        self._shape = shape
        # Filled on first use, not here: a shape may contain itself.
        self._members: dict[str, _Writer | None] | None = None

    def __call__(self, value: Any) -> Any:
        members = self._members
        if members is None:
            members = self._members = {name: _json_writer(m) for name, m in self._shape.members.items()}
        out = {}
        for name, item in value.items():
            if item is None:
                continue
            # A member the model does not know (members.get → None) is written as it is.
            writer = members.get(name)
            out[name] = item if writer is None else writer(item)
        return out


class _ListWriter:
    __slots__ = ("_member",)

    def __init__(self, member: Any) -> None:
        self._member = member

    def __call__(self, value: Any) -> Any:
        writer = _json_writer(self._member)
        if writer is None:
            return list(value)
        return [None if item is None else writer(item) for item in value]


class _MapWriter:
    __slots__ = ("_value",)

    def __init__(self, value_shape: Any) -> None:
        self._value = value_shape

    def __call__(self, value: Any) -> Any:
        writer = _json_writer(self._value)
        if writer is None:
            return dict(value)
        return {key: None if item is None else writer(item) for key, item in value.items()}


def _write_timestamp(value: Any) -> float:
    return value.timestamp() if isinstance(value, dt.datetime) else float(value)


def _write_blob(value: bytes) -> str:
    return base64.b64encode(value).decode()


def to_xml(shape: Any, value: Any, name: str) -> str:
    """Python values → Query protocol XML: lists as <member> items, timestamps in ISO 8601."""
    if value is None:
        return ""
    kind = shape.type_name if shape is not None else "string"
    if kind == "structure":
        inner = "".join(
            to_xml(shape.members.get(k), v, shape.members[k].serialization.get("name", k))
            for k, v in value.items()
            if v is not None and k in shape.members
        )
        return f"<{name}>{inner}</{name}>"
    if kind == "list":
        inner = "".join(to_xml(shape.member, item, "member") for item in value)
        return f"<{name}>{inner}</{name}>"
    if kind == "map":
        inner = "".join(
            f"<entry>{to_xml(shape.key, k, 'key')}{to_xml(shape.value, v, 'value')}</entry>" for k, v in value.items()
        )
        return f"<{name}>{inner}</{name}>"
    if kind == "timestamp":
        moment = value if isinstance(value, dt.datetime) else dt.datetime.fromtimestamp(float(value), tz=dt.UTC)
        text = moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    elif kind == "boolean":
        text = "true" if value else "false"
    elif kind == "blob":
        text = base64.b64encode(value).decode()
    else:
        text = str(value)
    return f"<{name}>{xml_text(text)}</{name}>"


def xml_text(text: str) -> str:
    """Text safe inside an XML element: escaped, and characters XML 1.0 cannot carry at all (they would make
    the whole response unparsable) replaced by U+FFFD."""
    return escape(_NOT_XML.sub("\ufffd", text))
