"""Continuous scanning after an advisory import: the stored inventories of every image under a CONTINUOUS_SCAN
rule re-matched against the new advisory data, through the job queue as a server works it (batches of 500, each
queuing the next). Prints images per second and total time for the first match and for the re-match after an
import that adds a tenth of the advisories.

    python bench/rematch.py                   # 10,000 images on SQLite
    python bench/rematch.py --database postgresql://127.0.0.1/postgres --images 10000

A benchmark, not a test: it asserts nothing about timings. The advisories are the real PyPI data of
tests/data/vulndata (nine tenths imported first, the last tenth as "the import"); the registry is seeded with
rows directly — images of 40 Python packages each, drawn from 400 names that have advisories, three versions
each, as images share most of their packages — since what is measured is the re-match, not the scans.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from sqlalchemy import insert

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from lifecycle import _fresh_postgresql  # bench/lifecycle.py: a database of its own for the run

from ecrd.app import Registry, build_registry
from ecrd.config import Settings
from ecrd.metadata.jobs_tables import image_inventories, image_scans
from ecrd.metadata.tables import manifests
from ecrd.scanner.enhanced import inventory_document
from ecrd.scanner.inventory import OperatingSystem, Package, PackageType

PYPI = Path(__file__).resolve().parents[1] / "tests" / "data" / "vulndata" / "pypi.osv.jsonl"
REPOSITORIES = 10
PACKAGES_PER_IMAGE = 40
NAMES = 400
VERSIONS = ("0.1", "1.0", "2.0")
SEED_BATCH = 1000
FIGURES = ("images", "first_seconds", "first_images_per_second", "seconds", "images_per_second", "changed")


def _split_data(workdir: Path) -> tuple[Path, Path, list[str]]:
    """Nine tenths of the PyPI records, the remaining tenth, and package names with advisories."""
    lines = [line for line in PYPI.read_text().splitlines() if line.strip()]
    first, later = workdir / "first.jsonl", workdir / "later.jsonl"
    first.write_text("\n".join(line for n, line in enumerate(lines) if n % 10) + "\n")
    later.write_text("\n".join(line for n, line in enumerate(lines) if not n % 10) + "\n")
    names: dict[str, None] = {}
    for line in lines:
        for affected in json.loads(line).get("affected") or ():
            names.setdefault(affected["package"]["name"], None)
    return first, later, list(names)[:NAMES]


def seed(registry: Registry, images: int, names: list[str]) -> None:
    """Repositories under the continuous rule and ``images`` scanned images with stored inventories, matched at
    advisory generation 0 (before any import)."""
    chooser = random.Random(42)
    os = OperatingSystem("debian", "11")
    repository_ids = [registry.registry.create_repository(f"cont-{n}").id for n in range(REPOSITORIES)]
    rows: dict[str, list[dict[str, Any]]] = {"manifests": [], "scans": [], "inventories": []}
    now = time.time()
    with registry.store.write() as conn:
        for n in range(images):
            repository_id = repository_ids[n % REPOSITORIES]
            digest = "sha256:" + hashlib.sha256(f"image {n}".encode()).hexdigest()
            packages = [
                Package(PackageType.PYPI, name, chooser.choice(VERSIONS), f"usr/lib/python3/site-packages/{name}")
                for name in chooser.sample(names, PACKAGES_PER_IMAGE)
            ]
            rows["manifests"].append(
                {
                    "repository_id": repository_id,
                    "digest": digest,
                    "media_type": "application/vnd.oci.image.manifest.v1+json",
                    "payload": b"-",
                    "size": 1,
                    "image_size": 1000,
                    "pushed_at": now,
                    "registry_attached": False,
                }
            )
            rows["scans"].append(
                {
                    "repository_id": repository_id,
                    "digest": digest,
                    "status": "COMPLETE",
                    "description": "The scan was completed successfully.",
                    "started_at": now,
                    "completed_at": now,
                    "severity_counts": "{}",
                    "findings": "[]",
                    "enhanced_findings": "[]",
                }
            )
            rows["inventories"].append(
                {
                    "repository_id": repository_id,
                    "digest": digest,
                    "inventory": json.dumps(inventory_document(os, packages), separators=(",", ":")),
                    "matched_generation": 0,
                }
            )
            if len(rows["manifests"]) >= SEED_BATCH:
                _flush(conn, rows)
        _flush(conn, rows)


def _flush(conn: Any, rows: dict[str, list[dict[str, Any]]]) -> None:
    for table, key in ((manifests, "manifests"), (image_scans, "scans"), (image_inventories, "inventories")):
        if rows[key]:
            conn.execute(insert(table), rows[key])
            rows[key].clear()


def _drain(registry: Registry) -> float:
    began = time.perf_counter()
    registry.jobs.drain(limit=100_000)
    return time.perf_counter() - began


def measure(settings: Settings, images: int, workdir: Path) -> dict[str, float]:
    first, later, names = _split_data(workdir)
    registry = build_registry(settings)
    try:
        seed(registry, images, names)
        registry.scanning.put_registry_configuration(
            "ENHANCED",
            [
                {
                    "scanFrequency": "CONTINUOUS_SCAN",
                    "repositoryFilters": [{"filter": "cont-*", "filterType": "WILDCARD"}],
                }
            ],
        )
        registry.jobs.drain(limit=100_000)  # the configuration's own re-match: before any advisory, nothing to find
        registry.vulndb.import_paths([first])
        first_seconds = _drain(registry)
        before = len(registry.audit.events(action="scanning:FindingsChanged", limit=1_000_000))
        registry.vulndb.import_paths([later])
        seconds = _drain(registry)
        changed = len(registry.audit.events(action="scanning:FindingsChanged", limit=1_000_000)) - before
        return {
            "images": images,
            "first_seconds": round(first_seconds, 2),
            "first_images_per_second": round(images / first_seconds),
            "seconds": round(seconds, 2),
            "images_per_second": round(images / seconds),
            "changed": changed,
        }
    finally:
        registry.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python bench/rematch.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=10_000, help="images under the continuous rule")
    parser.add_argument("--database", default="", help="a PostgreSQL URL (default: SQLite in a temporary directory)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="ecrd-rematch-bench-") as workdir:
        database_url = _fresh_postgresql(args.database) if args.database else ""
        settings = Settings(data_dir=Path(workdir) / "data", database_url=database_url)
        result = measure(settings, args.images, Path(workdir))
    print("| images | first match s | images/s | re-match after import s | images/s | changed |")
    print("|---|---|---|---|---|---|")
    print("| " + " | ".join(str(result[key]) for key in FIGURES) + " |")
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
