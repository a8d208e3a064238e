"""STS sessions: AssumeRole (decided by the role's trust policy together with the caller's identity policies),
GetSessionToken and GetCallerIdentity, and the temporary credentials they hand out.

A role of any account this deployment serves may be assumed by a caller of any other, as across AWS accounts:
the role's trust policy must admit the caller and the caller's own identity policies must allow it. A session's
credentials belong to the role's account; GetSessionToken's to the caller's."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from sqlalchemy.exc import IntegrityError

from ecrd.errors import AccessDenied, EcrdError, InvalidClientToken, ValidationError
from ecrd.metadata import iam as q
from ecrd.metadata.iam import Principal as CredentialPrincipal
from ecrd.metadata.store import MetadataStore
from ecrd.policy.document import parse_policy
from ecrd.policy.evaluation import AuthorizationRequest, Principal, evaluate
from ecrd.services.access import Caller, CallerKind, request_context
from ecrd.services.iam.constraints import SESSION_NAME, check_range, check_text
from ecrd.services.iam.documents import PolicyDocuments
from ecrd.services.iam.identifiers import new_access_key_id, new_secret, new_session_token, token_hash
from ecrd.services.iam.limits import (
    ROLE_CHAINING_MAX,
    ROLE_SESSION_DEFAULT,
    ROLE_SESSION_MAX,
    ROLE_SESSION_MIN,
    ROOT_SESSION_TOKEN_MAX,
    SESSION_TOKEN_DEFAULT,
    SESSION_TOKEN_MAX,
)
from ecrd.services.iam.roles import ROLE_ARN
from ecrd.services.secrets import SecretBox

# What is left of the trust-policy question when every identity policy allows: see assume_role.
_ALLOW_EVERYTHING: Final = parse_policy(
    '{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}', kind="identity"
)
_OTHER_ACCOUNT: Final = "trust-policy"


@dataclass(frozen=True, slots=True)
class TemporaryCredentials:
    access_key_id: str
    secret_access_key: str
    session_token: str
    expires_at: float


@dataclass(frozen=True, slots=True)
class AssumedRole:
    credentials: TemporaryCredentials
    assumed_role_id: str  # AROA…:session
    arn: str  # arn:aws:sts::ACCT:assumed-role/ROLE/SESSION


@dataclass(frozen=True, slots=True)
class CallerIdentity:
    user_id: str
    account: str
    arn: str


class SessionService:
    def __init__(
        self,
        store: MetadataStore,
        documents: PolicyDocuments,
        *,
        account_id: str,
        secret_box: SecretBox,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.documents = documents
        self.account_id = account_id
        self.secret_box = secret_box
        self.clock = clock

    def get_caller_identity(self, caller: Caller) -> CallerIdentity:
        return CallerIdentity(user_id=caller.user_id, account=caller.account_id, arn=caller.arn)

    def assume_role(
        self,
        caller: Caller,
        role_arn: str,
        session_name: str,
        duration_seconds: int | None = None,
        *,
        external_id: str | None = None,
    ) -> AssumedRole:
        """Temporary credentials for a session of the role, if its trust policy lets the caller in.

        IAM's rule for a principal of the role's own account: the trust policy must allow the caller; when it
        names the caller's user or role itself, that suffices, and when it only names the account, the
        caller's identity policies must allow sts:AssumeRole on the role too. For a principal of another
        account both must allow, whatever the trust policy names. An explicit deny anywhere wins.
        """
        check_text(session_name, "roleSessionName", SESSION_NAME, 2, 64)
        if duration_seconds is not None:
            check_range(duration_seconds, "durationSeconds", ROLE_SESSION_MIN, ROLE_SESSION_MAX)
        if caller.kind is CallerKind.ROOT:
            raise AccessDenied("Roles may not be assumed by root accounts.")
        denied = AccessDenied(
            f"User: {caller.arn} is not authorized to perform: sts:AssumeRole on resource: {role_arn}"
        )
        match = ROLE_ARN.fullmatch(role_arn)
        if match is None:
            raise denied
        role_account = match["account"]
        with self.store.read() as conn:
            role = q.get_role(conn, match["name"], account_id=role_account)
        if role is None or role.path != match["path"] or role.name != match["name"]:
            # Also the answer for an account this deployment does not serve: AWS answers a role it cannot find
            # with AccessDenied.
            raise denied

        duration = duration_seconds if duration_seconds is not None else ROLE_SESSION_DEFAULT
        if caller.kind is CallerKind.ASSUMED_ROLE and duration > ROLE_CHAINING_MAX:
            raise ValidationError(
                "The requested DurationSeconds exceeds the 1 hour session limit for roles assumed by role chaining."
            )
        if duration > role.max_session_duration:
            raise ValidationError("The requested DurationSeconds exceeds the MaxSessionDuration set for this role.")

        now = self.clock()
        context = request_context(caller, now, {"sts:RoleSessionName": session_name})
        if external_id is not None:
            context["sts:ExternalId"] = external_id
        trust = self.documents.parse(role.assume_role_policy, "resource")
        principal = Principal(arn=caller.arn, account_id=caller.account_id, aliases=caller.aliases)
        resource = role.arn(role_account)
        request = AuthorizationRequest(principal, "sts:AssumeRole", resource, role_account, context)
        decision = evaluate(request, self.documents.identity_policies(caller), trust)
        if not decision.allowed:
            # A trust policy that does not admit the caller gets STS's plain wording; the caller's own policies'
            # refusal says why.
            raise denied if decision.reason == "no_resource_allow" else AccessDenied(decision.denial_message(request))
        # Within one account, evaluate() lets an identity policy alone allow; a role also needs its trust
        # policy to admit the caller. Asked as if across accounts with an identity side that allows anything,
        # evaluate() answers exactly that: does the trust policy allow this principal (directly or through its
        # account)?
        across = AuthorizationRequest(principal, "sts:AssumeRole", resource, _OTHER_ACCOUNT, context)
        if not evaluate(across, [_ALLOW_EVERYTHING], trust).allowed:
            raise denied

        credentials = self._issue(
            now, duration, denied, account_id=role_account, principal="role", role_id=role.id, session_name=session_name
        )
        return AssumedRole(
            credentials=credentials,
            assumed_role_id=f"{role.id}:{session_name}",
            arn=f"arn:aws:sts::{role_account}:assumed-role/{role.name}/{session_name}",
        )

    def get_session_token(self, caller: Caller, duration_seconds: int | None = None) -> TemporaryCredentials:
        """Temporary credentials with the caller's own permissions (for the root or an IAM user)."""
        if caller.expires_at is not None or caller.kind is CallerKind.ASSUMED_ROLE:
            raise AccessDenied("Cannot call GetSessionToken with session credentials")
        if duration_seconds is not None:
            check_range(duration_seconds, "durationSeconds", ROLE_SESSION_MIN, SESSION_TOKEN_MAX)
        root = caller.kind is CallerKind.ROOT
        if root:
            # STS: sessions of the root user last at most one hour, and that is also their default.
            duration = min(duration_seconds or ROOT_SESSION_TOKEN_MAX, ROOT_SESSION_TOKEN_MAX)
        else:
            duration = duration_seconds or SESSION_TOKEN_DEFAULT
        invalid = InvalidClientToken("The security token included in the request is invalid.")
        account_id = caller.account_id
        if root:
            return self._issue(self.clock(), duration, invalid, account_id=account_id, principal="root")
        return self._issue(
            self.clock(), duration, invalid, account_id=account_id, principal="user", user_id=caller.user_id
        )

    def _issue(
        self,
        now: float,
        duration: int,
        gone: EcrdError,
        *,
        account_id: str,
        principal: CredentialPrincipal,
        user_id: str | None = None,
        role_id: str | None = None,
        session_name: str | None = None,
    ) -> TemporaryCredentials:
        """Store and return new temporary credentials of the account ``account_id``; ``gone`` is raised if their
        user or role was deleted a moment ago (the foreign key refuses the row)."""
        key_id, secret, token = new_access_key_id("ASIA"), new_secret(), new_session_token()
        try:
            with self.store.write() as conn:
                # Expired sessions are never valid again; clearing them here keeps the table the size of the
                # live sessions without a sweeper.
                q.delete_expired_credentials(conn, now)
                q.insert_access_key(
                    conn,
                    access_key_id=key_id,
                    account_id=account_id,
                    principal=principal,
                    user_id=user_id,
                    role_id=role_id,
                    session_name=session_name,
                    sealed_secret=self.secret_box.seal(secret, context=key_id),
                    session_token_hash=token_hash(token),
                    created_at=now,
                    expires_at=now + duration,
                )
        except IntegrityError:
            raise gone from None
        return TemporaryCredentials(key_id, secret, token, now + duration)
