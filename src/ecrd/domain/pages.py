"""One way to page a listing, for every API (ECR nextToken, IAM and KMS Marker): keyset positions in opaque tokens.

A token holds the sort key of the last item a page returned; the next page is the items after it, found by an
index in SQL (``WHERE key > position ORDER BY key LIMIT size + 1``). Pages stay correct while items are added
or removed between requests, and a full listing costs what its length does. Each API only says how it names a
bad token and how big its pages are: that is a ``Paging``.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from ecrd.errors import EcrdError

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    """One page of a listing; ``token`` continues it (None on the last page)."""

    items: tuple[T, ...]
    token: str | None = None

    @property
    def truncated(self) -> bool:
        return self.token is not None


@dataclass(frozen=True, slots=True)
class Paging:
    """How one API pages: its default and largest page, and the error a token it did not issue gets."""

    default_size: int
    max_size: int
    invalid_token: Callable[[], EcrdError]
    invalid_size: Callable[[int], EcrdError] | None = None

    def size(self, requested: int | None) -> int:
        if requested is None:
            return self.default_size
        if not 1 <= requested <= self.max_size:
            if self.invalid_size is not None:
                raise self.invalid_size(requested)
            raise self.invalid_token()
        return requested

    def encode(self, position: Any) -> str:
        return base64.urlsafe_b64encode(json.dumps(position, separators=(",", ":")).encode()).decode()

    def decode(self, token: str | None) -> Any:
        """The position a token holds (None for no token); strings hold no NUL, which no key of ours holds."""
        if token is None:
            return None
        try:
            position = json.loads(base64.urlsafe_b64decode(token.encode()))
        except (binascii.Error, ValueError, TypeError, RecursionError):
            raise self.invalid_token() from None
        if not _plain(position):
            raise self.invalid_token()
        return position

    def page_of_rows(self, rows: Sequence[T], size: int, key: Callable[[T], Any]) -> Page[T]:
        """A page from ``size + 1`` rows fetched in key order after the position: the extra row says there is
        more."""
        chunk = tuple(rows[:size])
        return Page(chunk, self.encode(key(chunk[-1])) if len(rows) > size else None)

    def page_of(self, items: Sequence[T], key: Callable[[T], Any], token: str | None, requested: int | None) -> Page[T]:
        """A page of a short listing held in memory (sorted by ``key``), by the same keyset rule."""
        after = self.decode(token)
        size = self.size(requested)
        remaining = [item for item in items if after is None or _after(key(item), after)]
        return self.page_of_rows(remaining[: size + 1], size, key)


def _plain(position: Any, depth: int = 0) -> bool:
    if isinstance(position, str):
        return "\x00" not in position
    if isinstance(position, bool):
        return False
    if isinstance(position, int | float):
        return True
    if isinstance(position, list) and depth < 2:
        return all(_plain(item, depth + 1) for item in position)
    return False


def _after(key: Any, position: Any) -> bool:
    try:
        return bool(list_key(key) > list_key(position))
    except TypeError:
        return False


def list_key(key: Any) -> Any:
    """A key as JSON gives it back (tuples become lists), so a decoded position compares with it."""
    return [list_key(item) for item in key] if isinstance(key, tuple | list) else key
