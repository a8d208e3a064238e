"""Data keys at rest: each blob and each repository's manifests are sealed with a data key, and data keys
are wrapped by the repository's key — a key derived from the master key for AES256 repositories, the
repository's KMS key (or the AWS managed ``alias/aws/ecr``) for KMS ones."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ecrd.domain.arns import repository_arn
from ecrd.domain.records import Repository
from ecrd.errors import CorruptData, EcrdError, KmsError
from ecrd.metadata.generations import GenerationCache, Generations
from ecrd.services.secrets import SecretBox

DATA_KEY_BYTES = 32
_NONCE = 12


class KeyManagement(Protocol):
    """The part of the key service that encryption at rest needs."""

    def encrypt(self, key: str, plaintext: bytes, context: Mapping[str, str] | None = None) -> bytes: ...

    def decrypt(
        self, ciphertext_blob: bytes, context: Mapping[str, str] | None = None, *, key_id: str | None = None
    ) -> tuple[str, bytes]: ...


def seal(key: bytes, plaintext: bytes, associated: bytes) -> bytes:
    nonce = os.urandom(_NONCE)
    return nonce + AESGCM(key).encrypt(nonce, plaintext, associated)


def unseal(key: bytes, sealed: bytes, associated: bytes) -> bytes:
    try:
        return AESGCM(key).decrypt(sealed[:_NONCE], sealed[_NONCE:], associated)
    except (InvalidTag, ValueError):
        raise CorruptData("stored data does not authenticate with its key") from None


class DataKeys:
    def __init__(
        self,
        secret_box: SecretBox,
        *,
        region: str,
        account_id: str,
        kms: KeyManagement | None = None,
        generations: Generations | None = None,
    ) -> None:
        self._aes256_key = secret_box.derive_key("ecrd at-rest AES256 key v1")
        self.region = region
        self.account_id = account_id
        self.kms = kms
        # Unwrapping with a KMS key asks the key service (its state, its policy): cached per process while the
        # access generation stands, which any change to keys, aliases or repositories moves.
        self._kms_unwrapped: GenerationCache[tuple[int, str, str | None, bytes], bytes] = GenerationCache(generations)

    def new_data_key(self) -> bytes:
        return os.urandom(DATA_KEY_BYTES)

    def _context(self, repository: Repository) -> dict[str, str]:
        # As ECR binds its data keys to the repository (encryption context "aws:ecr:arn").
        registry = repository.registry
        return {"aws:ecr:arn": repository_arn(registry.region, registry.account_id, repository.name)}

    def wrap(self, repository: Repository, data_key: bytes) -> bytes:
        context = self._context(repository)
        if repository.encryption_type == "AES256" or self.kms is None:
            return seal(self._aes256_key, data_key, context["aws:ecr:arn"].encode())
        assert repository.kms_key is not None
        try:
            return self.kms.encrypt(repository.kms_key, data_key, context)
        except EcrdError as exc:
            raise _kms_error(repository, exc) from None

    def unwrap(self, repository: Repository, wrapped: bytes) -> bytes:
        """The data key; raises the key service's error (disabled, pending deletion, gone) for KMS keys."""
        context = self._context(repository)
        if repository.encryption_type == "AES256" or self.kms is None:
            return unseal(self._aes256_key, wrapped, context["aws:ecr:arn"].encode())
        key = (repository.id, repository.name, repository.kms_key, wrapped)
        return self._kms_unwrapped.get(key, lambda: self._kms_unwrap(repository, wrapped, context))

    def _kms_unwrap(self, repository: Repository, wrapped: bytes, context: dict[str, str]) -> bytes:
        assert self.kms is not None
        try:
            return self.kms.decrypt(wrapped, context, key_id=repository.kms_key)[1]
        except EcrdError as exc:
            raise _kms_error(repository, exc) from None


def _kms_error(repository: Repository, exc: EcrdError) -> KmsError:
    # ECR reports a key it cannot use as KmsException, carrying the key service's own error code.
    return KmsError(
        f"The KMS key {repository.kms_key} of repository '{repository.name}' cannot be used: {exc.message} "
        f"({exc.aws_type})",
        kms_error=exc.aws_type,
    )
