"""The STS API operations (Query protocol): AssumeRole, GetSessionToken and GetCallerIdentity.

None of them is authorized through ``ctx.authorize``: GetCallerIdentity and GetSessionToken need no permission
(STS: "No permissions are required to perform this operation"), and AssumeRole is decided by the role's trust
policy together with the caller's identity policies, inside the sessions service.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Final

from ecrd.aws.context import AwsContext, Operation
from ecrd.errors import ValidationError
from ecrd.services.iam.sessions import TemporaryCredentials

# AssumeRole inputs that would change what the session may do or prove; refused rather than ignored, since
# ignoring a session policy would hand out more than was asked for.
_UNSUPPORTED_ASSUME_ROLE_INPUTS: Final = (
    "Policy",
    "PolicyArns",
    "Tags",
    "TransitiveTagKeys",
    "SerialNumber",
    "TokenCode",
    "SourceIdentity",
    "ProvidedContexts",
)


def _credentials(credentials: TemporaryCredentials) -> dict[str, Any]:
    return {
        "AccessKeyId": credentials.access_key_id,
        "SecretAccessKey": credentials.secret_access_key,
        "SessionToken": credentials.session_token,
        "Expiration": dt.datetime.fromtimestamp(credentials.expires_at, tz=dt.UTC),
    }


def assume_role(ctx: AwsContext, params: dict[str, Any]) -> dict[str, Any]:
    for name in _UNSUPPORTED_ASSUME_ROLE_INPUTS:
        if params.get(name) is not None:
            raise ValidationError(f"ecrd does not support the {name} parameter of AssumeRole.")
    assumed = ctx.identity.sessions.assume_role(
        ctx.caller,
        params["RoleArn"],
        params["RoleSessionName"],
        params.get("DurationSeconds"),
        external_id=params.get("ExternalId"),
    )
    return {
        "Credentials": _credentials(assumed.credentials),
        "AssumedRoleUser": {"AssumedRoleId": assumed.assumed_role_id, "Arn": assumed.arn},
    }


def get_session_token(ctx: AwsContext, params: dict[str, Any]) -> dict[str, Any]:
    if params.get("SerialNumber") is not None or params.get("TokenCode") is not None:
        raise ValidationError("ecrd does not support MFA (SerialNumber, TokenCode) in GetSessionToken.")
    credentials = ctx.identity.sessions.get_session_token(ctx.caller, params.get("DurationSeconds"))
    return {"Credentials": _credentials(credentials)}


def get_caller_identity(ctx: AwsContext, params: dict[str, Any]) -> dict[str, Any]:
    identity = ctx.identity.sessions.get_caller_identity(ctx.caller)
    return {"UserId": identity.user_id, "Account": identity.account, "Arn": identity.arn}


OPERATIONS: dict[str, Operation] = {
    "AssumeRole": assume_role,
    "GetSessionToken": get_session_token,
    "GetCallerIdentity": get_caller_identity,
}
