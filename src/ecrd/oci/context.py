"""What a /v2/ handler gets: the request, its route, the caller, and the services it may use."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

import anyio
from starlette.requests import Request

from ecrd.domain.records import Repository
from ecrd.domain.registries import RegistryId
from ecrd.services.access import AccessService, Caller
from ecrd.services.identity import RegistryAuthenticator
from ecrd.services.pull_policy import PullPolicyService
from ecrd.services.pull_through_cache import PullThroughCacheService
from ecrd.services.registry import RegistryService
from ecrd.services.uploads import UploadService

T = TypeVar("T")


class GenerationPin(Protocol):
    """ecrd.metadata.generations.Generations, as the door sees it."""

    def pinned(self) -> AbstractContextManager[None]: ...

    def call_pinned(self, func: Callable[..., T], args: tuple[Any, ...]) -> T: ...


@dataclass(frozen=True, slots=True)
class OciServices:
    registry: RegistryService
    uploads: UploadService
    access: AccessService
    # Pins the access generation for each worker-thread call, so its cached lookups cost one query in all
    # (none when it looks nothing up).
    generations: GenerationPin | None = None
    # The hot reads may run on the event loop itself (SQLite: see OciRequest.read).
    inline_reads: bool = False
    # Fills repositories that pull-through cache rules cover, on pulls of what they do not hold yet.
    pull_through: PullThroughCacheService | None = None
    # Enforces the image pull policies of the repositories that have one.
    pull_policy: PullPolicyService | None = None


class OciRegistries(Protocol):
    """The deployment's registries as the /v2/ door finds them: by the request's host name."""

    def registry_of_host(self, host: str) -> RegistryId | None:
        """The registry a host name names: ``ACCOUNT.dkr.ecr.REGION.DOMAIN`` under the configured domain (None
        when that registry is not served here), any other host the default registry. Blocking: an account not
        seen yet is looked up in the store."""
        ...

    def known_registry_of_host(self, host: str) -> RegistryId | None:
        """``registry_of_host`` when it is answered from memory (the default registry, an account seen before),
        else None; never blocks, so the door asks it on the event loop."""
        ...

    def oci(self, registry: RegistryId) -> tuple[OciServices, RegistryAuthenticator]: ...


@dataclass(slots=True)
class OciRequest:
    request: Request
    route: str
    params: dict[str, str]
    action: str | None
    # Proves who is calling (blocking: it may look the token's key up); called once, in a worker thread.
    authenticate: Callable[[], Caller]
    services: OciServices
    _caller: Caller | None = None
    _repository: Repository | None = None

    @property
    def name(self) -> str:
        return self.params["name"]

    @property
    def method(self) -> str:
        return self.request.method

    async def run(self, func: Callable[..., T], *args: Any) -> T:
        """Run blocking service code (database, files) in a worker thread."""
        return await anyio.to_thread.run_sync(self._pinned, func, args)

    async def read(self, func: Callable[..., T], *args: Any) -> T:
        """Run the blocking reads of a hot path (authentication, authorization, one indexed query; never a
        write). On SQLite they run on the event loop: in WAL mode a read never waits for a writer, and with
        the access caches warm it costs ~20-50 µs, less than the hop to a worker thread and back. On
        PostgreSQL a query is a network round trip, so they go to a worker thread like the rest."""
        if self.services.inline_reads:
            return self._pinned(func, args)
        return await self.run(func, *args)

    def _pinned(self, func: Callable[..., T], args: tuple[Any, ...]) -> T:
        generations = self.services.generations
        if generations is None:
            return func(*args)
        return generations.call_pinned(func, args)

    # Each handler does its blocking work in as few thread hops as it can (one on the hot paths): the
    # synchronous methods below compose authentication, authorization and the repository lookup into it.

    @property
    def caller(self) -> Caller:
        """The authenticated caller (blocking the first time; call it from a worker thread)."""
        if self._caller is None:
            self._caller = self.authenticate()
        return self._caller

    def repository_sync(self, *, for_push: bool = False) -> Repository:
        """Authenticate, authorize this request's action on its repository, then look the repository up.

        Authorization comes before the lookup so that a caller without access cannot learn which
        repositories exist.
        """
        if self._repository is not None:
            return self._repository
        caller = self.caller
        if self.action is not None:
            self.services.access.check_repository(caller, self.action, self.name)
        registry = self.services.registry
        self._repository = (
            registry.repository_for_push(self.name, caller) if for_push else registry.get_repository(self.name)
        )
        return self._repository

    async def repository(self, *, for_push: bool = False) -> Repository:
        if self._repository is not None:
            return self._repository
        return await self.run(lambda: self.repository_sync(for_push=for_push))
