"""The key service: ecrd's built-in KMS — symmetric keys, aliases, tags, key policies, and envelope encryption.

One ``KeyService`` serves one account and region. It is assembled from one part per concern, each its own
module on the shared ``KeyRing`` (``kms_keys``: values, names, listings, the rows): the key life cycle and key
policies (``kms_lifecycle``), aliases and tags (``kms_aliases``), encryption (``kms_crypto``, in the ciphertext
format of ``kms_ciphertext``) and authorization (``kms_access``, deciding by ``kms_policies``).
"""

from __future__ import annotations

from ecrd.services.kms_access import KeyAccess
from ecrd.services.kms_aliases import KeyAliasesAndTags
from ecrd.services.kms_crypto import KeyCryptography
from ecrd.services.kms_lifecycle import KeyLifecycle


class KeyService(KeyLifecycle, KeyAliasesAndTags, KeyCryptography, KeyAccess):
    """KMS keys of one account and region: their life cycle, aliases, tags and policies, encryption with them,
    and the authorization of every call on them."""
