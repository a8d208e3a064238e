"""Protocol strings of the OCI distribution API: header names, route patterns and URL builders."""

from __future__ import annotations

import re
from typing import Final
from urllib.parse import quote

API_VERSION_HEADER: Final = "Docker-Distribution-API-Version"
API_VERSION: Final = "registry/2.0"
CONTENT_DIGEST: Final = "Docker-Content-Digest"
UPLOAD_UUID: Final = "Docker-Upload-UUID"
OCI_SUBJECT: Final = "OCI-Subject"
OCI_FILTERS_APPLIED: Final = "OCI-Filters-Applied"
OCI_CHUNK_MIN_LENGTH: Final = "OCI-Chunk-Min-Length"

# (route, fixed text every path of the route contains, pattern): the door tries a pattern only on a path that
# holds its fixed text.
ROUTES: Final = (
    ("base", "/v2", re.compile(r"/v2/?")),
    ("catalog", "/v2/_catalog", re.compile(r"/v2/_catalog")),
    ("tags", "/tags/list", re.compile(r"/v2/(?P<name>.+?)/tags/list")),
    ("manifest", "/manifests/", re.compile(r"/v2/(?P<name>.+?)/manifests/(?P<reference>[^/]+)")),
    ("upload", "/blobs/uploads/", re.compile(r"/v2/(?P<name>.+?)/blobs/uploads/(?P<upload_id>[^/]*)")),
    ("blob", "/blobs/", re.compile(r"/v2/(?P<name>.+?)/blobs/(?P<digest>[^/]+)")),
    ("referrers", "/referrers/", re.compile(r"/v2/(?P<name>.+?)/referrers/(?P<digest>[^/]+)")),
)


def upload_url(name: str, upload_id: str) -> str:
    return f"/v2/{name}/blobs/uploads/{upload_id}"


def blob_url(name: str, digest: str) -> str:
    return f"/v2/{name}/blobs/{digest}"


def manifest_url(name: str, reference: str) -> str:
    return f"/v2/{name}/manifests/{reference}"


def next_link(path: str, n: int, last: str) -> str:
    return f'<{path}?n={n}&last={quote(last, safe="")}>; rel="next"'
