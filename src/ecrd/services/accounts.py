"""The accounts a deployment serves (placeholder until the accounts work lands)."""

from __future__ import annotations

import time
from collections.abc import Callable

from ecrd.metadata import accounts as q
from ecrd.metadata.store import MetadataStore
from ecrd.services.secrets import SecretBox


class AccountService:
    def __init__(self, store: MetadataStore, *, secret_box: SecretBox, clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.secret_box = secret_box
        self.clock = clock

    def ensure(self, account_id: str) -> None:
        with self.store.read() as conn:
            if q.exists(conn, account_id):
                return
        with self.store.write() as conn:
            q.ensure(conn, account_id, self.clock())

    def exists(self, account_id: str) -> bool:
        with self.store.read() as conn:
            return q.exists(conn, account_id)
