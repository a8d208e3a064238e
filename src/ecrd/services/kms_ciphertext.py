"""The key service's ciphertext blobs: a self-describing format that names its key and the version of the key's
material it was made with, and binds its encryption context, so ``Decrypt`` needs nothing but the blob and the
same context.

Format 2, written by every encryption since keys rotate::

    offset  size  field
    0       1     format version (2)
    1       16    key id (the key's UUID, 16 bytes)
    17      4     material version (unsigned, big-endian): 0 the key's original material, n its n-th rotation
    21      12    nonce (random)
    33      n+16  AES-256-GCM ciphertext of the n plaintext bytes, then its 16-byte tag

Format 1, written before keys rotated and read forever (wrapped data keys of repositories and secrets made
then), has no material version: it is always the original material::

    0       1     format version (1)
    1       16    key id
    17      12    nonce
    29      n+16  ciphertext and tag

The AES key is the named version of the KMS key's material. The associated data is the header (every byte
before the nonce) followed by the encryption context as canonical JSON (keys sorted, no white space, ASCII
escapes; {} when there is none), so neither the key id nor the material version can be swapped, and the
plaintext comes back only under the same context, in any order of its pairs.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ecrd.errors import KmsInvalidCiphertext

ORIGINAL_FORMAT: Final = 1
VERSIONED_FORMAT: Final = 2
CIPHERTEXT_VERSION: Final = VERSIONED_FORMAT  # the format encryption writes
MAX_MATERIAL_VERSION: Final = 2**32 - 1
_HEADER_BYTES: Final = {ORIGINAL_FORMAT: 17, VERSIONED_FORMAT: 21}
_NONCE_BYTES: Final = 12
_TAG_BYTES: Final = 16


@dataclass(frozen=True, slots=True)
class CiphertextHeader:
    """What a blob says about itself: the key and the version of its material that made it."""

    key_id: str
    material_version: int
    size: int  # bytes of header, the associated data's first part


def _context_bytes(context: Mapping[str, str] | None) -> bytes:
    return json.dumps(dict(context or {}), sort_keys=True, separators=(",", ":")).encode("ascii")


def encode_ciphertext(
    key_id: str,
    material: bytes,
    plaintext: bytes,
    context: Mapping[str, str] | None,
    *,
    material_version: int,
) -> bytes:
    """A format 2 blob of ``plaintext`` under ``material``, the key's material of ``material_version``."""
    if not 0 <= material_version <= MAX_MATERIAL_VERSION:
        raise ValueError(f"material version {material_version} does not fit the format")
    header = bytes([VERSIONED_FORMAT]) + uuid.UUID(key_id).bytes + material_version.to_bytes(4, "big")
    nonce = os.urandom(_NONCE_BYTES)
    return header + nonce + AESGCM(material).encrypt(nonce, plaintext, header + _context_bytes(context))


def ciphertext_header(blob: bytes) -> CiphertextHeader:
    """The header of ``blob``; InvalidCiphertext when it is not a blob of a format of ours."""
    size = _HEADER_BYTES.get(blob[0]) if blob else None
    if size is None or len(blob) < size + _NONCE_BYTES + _TAG_BYTES:
        raise KmsInvalidCiphertext("")  # KMS says nothing more about a ciphertext it cannot use
    key_id = str(uuid.UUID(bytes=blob[1:17]))
    version = int.from_bytes(blob[17:21], "big") if blob[0] == VERSIONED_FORMAT else 0
    return CiphertextHeader(key_id, version, size)


def ciphertext_key_id(blob: bytes) -> str:
    """The id of the key that made ``blob``; InvalidCiphertext when it is not a blob of a format of ours."""
    return ciphertext_header(blob).key_id


def decode_ciphertext(blob: bytes, material: bytes, context: Mapping[str, str] | None) -> bytes:
    """The plaintext of ``blob``, given the material of the version its header names."""
    size = ciphertext_header(blob).size
    header, nonce = blob[:size], blob[size : size + _NONCE_BYTES]
    try:
        return AESGCM(material).decrypt(nonce, blob[size + _NONCE_BYTES :], header + _context_bytes(context))
    except InvalidTag:
        raise KmsInvalidCiphertext("") from None
