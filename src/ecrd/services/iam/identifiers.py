"""What IAM and STS generate: unique ids, access key ids, secret keys and session tokens (kept only hashed)."""

from __future__ import annotations

import base64
import hashlib
import secrets
from typing import Final

BASE32: Final = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
_SECRET_ALPHABET: Final = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"


def _random_base32(length: int) -> str:
    return "".join(secrets.choice(BASE32) for _ in range(length))


def unique_id(prefix: str) -> str:
    """IAM unique ids: a four-letter type prefix (AIDA user, AROA role, ANPA policy) and 17 characters."""
    return prefix + _random_base32(17)


def new_access_key_id(prefix: str) -> str:
    """AKIA (long-term) or ASIA (temporary) and 16 characters, as AWS access key ids are."""
    return prefix + _random_base32(16)


def new_secret() -> str:
    return "".join(secrets.choice(_SECRET_ALPHABET) for _ in range(40))


def new_session_token() -> str:
    return base64.b64encode(secrets.token_bytes(144)).decode()


def token_hash(token: str) -> str:
    """What is stored of a session token: enough to check one, nothing to sign with."""
    return hashlib.sha256(token.encode()).hexdigest()
