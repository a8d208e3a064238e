"""The service models a server holds: botocore's, operation for operation and shape for shape, without the prose
(and, beside ECR's, ecrd's own operations of ``ecrd.aws.extensions``, which may replace none of botocore's)."""

from __future__ import annotations

from typing import Any

import botocore.session
import pytest

from ecrd.aws.door import OPERATIONS
from ecrd.aws.extensions import EXTENSIONS
from ecrd.aws.models import service_model

SERVICES = tuple(OPERATIONS)


def _outline(shape: Any, seen: set[str]) -> Any:
    """A shape's structure (type, members, constraints, serialization), recursively, without its documentation."""
    if shape is None:
        return None
    if shape.name in seen:
        return shape.name
    seen = seen | {shape.name}
    outline: dict[str, Any] = {
        "type": shape.type_name,
        "metadata": shape.metadata,
        "serialization": shape.serialization,
        "enum": getattr(shape, "enum", None),
    }
    if shape.type_name == "structure":
        outline["members"] = {name: _outline(member, seen) for name, member in shape.members.items()}
        outline["required"] = shape.required_members
    elif shape.type_name == "list":
        outline["member"] = _outline(shape.member, seen)
    elif shape.type_name == "map":
        outline["key"], outline["value"] = _outline(shape.key, seen), _outline(shape.value, seen)
    return outline


@pytest.mark.parametrize("name", SERVICES)
def test_every_operation_and_error_is_botocores(name: str) -> None:
    ours = service_model(name)
    reference = botocore.session.get_session().get_service_model(name)
    assert ours.metadata == reference.metadata
    own = EXTENSIONS.get(name, {"operations": {}, "shapes": {}})
    assert [op for op in ours.operation_names if op not in own["operations"]] == reference.operation_names
    assert not set(own["operations"]) & set(reference.operation_names)
    for operation in reference.operation_names:
        mine, theirs = ours.operation_model(operation), reference.operation_model(operation)
        assert _outline(mine.input_shape, set()) == _outline(theirs.input_shape, set()), operation
        assert _outline(mine.output_shape, set()) == _outline(theirs.output_shape, set()), operation
    assert [_outline(shape, set()) for shape in ours.error_shapes if shape.name not in own["shapes"]] == [
        _outline(shape, set()) for shape in reference.error_shapes
    ]


@pytest.mark.parametrize("name", SERVICES)
def test_the_models_carry_no_documentation(name: str) -> None:
    def documented(value: Any) -> bool:
        if isinstance(value, dict):
            return isinstance(value.get("documentation"), str) or any(documented(v) for v in value.values())
        if isinstance(value, list):
            return any(documented(v) for v in value)
        return False

    assert not documented(service_model(name)._service_description)
