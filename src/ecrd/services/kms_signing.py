"""Signing with asymmetric KMS keys (KeySpec ECC_NIST_P256, KeyUsage SIGN_VERIFY): Sign, Verify and GetPublicKey,
as the KMS API reference describes them, with ``cryptography``. A signature is ECDSA with SHA-256, DER-encoded
(ANSI X9.62) as KMS returns it; a message is signed as given (``RAW``, up to 4096 bytes, hashed here) or as its
SHA-256 digest (``DIGEST``, 32 bytes). The private key never leaves the service; GetPublicKey gives the public
key as DER SubjectPublicKeyInfo."""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from ecrd.errors import KmsInvalidKeyUsage, KmsInvalidSignature
from ecrd.services.kms_crypto import KeyCryptography
from ecrd.services.kms_keys import ECDSA_SHA_256, SIGN_VERIFY, KeyRecord, invalid

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric import ec

# cryptography's asymmetric modules (with x509's) are imported by the calls that need them: a worker whose keys
# never sign does without their megabytes.

RAW: Final = "RAW"
DIGEST: Final = "DIGEST"
MAX_MESSAGE_BYTES: Final = 4096
SHA_256_BYTES: Final = 32


def _algorithm(signing_algorithm: str, message: bytes, message_type: str) -> ec.ECDSA:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.asymmetric.utils import Prehashed

    if signing_algorithm != ECDSA_SHA_256:
        raise KmsInvalidKeyUsage(f"The signing algorithm {signing_algorithm} is not valid for an ECC_NIST_P256 key.")
    if not 1 <= len(message) <= MAX_MESSAGE_BYTES:
        raise invalid("…", "message", f"Member must have length between 1 and {MAX_MESSAGE_BYTES}")
    if message_type == DIGEST:
        if len(message) != SHA_256_BYTES:
            raise invalid("…", "message", "Digest is invalid length for algorithm ECDSA_SHA_256.")
        return ec.ECDSA(Prehashed(hashes.SHA256()))
    return ec.ECDSA(hashes.SHA256())


class KeySigning(KeyCryptography):
    """Sign, Verify and GetPublicKey with the signing keys of the ring."""

    def _private_key(self, key: str) -> tuple[KeyRecord, ec.EllipticCurvePrivateKey]:
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import ec

        record, _version, material = self._usable_key(key, usage=SIGN_VERIFY)
        private = serialization.load_der_private_key(material, password=None)
        assert isinstance(private, ec.EllipticCurvePrivateKey)  # the only asymmetric spec the service makes
        return record, private

    def sign(self, key: str, message: bytes, *, message_type: str = RAW, algorithm: str = ECDSA_SHA_256) -> bytes:
        """The DER-encoded ECDSA signature of ``message`` by the key."""
        _record, private = self._private_key(key)
        return private.sign(message, _algorithm(algorithm, message, message_type))

    def verify(
        self, key: str, message: bytes, signature: bytes, *, message_type: str = RAW, algorithm: str = ECDSA_SHA_256
    ) -> None:
        """Nothing when ``signature`` is the key's signature of ``message``; KMSInvalidSignatureException else."""
        from cryptography.exceptions import InvalidSignature

        _record, private = self._private_key(key)
        try:
            private.public_key().verify(signature, message, _algorithm(algorithm, message, message_type))
        except InvalidSignature:
            raise KmsInvalidSignature("The signature does not verify with this key and message.") from None

    def get_public_key(self, key: str) -> tuple[KeyRecord, bytes]:
        """The key and its public key (DER SubjectPublicKeyInfo)."""
        from cryptography.hazmat.primitives import serialization

        record, private = self._private_key(key)
        return record, private.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
