"""Repository creation templates: their use cases (ECR's Create/Describe/Update/DeleteRepositoryCreationTemplate)
and the creation of a repository from the template that covers its name — on push now (CREATE_ON_PUSH), for
replication and pull-through cache later, through ``create_from_template``."""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable

from ecrd.domain.creation_templates import (
    CREATE_ON_PUSH,
    ROOT,
    CreationTemplate,
    best_template,
    candidate_prefixes,
    checked_applied_for,
    normalized_prefix,
)
from ecrd.domain.records import Repository
from ecrd.domain.registries import RegistryId
from ecrd.errors import (
    AccessDenied,
    EcrdError,
    InvalidParameter,
    InvalidTagParameter,
    LimitExceeded,
    NotFound,
    RepositoryAlreadyExists,
    TemplateAlreadyExists,
    TemplateNotFound,
    TooManyTags,
)
from ecrd.metadata import creation_templates as q
from ecrd.metadata.iam import RoleRecord
from ecrd.metadata.store import MetadataStore
from ecrd.policy.document import replace_principal
from ecrd.services.access import AccessService, Caller, CallerKind, request_tag_context
from ecrd.services.iam.principals import Principals
from ecrd.services.kms import KMS_ENCRYPTION_TYPES, KeyService, repository_kms_key
from ecrd.services.lifecycle import checked_policy as checked_lifecycle_policy
from ecrd.services.registry import RegistryService
from ecrd.services.repository_settings import check_resource_tags

log = logging.getLogger(__name__)

# ECR's quotas page lists no limit on templates; a registry holds at most this many (LimitExceededException).
MAX_TEMPLATES = 100
# The session name the registry uses when it acts as a template's custom role.
ROLE_SESSION_NAME = "ecr-repository-creation"
CREATE_ON_PUSH_DESCRIPTION = "Installed by --create-on-push: pushes create missing repositories"


class CreationTemplateService:
    """The templates of one registry and the repositories made from them."""

    def __init__(
        self,
        store: MetadataStore,
        registry: RegistryService,
        access: AccessService,
        kms: KeyService,
        principals: Principals,
        *,
        account_id: str,
        region: str,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.registry = registry
        self.access = access
        self.kms = kms
        self.principals = principals
        self.account_id = account_id
        self.region = region
        # The registry whose templates these are: every query is confined to it.
        self.registry_id = RegistryId(account_id, region)
        self.clock = clock

    # -- the API's operations -------------------------------------------------------------------------------

    def create_template(self, template: CreationTemplate) -> CreationTemplate:
        self._check(template)
        now = self.clock()
        prefix = normalized_prefix(template.prefix)
        stored = dataclasses.replace(template, prefix=prefix, created_at=now, updated_at=now)
        with self.store.write() as conn:
            if q.get(conn, self.registry_id, stored.prefix) is not None:
                raise self._exists(stored.prefix)
            if q.count(conn, self.registry_id) >= MAX_TEMPLATES:
                raise LimitExceeded(
                    f"The maximum number of repository creation templates ({MAX_TEMPLATES}) in the registry with "
                    f"id '{self.account_id}' has been reached"
                )
            if not q.insert_template(conn, self.registry_id, stored):
                raise self._exists(stored.prefix)  # made by a concurrent request since the look above
        return stored

    def update_template(self, prefix: str, change: Callable[[CreationTemplate], CreationTemplate]) -> CreationTemplate:
        """The template of ``prefix`` changed by ``change`` (which sees the stored template, so members the request
        leaves out keep their values), checked as a new one is."""
        prefix = normalized_prefix(prefix)
        with self.store.write() as conn:
            current = q.get(conn, self.registry_id, prefix, for_update=True)
            if current is None:
                raise self._not_found(prefix)
            updated = dataclasses.replace(change(current), prefix=prefix, updated_at=self.clock())
            self._check(updated)
            q.replace_template(conn, self.registry_id, updated)
        return updated

    def delete_template(self, prefix: str) -> CreationTemplate:
        prefix = normalized_prefix(prefix)
        with self.store.write() as conn:
            current = q.get(conn, self.registry_id, prefix, for_update=True)
            if current is None:
                raise self._not_found(prefix)
            q.delete_template(conn, self.registry_id, prefix)
        return current

    def describe_templates(
        self, prefixes: list[str] | None, *, after: str | None = None, limit: int = 100
    ) -> list[CreationTemplate]:
        """The templates of ``prefixes`` (those that exist), or a keyset page of all of them in prefix order."""
        with self.store.read() as conn:
            if prefixes is not None:
                return q.get_many(conn, self.registry_id, sorted({normalized_prefix(prefix) for prefix in prefixes}))
            return q.page(conn, self.registry_id, after=after, limit=limit)

    def get_template(self, prefix: str) -> CreationTemplate:
        prefix = normalized_prefix(prefix)
        with self.store.read() as conn:
            found = q.get(conn, self.registry_id, prefix)
        if found is None:
            raise self._not_found(prefix)
        return found

    # -- creating repositories from templates ---------------------------------------------------------------

    def template_for(self, repository_name: str, applied_for: str) -> CreationTemplate | None:
        """The template a repository named ``repository_name`` created for ``applied_for`` (REPLICATION,
        PULL_THROUGH_CACHE, CREATE_ON_PUSH) takes, if any: the settings of the new repository."""
        with self.store.read() as conn:
            candidates = q.get_many(conn, self.registry_id, candidate_prefixes(repository_name))
        return best_template(candidates, repository_name, applied_for)

    def create_from_template(self, repository_name: str, template: CreationTemplate, caller_arn: str) -> Repository:
        """Create ``repository_name`` with every setting of ``template``. With a custom role, the registry
        creates it as that role, which must be allowed to (ecr:CreateRepository, ecr:TagResource for tags), as
        ECR assumes the role to create it. A repository made meanwhile by someone else is left as it is."""
        tags = dict(template.resource_tags)
        if template.custom_role_arn is not None:
            role = self._role_session(template.custom_role_arn)
            self.access.check_repository(role, "ecr:CreateRepository", repository_name)
            if tags:
                self.access.check_repository(role, "ecr:TagResource", repository_name, request_tag_context(tags))
        kms_key = repository_kms_key(self.kms, template.encryption_type, template.kms_key, caller_arn)
        try:
            return self.registry.create_repository(
                repository_name,
                image_tag_mutability=template.image_tag_mutability,
                mutability_exclusions=template.mutability_exclusions,
                encryption_type=template.encryption_type,
                kms_key=kms_key,
                tags=tags,
                policy_text=template.repository_policy,
                lifecycle_policy=template.lifecycle_policy,
                pull_policy=template.pull_policy,
            )
        except RepositoryAlreadyExists:
            return self.registry.get_repository(repository_name)

    def create_for(self, repository_name: str, applied_for: str, caller_arn: str) -> Repository:
        """A missing repository made for ``applied_for`` (REPLICATION, PULL_THROUGH_CACHE): from the template that
        covers its name, else with CreateRepository's defaults; one made meanwhile by someone else is taken as it
        is."""
        template = self.template_for(repository_name, applied_for)
        if template is not None:
            return self.create_from_template(repository_name, template, caller_arn)
        try:
            return self.registry.create_repository(repository_name)
        except RepositoryAlreadyExists:
            return self.registry.get_repository(repository_name)

    def create_on_push(self, repository_name: str, caller: Caller) -> Repository | None:
        """The repository a push to the missing ``repository_name`` creates, or None when no CREATE_ON_PUSH
        template covers the name. The pusher must be allowed ecr:CreateRepository on the repository, besides
        the push action its door has authorized."""
        template = self.template_for(repository_name, CREATE_ON_PUSH)
        if template is None:
            return None
        self.access.check_repository(caller, "ecr:CreateRepository", repository_name)
        return self.create_from_template(repository_name, template, caller.arn)

    def install_create_on_push_root(self) -> None:
        """``--create-on-push``: a ROOT template for CREATE_ON_PUSH with the defaults of CreateRepository.
        Idempotent; a ROOT template an operator made keeps all its settings and gains CREATE_ON_PUSH."""
        with self.store.read() as conn:
            installed = q.get(conn, self.registry_id, ROOT)
        if installed is not None and CREATE_ON_PUSH in installed.applied_for:
            return  # every start after the first: no write
        now = self.clock()
        with self.store.write() as conn:
            current = q.get(conn, self.registry_id, ROOT, for_update=True)
            if current is None:
                root = CreationTemplate(
                    prefix=ROOT,
                    applied_for=(CREATE_ON_PUSH,),
                    description=CREATE_ON_PUSH_DESCRIPTION,
                    created_at=now,
                    updated_at=now,
                )
                # No row when another process of the cluster installed it first.
                q.insert_template(conn, self.registry_id, root)
                return
            if CREATE_ON_PUSH in current.applied_for:
                return
            log.info("--create-on-push: the existing ROOT repository creation template now applies to CREATE_ON_PUSH")
            q.replace_template(
                conn,
                self.registry_id,
                dataclasses.replace(current, applied_for=(*current.applied_for, CREATE_ON_PUSH), updated_at=now),
            )

    def forget_principal(self, arn: str, unique_id: str) -> None:
        """A deleted user or role: template policies naming it name its unique id instead, as repository policies
        do, so a new principal of the same name gets nothing from repositories created later. Every registry's
        templates, not only this one's: IAM rewrites the principal wherever a policy names it (another account's
        templates may grant it), and the registries whose services were never built have no one else to do it."""
        with self.store.write() as conn:
            for registry, prefix, text in q.policies_naming(conn, arn):
                q.set_policy(conn, registry, prefix, replace_principal(text, arn, unique_id))

    # -- rules ----------------------------------------------------------------------------------------------

    def _check(self, template: CreationTemplate) -> None:
        """What ECR refuses in a template beyond the model's constraints (which the door has checked)."""
        checked_applied_for(template.applied_for)
        try:
            check_resource_tags(dict(template.resource_tags))
        except (InvalidTagParameter, TooManyTags) as exc:
            # The template operations' errors in the model have no tag exceptions of their own.
            raise InvalidParameter(
                f"Invalid parameter at 'resourceTags' failed to satisfy constraint: '{exc.message}'"
            ) from None
        if template.lifecycle_policy is not None:
            checked_lifecycle_policy(template.lifecycle_policy)
        if template.kms_key:
            if template.encryption_type not in KMS_ENCRYPTION_TYPES:
                raise InvalidParameter(
                    "Invalid parameter at 'encryptionConfiguration' failed to satisfy constraint: "
                    "'kmsKey can only be specified with encryptionType KMS'"
                )
            try:
                self.kms.resolve_key(template.kms_key)
            except EcrdError:
                raise InvalidParameter(
                    f"Invalid parameter at 'encryptionConfiguration' failed to satisfy constraint: "
                    f"'KMS key {template.kms_key} does not exist'"
                ) from None
        if template.custom_role_arn is not None:
            self.check_role(template.custom_role_arn)

    def check_role(self, arn: str) -> None:
        # The model: "This role must be in the same account as the registry that you are configuring."
        if self._role(arn) is None:
            raise InvalidParameter(
                f"Invalid parameter at 'customRoleArn' failed to satisfy constraint: '{arn[:300]} is not a role of "
                f"the account {self.account_id}'"
            )

    def _role(self, arn: str) -> RoleRecord | None:
        """The role of this account whose ARN (path included) is ``arn``, if there is one."""
        try:
            role = self.principals.entity("role", arn.rsplit("/", 1)[-1])
        except NotFound:
            return None
        return role if isinstance(role, RoleRecord) and role.arn(self.account_id) == arn else None

    def _role_session(self, arn: str) -> Caller:
        """The template's custom role as the registry acts with it: a session of that role."""
        role = self._role(arn)
        if role is None:
            raise AccessDenied(f"The repository creation template's role {arn} cannot be assumed: it does not exist")
        return Caller(
            arn=f"arn:aws:sts::{self.account_id}:assumed-role/{role.name}/{ROLE_SESSION_NAME}",
            account_id=self.account_id,
            kind=CallerKind.ASSUMED_ROLE,
            user_id=f"{role.id}:{ROLE_SESSION_NAME}",
            aliases=(arn,),
        )

    def _exists(self, prefix: str) -> TemplateAlreadyExists:
        return TemplateAlreadyExists(
            f"The repository creation template with prefix '{prefix}' already exists in the registry with id "
            f"'{self.account_id}'"
        )

    def _not_found(self, prefix: str) -> TemplateNotFound:
        return TemplateNotFound(
            f"The repository creation template with prefix '{prefix}' does not exist in the registry with id "
            f"'{self.account_id}'"
        )
