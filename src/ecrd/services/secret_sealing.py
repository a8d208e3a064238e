"""Secret values at rest, as Secrets Manager keeps them: each version sealed (AES-256-GCM) with a fresh data key
that the secret's KMS key made, with the encryption context ``{"SecretARN": …, "SecretVersionId": …}``.

The key is the one the secret names (``KmsKeyId``), else the AWS managed key ``aws/secretsmanager``, created on
first use as AWS does. A caller reaches the key through Secrets Manager (kms:ViaService
``secretsmanager.<region>.amazonaws.com``): writing a value needs kms:GenerateDataKey and kms:Decrypt on it,
reading one kms:Decrypt ("Secret encryption and decryption in AWS Secrets Manager"). The managed key's policy
grants those to every principal of the account through Secrets Manager; a customer managed key's policy and the
caller's IAM policies decide as they do for any KMS call. The registry reading a secret for itself
(``caller=None``) is not a KMS caller and is not asked.

The managed key is the secret's own account's. A caller of another account cannot use it ("you can't use the AWS
managed key (aws/secretsmanager) for cross-account access"): reading a value it sealed is refused by its key
policy (kms:CallerAccount), and a value that would be sealed with it is refused before any key is made. A
customer managed key, named by its ARN, serves callers its key policy allows, of any account.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, TypeVar

from ecrd.domain.secrets import SecretValue, secret_account
from ecrd.errors import AccessDenied, EcrdError, SecretDecryptionFailure, SecretEncryptionFailure
from ecrd.metadata.secrets import VersionRow
from ecrd.services.access import Caller
from ecrd.services.keys import DATA_KEY_BYTES, seal, unseal
from ecrd.services.kms import KeyService
from ecrd.services.kms_keys import KeyRecord
from ecrd.services.kms_policies import MANAGED_SECRETS_MANAGER_KEY

VIA_SERVICE: Final = "secretsmanager"
# Secrets Manager's own wording when the caller may not use the secret's key.
KMS_ACCESS_DENIED: Final = "Access to KMS is not allowed"

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class SealedValue:
    """A version's value as stored: the KMS key, the data key wrapped by it, and the value sealed with it."""

    key_arn: str
    wrapped_key: bytes
    sealed_value: bytes


def _context(secret_arn: str, version_id: str) -> dict[str, str]:
    return {"SecretARN": secret_arn, "SecretVersionId": version_id}


def _associated(secret_arn: str, version_id: str, kind: str) -> bytes:
    # The value is bound to its secret, version and kind: a row copied elsewhere does not open.
    return f"{secret_arn}\x00{version_id}\x00{kind}".encode()


class SecretSealer:
    def __init__(self, kms: KeyService) -> None:
        self.kms = kms

    def key_reference(self, kms_key_id: str | None) -> str | None:
        """What a secret records of the ``KmsKeyId`` it was given: the key's ARN, or the alias's ARN for an
        alias (resolved at each use, as KMS resolves aliases); None for the AWS managed key."""
        if not kms_key_id or self.kms.managed_key_named(kms_key_id) is MANAGED_SECRETS_MANAGER_KEY:
            return None
        self._kms_step(SecretEncryptionFailure, lambda: self.kms.resolve_key(kms_key_id))
        return self.kms.reference_arn(kms_key_id)

    def _key(self, reference: str | None, secret_arn: str, caller: Caller | None) -> str:
        """The key that seals a new value of the secret: the one it names, else its account's AWS managed key —
        which a caller of another account may not use."""
        if reference is not None:
            return reference
        if secret_account(secret_arn) != self.kms.account_id or (
            caller is not None and caller.account_id != self.kms.account_id
        ):
            raise AccessDenied(KMS_ACCESS_DENIED)
        return self.kms.managed_key(MANAGED_SECRETS_MANAGER_KEY, caller.arn if caller else "").arn

    def _authorize(self, caller: Caller | None, action: str, key: str, context: dict[str, str]) -> KeyRecord | None:
        if caller is None:
            return None
        try:
            return self.kms.authorize(caller, action, key, via_service=VIA_SERVICE, encryption_context=context)
        except AccessDenied:
            raise AccessDenied(KMS_ACCESS_DENIED) from None

    def seal(
        self, caller: Caller | None, key_reference: str | None, secret_arn: str, version_id: str, value: SecretValue
    ) -> SealedValue:
        """Seal ``value`` as version ``version_id`` of the secret, with a data key from its KMS key."""
        context = _context(secret_arn, version_id)

        def wrap() -> tuple[str, bytes, bytes]:
            key = self._key(key_reference, secret_arn, caller)
            for action in ("kms:GenerateDataKey", "kms:Decrypt"):
                self._authorize(caller, action, key, context)
            record = self.kms.resolve_key(key)
            data_key, wrapped = self.kms.generate_data_key(record.arn, context=context, number_of_bytes=DATA_KEY_BYTES)
            return record.arn, data_key, wrapped

        key_arn, data_key, wrapped = self._kms_step(SecretEncryptionFailure, wrap)
        sealed = seal(data_key, value.encoded(), _associated(secret_arn, version_id, value.kind))
        return SealedValue(key_arn, wrapped, sealed)

    def open(self, caller: Caller | None, secret_arn: str, version: VersionRow) -> SecretValue:
        """The value of a stored version, its data key unwrapped by the KMS key that made it."""
        context = _context(secret_arn, version.version_id)

        def unwrap() -> bytes:
            self._authorize(caller, "kms:Decrypt", version.key_arn, context)
            return self.kms.decrypt(version.wrapped_key, context, key_id=version.key_arn)[1]

        data_key = self._kms_step(SecretDecryptionFailure, unwrap)
        associated = _associated(secret_arn, version.version_id, version.kind)
        return SecretValue.decoded(version.kind, unseal(data_key, version.sealed_value, associated))

    @staticmethod
    def _kms_step(failure: type[EcrdError], step: Callable[[], T]) -> T:
        """Run a step that uses the key service; a key it cannot use (missing, disabled, pending deletion) is
        Secrets Manager's EncryptionFailure or DecryptionFailure, carrying the key service's own words."""
        try:
            return step()
        except AccessDenied:
            raise
        except EcrdError as exc:
            raise failure(f"{exc.message} ({exc.aws_type})") from None
