"""The image scanner: pure analysis of image layers against OSV advisories (inventory, matching, SBOM).

Nothing here stores or fetches anything: callers hand in layer openers and an ``AdvisoryLookup``.
"""

from ecrd.scanner.advisories import AdvisoryIndex, AdvisoryLookup, OsvRecord
from ecrd.scanner.inventory import OperatingSystem, Package, PackageType
from ecrd.scanner.matching import Finding
from ecrd.scanner.scan import ScanResult, build_sbom, finding_to_ecr, scan_layers
from ecrd.scanner.severity import Severity

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
