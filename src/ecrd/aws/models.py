"""The botocore service models of the APIs ecrd serves: the contract for every request and response."""

from __future__ import annotations

import gzip
import json
import os
from functools import cache
from typing import Any, Final

import botocore.loaders
import botocore.model

from ecrd.aws.extensions import extended

ECR_TARGET_PREFIX: Final = "AmazonEC2ContainerRegistry_V20150921"
QUERY_NAMESPACES: Final = {
    "iam": "https://iam.amazonaws.com/doc/2010-05-08/",
    "sts": "https://sts.amazonaws.com/doc/2011-06-15/",
}


# Keys of a model that only document it: two thirds of its size in memory, read by nothing here.
DOCUMENTATION_KEYS: Final = ("documentation", "documentationUrl")


class _ModelFileLoader(botocore.loaders.JSONFileLoader):  # type: ignore[misc]  # botocore is untyped
    """botocore's model files, read without their documentation as they are parsed: every server worker holds
    the models of the five services it serves, three times their size as botocore loads them, ~2 MB without the
    prose."""

    def load_file(self, file_path: str) -> Any:
        for extension, opener in ((".json", open), (".json.gz", gzip.open)):
            if os.path.isfile(file_path + extension):
                with opener(file_path + extension, "rb") as fh:
                    return json.loads(fh.read(), object_hook=_without_documentation)
        return None


def _without_documentation(obj: dict[str, Any]) -> dict[str, Any]:
    for key in DOCUMENTATION_KEYS:
        # Prose is a string; a structure member of that name (none today) would map to a dict and stays.
        if isinstance(obj.get(key), str):
            del obj[key]
    return obj


@cache
def service_model(name: str) -> Any:
    """Loaded once per process: parsing a model costs tens of milliseconds. Read as a botocore session reads it
    (the same search path, the newest API version), without building a session: the session's modules (the
    HTTP client, credential providers) are megabytes a server never uses."""
    return botocore.model.ServiceModel(model_data(name), service_name=name)


def model_data(name: str) -> dict[str, Any]:
    """The model as ecrd serves it: botocore's, with ecrd's own operations (``ecrd.aws.extensions``)."""
    data = botocore.loaders.Loader(file_loader=_ModelFileLoader()).load_service_model(name, "service-2")
    return extended(name, data)


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
