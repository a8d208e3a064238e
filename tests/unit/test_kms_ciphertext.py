"""The key service's ciphertext blobs (self-describing, context-bound AES-256-GCM; format 2 naming the material
version, format 1 of the original material still read) and its alias name rules."""

from __future__ import annotations

import json
import os
import uuid

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ecrd.errors import KmsInvalidAliasName, KmsInvalidCiphertext, ValidationError
from ecrd.services.kms_ciphertext import (
    ciphertext_header,
    ciphertext_key_id,
    decode_ciphertext,
    encode_ciphertext,
)
from ecrd.services.kms_keys import check_alias_name, check_alias_target, check_pending_window

KEY_ID = "0b5c3f3e-8a7d-4c1e-9f2a-1d2e3f4a5b6c"
OTHER_KEY_ID = "9d1e2f3a-4b5c-4d6e-8f70-8192a3b4c5d6"
MATERIAL = bytes(range(32))
CONTEXT = {"aws:ecr:arn": "arn:aws:ecr:us-east-1:000000000000:repository/app", "purpose": "layer"}


def test_a_blob_opens_under_its_key_and_context_given_in_any_order() -> None:
    blob = encode_ciphertext(KEY_ID, MATERIAL, b"data key", CONTEXT, material_version=3)
    reordered = dict(reversed(list(CONTEXT.items())))
    assert decode_ciphertext(blob, MATERIAL, reordered) == b"data key"


def test_a_blob_names_its_key_and_material_version_in_the_documented_layout() -> None:
    plaintext = b"x" * 40
    blob = encode_ciphertext(KEY_ID, MATERIAL, plaintext, None, material_version=258)
    assert blob[0] == 2
    assert blob[1:17] == uuid.UUID(KEY_ID).bytes
    assert blob[17:21] == bytes([0, 0, 1, 2])
    assert len(blob) == 1 + 16 + 4 + 12 + len(plaintext) + 16
    assert ciphertext_key_id(blob) == KEY_ID
    assert ciphertext_header(blob).material_version == 258


def _format_1_blob(plaintext: bytes, context: dict[str, str] | None) -> bytes:
    """A blob as encryption wrote it before keys rotated: version 1, key id, nonce, AES-GCM over the 17-byte
    header and the canonical context."""
    header = bytes([1]) + uuid.UUID(KEY_ID).bytes
    nonce = os.urandom(12)
    associated = header + json.dumps(context or {}, sort_keys=True, separators=(",", ":")).encode()
    return header + nonce + AESGCM(MATERIAL).encrypt(nonce, plaintext, associated)


def test_a_format_1_blob_opens_with_the_original_material() -> None:
    blob = _format_1_blob(b"old data key", CONTEXT)
    header = ciphertext_header(blob)
    assert (header.key_id, header.material_version) == (KEY_ID, 0)
    assert decode_ciphertext(blob, MATERIAL, CONTEXT) == b"old data key"
    with pytest.raises(KmsInvalidCiphertext):
        decode_ciphertext(blob, MATERIAL, {"other": "context"})


def test_a_blob_relabelled_with_another_material_version_does_not_open() -> None:
    blob = encode_ciphertext(KEY_ID, MATERIAL, b"payload", None, material_version=1)
    relabelled = blob[:17] + (2).to_bytes(4, "big") + blob[21:]
    assert ciphertext_header(relabelled).material_version == 2
    with pytest.raises(KmsInvalidCiphertext):
        decode_ciphertext(relabelled, MATERIAL, None)


def test_a_material_version_beyond_the_format_is_refused() -> None:
    with pytest.raises(ValueError):
        encode_ciphertext(KEY_ID, MATERIAL, b"payload", None, material_version=2**32)


def test_the_same_plaintext_encrypts_differently_each_time() -> None:
    first, second = (encode_ciphertext(KEY_ID, MATERIAL, b"same", None, material_version=3) for _ in range(2))
    assert first != second


@pytest.mark.parametrize("position", [1, 16, 17, 20, 21, 32, 33, -17, -1], ids=lambda p: f"byte {p}")
def test_any_altered_byte_makes_the_blob_invalid(position: int) -> None:
    blob = bytearray(encode_ciphertext(KEY_ID, MATERIAL, b"payload", CONTEXT, material_version=3))
    blob[position] ^= 0x01
    with pytest.raises(KmsInvalidCiphertext):
        decode_ciphertext(bytes(blob), MATERIAL, CONTEXT)


def test_a_blob_relabelled_with_another_key_id_does_not_open() -> None:
    blob = encode_ciphertext(KEY_ID, MATERIAL, b"payload", None, material_version=3)
    relabelled = blob[:1] + uuid.UUID(OTHER_KEY_ID).bytes + blob[17:]
    assert ciphertext_key_id(relabelled) == OTHER_KEY_ID
    with pytest.raises(KmsInvalidCiphertext):
        decode_ciphertext(relabelled, MATERIAL, None)


@pytest.mark.parametrize(
    "context",
    [None, {}, {"aws:ecr:arn": CONTEXT["aws:ecr:arn"]}, {**CONTEXT, "extra": "pair"}, {**CONTEXT, "purpose": "x"}],
    ids=["absent", "empty", "fewer pairs", "more pairs", "other value"],
)
def test_another_encryption_context_does_not_open_the_blob(context: dict[str, str] | None) -> None:
    blob = encode_ciphertext(KEY_ID, MATERIAL, b"payload", CONTEXT, material_version=3)
    with pytest.raises(KmsInvalidCiphertext):
        decode_ciphertext(blob, MATERIAL, context)


def test_an_absent_and_an_empty_context_are_the_same() -> None:
    blob = encode_ciphertext(KEY_ID, MATERIAL, b"payload", None, material_version=3)
    assert decode_ciphertext(blob, MATERIAL, {}) == b"payload"


def test_other_key_material_does_not_open_the_blob() -> None:
    blob = encode_ciphertext(KEY_ID, MATERIAL, b"payload", None, material_version=3)
    with pytest.raises(KmsInvalidCiphertext):
        decode_ciphertext(blob, os.urandom(32), None)


@pytest.mark.parametrize(
    "blob",
    [
        b"",
        b"\x01" + b"\x00" * 43,
        b"\x02" + b"\x00" * 47,
        b"\x03" + b"\x00" * 60,
        b"not a ciphertext blob from this key service at all",
    ],
    ids=["empty", "too short", "too short for format 2", "unknown version", "foreign"],
)
def test_blobs_of_no_known_form_are_invalid_ciphertext(blob: bytes) -> None:
    with pytest.raises(KmsInvalidCiphertext):
        decode_ciphertext(blob, MATERIAL, None)


@pytest.mark.parametrize("name", ["alias/app", "alias/team/app-1", "alias/a_b:c"])
def test_valid_alias_names(name: str) -> None:
    check_alias_name(name)


@pytest.mark.parametrize(
    ("name", "error", "fragment"),
    [
        ("app", ValidationError, 'Alias must start with the prefix "alias/"'),
        ("alias/", ValidationError, 'Alias must start with the prefix "alias/"'),
        ("alias/with space", ValidationError, "regular expression pattern"),
        ("alias/" + "a" * 251, ValidationError, "length"),
        ("alias/aws/ecr", KmsInvalidAliasName, "reserved for AWS managed keys"),
        ("alias/aws/mine", KmsInvalidAliasName, "reserved for AWS managed keys"),
    ],
)
def test_invalid_alias_names(name: str, error: type[Exception], fragment: str) -> None:
    with pytest.raises(error) as raised:
        check_alias_name(name)
    assert fragment in str(raised.value)


@pytest.mark.parametrize("target", ["alias/app", "arn:aws:kms:us-east-1:000000000000:alias/app"])
def test_an_alias_cannot_name_an_alias(target: str) -> None:
    with pytest.raises(ValidationError, match="Aliases must refer to keys"):
        check_alias_target(target)


@pytest.mark.parametrize(("days", "ok"), [(6, False), (7, True), (30, True), (31, False)])
def test_the_deletion_window_is_7_to_30_days(days: int, ok: bool) -> None:
    if ok:
        check_pending_window(days)
    else:
        with pytest.raises(ValidationError, match="pendingWindowInDays"):
            check_pending_window(days)
