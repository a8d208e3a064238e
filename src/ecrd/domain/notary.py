"""Notary Project signatures (notaryproject/specification, "Signature Specification" and "JWS Signature Envelope"):
the certificates of a registry's signing authority, the JWS envelope that signs an image's descriptor, the
signature manifest that attaches it to the image as an OCI referrer, and their verification against a trusted root.

Pure: keys, certificates and the time are passed in. The envelope is JWS JSON serialization with ES256 (ECDSA P-256,
SHA-256; the signature is r‖s, RFC 7518 §3.4), the signing scheme ``notary.x509`` and the certificate chain in the
unprotected ``x5c`` header, leaf first.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import itertools
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from ecrd.domain import media_types as mt
from ecrd.domain.digests import Digest

JWS_ENVELOPE: Final = "application/jose+json"
PAYLOAD_TYPE: Final = "application/vnd.cncf.notary.payload.v1+json"
SIGNING_SCHEME: Final = "io.cncf.notary.signingScheme"
SIGNING_TIME: Final = "io.cncf.notary.signingTime"
SIGNING_AGENT: Final = "io.cncf.notary.signingAgent"
THUMBPRINTS: Final = "io.cncf.notary.x509chain.thumbprint#S256"
X509_SCHEME: Final = "notary.x509"
ALGORITHM: Final = "ES256"
AGENT: Final = "ecrd"
# The root outlives every certificate it issues; a profile's certificate is renewed by making the profile again.
ROOT_VALIDITY: Final = dt.timedelta(days=3650)
SIGNING_VALIDITY: Final = dt.timedelta(days=825)
_COORDINATE_BYTES: Final = 32


class SignatureInvalid(Exception):
    """A signature that does not verify, with the reason."""


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def key_pem(key: ec.EllipticCurvePrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


def load_key(pem: str) -> ec.EllipticCurvePrivateKey:
    key = serialization.load_pem_private_key(pem.encode(), password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise ValueError("a signing key must be an ECDSA key")
    return key


def certificate_pem(certificate: x509.Certificate) -> str:
    return certificate.public_bytes(serialization.Encoding.PEM).decode()


def load_certificate(pem: str) -> x509.Certificate:
    return x509.load_pem_x509_certificate(pem.encode())


def _name(common_name: str, organization: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def root_certificate(key: ec.EllipticCurvePrivateKey, organization: str, now: dt.datetime) -> x509.Certificate:
    """The self-signed root of a registry's signing authority: a CA that signs certificates only (Notary Project
    "Certificate Requirements": basicConstraints CA true, keyUsage keyCertSign, both critical)."""
    name = _name(f"{organization} signing root", organization)
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + ROOT_VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False),  # keyCertSign, cRLSign
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )


def signing_certificate(
    public_key: ec.EllipticCurvePublicKey,
    profile: str,
    root: x509.Certificate,
    root_key: ec.EllipticCurvePrivateKey,
    now: dt.datetime,
    *,
    organization: str | None = None,
) -> x509.Certificate:
    """A profile's certificate, issued by the root: not a CA, digitalSignature (critical) and code signing, as the
    Notary Project requires of a signing certificate. Its subject is the profile's name in ``organization`` (the
    root's by default)."""
    if organization is None:
        organization = str(root.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value)
    return (
        x509.CertificateBuilder()
        .subject_name(_name(profile, organization))
        .issuer_name(root.subject)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(min(now + SIGNING_VALIDITY, root.not_valid_after_utc))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(True, False, False, False, False, False, False, False, False), critical=True
        )  # digitalSignature
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CODE_SIGNING]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(root_key.public_key()), critical=False)
        .sign(root_key, hashes.SHA256())
    )


def thumbprint(certificate: x509.Certificate) -> str:
    return hashlib.sha256(certificate.public_bytes(serialization.Encoding.DER)).hexdigest()


@dataclass(frozen=True, slots=True)
class Signature:
    """A signature ready to store: the envelope (the manifest's one layer) and the manifest attaching it."""

    envelope: bytes
    manifest: bytes

    @property
    def digest(self) -> str:
        return str(Digest.of(self.manifest))


def sign(
    subject: dict[str, Any],
    signer: Callable[[bytes], bytes],
    chain: list[x509.Certificate],
    now: dt.datetime,
) -> Signature:
    """Sign the image ``subject`` (its descriptor: mediaType, digest, size) with ``signer`` (bytes → their ECDSA
    P-256 SHA-256 signature, DER-encoded, as KMS's Sign returns it), whose certificate leads ``chain`` (leaf
    first, root last)."""
    timestamp = now.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    protected = {
        "alg": ALGORITHM,
        "crit": [SIGNING_SCHEME],
        "cty": PAYLOAD_TYPE,
        SIGNING_SCHEME: X509_SCHEME,
        SIGNING_TIME: timestamp,
    }
    payload = {"targetArtifact": subject}
    encoded_protected = _b64url(json.dumps(protected, separators=(",", ":")).encode())
    encoded_payload = _b64url(json.dumps(payload, separators=(",", ":")).encode())
    der = signer(f"{encoded_protected}.{encoded_payload}".encode())
    r, s = decode_dss_signature(der)
    raw = r.to_bytes(_COORDINATE_BYTES, "big") + s.to_bytes(_COORDINATE_BYTES, "big")
    envelope = json.dumps(
        {
            "payload": encoded_payload,
            "protected": encoded_protected,
            "header": {
                "x5c": [base64.b64encode(c.public_bytes(serialization.Encoding.DER)).decode() for c in chain],
                SIGNING_AGENT: AGENT,
            },
            "signature": _b64url(raw),
        },
        separators=(",", ":"),
    ).encode()
    empty = b"{}"
    manifest = {
        "schemaVersion": 2,
        "mediaType": mt.OCI_MANIFEST,
        "artifactType": mt.NOTARY_SIGNATURE,
        "config": {"mediaType": mt.OCI_EMPTY_CONFIG, "digest": str(Digest.of(empty)), "size": len(empty)},
        "layers": [{"mediaType": JWS_ENVELOPE, "digest": str(Digest.of(envelope)), "size": len(envelope)}],
        "subject": subject,
        "annotations": {
            THUMBPRINTS: json.dumps([thumbprint(c) for c in chain]),
            "org.opencontainers.image.created": timestamp,
        },
    }
    return Signature(envelope, json.dumps(manifest, separators=(",", ":")).encode())


def chain_thumbprints(annotations: dict[str, str] | None) -> list[str]:
    """The certificate chain's thumbprints a signature manifest names (leaf first), or none."""
    try:
        found = json.loads((annotations or {}).get(THUMBPRINTS, "[]"))
    except ValueError:
        return []
    return [t for t in found if isinstance(t, str)] if isinstance(found, list) else []


def verify(envelope: bytes, subject_digest: str, trusted_roots: list[x509.Certificate], now: dt.datetime) -> str:
    """Verify a JWS envelope as ``notation verify`` does with a trust store of ``trusted_roots``: the signature by
    the leaf's key over the protected header and payload, the chain up to a trusted root, each certificate valid
    at ``now``, and the payload naming ``subject_digest``. Returns the leaf's common name; raises
    ``SignatureInvalid`` with the reason."""
    try:
        document = json.loads(envelope)
        protected = json.loads(_unb64url(document["protected"]))
        payload = json.loads(_unb64url(document["payload"]))
        chain = [x509.load_der_x509_certificate(base64.b64decode(c)) for c in document["header"]["x5c"]]
        raw = _unb64url(document["signature"])
    except (ValueError, KeyError, TypeError) as exc:
        raise SignatureInvalid(f"malformed envelope: {exc}") from exc
    if protected.get("alg") != ALGORITHM or protected.get(SIGNING_SCHEME) != X509_SCHEME:
        raise SignatureInvalid("unsupported algorithm or signing scheme")
    if set(protected.get("crit", [])) - set(protected):
        raise SignatureInvalid("a critical header is missing")
    if not chain or len(raw) != 2 * _COORDINATE_BYTES:
        raise SignatureInvalid("no certificate chain, or a signature of the wrong length")
    leaf_key = chain[0].public_key()
    if not isinstance(leaf_key, ec.EllipticCurvePublicKey):
        raise SignatureInvalid("the signing certificate's key is not an ECDSA key")
    der = encode_dss_signature(
        int.from_bytes(raw[:_COORDINATE_BYTES], "big"), int.from_bytes(raw[_COORDINATE_BYTES:], "big")
    )
    try:
        leaf_key.verify(der, f"{document['protected']}.{document['payload']}".encode(), ec.ECDSA(hashes.SHA256()))
        for certificate, issuer in itertools.pairwise(chain):
            certificate.verify_directly_issued_by(issuer)
    except (InvalidSignature, ValueError, TypeError) as exc:
        raise SignatureInvalid("the signature or the certificate chain does not verify") from exc
    for certificate in chain:
        if not certificate.not_valid_before_utc <= now <= certificate.not_valid_after_utc:
            raise SignatureInvalid(f"certificate {certificate.subject.rfc4514_string()} is not valid now")
    trusted = {thumbprint(root) for root in trusted_roots}
    if thumbprint(chain[-1]) not in trusted:
        raise SignatureInvalid("the certificate chain does not end at a trusted root")
    if payload.get("targetArtifact", {}).get("digest") != subject_digest:
        raise SignatureInvalid("the signature is of another artifact")
    return str(chain[0].subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value)
