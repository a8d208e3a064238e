"""The credential helper's cache of registry tokens: one file per (endpoint, region, access key id), the user's
alone, kept until shortly before the token expires.

A file holds the token GetAuthorizationToken returned (a secret, hence mode 0600 in a 0700 directory), when it
expires, and the registry host docker asked for (what ``list`` shows). Its name is a hash of the key, so no
access key id shows in a directory listing. A file that cannot be read or parsed is a miss, never an error.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

# A token is used until this long before it expires: a pull or push begun with it has that long to finish
# its requests, each of which presents the token again.
REFRESH_MARGIN_SECONDS = 15 * 60.0
PRIVATE_DIRECTORY = 0o700
PRIVATE_FILE = 0o600


@dataclass(frozen=True, slots=True)
class CachedToken:
    server_url: str
    authorization_token: str  # base64 of "AWS:<password>", as GetAuthorizationToken returns it
    expires_at: float  # epoch seconds


class TokenCache:
    def __init__(self, directory: Path, *, clock: Callable[[], float] = time.time) -> None:
        self.directory = directory
        self.clock = clock

    @staticmethod
    def key(endpoint: str, region: str, access_key_id: str) -> str:
        return hashlib.sha256(f"{endpoint}\n{region}\n{access_key_id}".encode()).hexdigest()

    def get(self, key: str) -> CachedToken | None:
        """The cached token of ``key`` while it is good for more than the refresh margin."""
        token = self._read(self.directory / f"{key}.json")
        if token is None or token.expires_at - self.clock() <= REFRESH_MARGIN_SECONDS:
            return None
        return token

    def put(self, key: str, token: CachedToken) -> None:
        """Store ``token`` atomically (a reader sees the old file or the new, whole); failing to is not an
        error — the next call asks for a token again."""
        with contextlib.suppress(OSError):
            self.directory.mkdir(mode=PRIVATE_DIRECTORY, parents=True, exist_ok=True)
            self.directory.chmod(PRIVATE_DIRECTORY)
            target = self.directory / f"{key}.json"
            temporary = self.directory / f".{key}.{os.getpid()}.tmp"
            body = {
                "serverURL": token.server_url,
                "authorizationToken": token.authorization_token,
                "expiresAt": token.expires_at,
            }
            fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, PRIVATE_FILE)
            try:
                with os.fdopen(fd, "w") as fh:
                    json.dump(body, fh)
                os.replace(temporary, target)
            except OSError:
                temporary.unlink(missing_ok=True)
                raise

    def valid(self) -> Iterator[CachedToken]:
        """Every cached token not yet expired (``list``)."""
        with contextlib.suppress(OSError):
            for path in sorted(self.directory.glob("*.json")):
                token = self._read(path)
                if token is not None and token.expires_at > self.clock():
                    yield token

    @staticmethod
    def _read(path: Path) -> CachedToken | None:
        try:
            body = json.loads(path.read_text())
            token = CachedToken(str(body["serverURL"]), str(body["authorizationToken"]), float(body["expiresAt"]))
        except (OSError, ValueError, KeyError, TypeError):
            return None
        return token
