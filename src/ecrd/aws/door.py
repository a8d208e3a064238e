"""The AWS door: ``POST /`` signed with SigV4, dispatched on the signing service to ECR, KMS and Secrets Manager
(JSON 1.1) or IAM and STS (Query); callers authenticated before their bodies are read, each body bounded by what
its operation needs, and every operation checked against its botocore model on the way in and out. A request's
blocking work takes one worker-thread hop after its body is read (two on PostgreSQL, where the caller's key is
looked up before the body), none on SQLite for the operations that only read; it all reads one access
generation."""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import logging
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from typing import Any, TypeVar
from urllib.parse import parse_qsl

import anyio
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

from ecrd.aws import ecr, iam, kms, secretsmanager, sts
from ecrd.aws.context import AwsContext, AwsRegistries, Operation
from ecrd.aws.models import ECR_TARGET_PREFIX, QUERY_NAMESPACES, service_model
from ecrd.aws.protocols import (
    json_response,
    query_response,
    render_internal_error,
    render_json_error,
    render_query_error,
)
from ecrd.aws.shapes import ShapeViolation, convert, query_input, validation_error
from ecrd.aws.sigv4 import SignedRequest, check_scope_and_time, parse_signed_request, verify_signature
from ecrd.domain.manifests import MAX_MANIFEST_BYTES
from ecrd.domain.registries import RegistryId
from ecrd.errors import AccessDenied, EcrdError, PayloadTooLarge, SerializationError, UnknownOperation
from ecrd.observability import record_of
from ecrd.services.access import Caller, CallerKind

log = logging.getLogger("ecrd.aws")
T = TypeVar("T")

# Request bodies are bounded per operation, and the bound is known before a byte of the body is read: JSON 1.1
# names its operation in X-Amz-Target; Query names it inside the body, so one bound covers all of IAM and STS.
# Room for an operation's small members and the JSON or form syntax around its large one:
BODY_ENVELOPE_BYTES = 64 * 1024
# ECR's UploadLayerPart: a part of up to 20 MiB (the model's LayerPartBlob max), base64-encoded.
UPLOAD_LAYER_PART_BODY_BYTES = 4 * -(-20 * 1024 * 1024 // 3) + BODY_ENVELOPE_BYTES
# ECR's PutImage: a manifest of up to 4 MiB of UTF-8 as a JSON string. A manifest is JSON itself, so its only
# control characters are whitespace (two bytes escaped, "\n"), and botocore writes every non-ASCII character
# as "\uXXXX" (six bytes for two UTF-8 bytes, twelve for four): at most three bytes on the wire per byte.
PUT_IMAGE_BODY_BYTES = 3 * MAX_MANIFEST_BYTES + BODY_ENVELOPE_BYTES
# Every other JSON 1.1 operation of ECR, KMS and Secrets Manager. The largest members are policies: a KMS key
# policy of up to 32 KiB (KMS's quota, which the key service enforces), an ECR repository or registry policy of
# up to 10,240 characters and a secret's resource policy of up to 20,480, each at most six bytes once
# JSON-escaped ("\u00e9"): 192 KiB, plus the envelope.
JSON_BODY_BYTES = 256 * 1024
# IAM and STS (Query): the largest members are policy documents, which the IAM model allows up to 131,072
# characters (IAM's own quotas, 2,048 to 10,240 characters, do not count whitespace). Form-encoded, each ASCII
# character that is not unreserved becomes "%XX", three bytes: 384 KiB, plus the envelope. A document at the
# model's maximum made mostly of Latin-1 letters (six bytes each) is refused as too large.
QUERY_BODY_BYTES = 512 * 1024
# Secrets Manager's value writers: a SecretString of up to 65,536 characters, each at most six bytes once
# JSON-escaped, beside members as large as any other operation's.
SECRET_VALUE_BODY_BYTES = 6 * 65536 + JSON_BODY_BYTES
JSON_BODY_LIMITS: dict[tuple[str, str], int] = {
    ("ecr", "UploadLayerPart"): UPLOAD_LAYER_PART_BODY_BYTES,
    ("ecr", "PutImage"): PUT_IMAGE_BODY_BYTES,
    **{
        ("secretsmanager", name): SECRET_VALUE_BODY_BYTES for name in ("CreateSecret", "PutSecretValue", "UpdateSecret")
    },
}
# IAM is a global service: clients sign it for us-east-1 whatever region they use.
GLOBAL_SERVICES = {"iam": "us-east-1"}

OPERATIONS: dict[str, dict[str, Operation]] = {
    "ecr": ecr.OPERATIONS,
    "iam": iam.OPERATIONS,
    "sts": sts.OPERATIONS,
    "kms": kms.OPERATIONS,
    "secretsmanager": secretsmanager.OPERATIONS,
}
# Operations that only read the metadata store (never write, never wait on a lock or another service), with
# bounded input: on SQLite they are answered on the event loop (see AwsDoor._blocking). Others take one hop.
INLINE_OPERATIONS: frozenset[tuple[str, str]] = frozenset(
    {
        ("ecr", "GetAuthorizationToken"),
        ("ecr", "DescribeImages"),
        ("ecr", "ListImages"),
        ("ecr", "DescribeRepositories"),
    }
)
# The JSON 1.1 services and their X-Amz-Target prefixes (each model's targetPrefix). The header picks the
# protocol; the credential scope picks the service, and the prefix must be that service's.
JSON_TARGET_PREFIXES: dict[str, str] = {
    "ecr": ECR_TARGET_PREFIX,
    "kms": "TrentService",
    "secretsmanager": "secretsmanager",
}


@dataclasses.dataclass(slots=True)
class _Call:
    protocol: str  # "json" | "query"
    service: str
    request_id: str
    # Whether the request's body has been read to its end (a refusal before then closes the connection).
    body_read: bool = False
    # The request's headers as (name, value) pairs, decoded once for parsing and verifying the signature.
    headers: list[tuple[str, str]] = dataclasses.field(default_factory=list)


class AwsDoor:
    def __init__(self, registries: AwsRegistries, *, clock: Callable[[], float]) -> None:
        self.registries = registries
        # The default registry's: what does not depend on the registry (the store's kind, the generations, the
        # authenticator of every account's keys) is read from it.
        self.services = registries.default
        # Wall time for the SigV4 request-time check (AWS allows 15 minutes either way): the application's clock.
        self.clock = clock
        for name in OPERATIONS:
            service_model(name)  # load the models now, not on the first request

    async def handle(self, request: Request) -> Response:
        call = _Call(
            protocol="json" if "x-amz-target" in request.headers else "query",
            service="ecr" if "x-amz-target" in request.headers else "iam",
            request_id=record_of(request.scope).request_id,
        )
        response = await self._respond(request, call)
        if not call.body_read and _carries_body(request):
            # A request refused before its body was read leaves that body unread on the connection: the
            # connection ends with this response, so the server never reads it and a pooling client does not
            # send its next request into it.
            response.headers["Connection"] = "close"
        return response

    async def _respond(self, request: Request, call: _Call) -> Response:
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
        # Authentication comes before the body: a request without a signature, with a foreign scope, a stale
        # date or an unknown key is refused without a byte of its body read.
        call.headers = request.headers.items()
        signed = parse_signed_request(request.method, call.headers, request.scope.get("query_string", b""))
        if signed.service in OPERATIONS:
            call.service = signed.service
        with self._unit_of_work():
            caller, secret = await self._blocking(self.services.inline_reads, self._identify, signed)
            body = await _read_body(request, _body_limit(request, call))
            call.body_read = True
            client = request.client
            caller = dataclasses.replace(
                caller, source_ip=client.host if client else "", secure_transport=request.scope.get("scheme") == "https"
            )
            record_of(request.scope).principal = caller.arn
            services = self.registries.aws(RegistryId(caller.account_id, self._registry_region(signed)))
            context = AwsContext(caller, services, call.request_id, record_of(request.scope))
            # The rest — signature, input, the operation, its answer — is one unit of blocking work.
            inline = self.services.inline_reads and (call.service, _json_operation_name(request)) in INLINE_OPERATIONS
            return await self._blocking(inline, self._answer, request, signed, secret, body, context, call)

    def _unit_of_work(self) -> AbstractContextManager[None]:
        generations = self.services.generations
        return nullcontext() if generations is None else generations.pinned()

    @staticmethod
    async def _blocking(inline: bool, func: Callable[..., T], *args: Any) -> T:
        """Run blocking service code: in a worker thread, or on the event loop when ``inline``. On SQLite the
        cached lookups of authentication and the reads of INLINE_OPERATIONS cost less than the hop to a worker
        thread and back (in WAL mode a read never waits for a writer); everything that may write, or wait,
        takes the hop."""
        if inline:
            return func(*args)
        return await anyio.to_thread.run_sync(func, *args)

    def _answer(
        self, request: Request, signed: SignedRequest, secret: str, body: bytes, context: AwsContext, call: _Call
    ) -> Response:
        self._verify(request, signed, secret, body, call.headers)
        if call.protocol == "json":
            return self._json(request, body, context, call.service)
        return self._query(body, context, call.service)

    def _expected_region(self, signed: SignedRequest) -> str:
        """The region the signature must be scoped to: the one it names when this deployment serves it (IAM,
        global, only in its own region or the default one); otherwise the default region, so that the check
        refuses it in AWS's words."""
        default = self.services.settings.region
        if signed.service in GLOBAL_SERVICES:
            return signed.region if signed.region == GLOBAL_SERVICES[signed.service] else default
        return signed.region if signed.region in self.registries.regions else default

    def _registry_region(self, signed: SignedRequest) -> str:
        """The region whose registry answers: the signed one; IAM, global per account, answers in the default."""
        return self.services.settings.region if signed.service in GLOBAL_SERVICES else signed.region

    def _identify(self, signed: SignedRequest) -> tuple[Caller, str]:
        """The checks that need no body: scope and clock, then the key (its caller and its secret)."""
        check_scope_and_time(
            signed,
            now=dt.datetime.fromtimestamp(self.clock(), dt.UTC),
            expected_region=self._expected_region(signed),
            allowed_services=OPERATIONS.keys(),
        )
        return self.services.identity.authentication.authenticate_access_key(
            signed.access_key_id, signed.security_token
        )

    def _verify(
        self, request: Request, signed: SignedRequest, secret: str, body: bytes, headers: list[tuple[str, str]]
    ) -> None:
        verify_signature(
            signed,
            method=request.method,
            path=request.scope.get("raw_path") or request.url.path,
            query_string=request.scope.get("query_string", b""),
            headers=headers,
            payload_sha256=hashlib.sha256(body).hexdigest(),
            secret_access_key=secret,
            now=dt.datetime.fromtimestamp(self.clock(), dt.UTC),
            expected_region=self._expected_region(signed),
            allowed_services=OPERATIONS.keys(),
        )

    def _json(self, request: Request, body: bytes, context: AwsContext, service: str) -> Response:
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
        context = self._named_registry(context, service, params)
        _annotate(context, f"{service}:{name}", params)
        return json_response(model.output_shape, operation(context, params), context.request_id)

    def _named_registry(self, context: AwsContext, service: str, params: dict[str, Any]) -> AwsContext:
        """An ECR request naming another account's registry (``registryId``) is answered in that registry, in
        the signed region, when this deployment serves it; the caller stays who it is, and the policies of both
        accounts decide (an unknown registry is left to the operation, which answers as ECR does)."""
        registry_id = params.get("registryId") if service == "ecr" else None
        if not isinstance(registry_id, str) or registry_id == context.account_id:
            return context
        named = RegistryId(registry_id, context.region)
        if not self.registries.serves(named):
            return context
        return dataclasses.replace(context, services=self.registries.aws(named))

    def _query(self, body: bytes, context: AwsContext, service: str) -> Response:
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
        if service == "iam" and caller.expires_at is not None and caller.kind is not CallerKind.ASSUMED_ROLE:
            # IAM refuses credentials from GetSessionToken obtained without MFA: a one-hour session must not
            # be able to mint permanent keys or change policies.
            raise AccessDenied(
                f"User: {caller.arn} is not authorized to perform: iam:{action} with temporary credentials "
                "obtained without MFA (GetSessionToken)"
            )
        return query_response(service, action, model.output_shape, operation(context, params), context.request_id)

    def invoke(self, context: AwsContext, service: str, name: str, params: dict[str, Any]) -> dict[str, Any]:
        """Run an operation in-process for a caller already authenticated elsewhere (the web console): the same
        model check of the input, the same operation function and authorization as a signed request, and the
        request record annotated the same way for the access log and the audit trail. Blocking."""
        operation = OPERATIONS[service][name]
        model = service_model(service).operation_model(name)
        try:
            params = convert(model.input_shape, params) if model.input_shape is not None else {}
        except ShapeViolation as violation:
            raise validation_error(violation, protocol="json" if service == "ecr" else "query") from None
        _annotate(context, f"{service}:{name}", params)
        return operation(context, params)


def _annotate(context: AwsContext, action: str, params: dict[str, Any]) -> None:
    context.record.action = action
    context.record.operation = action
    context.record.registry = context.services.registry_id
    repository = params.get("repositoryName")
    context.record.repository = repository if isinstance(repository, str) else None


def _json_operation_name(request: Request) -> str:
    """The operation a JSON 1.1 request names in X-Amz-Target (not yet checked against its service's prefix)."""
    return request.headers.get("x-amz-target", "").partition(".")[2]


def _body_limit(request: Request, call: _Call) -> int:
    """The most body the named operation can need (an unknown one is refused after the signature check)."""
    if call.protocol == "query":
        return QUERY_BODY_BYTES
    return JSON_BODY_LIMITS.get((call.service, _json_operation_name(request)), JSON_BODY_BYTES)


def _carries_body(request: Request) -> bool:
    # RFC 9112 §6.3: a request has a body when it says so with Transfer-Encoding or a non-zero Content-Length.
    return "transfer-encoding" in request.headers or request.headers.get("content-length", "0") != "0"


async def _read_body(request: Request, limit: int) -> bytes:
    too_large = PayloadTooLarge(f"Request body exceeds the limit of {limit} bytes for this operation")
    # A declared length over the limit is refused before reading; a chunked body is counted as it arrives.
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise too_large
    parts: list[bytes] = []
    total = 0
    async for chunk in request.stream():
        total += len(chunk)
        if total > limit:
            raise too_large
        parts.append(chunk)
    return b"".join(parts)


def _json_loads(body: bytes) -> Any:
    import json

    try:
        return json.loads(body)
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise SerializationError("Start of structure or map found where not expected.") from None
