"""What an AWS API operation gets: the caller, the services, and the one way to authorize."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from ecrd.config import Settings
from ecrd.domain.registries import RegistryId
from ecrd.observability import RequestRecord
from ecrd.services.access import AccessService, Caller
from ecrd.services.registry import RegistryService
from ecrd.services.repository_settings import RepositorySettingsService
from ecrd.services.scanning import ScanningService
from ecrd.services.tokens import RegistryTokens
from ecrd.services.uploads import UploadService

if TYPE_CHECKING:
    from ecrd.services.archive import ArchiveService
    from ecrd.services.creation_templates import CreationTemplateService
    from ecrd.services.iam import IdentityServices
    from ecrd.services.kms import KeyService
    from ecrd.services.lifecycle import LifecycleService
    from ecrd.services.pull_policy import PullPolicyService
    from ecrd.services.pull_through_cache import PullThroughCacheService
    from ecrd.services.replication import ReplicationService
    from ecrd.services.secrets_manager import SecretsManagerService
    from ecrd.services.signing import SigningService


class GenerationPin(Protocol):
    """ecrd.metadata.generations.Generations, as the door sees it."""

    def pinned(self) -> AbstractContextManager[None]: ...


@dataclass(frozen=True, slots=True)
class AwsServices:
    """One registry's services (an account in a region), as the API's operations use them."""

    settings: Settings
    registry_id: RegistryId
    registry: RegistryService
    uploads: UploadService
    access: AccessService
    identity: IdentityServices
    tokens: RegistryTokens
    settings_service: RepositorySettingsService
    kms: KeyService
    scanning: ScanningService
    lifecycle: LifecycleService
    archive: ArchiveService
    templates: CreationTemplateService
    secrets_manager: SecretsManagerService
    pull_through: PullThroughCacheService
    replication: ReplicationService
    signing: SigningService
    pull_policy: PullPolicyService
    # Pins the access generation for a whole request, so its cached lookups (the caller's key, policies,
    # the repository) cost one generation query in all.
    generations: GenerationPin | None = None
    # The reads of a request may run on the event loop itself (SQLite: see AwsDoor._blocking).
    inline_reads: bool = False


@dataclass(frozen=True, slots=True)
class AwsContext:
    caller: Caller
    services: AwsServices
    request_id: str
    # Where the request log learns the action and repository of this call.
    record: RequestRecord = field(default_factory=RequestRecord)

    @property
    def identity(self) -> IdentityServices:
        return self.services.identity

    @property
    def account_id(self) -> str:
        """The account the request is answered in: the caller's, or the registry's its registryId names."""
        return self.services.registry_id.account_id

    @property
    def region(self) -> str:
        return self.services.registry_id.region

    def authorize(self, action: str, resource: str, context: dict[str, object] | None = None) -> None:
        self.services.access.authorizer.authorize(self.caller, action, resource, context=context)

    def authorize_repository(self, action: str, name: str, context: dict[str, object] | None = None) -> None:
        self.services.access.check_repository(self.caller, action, name, context)


Operation = Callable[[AwsContext, dict[str, Any]], dict[str, Any]]


class AwsRegistries(Protocol):
    """The deployment's registries as the AWS door finds them: by the caller's account (or an ECR request's
    registryId) and the region a request is signed for."""

    @property
    def default(self) -> AwsServices: ...

    @property
    def regions(self) -> frozenset[str]: ...

    def serves(self, registry: RegistryId) -> bool: ...

    def aws(self, registry: RegistryId) -> AwsServices: ...
