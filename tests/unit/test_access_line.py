"""The access line is the JSON text json.dumps makes of the request's fields, whatever those strings hold."""

from __future__ import annotations

import json

import pytest

from ecrd.observability import RequestRecord, access_line


@pytest.mark.parametrize(
    ("path", "repository", "error"),
    [
        ("/v2/app/manifests/latest", "app", None),
        ('/v2/a"b\\c/tags/list', 'a"b\\c', "NAME_INVALID"),
        ("/v2/caf\u00e9/\u2603/blobs/x", "caf\u00e9", "BLOB_UNKNOWN"),
        ("/v2/\x00\n\t\x7f/\U0001f600", None, "UNKNOWN"),
    ],
)
def test_the_access_line_is_the_json_of_its_fields(path: str, repository: str | None, error: str | None) -> None:
    record = RequestRecord(principal="arn:aws:iam::000000000000:user/al\u00efce", action="ecr:BatchGetImage")
    record.repository = repository
    record.error_code = error
    counts = {"in": 12, "out": 3456, "status": 200}

    line = access_line("GET", path, 404, record, counts, 0.0012345, "127.0.0.1")

    expected = {
        "requestId": record.request_id,
        "method": "GET",
        "path": path,
        "status": 404,
        "principal": record.principal,
        "action": "ecr:BatchGetImage",
        "repository": repository,
        "error": error,
        "bytesIn": 12,
        "bytesOut": 3456,
        "durationMs": 1.23,
        "sourceIp": "127.0.0.1",
    }
    assert line == json.dumps(expected, separators=(",", ":"))
    assert json.loads(line) == expected


def test_request_ids_are_distinct_uuid_shaped_strings() -> None:
    ids = {RequestRecord().request_id for _ in range(10_000)}
    assert len(ids) == 10_000
    for request_id in list(ids)[:100]:
        parts = request_id.split("-")
        assert [len(part) for part in parts] == [8, 4, 4, 4, 12]
        assert all(c in "0123456789abcdef" for c in request_id.replace("-", ""))
