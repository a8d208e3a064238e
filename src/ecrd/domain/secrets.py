"""Secrets Manager's rules as pure values: secret names and ARNs, secret values, the recovery window, staging
labels and how they move between versions, and ListSecrets' filters.

The rules are AWS's (Secrets Manager API reference and user guide, "Secret versions", "Find secrets"); where the
documentation is silent, docs/decisions/0021-secrets-manager.md says what ecrd does.
"""

from __future__ import annotations

import hmac
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final, Literal

from ecrd.errors import InvalidParameter, LimitExceeded, SecretInvalidRequest

CURRENT: Final = "AWSCURRENT"
PREVIOUS: Final = "AWSPREVIOUS"
PENDING: Final = "AWSPENDING"

SUFFIX_LENGTH: Final = 6
SUFFIX_ALPHABET: Final = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
# Secrets Manager quotas ("Secrets Manager quotas"): 65,536 bytes of value, 20 labels on a version, about 100
# versions kept (the oldest without a label are removed beyond that), 50 tags.
MAX_VALUE_BYTES: Final = 65536
MAX_STAGES_PER_VERSION: Final = 20
MAX_VERSIONS: Final = 100
MAX_TAGS: Final = 50
MIN_RECOVERY_DAYS: Final = 7
MAX_RECOVERY_DAYS: Final = 30
DEFAULT_RECOVERY_DAYS: Final = 30

# "The secret name can contain ASCII letters, numbers, and the following characters: /_+=.@-" (CreateSecret).
_NAME: Final = re.compile(r"[A-Za-z0-9/_+=.@!-]+")
_SECRET_ARN: Final = re.compile(r"arn:aws:secretsmanager:(?P<region>[^:]+):(?P<account>[0-9]{12}):secret:(?P<name>.+)")


# -- names and ARNs --------------------------------------------------------------------------------------


def check_secret_name(name: str) -> None:
    if _NAME.fullmatch(name) is None:
        raise InvalidParameter(
            "Invalid name. Must be a valid name containing alphanumeric characters, or any of the following: -/_+=.@!"
        )


def secret_arn(region: str, account_id: str, name: str, suffix: str) -> str:
    """``arn:aws:secretsmanager:REGION:ACCOUNT:secret:NAME-XXXXXX``: the name and six random characters, so an
    ARN never names a later secret of the same name."""
    return f"arn:aws:secretsmanager:{region}:{account_id}:secret:{name}-{suffix}"


@dataclass(frozen=True, slots=True)
class SecretReference:
    """What a ``SecretId`` names: a full ARN (``arn``), or a name (``name``: given as such, or a partial ARN
    without the random suffix, which names the secret of that name). A name is looked up in the caller's own
    account; an ARN of another account (``other_account``) only as the full ARN, as Secrets Manager requires for
    cross-account access."""

    arn: str | None = None
    name: str | None = None
    other_account: bool = False


def secret_reference(secret_id: str, region: str, account_id: str) -> SecretReference | None:
    """How to look ``secret_id`` up from ``account_id`` in ``region``; None when it is an ARN of another region
    (secrets are regional: kept elsewhere)."""
    match = _SECRET_ARN.fullmatch(secret_id)
    if match is None:
        return SecretReference(name=secret_id)
    if match["region"] != region:
        return None
    if match["account"] != account_id:
        return SecretReference(arn=secret_id, other_account=True)
    return SecretReference(arn=secret_id, name=match["name"])


def secret_account(secret_arn: str) -> str:
    """The account a secret's ARN names."""
    return secret_arn.split(":", 5)[4]


# -- values ----------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SecretValue:
    """A secret's value: text (SecretString) or bytes (SecretBinary). It never shows itself in a repr or a
    log line, and compares in constant time."""

    string: str | None = field(default=None, repr=False)
    binary: bytes | None = field(default=None, repr=False)

    @property
    def kind(self) -> Literal["string", "binary"]:
        return "string" if self.string is not None else "binary"

    def encoded(self) -> bytes:
        return self.string.encode() if self.string is not None else (self.binary or b"")

    @classmethod
    def decoded(cls, kind: str, data: bytes) -> SecretValue:
        return cls(string=data.decode()) if kind == "string" else cls(binary=data)

    def same_as(self, other: SecretValue) -> bool:
        # Both members are compared, whatever the first says: the time taken tells nothing of the values.
        kinds = self.kind == other.kind
        return hmac.compare_digest(self.encoded(), other.encoded()) and kinds


def value_of(string: str | None, binary: bytes | None, *, required: bool) -> SecretValue | None:
    """The value a request carries in SecretString or SecretBinary (one of them, never both)."""
    if string is not None and binary is not None:
        raise InvalidParameter(
            "You can't specify both a binary secret value and a string secret value in the same secret."
        )
    if string is None and binary is None:
        if required:
            raise InvalidParameter("You must provide either SecretString or SecretBinary.")
        return None
    value = SecretValue(string=string, binary=binary)
    if len(value.encoded()) > MAX_VALUE_BYTES:
        raise InvalidParameter(f"The secret value exceeds the maximum size of {MAX_VALUE_BYTES} bytes.")
    return value


# -- deletion --------------------------------------------------------------------------------------------


def recovery_days(window: int | None, force: bool | None) -> int:
    """Days until a deleted secret is gone: 0 when forced, else the window (7–30, default 30)."""
    if force and window is not None:
        raise InvalidParameter("You can't use ForceDeleteWithoutRecovery in conjunction with RecoveryWindowInDays.")
    if force:
        return 0
    if window is None:
        return DEFAULT_RECOVERY_DAYS
    if not MIN_RECOVERY_DAYS <= window <= MAX_RECOVERY_DAYS:
        raise InvalidParameter(
            f"The RecoveryWindowInDays value must be between {MIN_RECOVERY_DAYS} and {MAX_RECOVERY_DAYS} days "
            "(inclusive)."
        )
    return window


MARKED_FOR_DELETION: Final = "You can't perform this operation on the secret because it was marked for deletion."


def refuse_if_deleted(deleted_at: float | None) -> None:
    if deleted_at is not None:
        raise SecretInvalidRequest(MARKED_FOR_DELETION)


# -- staging labels --------------------------------------------------------------------------------------


def check_stages(stages: Sequence[str]) -> list[str]:
    unique = list(dict.fromkeys(stages))
    if len(unique) > MAX_STAGES_PER_VERSION:
        raise LimitExceeded(f"A version can have at most {MAX_STAGES_PER_VERSION} staging labels.")
    return unique


def stage_new_version(current: Mapping[str, str], version_id: str, stages: Sequence[str]) -> dict[str, str | None]:
    """The label moves a new version ``version_id`` labelled ``stages`` makes: each label leaves the version
    holding it for the new one, and when AWSCURRENT moves, the version that held it becomes AWSPREVIOUS."""
    moves: dict[str, str | None] = {stage: version_id for stage in check_stages(stages)}
    previous = current.get(CURRENT)
    if CURRENT in moves and previous is not None and previous != version_id:
        moves[PREVIOUS] = previous
    return moves


def move_stage(
    current: Mapping[str, str],
    stage: str,
    *,
    remove_from: str | None,
    move_to: str | None,
    versions: Iterable[str],
) -> dict[str, str | None]:
    """The label moves of UpdateSecretVersionStage: take ``stage`` off ``remove_from`` and/or put it on
    ``move_to``; moving AWSCURRENT leaves AWSPREVIOUS on the version that held it."""
    known = set(versions)
    for version in (remove_from, move_to):
        if version is not None and version not in known:
            raise InvalidParameter(f"The version {version} doesn't exist for this secret.")
    holder = current.get(stage)
    if remove_from is not None and holder != remove_from:
        raise InvalidParameter(
            f"The staging label {stage} is currently attached to version {holder}, but you have specified version "
            f"{remove_from} as the version to remove the label from."
        )
    if move_to is None:
        if stage == CURRENT:
            raise InvalidParameter(
                f"You can't remove the staging label {CURRENT} from a version without moving it to another."
            )
        return {stage: None} if remove_from is not None else {}
    if holder is not None and holder != move_to and remove_from is None:
        raise InvalidParameter(
            f"The staging label {stage} is currently attached to version {holder}, but you have not specified "
            "the version to remove the label from."
        )
    if stage == CURRENT and holder is not None and holder != move_to:
        return {CURRENT: move_to, PREVIOUS: holder}
    return {stage: move_to}


def labels_by_version(stages: Mapping[str, str]) -> dict[str, list[str]]:
    """{version id: its labels} from {label: version id}."""
    found: dict[str, list[str]] = {}
    for stage, version in sorted(stages.items()):
        found.setdefault(version, []).append(stage)
    return found


def outdated_versions(versions_oldest_first: Sequence[str], stages: Mapping[str, str]) -> list[str]:
    """The versions to remove once a secret has more than MAX_VERSIONS: the oldest that carry no label."""
    excess = len(versions_oldest_first) - MAX_VERSIONS
    if excess <= 0:
        return []
    labelled = set(stages.values())
    return [version for version in versions_oldest_first if version not in labelled][:excess]


# -- ListSecrets filters ---------------------------------------------------------------------------------

FilterKey = Literal["description", "name", "tag-key", "tag-value", "primary-region", "owning-service", "all"]
# Words of an attribute, as the "all" filter splits them ("Find secrets": names split at / _ + = . @ -).
_WORD: Final = re.compile(r"[^\s/_+=.@-]+")


@dataclass(frozen=True, slots=True)
class SecretFacts:
    """What ListSecrets' filters look at."""

    name: str
    description: str
    tags: tuple[tuple[str, str], ...]
    primary_region: str = ""
    owning_service: str = ""


@dataclass(frozen=True, slots=True)
class SecretFilter:
    key: FilterKey
    values: tuple[str, ...]

    def matches(self, facts: SecretFacts) -> bool:
        """Values of one filter are alternatives; a value beginning with ``!`` excludes what it matches."""
        positives = [value for value in self.values if not value.startswith("!")]
        negatives = [value[1:] for value in self.values if value.startswith("!")]
        if any(self._matches(facts, value) for value in negatives):
            return False
        return not positives or any(self._matches(facts, value) for value in positives)

    def _matches(self, facts: SecretFacts, value: str) -> bool:
        # "Find secrets": prefix matches; case-sensitive except description and all.
        if self.key == "name":
            return facts.name.startswith(value)
        if self.key == "description":
            return facts.description.lower().startswith(value.lower())
        if self.key == "tag-key":
            return any(key.startswith(value) for key, _ in facts.tags)
        if self.key == "tag-value":
            return any(tag_value.startswith(value) for _, tag_value in facts.tags)
        if self.key == "primary-region":
            return facts.primary_region.startswith(value)
        if self.key == "owning-service":
            return facts.owning_service.startswith(value)
        # all: every word of the value begins a word of some attribute, whatever the case.
        words = {
            word.lower()
            for text in (facts.name, facts.description, *(part for tag in facts.tags for part in tag))
            for word in [text, *_WORD.findall(text)]
        }
        wanted = [word.lower() for word in value.split()]
        return all(any(word.startswith(part) for word in words) for part in wanted)


def filters_match(filters: Sequence[SecretFilter], facts: SecretFacts) -> bool:
    """Filters combine with AND."""
    return all(secret_filter.matches(facts) for secret_filter in filters)
