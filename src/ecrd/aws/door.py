"""The AWS door: ``POST /`` signed with SigV4, dispatched on the signing service to ECR and KMS (JSON 1.1) or
IAM and STS (Query); every operation checked against its botocore model on the way in and out."""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import logging
from typing import Any
from urllib.parse import parse_qsl

import anyio
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

from ecrd.aws import ecr, iam, kms, sts
from ecrd.aws.context import AwsContext, AwsServices, Operation
from ecrd.aws.models import ECR_TARGET_PREFIX, QUERY_NAMESPACES, service_model
from ecrd.aws.protocols import (
    json_response,
    query_response,
    render_internal_error,
    render_json_error,
    render_query_error,
)
from ecrd.aws.shapes import ShapeViolation, convert, query_input, validation_error
from ecrd.aws.sigv4 import SignedRequest, parse_signed_request, verify_signature
from ecrd.errors import AccessDenied, EcrdError, PayloadTooLarge, SerializationError, UnknownOperation
from ecrd.observability import record_of
from ecrd.services.access import Caller

log = logging.getLogger("ecrd.aws")

# UploadLayerPart carries up to 20 MiB, base64-encoded in JSON: about 27 MiB. Nothing else comes close.
MAX_BODY_BYTES = 28 * 1024 * 1024
# IAM is a global service: clients sign it for us-east-1 whatever region they use.
GLOBAL_SERVICES = {"iam": "us-east-1"}

OPERATIONS: dict[str, dict[str, Operation]] = {
    "ecr": ecr.OPERATIONS,
    "iam": iam.OPERATIONS,
    "sts": sts.OPERATIONS,
    "kms": kms.OPERATIONS,
}
# The JSON 1.1 services and their X-Amz-Target prefixes (each model's targetPrefix). The header picks the
# protocol; the credential scope picks the service, and the prefix must be that service's.
JSON_TARGET_PREFIXES: dict[str, str] = {"ecr": ECR_TARGET_PREFIX, "kms": "TrentService"}


@dataclasses.dataclass(slots=True)
class _Call:
    protocol: str  # "json" | "query"
    service: str
    request_id: str


class AwsDoor:
    def __init__(self, services: AwsServices) -> None:
        self.services = services
        for name in OPERATIONS:
            service_model(name)  # load the models now, not on the first request

    async def handle(self, request: Request) -> Response:
        call = _Call(
            protocol="json" if "x-amz-target" in request.headers else "query",
            service="ecr" if "x-amz-target" in request.headers else "iam",
            request_id=record_of(request.scope).request_id,
        )
        try:
            return await self._handle(request, call)
        except ClientDisconnect:
            raise
        except EcrdError as exc:
            record_of(request.scope).error_code = exc.aws_type if call.protocol == "json" else exc.query_code
            if call.protocol == "json":
                return render_json_error(exc, call.request_id)
            return render_query_error(exc, call.service, call.request_id)
        except Exception:
            log.exception("internal error in the AWS API (request id %s)", call.request_id)
            return render_internal_error(call.protocol, call.service, call.request_id)

    async def _handle(self, request: Request, call: _Call) -> Response:
        if request.method != "POST":
            raise UnknownOperation("The AWS API answers POST requests on /")
        body = await _read_body(request)
        signed = parse_signed_request(request.method, request.headers.items(), request.scope.get("query_string", b""))
        if signed.service in OPERATIONS:
            call.service = signed.service
        caller = await anyio.to_thread.run_sync(self._authenticate, request, signed, body)
        client = request.client
        caller = dataclasses.replace(
            caller, source_ip=client.host if client else "", secure_transport=request.url.scheme == "https"
        )
        record_of(request.scope).principal = caller.arn
        context = AwsContext(caller, self.services, call.request_id, record_of(request.scope))
        if call.protocol == "json":
            return await self._json(request, body, context, call.service)
        return await self._query(body, context, call.service)

    def _authenticate(self, request: Request, signed: SignedRequest, body: bytes) -> Caller:
        caller, secret = self.services.identity.authenticate_access_key(signed.access_key_id, signed.security_token)
        expected_region = self.services.settings.region
        if signed.service in GLOBAL_SERVICES and signed.region == GLOBAL_SERVICES[signed.service]:
            expected_region = signed.region
        verify_signature(
            signed,
            method=request.method,
            path=request.scope.get("raw_path") or request.url.path,
            query_string=request.scope.get("query_string", b""),
            headers=request.headers.items(),
            payload_sha256=hashlib.sha256(body).hexdigest(),
            secret_access_key=secret,
            now=dt.datetime.now(dt.UTC),
            expected_region=expected_region,
            allowed_services=OPERATIONS.keys(),
        )
        return caller

    async def _json(self, request: Request, body: bytes, context: AwsContext, service: str) -> Response:
        target = request.headers["x-amz-target"]
        prefix, _, name = target.partition(".")
        operation = OPERATIONS[service].get(name) if JSON_TARGET_PREFIXES.get(service) == prefix else None
        if operation is None:
            raise UnknownOperation(f"Operation {target[:100]} is not supported.")
        model = service_model(service).operation_model(name)
        try:
            raw = _json_loads(body) if body.strip() else {}
            params = convert(model.input_shape, raw) if model.input_shape is not None else {}
        except ShapeViolation as violation:
            # ECR words a model violation as InvalidParameterException; KMS, as the Query services do, as
            # ValidationException ("1 validation error detected: ..."). A value of the wrong type is a
            # SerializationException in both.
            wording = "json" if service == "ecr" or violation.serialization else "query"
            raise validation_error(violation, protocol=wording) from None
        _annotate(context, f"{service}:{name}", params)
        result = await anyio.to_thread.run_sync(operation, context, params)
        return json_response(model.output_shape, result, context.request_id)

    async def _query(self, body: bytes, context: AwsContext, service: str) -> Response:
        try:
            form = dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True))
        except UnicodeDecodeError:
            raise SerializationError("The request body is not form-encoded UTF-8") from None
        action = form.pop("Action", "")
        operation = OPERATIONS[service].get(action) if service in QUERY_NAMESPACES else None
        if operation is None:
            raise UnknownOperation(f"Could not find operation {action[:100]} for version {form.get('Version', '')}")
        model = service_model(service).operation_model(action)
        try:
            params = convert(model.input_shape, query_input(model.input_shape, form)) if model.input_shape else {}
        except ShapeViolation as violation:
            raise validation_error(violation, protocol="query") from None
        _annotate(context, f"{service}:{action}", params)
        caller = context.caller
        if service == "iam" and caller.expires_at is not None and ":assumed-role/" not in caller.arn:
            # IAM refuses credentials from GetSessionToken obtained without MFA: a one-hour session must not
            # be able to mint permanent keys or change policies.
            raise AccessDenied(
                f"User: {caller.arn} is not authorized to perform: iam:{action} with temporary credentials "
                "obtained without MFA (GetSessionToken)"
            )
        result = await anyio.to_thread.run_sync(operation, context, params)
        return query_response(service, action, model.output_shape, result, context.request_id)


def _annotate(context: AwsContext, action: str, params: dict[str, Any]) -> None:
    context.record.action = action
    repository = params.get("repositoryName")
    context.record.repository = repository if isinstance(repository, str) else None


async def _read_body(request: Request) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise PayloadTooLarge(f"Request body exceeds the limit of {MAX_BODY_BYTES} bytes")
    parts: list[bytes] = []
    total = 0
    async for chunk in request.stream():
        total += len(chunk)
        if total > MAX_BODY_BYTES:
            raise PayloadTooLarge(f"Request body exceeds the limit of {MAX_BODY_BYTES} bytes")
        parts.append(chunk)
    return b"".join(parts)


def _json_loads(body: bytes) -> Any:
    import json

    try:
        return json.loads(body)
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise SerializationError("Start of structure or map found where not expected.") from None
