"""Handlers of the listing endpoints: the API base, the catalog, tags lists and referrers."""

from __future__ import annotations

from starlette.responses import Response

from ecrd.domain import media_types as mt
from ecrd.domain.records import Repository
from ecrd.errors import AccessDenied, PaginationTokenInvalid
from ecrd.oci.context import OciRequest
from ecrd.oci.protocol import OCI_FILTERS_APPLIED, next_link
from ecrd.oci.responses import json_response

CATALOG_DEFAULT_PAGE = 1000
MAX_PAGE = 10_000


def _last(value: str | None) -> str | None:
    if value is not None and ("\x00" in value or len(value) > 512):
        raise PaginationTokenInvalid("invalid last parameter: it must be a repository name or a tag")
    return value


def _page_size(value: str | None, default: int | None) -> int | None:
    if value is None or value == "":
        return default
    try:
        n = int(value)
    except ValueError:
        raise PaginationTokenInvalid(f"invalid page size n={value[:50]!r}: must be an integer") from None
    if n < 0:
        raise PaginationTokenInvalid(f"invalid page size n={n}: must not be negative")
    # The spec lets a registry return fewer than n; a bounded page keeps huge values out of the database.
    return min(n, MAX_PAGE)


async def get_base(req: OciRequest) -> Response:
    await req.run(lambda: req.caller)  # the base endpoint answers 200 only to an authenticated caller
    return json_response({})


async def get_catalog(req: OciRequest) -> Response:
    query = req.request.query_params
    n = _page_size(query.get("n"), CATALOG_DEFAULT_PAGE)
    assert n is not None
    names = await req.run(_describable_names, req, _last(query.get("last")), n + 1)
    headers = {}
    if len(names) > n:
        names = names[:n]
        if names:  # n=0 asks for an empty page: there is no next one to link to
            headers["Link"] = next_link("/v2/_catalog", n, names[-1])
    return json_response({"repositories": names}, headers=headers)


def _describable_names(req: OciRequest, last: str | None, wanted: int) -> list[str]:
    """Up to ``wanted`` repository names after ``last`` that the caller may describe (the catalog shows
    only those), paging through the store until enough are found or none remain."""
    caller = req.caller
    names: list[str] = []
    cursor = last
    batch_size = max(wanted, 100)
    while len(names) < wanted:
        batch = req.services.registry.catalog(last=cursor, n=batch_size)
        for name in batch:
            cursor = name
            try:
                req.services.access.check_repository(caller, "ecr:DescribeRepositories", name)
            except AccessDenied:
                continue
            names.append(name)
            if len(names) == wanted:
                break
        if len(batch) < batch_size:
            break
    return names


async def get_tags(req: OciRequest) -> Response:
    query = req.request.query_params

    def work() -> tuple[Repository, int | None, list[str]]:
        repository = req.repository_sync()  # authorization first: then the parameters are worth checking
        n = _page_size(query.get("n"), None)
        last = _last(query.get("last"))
        return repository, n, req.services.registry.list_tags(repository, last=last, n=None if n is None else n + 1)

    repository, n, tags = await req.read(work)
    headers = {}
    if n is not None and len(tags) > n:
        tags = tags[:n]
        if tags:
            headers["Link"] = next_link(f"/v2/{repository.name}/tags/list", n, tags[-1])
    return json_response({"name": repository.name, "tags": tags}, headers=headers)


async def get_referrers(req: OciRequest) -> Response:
    artifact_type = req.request.query_params.get("artifactType")
    repository = await req.repository()
    found = await req.run(req.services.registry.referrers, repository, req.params["digest"], artifact_type)
    headers = {OCI_FILTERS_APPLIED: "artifactType"} if artifact_type is not None else {}
    body = {"schemaVersion": 2, "mediaType": mt.OCI_INDEX, "manifests": [d.to_json() for d in found]}
    return json_response(body, headers=headers, media_type=mt.OCI_INDEX)
