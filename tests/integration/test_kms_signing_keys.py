"""Asymmetric KMS signing keys (ECC_NIST_P256, SIGN_VERIFY) through boto3: a signature KMS makes verifies with the
public key GetPublicKey gives, by an independent verifier as well as by Verify; a tampered one is refused; a
signing key does not encrypt, a symmetric key does not sign, and neither is rotated when it cannot be."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest
from botocore.exceptions import ClientError
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from tests.integration.test_ecr_api import client_for

ALGORITHM = "ECDSA_SHA_256"


@pytest.fixture
def kms(endpoint: str) -> Any:
    return client_for(endpoint, "kms")


def _code(call: Any) -> str:
    with pytest.raises(ClientError) as caught:
        call()
    return str(caught.value.response["Error"]["Code"])


def test_a_signature_verifies_with_the_public_key_and_a_tampered_one_does_not(kms: Any) -> None:
    # given a signing key
    metadata = kms.create_key(KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY", Description="release")["KeyMetadata"]
    assert metadata["SigningAlgorithms"] == [ALGORITHM] and "EncryptionAlgorithms" not in metadata
    key = metadata["Arn"]

    # when a message and a digest are signed
    message = b"the image manifest"
    signature = kms.sign(KeyId=key, Message=message, SigningAlgorithm=ALGORITHM)["Signature"]
    digest = hashlib.sha256(message).digest()
    of_digest = kms.sign(KeyId=key, Message=digest, MessageType="DIGEST", SigningAlgorithm=ALGORITHM)["Signature"]

    # then both verify with the public key, outside KMS as within it
    public = kms.get_public_key(KeyId=key)
    assert (public["KeySpec"], public["KeyUsage"], public["SigningAlgorithms"]) == (
        "ECC_NIST_P256",
        "SIGN_VERIFY",
        [ALGORITHM],
    )
    public_key = serialization.load_der_public_key(public["PublicKey"])
    assert isinstance(public_key, ec.EllipticCurvePublicKey)
    for made in (signature, of_digest):
        public_key.verify(made, message, ec.ECDSA(hashes.SHA256()))
        assert kms.verify(KeyId=key, Message=message, Signature=made, SigningAlgorithm=ALGORITHM)["SignatureValid"]
    with pytest.raises(InvalidSignature):
        public_key.verify(signature, b"another message", ec.ECDSA(hashes.SHA256()))
    assert (
        _code(lambda: kms.verify(KeyId=key, Message=b"another", Signature=signature, SigningAlgorithm=ALGORITHM))
        == "KMSInvalidSignatureException"
    )


def test_keys_are_used_only_as_their_usage_allows(kms: Any) -> None:
    signing = kms.create_key(KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY")["KeyMetadata"]["KeyId"]
    symmetric = kms.create_key()["KeyMetadata"]["KeyId"]
    assert _code(lambda: kms.encrypt(KeyId=signing, Plaintext=b"p")) == "InvalidKeyUsageException"
    assert _code(lambda: kms.generate_data_key(KeyId=signing, KeySpec="AES_256")) == "InvalidKeyUsageException"
    assert _code(lambda: kms.sign(KeyId=symmetric, Message=b"m", SigningAlgorithm=ALGORITHM)) == (
        "InvalidKeyUsageException"
    )
    assert _code(lambda: kms.sign(KeyId=signing, Message=b"m", SigningAlgorithm="ECDSA_SHA_384")) == (
        "InvalidKeyUsageException"
    )
    assert _code(lambda: kms.enable_key_rotation(KeyId=signing)) == "UnsupportedOperationException"
    assert _code(lambda: kms.rotate_key_on_demand(KeyId=signing)) == "UnsupportedOperationException"
    assert _code(lambda: kms.create_key(KeySpec="ECC_NIST_P256")) == "UnsupportedOperationException"
    kms.disable_key(KeyId=signing)
    assert _code(lambda: kms.sign(KeyId=signing, Message=b"m", SigningAlgorithm=ALGORITHM)) == "DisabledException"
