"""What an AWS API operation gets: the caller, the services, and the one way to authorize."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from ecrd.config import Settings
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
    settings: Settings
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
        return self.services.settings.account_id

    @property
    def region(self) -> str:
        return self.services.settings.region

    def authorize(self, action: str, resource: str, context: dict[str, object] | None = None) -> None:
        self.services.access.authorizer.authorize(self.caller, action, resource, context=context)

    def authorize_repository(self, action: str, name: str, context: dict[str, object] | None = None) -> None:
        self.services.access.check_repository(self.caller, action, name, context)


Operation = Callable[[AwsContext, dict[str, Any]], dict[str, Any]]
