"""What a replica costs when the destination is another registry of the same deployment (another region here):
the bytes the blob store and the metadata database grow by, and the time, set against the push of the same images
in the same run.

    python bench/replication_cost.py                          # 20 images of 4 layers of 4 MiB
    python bench/replication_cost.py --images 50 --layers 2 --layer-mib 16 --json OUT

An in-process registry on SQLite with its default at-rest encryption: each image is pushed through /v2/ (as
docker does), then the replication configuration sends everything to eu-west-1 and a backfill replicates it,
the jobs run to the end in this process. A benchmark, not a test: it asserts nothing about sizes or timings.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

SOURCE = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(SOURCE / "src"), str(SOURCE)]

from starlette.testclient import TestClient  # noqa: E402

from ecrd.app import Registry, asgi_app, build_registry  # noqa: E402
from ecrd.config import Settings  # noqa: E402
from ecrd.domain.registries import RegistryId  # noqa: E402
from ecrd.domain.replication import Destination, stored_configuration  # noqa: E402

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MiB = 1024 * 1024
ROOT_KEY = ("AKIABENCHREPLICATION", "bench-replication-secret-0000000000000000")


def directory_bytes(path: Path) -> int:
    return sum(entry.stat().st_size for entry in path.rglob("*") if entry.is_file())


def push_images(client: TestClient, count: int, layers: int, layer_size: int) -> None:
    for image in range(count):
        descriptors = []
        for _layer in range(layers):
            data = os.urandom(layer_size)
            digest = "sha256:" + hashlib.sha256(data).hexdigest()
            client.post(f"/v2/app/blobs/uploads/?digest={digest}", content=data).raise_for_status()
            descriptors.append({"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": digest,
                                "size": len(data)})  # fmt: skip
        config = json.dumps({"architecture": "amd64", "os": "linux", "image": image}).encode()
        config_digest = "sha256:" + hashlib.sha256(config).hexdigest()
        client.post(f"/v2/app/blobs/uploads/?digest={config_digest}", content=config).raise_for_status()
        manifest = json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": OCI_MANIFEST,
                "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest,
                           "size": len(config)},
                "layers": descriptors,
            }
        ).encode()  # fmt: skip
        client.put(
            f"/v2/app/manifests/{image}", content=manifest, headers={"Content-Type": OCI_MANIFEST}
        ).raise_for_status()


def footprint(registry: Registry, settings: Settings) -> dict[str, int]:
    """Bytes of the blob store and of the metadata database (its write-ahead log checkpointed into it first)."""
    with registry.store.engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    return {
        "blob_bytes": directory_bytes(settings.data_dir / "blobs"),
        "database_bytes": (settings.data_dir / "metadata.db").stat().st_size,
    }


def run(images: int, layers: int, layer_size: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as scratch:
        settings = Settings(data_dir=Path(scratch) / "data", public_url="http://127.0.0.1:5000")
        registry = build_registry(settings)
        try:
            registry.identity.authentication.bootstrap_root(*ROOT_KEY)
            caller = registry.identity.authentication.current_caller(ROOT_KEY[0])
            assert caller is not None
            token = registry.tokens.issue(caller).authorization_token
            registry.registry.create_repository("app")
            with TestClient(asgi_app(registry), base_url="http://127.0.0.1:5000",
                            headers={"Authorization": f"Basic {token}"}) as client:  # fmt: skip
                before = footprint(registry, settings)
                started = time.perf_counter()
                push_images(client, images, layers, layer_size)
                push_seconds = time.perf_counter() - started
            pushed = footprint(registry, settings)
            destination = Destination("eu-west-1", settings.account_id)
            registry.replication.put_configuration(
                stored_configuration(json.dumps({"rules": [{"destinations": [destination.json()]}]}))
            )
            started = time.perf_counter()
            registry.replication.start_backfill(destination)
            while registry.jobs.run_once():
                pass
            replicate_seconds = time.perf_counter() - started
            replicated = footprint(registry, settings)
            copies = registry.registries.get(RegistryId(settings.account_id, "eu-west-1"))
            stored = len(copies.registry.list_repositories(after=None, limit=10))
        finally:
            registry.close()
    pushed_blob = pushed["blob_bytes"] - before["blob_bytes"]
    return {
        "images": images,
        "layers": layers,
        "layer_bytes": layer_size,
        "destination_repositories": stored,
        "push_seconds": round(push_seconds, 3),
        "replicate_seconds": round(replicate_seconds, 3),
        "pushed_blob_bytes": pushed_blob,
        "replica_blob_bytes": replicated["blob_bytes"] - pushed["blob_bytes"],
        "pushed_database_bytes": pushed["database_bytes"] - before["database_bytes"],
        "replica_database_bytes": replicated["database_bytes"] - pushed["database_bytes"],
        "replica_time_ratio": round(replicate_seconds / push_seconds, 3),
        "replica_bytes_ratio": round(
            (replicated["blob_bytes"] + replicated["database_bytes"] - pushed["blob_bytes"] - pushed["database_bytes"])
            / max(1, pushed_blob),
            5,
        ),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=20)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--layer-mib", type=float, default=4.0)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    result = run(args.images, args.layers, int(args.layer_mib * MiB))
    for key, value in result.items():
        print(f"{key:26} {value}")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
