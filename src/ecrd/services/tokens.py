"""Registry passwords: what GetAuthorizationToken hands out and the /v2/ door accepts as Basic AWS:<password>.

A password is ``<payload>.<mac>``, both base64url: the payload names the access key that asked for it and
when it expires; the MAC is HMAC-SHA256 under a key derived from the master key. So any process sharing the
data directory verifies it, and it dies with its key: each check also asks the identity service whether the
key, and the user or session behind it, still stands. It holds no ':' (the AWS CLI splits on exactly one).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from ecrd.domain.caches import BoundedCache
from ecrd.errors import TokenExpiredDenied, TokenInvalid
from ecrd.services.access import Caller
from ecrd.services.secrets import SecretBox

TOKEN_LIFETIME_SECONDS = 12 * 3600
PROVEN_TOKENS_CACHED = 4096
_VERSION = 1


class CallerLookup(Protocol):
    def current_caller(self, access_key_id: str) -> Caller | None: ...


@dataclass(frozen=True, slots=True)
class IssuedToken:
    password: str
    expires_at: float

    @property
    def authorization_token(self) -> str:
        """What the API returns: base64 of ``AWS:<password>``."""
        return base64.b64encode(f"AWS:{self.password}".encode()).decode()


def download_scope(name: str, digest: str) -> str:
    """What a presigned download token opens: one blob of one repository."""
    return f"{name}@{digest}"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class RegistryTokens:
    def __init__(
        self,
        secret_box: SecretBox,
        identity: CallerLookup,
        *,
        account_id: str,
        region: str,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._key = secret_box.derive_key("ecrd registry token v1")
        self.identity = identity
        self.account_id = account_id
        self.region = region
        self.clock = clock
        # Claims of passwords already proven (by the SHA-256 of the password, so no secret is a dict key and
        # no lookup compares one): decoding and MAC-checking costs more than the rest of a cached request.
        self._proven: BoundedCache[bytes, tuple[str, float, object]] = BoundedCache(PROVEN_TOKENS_CACHED)

    def issue(
        self, caller: Caller, *, lifetime: float = TOKEN_LIFETIME_SECONDS, scope: str | None = None
    ) -> IssuedToken:
        """A password for ``caller``; with ``scope`` (``repository@digest``) it opens that one blob download
        and nothing else, as ECR's presigned layer URLs do."""
        now = self.clock()
        expires = now + lifetime
        if caller.expires_at is not None:
            # ECR: with temporary credentials the token lasts as long as they do.
            expires = min(expires, caller.expires_at)
        claims: dict[str, object] = {
            "v": _VERSION,
            "k": caller.access_key_id,
            "a": caller.account_id,
            "r": self.region,
            "iat": int(now),
            "exp": int(expires),
            "n": _b64(os.urandom(9)),
        }
        if scope is not None:
            claims["s"] = scope
        payload = json.dumps(claims, separators=(",", ":")).encode()
        mac = hmac.new(self._key, payload, hashlib.sha256).digest()
        return IssuedToken(f"{_b64(payload)}.{_b64(mac)}", float(int(expires)))

    def verify(self, password: str, *, scope: str | None = None) -> Caller:
        """The caller a password stands for now; TokenInvalid or TokenExpiredDenied otherwise. A scoped
        password is accepted only for exactly its ``scope``, an unscoped one only without a scope."""
        return self.verify_until(password, scope=scope)[0]

    def verify_until(self, password: str, *, scope: str | None = None) -> tuple[Caller, float]:
        """``verify``, and until when its answer holds while no access data changes: the earlier of the
        password's expiry and the end of the caller's session."""
        invalid = TokenInvalid("Your authorization token is invalid. Reauthenticate and try again.")
        fingerprint = hashlib.sha256(password.encode("utf-8", "surrogatepass")).digest()
        access_key_id, expires, token_scope = self._proven.get_or_load(
            fingerprint, lambda: self._prove(password, invalid)
        )
        if token_scope != scope:
            raise invalid
        if self.clock() >= expires:
            raise TokenExpiredDenied("Your authorization token has expired. Reauthenticate and try again.")
        caller = self.identity.current_caller(access_key_id)
        if caller is None:
            # The key was deleted or deactivated, or its user or session is gone: the token dies with it.
            raise invalid
        return caller, expires if caller.expires_at is None else min(expires, caller.expires_at)

    def _prove(self, password: str, invalid: TokenInvalid) -> tuple[str, float, object]:
        """The claims (access key, expiry, scope) of a password this registry issued; ``invalid`` otherwise."""
        encoded_payload, dot, encoded_mac = password.strip().partition(".")
        if not dot or len(password) > 4096:
            raise invalid
        try:
            payload = _unb64(encoded_payload)
            mac = _unb64(encoded_mac)
        except (binascii.Error, ValueError):
            raise invalid from None
        if _b64(payload) != encoded_payload or _b64(mac) != encoded_mac:
            raise invalid  # only the exact strings we issue: no alternative encodings of the same bytes
        expected = hmac.new(self._key, payload, hashlib.sha256).digest()
        if not hmac.compare_digest(mac, expected):
            raise invalid
        try:
            claims = json.loads(payload)
            access_key_id = str(claims["k"])
            expires = float(claims["exp"])
            region = claims["r"]
            token_scope = claims.get("s")
        except (ValueError, KeyError, TypeError, AttributeError, RecursionError):
            raise invalid from None
        if region != self.region:
            # ECR: "Authentication requests are tied to specific regions, and cannot be used across regions". Any
            # registry of the region takes it: what its holder may do there, the policies of both accounts decide.
            raise invalid
        return access_key_id, expires, token_scope
