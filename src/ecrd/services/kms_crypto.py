"""Encryption with KMS keys: Encrypt, Decrypt and data keys for envelope encryption, in the ciphertext format of
``kms_ciphertext``, with a key only while it is Enabled. Encryption uses the key's newest material, read with
the key's row in the same transaction, so the first encryption after a rotation commits uses the new material
in every process; decryption uses the version of the material the blob names."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Final

from ecrd.errors import KmsDisabled, KmsIncorrectKey, KmsInvalidKeyUsage
from ecrd.services.kms_ciphertext import ciphertext_header, ciphertext_key_id, decode_ciphertext, encode_ciphertext
from ecrd.services.kms_keys import DISABLED, ENCRYPT_DECRYPT, KeyRecord, KeyRing, invalid

MAX_PLAINTEXT_BYTES: Final = 4096  # Encrypt
MAX_DATA_KEY_BYTES: Final = 1024  # GenerateDataKey NumberOfBytes


class KeyCryptography(KeyRing):
    """Encrypt, Decrypt and GenerateDataKey with the keys of the ring."""

    def _usable_key(
        self, key: str, version: int | None = None, usage: str = ENCRYPT_DECRYPT
    ) -> tuple[KeyRecord, int, bytes]:
        """The key, the version of its material (``version``, else the newest) and that material; the key must be
        of ``usage`` (KMS: InvalidKeyUsageException otherwise)."""
        with self.store.read() as conn:
            row = self._find(conn, key, self.clock())
            record = self._record(row)
            if record.state == DISABLED:
                raise KmsDisabled(f"{record.arn} is disabled.")
            self._not_pending_deletion(record)
            if record.key_usage != usage:
                raise KmsInvalidKeyUsage(f"{record.arn} key usage is {record.key_usage} which is not valid here.")
            version = record.material_version if version is None else version
            return record, version, self._material(conn, row, version)

    def encrypt(self, key: str, plaintext: bytes, context: Mapping[str, str] | None = None) -> bytes:
        """A ciphertext blob of ``plaintext`` (1–4096 bytes) under the key, bound to ``context``."""
        if not 1 <= len(plaintext) <= MAX_PLAINTEXT_BYTES:
            raise invalid("…", "plaintext", f"Member must have length between 1 and {MAX_PLAINTEXT_BYTES}")
        record, version, material = self._usable_key(key)
        return encode_ciphertext(record.key_id, material, plaintext, context, material_version=version)

    def generate_data_key(
        self, key: str, *, context: Mapping[str, str] | None = None, number_of_bytes: int = 32
    ) -> tuple[bytes, bytes]:
        """(plaintext data key, its ciphertext blob under the key): envelope encryption's first step."""
        if not 1 <= number_of_bytes <= MAX_DATA_KEY_BYTES:
            raise invalid(
                number_of_bytes, "numberOfBytes", f"Member must have value between 1 and {MAX_DATA_KEY_BYTES}"
            )
        plaintext = os.urandom(number_of_bytes)
        return plaintext, self.encrypt(key, plaintext, context)

    def ciphertext_key(self, ciphertext_blob: bytes) -> KeyRecord:
        """The key a ciphertext blob names, in this region and of any account (a blob made with another account's
        key decrypts here when that key's policy lets the caller); InvalidCiphertext if it is no blob of ours,
        NotFound if its key is deleted or in no account here."""
        key_id = ciphertext_key_id(ciphertext_blob)
        with self.store.read() as conn:
            return self._record(self._key_by_id(conn, key_id, self.clock()))

    def decrypt(
        self, ciphertext_blob: bytes, context: Mapping[str, str] | None = None, *, key_id: str | None = None
    ) -> tuple[str, bytes]:
        """(key ARN, plaintext) of a blob made by ``encrypt`` or ``generate_data_key`` under the same context.
        ``key_id`` (any key reference), when given, must name the key the blob was made with."""
        header = ciphertext_header(ciphertext_blob)
        if key_id is not None and self.resolve_key(key_id).key_id != header.key_id:
            raise KmsIncorrectKey("The key ID in the request does not identify a CMK that can perform this operation.")
        owner = self.ciphertext_key(ciphertext_blob)
        record, _version, material = self._usable_key(owner.arn, header.material_version)
        return record.arn, decode_ciphertext(ciphertext_blob, material, context)
