"""Opaque pagination tokens of the AWS API: a position, sealed against tampering by being just data we check."""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from ecrd.errors import InvalidParameter


def encode_token(position: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps({"p": position}).encode()).decode()


INVALID_TOKEN = "Invalid parameter at 'nextToken' failed to satisfy constraint: 'Invalid NextToken'"


def decode_token(token: str | None) -> Any:
    if token is None:
        return None
    try:
        return json.loads(base64.urlsafe_b64decode(token.encode()))["p"]
    except (binascii.Error, ValueError, KeyError, TypeError, RecursionError):
        raise InvalidParameter(INVALID_TOKEN) from None


def page(items: list[Any], token: str | None, max_results: int | None, default: int) -> tuple[list[Any], str | None]:
    """Slice ``items`` (in a stable order) from the token's offset; return the page and the next token."""
    start = decode_token(token) or 0
    if not isinstance(start, int) or start < 0 or start > len(items):
        raise InvalidParameter(INVALID_TOKEN)
    size = max_results or default
    chunk = items[start : start + size]
    following = start + size
    return chunk, encode_token(following) if following < len(items) else None
