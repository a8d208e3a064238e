"""Repository settings and policies: mutability, scanning, resource tags, repository and registry policies, and the
account settings that decide how the registry policy applies."""

from __future__ import annotations

from sqlalchemy import Connection

from ecrd.domain.records import MutabilityExclusion, Repository
from ecrd.domain.registries import RegistryId
from ecrd.errors import (
    InvalidTagParameter,
    RegistryPolicyNotFound,
    RepositoryNotFound,
    RepositoryPolicyNotFound,
    TooManyTags,
)
from ecrd.metadata import repositories as repo_queries
from ecrd.metadata.store import MetadataStore
from ecrd.policy.document import parse_policy, replace_principal
from ecrd.services.account_settings import (
    check_registry_policy_scope,
    read_account_setting,
    registry_policy_scope,
    write_account_setting,
)
from ecrd.services.authorization import REGISTRY_POLICY_KEY

MAX_RESOURCE_TAGS = 50


def locked_repository(conn: Connection, repository: Repository, account_id: str) -> Repository:
    """The repository's row under its write lock: a change waits for a push in flight (and a push that follows
    sees the change), and a repository deleted since the caller read it is not found."""
    current = repo_queries.get_by_id(conn, repository.id, for_update=True)
    # SQLite may give a deleted repository's id to the next one made: the manifest key, random per repository,
    # tells them apart.
    if current is None or current.manifest_key != repository.manifest_key:
        raise RepositoryNotFound(
            f"The repository with name '{repository.name}' does not exist in the registry with id '{account_id}'"
        )
    return current


class RepositorySettingsService:
    def __init__(self, store: MetadataStore, *, account_id: str, region: str) -> None:
        self.store = store
        self.account_id = account_id
        self.registry_id = RegistryId(account_id, region)

    def _lock(self, conn: Connection, repository: Repository) -> Repository:
        return locked_repository(conn, repository, self.account_id)

    def put_image_tag_mutability(
        self, repository: Repository, mutability: str, exclusions: tuple[MutabilityExclusion, ...]
    ) -> None:
        with self.store.write() as conn:
            self._lock(conn, repository)
            repo_queries.update_settings(
                conn, repository.id, image_tag_mutability=mutability, mutability_exclusions=exclusions
            )

    def put_scan_on_push(self, repository: Repository, scan_on_push: bool) -> None:
        with self.store.write() as conn:
            self._lock(conn, repository)
            repo_queries.update_settings(conn, repository.id, scan_on_push=scan_on_push)

    # -- repository policy --------------------------------------------------------------------------------

    def set_repository_policy(self, repository: Repository, policy_text: str) -> None:
        with self.store.write() as conn:
            self._lock(conn, repository)
            repo_queries.set_policy(conn, repository.id, policy_text)

    def get_repository_policy(self, repository: Repository) -> str:
        with self.store.read() as conn:
            text = repo_queries.get_policy(conn, repository.id)
        if not text:
            raise self._no_policy(repository)
        return text

    def _no_policy(self, repository: Repository) -> RepositoryPolicyNotFound:
        return RepositoryPolicyNotFound(
            f"Repository policy does not exist for the repository with name '{repository.name}' in the "
            f"registry with id '{self.account_id}'"
        )

    def delete_repository_policy(self, repository: Repository) -> str:
        with self.store.write() as conn:
            self._lock(conn, repository)
            # Read under the lock: the policy answered is the one deleted, not one replaced meanwhile.
            text = repo_queries.get_policy(conn, repository.id)
            if not text:
                raise self._no_policy(repository)
            repo_queries.set_policy(conn, repository.id, None)
        return text

    # -- registry policy ----------------------------------------------------------------------------------

    def put_registry_policy(self, policy_text: str) -> None:
        document = parse_policy(policy_text, kind="resource")
        with self.store.write() as conn:
            # Checked against the scope read in the writing transaction, so the policy fits the scope it is
            # stored under.
            check_registry_policy_scope(document, registry_policy_scope(conn, self.registry_id))
            repo_queries.set_registry_setting(conn, self.registry_id, REGISTRY_POLICY_KEY, policy_text)

    def get_registry_policy(self) -> str:
        with self.store.read() as conn:
            text = repo_queries.get_registry_setting(conn, self.registry_id, REGISTRY_POLICY_KEY)
        if not text:
            raise RegistryPolicyNotFound(f"Registry policy does not exist in the registry with id '{self.account_id}'")
        return text

    def delete_registry_policy(self) -> str:
        text = self.get_registry_policy()
        with self.store.write() as conn:
            repo_queries.delete_registry_setting(conn, self.registry_id, REGISTRY_POLICY_KEY)
        return text

    # -- account settings (GetAccountSetting, PutAccountSetting) -------------------------------------------

    def get_account_setting(self, name: str) -> str:
        with self.store.read() as conn:
            return read_account_setting(conn, self.registry_id, name)

    def put_account_setting(self, name: str, value: str) -> str:
        """Store the setting. A registry policy already stored stays as written when the scope narrows to V1: ECR
        then enforces only the V1 actions it names (the authorizer reads the scope)."""
        with self.store.write() as conn:
            write_account_setting(conn, self.registry_id, name, value)
        return value

    def forget_principal(self, arn: str, unique_id: str) -> None:
        """IAM stores a policy's principals by unique id: once the principal is deleted its policies show the id,
        and a new user or role of the same name is not granted. Rewrite our stored policies the same way: the
        repository and registry policies of every registry, as another account's (or another region's) may
        name the principal too."""
        with self.store.write() as conn:
            for repository_id, text in repo_queries.policies_naming(conn, arn):
                repo_queries.set_policy(conn, repository_id, replace_principal(text, arn, unique_id))
            naming = repo_queries.registry_setting_values(conn, REGISTRY_POLICY_KEY, containing=arn)
            for registry, text in naming.items():
                repo_queries.set_registry_setting(
                    conn, registry, REGISTRY_POLICY_KEY, replace_principal(text, arn, unique_id)
                )

    # -- resource tags ------------------------------------------------------------------------------------

    def list_tags(self, repository: Repository) -> dict[str, str]:
        with self.store.read() as conn:
            return repo_queries.get_resource_tags(conn, repository.id)

    def tag_resource(self, repository: Repository, tags: dict[str, str]) -> None:
        check_resource_tags(tags)
        with self.store.write() as conn:
            # Under the lock, two TagResource calls at once cannot both pass the limit (PostgreSQL reads
            # committed data only; the row lock serializes them).
            self._lock(conn, repository)
            current = repo_queries.get_resource_tags(conn, repository.id)
            if len(current | tags) > MAX_RESOURCE_TAGS:
                raise TooManyTags(f"The repository can have at most {MAX_RESOURCE_TAGS} tags")
            repo_queries.put_resource_tags(conn, repository.id, tags)

    def untag_resource(self, repository: Repository, keys: list[str]) -> None:
        with self.store.write() as conn:
            self._lock(conn, repository)
            repo_queries.delete_resource_tags(conn, repository.id, keys)


def check_resource_tags(tags: dict[str, str]) -> None:
    if len(tags) > MAX_RESOURCE_TAGS:
        raise TooManyTags(f"The repository can have at most {MAX_RESOURCE_TAGS} tags")
    for key in tags:
        if key.lower().startswith("aws:"):
            raise InvalidTagParameter("Tag keys beginning with 'aws:' are reserved for AWS use")
