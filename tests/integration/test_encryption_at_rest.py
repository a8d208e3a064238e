"""Nothing readable lies on disk: blobs, uploads in progress and manifests are all sealed."""

from __future__ import annotations

import json
from pathlib import Path

from starlette.testclient import TestClient

from ecrd.app import Registry
from tests.support.oci import OCI_MANIFEST, Blob, config_blob, image_manifest, push_blob, push_manifest

MARKER = b"ecrd-plaintext-marker-4f1c"


def _files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file()]


def test_pushed_blobs_and_manifests_are_not_readable_on_disk(client: TestClient, registry: Registry) -> None:
    registry.registry.create_repository("secret")
    layer = Blob(MARKER * 50_000)
    config = config_blob({"marker": MARKER.decode()})
    for blob in (layer, config):
        push_blob(client, "secret", blob)
    manifest = image_manifest(config, [layer], annotations={"marker": MARKER.decode()})
    push_manifest(client, "secret", "v1", manifest)
    upload = client.post("/v2/secret/blobs/uploads/").headers["Location"]
    assert client.patch(upload, content=MARKER * 10).status_code == 202
    # Checkpoint SQLite's WAL into the database file so the check sees everything stored.
    if registry.store.is_sqlite:
        with registry.store.engine.connect() as conn:
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    for path in _files(registry.settings.data_dir):
        assert MARKER not in path.read_bytes(), f"{path} holds plaintext"
    assert client.get(f"/v2/secret/blobs/{layer.digest}").content == layer.data
    assert client.get("/v2/secret/manifests/v1").content == manifest
    ranged = client.get(f"/v2/secret/blobs/{layer.digest}", headers={"Range": "bytes=1048570-1048600"})
    assert ranged.content == layer.data[1048570:1048601]


def test_a_layer_shared_by_repositories_is_stored_once(client: TestClient, registry: Registry) -> None:
    for name in ("one", "two"):
        registry.registry.create_repository(name)
    layer = Blob(b"shared-layer" * 1000)
    push_blob(client, "one", layer)
    push_blob(client, "two", layer)
    stored = [p for p in _files(registry.settings.data_dir / "blobs") if p.name == layer.digest.split(":")[1]]
    assert len(stored) == 1
    for name in ("one", "two"):
        assert client.get(f"/v2/{name}/blobs/{layer.digest}").content == layer.data
    assert client.post(f"/v2/two/blobs/uploads/?mount={layer.digest}&from=one").status_code == 201


def test_manifest_payload_is_sealed_in_the_database(client: TestClient, registry: Registry) -> None:
    registry.registry.create_repository("app")
    config = config_blob()
    push_blob(client, "app", config)
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": config.descriptor(),
            "layers": [],
            "annotations": {"m": MARKER.decode()},
        }
    ).encode()
    push_manifest(client, "app", "v1", manifest)
    from ecrd.metadata.tables import manifests

    with registry.store.read() as conn:
        payloads = [row.payload for row in conn.execute(manifests.select())]
    assert payloads and all(MARKER not in bytes(p) for p in payloads)
