"""Console passwords of IAM users (login profiles), the account password policy, and checking a password at
sign-in.

Passwords are kept only as salted scrypt hashes (``hashlib.scrypt``, OpenSSL's; decision 0028), their parameters
in the stored string so that stronger ones can come later; hashes are compared in constant time. A sign-in for a
user without a password still spends one hash, so its answer time does not tell which users exist.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import hmac
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from sqlalchemy import Connection

from ecrd.domain.password_policy import (
    MAX_AGE_RANGE,
    MIN_LENGTH_RANGE,
    REUSE_RANGE,
    VIOLATION,
    PasswordPolicy,
    password_violations,
)
from ecrd.errors import AccessDenied, EntityAlreadyExists, InvalidUserType, NoSuchEntity, PasswordPolicyViolation
from ecrd.metadata import iam as users_q
from ecrd.metadata import login_profiles as q
from ecrd.metadata.iam import UserRecord
from ecrd.metadata.login_profiles import LoginProfileRecord
from ecrd.metadata.store import MetadataStore
from ecrd.services.iam.constraints import check_range
from ecrd.services.iam.entities import user_named

# OWASP's password storage cheat sheet lists N=2^15, r=8, p=3 among its equivalent scrypt settings: 32 MiB and
# about a third of a second of one core per hash.
_SCRYPT_N: Final = 2**15
_SCRYPT_R: Final = 8
_SCRYPT_P: Final = 3
_MAXMEM: Final = 64 * 1024 * 1024
_MAX_HISTORY: Final = REUSE_RANGE[1]


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = _scrypt(password, salt, _SCRYPT_N, _SCRYPT_R, _SCRYPT_P)
    encoded = [base64.b64encode(part).decode() for part in (salt, digest)]
    return f"scrypt${_SCRYPT_N}${_SCRYPT_R}${_SCRYPT_P}${encoded[0]}${encoded[1]}"


def password_matches(password: str, stored: str) -> bool:
    _, n, r, p, salt, digest = stored.split("$")
    computed = _scrypt(password, base64.b64decode(salt), int(n), int(r), int(p))
    return hmac.compare_digest(computed, base64.b64decode(digest))


def _scrypt(password: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(password.encode(), salt=salt, n=n, r=r, p=p, maxmem=_MAXMEM, dklen=32)


# Spent on sign-ins of users without a password, so that they take as long as the others.
_DECOY: Final = hash_password(secrets.token_urlsafe(16))


@dataclass(frozen=True, slots=True)
class LoginProfile:
    """A login profile as IAM shows it."""

    user_name: str
    created_at: float
    password_reset_required: bool


@dataclass(frozen=True, slots=True)
class SignIn:
    """A user whose console password was right, and whether it must be changed before anything else."""

    user: UserRecord
    must_change_password: bool


_POLICY_FIELDS: Final = {field.name for field in dataclasses.fields(PasswordPolicy)}


class LoginProfileService:
    def __init__(self, store: MetadataStore, *, account_id: str, clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.account_id = account_id
        self.clock = clock

    # -- the account password policy ----------------------------------------------------------------------

    def get_account_password_policy(self) -> PasswordPolicy:
        with self.store.read() as conn:
            policy = self._policy(conn)
        if policy is None:
            raise NoSuchEntity(f"The Password Policy with domain name {self.account_id} cannot be found.")
        return policy

    def update_account_password_policy(self, **settings: Any) -> PasswordPolicy:
        """Set the policy: settings left out take IAM's defaults, as UpdateAccountPasswordPolicy does."""
        unknown = set(settings) - _POLICY_FIELDS
        if unknown:
            raise ValueError(f"not password policy settings: {sorted(unknown)}")
        policy = PasswordPolicy(**{name: value for name, value in settings.items() if value is not None})
        check_range(policy.minimum_password_length, "minimumPasswordLength", *MIN_LENGTH_RANGE)
        if "max_password_age" in settings and settings["max_password_age"] is not None:
            check_range(policy.max_password_age, "maxPasswordAge", *MAX_AGE_RANGE)
        if "password_reuse_prevention" in settings and settings["password_reuse_prevention"] is not None:
            check_range(policy.password_reuse_prevention, "passwordReusePrevention", *REUSE_RANGE)
        with self.store.write() as conn:
            q.put_password_policy(conn, self.account_id, dataclasses.asdict(policy))
        return policy

    def delete_account_password_policy(self) -> None:
        with self.store.write() as conn:
            if not q.delete_password_policy(conn, self.account_id):
                raise NoSuchEntity(f"The account policy with name {self.account_id} cannot be found.")

    def users_may_change_password(self) -> bool:
        """AllowUsersToChangePassword: every user may then change its own password, whatever its policies."""
        with self.store.read() as conn:
            policy = self._policy(conn)
        return policy is not None and policy.allow_users_to_change_password

    def _policy(self, conn: Connection) -> PasswordPolicy | None:
        stored = q.get_password_policy(conn, self.account_id)
        return None if stored is None else PasswordPolicy(**{k: v for k, v in stored.items() if k in _POLICY_FIELDS})

    # -- login profiles -------------------------------------------------------------------------------------

    def create_login_profile(self, user_name: str, password: str, *, reset_required: bool = False) -> LoginProfile:
        now = self.clock()
        with self.store.write() as conn:
            user = user_named(conn, user_name, account_id=self.account_id, for_update=True)
            if q.get_login_profile(conn, user.id) is not None:
                raise EntityAlreadyExists(f"Login Profile for user {user.name} already exists.")
            self._check(conn, password, user, ())
            q.insert_login_profile(
                conn, LoginProfileRecord(user.id, hash_password(password), (), reset_required, now, now)
            )
        return LoginProfile(user.name, now, reset_required)

    def get_login_profile(self, user_name: str) -> LoginProfile:
        with self.store.read() as conn:
            user, profile = self._profile(conn, user_name)
        return LoginProfile(user.name, profile.created_at, profile.password_reset_required)

    def update_login_profile(
        self, user_name: str, *, password: str | None = None, reset_required: bool | None = None
    ) -> None:
        with self.store.write() as conn:
            user, profile = self._profile(conn, user_name, for_update=True)
            values: dict[str, Any] = {}
            if password is not None:
                values = self._new_password(conn, user, profile, password)
            if reset_required is not None:
                values["password_reset_required"] = reset_required
            if values:
                q.update_login_profile(conn, user.id, **values)

    def delete_login_profile(self, user_name: str) -> None:
        with self.store.write() as conn:
            user, _ = self._profile(conn, user_name, for_update=True)
            q.delete_login_profile(conn, user.id)

    def change_password(self, user_name: str | None, old_password: str, new_password: str) -> None:
        """A user's own change of its password (ChangePassword): only IAM users have one to change."""
        if user_name is None:
            raise InvalidUserType("Only IAM users can change their own password.")
        with self.store.write() as conn:
            user, profile = self._profile(conn, user_name, for_update=True)
            if not password_matches(old_password, profile.password_hash):
                raise AccessDenied("The old password is incorrect.")
            values = self._new_password(conn, user, profile, new_password)
            q.update_login_profile(conn, user.id, password_reset_required=False, **values)

    def sign_in(self, user_name: str, password: str) -> SignIn | None:
        """The user if ``password`` is its console password and may still be used, else None."""
        with self.store.read() as conn:
            user = users_q.get_user(conn, user_name, account_id=self.account_id)
            profile = q.get_login_profile(conn, user.id) if user is not None else None
            policy = self._policy(conn)
        matches = password_matches(password, profile.password_hash if profile is not None else _DECOY)
        if user is None or profile is None or not matches:
            return None
        expired = (
            policy is not None
            and policy.expire_passwords
            and (self.clock() - profile.password_changed_at > policy.max_password_age * 86400)
        )
        if expired and policy is not None and policy.hard_expiry:
            return None  # "Prevent password expiration reset": only an administrator can set a new one.
        return SignIn(user, profile.password_reset_required or expired)

    # -- shared steps -----------------------------------------------------------------------------------------

    def _profile(
        self, conn: Connection, user_name: str, *, for_update: bool = False
    ) -> tuple[UserRecord, LoginProfileRecord]:
        user = user_named(conn, user_name, account_id=self.account_id, for_update=for_update)
        profile = q.get_login_profile(conn, user.id, for_update=for_update)
        if profile is None:
            raise NoSuchEntity(f"Login Profile for User {user.name} cannot be found.")
        return user, profile

    def _new_password(
        self, conn: Connection, user: UserRecord, profile: LoginProfileRecord, password: str
    ) -> dict[str, Any]:
        history = (profile.password_hash, *profile.previous_hashes)[:_MAX_HISTORY]
        self._check(conn, password, user, history)
        return {
            "password_hash": hash_password(password),
            "previous_hashes": history,
            "password_changed_at": self.clock(),
        }

    def _check(self, conn: Connection, password: str, user: UserRecord, history: tuple[str, ...]) -> None:
        policy = self._policy(conn)
        lacking = password_violations(policy, password, user.name)
        if lacking:
            raise PasswordPolicyViolation(f"{VIOLATION} Required: {'; '.join(lacking)}.")
        remembered = history[: policy.password_reuse_prevention] if policy is not None else ()
        if any(password_matches(password, old) for old in remembered):
            raise PasswordPolicyViolation(
                f"{VIOLATION} Required: none of the last {len(remembered)} passwords of the user."
            )
