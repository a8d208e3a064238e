"""Media types of manifests and the artifacts they describe."""

from __future__ import annotations

from typing import Final

OCI_MANIFEST: Final = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX: Final = "application/vnd.oci.image.index.v1+json"
DOCKER_MANIFEST: Final = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_MANIFEST_LIST: Final = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_SCHEMA1: Final = "application/vnd.docker.distribution.manifest.v1+json"
DOCKER_SCHEMA1_SIGNED: Final = "application/vnd.docker.distribution.manifest.v1+prettyjws"
OCI_EMPTY_CONFIG: Final = "application/vnd.oci.empty.v1+json"

IMAGE_MANIFESTS: Final = frozenset({OCI_MANIFEST, DOCKER_MANIFEST})
INDEXES: Final = frozenset({OCI_INDEX, DOCKER_MANIFEST_LIST})
MANIFESTS: Final = IMAGE_MANIFESTS | INDEXES
SCHEMA1: Final = frozenset({DOCKER_SCHEMA1, DOCKER_SCHEMA1_SIGNED})
# Layers that clients fetch from their ``urls`` and never push (OCI image spec, deprecated in 1.1; Docker's
# "foreign" layers of Windows base images).
NON_DISTRIBUTABLE_LAYERS: Final = frozenset(
    {
        "application/vnd.oci.image.layer.nondistributable.v1.tar",
        "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
        "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd",
        "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
    }
)

# Signatures as clients attach them to an image (OCI 1.1 referrers): a Notary Project signature (notation, and
# the registry's own signing) and a cosign signature. They describe their subject only, and go with it.
NOTARY_SIGNATURE: Final = "application/vnd.cncf.notary.signature"
COSIGN_SIGNATURE: Final = "application/vnd.dev.cosign.artifact.sig.v1+json"
SIGNATURES: Final = frozenset({NOTARY_SIGNATURE, COSIGN_SIGNATURE})
