"""Strict checks of wire JSON against a botocore shape: no unknown members, required ones present, types,
enums and lengths as the model says. Used by the contract tests on every response ecrd sends."""

from __future__ import annotations

import json
from typing import Any


def check_shape(shape: Any, value: Any, path: str = "$") -> list[str]:
    problems: list[str] = []
    kind = shape.type_name
    if kind == "structure":
        if not isinstance(value, dict):
            return [f"{path}: expected an object, got {type(value).__name__}"]
        for name in value:
            if name not in shape.members:
                problems.append(f"{path}.{name}: not a member of {shape.name}")
        for name in shape.required_members:
            if name not in value:
                problems.append(f"{path}.{name}: required member missing")
        for name, member in shape.members.items():
            if name in value and value[name] is not None:
                problems.extend(check_shape(member, value[name], f"{path}.{name}"))
    elif kind == "list":
        if not isinstance(value, list):
            return [f"{path}: expected a list"]
        for i, item in enumerate(value):
            problems.extend(check_shape(shape.member, item, f"{path}[{i}]"))
    elif kind == "map":
        if not isinstance(value, dict):
            return [f"{path}: expected a map"]
        for k, v in value.items():
            problems.extend(check_shape(shape.value, v, f"{path}.{k}"))
    elif kind == "string":
        if not isinstance(value, str):
            return [f"{path}: expected a string"]
        enum = getattr(shape, "enum", None)
        if enum and value not in enum:
            problems.append(f"{path}: {value!r} not in {enum}")
        if "min" in shape.metadata and len(value) < shape.metadata["min"]:
            problems.append(f"{path}: shorter than {shape.metadata['min']}")
        if "max" in shape.metadata and len(value) > shape.metadata["max"]:
            problems.append(f"{path}: longer than {shape.metadata['max']}")
    elif kind in ("integer", "long") and (not isinstance(value, int) or isinstance(value, bool)):
        problems.append(f"{path}: expected an integer")
    elif kind == "boolean" and not isinstance(value, bool):
        problems.append(f"{path}: expected a boolean")
    elif kind == "timestamp" and (not isinstance(value, int | float) or isinstance(value, bool)):
        problems.append(f"{path}: expected epoch seconds")
    return problems


class ResponseChecks:
    """Watches a boto3 client's calls: every raw response body is checked against its operation's output shape
    (``problems``), and the operations called are recorded (``seen``)."""

    def __init__(self, client: Any, service: str) -> None:
        self.problems: list[str] = []
        self.seen: set[str] = set()
        client.meta.events.register(f"after-call.{service}", self._check)

    def _check(self, http_response: Any, parsed: Any, model: Any, **_: Any) -> None:
        self.seen.add(model.name)
        if http_response.status_code != 200:
            self.problems.append(f"{model.name}: HTTP {http_response.status_code} {http_response.content[:300]!r}")
            return
        body = json.loads(http_response.content or b"{}")
        if model.output_shape is None:
            if body != {}:
                self.problems.append(f"{model.name}: has no output shape but answered {body}")
            return
        self.problems.extend(f"{model.name}: {p}" for p in check_shape(model.output_shape, body))
