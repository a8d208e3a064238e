"""Handlers of the listing endpoints: the API base, the catalog, tags lists and referrers."""

from __future__ import annotations

import functools

from starlette.responses import Response

from ecrd.domain import media_types as mt
from ecrd.domain.names import check_repository_name
from ecrd.errors import AccessDenied, PaginationTokenInvalid
from ecrd.oci.context import OciRequest
from ecrd.oci.protocol import OCI_FILTERS_APPLIED, next_link
from ecrd.oci.responses import json_response

CATALOG_DEFAULT_PAGE = 1000


def _page_size(value: str | None, default: int | None) -> int | None:
    if value is None or value == "":
        return default
    try:
        n = int(value)
    except ValueError:
        raise PaginationTokenInvalid(f"invalid page size n={value[:50]!r}: must be an integer") from None
    if n < 0:
        raise PaginationTokenInvalid(f"invalid page size n={n}: must not be negative")
    return n


async def get_base(req: OciRequest) -> Response:
    return json_response({})


async def get_catalog(req: OciRequest) -> Response:
    query = req.request.query_params
    n = _page_size(query.get("n"), CATALOG_DEFAULT_PAGE)
    assert n is not None
    last = query.get("last")
    names: list[str] = []
    cursor = last
    # The catalog lists only repositories the caller may describe; page until n are found or none remain.
    while len(names) < n:
        batch = await req.run(functools.partial(req.services.registry.catalog, last=cursor, n=max(n, 100) + 1))
        if not batch:
            break
        for name in batch:
            cursor = name
            try:
                await req.run(req.services.access.check_repository, req.caller, "ecr:DescribeRepositories", name)
            except AccessDenied:
                continue
            names.append(name)
            if len(names) > n:
                break
        if len(batch) <= max(n, 100):
            break
    headers = {}
    if len(names) > n:
        names = names[:n]
        headers["Link"] = next_link("/v2/_catalog", n, names[-1])
    return json_response({"repositories": names}, headers=headers)


async def get_tags(req: OciRequest) -> Response:
    repository = await req.repository()
    query = req.request.query_params
    n = _page_size(query.get("n"), None)
    last = query.get("last")
    tags = await req.run(lambda: req.services.registry.list_tags(repository, last=last, n=None if n is None else n + 1))
    headers = {}
    if n is not None and len(tags) > n:
        tags = tags[:n]
        if tags:
            headers["Link"] = next_link(f"/v2/{repository.name}/tags/list", n, tags[-1])
    return json_response({"name": repository.name, "tags": tags}, headers=headers)


async def get_referrers(req: OciRequest) -> Response:
    check_repository_name(req.name)
    repository = await req.repository()
    artifact_type = req.request.query_params.get("artifactType")
    found = await req.run(req.services.registry.referrers, repository, req.params["digest"], artifact_type)
    headers = {OCI_FILTERS_APPLIED: "artifactType"} if artifact_type is not None else {}
    body = {"schemaVersion": 2, "mediaType": mt.OCI_INDEX, "manifests": [d.to_json() for d in found]}
    return json_response(body, headers=headers, media_type=mt.OCI_INDEX)
