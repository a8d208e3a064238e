"""Every client-visible error carries codes that exist: the OCI spec's codes, the service models' exception
names, and the common AWS protocol errors — one table, checked against its sources."""

from __future__ import annotations

import pytest

from ecrd import errors
from ecrd.aws.models import service_model

# OCI distribution spec v1.1 error codes, plus those distribution and ECR send that clients know.
OCI_CODES = {
    "BLOB_UNKNOWN",
    "BLOB_UPLOAD_INVALID",
    "BLOB_UPLOAD_UNKNOWN",
    "DIGEST_INVALID",
    "MANIFEST_BLOB_UNKNOWN",
    "MANIFEST_INVALID",
    "MANIFEST_UNKNOWN",
    "NAME_INVALID",
    "NAME_UNKNOWN",
    "SIZE_INVALID",
    "UNAUTHORIZED",
    "DENIED",
    "UNSUPPORTED",
    "TOOMANYREQUESTS",
    "TAG_INVALID",
    "PAGINATION_NUMBER_INVALID",
    "UNKNOWN",
}
# Errors every AWS JSON or Query service can answer with, outside any one model.
COMMON_AWS = {
    "UnknownOperationException",
    "SerializationException",
    "AccessDeniedException",
    "UnrecognizedClientException",
    "InvalidSignatureException",
    "MissingAuthenticationTokenException",
    "IncompleteSignatureException",
    "ExpiredTokenException",
    "ThrottlingException",
    "ValidationException",
    "ServerException",
    "NoSuchEntityException",
}
COMMON_QUERY = {
    "InvalidAction",
    "MalformedQueryString",
    "AccessDenied",
    "InvalidClientTokenId",
    "SignatureDoesNotMatch",
    "MissingAuthenticationToken",
    "IncompleteSignature",
    "RequestExpired",
    "ExpiredToken",
    "Throttling",
    "ValidationError",
    "InternalFailure",
    "InvalidParameterValue",
    "RequestEntityTooLarge",
}


def _all_errors() -> list[type[errors.EcrdError]]:
    found: list[type[errors.EcrdError]] = []
    pending = [errors.EcrdError]
    while pending:
        cls = pending.pop()
        found.append(cls)
        pending.extend(cls.__subclasses__())
    return sorted(set(found), key=lambda c: c.__name__)


def _model_errors(*services: str) -> set[str]:
    names: set[str] = set()
    for service in services:
        for shape in service_model(service).error_shapes:
            names.add(shape.name)
            names.add(shape.metadata.get("error", {}).get("code", shape.name))
    return names


AWS_TYPES = _model_errors("ecr", "kms", "iam", "sts", "secretsmanager") | COMMON_AWS
QUERY_CODES = _model_errors("iam", "sts") | COMMON_QUERY


@pytest.mark.parametrize("error", _all_errors(), ids=lambda c: c.__name__)
def test_error_codes_exist_in_their_protocols(error: type[errors.EcrdError]) -> None:
    assert error.oci_code in OCI_CODES
    assert 400 <= error.oci_status < 600
    assert error.aws_type in AWS_TYPES, f"{error.aws_type} is in no service model"
    assert error.query_code in QUERY_CODES, f"{error.query_code} is in no Query model"


def test_every_error_class_is_named_in_the_module_docstring() -> None:
    doc = errors.__doc__ or ""
    missing = [c.__name__ for c in _all_errors() if c.__name__ not in doc]
    assert missing == []
