"""Who an access key is: the account root's key made at start, and every signed request's key turned into a
Caller (with its kind) and the secret to verify its signature with.

Authentication is of the whole deployment: a key of any account authenticates, as a caller of the key's account.
The authenticator's own ``account_id`` is the default account's, whose root key ``bootstrap_root`` makes.

Credentials are read on every request and change rarely: they are cached per process for as long as the access
generation stands (decision 0008), so a key deactivated by any process stops working at the next request.
"""

from __future__ import annotations

import functools
import hmac
import time
from collections.abc import Callable

from sqlalchemy import Connection

from ecrd.errors import ExpiredToken, InvalidClientToken
from ecrd.metadata import iam as q
from ecrd.metadata.generations import GenerationCache, Generations
from ecrd.metadata.iam import ACTIVE, CredentialRecord
from ecrd.metadata.store import MetadataStore
from ecrd.services.access import Caller, CallerKind
from ecrd.services.iam.constraints import ACCESS_KEY_ID
from ecrd.services.iam.identifiers import new_access_key_id, new_secret, token_hash
from ecrd.services.secrets import SecretBox


class Authenticator:
    def __init__(
        self,
        store: MetadataStore,
        *,
        account_id: str,
        secret_box: SecretBox,
        clock: Callable[[], float] = time.time,
        generations: Generations | None = None,
    ) -> None:
        self.store = store
        self.account_id = account_id
        self.secret_box = secret_box
        self.clock = clock
        self._credentials: GenerationCache[str, CredentialRecord | None] = GenerationCache(generations)

    def bootstrap_root(self, access_key_id: str | None, secret_access_key: str | None) -> tuple[str, str] | None:
        """Make sure the account root can sign requests.

        With a configured key: store it if it is new (a configured secret replaces a stored one, so that the
        configuration stays the truth). Without one: when the root has no key yet, generate one and return
        ``(access key id, secret)`` for the caller to show once. Concurrent starts generate at most one key.
        """
        if (access_key_id is None) != (secret_access_key is None):
            raise ValueError("the root access key id and secret go together")
        with self.store.write() as conn:
            q.lock_identity(conn, self.account_id)
            if access_key_id is not None and secret_access_key is not None:
                if ACCESS_KEY_ID[0].fullmatch(access_key_id) is None or not 16 <= len(access_key_id) <= 128:
                    raise ValueError("the root access key id must be 16 to 128 letters, digits or underscores")
                if not secret_access_key:
                    raise ValueError("the root secret access key must not be empty")
                self._store_root_key(conn, access_key_id, secret_access_key)
                return None
            if q.count_access_keys(conn, None, account_id=self.account_id) > 0:
                return None
            key_id, secret = new_access_key_id("AKIA"), new_secret()
            q.insert_access_key(
                conn,
                access_key_id=key_id,
                account_id=self.account_id,
                principal="root",
                sealed_secret=self.secret_box.seal(secret, context=key_id),
                created_at=self.clock(),
            )
            return key_id, secret

    def _store_root_key(self, conn: Connection, access_key_id: str, secret: str) -> None:
        found = q.get_credential(conn, access_key_id)
        sealed = self.secret_box.seal(secret, context=access_key_id)
        if found is None:
            q.insert_access_key(
                conn,
                access_key_id=access_key_id,
                account_id=self.account_id,
                principal="root",
                sealed_secret=sealed,
                created_at=self.clock(),
            )
            return
        if found.principal != "root" or found.temporary or found.account_id != self.account_id:
            raise ValueError(
                f"access key {access_key_id} is stored, and it is not a key of the account root of {self.account_id}"
            )
        try:
            unchanged = self.secret_box.open(found.sealed_secret, context=access_key_id) == secret
        except ValueError:
            unchanged = False  # sealed under another master key: the configured secret is the one to keep
        if not unchanged:
            q.set_access_key_secret(conn, access_key_id, sealed)

    def authenticate_access_key(self, access_key_id: str, session_token: str | None) -> tuple[Caller, str]:
        """The caller an access key stands for, and its secret to verify the request's signature with."""
        invalid = InvalidClientToken("The security token included in the request is invalid.")
        record = self.credential(access_key_id)
        if record is None or record.status != ACTIVE:
            raise invalid
        if record.session_token_hash is not None:
            if not session_token or not hmac.compare_digest(token_hash(session_token), record.session_token_hash):
                raise invalid
            if record.expires_at is not None and self.clock() >= record.expires_at:
                raise ExpiredToken("The security token included in the request is expired")
        elif session_token:
            # A session token means temporary credentials; long-term keys have none.
            raise invalid
        caller = self._caller(record)
        if caller is None:
            raise invalid
        return caller, self.secret_box.open(record.sealed_secret, context=record.access_key_id)

    def current_caller(self, access_key_id: str) -> Caller | None:
        """The caller of a key that still stands (stored, Active, unexpired, its user or role there); else None."""
        record = self.credential(access_key_id)
        if record is None or record.status != ACTIVE:
            return None
        if record.expires_at is not None and self.clock() >= record.expires_at:
            return None
        return self._caller(record)

    def credential(self, access_key_id: str) -> CredentialRecord | None:
        return self._credentials.get(access_key_id, lambda: self._read_credential(access_key_id))

    def _read_credential(self, access_key_id: str) -> CredentialRecord | None:
        with self.store.read() as conn:
            return q.get_credential(conn, access_key_id)

    @staticmethod
    def _caller(record: CredentialRecord) -> Caller | None:
        """The principal behind a stored key, in the key's account: where every caller's kind is decided."""
        account_id = record.account_id
        # What every caller of a key has, whoever it is.
        caller = functools.partial(
            Caller, account_id=account_id, access_key_id=record.access_key_id, expires_at=record.expires_at
        )
        if record.principal == "root":
            return caller(arn=f"arn:aws:iam::{account_id}:root", kind=CallerKind.ROOT, user_id=account_id)
        if record.principal == "user":
            if record.user_id is None or record.user_name is None or record.user_path is None:
                return None
            return caller(
                arn=f"arn:aws:iam::{account_id}:user{record.user_path}{record.user_name}",
                kind=CallerKind.USER,
                user_id=record.user_id,
                username=record.user_name,
            )
        if record.role_id is None or record.role_name is None or record.role_path is None or not record.session_name:
            return None
        return caller(
            arn=f"arn:aws:sts::{account_id}:assumed-role/{record.role_name}/{record.session_name}",
            kind=CallerKind.ASSUMED_ROLE,
            user_id=f"{record.role_id}:{record.session_name}",
            aliases=(f"arn:aws:iam::{account_id}:role{record.role_path}{record.role_name}",),
        )
