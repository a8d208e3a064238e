"""Who is calling on the data plane: Basic ``AWS:<password>`` checked against registry tokens."""

from __future__ import annotations

import base64
import binascii
import dataclasses
from typing import Protocol

from ecrd.errors import MissingAuthentication, TokenInvalid
from ecrd.services.access import Caller
from ecrd.services.tokens import RegistryTokens


class RegistryAuthenticator(Protocol):
    def authenticate(
        self, authorization: str | None, *, source_ip: str, secure: bool, scope: str | None = None
    ) -> Caller:
        """The caller a data-plane request's Authorization header proves; raise AuthenticationError if none.
        ``scope`` is set for a presigned blob download (its token opens only that blob)."""
        ...


class TokenAuthenticator:
    def __init__(self, tokens: RegistryTokens) -> None:
        self.tokens = tokens

    def authenticate(
        self, authorization: str | None, *, source_ip: str, secure: bool, scope: str | None = None
    ) -> Caller:
        if not authorization:
            raise MissingAuthentication("Not Authorized")
        scheme, _, credentials = authorization.partition(" ")
        if scheme.lower() != "basic":
            raise TokenInvalid(
                "Not Authorized: use Basic authentication with the password from aws ecr get-login-password"
            )
        try:
            decoded = base64.b64decode(credentials.strip(), validate=True).decode("utf-8")
        except (binascii.Error, ValueError):
            raise TokenInvalid("Not Authorized: malformed Basic credentials") from None
        username, colon, password = decoded.partition(":")
        if not colon or username != "AWS":
            raise TokenInvalid("Not Authorized: the user name must be AWS and the password a registry token")
        caller = self.tokens.verify(password, scope=scope)
        return dataclasses.replace(caller, source_ip=source_ip, secure_transport=secure)
