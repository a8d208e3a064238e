"""The key service's ciphertext blobs: a self-describing format that names its key and binds its encryption
context, so ``Decrypt`` needs nothing but the blob and the same context.

::

    offset  size  field
    0       1     format version (1)
    1       16    key id (the key's UUID, 16 bytes)
    17      12    nonce (random)
    29      n+16  AES-256-GCM ciphertext of the n plaintext bytes, then its 16-byte tag

The AES key is the KMS key's material. The associated data is the 17 header bytes followed by the encryption
context as canonical JSON (keys sorted, no white space, ASCII escapes; {} when there is none), so the key id
cannot be swapped and the plaintext comes back only under the same context, in any order of its pairs.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Mapping
from typing import Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ecrd.errors import KmsInvalidCiphertext

CIPHERTEXT_VERSION: Final = 1
_HEADER_BYTES: Final = 17
_NONCE_BYTES: Final = 12
_TAG_BYTES: Final = 16


def _context_bytes(context: Mapping[str, str] | None) -> bytes:
    return json.dumps(dict(context or {}), sort_keys=True, separators=(",", ":")).encode("ascii")


def encode_ciphertext(key_id: str, material: bytes, plaintext: bytes, context: Mapping[str, str] | None) -> bytes:
    header = bytes([CIPHERTEXT_VERSION]) + uuid.UUID(key_id).bytes
    nonce = os.urandom(_NONCE_BYTES)
    return header + nonce + AESGCM(material).encrypt(nonce, plaintext, header + _context_bytes(context))


def ciphertext_key_id(blob: bytes) -> str:
    """The id of the key that made ``blob``; InvalidCiphertext when it is not a blob of this format."""
    if len(blob) < _HEADER_BYTES + _NONCE_BYTES + _TAG_BYTES or blob[0] != CIPHERTEXT_VERSION:
        raise KmsInvalidCiphertext("")  # KMS says nothing more about a ciphertext it cannot use
    return str(uuid.UUID(bytes=blob[1:_HEADER_BYTES]))


def decode_ciphertext(blob: bytes, material: bytes, context: Mapping[str, str] | None) -> bytes:
    ciphertext_key_id(blob)
    header, nonce = blob[:_HEADER_BYTES], blob[_HEADER_BYTES : _HEADER_BYTES + _NONCE_BYTES]
    try:
        return AESGCM(material).decrypt(nonce, blob[_HEADER_BYTES + _NONCE_BYTES :], header + _context_bytes(context))
    except InvalidTag:
        raise KmsInvalidCiphertext("") from None
