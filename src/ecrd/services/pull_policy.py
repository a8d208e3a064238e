"""Image pull policies (decision 0030): set on a repository through ecrd's own operations, enforced on every
manifest pull through ``/v2/`` after authorization. The repository row carries its policy, so a pull from a
repository without one pays a single attribute test on the repository it has already read; a pull from one with
a policy pays one read of the image's scan summary and signing statuses."""

from __future__ import annotations

import dataclasses

from ecrd.domain import media_types as mt
from ecrd.domain.creation_templates import CreationTemplate
from ecrd.domain.pull_policy import PullPolicy, evaluate_pull
from ecrd.domain.records import Repository, StoredManifest
from ecrd.errors import ImagePullPolicyNotFound, PullPolicyDenied
from ecrd.metadata import jobs as job_queries
from ecrd.metadata import repositories as repo_queries
from ecrd.metadata.store import MetadataStore
from ecrd.services.access import Caller
from ecrd.services.creation_templates import CreationTemplateService
from ecrd.services.repository_settings import locked_repository
from ecrd.services.signing import SigningService


class PullPolicyService:
    def __init__(
        self,
        store: MetadataStore,
        signing: SigningService,
        templates: CreationTemplateService,
        *,
        account_id: str,
    ) -> None:
        self.store = store
        self.signing = signing
        self.templates = templates
        self.account_id = account_id

    def put_image_pull_policy(self, repository: Repository, policy: PullPolicy) -> PullPolicy:
        """Set the policy; every trusted profile must be one of the registry's."""
        with self.store.write() as conn:
            locked_repository(conn, repository, self.account_id)
            for arn in policy.trusted_profiles:
                self.signing.check_profile_arn(conn, arn, "requireSignatureFrom")
            repo_queries.set_pull_policy(conn, repository.id, policy)
        return policy

    def get_image_pull_policy(self, repository: Repository) -> PullPolicy:
        if repository.pull_policy is None:
            raise self._not_found(repository)
        return repository.pull_policy

    def delete_image_pull_policy(self, repository: Repository) -> PullPolicy:
        with self.store.write() as conn:
            current = locked_repository(conn, repository, self.account_id)
            if current.pull_policy is None:
                raise self._not_found(repository)
            repo_queries.set_pull_policy(conn, repository.id, None)
        return current.pull_policy

    def _not_found(self, repository: Repository) -> ImagePullPolicyNotFound:
        return self._none_for(f"the repository with name '{repository.name}'")

    def _none_for(self, what: str) -> ImagePullPolicyNotFound:
        return ImagePullPolicyNotFound(
            f"Image pull policy does not exist for {what} in the registry with id '{self.account_id}'"
        )

    # -- of the repositories a creation template makes ------------------------------------------------------

    def put_template_pull_policy(self, prefix: str, policy: PullPolicy) -> PullPolicy:
        with self.store.read() as conn:
            for arn in policy.trusted_profiles:
                self.signing.check_profile_arn(conn, arn, "requireSignatureFrom")
        self.templates.update_template(prefix, lambda current: dataclasses.replace(current, pull_policy=policy))
        return policy

    def get_template_pull_policy(self, prefix: str) -> PullPolicy:
        policy = self.templates.get_template(prefix).pull_policy
        if policy is None:
            raise self._none_for(f"the repository creation template with prefix '{prefix}'")
        return policy

    def delete_template_pull_policy(self, prefix: str) -> PullPolicy:
        removed: list[PullPolicy] = []

        def change(current: CreationTemplate) -> CreationTemplate:
            if current.pull_policy is None:
                raise self._none_for(f"the repository creation template with prefix '{prefix}'")
            removed.append(current.pull_policy)
            return dataclasses.replace(current, pull_policy=None)

        self.templates.update_template(prefix, change)
        return removed[0]

    def check_pull(self, repository: Repository, manifest: StoredManifest, caller: Caller) -> None:
        """Refuse (PullPolicyDenied, 403 DENIED) a pull of ``manifest`` that the repository's policy does not
        allow ``caller``. Referrers (signatures, SBOMs) are not images and always pass: a client must read an
        image's signatures to check them. An index has no scan of its own: its images are checked as they are
        pulled, and only its signature is asked for."""
        policy = repository.pull_policy
        if policy is None or not policy.restricts or manifest.subject_digest is not None:
            return
        if caller.arn in policy.exempt_principals or set(caller.aliases) & set(policy.exempt_principals):
            return
        if manifest.media_type in mt.INDEXES:
            policy = PullPolicy(None, policy.trusted_profiles)
        with self.store.read() as conn:
            summary = (
                job_queries.scan_summaries_of(conn, repository.id, [manifest.digest]).get(manifest.digest)
                if policy.severity_threshold is not None
                else None
            )
            signed_by = (
                self.signing.signed_by(conn, repository, manifest.digest) if policy.trusted_profiles else frozenset()
            )
        scan = None if summary is None else (summary.status, summary.severity_counts)
        refusal = evaluate_pull(policy, manifest.digest, scan, signed_by)
        if refusal is not None:
            raise PullPolicyDenied(
                refusal.message, detail={"reason": refusal.reason, "findingCount": refusal.finding_count}
            )
