"""The pull-through cache: ECR's rules (Create/Describe/Update/Delete/ValidatePullThroughCacheRule) and the pulls
that fill cached repositories from their upstream registries.

A pull of a repository a rule covers creates the repository on first use (from a PULL_THROUGH_CACHE creation
template when one covers it, else with CreateRepository's defaults), imports the manifest it names, and imports
each blob as it is first pulled: the blob is streamed to the client while it is stored through the upload path,
which verifies its digest; the last chunk is held back until the digest is verified, so a client never receives
a whole blob that is wrong. One process fetches a blob at a time: the fetch is claimed by a row in the metadata
store, and the others wait for the stored blob. A tag is compared with the upstream's at most once per interval
(ECR: 24 hours) by a HEAD of the manifest; while the upstream is down or gone, the cached image is served.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import logging
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import urllib3
from sqlalchemy import Connection

from ecrd.domain.caches import BoundedCache
from ecrd.domain.creation_templates import normalized_prefix
from ecrd.domain.digests import Digest
from ecrd.domain.names import is_tag
from ecrd.domain.pull_through import (
    ECR_UPSTREAM,
    MAX_RULES,
    PullThroughRule,
    check_rule,
    checked_upstream_url,
    covering_rule,
    upstream_kind,
    upstream_repository,
)
from ecrd.domain.records import Repository, StoredManifest
from ecrd.domain.registries import RegistryId
from ecrd.errors import (
    BlobUnknown,
    DigestMismatch,
    EcrdError,
    LimitExceeded,
    ManifestUnknown,
    PullThroughCacheRuleAlreadyExists,
    PullThroughCacheRuleNotFound,
    RepositoryNotFound,
    RuleSecretNotFound,
    SecretDecryptionFailure,
    SecretNotFound,
    UnableToAccessSecret,
    UnableToDecryptSecretValue,
    UpstreamFailure,
)
from ecrd.metadata import pull_through as q
from ecrd.metadata.store import MetadataStore
from ecrd.services.access import AccessService, Caller
from ecrd.services.creation_templates import CreationTemplateService
from ecrd.services.registry import RegistryService
from ecrd.services.secrets_manager import SecretsManagerService
from ecrd.services.uploads import UploadService
from ecrd.services.upstream_registry import (
    CHECK_TIMEOUT,
    TIMEOUT,
    UpstreamBlob,
    UpstreamConnector,
    UpstreamCredentials,
    UpstreamManifest,
    UpstreamRegistry,
)
from ecrd.storage.blob_store import BlobReader

log = logging.getLogger(__name__)

PULL_THROUGH_CACHE = "PULL_THROUGH_CACHE"
IMPORT_ACTION = "ecr:BatchImportUpstreamImage"
# How long this process trusts its copy of the rules: a rule made or deleted on another process of the
# cluster is seen within this time (this process's own changes at once).
RULES_MEMORY_SECONDS = 5.0
# A fetch claim not renewed for this long is taken to be dead (its process killed) and is taken over.
FETCH_LEASE_SECONDS = 60.0
RENEW_EVERY_SECONDS = 10.0
# How often a pull waiting for another's fetch looks at the store, and for how long it waits in all.
WAIT_POLL_SECONDS = 0.05
WAIT_LIMIT_SECONDS = FETCH_LEASE_SECONDS + 30.0
# A tag whose re-check failed (the upstream down) is checked again this soon, not a whole interval later.
RECHECK_AFTER_FAILURE_SECONDS = 5 * 60.0


# An upstream ECR registry's login (``aws/upstream_ecr.py``): (host, customRoleArn, the peer's access key) → the
# registry credentials of the assumed role.
EcrLogin = Callable[[str, str, UpstreamCredentials], UpstreamCredentials]


@dataclass(frozen=True, slots=True)
class CachedManifest:
    repository: Repository
    manifest: StoredManifest
    imported: bool


@dataclass(frozen=True, slots=True)
class ValidationResult:
    rule: PullThroughRule
    is_valid: bool
    failure: str | None


class BlobImport:
    """A blob being fetched from the upstream into a repository, its chunks handed on as they are stored."""

    def __init__(self, size: int, chunks: Iterator[bytes]) -> None:
        self.size = size
        self._chunks = chunks

    def next_chunk(self) -> bytes | None:
        """The next chunk for the client (blocking: reads the upstream, writes the store); None at the end."""
        return next(self._chunks, None)

    def close(self) -> None:
        """Stop early (the client went away): what was fetched is dropped; the next pull fetches it again."""
        self._chunks.close()  # type: ignore[attr-defined]  # a generator


# (connection, rule, repository, tag or None, digest, time)
ImportHook = Callable[[Connection, PullThroughRule, Repository, str | None, str, float], None]


class PullThroughCacheService:
    """The rules of one registry and the repositories they fill."""

    def __init__(
        self,
        store: MetadataStore,
        registry: RegistryService,
        uploads: UploadService,
        access: AccessService,
        templates: CreationTemplateService,
        secrets: SecretsManagerService,
        connector: UpstreamConnector,
        *,
        ecr_login: EcrLogin | None = None,
        account_id: str,
        region: str,
        check_interval_seconds: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.registry = registry
        self.uploads = uploads
        self.access = access
        self.templates = templates
        self.secrets = secrets
        self.connector = connector
        self.ecr_login = ecr_login
        self.account_id = account_id
        self.region = region
        # The registry whose rules these are: every rule query is confined to it.
        self.registry_id = RegistryId(account_id, region)
        self.check_interval_seconds = check_interval_seconds
        self.clock = clock
        # Called inside the transaction that stores an imported manifest (rule, repository, tag or None, digest,
        # time): the event outbox writes its "ECR Pull Through Cache Action" event there.
        self.on_image_imported: list[ImportHook] = []
        # One entry: (read at, monotonic) → every rule. Few rules (at most 50), read whole.
        self._rules: BoundedCache[str, tuple[float, tuple[PullThroughRule, ...]]] = BoundedCache(1)

    # -- the API's operations -------------------------------------------------------------------------------

    def create_rule(self, rule: PullThroughRule) -> PullThroughRule:
        url = checked_upstream_url(rule.upstream_registry_url)
        now = self.clock()
        stored = dataclasses.replace(
            rule,
            ecr_repository_prefix=normalized_prefix(rule.ecr_repository_prefix),
            upstream_repository_prefix=normalized_prefix(rule.upstream_repository_prefix),
            upstream_registry_url=url,
            upstream_registry=upstream_kind(url, rule.upstream_registry),
            created_at=now,
            updated_at=now,
        )
        self._check(stored)
        with self.store.write() as conn:
            if q.get(conn, self.registry_id, stored.ecr_repository_prefix) is not None:
                raise self._exists(stored.ecr_repository_prefix)
            if q.count(conn, self.registry_id) >= MAX_RULES:
                raise LimitExceeded(
                    f"The maximum number of pull through cache rules ({MAX_RULES}) in the registry with id "
                    f"'{self.account_id}' has been reached"
                )
            if not q.insert_rule(conn, self.registry_id, stored):
                raise self._exists(stored.ecr_repository_prefix)
        self._rules.clear()
        return stored

    def update_rule(self, prefix: str, change: Callable[[PullThroughRule], PullThroughRule]) -> PullThroughRule:
        prefix = normalized_prefix(prefix)
        with self.store.read() as conn:
            current = q.get(conn, self.registry_id, prefix)
        if current is None:
            raise self._not_found(prefix)
        updated = dataclasses.replace(change(current), ecr_repository_prefix=prefix, updated_at=self.clock())
        # Checked outside the write: reading the secret may ask the key service.
        self._check(updated)
        with self.store.write() as conn:
            if q.get(conn, self.registry_id, prefix, for_update=True) is None:
                raise self._not_found(prefix)
            q.replace_rule(conn, self.registry_id, updated)
        self._rules.clear()
        return updated

    def delete_rule(self, prefix: str) -> PullThroughRule:
        prefix = normalized_prefix(prefix)
        with self.store.write() as conn:
            current = q.get(conn, self.registry_id, prefix, for_update=True)
            if current is None:
                raise self._not_found(prefix)
            q.delete_rule(conn, self.registry_id, prefix)
        self._rules.clear()
        return current

    def describe_rules(
        self, prefixes: list[str] | None, *, after: str | None = None, limit: int = 100
    ) -> list[PullThroughRule]:
        with self.store.read() as conn:
            if prefixes is not None:
                wanted = sorted({normalized_prefix(prefix) for prefix in prefixes})
                found = q.get_many(conn, self.registry_id, wanted)
                missing = set(wanted) - {rule.ecr_repository_prefix for rule in found}
                if missing:
                    # ECR answers a named prefix without a rule with PullThroughCacheRuleNotFoundException.
                    raise self._not_found(sorted(missing)[0])
                return found
            return q.page(conn, self.registry_id, after=after, limit=limit)

    def validate_rule(self, prefix: str) -> ValidationResult:
        """Whether the rule reaches its upstream with its credentials now: a real request, its failure told."""
        prefix = normalized_prefix(prefix)
        with self.store.read() as conn:
            rule = q.get(conn, self.registry_id, prefix)
        if rule is None:
            raise self._not_found(prefix)
        try:
            self._upstream(rule).check()
        except EcrdError as exc:
            return ValidationResult(rule, False, exc.message)
        return ValidationResult(rule, True, None)

    # -- which repositories are cached ----------------------------------------------------------------------

    def rules_fresh(self) -> bool:
        """Whether ``rule_for`` answers from memory (the door asks before calling it on the event loop)."""
        remembered = self._rules.get("rules")
        return remembered is not None and time.monotonic() - remembered[0] < RULES_MEMORY_SECONDS

    def refresh_rules(self) -> None:
        with self.store.read() as conn:
            rules = tuple(q.page(conn, self.registry_id, after=None, limit=MAX_RULES + 1))
        self._rules.put("rules", (time.monotonic(), rules))

    def rule_for(self, repository_name: str) -> PullThroughRule | None:
        if not self.rules_fresh():
            self.refresh_rules()
        remembered = self._rules.get("rules")
        return covering_rule(remembered[1] if remembered else (), repository_name)

    # -- pulls: manifests -----------------------------------------------------------------------------------

    def pull_manifest(self, name: str, reference: str, caller: Caller, rule: PullThroughRule) -> CachedManifest:
        """The manifest ``reference`` of the cached repository ``name``: stored, refreshed or imported. The door
        has authorized the pull itself (ecr:BatchGetImage)."""
        repository = self._find_repository(name)
        stored: StoredManifest | None = None
        if repository is not None:
            try:
                stored = self.registry.get_manifest(repository, reference, record_pull=False)
            except ManifestUnknown:
                stored = None
        if repository is not None and stored is not None:
            if not is_tag(reference) or not self._tag_due(repository, reference):
                return CachedManifest(repository, stored, False)
            return self._refresh_tag(rule, repository, reference, stored)
        upstream_name = upstream_repository(rule, name)
        if repository is None:
            # ECR: the first pull needs ecr:CreateRepository and ecr:BatchImportUpstreamImage.
            self.access.check_repository(caller, "ecr:CreateRepository", name)
            self.access.check_repository(caller, IMPORT_ACTION, name)
            fetched = self._upstream(rule).get_manifest(upstream_name, reference)
            repository = self._create_repository(name, caller)
        else:
            self.access.check_repository(caller, IMPORT_ACTION, name)
            fetched = self._upstream(rule).get_manifest(upstream_name, reference)
        return CachedManifest(repository, self._store_manifest(rule, repository, reference, fetched), True)

    def _refresh_tag(
        self, rule: PullThroughRule, repository: Repository, tag: str, stored: StoredManifest
    ) -> CachedManifest:
        """A tag due for its check: a HEAD upstream; a moved tag imports the manifest it names now. The registry
        does this for itself, as ECR does; an upstream that is down or gone leaves the cached image served."""
        upstream = self._upstream_or_none(rule, timeout=CHECK_TIMEOUT)
        try:
            if upstream is None:
                raise UpstreamFailure("the rule's credentials cannot be read")
            name = upstream_repository(rule, repository.name)
            digest = upstream.head_manifest(name, tag)
            if digest == stored.digest:
                self._mark_checked(repository, tag)
                return CachedManifest(repository, stored, False)
            fetched = upstream.get_manifest(name, digest)
        except EcrdError as exc:
            log.warning(
                "pull-through cache: serving the cached %s:%s, the upstream failed: %s", repository.name, tag, exc
            )
            # Asked again after a short while, not a whole interval: the pulls in between get the cached image
            # without waiting on the upstream, and a tag moved meanwhile is seen soon after it is back.
            retry = min(RECHECK_AFTER_FAILURE_SECONDS, self.check_interval_seconds)
            self._mark_checked(repository, tag, self.clock() - self.check_interval_seconds + retry)
            return CachedManifest(repository, stored, False)
        return CachedManifest(repository, self._store_manifest(rule, repository, tag, fetched), True)

    def _store_manifest(
        self, rule: PullThroughRule, repository: Repository, reference: str, fetched: UpstreamManifest
    ) -> StoredManifest:
        tag = reference if is_tag(reference) else None

        def imported(conn: Connection, digest: str, now: float) -> None:
            for hook in self.on_image_imported:
                hook(conn, rule, repository, tag, digest, now)

        self.registry.put_manifest(
            repository, reference, fetched.payload, fetched.media_type or None, imported=True, then=imported
        )
        if is_tag(reference):
            self._mark_checked(repository, reference)
        log.info("pull-through cache: imported %s@%s", repository.name, fetched.digest)
        return self.registry.get_manifest(repository, fetched.digest, record_pull=False)

    def _tag_due(self, repository: Repository, tag: str) -> bool:
        with self.store.read() as conn:
            checked = q.tag_checked_at(conn, repository.id, tag)
        return checked is None or self.clock() - checked >= self.check_interval_seconds

    def _mark_checked(self, repository: Repository, tag: str, at: float | None = None) -> None:
        """Record the tag's check ``at`` (now by default): the next is due an interval after it."""
        with self.store.write(flush=False) as conn:
            q.set_tag_checked(conn, repository.id, tag, self.clock() if at is None else at)

    def _find_repository(self, name: str) -> Repository | None:
        try:
            return self.registry.get_repository(name)
        except RepositoryNotFound:
            return None

    def _create_repository(self, name: str, caller: Caller) -> Repository:
        # A concurrent first pull may have made it: then it is taken as it is.
        return self.templates.create_for(name, PULL_THROUGH_CACHE, caller.arn)

    # -- pulls: blobs ---------------------------------------------------------------------------------------

    def blob_size(self, repository: Repository, digest: str, caller: Caller, rule: PullThroughRule) -> int:
        """A HEAD of a blob: the stored one's size, else the upstream's (nothing is imported by a HEAD)."""
        try:
            return self.registry.blob_size(repository, digest)
        except BlobUnknown:
            self.access.check_repository(caller, IMPORT_ACTION, repository.name)
            return self._upstream(rule).head_blob(upstream_repository(rule, repository.name), digest)

    def open_blob(
        self, repository: Repository, digest: str, caller: Caller, rule: PullThroughRule
    ) -> BlobReader | BlobImport:
        """The stored blob, or its import from the upstream when this pull is the one to fetch it; a pull that
        finds another fetching it waits for the stored blob."""
        try:
            return self.registry.open_blob(repository, digest)
        except BlobUnknown:
            pass
        self.access.check_repository(caller, IMPORT_ACTION, repository.name)
        return self._open_or_import(repository, digest, rule)

    def cache_blob(self, repository: Repository, digest: str) -> None:
        """Store a blob of a cached repository that no pull has brought yet, as the registry does for itself (the
        scan of an imported image reads its layers: ECR scans an image it has imported whole). A repository no
        rule covers has nothing to fetch: BlobUnknown."""
        rule = self.rule_for(repository.name)
        if rule is None:
            raise BlobUnknown("blob unknown to registry", detail={"digest": digest})
        opened = self._open_or_import(repository, digest, rule)
        if isinstance(opened, BlobImport):
            try:
                while opened.next_chunk() is not None:
                    pass
            finally:
                opened.close()

    def _open_or_import(self, repository: Repository, digest: str, rule: PullThroughRule) -> BlobReader | BlobImport:
        claim = str(uuid.uuid4())
        deadline = time.monotonic() + WAIT_LIMIT_SECONDS
        while True:
            with self.store.write(flush=False) as conn:
                claimed = q.claim_fetch(conn, repository.id, digest, claim, self.clock(), FETCH_LEASE_SECONDS)
            if claimed:
                try:
                    # Another fetch may have stored it between our look and our claim.
                    stored = self.registry.open_blob(repository, digest)
                except BlobUnknown:
                    return self._import_blob(rule, repository, digest, claim)
                self._release(repository, digest, claim)
                return stored
            while time.monotonic() < deadline:
                try:
                    return self.registry.open_blob(repository, digest)
                except BlobUnknown:
                    pass
                with self.store.read() as conn:
                    if not q.fetch_claimed(conn, repository.id, digest, self.clock(), FETCH_LEASE_SECONDS):
                        # The fetch ended without the blob (it failed), or its process died (its lease ran out):
                        # try it ourselves.
                        break
                time.sleep(WAIT_POLL_SECONDS)
            else:
                raise UpstreamFailure(f"blob {digest} is still being fetched from the upstream registry; pull again")
            if time.monotonic() >= deadline:
                raise UpstreamFailure(f"blob {digest} could not be fetched from the upstream registry; pull again")

    def _import_blob(self, rule: PullThroughRule, repository: Repository, digest: str, claim: str) -> BlobImport:
        try:
            wanted = Digest.parse(digest)
            source = self._upstream(rule).open_blob(upstream_repository(rule, repository.name), digest)
        except BaseException:
            self._release(repository, digest, claim)
            raise
        return BlobImport(source.size, self._fetch(source, repository, wanted, claim))

    def _fetch(self, source: UpstreamBlob, repository: Repository, wanted: Digest, claim: str) -> Iterator[bytes]:
        """Each chunk of ``source`` stored, then handed on; the last one only once the whole blob verified."""
        digest = str(wanted)
        upload = self.uploads.start_upload(repository)
        appender = self.uploads.begin_append(repository, upload.id, 0)
        # The upload's own running hash when it keeps one (sha256): every byte hashed once, not twice.
        shared = appender.hasher is not None and wanted.algorithm == "sha256"
        hasher: Any = appender.hasher if shared else hashlib.new(wanted.algorithm)
        renewed = time.monotonic()
        done = False
        try:
            held: bytes | None = None
            for chunk in source.chunks():
                appender.write(chunk)
                if not shared:
                    hasher.update(chunk)
                if held is not None:
                    yield held
                held = chunk
                if time.monotonic() - renewed > RENEW_EVERY_SECONDS:
                    renewed = time.monotonic()
                    with self.store.write(flush=False) as conn:
                        q.renew_fetch(conn, repository.id, digest, claim, self.clock())
            if appender.written != source.size:
                raise UpstreamFailure(
                    f"the upstream registry sent {appender.written} bytes of blob {digest}, not {source.size}"
                )
            if hasher.hexdigest() != wanted.encoded:
                computed = f"{wanted.algorithm}:{hasher.hexdigest()}"
                raise DigestMismatch(
                    f"the upstream registry sent content for blob {digest} whose digest is {computed}: refused, "
                    "not stored",
                    detail={"expected": digest, "computed": computed},
                )
            self.uploads.finish_append(appender)
            # The upload path verifies the digest again as it makes the blob and links it.
            self.uploads.complete_upload(repository, upload.id, digest)
            done = True
            log.info("pull-through cache: imported blob %s into %s", digest, repository.name)
            if held is not None:
                yield held
        finally:
            if not done:
                source.close()
                self.uploads.abort_append(appender)
                with contextlib.suppress(EcrdError):
                    self.uploads.cancel_upload(repository, upload.id)
            self._release(repository, digest, claim)

    def _release(self, repository: Repository, digest: str, claim: str) -> None:
        with self.store.write(flush=False) as conn:
            q.release_fetch(conn, repository.id, digest, claim)

    # -- upstreams and credentials --------------------------------------------------------------------------

    def _upstream(self, rule: PullThroughRule, *, timeout: urllib3.Timeout = TIMEOUT) -> UpstreamRegistry:
        credentials = self._credentials(rule.credential_arn) if rule.credential_arn else None
        if rule.upstream_registry == ECR_UPSTREAM:
            credentials = self._ecr_credentials(rule, credentials)
        return self.connector.registry(rule.upstream_registry_url, credentials, timeout=timeout)

    def _ecr_credentials(self, rule: PullThroughRule, peer: UpstreamCredentials | None) -> UpstreamCredentials:
        """An ECR upstream (another ecrd): its ``customRoleArn`` assumed with the access key of the peer that the
        rule's secret holds (decision 0033)."""
        if self.ecr_login is None or rule.custom_role_arn is None:
            raise UpstreamFailure("this registry cannot log in to Amazon ECR upstreams")
        if peer is None:
            raise UpstreamFailure(
                "an Amazon ECR upstream is reached with an access key of the upstream (credentialArn) that may "
                f"assume {rule.custom_role_arn}; the rule has none"
            )
        return self.ecr_login(rule.upstream_registry_url, rule.custom_role_arn, peer)

    def _upstream_or_none(self, rule: PullThroughRule, *, timeout: urllib3.Timeout) -> UpstreamRegistry | None:
        try:
            return self._upstream(rule, timeout=timeout)
        except EcrdError:
            return None

    def _credentials(self, arn: str) -> UpstreamCredentials:
        """The rule's secret as ECR reads it: JSON with ``username`` and ``accessToken``."""
        try:
            value = self.secrets.current_value(arn)
        except SecretNotFound:
            raise RuleSecretNotFound(f"The secret {arn} does not exist") from None
        except SecretDecryptionFailure:
            raise UnableToDecryptSecretValue(f"The secret {arn} cannot be decrypted with its KMS key") from None
        except EcrdError as exc:
            raise UnableToAccessSecret(f"The secret {arn} cannot be read: {exc.message}") from None
        try:
            document = json.loads(value.encoded())
            username, token = document["username"], document["accessToken"]
        except (ValueError, KeyError, TypeError):
            raise UnableToAccessSecret(
                f"The secret {arn} must hold JSON with the keys 'username' and 'accessToken'"
            ) from None
        if not isinstance(username, str) or not isinstance(token, str):
            raise UnableToAccessSecret(f"The secret {arn} must hold 'username' and 'accessToken' as strings")
        return UpstreamCredentials(username, token)

    # -- rules ----------------------------------------------------------------------------------------------

    def _check(self, rule: PullThroughRule) -> None:
        check_rule(rule)
        if rule.credential_arn is not None:
            self._credentials(rule.credential_arn)
        if rule.custom_role_arn is not None and rule.upstream_registry != ECR_UPSTREAM:
            # An ECR upstream's role is the upstream's (assumed there); any other rule's is this account's.
            self.templates.check_role(rule.custom_role_arn)

    def _exists(self, prefix: str) -> PullThroughCacheRuleAlreadyExists:
        return PullThroughCacheRuleAlreadyExists(
            f"A pull through cache rule with the prefix '{prefix}' already exists in the registry with id "
            f"'{self.account_id}'"
        )

    def _not_found(self, prefix: str) -> PullThroughCacheRuleNotFound:
        return PullThroughCacheRuleNotFound(
            f"The pull through cache rule with prefix '{prefix}' does not exist in the registry with id "
            f"'{self.account_id}'"
        )
