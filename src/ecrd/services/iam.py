"""Identity: IAM users, access keys, managed and inline policies, roles, STS credentials, and who a key is.

Names, limits, validation and error texts follow IAM's documentation ("IAM and AWS STS quotas", the API
reference) so that the AWS CLI, boto3 and Terraform see what they would see from AWS. Every write that
checks before it writes runs in one transaction and takes a row lock (or, for the account root, the identity
advisory lock), so two processes cannot both pass a check that only one of them may pass.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import secrets
import threading
import time
import unicodedata
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Final, Generic, Literal, NoReturn, TypeVar

from sqlalchemy import Connection
from sqlalchemy.exc import IntegrityError

from ecrd.errors import (
    AccessDenied,
    DeleteConflict,
    EntityAlreadyExists,
    ExpiredToken,
    InvalidClientToken,
    InvalidParameter,
    LimitExceeded,
    MalformedPolicyDocument,
    NoSuchEntity,
    TooManyTags,
    UnmodifiableEntity,
    ValidationError,
)
from ecrd.metadata import iam as q
from ecrd.metadata.generations import GenerationCache, Generations
from ecrd.metadata.iam import (
    AccessKeyRecord,
    CredentialRecord,
    InlinePolicyRecord,
    Owner,
    PolicyRecord,
    PolicyVersionRecord,
    RoleRecord,
    Tags,
    UserRecord,
)
from ecrd.metadata.store import MetadataStore
from ecrd.policy.document import PolicyDocument, PolicyKind, parse_policy
from ecrd.policy.evaluation import AuthorizationRequest, Principal, evaluate
from ecrd.policy.managed import MANAGED_POLICIES, ManagedPolicy, managed_policy
from ecrd.services.access import Caller, request_context
from ecrd.services.secrets import SecretBox

__all__ = [
    "AccessKeyRecord",
    "AssumedRole",
    "AttachedPolicy",
    "CallerIdentity",
    "IdentityService",
    "InlinePolicyRecord",
    "NewAccessKey",
    "Page",
    "PolicyEntities",
    "PolicyRecord",
    "PolicyVersionRecord",
    "RoleRecord",
    "Tags",
    "TemporaryCredentials",
    "UserRecord",
]

T = TypeVar("T")

# IAM and AWS STS quotas (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_iam-quotas.html), at their
# default values.
MAX_USERS: Final = 5000
MAX_ROLES: Final = 1000
MAX_CUSTOMER_POLICIES: Final = 1500
MAX_ACCESS_KEYS: Final = 2
MAX_ATTACHED_POLICIES: Final = 10
MAX_POLICY_VERSIONS: Final = 5
MAX_TAGS: Final = 50
# "IAM doesn't count white space when calculating the size of a policy against these limits."
USER_INLINE_POLICY_SIZE: Final = 2048  # all of a user's inline policies together
ROLE_INLINE_POLICY_SIZE: Final = 10240  # all of a role's inline policies together
MANAGED_POLICY_SIZE: Final = 6144
TRUST_POLICY_SIZE: Final = 2048
DEFAULT_MAX_ITEMS: Final = 100
MAX_ITEMS_LIMIT: Final = 1000

ROLE_SESSION_DEFAULT: Final = 3600
ROLE_SESSION_MIN: Final = 900
ROLE_SESSION_MAX: Final = 43200
# STS: "role chaining limits your AWS CLI or AWS API role session to a maximum of one hour".
ROLE_CHAINING_MAX: Final = 3600
# STS GetSessionToken: 900 s to 129,600 s for IAM users (default 43,200 s); at most one hour for the root.
SESSION_TOKEN_DEFAULT: Final = 43200
SESSION_TOKEN_MAX: Final = 129600
ROOT_SESSION_TOKEN_MAX: Final = 3600

ACTIVE: Final = "Active"
INACTIVE: Final = "Inactive"

_BASE32: Final = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
_SECRET_ALPHABET: Final = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"

# Model patterns (botocore iam/sts service-2), with Java's \w read as ASCII.
_NAME: Final = (re.compile(r"[\w+=,.@-]+", re.ASCII), r"[\w+=,.@-]+")
_SESSION_NAME: Final = (re.compile(r"[\w+=,.@-]*", re.ASCII), r"[\w+=,.@-]*")
_PATH: Final = (re.compile(r"/|/[\x21-\x7e]+/"), r"(\u002F)|(\u002F[\u0021-\u007E]+\u002F)")
_POLICY_PATH: Final = (re.compile(r"(/[A-Za-z0-9.,+@=_-]+)*/"), r"((/[A-Za-z0-9\.,\+@=_-]+)*)/")
_PATH_PREFIX: Final = (re.compile(r"/[\x21-\x7f]*"), r"\u002F[\u0021-\u007F]*")
_ACCESS_KEY_ID: Final = (re.compile(r"\w+", re.ASCII), r"[\w]+")
_TAG_PUNCTUATION: Final = frozenset("_.:/=+-@")

_POLICY_ARN: Final = re.compile(r"arn:aws:iam::(?P<account>[0-9]{12}|aws):policy(?P<path>/(?:.*/)?)(?P<name>[^/]+)")
_ROLE_ARN: Final = re.compile(r"arn:aws:iam::(?P<account>[0-9]{12}):role(?P<path>/(?:.*/)?)(?P<name>[^/]+)")
_ENTITY_ARN: Final = re.compile(
    r"arn:aws:iam::(?P<account>[0-9]{12}):(?P<kind>user|role)(?P<path>/(?:.*/)?)(?P<name>[^/]+)"
)

# What is left of the trust-policy question when every identity policy allows: see assume_role.
_ALLOW_EVERYTHING: Final = parse_policy(
    '{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}', kind="identity"
)
_OTHER_ACCOUNT: Final = "trust-policy"


# -- values ----------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    """One page of a listing; ``marker`` continues it (None on the last page)."""

    items: tuple[T, ...]
    marker: str | None = None

    @property
    def is_truncated(self) -> bool:
        return self.marker is not None


@dataclass(frozen=True, slots=True)
class NewAccessKey:
    """A key as CreateAccessKey returns it: the only time its secret is shown."""

    access_key_id: str
    secret_access_key: str
    user_name: str | None
    status: str
    created_at: float


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


@dataclass(frozen=True, slots=True)
class AttachedPolicy:
    name: str
    arn: str


@dataclass(frozen=True, slots=True)
class PolicyEntities:
    users: tuple[UserRecord, ...]
    roles: tuple[RoleRecord, ...]


# -- validation ------------------------------------------------------------------------------------------


def _invalid(value: object, field: str, constraint: str) -> NoReturn:
    # The Query services' wording for a value that breaks a model constraint.
    raise ValidationError(
        f"1 validation error detected: Value '{value}' at '{field}' failed to satisfy constraint: {constraint}"
    )


def _check_text(value: str, field: str, pattern: tuple[re.Pattern[str], str], min_len: int, max_len: int) -> None:
    if len(value) < min_len:
        _invalid(value, field, f"Member must have length greater than or equal to {min_len}")
    if len(value) > max_len:
        _invalid(value, field, f"Member must have length less than or equal to {max_len}")
    if pattern[0].fullmatch(value) is None:
        _invalid(value, field, f"Member must satisfy regular expression pattern: {pattern[1]}")


def _check_range(value: int, field: str, low: int, high: int) -> None:
    if value < low:
        _invalid(value, field, f"Member must have value greater than or equal to {low}")
    if value > high:
        _invalid(value, field, f"Member must have value less than or equal to {high}")


def _check_description(value: str) -> None:
    if len(value) > 1000:
        _invalid(value, "description", "Member must have length less than or equal to 1000")


def _tag_text_valid(text: str) -> bool:
    # The model's [\p{L}\p{Z}\p{N}_.:/=+\-@]: letters, separators (spaces), numbers and a little punctuation.
    return all(ch in _TAG_PUNCTUATION or unicodedata.category(ch)[0] in "LZN" for ch in text)


def _check_tags(tags: Sequence[tuple[str, str]]) -> Tags:
    if len(tags) > MAX_TAGS:
        raise TooManyTags("The number of tags has reached the maximum limit.")
    seen: set[str] = set()
    for index, (key, value) in enumerate(tags, start=1):
        if not 1 <= len(key) <= 128 or not _tag_text_valid(key):
            _invalid(
                key,
                f"tags.{index}.member.key",
                r"Member must satisfy regular expression pattern: "
                r"[\p{L}\p{Z}\p{N}_.:/=+\-@]+ and have length between 1 and 128",
            )
        if len(value) > 256 or not _tag_text_valid(value):
            _invalid(
                value,
                f"tags.{index}.member.value",
                r"Member must satisfy regular expression pattern: "
                r"[\p{L}\p{Z}\p{N}_.:/=+\-@]* and have length less than or equal to 256",
            )
        # IAM tag keys are case-insensitive.
        if key.lower() in seen:
            raise InvalidParameter("Duplicate tag keys found. Please note that Tag keys are case insensitive.")
        seen.add(key.lower())
    return tuple((key, value) for key, value in tags)


def _merge_tags(existing: Tags, added: Tags) -> Tags:
    replaced = {key.lower() for key, _ in added}
    merged = tuple(pair for pair in existing if pair[0].lower() not in replaced) + added
    if len(merged) > MAX_TAGS:
        raise TooManyTags("The number of tags has reached the maximum limit.")
    return merged


def _policy_size(text: str) -> int:
    return sum(1 for ch in text if not ch.isspace())


def _encode_marker(position: str) -> str:
    return base64.urlsafe_b64encode(position.encode()).decode()


def _decode_marker(marker: str | None) -> str | None:
    if marker is None:
        return None
    try:
        decoded = base64.urlsafe_b64decode(marker.encode()).decode()
    except (binascii.Error, ValueError):
        raise ValidationError("Invalid Marker.") from None
    return decoded


def _decode_name_marker(marker: str | None) -> str | None:
    """A marker that is a name, compared in SQL: no name holds NUL (and PostgreSQL text cannot)."""
    decoded = _decode_marker(marker)
    if decoded is not None and "\x00" in decoded:
        raise ValidationError("Invalid Marker.")
    return decoded


def _page_size(max_items: int | None) -> int:
    if max_items is None:
        return DEFAULT_MAX_ITEMS
    _check_range(max_items, "maxItems", 1, MAX_ITEMS_LIMIT)
    return max_items


def _paginate(items: Sequence[T], key: Callable[[T], str], marker: str | None, max_items: int | None) -> Page[T]:
    """A page of ``items`` (sorted by ``key``) after the marker's position."""
    after = _decode_marker(marker)
    size = _page_size(max_items)
    remaining = [item for item in items if after is None or key(item) > after]
    chunk = remaining[:size]
    return Page(tuple(chunk), _encode_marker(key(chunk[-1])) if len(remaining) > size else None)


def _sql_page(rows: Sequence[T], key: Callable[[T], str], size: int) -> Page[T]:
    """A page from ``size + 1`` rows fetched in key order: the extra row only says there is more."""
    chunk = rows[:size]
    return Page(tuple(chunk), _encode_marker(key(chunk[-1])) if len(rows) > size else None)


# -- generated identifiers and secrets -------------------------------------------------------------------


def _random_base32(length: int) -> str:
    return "".join(secrets.choice(_BASE32) for _ in range(length))


def _unique_id(prefix: str) -> str:
    """IAM unique ids: a four-letter type prefix (AIDA user, AROA role, ANPA policy) and 17 characters."""
    return prefix + _random_base32(17)


def _new_access_key_id(prefix: str) -> str:
    """AKIA (long-term) or ASIA (temporary) and 16 characters, as AWS access key ids are."""
    return prefix + _random_base32(16)


def _new_secret() -> str:
    return "".join(secrets.choice(_SECRET_ALPHABET) for _ in range(40))


def _new_session_token() -> str:
    return base64.b64encode(secrets.token_bytes(144)).decode()


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _aws_policy_id(arn: str) -> str:
    # AWS managed policies have ids of their own that no source we keep lists; derive a stable one of the same
    # form from the ARN, so every process and every restart shows the same id.
    digest = hashlib.sha256(arn.encode()).digest()
    return "ANPA" + "".join(_BASE32[byte % 32] for byte in digest[:17])


# -- the service -----------------------------------------------------------------------------------------


class IdentityService:
    """IAM users, roles, policies and access keys; STS sessions; and the authentication of access keys."""

    def __init__(
        self,
        store: MetadataStore,
        *,
        account_id: str,
        secret_box: SecretBox,
        clock: Callable[[], float] = time.time,
        policy_cache_size: int = 1024,
        generations: Generations | None = None,
    ) -> None:
        self.store = store
        self.account_id = account_id
        self.secret_box = secret_box
        self.clock = clock
        # Called with (ARN, unique id) after a user or role is deleted: policies naming it must stop matching
        # a new entity of the same name, as IAM's do.
        self.on_principal_deleted: list[Callable[[str, str], None]] = []
        self._documents: dict[tuple[PolicyKind, str], PolicyDocument] = {}
        self._documents_lock = threading.Lock()
        self._cache_size = policy_cache_size
        # Read on every request, changed rarely: cached per process while the access generation stands.
        self._credentials: GenerationCache[str, CredentialRecord | None] = GenerationCache(generations)
        self._owner_documents: GenerationCache[tuple[str, str], tuple[PolicyDocument, ...]] = (
            GenerationCache(generations))

    # -- ARNs ---------------------------------------------------------------------------------------------

    @property
    def root_arn(self) -> str:
        return f"arn:aws:iam::{self.account_id}:root"

    def root_created_at(self) -> float:
        """When the account root got its first access key: what ecrd knows of the root's creation date."""
        with self.store.read() as conn:
            keys = q.list_access_keys(conn, None)
        return min((key.created_at for key in keys), default=self.clock())

    def user_arn(self, name: str) -> str:
        """The ARN a user has, or would have at the root path: the resource to authorize an action on."""
        with self.store.read() as conn:
            user = q.get_user(conn, name)
        return user.arn(self.account_id) if user else f"arn:aws:iam::{self.account_id}:user/{name}"

    def role_arn(self, name: str) -> str:
        with self.store.read() as conn:
            role = q.get_role(conn, name)
        return role.arn(self.account_id) if role else f"arn:aws:iam::{self.account_id}:role/{name}"

    # -- authentication -----------------------------------------------------------------------------------

    def bootstrap_root(self, access_key_id: str | None, secret_access_key: str | None) -> tuple[str, str] | None:
        """Make sure the account root can sign requests.

        With a configured key: store it if it is new (a configured secret replaces a stored one, so that the
        configuration stays the truth). Without one: when the root has no key yet, generate one and return
        ``(access key id, secret)`` for the caller to show once. Concurrent starts generate at most one key.
        """
        if (access_key_id is None) != (secret_access_key is None):
            raise ValueError("the root access key id and secret go together")
        with self.store.write() as conn:
            q.lock_identity(conn)
            if access_key_id is not None and secret_access_key is not None:
                if _ACCESS_KEY_ID[0].fullmatch(access_key_id) is None or not 16 <= len(access_key_id) <= 128:
                    raise ValueError("the root access key id must be 16 to 128 letters, digits or underscores")
                if not secret_access_key:
                    raise ValueError("the root secret access key must not be empty")
                self._store_root_key(conn, access_key_id, secret_access_key)
                return None
            if q.count_access_keys(conn, None) > 0:
                return None
            key_id, secret = _new_access_key_id("AKIA"), _new_secret()
            q.insert_access_key(
                conn,
                access_key_id=key_id,
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
                conn, access_key_id=access_key_id, principal="root", sealed_secret=sealed, created_at=self.clock()
            )
            return
        if found.principal != "root" or found.temporary:
            raise ValueError(f"access key {access_key_id} is stored, and it is not a key of the account root")
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
            if not session_token or not hmac.compare_digest(_token_hash(session_token), record.session_token_hash):
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

    def _caller(self, record: CredentialRecord) -> Caller | None:
        if record.principal == "root":
            return Caller(
                arn=self.root_arn,
                account_id=self.account_id,
                user_id=self.account_id,
                is_root=True,
                access_key_id=record.access_key_id,
                expires_at=record.expires_at,
            )
        if record.principal == "user":
            if record.user_id is None or record.user_name is None or record.user_path is None:
                return None
            return Caller(
                arn=f"arn:aws:iam::{self.account_id}:user{record.user_path}{record.user_name}",
                account_id=self.account_id,
                user_id=record.user_id,
                username=record.user_name,
                access_key_id=record.access_key_id,
                expires_at=record.expires_at,
            )
        if record.role_id is None or record.role_name is None or record.role_path is None or not record.session_name:
            return None
        return Caller(
            arn=f"arn:aws:sts::{self.account_id}:assumed-role/{record.role_name}/{record.session_name}",
            account_id=self.account_id,
            user_id=f"{record.role_id}:{record.session_name}",
            access_key_id=record.access_key_id,
            aliases=(f"arn:aws:iam::{self.account_id}:role{record.role_path}{record.role_name}",),
            expires_at=record.expires_at,
        )

    # -- identity policies --------------------------------------------------------------------------------

    def identity_policies(self, caller: Caller) -> list[PolicyDocument]:
        """The inline and attached managed policies of the caller's user, or of the role of its session."""
        if caller.is_root or caller.account_id != self.account_id:
            return []
        if ":assumed-role/" in caller.arn:
            owner: Owner = "role"
            owner_id = caller.user_id.partition(":")[0]
        elif ":user/" in caller.arn:
            owner, owner_id = "user", caller.user_id
        else:
            return []
        return list(self._owner_documents.get((owner, owner_id), lambda: self._read_documents(owner, owner_id)))

    def _read_documents(self, owner: Owner, owner_id: str) -> tuple[PolicyDocument, ...]:
        with self.store.read() as conn:
            rows = q.identity_documents(conn, owner, owner_id)
        documents: list[PolicyDocument] = []
        for ref, text in rows:
            if text is not None:
                documents.append(self._parse(text, "identity"))
            elif ref is not None:
                aws = managed_policy(ref)
                if aws is not None:
                    documents.append(aws.document)
        return tuple(documents)

    def _parse(self, text: str, kind: PolicyKind) -> PolicyDocument:
        """Parse a stored policy once per process: the same few documents are read on every request."""
        key = (kind, text)
        with self._documents_lock:
            found = self._documents.get(key)
        if found is not None:
            return found
        document = parse_policy(text, kind=kind)
        with self._documents_lock:
            if len(self._documents) >= self._cache_size:
                # Drop the oldest entry (dicts keep insertion order); a miss only costs one parse.
                self._documents.pop(next(iter(self._documents)))
            self._documents[key] = document
        return document

    # -- shared helpers -----------------------------------------------------------------------------------

    @contextmanager
    def _creating(self, exists: EntityAlreadyExists) -> Iterator[Connection]:
        """A write transaction whose unique-name violation (a concurrent create) reads as ``exists``."""
        try:
            with self.store.write() as conn:
                yield conn
        except IntegrityError:
            raise exists from None

    def _user(self, conn: Connection, name: str, *, for_update: bool = False) -> UserRecord:
        user = q.get_user(conn, name, for_update=for_update)
        if user is None:
            raise NoSuchEntity(f"The user with name {name} cannot be found.")
        return user

    def _role(self, conn: Connection, name: str, *, for_update: bool = False) -> RoleRecord:
        role = q.get_role(conn, name, for_update=for_update)
        if role is None:
            raise NoSuchEntity(f"The role with name {name} cannot be found.")
        return role

    def _owner(self, conn: Connection, owner: Owner, name: str, *, for_update: bool = False) -> tuple[str, str]:
        """(id, name) of the user or role called ``name``."""
        if owner == "user":
            user = self._user(conn, name, for_update=for_update)
            return user.id, user.name
        role = self._role(conn, name, for_update=for_update)
        return role.id, role.name

    def _identity_document(self, text: str) -> PolicyDocument:
        if not text.strip():
            raise MalformedPolicyDocument("Syntax errors in policy.")
        return parse_policy(text, kind="identity")

    # -- users --------------------------------------------------------------------------------------------

    def create_user(self, name: str, *, path: str = "/", tags: Sequence[tuple[str, str]] = ()) -> UserRecord:
        _check_text(name, "userName", _NAME, 1, 64)
        _check_text(path, "path", _PATH, 1, 512)
        user = UserRecord(_unique_id("AIDA"), name, path, self.clock(), _check_tags(tags))
        exists = EntityAlreadyExists(f"User with name {name} already exists.")
        with self._creating(exists) as conn:
            if q.get_user(conn, name) is not None:
                raise exists
            if q.count_users(conn) >= MAX_USERS:
                raise LimitExceeded(f"Cannot exceed quota for UsersPerAccount: {MAX_USERS}")
            q.insert_user(conn, user)
        return user

    def get_user(self, name: str) -> UserRecord:
        with self.store.read() as conn:
            return self._user(conn, name)

    def list_users(
        self, *, path_prefix: str = "/", marker: str | None = None, max_items: int | None = None
    ) -> Page[UserRecord]:
        _check_text(path_prefix, "pathPrefix", _PATH_PREFIX, 1, 512)
        size = _page_size(max_items)
        with self.store.read() as conn:
            rows = q.list_users(conn, path_prefix=path_prefix, after=_decode_name_marker(marker), limit=size + 1)
        return _sql_page(rows, lambda user: user.name.lower(), size)

    def update_user(self, name: str, *, new_name: str | None = None, new_path: str | None = None) -> None:
        if new_name is not None:
            _check_text(new_name, "newUserName", _NAME, 1, 64)
        if new_path is not None:
            _check_text(new_path, "newPath", _PATH, 1, 512)
        exists = EntityAlreadyExists(f"User with name {new_name} already exists.")
        with self._creating(exists) as conn:
            user = self._user(conn, name, for_update=True)
            if new_name is not None and new_name.lower() != user.name.lower() and q.get_user(conn, new_name):
                raise exists
            q.update_user(conn, user.id, name=new_name or user.name, path=new_path or user.path)

    def delete_user(self, name: str) -> None:
        with self.store.write() as conn:
            user = self._user(conn, name, for_update=True)
            # IAM refuses to delete a user that still has things attached, naming the first it finds.
            if q.count_access_keys(conn, user.id):
                raise DeleteConflict("Cannot delete entity, must delete access keys first.")
            if q.count_inline_policies(conn, "user", user.id):
                raise DeleteConflict("Cannot delete entity, must delete policies first.")
            if q.count_attachments(conn, "user", user.id):
                raise DeleteConflict("Cannot delete entity, must detach all policies first.")
            # Temporary credentials of the user (GetSessionToken) go with it (foreign key cascade).
            q.delete_user(conn, user.id)
        self._principal_deleted(user.arn(self.account_id), user.id)

    def tag_user(self, name: str, tags: Sequence[tuple[str, str]]) -> None:
        added = _check_tags(tags)
        with self.store.write() as conn:
            user = self._user(conn, name, for_update=True)
            q.set_user_tags(conn, user.id, _merge_tags(user.tags, added))

    def untag_user(self, name: str, keys: Sequence[str]) -> None:
        removed = {key.lower() for key in keys}
        with self.store.write() as conn:
            user = self._user(conn, name, for_update=True)
            q.set_user_tags(conn, user.id, tuple(pair for pair in user.tags if pair[0].lower() not in removed))

    def list_user_tags(self, name: str) -> Tags:
        return self.get_user(name).tags

    # -- access keys --------------------------------------------------------------------------------------

    def create_access_key(self, user_name: str | None) -> NewAccessKey:
        """A new long-term key for the user, or for the account root when ``user_name`` is None."""
        now = self.clock()
        key_id, secret = _new_access_key_id("AKIA"), _new_secret()
        with self.store.write() as conn:
            user = self._user(conn, user_name, for_update=True) if user_name is not None else None
            if user is None:
                q.lock_identity(conn)
            if q.count_access_keys(conn, user.id if user else None) >= MAX_ACCESS_KEYS:
                raise LimitExceeded(f"Cannot exceed quota for AccessKeysPerUser: {MAX_ACCESS_KEYS}")
            q.insert_access_key(
                conn,
                access_key_id=key_id,
                principal="user" if user else "root",
                user_id=user.id if user else None,
                sealed_secret=self.secret_box.seal(secret, context=key_id),
                created_at=now,
            )
        return NewAccessKey(key_id, secret, user.name if user else None, ACTIVE, now)

    def list_access_keys(
        self, user_name: str | None, *, marker: str | None = None, max_items: int | None = None
    ) -> Page[AccessKeyRecord]:
        with self.store.read() as conn:
            user = self._user(conn, user_name) if user_name is not None else None
            keys = q.list_access_keys(conn, user.id if user else None)
        keys.sort(key=lambda key: key.access_key_id)
        return _paginate(keys, lambda key: key.access_key_id, marker, max_items)

    def update_access_key(self, user_name: str | None, access_key_id: str, status: str) -> None:
        if status not in (ACTIVE, INACTIVE):
            _invalid(status, "status", "Member must satisfy enum value set: [Active, Inactive]")
        with self.store.write() as conn:
            self._owned_key(conn, user_name, access_key_id)
            q.set_access_key_status(conn, access_key_id, status)

    def delete_access_key(self, user_name: str | None, access_key_id: str) -> None:
        with self.store.write() as conn:
            self._owned_key(conn, user_name, access_key_id)
            q.delete_access_key(conn, access_key_id)

    def _owned_key(self, conn: Connection, user_name: str | None, access_key_id: str) -> None:
        user = self._user(conn, user_name) if user_name is not None else None
        if not q.owns_access_key(conn, access_key_id, user.id if user else None):
            raise NoSuchEntity(f"The Access Key with id {access_key_id} cannot be found.")

    # -- inline policies ----------------------------------------------------------------------------------

    def put_user_policy(self, user_name: str, policy_name: str, document: str) -> None:
        self._put_inline("user", user_name, policy_name, document)

    def get_user_policy(self, user_name: str, policy_name: str) -> InlinePolicyRecord:
        return self._get_inline("user", user_name, policy_name)

    def list_user_policies(
        self, user_name: str, *, marker: str | None = None, max_items: int | None = None
    ) -> Page[str]:
        return self._list_inline("user", user_name, marker, max_items)

    def delete_user_policy(self, user_name: str, policy_name: str) -> None:
        self._delete_inline("user", user_name, policy_name)

    def put_role_policy(self, role_name: str, policy_name: str, document: str) -> None:
        self._put_inline("role", role_name, policy_name, document)

    def get_role_policy(self, role_name: str, policy_name: str) -> InlinePolicyRecord:
        return self._get_inline("role", role_name, policy_name)

    def list_role_policies(
        self, role_name: str, *, marker: str | None = None, max_items: int | None = None
    ) -> Page[str]:
        return self._list_inline("role", role_name, marker, max_items)

    def delete_role_policy(self, role_name: str, policy_name: str) -> None:
        self._delete_inline("role", role_name, policy_name)

    def _put_inline(self, owner: Owner, owner_name: str, policy_name: str, document: str) -> None:
        _check_text(policy_name, "policyName", _NAME, 1, 128)
        self._identity_document(document)
        limit = USER_INLINE_POLICY_SIZE if owner == "user" else ROLE_INLINE_POLICY_SIZE
        with self.store.write() as conn:
            owner_id, name = self._owner(conn, owner, owner_name, for_update=True)
            others = [p for p in q.list_inline_policies(conn, owner, owner_id) if p.name.lower() != policy_name.lower()]
            if sum(_policy_size(p.document) for p in others) + _policy_size(document) > limit:
                raise LimitExceeded(f"Maximum policy size of {limit} bytes exceeded for {owner} {name}")
            q.put_inline_policy(conn, owner, owner_id, policy_name, document)

    def _get_inline(self, owner: Owner, owner_name: str, policy_name: str) -> InlinePolicyRecord:
        with self.store.read() as conn:
            owner_id, _ = self._owner(conn, owner, owner_name)
            found = q.get_inline_policy(conn, owner, owner_id, policy_name)
        if found is None:
            raise NoSuchEntity(f"The {owner} policy with name {policy_name} cannot be found.")
        return found

    def _list_inline(self, owner: Owner, owner_name: str, marker: str | None, max_items: int | None) -> Page[str]:
        with self.store.read() as conn:
            owner_id, _ = self._owner(conn, owner, owner_name)
            names = [p.name for p in q.list_inline_policies(conn, owner, owner_id)]
        return _paginate(names, str.lower, marker, max_items)

    def _delete_inline(self, owner: Owner, owner_name: str, policy_name: str) -> None:
        with self.store.write() as conn:
            owner_id, _ = self._owner(conn, owner, owner_name, for_update=True)
            if not q.delete_inline_policy(conn, owner, owner_id, policy_name):
                raise NoSuchEntity(f"The {owner} policy with name {policy_name} cannot be found.")

    # -- managed policies ---------------------------------------------------------------------------------

    def _aws_record(self, policy: ManagedPolicy, attachment_count: int) -> PolicyRecord:
        created = policy.version_create_date.timestamp()
        return PolicyRecord(
            id=_aws_policy_id(policy.arn),
            name=policy.name,
            path=policy.path,
            description=policy.description,
            created_at=created,
            updated_at=created,
            default_version_id=policy.version_id,
            attachment_count=attachment_count,
            tags=(),
            aws_managed=True,
        )

    def _resolve_policy(self, conn: Connection, arn: str, *, for_update: bool = False) -> PolicyRecord | None:
        """The managed policy an ARN names, or None; an ARN that is not a policy ARN is invalid input."""
        match = _POLICY_ARN.fullmatch(arn)
        if match is None:
            raise InvalidParameter(f"ARN {arn} is not valid.")
        if match["account"] == "aws":
            aws = managed_policy(arn)
            if aws is None:
                return None
            return self._aws_record(aws, q.aws_policy_attachment_counts(conn).get(arn, 0))
        if match["account"] != self.account_id:
            return None
        policy = q.get_policy(conn, match["name"], for_update=for_update)
        if policy is None or policy.path != match["path"] or policy.name != match["name"]:
            return None
        return policy

    def _policy(self, conn: Connection, arn: str, *, for_update: bool = False) -> PolicyRecord:
        policy = self._resolve_policy(conn, arn, for_update=for_update)
        if policy is None:
            raise NoSuchEntity(f"Policy {arn} was not found.")
        return policy

    def _customer_policy(self, conn: Connection, arn: str) -> PolicyRecord:
        """A customer managed policy, locked for change; AWS managed policies are not the account's to change."""
        policy = self._policy(conn, arn, for_update=True)
        if policy.aws_managed:
            raise UnmodifiableEntity(f"Policy {arn} is an AWS managed policy and cannot be modified.")
        return policy

    def _managed_document(self, text: str) -> None:
        self._identity_document(text)
        if _policy_size(text) > MANAGED_POLICY_SIZE:
            raise LimitExceeded(f"Cannot exceed quota for PolicySize: {MANAGED_POLICY_SIZE}")

    def create_policy(
        self,
        name: str,
        document: str,
        *,
        path: str = "/",
        description: str = "",
        tags: Sequence[tuple[str, str]] = (),
    ) -> PolicyRecord:
        _check_text(name, "policyName", _NAME, 1, 128)
        _check_text(path, "path", _POLICY_PATH, 1, 512)
        _check_description(description)
        checked_tags = _check_tags(tags)
        self._managed_document(document)
        now = self.clock()
        policy = PolicyRecord(
            id=_unique_id("ANPA"),
            name=name,
            path=path,
            description=description,
            created_at=now,
            updated_at=now,
            default_version_id="v1",
            attachment_count=0,
            tags=checked_tags,
        )
        exists = EntityAlreadyExists(f"A policy called {name} already exists. Duplicate names are not allowed.")
        with self._creating(exists) as conn:
            if q.get_policy(conn, name) is not None:
                raise exists
            if q.count_policies(conn) >= MAX_CUSTOMER_POLICIES:
                raise LimitExceeded(f"Cannot exceed quota for PoliciesPerAccount: {MAX_CUSTOMER_POLICIES}")
            q.insert_policy(conn, policy, document)
        return policy

    def get_policy(self, arn: str) -> PolicyRecord:
        with self.store.read() as conn:
            return self._policy(conn, arn)

    def list_policies(
        self,
        *,
        scope: Literal["All", "AWS", "Local"] = "All",
        only_attached: bool = False,
        path_prefix: str = "/",
        marker: str | None = None,
        max_items: int | None = None,
    ) -> Page[PolicyRecord]:
        """Customer managed (Local) and the AWS managed ECR policies (AWS), by name; ``All`` is both."""
        if scope not in ("All", "AWS", "Local"):
            _invalid(scope, "scope", "Member must satisfy enum value set: [All, AWS, Local]")
        _check_text(path_prefix, "pathPrefix", _POLICY_PATH, 1, 512)
        size = _page_size(max_items)
        position = _decode_marker(marker)
        # Positions are "<name in lower case>\0<0 for AWS, 1 for Local>": a customer policy may share an AWS
        # managed policy's name, and both must appear exactly once across pages.
        after_name = None if position is None else position.partition("\0")[0]

        def key(policy: PolicyRecord) -> str:
            return f"{policy.name.lower()}\0{0 if policy.aws_managed else 1}"

        candidates: list[PolicyRecord] = []
        with self.store.read() as conn:
            if scope in ("All", "Local"):
                # From the marker's name on, inclusive: a customer policy may follow an AWS one of that name.
                candidates += q.list_policies(
                    conn, path_prefix=path_prefix, only_attached=only_attached, from_key=after_name, limit=size + 2
                )
            if scope in ("All", "AWS"):
                counts = q.aws_policy_attachment_counts(conn)
                for aws in MANAGED_POLICIES.values():
                    record = self._aws_record(aws, counts.get(aws.arn, 0))
                    if record.path.startswith(path_prefix) and (record.attachment_count or not only_attached):
                        candidates.append(record)
        ordered = sorted((p for p in candidates if position is None or key(p) > position), key=key)
        chunk = ordered[:size]
        return Page(tuple(chunk), _encode_marker(key(chunk[-1])) if len(ordered) > size else None)

    def delete_policy(self, arn: str) -> None:
        with self.store.write() as conn:
            policy = self._customer_policy(conn, arn)
            if policy.attachment_count:
                raise DeleteConflict("Cannot delete a policy attached to entities.")
            if len(q.list_policy_versions(conn, policy.id)) > 1:
                raise DeleteConflict(
                    "This policy has more than one version. Before you delete a policy, you must delete the "
                    "policy's versions. The default version is deleted with the policy."
                )
            q.delete_policy(conn, policy.id)

    def get_policy_version(self, arn: str, version_id: str) -> PolicyVersionRecord:
        with self.store.read() as conn:
            versions = self._versions(conn, arn)
        found = next((v for v in versions if v.version_id == version_id), None)
        if found is None:
            raise NoSuchEntity(f"Policy {arn} version {version_id} does not exist or is not attachable.")
        return found

    def list_policy_versions(
        self, arn: str, *, marker: str | None = None, max_items: int | None = None
    ) -> Page[PolicyVersionRecord]:
        with self.store.read() as conn:
            versions = self._versions(conn, arn)
        # Newest first, as IAM lists them; the marker is the position in that order.
        indexed = [(f"{index:04d}", version) for index, version in enumerate(versions)]
        page = _paginate(indexed, lambda pair: pair[0], marker, max_items)
        return Page(tuple(version for _, version in page.items), page.marker)

    def _versions(self, conn: Connection, arn: str) -> list[PolicyVersionRecord]:
        policy = self._policy(conn, arn)
        if policy.aws_managed:
            aws = MANAGED_POLICIES[arn]
            return [PolicyVersionRecord(aws.version_id, aws.document_text, True, policy.created_at)]
        return q.list_policy_versions(conn, policy.id)

    def create_policy_version(self, arn: str, document: str, *, set_as_default: bool = False) -> PolicyVersionRecord:
        self._managed_document(document)
        now = self.clock()
        with self.store.write() as conn:
            policy = self._customer_policy(conn, arn)
            if len(q.list_policy_versions(conn, policy.id)) >= MAX_POLICY_VERSIONS:
                raise LimitExceeded(
                    f"A managed policy can have up to {MAX_POLICY_VERSIONS} versions. Before you create a new "
                    "version, you must delete an existing version."
                )
            version_id = q.add_policy_version(conn, policy.id, document, created_at=now, make_default=set_as_default)
        return PolicyVersionRecord(version_id, document, set_as_default, now)

    def delete_policy_version(self, arn: str, version_id: str) -> None:
        with self.store.write() as conn:
            policy = self._customer_policy(conn, arn)
            version = q.get_policy_version(conn, policy.id, version_id)
            if version is None:
                raise NoSuchEntity(f"Policy {arn} version {version_id} does not exist or is not attachable.")
            if version.is_default:
                raise DeleteConflict("Cannot delete the default version of a policy.")
            q.delete_policy_version(conn, policy.id, version_id)

    def set_default_policy_version(self, arn: str, version_id: str) -> None:
        with self.store.write() as conn:
            policy = self._customer_policy(conn, arn)
            if q.get_policy_version(conn, policy.id, version_id) is None:
                raise NoSuchEntity(f"Policy {arn} version {version_id} does not exist or is not attachable.")
            q.set_default_policy_version(conn, policy.id, version_id, at=self.clock())

    def list_entities_for_policy(
        self, arn: str, *, entity_filter: str | None = None, path_prefix: str = "/"
    ) -> PolicyEntities:
        _check_text(path_prefix, "pathPrefix", _PATH, 1, 512)
        with self.store.read() as conn:
            policy = self._policy(conn, arn)
            users, roles = q.entities_for_policy(conn, arn if policy.aws_managed else policy.id)
        return PolicyEntities(
            users=tuple(u for u in users if u.path.startswith(path_prefix)) if entity_filter in (None, "User") else (),
            roles=tuple(r for r in roles if r.path.startswith(path_prefix)) if entity_filter in (None, "Role") else (),
        )

    # -- attachments --------------------------------------------------------------------------------------

    def attach_user_policy(self, user_name: str, policy_arn: str) -> None:
        self._attach("user", user_name, policy_arn)

    def detach_user_policy(self, user_name: str, policy_arn: str) -> None:
        self._detach("user", user_name, policy_arn)

    def list_attached_user_policies(
        self, user_name: str, *, path_prefix: str = "/", marker: str | None = None, max_items: int | None = None
    ) -> Page[AttachedPolicy]:
        return self._list_attached("user", user_name, path_prefix, marker, max_items)

    def attach_role_policy(self, role_name: str, policy_arn: str) -> None:
        self._attach("role", role_name, policy_arn)

    def detach_role_policy(self, role_name: str, policy_arn: str) -> None:
        self._detach("role", role_name, policy_arn)

    def list_attached_role_policies(
        self, role_name: str, *, path_prefix: str = "/", marker: str | None = None, max_items: int | None = None
    ) -> Page[AttachedPolicy]:
        return self._list_attached("role", role_name, path_prefix, marker, max_items)

    def _attach(self, owner: Owner, owner_name: str, policy_arn: str) -> None:
        with self.store.write() as conn:
            owner_id, _ = self._owner(conn, owner, owner_name, for_update=True)
            # Locking a customer policy's row keeps a concurrent DeletePolicy from passing its attachment check.
            policy = self._resolve_policy(conn, policy_arn, for_update=True)
            if policy is None:
                raise NoSuchEntity(f"Policy {policy_arn} does not exist or is not attachable.")
            ref = policy_arn if policy.aws_managed else policy.id
            if ref in {a.policy_ref for a in q.list_attachments(conn, owner, owner_id)}:
                return  # IAM: attaching an attached policy succeeds and changes nothing
            if q.count_attachments(conn, owner, owner_id) >= MAX_ATTACHED_POLICIES:
                quota = "PoliciesPerUser" if owner == "user" else "PoliciesPerRole"
                raise LimitExceeded(f"Cannot exceed quota for {quota}: {MAX_ATTACHED_POLICIES}")
            q.attach_policy(
                conn,
                owner,
                owner_id,
                policy_ref=ref,
                policy_id=None if policy.aws_managed else policy.id,
                at=self.clock(),
            )

    def _detach(self, owner: Owner, owner_name: str, policy_arn: str) -> None:
        with self.store.write() as conn:
            owner_id, _ = self._owner(conn, owner, owner_name, for_update=True)
            policy = self._resolve_policy(conn, policy_arn)
            ref = None if policy is None else policy_arn if policy.aws_managed else policy.id
            if ref is None or not q.detach_policy(conn, owner, owner_id, ref):
                raise NoSuchEntity(f"Policy {policy_arn} was not found.")

    def _list_attached(
        self, owner: Owner, owner_name: str, path_prefix: str, marker: str | None, max_items: int | None
    ) -> Page[AttachedPolicy]:
        _check_text(path_prefix, "pathPrefix", _POLICY_PATH, 1, 512)
        with self.store.read() as conn:
            owner_id, _ = self._owner(conn, owner, owner_name)
            attachments = q.list_attachments(conn, owner, owner_id)
        attached: list[tuple[str, AttachedPolicy]] = []
        for attachment in attachments:
            if attachment.policy_id is None:
                match = _POLICY_ARN.fullmatch(attachment.policy_ref)
                path, name = (match["path"], match["name"]) if match else ("/", attachment.policy_ref)
                arn = attachment.policy_ref
            else:
                path, name = attachment.path or "/", attachment.name or ""
                arn = f"arn:aws:iam::{self.account_id}:policy{path}{name}"
            if path.startswith(path_prefix):
                attached.append((f"{name.lower()}\0{arn}", AttachedPolicy(name, arn)))
        attached.sort(key=lambda pair: pair[0])
        page = _paginate(attached, lambda pair: pair[0], marker, max_items)
        return Page(tuple(policy for _, policy in page.items), page.marker)

    # -- roles --------------------------------------------------------------------------------------------

    def _trust_policy(self, conn: Connection, text: str) -> PolicyDocument:
        """Validate a role's trust policy as IAM does: a resource policy for sts actions, without Resource,
        whose IAM principals in this account exist."""
        if _policy_size(text) > TRUST_POLICY_SIZE:
            raise LimitExceeded(f"Cannot exceed quota for ACLSizePerRole: {TRUST_POLICY_SIZE}")
        if not text.strip():
            raise MalformedPolicyDocument("Syntax errors in policy.")
        document = parse_policy(text, kind="resource")
        for statement in document.statements:
            if statement.resources is not None or statement.not_resources is not None:
                raise MalformedPolicyDocument("Has prohibited field Resource")
            for action in statement.actions or ():
                if not action.lower().startswith("sts:"):
                    raise MalformedPolicyDocument("AssumeRole policy may only specify STS AssumeRole actions.")
            for entry in statement.principals.aws if statement.principals else ():
                match = _ENTITY_ARN.fullmatch(entry)
                if match is None or match["account"] != self.account_id:
                    continue
                found: UserRecord | RoleRecord | None = (
                    q.get_user(conn, match["name"]) if match["kind"] == "user" else q.get_role(conn, match["name"])
                )
                # IAM checks that the users and roles a trust policy names exist ("Invalid principal").
                if found is None or found.path != match["path"] or found.name != match["name"]:
                    raise MalformedPolicyDocument(f'Invalid principal in policy: "AWS":"{entry}"')
        return document

    def create_role(
        self,
        name: str,
        assume_role_policy: str,
        *,
        path: str = "/",
        description: str = "",
        max_session_duration: int = ROLE_SESSION_DEFAULT,
        tags: Sequence[tuple[str, str]] = (),
    ) -> RoleRecord:
        _check_text(name, "roleName", _NAME, 1, 64)
        _check_text(path, "path", _PATH, 1, 512)
        _check_description(description)
        _check_range(max_session_duration, "maxSessionDuration", ROLE_SESSION_DEFAULT, ROLE_SESSION_MAX)
        role = RoleRecord(
            id=_unique_id("AROA"),
            name=name,
            path=path,
            created_at=self.clock(),
            description=description,
            max_session_duration=max_session_duration,
            assume_role_policy=assume_role_policy,
            tags=_check_tags(tags),
        )
        exists = EntityAlreadyExists(f"Role with name {name} already exists.")
        with self._creating(exists) as conn:
            self._trust_policy(conn, assume_role_policy)
            if q.get_role(conn, name) is not None:
                raise exists
            if q.count_roles(conn) >= MAX_ROLES:
                raise LimitExceeded(f"Cannot exceed quota for RolesPerAccount: {MAX_ROLES}")
            q.insert_role(conn, role)
        return role

    def get_role(self, name: str) -> RoleRecord:
        with self.store.read() as conn:
            return self._role(conn, name)

    def list_roles(
        self, *, path_prefix: str = "/", marker: str | None = None, max_items: int | None = None
    ) -> Page[RoleRecord]:
        _check_text(path_prefix, "pathPrefix", _PATH_PREFIX, 1, 512)
        size = _page_size(max_items)
        with self.store.read() as conn:
            rows = q.list_roles(conn, path_prefix=path_prefix, after=_decode_name_marker(marker), limit=size + 1)
        return _sql_page(rows, lambda role: role.name.lower(), size)

    def update_role(
        self, name: str, *, description: str | None = None, max_session_duration: int | None = None
    ) -> None:
        values: dict[str, object] = {}
        if description is not None:
            _check_description(description)
            values["description"] = description
        if max_session_duration is not None:
            _check_range(max_session_duration, "maxSessionDuration", ROLE_SESSION_DEFAULT, ROLE_SESSION_MAX)
            values["max_session_duration"] = max_session_duration
        with self.store.write() as conn:
            role = self._role(conn, name, for_update=True)
            q.update_role(conn, role.id, **values)

    def update_assume_role_policy(self, name: str, document: str) -> None:
        with self.store.write() as conn:
            role = self._role(conn, name, for_update=True)
            self._trust_policy(conn, document)
            q.update_role(conn, role.id, assume_role_policy=document)

    def delete_role(self, name: str) -> None:
        with self.store.write() as conn:
            role = self._role(conn, name, for_update=True)
            if q.count_attachments(conn, "role", role.id):
                raise DeleteConflict("Cannot delete entity, must detach all policies first.")
            if q.count_inline_policies(conn, "role", role.id):
                raise DeleteConflict("Cannot delete entity, must delete policies first.")
            # The role's sessions end with it (foreign key cascade on their credentials).
            q.delete_role(conn, role.id)
        self._principal_deleted(role.arn(self.account_id), role.id)

    def _principal_deleted(self, arn: str, unique_id: str) -> None:
        for hook in self.on_principal_deleted:
            hook(arn, unique_id)

    def principal_exists(self, arn: str) -> bool:
        """Whether an IAM user or role ARN of this account names an existing entity (path included)."""
        prefix = f"arn:aws:iam::{self.account_id}:"
        if not arn.startswith(prefix):
            return True  # other accounts' principals cannot be checked here
        kind, _, rest = arn[len(prefix):].partition("/")
        name = rest.rsplit("/", 1)[-1]
        try:
            if kind == "user":
                return self.user_arn(name) == arn and self.get_user(name) is not None
            if kind == "role":
                return self.role_arn(name) == arn and self.get_role(name) is not None
        except NoSuchEntity:
            return False
        return True

    def tag_role(self, name: str, tags: Sequence[tuple[str, str]]) -> None:
        added = _check_tags(tags)
        with self.store.write() as conn:
            role = self._role(conn, name, for_update=True)
            q.set_role_tags(conn, role.id, _merge_tags(role.tags, added))

    def untag_role(self, name: str, keys: Sequence[str]) -> None:
        removed = {key.lower() for key in keys}
        with self.store.write() as conn:
            role = self._role(conn, name, for_update=True)
            q.set_role_tags(conn, role.id, tuple(pair for pair in role.tags if pair[0].lower() not in removed))

    def list_role_tags(self, name: str) -> Tags:
        return self.get_role(name).tags

    # -- STS ----------------------------------------------------------------------------------------------

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
        caller's identity policies must allow sts:AssumeRole on the role too. An explicit deny anywhere wins.
        """
        _check_text(session_name, "roleSessionName", _SESSION_NAME, 2, 64)
        if duration_seconds is not None:
            _check_range(duration_seconds, "durationSeconds", ROLE_SESSION_MIN, ROLE_SESSION_MAX)
        if caller.is_root:
            raise AccessDenied("Roles may not be assumed by root accounts.")
        denied = AccessDenied(
            f"User: {caller.arn} is not authorized to perform: sts:AssumeRole on resource: {role_arn}"
        )
        match = _ROLE_ARN.fullmatch(role_arn)
        if match is None or match["account"] != self.account_id:
            # Another account's roles do not exist here; AWS answers a role it cannot find with AccessDenied.
            raise denied
        with self.store.read() as conn:
            role = q.get_role(conn, match["name"])
        if role is None or role.path != match["path"] or role.name != match["name"]:
            raise denied

        chained = ":assumed-role/" in caller.arn
        duration = duration_seconds if duration_seconds is not None else ROLE_SESSION_DEFAULT
        if chained and duration > ROLE_CHAINING_MAX:
            raise ValidationError(
                "The requested DurationSeconds exceeds the 1 hour session limit for roles assumed by role chaining."
            )
        if duration > role.max_session_duration:
            raise ValidationError("The requested DurationSeconds exceeds the MaxSessionDuration set for this role.")

        now = self.clock()
        context = request_context(caller, now, {"sts:RoleSessionName": session_name})
        if external_id is not None:
            context["sts:ExternalId"] = external_id
        trust = self._parse(role.assume_role_policy, "resource")
        principal = Principal(arn=caller.arn, account_id=caller.account_id, aliases=caller.aliases)
        resource = role.arn(self.account_id)
        request = AuthorizationRequest(principal, "sts:AssumeRole", resource, self.account_id, context)
        decision = evaluate(request, self.identity_policies(caller), trust)
        if not decision.allowed:
            raise AccessDenied(decision.denial_message(request))
        # Within one account, evaluate() lets an identity policy alone allow; a role also needs its trust
        # policy to admit the caller. Asked as if across accounts with an identity side that allows anything,
        # evaluate() answers exactly that: does the trust policy allow this principal (directly or through its
        # account)?
        across = AuthorizationRequest(principal, "sts:AssumeRole", resource, _OTHER_ACCOUNT, context)
        if not evaluate(across, [_ALLOW_EVERYTHING], trust).allowed:
            raise denied

        key_id, secret, token = _new_access_key_id("ASIA"), _new_secret(), _new_session_token()
        expires = now + duration
        try:
            with self.store.write() as conn:
                # Expired sessions are never valid again; clearing them here keeps the table the size of the
                # live sessions without a sweeper.
                q.delete_expired_credentials(conn, now)
                q.insert_access_key(
                    conn,
                    access_key_id=key_id,
                    principal="role",
                    role_id=role.id,
                    session_name=session_name,
                    sealed_secret=self.secret_box.seal(secret, context=key_id),
                    session_token_hash=_token_hash(token),
                    created_at=now,
                    expires_at=expires,
                )
        except IntegrityError:
            raise denied from None  # the role was deleted a moment ago
        return AssumedRole(
            credentials=TemporaryCredentials(key_id, secret, token, expires),
            assumed_role_id=f"{role.id}:{session_name}",
            arn=f"arn:aws:sts::{self.account_id}:assumed-role/{role.name}/{session_name}",
        )

    def get_session_token(self, caller: Caller, duration_seconds: int | None = None) -> TemporaryCredentials:
        """Temporary credentials with the caller's own permissions (for the root or an IAM user)."""
        if caller.expires_at is not None or ":assumed-role/" in caller.arn:
            raise AccessDenied("Cannot call GetSessionToken with session credentials")
        if duration_seconds is not None:
            _check_range(duration_seconds, "durationSeconds", ROLE_SESSION_MIN, SESSION_TOKEN_MAX)
        if caller.is_root:
            # STS: sessions of the root user last at most one hour, and that is also their default.
            duration = min(duration_seconds or ROOT_SESSION_TOKEN_MAX, ROOT_SESSION_TOKEN_MAX)
        else:
            duration = duration_seconds or SESSION_TOKEN_DEFAULT
        now = self.clock()
        key_id, secret, token = _new_access_key_id("ASIA"), _new_secret(), _new_session_token()
        invalid = InvalidClientToken("The security token included in the request is invalid.")
        try:
            with self.store.write() as conn:
                q.delete_expired_credentials(conn, now)
                q.insert_access_key(
                    conn,
                    access_key_id=key_id,
                    principal="root" if caller.is_root else "user",
                    user_id=None if caller.is_root else caller.user_id,
                    sealed_secret=self.secret_box.seal(secret, context=key_id),
                    session_token_hash=_token_hash(token),
                    created_at=now,
                    expires_at=now + duration,
                )
        except IntegrityError:
            raise invalid from None  # the user was deleted a moment ago
        return TemporaryCredentials(key_id, secret, token, now + duration)
