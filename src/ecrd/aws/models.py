"""The botocore service models of the APIs ecrd serves: the contract for every request and response."""

from __future__ import annotations

from functools import cache
from typing import Any, Final

import botocore.session

ECR_TARGET_PREFIX: Final = "AmazonEC2ContainerRegistry_V20150921"
QUERY_NAMESPACES: Final = {
    "iam": "https://iam.amazonaws.com/doc/2010-05-08/",
    "sts": "https://sts.amazonaws.com/doc/2011-06-15/",
}


@cache
def service_model(name: str) -> Any:
    """Loaded once per process: parsing a model costs tens of milliseconds."""
    return botocore.session.get_session().get_service_model(name)


@cache
def error_status(service: str, code: str) -> int | None:
    """The HTTP status the model gives an error code (Query protocol errors carry it), if any."""
    model = service_model(service)
    for shape in model.error_shapes:
        error = shape.metadata.get("error", {})
        if shape.name == code or error.get("code") == code:
            status = error.get("httpStatusCode")
            return int(status) if status else None
    return None
