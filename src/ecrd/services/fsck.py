"""The consistency checker behind ``ecrd fsck``: does the metadata store agree with the blob store, and can every
image still be pulled? It reports what it finds and, asked to, repairs what can be repaired without losing data.

The check reads the metadata in one snapshot first and lists the blob store after it. Every writer makes a
file durable before it commits the row that names it, so a row seen in the snapshot has its file already; a
file without a row may be an upload being committed at this moment, which is why only files older than the
grace period count as orphans. Each repair re-checks its finding under the locks the registry's own writers
take, so ``--repair`` is safe beside running servers.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import TypeVar

from ecrd.domain.digests import Digest
from ecrd.domain.progress import Progress, no_progress
from ecrd.domain.records import Repository
from ecrd.errors import CorruptData, EcrdError
from ecrd.metadata import archive as archive_queries
from ecrd.metadata import blobs as blob_queries
from ecrd.metadata import consistency as queries
from ecrd.metadata import pull_through as pull_through_queries
from ecrd.metadata import repositories as repo_queries
from ecrd.metadata.store import MetadataStore
from ecrd.services.archive import ArchiveAwareBlobStore
from ecrd.services.registry import RegistryService
from ecrd.storage.blob_store import BlobReader, EncryptedBlobStore, StoredBlob

_F = TypeVar("_F")

log = logging.getLogger("ecrd.fsck")

DEFAULT_GRACE_SECONDS = 3600.0
"""Files younger than this may belong to an upload being committed right now: never orphans."""


class Problem(StrEnum):
    """What a finding is. Damage (data that can no longer be read) is reported; the rest is repairable."""

    MISSING_BLOB = "missing-blob"
    """A blob row whose file is gone while manifests reference it: those manifests cannot be pulled."""
    CORRUPT_BLOB = "corrupt-blob"
    """A blob file whose size is not the encrypted size of its recorded plaintext size."""
    UNREADABLE_BLOB = "unreadable-blob"
    """(--verify-digests) a blob file that does not decrypt with its key."""
    DIGEST_MISMATCH = "digest-mismatch"
    """(--verify-digests) a blob whose plaintext does not hash to its digest."""
    CORRUPT_MANIFEST = "corrupt-manifest"
    """(--verify-digests) a manifest that does not unseal, or does not hash to its digest."""
    UNLINKED_REFERENCE = "unlinked-reference"
    """A manifest referencing a blob its repository does not link."""
    MISSING_CHILD = "missing-child"
    """An index referencing a manifest its repository does not hold."""
    DANGLING_BLOB = "dangling-blob"
    """A blob row whose file is gone, referenced by no manifest: repair drops the row and its links."""
    DANGLING_LINK = "dangling-link"
    """A repository link to a blob that has no row: repair drops the link when nothing references it."""
    ORPHAN_BLOB_FILE = "orphan-blob-file"
    """A blob file without a row, older than the grace period: repair deletes the file."""
    DANGLING_TAG = "dangling-tag"
    """A tag naming a manifest the repository does not hold: repair deletes the tag."""
    UPLOAD_FILE_MISSING = "upload-file-missing"
    """An upload session whose bytes are gone: repair deletes the session."""
    ORPHAN_UPLOAD_FILE = "orphan-upload-file"
    """Upload bytes without a session, older than the grace period: repair deletes them."""
    EXPIRED_UPLOAD = "expired-upload"
    """An upload session idle for longer than the expiry: repair deletes it and its bytes."""


DAMAGE = frozenset(
    {
        Problem.MISSING_BLOB,
        Problem.CORRUPT_BLOB,
        Problem.UNREADABLE_BLOB,
        Problem.DIGEST_MISMATCH,
        Problem.CORRUPT_MANIFEST,
        Problem.UNLINKED_REFERENCE,
        Problem.MISSING_CHILD,
    }
)


@dataclass(frozen=True, slots=True)
class Finding:
    problem: Problem
    subject: str
    """The digest, upload id or tag the finding is about."""
    detail: str
    repository: str | None = None
    repository_id: int | None = None
    unpullable: tuple[str, ...] = ()
    """``repository@digest`` of each manifest this damage keeps from being pulled."""
    target: str | None = None
    """For a tag, the manifest digest it names."""

    @property
    def damage(self) -> bool:
        return self.problem in DAMAGE

    def as_json(self) -> dict[str, object]:
        out: dict[str, object] = {
            "problem": str(self.problem),
            "subject": self.subject,
            "detail": self.detail,
            "damage": self.damage,
        }
        if self.repository is not None:
            out["repository"] = self.repository
        if self.unpullable:
            out["unpullable"] = list(self.unpullable)
        return out


@dataclass(frozen=True)
class FsckReport:
    findings: tuple[Finding, ...]
    checked: dict[str, int]
    """How many of each thing the check looked at (blob rows, files, links, manifests, …)."""
    repaired: tuple[Finding, ...] = ()
    repair_errors: tuple[str, ...] = ()
    seconds: float = 0.0

    @property
    def damage(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.damage)

    @property
    def unrepaired(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f not in self.repaired)

    @property
    def clean(self) -> bool:
        return not self.findings

    def count(self, problem: Problem) -> int:
        return sum(1 for f in self.findings if f.problem is problem)

    def as_json(self) -> dict[str, object]:
        return {
            "clean": self.clean,
            "damage": bool(self.damage),
            "checked": dict(self.checked),
            "findings": [f.as_json() for f in self.findings],
            "repaired": [f.as_json() for f in self.repaired],
            "repairErrors": list(self.repair_errors),
            "seconds": round(self.seconds, 3),
        }


@dataclass
class _Tally:
    counts: dict[str, int] = field(default_factory=lambda: defaultdict(int))

    def add(self, name: str, amount: int = 1) -> None:
        self.counts[name] += amount


class Fsck:
    """``check()`` compares the stores; ``repair(report)`` fixes what a check found that can be fixed."""

    def __init__(
        self,
        store: MetadataStore,
        blobs: EncryptedBlobStore,
        *,
        registry: RegistryService | None = None,
        grace_seconds: float = DEFAULT_GRACE_SECONDS,
        upload_expiry_seconds: float = 24 * 3600.0,
        verify_digests: bool = False,
        clock: Callable[[], float] = time.time,
        archive: EncryptedBlobStore | None = None,
    ) -> None:
        """``archive``: where blobs of archived images are (by default the archive that ``blobs`` reads from)."""
        if verify_digests and registry is None:
            raise ValueError("verifying digests needs the registry service (it holds the keys)")
        self.store = store
        self.blobs = blobs
        if archive is None and isinstance(blobs, ArchiveAwareBlobStore):
            archive = blobs.archive
        self.archive = archive
        self.registry = registry
        self.grace_seconds = grace_seconds
        self.upload_expiry_seconds = upload_expiry_seconds
        self.verify_digests = verify_digests
        self.clock = clock

    # -- the check -----------------------------------------------------------------------------------------

    def check(self, progress: Progress = no_progress) -> FsckReport:
        """``progress`` hears of the phases: "metadata", "listing files" (those listed), and with
        ``verify_digests`` "verifying blobs" and "verifying manifests" (of a known total)."""
        started = time.monotonic()
        progress("metadata", 0, 1)
        with self.store.snapshot() as conn:
            snap = queries.snapshot(conn)
            in_archive = archive_queries.digests_in_archive(conn)
            cached = pull_through_queries.cached_repository_ids(conn)
        progress("metadata", 1, 1)
        listed = 0

        def counted(files: Iterable[_F]) -> Iterator[_F]:
            nonlocal listed
            for file in files:
                listed += 1
                progress("listing files", listed, None)
                yield file

        progress("listing files", listed, None)
        # Listed after the snapshot: a row in it has its file already (see the module's docstring).
        blob_files = {f.digest: f for f in counted(self.blobs.list_blobs())}
        # A blob whose row says archive must be there (its move copied it before the row said so).
        archive_files = {f.digest: f for f in counted(self.archive.list_blobs())} if self.archive is not None else {}
        upload_files = {f.upload_id: f for f in counted(self.blobs.list_uploads())}
        now = self.clock()
        tally = _Tally()
        findings: list[Finding] = []
        names = snap.repository_names

        def where(repository_id: int) -> str:
            return names.get(repository_id, f"#{repository_id}")

        blob_refs: dict[str, list[tuple[int, str]]] = defaultdict(list)
        for ref in snap.references:
            if ref.kind == "blob":
                blob_refs[ref.target_digest].append((ref.repository_id, ref.manifest_digest))
        links = {(link.repository_id, link.digest) for link in snap.links}
        linked_digests = {link.digest for link in snap.links}
        tally.add("blob_rows", len(snap.blobs))
        tally.add("blob_files", len(blob_files))
        tally.add("links", len(snap.links))
        tally.add("manifests", len(snap.manifests))
        tally.add("references", len(snap.references))
        tally.add("tags", len(snap.tags))
        tally.add("uploads", len(snap.uploads))
        tally.add("upload_files", len(upload_files))

        # Blob rows against blob files.
        for digest, size in sorted(snap.blobs.items()):
            stored = (archive_files if digest in in_archive else blob_files).get(digest)
            if stored is None and digest not in linked_digests and digest not in blob_refs:
                # A garbage collection deletes an unlinked blob's object, then its row: one interrupted between
                # the two left a row nothing can read, which the next collection deletes (decision 0013).
                tally.add("collected_blob_rows")
                continue
            if stored is None:
                referencing = sorted({f"{where(r)}@{m}" for r, m in blob_refs.get(digest, [])})
                if referencing:
                    findings.append(
                        Finding(
                            Problem.MISSING_BLOB,
                            digest,
                            f"the blob's file is missing; {len(referencing)} manifest(s) reference it",
                            unpullable=tuple(referencing),
                        )
                    )
                else:
                    findings.append(
                        Finding(Problem.DANGLING_BLOB, digest, "the blob's file is missing; no manifest references it")
                    )
            elif not stored.holds(size):
                referencing = sorted({f"{where(r)}@{m}" for r, m in blob_refs.get(digest, [])})
                findings.append(
                    Finding(
                        Problem.CORRUPT_BLOB,
                        digest,
                        f"the file holds {stored.stored_size} bytes; {size} bytes of content are stored as "
                        f"{stored.expected_size(size)}",
                        unpullable=tuple(referencing),
                    )
                )
        for digest, stored in sorted(blob_files.items()):
            if digest in snap.blobs:
                continue
            if now - stored.changed_at < self.grace_seconds:
                tally.add("young_blob_files")
                continue
            findings.append(
                Finding(
                    Problem.ORPHAN_BLOB_FILE,
                    digest,
                    f"a stored file of {stored.stored_size} bytes that no blob row names",
                )
            )

        # Links, references and tags.
        for link in snap.links:
            if link.digest not in snap.blobs:
                findings.append(
                    Finding(
                        Problem.DANGLING_LINK,
                        link.digest,
                        "the repository links a blob that has no row",
                        repository=where(link.repository_id),
                        repository_id=link.repository_id,
                    )
                )
        # A repository a pull-through cache rule covers holds the parts of its images that were pulled: the rest
        # is fetched from the upstream when pulled (decision 0024), so a reference to it is no damage.
        held = {"blob": links, "manifest": snap.manifests}
        for ref in snap.references:
            if (ref.repository_id, ref.target_digest) in held.get(ref.kind, set()):
                continue
            if ref.repository_id in cached:
                tally.add("references_not_cached_yet")
            elif ref.kind == "blob":
                findings.append(
                    Finding(
                        Problem.UNLINKED_REFERENCE,
                        ref.target_digest,
                        f"manifest {ref.manifest_digest} references a blob the repository does not link",
                        repository=where(ref.repository_id),
                        repository_id=ref.repository_id,
                        unpullable=(f"{where(ref.repository_id)}@{ref.manifest_digest}",),
                    )
                )
            elif ref.kind == "manifest":
                findings.append(
                    Finding(
                        Problem.MISSING_CHILD,
                        ref.target_digest,
                        f"index {ref.manifest_digest} lists a manifest the repository does not hold",
                        repository=where(ref.repository_id),
                        repository_id=ref.repository_id,
                        unpullable=(f"{where(ref.repository_id)}@{ref.manifest_digest}",),
                    )
                )
        for tag in snap.tags:
            if (tag.repository_id, tag.manifest_digest) not in snap.manifests:
                findings.append(
                    Finding(
                        Problem.DANGLING_TAG,
                        tag.name,
                        f"the tag names {tag.manifest_digest}, which does not exist",
                        repository=where(tag.repository_id),
                        repository_id=tag.repository_id,
                        target=tag.manifest_digest,
                    )
                )

        # Upload sessions against upload files.
        session_ids = {upload.id for upload in snap.uploads}
        for upload in snap.uploads:
            # A session's bytes are stored from its first chunk on: an empty one has none.
            if upload.size and (upload.id not in upload_files or not self.blobs.upload_reaches(upload.id, upload.size)):
                # Completed (its bytes moved into the blob store) since the snapshot, or really lost?
                with self.store.read() as conn:
                    if not queries.upload_exists(conn, upload.id):
                        continue
                findings.append(
                    Finding(
                        Problem.UPLOAD_FILE_MISSING,
                        upload.id,
                        f"the session holds {upload.size} bytes; its file is gone",
                        repository=where(upload.repository_id),
                        repository_id=upload.repository_id,
                    )
                )
            elif now - upload.updated_at > self.upload_expiry_seconds:
                findings.append(
                    Finding(
                        Problem.EXPIRED_UPLOAD,
                        upload.id,
                        f"idle for {(now - upload.updated_at) / 3600:.1f} hours",
                        repository=where(upload.repository_id),
                        repository_id=upload.repository_id,
                    )
                )
        for upload_id, upload_bytes in sorted(upload_files.items()):
            if upload_id in session_ids:
                continue
            if now - upload_bytes.changed_at < self.grace_seconds:
                tally.add("young_upload_files")
                continue
            with self.store.read() as conn:
                if queries.upload_exists(conn, upload_id):
                    continue  # a session begun since the snapshot
            findings.append(
                Finding(
                    Problem.ORPHAN_UPLOAD_FILE,
                    upload_id,
                    f"upload bytes ({upload_bytes.stored_size} stored) without a session",
                )
            )

        if self.verify_digests:
            damaged = {f.subject for f in findings if f.problem in (Problem.MISSING_BLOB, Problem.CORRUPT_BLOB)}
            findings += self._verify_blobs(snap, blob_files, damaged, blob_refs, where, tally, progress)
            findings += self._verify_manifests(snap, tally, progress)
        return FsckReport(tuple(findings), dict(tally.counts), seconds=time.monotonic() - started)

    # -- deep verification -------------------------------------------------------------------------------

    def _repositories(self, snap: queries.Snapshot) -> dict[int, Repository]:
        with self.store.read() as conn:
            found = {number: repo_queries.get_by_id(conn, number) for number in snap.repository_names}
        return {number: repository for number, repository in found.items() if repository is not None}

    def _verify_blobs(
        self,
        snap: queries.Snapshot,
        blob_files: dict[str, StoredBlob],
        damaged: set[str],
        blob_refs: dict[str, list[tuple[int, str]]],
        where: Callable[[int], str],
        tally: _Tally,
        progress: Progress,
    ) -> list[Finding]:
        assert self.registry is not None
        repositories = self._repositories(snap)
        holders: dict[str, list[int]] = defaultdict(list)
        for link in snap.links:
            if link.has_key:
                holders[link.digest].append(link.repository_id)
        findings = []
        progress("verifying blobs", 0, len(snap.blobs))
        for done, (digest, size) in enumerate(sorted(snap.blobs.items()), 1):
            progress("verifying blobs", done, len(snap.blobs))
            if digest not in blob_files or digest in damaged:
                continue
            blob: BlobReader | None = None
            for repository_id in holders.get(digest, []):
                repository = repositories.get(repository_id)
                if repository is None:
                    continue
                try:
                    blob = self.registry.open_blob(repository, digest)
                    break
                except EcrdError:
                    continue  # this repository's key is unusable (disabled KMS key) or the link went away
            if blob is None:
                tally.add("unverifiable_blobs")
                continue
            referencing = tuple(sorted({f"{where(r)}@{m}" for r, m in blob_refs.get(digest, [])}))
            wanted = Digest.parse(digest)
            hasher = wanted.hasher()
            if size == 0 and blob_files[digest].stored_size == 0:
                tally.add("verified_blobs")  # an empty blob stored without its header (older versions)
                if hasher.hexdigest() != wanted.encoded:
                    findings.append(
                        Finding(
                            Problem.DIGEST_MISMATCH,
                            digest,
                            "the empty content has another digest",
                            unpullable=referencing,
                        )
                    )
                continue
            if not self.blobs.blob_stored(digest):
                continue  # deleted since the listing: not this check's to judge
            try:
                for chunk in blob.chunks(segments_per_chunk=4, reuse=True):
                    hasher.update(chunk)
            except CorruptData as exc:
                findings.append(
                    Finding(
                        Problem.UNREADABLE_BLOB,
                        digest,
                        f"the stored bytes do not decrypt: {exc}",
                        unpullable=referencing,
                    )
                )
                continue
            tally.add("verified_blobs")
            if hasher.hexdigest() != wanted.encoded:
                findings.append(
                    Finding(
                        Problem.DIGEST_MISMATCH,
                        digest,
                        f"the content hashes to {wanted.algorithm}:{hasher.hexdigest()}",
                        unpullable=referencing,
                    )
                )
        return findings

    def _verify_manifests(self, snap: queries.Snapshot, tally: _Tally, progress: Progress) -> list[Finding]:
        assert self.registry is not None
        repositories = self._repositories(snap)
        findings = []
        progress("verifying manifests", 0, len(snap.manifests))
        for done, (repository_id, digest) in enumerate(sorted(snap.manifests), 1):
            progress("verifying manifests", done, len(snap.manifests))
            repository = repositories.get(repository_id)
            if repository is None:
                continue
            try:
                stored = self.registry.resolve(repository, digest=digest, tag=None)
                if stored is None:
                    continue  # deleted since the snapshot
                payload = self.registry.open_manifest(repository, stored).payload
            except EcrdError as exc:
                if exc.aws_type == "KmsException":
                    tally.add("unverifiable_manifests")
                    continue
                findings.append(
                    Finding(
                        Problem.CORRUPT_MANIFEST,
                        digest,
                        f"the manifest does not unseal: {exc}",
                        repository=repository.name,
                        repository_id=repository_id,
                        unpullable=(f"{repository.name}@{digest}",),
                    )
                )
                continue
            tally.add("verified_manifests")
            algorithm = Digest.parse(digest).algorithm
            if str(Digest.of(payload, algorithm)) != digest:
                findings.append(
                    Finding(
                        Problem.CORRUPT_MANIFEST,
                        digest,
                        "the manifest does not hash to its digest",
                        repository=repository.name,
                        repository_id=repository_id,
                        unpullable=(f"{repository.name}@{digest}",),
                    )
                )
        return findings

    # -- repairs -------------------------------------------------------------------------------------------

    def repair(self, report: FsckReport) -> FsckReport:
        """Fix every repairable finding of ``report`` that still holds; damage is left for an operator.
        Returns ``report`` with what was repaired (and what could not be, and why)."""
        repaired: list[Finding] = []
        errors: list[str] = []
        actions: dict[Problem, Callable[[Finding], bool]] = {
            Problem.DANGLING_BLOB: self._drop_dangling_blob,
            Problem.DANGLING_LINK: self._drop_dangling_link,
            Problem.ORPHAN_BLOB_FILE: self._delete_orphan_blob_file,
            Problem.DANGLING_TAG: self._delete_dangling_tag,
            Problem.UPLOAD_FILE_MISSING: self._drop_upload_without_file,
            Problem.ORPHAN_UPLOAD_FILE: self._delete_orphan_upload_file,
            Problem.EXPIRED_UPLOAD: self._drop_expired_upload,
        }
        for finding in report.findings:
            action = actions.get(finding.problem)
            if action is None:
                continue
            try:
                if action(finding):
                    repaired.append(finding)
                    log.info("repaired %s %s", finding.problem, finding.subject)
            except Exception as exc:  # one failed repair must not stop the others
                log.exception("repairing %s %s failed", finding.problem, finding.subject)
                errors.append(f"{finding.problem} {finding.subject}: {type(exc).__name__}: {exc}")
        return replace(report, repaired=tuple(repaired), repair_errors=tuple(errors))

    def _drop_dangling_blob(self, finding: Finding) -> bool:
        digest = finding.subject
        with self.store.write() as conn:
            if queries.lock_blob_row(conn, digest) is None or self.blobs.blob_stored(digest):
                return False
            queries.lock_repositories(conn, queries.linking_repositories(conn, digest))
            if queries.blob_is_referenced_anywhere(conn, digest):
                return False
            queries.delete_blob_and_links(conn, digest)
        return True

    def _drop_dangling_link(self, finding: Finding) -> bool:
        assert finding.repository_id is not None
        with self.store.write() as conn:
            queries.lock_repositories(conn, [finding.repository_id])
            if queries.lock_blob_row(conn, finding.subject) is not None:
                return False
            if queries.link_is_referenced(conn, finding.repository_id, finding.subject):
                return False
            return queries.delete_link(conn, finding.repository_id, finding.subject)

    def _delete_orphan_blob_file(self, finding: Finding) -> bool:
        digest = finding.subject
        with self.store.write() as conn:
            if not queries.hold_absent_blob(conn, digest):
                return False  # a row appeared: an upload committed it
            try:
                self.blobs.delete_blob(digest)
            finally:
                queries.release_absent_blob(conn, digest)
        return True

    def _delete_dangling_tag(self, finding: Finding) -> bool:
        assert finding.repository_id is not None and finding.target is not None
        with self.store.write() as conn:
            queries.lock_repositories(conn, [finding.repository_id])
            return queries.delete_dangling_tag(conn, finding.repository_id, finding.subject, finding.target)

    def _drop_upload_without_file(self, finding: Finding) -> bool:
        upload_id = finding.subject
        with self.store.write() as conn:
            upload = blob_queries.get_upload(conn, upload_id)
            if upload is None or self.blobs.upload_reaches(upload_id, upload.size):
                return False
            queries.delete_upload_row(conn, upload_id)
        self.blobs.delete_upload(upload_id)  # what is left of its bytes
        return True

    def _delete_orphan_upload_file(self, finding: Finding) -> bool:
        upload_id = finding.subject
        with self.store.write() as conn:
            if queries.upload_exists(conn, upload_id):
                return False
            self.blobs.delete_upload(upload_id)
        return True

    def _drop_expired_upload(self, finding: Finding) -> bool:
        upload_id = finding.subject
        with self.store.write() as conn:
            updated_at = queries.upload_updated_at(conn, upload_id)
            if updated_at is None or self.clock() - updated_at <= self.upload_expiry_seconds:
                return False
            queries.delete_upload_row(conn, upload_id)
        self.blobs.delete_upload(upload_id)
        return True


def summarize(findings: Iterable[Finding]) -> dict[str, int]:
    """Findings counted by problem, for a one-line summary."""
    out: dict[str, int] = defaultdict(int)
    for finding in findings:
        out[str(finding.problem)] += 1
    return dict(out)
