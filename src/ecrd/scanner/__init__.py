"""The image scanner: pure analysis of image layers against OSV advisories (inventory, matching, SBOM).

Nothing here stores or fetches anything: callers hand in layer openers and an ``AdvisoryLookup``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ecrd.scanner.advisories import AdvisoryIndex, AdvisoryLookup, OsvRecord
    from ecrd.scanner.inventory import OperatingSystem, Package, PackageType
    from ecrd.scanner.matching import Finding
    from ecrd.scanner.scan import ScanResult, build_sbom, finding_to_ecr, scan_layers
    from ecrd.scanner.severity import Severity

# Each name's module, imported on first use: importing one light module of the package (the advisory database
# reads ``advisories``) must not load the version, severity and package-URL libraries of the whole scanner.
_HOMES = {
    "AdvisoryIndex": "advisories",
    "AdvisoryLookup": "advisories",
    "OsvRecord": "advisories",
    "OperatingSystem": "inventory",
    "Package": "inventory",
    "PackageType": "inventory",
    "Finding": "matching",
    "ScanResult": "scan",
    "build_sbom": "scan",
    "finding_to_ecr": "scan",
    "scan_layers": "scan",
    "Severity": "severity",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{home}"), name)


__all__ = [
    "AdvisoryIndex",
    "AdvisoryLookup",
    "Finding",
    "OperatingSystem",
    "OsvRecord",
    "Package",
    "PackageType",
    "ScanResult",
    "Severity",
    "build_sbom",
    "finding_to_ecr",
    "scan_layers",
]
