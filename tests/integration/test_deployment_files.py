"""The deployment files in deploy/ are checked by the tools that will read them, offline: docker-compose, nginx,
the Kubernetes API schemas, systemd. Every ``ECRD_*`` variable they set is a setting ecrd knows, and the pieces
agree with each other (ports, bucket, secrets).

Building the container image takes minutes (debootstrap of a Debian base, then a docker build), so that test
runs only with ``ECRD_TEST_IMAGE_BUILD=1``: it builds the image with deploy/image/build.sh on a private docker
engine, runs it, and pushes and pulls an image through the container.
"""

from __future__ import annotations

import dataclasses
import os
import re
import shutil
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

from ecrd.config import ENV_PREFIX, Settings
from tests.support.clients import (
    TEST_ACCESS_KEY_ID,
    TEST_SECRET_ACCESS_KEY,
    Skopeo,
    ToolFailed,
    ecr_client,
    ecr_registry_credentials,
    run_tool,
)
from tests.support.dockerd import DockerClient, DockerDaemon, dockerd_binary
from tests.support.images import build_image, read_layout_blobs, write_oci_layout
from tests.support.nginx import nginx_binary
from tests.support.ports import LOOPBACK, free_port
from tests.support.registry_process import EcrdProcess, ServerProcess, http_answers
from tests.support.tls import make_ca_and_server_cert

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
COMPOSE_FILE = DEPLOY / "compose.yaml"
NGINX_CONF = DEPLOY / "nginx.conf"
KUBERNETES = DEPLOY / "kubernetes"
SYSTEMD_UNIT = DEPLOY / "systemd" / "ecrd.service"
DOCKERFILE = DEPLOY / "image" / "Dockerfile"
BUILD_SCRIPT = DEPLOY / "image" / "build.sh"

IMAGE_BUILD_ENV = "ECRD_TEST_IMAGE_BUILD"
# The oldest Kubernetes release the manifests promise to work on (its API schemas, shipped by kubernetes-validate).
KUBERNETES_VERSION = "1.30.0"
# systemd-analyze's exposure score, times ten: 2.0 and below is what it calls "OK".
SYSTEMD_EXPOSURE_THRESHOLD = 20
# Values the compose file requires from its .env (placeholders: only their presence matters to `config`).
COMPOSE_ENV = {
    "ECRD_PUBLIC_URL": "https://registry.example.com",
    "POSTGRES_PASSWORD": "postgres-password",
    "S3_ACCESS_KEY_ID": "s3-key",
    "S3_SECRET_ACCESS_KEY": "s3-secret",
    "ECRD_ROOT_ACCESS_KEY_ID": "AKIAROOT",
    "ECRD_ROOT_SECRET_ACCESS_KEY": "root-secret",
}
SETTING_VARIABLES = {ENV_PREFIX + f.name.upper() for f in dataclasses.fields(Settings)}


def require(binary: str | None, what: str) -> str:
    if binary is None:
        pytest.skip(f"{what} is not installed (scripts/test installs it)")
    return binary


def assert_settings(variables: Any, where: str) -> None:
    unknown = sorted(name for name in variables if name.startswith(ENV_PREFIX) and name not in SETTING_VARIABLES)
    assert not unknown, f"{where} sets variables that are no ecrd setting: {unknown}"


def dockerfile_env() -> dict[str, str]:
    """The ENV of the Dockerfile's final stage (``KEY=VALUE`` pairs, continued lines joined)."""
    text = DOCKERFILE.read_text().replace("\\\n", " ")
    final_stage = text.rsplit("\nFROM ", 1)[1]
    env: dict[str, str] = {}
    for line in final_stage.splitlines():
        if line.startswith("ENV "):
            env.update(pair.split("=", 1) for pair in line.split()[1:])
    return env


# -- docker compose -------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    """The compose file as docker-compose resolves it (interpolated, anchors merged), after its own validation."""
    binary = require(shutil.which("docker-compose"), "docker-compose (Debian package docker-compose)")
    env = {k: v for k, v in os.environ.items() if not k.startswith(ENV_PREFIX)} | COMPOSE_ENV
    result = run_tool([binary, "--file", str(COMPOSE_FILE), "config"], timeout=60, env=env)
    resolved: dict[str, Any] = yaml.safe_load(result.stdout)
    return resolved


def test_compose_file_runs_two_ecrd_nodes_on_postgresql_and_seaweedfs_behind_nginx(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert set(services) >= {"ecrd-1", "ecrd-2", "postgres", "seaweedfs", "nginx"}
    first, second = services["ecrd-1"], services["ecrd-2"]
    # The nodes are one registry: the same settings, the same master key.
    assert first["environment"] == second["environment"]
    assert first["secrets"] == second["secrets"] == [{"source": "master_key"}]
    env = first["environment"]
    assert_settings(env, "compose.yaml")
    assert env["ECRD_MASTER_KEY_FILE"] == "/run/secrets/master_key"
    assert env["ECRD_DATABASE_URL"].startswith("postgresql://ecrd:postgres-password@postgres:5432/")
    assert env["ECRD_S3_ENDPOINT_URL"].startswith("http://seaweedfs:")
    Settings.load(environ={k: v for k, v in env.items() if k != "ECRD_MASTER_KEY_FILE"})
    # The bucket the nodes store in is the one the bucket service makes.
    bucket = re.fullmatch(r"s3://([^/]+)(/.*)?", env["ECRD_STORAGE_URL"])
    assert bucket is not None and services["bucket"]["entrypoint"][-1] == bucket.group(1)
    assert first["depends_on"]["bucket"]["condition"] == "service_completed_successfully"
    assert first["depends_on"]["postgres"]["condition"] == "service_healthy"


def test_nginx_in_compose_balances_over_the_ecrd_nodes_on_the_port_the_image_listens_on(
    compose: dict[str, Any],
) -> None:
    upstreams = re.findall(r"^\s*server (\S+?):(\d+)", NGINX_CONF.read_text(), flags=re.MULTILINE)
    nodes = sorted(name for name in compose["services"] if name.startswith("ecrd-"))
    assert sorted(host for host, _ in upstreams) == nodes
    assert {port for _, port in upstreams} == {dockerfile_env()["ECRD_PORT"]}
    [mounted] = compose["services"]["nginx"]["volumes"]
    assert mounted.split(":")[:2] == [str(NGINX_CONF), "/etc/nginx/nginx.conf"]


@pytest.fixture
def nginx_in_front(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """deploy/nginx.conf with this machine's paths and ports, in front of a real ecrd: (https URL, CA file)."""
    binary = require(nginx_binary(), "nginx (Debian package nginx)")
    node = EcrdProcess(tmp_path / "node")
    node.start()
    tls = make_ca_and_server_cert(tmp_path / "tls")
    port = free_port()
    config = NGINX_CONF.read_text()
    for name in ("ecrd-1:5000", "ecrd-2:5000"):
        config = config.replace(name, node.host)
    replacements = {
        "/etc/nginx/tls/registry.crt": str(tls.server_cert),
        "/etc/nginx/tls/registry.key": str(tls.server_key),
        "/run/nginx.pid": str(tmp_path / "nginx.pid"),
        "listen 443 ssl": f"listen {LOOPBACK}:{port} ssl",
        "access_log /dev/stdout": f"access_log {tmp_path / 'access.log'}",
    }
    for old, new in replacements.items():
        assert old in config, f"deploy/nginx.conf no longer has {old!r}: update this test"
        config = config.replace(old, new)
    if os.geteuid() == 0:  # nginx run by root hands its workers to nobody, who cannot enter the test's directory
        config = f"user {os.environ.get('USER', 'root')};\n{config}"
    (tmp_path / "nginx.conf").write_text(config)
    argv = [binary, "-p", str(tmp_path), "-c", str(tmp_path / "nginx.conf"), "-e", str(tmp_path / "error.log")]
    run_tool([*argv, "-t"], timeout=30)
    server = ServerProcess("nginx", [*argv, "-g", "daemon off;"], tmp_path / "nginx.out")
    server.spawn()
    url = f"https://{LOOPBACK}:{port}"
    try:
        server.wait_until(http_answers(f"{url}/healthz", 200, verify=str(tls.ca_cert)), timeout=15, what="serving")
        yield url, tls.ca_cert
    finally:
        server.stop(grace=10.0)
        node.stop()


def test_nginx_conf_is_valid_and_passes_requests_to_a_node_over_tls(nginx_in_front: tuple[str, Path]) -> None:
    url, ca = nginx_in_front
    challenge = requests.get(f"{url}/v2/", verify=str(ca), timeout=10)
    assert challenge.status_code == 401
    assert challenge.headers["Docker-Distribution-Api-Version"] == "registry/2.0"


# -- Kubernetes -----------------------------------------------------------------------------------------------


def kubernetes_documents() -> list[tuple[str, dict[str, Any]]]:
    found = []
    for path in sorted([*KUBERNETES.glob("*.yaml"), *KUBERNETES.glob("examples/*.yaml")]):
        for document in yaml.safe_load_all(path.read_text()):
            if document:
                found.append((f"{path.relative_to(KUBERNETES)}:{document['kind']}", document))
    return found


@pytest.mark.parametrize(("where", "document"), kubernetes_documents(), ids=lambda v: v if isinstance(v, str) else "")
def test_kubernetes_manifest_is_valid_against_the_api_schema(where: str, document: dict[str, Any]) -> None:
    kubernetes_validate = pytest.importorskip("kubernetes_validate", reason="kubernetes-validate (PyPI) validates")
    kubernetes_validate.validate(document, KUBERNETES_VERSION, strict=True)


def test_the_schema_check_refuses_a_misspelt_field() -> None:
    kubernetes_validate = pytest.importorskip("kubernetes_validate", reason="kubernetes-validate (PyPI) validates")
    [(_, deployment)] = [(w, d) for w, d in kubernetes_documents() if d["kind"] == "Deployment"]
    deployment["spec"]["replica"] = 2
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBERNETES_VERSION, strict=True)


def test_kubernetes_pods_read_only_settings_and_secret_keys_that_exist() -> None:
    documents = {document["kind"]: document for _, document in kubernetes_documents()}
    [container] = documents["Deployment"]["spec"]["template"]["spec"]["containers"]
    assert_settings(documents["ConfigMap"]["data"], "configmap.yaml")
    assert_settings([variable["name"] for variable in container["env"]], "deployment.yaml")
    secret_keys = {ref["valueFrom"]["secretKeyRef"]["key"] for ref in container["env"]}
    assert secret_keys == set(documents["Secret"]["stringData"])
    assert container["ports"][0]["containerPort"] == int(dockerfile_env()["ECRD_PORT"])
    pod_security = documents["Deployment"]["spec"]["template"]["spec"]["securityContext"]
    assert pod_security["runAsNonRoot"] is True and pod_security["runAsUser"] == 10001


# -- systemd --------------------------------------------------------------------------------------------------


@pytest.fixture
def unit_here(tmp_path: Path) -> Path:
    """The unit with ExecStart pointing at this machine's ``ecrd`` (verify checks that the program exists)."""
    ecrd = require(shutil.which("ecrd") or shutil.which("ecrd", path=str(Path(sys.executable).parent)), "ecrd")
    unit = tmp_path / "ecrd.service"
    text = SYSTEMD_UNIT.read_text()
    assert "ExecStart=/opt/ecrd/bin/ecrd serve" in text
    unit.write_text(text.replace("/opt/ecrd/bin/ecrd", ecrd))
    return unit


def test_systemd_unit_verifies_and_is_hardened(unit_here: Path) -> None:
    analyze = require(shutil.which("systemd-analyze"), "systemd-analyze (Debian package systemd)")
    verified = run_tool([analyze, "verify", str(unit_here)], timeout=60, check=False)
    assert verified.returncode == 0 and not verified.stderr.strip(), verified.stderr
    security = run_tool(
        [analyze, "security", "--offline=yes", f"--threshold={SYSTEMD_EXPOSURE_THRESHOLD}", str(unit_here)],
        timeout=60,
        check=False,
    )
    assert security.returncode == 0, security.stdout[-3000:]


# -- the container image --------------------------------------------------------------------------------------


def test_dockerfile_runs_ecrd_unprivileged_on_all_addresses_with_a_volume_and_a_health_check() -> None:
    text = DOCKERFILE.read_text()
    env = dockerfile_env()
    assert_settings(env, "the Dockerfile")
    assert env["ECRD_HOST"] == "0.0.0.0" and env["ECRD_DATA_DIR"] == "/var/lib/ecrd"
    assert re.search(r"^USER ecrd$", text, flags=re.MULTILINE)
    assert 'VOLUME ["/var/lib/ecrd"]' in text
    assert re.search(r"^HEALTHCHECK .*CMD \[\"/usr/local/bin/ecrd-healthcheck\"\]$", text, flags=re.MULTILINE)
    # Nothing is pulled: every stage starts from the base built here.
    assert re.findall(r"^FROM (\S+)", text, flags=re.MULTILINE) == ["${BASE_IMAGE}", "${BASE_IMAGE}"]
    run_tool(["bash", "-n", str(BUILD_SCRIPT)], timeout=30)


class OverlayDockerDaemon(DockerDaemon):
    """The private engine with overlay2 storage where the kernel has it: vfs copies the whole image at each
    build step, which makes this build several times slower."""

    def argv(self) -> list[str]:
        argv = super().argv()
        if "overlay" in Path("/proc/filesystems").read_text():
            argv[argv.index("vfs")] = "overlay2"
        return argv


@pytest.fixture
def built_image(tmp_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[DockerClient, str]]:
    if os.environ.get(IMAGE_BUILD_ENV) != "1":
        pytest.skip(f"building the image takes minutes: set {IMAGE_BUILD_ENV}=1")
    if os.geteuid() != 0:
        pytest.skip("debootstrap needs root")
    require(shutil.which("debootstrap"), "debootstrap (Debian package debootstrap)")
    # A short path: the engine's unix sockets live under it, and their names are limited to 107 bytes.
    engine_dir = tmp_path_factory.mktemp("dockerd")
    daemon = OverlayDockerDaemon(engine_dir, binary=require(dockerd_binary(), "dockerd"))
    daemon.start()
    try:
        docker = daemon.client(tmp_path / "docker-config")
        tag = "ecrd:test"
        env = {**docker.env, "DOCKER_HOST": daemon.host, "PYTHON": sys.executable}
        run_tool([str(BUILD_SCRIPT), tag], timeout=1500, env=env)
        yield docker, tag
    finally:
        daemon.stop()
        shutil.rmtree(engine_dir, ignore_errors=True)


def wait_for_health(docker: DockerClient, container: str, *, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    status = ""
    while time.monotonic() < deadline:
        status = docker("inspect", "--format", "{{.State.Health.Status}}", container).stdout.strip()
        if status in ("healthy", "unhealthy"):
            return status
        time.sleep(1)
    return status


@pytest.mark.timeout(1800)
def test_the_image_builds_here_and_its_container_serves_a_push_and_a_pull(
    built_image: tuple[DockerClient, str], tmp_path: Path
) -> None:
    # given the image, run as it would be, but on this machine's loopback address only
    docker, tag = built_image
    port = free_port()
    docker(
        "run", "--detach", "--name", "ecrd-under-test", "--network", "host",
        "--env", f"ECRD_HOST={LOOPBACK}", "--env", f"ECRD_PORT={port}",
        "--env", f"ECRD_PUBLIC_URL=http://{LOOPBACK}:{port}",
        "--env", f"ECRD_ROOT_ACCESS_KEY_ID={TEST_ACCESS_KEY_ID}",
        "--env", f"ECRD_ROOT_SECRET_ACCESS_KEY={TEST_SECRET_ACCESS_KEY}",
        tag,
    )  # fmt: skip
    try:
        url = f"http://{LOOPBACK}:{port}"
        # then it answers its health check, runs unprivileged, and serves a push and a pull
        assert wait_for_health(docker, "ecrd-under-test", timeout=90) == "healthy"
        assert docker("exec", "ecrd-under-test", "id", "-u").stdout.strip() == "10001"
        assert requests.get(f"{url}/healthz", timeout=5).json() == {"status": "ok"}
        ecr = ecr_client(url)
        ecr.create_repository(repositoryName="deploy/smoke")
        skopeo = Skopeo(tmp_path / "skopeo", ecr_registry_credentials(ecr))
        image = build_image([64 * 1024, 1024], seed=14)
        write_oci_layout(tmp_path / "source", image, tag="v1")
        remote = f"docker://{LOOPBACK}:{port}/deploy/smoke:v1"
        skopeo.copy(f"oci:{tmp_path / 'source'}:v1", remote)
        skopeo.copy(remote, f"oci:{tmp_path / 'returned'}:v1")
        assert read_layout_blobs(tmp_path / "returned") == image.blobs()
    except (AssertionError, ToolFailed):
        print(docker("logs", "ecrd-under-test", check=False).stdout[-4000:])
        raise
    finally:
        docker("rm", "--force", "ecrd-under-test", check=False)
