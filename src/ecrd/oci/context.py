"""What a /v2/ handler gets: the request, its route, the caller, and the services it may use."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import anyio
from starlette.requests import Request

from ecrd.domain.records import Repository
from ecrd.services.access import AccessService, Caller
from ecrd.services.registry import RegistryService
from ecrd.services.uploads import UploadService
from ecrd.storage.driver import BlobDriver

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class OciServices:
    registry: RegistryService
    uploads: UploadService
    access: AccessService
    driver: BlobDriver


@dataclass(slots=True)
class OciRequest:
    request: Request
    route: str
    params: dict[str, str]
    action: str | None
    caller: Caller
    services: OciServices
    _repository: Repository | None = None

    @property
    def name(self) -> str:
        return self.params["name"]

    @property
    def method(self) -> str:
        return self.request.method

    async def run(self, func: Callable[..., T], *args: Any) -> T:
        """Run blocking service code (database, files) in a worker thread."""
        return await anyio.to_thread.run_sync(func, *args)

    async def repository(self, *, for_push: bool = False) -> Repository:
        """Authorize this request's action on its repository, then look the repository up.

        Authorization comes first so that a caller without access cannot learn which repositories exist.
        """
        if self._repository is not None:
            return self._repository
        if self.action is not None:
            await self.run(self.services.access.check_repository, self.caller, self.action, self.name)
        registry = self.services.registry
        self._repository = await self.run(
            registry.repository_for_push if for_push else registry.get_repository, self.name
        )
        return self._repository
