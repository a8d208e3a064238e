"""Sign-in to the web console: with an IAM user's console password or with an access key pair, into a
short-lived session kept in the metadata store; failed sign-ins limited per user and per address.

A session's id is 32 random bytes, handed to the browser once (the cookie) and stored only as its SHA-256, so
the table cannot be replayed. Every request resumes the session and re-checks what it stands on — the user and
its password still there, the access key still active — so deleting a user, its login profile or its key ends
its console sessions at once on every node. A form's CSRF token is an HMAC of the session id: it needs no
storage and is worthless without the HttpOnly cookie.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, NoReturn

from sqlalchemy import Connection
from sqlalchemy.exc import IntegrityError

from ecrd.errors import ConsoleSignInFailed, TooManyRequests
from ecrd.metadata import console as q
from ecrd.metadata import iam as iam_q
from ecrd.metadata import login_profiles as profiles_q
from ecrd.metadata.console import ConsoleSessionRecord
from ecrd.metadata.store import MetadataStore
from ecrd.services.access import Caller, CallerKind
from ecrd.services.iam.authentication import Authenticator
from ecrd.services.iam.passwords import LoginProfileService

PASSWORD: Final = "password"
ACCESS_KEY: Final = "access_key"
# AWS's console wording for any failed sign-in: which part was wrong is not told.
SIGN_IN_FAILED: Final = "Your authentication information is incorrect. Please try again."
MAX_FAILURES: Final = 5
FAILURE_WINDOW_SECONDS: Final = 15 * 60.0


def csrf_token_of(session_id: str) -> str:
    """The CSRF token of the forms of a session (or of the sign-in form, keyed by its own cookie)."""
    return hmac.new(session_id.encode(), b"ecrd console csrf", hashlib.sha256).hexdigest()


def csrf_matches(session_id: str, token: str) -> bool:
    return hmac.compare_digest(csrf_token_of(session_id), token)


def _id_hash(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class ConsoleSession:
    """A resumed session: who it acts as, and the token its forms carry."""

    session_id: str
    caller: Caller
    method: str
    must_change_password: bool
    expires_at: float

    @property
    def csrf_token(self) -> str:
        return csrf_token_of(self.session_id)

    @property
    def user_name(self) -> str | None:
        return self.caller.username or None


class ConsoleSessions:
    def __init__(
        self,
        store: MetadataStore,
        authentication: Authenticator,
        login_profiles: Callable[[str], LoginProfileService | None],
        *,
        session_seconds: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        # The deployment's: it finds the access keys of every account.
        self.authentication = authentication
        # The console passwords of an account the deployment serves (None for any other name).
        self.login_profiles = login_profiles
        self.session_seconds = session_seconds
        self.clock = clock

    # -- signing in -------------------------------------------------------------------------------------------

    def sign_in_with_password(self, account: str, user_name: str, password: str, *, source_ip: str) -> str:
        """A new session id for the user whose console password this is; ConsoleSignInFailed otherwise."""
        # Counted per account: a user name of one account must not lock out the same name in another.
        subjects = self._subjects(f"user:{account.strip()}:{user_name.lower()}", source_ip)
        self._refuse_when_limited(subjects)
        profiles = self.login_profiles(account.strip())
        signed_in = profiles.sign_in(user_name, password) if profiles is not None else None
        if signed_in is None:
            self._fail(subjects)
        return self._start(
            subjects,
            method=PASSWORD,
            user_id=signed_in.user.id,
            user_name=signed_in.user.name,
            must_change_password=signed_in.must_change_password,
        )

    def sign_in_with_access_key(self, account: str, access_key_id: str, secret: str, *, source_ip: str) -> str:
        """A new session id for the principal of a long-term access key pair; ConsoleSignInFailed otherwise."""
        subjects = self._subjects(f"key:{access_key_id}", source_ip)
        self._refuse_when_limited(subjects)
        record = self.authentication.credential(access_key_id)
        if record is not None and not hmac.compare_digest(account.strip().encode(), record.account_id.encode()):
            # A key signs in to its own account only, as the account the form names must be the key's.
            record = None
        caller = self.authentication.current_caller(access_key_id) if record is not None else None
        # Temporary credentials need their session token, which a console form does not take.
        if record is None or caller is None or record.session_token_hash is not None:
            self._fail(subjects)
        stored = self.authentication.secret_box.open(record.sealed_secret, context=access_key_id)
        if not hmac.compare_digest(stored.encode(), secret.encode()):
            self._fail(subjects)
        return self._start(subjects, method=ACCESS_KEY, access_key_id=access_key_id, user_name=caller.username or None)

    @staticmethod
    def _subjects(who: str, source_ip: str) -> tuple[str, str]:
        return who[:200], f"ip:{source_ip}"

    def _refuse_when_limited(self, subjects: tuple[str, ...]) -> None:
        since = self.clock() - FAILURE_WINDOW_SECONDS
        with self.store.read() as conn:
            counts = [q.failures(conn, subject, since=since) for subject in subjects]
        if max(counts) >= MAX_FAILURES:
            raise TooManyRequests(
                f"Too many failed sign-ins. Try again in {int(FAILURE_WINDOW_SECONDS // 60)} minutes."
            )

    def _fail(self, subjects: tuple[str, ...]) -> NoReturn:
        now = self.clock()
        # Two first failures of one subject at once (PostgreSQL) both insert its row: the loser counts again,
        # now on the row the winner made.
        for attempt in range(2):
            try:
                with self.store.write() as conn:
                    for subject in subjects:
                        q.count_failure(conn, subject, now=now, since=now - FAILURE_WINDOW_SECONDS)
                break
            except IntegrityError:
                if attempt:
                    raise
        raise ConsoleSignInFailed(SIGN_IN_FAILED)

    def _start(
        self,
        subjects: tuple[str, ...],
        *,
        method: str,
        user_id: str | None = None,
        user_name: str | None = None,
        access_key_id: str | None = None,
        must_change_password: bool = False,
    ) -> str:
        session_id = secrets.token_urlsafe(32)
        now = self.clock()
        record = ConsoleSessionRecord(
            _id_hash(session_id),
            method,
            user_id,
            user_name,
            access_key_id,
            must_change_password,
            now,
            now + self.session_seconds,
        )
        with self.store.write() as conn:
            q.forget_failures(conn, subjects[0])
            q.delete_expired_sessions(conn, now)
            q.insert_session(conn, record)
        return session_id

    # -- using a session ------------------------------------------------------------------------------------

    def resume(self, session_id: str, *, source_ip: str = "", secure_transport: bool = False) -> ConsoleSession | None:
        """The session of ``session_id`` while it lasts and what it stands on still holds; else None."""
        if not session_id:
            return None
        with self.store.read() as conn:
            record = q.get_session(conn, _id_hash(session_id))
            if record is None or record.expires_at <= self.clock():
                return None
            caller = self._caller(conn, record)
        if caller is None:
            return None
        caller = dataclasses.replace(caller, source_ip=source_ip, secure_transport=secure_transport)
        return ConsoleSession(session_id, caller, record.method, record.must_change_password, record.expires_at)

    def _caller(self, conn: Connection, record: ConsoleSessionRecord) -> Caller | None:
        if record.method == ACCESS_KEY:
            return self.authentication.current_caller(record.access_key_id or "")
        found = iam_q.user_by_id(conn, record.user_id or "")
        if found is None:
            return None
        account_id, user = found
        if user.name != record.user_name or profiles_q.get_login_profile(conn, user.id) is None:
            return None
        return Caller(
            arn=user.arn(account_id),
            account_id=account_id,
            kind=CallerKind.USER,
            user_id=user.id,
            username=user.name,
        )

    def password_changed(self, session_id: str) -> None:
        with self.store.write() as conn:
            q.clear_must_change_password(conn, _id_hash(session_id))

    def sign_out(self, session_id: str) -> None:
        with self.store.write() as conn:
            q.delete_session(conn, _id_hash(session_id))
