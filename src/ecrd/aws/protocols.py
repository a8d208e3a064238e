"""The AWS wire protocols' envelopes: JSON 1.1 and Query responses, and the one renderer of each's errors."""

from __future__ import annotations

import json
from typing import Any

from starlette.responses import Response

from ecrd.aws.models import QUERY_NAMESPACES, error_status
from ecrd.aws.shapes import to_json, to_xml, xml_text
from ecrd.errors import AuthenticationError, EcrdError, InternalError, PayloadTooLarge

JSON_CONTENT_TYPE = "application/x-amz-json-1.1"
REQUEST_ID_HEADER = "x-amzn-RequestId"


def json_response(output_shape: Any, result: dict[str, Any], request_id: str) -> Response:
    body = json.dumps(to_json(output_shape, result) if output_shape is not None else {}, separators=(",", ":"))
    return Response(body.encode(), media_type=JSON_CONTENT_TYPE, headers={REQUEST_ID_HEADER: request_id})


def render_json_error(exc: EcrdError, request_id: str) -> Response:
    """AWS JSON 1.1 errors: ``__type`` names the exception class boto3 raises."""
    body: dict[str, Any] = {"__type": exc.aws_type, "message": exc.message, **exc.extra_fields()}
    return Response(
        json.dumps(body).encode(),
        status_code=exc.aws_status,
        media_type=JSON_CONTENT_TYPE,
        headers={REQUEST_ID_HEADER: request_id, "x-amzn-ErrorType": exc.aws_type},
    )


def query_response(
    service: str, operation: str, output_shape: Any, result: dict[str, Any], request_id: str
) -> Response:
    namespace = QUERY_NAMESPACES[service]
    inner = to_xml(output_shape, result, f"{operation}Result") if output_shape is not None else ""
    body = (
        f'<{operation}Response xmlns="{namespace}">{inner}'
        f"<ResponseMetadata><RequestId>{request_id}</RequestId></ResponseMetadata></{operation}Response>"
    )
    return Response(body.encode(), media_type="text/xml", headers={REQUEST_ID_HEADER: request_id})


def render_query_error(exc: EcrdError, service: str, request_id: str) -> Response:
    """AWS Query errors: ``<ErrorResponse>`` with the code botocore maps to an exception class."""
    namespace = QUERY_NAMESPACES.get(service, QUERY_NAMESPACES["iam"])
    server_fault = exc.aws_status >= 500
    status = error_status(service, exc.query_code) if service in QUERY_NAMESPACES and not server_fault else None
    if status is None:
        if server_fault:
            status = exc.aws_status
        else:
            status = 403 if isinstance(exc, AuthenticationError) or exc.query_code == "AccessDenied" else 400
            if isinstance(exc, PayloadTooLarge):
                status = exc.aws_status  # 413: HTTP's own word for a body refused by its size
    # A server fault is the Receiver's: clients retry those, and never a Sender's.
    fault = "Receiver" if server_fault else "Sender"
    body = (
        f'<ErrorResponse xmlns="{namespace}"><Error><Type>{fault}</Type><Code>{xml_text(exc.query_code)}</Code>'
        f"<Message>{xml_text(exc.message)}</Message></Error><RequestId>{request_id}</RequestId></ErrorResponse>"
    )
    return Response(body.encode(), status_code=status, media_type="text/xml", headers={REQUEST_ID_HEADER: request_id})


def render_internal_error(protocol: str, service: str, request_id: str) -> Response:
    error = InternalError("An internal error occurred. Quote request id " + request_id)
    if protocol == "json":
        return render_json_error(error, request_id)
    return render_query_error(error, service, request_id)
