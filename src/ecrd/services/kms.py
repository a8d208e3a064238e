"""The key service: ecrd's built-in KMS — symmetric and signing keys, aliases, tags, key policies, envelope
encryption and signatures.

One ``KeyService`` serves one account and region. It is assembled from one part per concern, each its own
module on the shared ``KeyRing`` (``kms_keys``: values, names, listings, the rows): the key life cycle and key
policies (``kms_lifecycle``), the rotation of key material (``kms_rotation``), aliases and tags
(``kms_aliases``), encryption (``kms_crypto``, in the ciphertext format of ``kms_ciphertext``), signing
(``kms_signing``) and authorization
(``kms_access``, deciding by ``kms_policies``).
"""

from __future__ import annotations

from ecrd.errors import EcrdError, KmsError
from ecrd.services.kms_access import KeyAccess
from ecrd.services.kms_aliases import KeyAliasesAndTags
from ecrd.services.kms_lifecycle import KeyLifecycle
from ecrd.services.kms_rotation import KeyRotations
from ecrd.services.kms_signing import KeySigning


class KeyService(KeyLifecycle, KeyRotations, KeyAliasesAndTags, KeySigning, KeyAccess):
    """KMS keys of one account and region: their life cycle, rotation, aliases, tags and policies, encryption
    and signing with them, and the authorization of every call on them."""


KMS_ENCRYPTION_TYPES = ("KMS", "KMS_DSSE")


def repository_kms_key(kms: KeyService, encryption_type: str, kms_key: str | None, caller_arn: str) -> str | None:
    """The ARN of the key a new repository of ``encryption_type`` uses: the one named (which must exist and be
    usable), else the AWS managed key ``alias/aws/ecr``, created on first use as ECR does; none for AES256."""
    if encryption_type not in KMS_ENCRYPTION_TYPES:
        return None
    try:
        if kms_key:
            key = kms.resolve_key(kms_key)
            if not key.enabled:
                raise KmsError(f"The KMS key {key.arn} is {key.state}", kms_error="KMSInvalidStateException")
            return key.arn
        return kms.managed_ecr_key(caller_arn).arn
    except KmsError:
        raise
    except EcrdError as exc:
        raise KmsError(exc.message, kms_error=exc.aws_type) from None
