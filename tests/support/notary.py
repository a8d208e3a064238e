"""An offline verifier of Notary Project signatures, written from the specification alone (notaryproject/
specification: "Signature Specification", "JWS Signature Envelope", "Trust Store and Trust Policy"), so the
registry's signatures are checked by code that shares nothing with the code that made them — what ``notation
verify`` does with a trust store holding the registry's root certificate and a policy of level ``strict``."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import itertools
import json
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from cryptography.x509.oid import ExtendedKeyUsageOID

SIGNATURE_ARTIFACT_TYPE = "application/vnd.cncf.notary.signature"
JWS_MEDIA_TYPE = "application/jose+json"
THUMBPRINT_ANNOTATION = "io.cncf.notary.x509chain.thumbprint#S256"


def _b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def verify_notary_signature(
    signature_manifest: dict[str, Any], envelope: bytes, subject: dict[str, Any], trusted_root_pem: str
) -> x509.Certificate:
    """Assert every rule a strict verification applies; return the signing (leaf) certificate."""
    # The signature manifest: its artifact type, one JWS layer whose digest is the envelope's, and the subject.
    assert signature_manifest["artifactType"] == SIGNATURE_ARTIFACT_TYPE
    [layer] = signature_manifest["layers"]
    assert layer["mediaType"] == JWS_MEDIA_TYPE
    assert layer["digest"] == "sha256:" + hashlib.sha256(envelope).hexdigest()
    assert signature_manifest["subject"]["digest"] == subject["digest"]

    # The envelope: JWS JSON serialization, signed over ASCII(protected '.' payload).
    jws = json.loads(envelope)
    protected = json.loads(_b64url_decode(jws["protected"]))
    assert protected["cty"] == "application/vnd.cncf.notary.payload.v1+json"
    assert protected["io.cncf.notary.signingScheme"] == "notary.x509"
    assert "io.cncf.notary.signingScheme" in protected["crit"]
    assert all(name in protected for name in protected["crit"])
    assert protected["alg"] == "ES256"
    signing_time = dt.datetime.fromisoformat(protected["io.cncf.notary.signingTime"])
    chain = [x509.load_der_x509_certificate(base64.b64decode(c)) for c in jws["header"]["x5c"]]
    raw = _b64url_decode(jws["signature"])
    der = encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"))
    leaf_key = chain[0].public_key()
    assert isinstance(leaf_key, ec.EllipticCurvePublicKey)
    leaf_key.verify(der, f"{jws['protected']}.{jws['payload']}".encode(), ec.ECDSA(hashes.SHA256()))

    # The payload names the subject exactly.
    payload = json.loads(_b64url_decode(jws["payload"]))
    target = payload["targetArtifact"]
    assert (target["mediaType"], target["digest"], target["size"]) == (
        subject["mediaType"],
        subject["digest"],
        subject["size"],
    )

    # The chain: each certificate issued by the next, valid at signing time, ending at the trusted root;
    # the leaf a code-signing certificate that is no CA, the others CAs.
    root = x509.load_pem_x509_certificate(trusted_root_pem.encode())
    assert chain[-1].public_bytes(serialization.Encoding.DER) == root.public_bytes(serialization.Encoding.DER)
    for certificate, issuer in itertools.pairwise(chain):
        certificate.verify_directly_issued_by(issuer)
        assert issuer.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    for certificate in chain:
        assert certificate.not_valid_before_utc <= signing_time <= certificate.not_valid_after_utc
    leaf = chain[0]
    assert not leaf.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    usage = leaf.extensions.get_extension_for_class(x509.KeyUsage)
    assert usage.critical and usage.value.digital_signature
    assert ExtendedKeyUsageOID.CODE_SIGNING in leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value

    # The manifest's thumbprints name the chain, leaf first.
    thumbprints = json.loads(signature_manifest["annotations"][THUMBPRINT_ANNOTATION])
    assert thumbprints == [hashlib.sha256(c.public_bytes(serialization.Encoding.DER)).hexdigest() for c in chain]
    return leaf
