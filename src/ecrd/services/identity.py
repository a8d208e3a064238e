"""Who is calling on the data plane: Basic ``AWS:<password>`` checked against registry tokens."""

from __future__ import annotations

import base64
import binascii
import dataclasses
import hashlib
from typing import Protocol

from ecrd.errors import MissingAuthentication, TokenInvalid
from ecrd.metadata.generations import GenerationCache, Generations
from ecrd.services.access import Caller
from ecrd.services.tokens import RegistryTokens

# Distinct (Authorization header, client address) pairs whose answers are remembered.
ANSWERS_CACHED = 4096


class RegistryAuthenticator(Protocol):
    def authenticate(
        self, authorization: str | None, *, source_ip: str, secure: bool, scope: str | None = None
    ) -> Caller:
        """The caller a data-plane request's Authorization header proves; raise AuthenticationError if none.
        ``scope`` is set for a presigned blob download (its token opens only that blob)."""
        ...


class TokenAuthenticator:
    def __init__(self, tokens: RegistryTokens, generations: Generations | None = None) -> None:
        self.tokens = tokens
        # A client sends the same header on every request: its answer (the caller, and until when it holds) is
        # kept while the access generation stands, by the header's SHA-256 (no secret is a dict key). Revoking
        # a key, deleting its user or ending its session moves the generation; expiry is checked every time.
        self._answers: GenerationCache[tuple[bytes, str, bool, str | None], tuple[Caller, float]] = GenerationCache(
            generations, capacity=ANSWERS_CACHED
        )

    def authenticate(
        self, authorization: str | None, *, source_ip: str, secure: bool, scope: str | None = None
    ) -> Caller:
        if not authorization:
            raise MissingAuthentication("Not Authorized")
        key = (hashlib.sha256(authorization.encode("utf-8", "surrogatepass")).digest(), source_ip, secure, scope)
        caller, until = self._answers.get(key, lambda: self._prove(authorization, source_ip, secure, scope))
        if self.tokens.clock() >= until:
            # Past the token's expiry or the session's end: proving it again gives the reason.
            return self._prove(authorization, source_ip, secure, scope)[0]
        return caller

    def _prove(self, authorization: str, source_ip: str, secure: bool, scope: str | None) -> tuple[Caller, float]:
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
        caller, until = self.tokens.verify_until(password, scope=scope)
        return dataclasses.replace(caller, source_ip=source_ip, secure_transport=secure), until
