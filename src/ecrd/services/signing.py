"""Image signing: the registry's signing configuration (ECR's managed signing), the signing profiles it signs
with, each an ECDSA P-256 key certified by the registry's own signing authority (decision 0029), the signing job
queued with every push a rule covers, and what ``DescribeImageSigningStatus`` reports of an image.

A push that a rule covers queues one job per profile in the transaction that stores the manifest, with an
``IN_PROGRESS`` status; the job signs the image with a Notary Project signature attached as an OCI referrer (so
the referrers API and notation find it) and records ``COMPLETE`` or ``FAILED``; the signature's digest is
recorded before it is attached, so a job run again after a stop finds its signature rather than adding one.
Signatures that clients pushed (notation, cosign) are reported too: under the profile whose certificate signed
them when it is one of the registry's, else without a profile.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from sqlalchemy import Connection

from ecrd.domain import media_types as mt
from ecrd.domain.digests import Digest
from ecrd.domain.manifests import Manifest
from ecrd.domain.records import Repository
from ecrd.domain.registries import RegistryId
from ecrd.domain.signing import (
    COMPLETE,
    FAILED,
    IN_PROGRESS,
    SigningConfiguration,
    check_profile_name,
    parse_signing_profile_arn,
    signing_profile_arn,
)
from ecrd.errors import EcrdError, EntityAlreadyExists, InvalidParameter, SigningConfigurationNotFound
from ecrd.metadata import images as image_queries
from ecrd.metadata import jobs as job_queries
from ecrd.metadata import repositories as repo_queries
from ecrd.metadata import signing as signing_queries
from ecrd.metadata.signing import ProfileRow, SigningStatusRow
from ecrd.metadata.store import MetadataStore
from ecrd.services.kms import KeyService
from ecrd.services.kms_keys import ECC_NIST_P256, SIGN_VERIFY
from ecrd.services.referrers import attach_artifact
from ecrd.services.registry import RegistryService
from ecrd.services.secrets import SecretBox
from ecrd.services.uploads import UploadService

if TYPE_CHECKING:
    from cryptography import x509
    from cryptography.hazmat.primitives.asymmetric import ec


log = logging.getLogger("ecrd.signing")

SIGN_JOB: Final = "sign-image"
SIGNING_CONFIGURATION_KEY: Final = "signing_configuration"
# A setting of the whole deployment (the empty account and region), not of one registry.
SIGNING_AUTHORITY_KEY: Final = "signing_authority"
# The organization the deployment's signing root names: one root serves every registry of the deployment, so it
# names none of them (each profile's certificate names its own registry).
ROOT_ORGANIZATION: Final = "ecrd"
# The failure codes a FAILED status carries (ECR's model leaves them open).
PROFILE_NOT_FOUND: Final = "SigningProfileNotFound"
IMAGE_NOT_FOUND: Final = "ImageNotFound"
SIGNING_ERROR: Final = "SigningError"


@dataclass(frozen=True, slots=True)
class SigningProfile:
    name: str
    arn: str
    kms_key: str
    certificate: str
    created_at: float


@dataclass(frozen=True, slots=True)
class ImageSigningStatus:
    """One entry of DescribeImageSigningStatus: ``profile_arn`` is None for a client's signature made with a key
    the registry does not hold."""

    profile_arn: str | None
    status: str
    failure_code: str | None = None
    failure_reason: str | None = None


class SigningService:
    def __init__(
        self,
        store: MetadataStore,
        registry: RegistryService,
        uploads: UploadService,
        secret_box: SecretBox,
        kms: KeyService,
        *,
        account_id: str,
        region: str,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.registry = registry
        self.uploads = uploads
        self.secret_box = secret_box
        self.kms = kms
        self.account_id = account_id
        self.region = region
        # The registry whose configuration and profiles these are: every query is confined to it.
        self.registry_id = RegistryId(account_id, region)
        self.clock = clock

    def _now(self) -> dt.datetime:
        return dt.datetime.fromtimestamp(self.clock(), dt.UTC)

    # -- the signing configuration --------------------------------------------------------------------

    def _configuration(self, conn: Connection) -> SigningConfiguration | None:
        text = repo_queries.get_registry_setting(conn, self.registry_id, SIGNING_CONFIGURATION_KEY)
        return None if text is None else SigningConfiguration.from_json(json.loads(text))

    def get_signing_configuration(self) -> SigningConfiguration:
        with self.store.read() as conn:
            configuration = self._configuration(conn)
        if configuration is None:
            raise self._no_configuration()
        return configuration

    def put_signing_configuration(self, configuration: SigningConfiguration) -> SigningConfiguration:
        """Replace the configuration; every profile it names must be one of this registry's."""
        with self.store.write() as conn:
            for rule in configuration.rules:
                self.check_profile_arn(conn, rule.profile_arn)
            repo_queries.set_registry_setting(
                conn, self.registry_id, SIGNING_CONFIGURATION_KEY, json.dumps(configuration.to_json())
            )
        return configuration

    def delete_signing_configuration(self) -> SigningConfiguration:
        with self.store.write() as conn:
            configuration = self._configuration(conn)
            if configuration is None:
                raise self._no_configuration()
            repo_queries.delete_registry_setting(conn, self.registry_id, SIGNING_CONFIGURATION_KEY)
        return configuration

    def _no_configuration(self) -> SigningConfigurationNotFound:
        return SigningConfigurationNotFound(
            f"Signing configuration does not exist for the registry with id '{self.account_id}'"
        )

    def check_profile_arn(self, conn: Connection, arn: str, member: str = "signingProfileArn") -> ProfileRow:
        row = self._profile_of_arn(conn, arn)
        if row is None:
            raise InvalidParameter(
                f"Invalid parameter at '{member}' failed to satisfy constraint: 'The signing profile {arn} "
                "does not exist in this registry (create it with `ecrd signing-profile create`)'"
            )
        return row

    # -- profiles and the signing authority ------------------------------------------------------------

    def _authority(self, conn: Connection) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
        """The deployment's signing root (its key, sealed by the master key, and its certificate), made the first
        time a profile of any registry needs it: one root for every account and region, so one trust store entry
        verifies the signatures of all the deployment's registries."""
        from ecrd.domain import notary  # with cryptography's x509: only when signing

        text = signing_queries.deployment_setting(conn, SIGNING_AUTHORITY_KEY)
        if text is None:
            key = notary.new_key()
            candidate = json.dumps(
                {
                    "key": self.secret_box.seal(notary.key_pem(key), context=SIGNING_AUTHORITY_KEY),
                    "certificate": notary.certificate_pem(notary.root_certificate(key, ROOT_ORGANIZATION, self._now())),
                }
            )
            text = signing_queries.keep_deployment_setting(conn, SIGNING_AUTHORITY_KEY, candidate)
        stored = json.loads(text)
        return (
            notary.load_key(self.secret_box.open(stored["key"], context=SIGNING_AUTHORITY_KEY)),
            notary.load_certificate(stored["certificate"]),
        )

    def trust_root(self) -> str:
        """The PEM certificate to trust for the signatures of every registry of the deployment (notation's trust
        store)."""
        from ecrd.domain import notary  # with cryptography's x509: only when signing

        with self.store.write() as conn:
            return notary.certificate_pem(self._authority(conn)[1])

    def create_signing_profile(self, name: str) -> SigningProfile:
        """A profile signing with a new KMS signing key (ECC_NIST_P256, a customer managed key of the account that
        the key policies and KMS operations govern like any other) and a certificate for it from the root."""
        from ecrd.domain import notary  # with cryptography's x509: only when signing

        check_profile_name(name)
        with self.store.read() as conn:
            if signing_queries.get_profile(conn, self.registry_id, name) is not None:
                raise self._exists(name)
        key = self.kms.create_key(
            f"arn:aws:iam::{self.account_id}:root",
            description=f"ecrd signing profile {name}",
            key_usage=SIGN_VERIFY,
            key_spec=ECC_NIST_P256,
        )
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import ec

        public_key = serialization.load_der_public_key(self.kms.get_public_key(key.arn)[1])
        assert isinstance(public_key, ec.EllipticCurvePublicKey)  # the key spec asked for
        with self.store.write() as conn:
            root_key, root = self._authority(conn)
            certificate = notary.signing_certificate(
                public_key, name, root, root_key, self._now(), organization=self._organization()
            )
            row = ProfileRow(name, key.arn, notary.certificate_pem(certificate), self.clock())
            if not signing_queries.insert_profile(conn, self.registry_id, row):
                raise self._exists(name)  # made by a concurrent request since the look above
        return self._profile(row)

    def _profile_of_arn(self, conn: Connection, arn: str) -> ProfileRow | None:
        """The profile ``arn`` names when it is one of this registry's (an ARN of another account or region names
        none here, whatever its name)."""
        parsed = parse_signing_profile_arn(arn)
        if parsed is None or parsed[:2] != (self.region, self.account_id):
            return None
        return signing_queries.get_profile(conn, self.registry_id, parsed[2])

    def _organization(self) -> str:
        """The organization a profile's certificate names: its registry. Profiles of one name in two registries
        share the deployment's root, so a trust policy's ``x509.subject`` tells them apart by this."""
        return f"ecrd {self.account_id} {self.region}"

    @staticmethod
    def _exists(name: str) -> EntityAlreadyExists:
        return EntityAlreadyExists(f"A signing profile named '{name}' already exists")

    def list_signing_profiles(self) -> list[SigningProfile]:
        with self.store.read() as conn:
            return [self._profile(row) for row in signing_queries.list_profiles(conn, self.registry_id)]

    def _profile(self, row: ProfileRow) -> SigningProfile:
        arn = signing_profile_arn(self.region, self.account_id, row.name)
        return SigningProfile(row.name, arn, row.kms_key, row.certificate, row.created_at)

    # -- signing on push -------------------------------------------------------------------------------

    def queue_signing_on_push(
        self, conn: Connection, repository: Repository, digest: str, manifest: Manifest, now: float
    ) -> None:
        """The registry's hook on every new manifest: queue its signing by each profile a rule covering the
        repository names. Referrers (signatures, SBOMs) describe an image and are not signed themselves."""
        if manifest.subject is not None:
            return
        configuration = self._configuration(conn)
        if configuration is None:
            return
        for arn in configuration.profiles_for(repository.name):
            signing_queries.set_status(
                conn, repository.id, digest, SigningStatusRow(arn, IN_PROGRESS, None, None, None), now
            )
            job_queries.enqueue(conn, SIGN_JOB, {"repository_id": repository.id, "digest": digest, "profile": arn}, now)

    def run_signing_job(self, payload: dict[str, Any]) -> None:
        repository_id, digest, arn = int(payload["repository_id"]), str(payload["digest"]), str(payload["profile"])
        with self.store.read() as conn:
            repository = repo_queries.get_by_id(conn, repository_id)
        if repository is None:
            return  # deleted meanwhile, with its statuses
        try:
            outcome = self._attached_before(repository, digest, arn) or self._sign(repository, digest, arn)
        except EcrdError as exc:
            code = IMAGE_NOT_FOUND if exc.aws_type == "ImageNotFoundException" else SIGNING_ERROR
            outcome = SigningStatusRow(arn, FAILED, code, exc.message, None)
        with self.store.write() as conn:
            signing_queries.set_status(conn, repository.id, digest, outcome, self.clock())
        log.info("signed %s@%s with %s: %s", repository.name, digest, arn, outcome.status)

    def _sign(self, repository: Repository, digest: str, arn: str) -> SigningStatusRow:
        from ecrd.domain import notary  # with cryptography's x509: only when signing

        with self.store.read() as conn:
            row = self._profile_of_arn(conn, arn)
            authority = signing_queries.deployment_setting(conn, SIGNING_AUTHORITY_KEY)
        if row is None or authority is None:
            return SigningStatusRow(arn, FAILED, PROFILE_NOT_FOUND, f"The signing profile {arn} does not exist", None)
        subject = self.registry.get_manifest(repository, digest, record_pull=False)
        signature = notary.sign(
            {"mediaType": subject.media_type, "digest": digest, "size": subject.size},
            lambda data: self.kms.sign(row.kms_key, data),
            [
                notary.load_certificate(row.certificate),
                notary.load_certificate(json.loads(authority)["certificate"]),
            ],
            self._now(),
        )
        # The signature's digest is recorded before it is attached: a run that attaches it and stops before its
        # outcome is recorded leaves the job queued, and the run after finds the signature instead of making a
        # second one (a signing time and ECDSA's nonce make every signature's bytes new).
        pending = str(Digest.of(signature.manifest))
        with self.store.write() as conn:
            signing_queries.set_status(
                conn, repository.id, digest, SigningStatusRow(arn, IN_PROGRESS, None, None, pending), self.clock()
            )
        signature_digest = attach_artifact(
            self.registry, self.uploads, repository, [b"{}", signature.envelope], signature.manifest
        )
        return SigningStatusRow(arn, COMPLETE, None, None, signature_digest)

    def _attached_before(self, repository: Repository, digest: str, arn: str) -> SigningStatusRow | None:
        """The outcome of an earlier run of this job that attached its signature but did not record it."""
        with self.store.read() as conn:
            pending = next(
                (
                    row.signature_digest
                    for row in signing_queries.statuses_of(conn, repository.id, digest)
                    if row.profile_arn == arn and row.status == IN_PROGRESS and row.signature_digest is not None
                ),
                None,
            )
            if pending is None or not image_queries.existing_manifests(conn, repository.id, [pending]):
                return None
        return SigningStatusRow(arn, COMPLETE, None, None, pending)

    # -- what an image's signatures are --------------------------------------------------------------

    @staticmethod
    def signed_by(conn: Connection, repository: Repository, digest: str) -> frozenset[str]:
        """The profiles whose signatures of the image the registry made and still holds (in ``conn``)."""
        made = {
            row.signature_digest: row.profile_arn
            for row in signing_queries.statuses_of(conn, repository.id, digest)
            if row.status == COMPLETE and row.signature_digest is not None
        }
        present = image_queries.existing_manifests(conn, repository.id, made)
        return frozenset(arn for signature, arn in made.items() if signature in present)

    def image_signing_status(self, repository: Repository, digest: str) -> list[ImageSigningStatus]:
        """The registry's signing of the image under each profile (a signature since deleted is not reported),
        then each other signature a client attached to it."""
        from ecrd.domain import notary  # with cryptography's x509: only when signing

        with self.store.read() as conn:
            rows = signing_queries.statuses_of(conn, repository.id, digest)
            profiles = signing_queries.list_profiles(conn, self.registry_id)
        signatures = self.registry.list_referrers(repository, digest, sorted(mt.SIGNATURES))
        present = {s.digest for s in signatures}
        out = [
            ImageSigningStatus(row.profile_arn, row.status, row.failure_code, row.failure_reason)
            for row in rows
            if row.status != COMPLETE or row.signature_digest in present
        ]
        made = {row.signature_digest for row in rows}
        by_leaf = {notary.thumbprint(notary.load_certificate(p.certificate)): self._profile(p).arn for p in profiles}
        for signature in signatures:
            if signature.digest in made:
                continue
            thumbprints = notary.chain_thumbprints(signature.annotations)
            out.append(ImageSigningStatus(by_leaf.get(thumbprints[0]) if thumbprints else None, COMPLETE))
        return out


def registry_of_signing_job(conn: Connection, payload: dict[str, Any]) -> RegistryId | None:
    """The registry whose service runs a signing job: its repository's (None once the repository is gone)."""
    repository = repo_queries.get_by_id(conn, int(payload["repository_id"]))
    return repository.registry if repository is not None else None
