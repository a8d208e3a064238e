"""Settings: one frozen object; each field is a --flag, an ECRD_* variable and a TOML key, mechanically.

Precedence: defaults < TOML file (``--config``) < ``ECRD_*`` environment < command-line flags. Values are
validated once; a bad one fails fast naming the key, where it came from and the value.
"""

from __future__ import annotations

import base64
import dataclasses
import difflib
import json
import math
import os
import re
import tomllib
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ecrd.domain.registries import PARTITION_REGIONS, RegistryId, registry_host

ENV_PREFIX = "ECRD_"
# Variables one ecrd process sets for the processes it starts (never a user's): not settings.
INTERNAL_ENV_PREFIX = "ECRD__"
# The resolved settings handed from the `serve` command to its server worker processes.
SERIALIZED_ENV = INTERNAL_ENV_PREFIX + "SETTINGS_JSON"
# ECRD_* variables that are read, but are not settings: every other ECRD_* variable that is not a setting (nor
# internal) is a misspelling, refused at start (a misspelt ECRD_MASTER_KEY would otherwise start a registry
# with a freshly generated key).
NOT_SETTINGS = frozenset(
    {
        "ECRD_TEST_POSTGRES",  # the test suite: the PostgreSQL server tests make their databases on
        "ECRD_E2E_TARGET",  # the test suite: which registry the end-to-end tests drive (ecrd or distribution)
        "ECRD_FUZZ_SCALE",  # the test suite: how many examples the property and fuzz tests try
        "ECRD_RELIABILITY_LONG",  # the test suite: run the crash and race tests longer
        "ECRD_RELIABILITY_SEED",  # the test suite: replay one crash-consistency run
        "ECRD_LOAD_SECONDS",  # the test suite: how long the load test runs
        "ECRD_TEST_IMAGE_BUILD",  # the test suite: build and run the container image of deploy/image (minutes)
    }
)
# The embedded metadata database's file in the data directory, when no --database-url is given.
EMBEDDED_DATABASE_FILE = "metadata.db"
# Hosts that mean "this machine only": clients on it reach the registry as localhost, which docker trusts over
# plain HTTP as it does 127.0.0.0/8, and which the README's `docker login localhost:PORT` names.
LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})
# Listening on every address: the registry cannot know which name its clients use (set --public-url); on this
# machine, localhost reaches it.
WILDCARD_HOSTS = frozenset({"0.0.0.0", "::", ""})  # noqa: S104 - names to recognise, not to bind


# The default number of workers stops here: each worker is a process of its own (~60 MB at rest, decision
# 0016) with its own pool of database connections, and on one SQLite file more processes add contention,
# not throughput. A larger machine runs more with --workers.
DEFAULT_WORKERS_CAP = 8
# Where the kernel shows this process's control group (cgroup v2 at the root; v1 under cpu/).
CGROUP_ROOT = Path("/sys/fs/cgroup")


def usable_cpus(*, affinity: Collection[int] | None = None, cgroup_root: Path = CGROUP_ROOT) -> int:
    """The CPUs this process may run on (its affinity mask), fewer when its cgroup's CPU quota allows less time
    (a container's ``--cpus``): what a server sizes its workers by."""
    if affinity is None:
        affinity = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else range(os.cpu_count() or 1)
    cpus = max(1, len(affinity))
    quota = _cgroup_cpu_quota(cgroup_root)
    if quota is not None:
        cpus = min(cpus, max(1, math.ceil(quota)))
    return cpus


def _cgroup_cpu_quota(root: Path) -> float | None:
    """The CPU time the cgroup allows per unit of wall time (2.0: two CPUs' worth), or None without a quota.
    Only the process's own cgroup at the mount point is read: in a container that is the container's."""
    try:
        fields = (root / "cpu.max").read_text().split()  # cgroup v2: "QUOTA PERIOD" or "max PERIOD"
    except OSError:
        try:  # cgroup v1
            fields = [(root / "cpu" / name).read_text().strip() for name in ("cpu.cfs_quota_us", "cpu.cfs_period_us")]
        except OSError:
            return None
    try:
        quota, period = int(fields[0]), int(fields[1])
    except (ValueError, IndexError):
        return None  # "max" (no quota), or a format this does not know
    return quota / period if quota > 0 and period > 0 else None


# The directory prometheus_client keeps each process's metric values in (its multiprocess mode): set by the
# serve command for its workers, read by the library itself when it loads.
METRICS_DIR_ENV = "PROMETHEUS_MULTIPROC_DIR"


def multiprocess_metrics_dir(environ: Mapping[str, str] = os.environ) -> Path | None:
    """The directory the metrics of this process's siblings are summed from, when several serve one port."""
    value = environ.get(METRICS_DIR_ENV)
    return Path(value) if value else None


def user_cache_dir(environ: Mapping[str, str] = os.environ) -> Path:
    """The user's cache directory (XDG Base Directory Specification): ``$XDG_CACHE_HOME`` or ``~/.cache``."""
    value = environ.get("XDG_CACHE_HOME", "")
    # The specification: a relative path in the variable is invalid and is ignored.
    return Path(value) if value and Path(value).is_absolute() else Path.home() / ".cache"


class SettingsError(ValueError):
    """A setting that cannot be used, with the key, its source and the value."""


class Secret(str):
    """A string that prints as *** so it never lands in logs or reprs."""

    def __repr__(self) -> str:
        return "'***'"

    def __str__(self) -> str:
        return "***"

    def reveal(self) -> str:
        return str.__str__(self)


def _setting(default: Any, help: str, *, secret: bool = False) -> Any:
    return field(default=default, metadata={"help": help, "secret": secret})


@dataclass(frozen=True)
class Settings:
    host: str = _setting("127.0.0.1", "address to listen on")
    port: int = _setting(5000, "port to listen on")
    data_dir: Path = _setting(Path("./ecrd-data"), "directory of the embedded metadata database and the blobs")
    database_url: str = _setting("", "SQLAlchemy URL of the metadata store; default SQLite in --data-dir")
    account_id: str = _setting(
        "000000000000",
        "the 12-digit id of the default account: the one made at the first start, whose root key the "
        "root-credentials file holds, and that a plain host:port serves",
    )
    region: str = _setting("us-east-1", "the default region: the one a plain host:port serves")
    regions: str = _setting(
        "",
        "comma-separated regions to serve (requests signed for others are refused); default every region of "
        "the AWS partition",
    )
    registry_domain: str = _setting(
        "",
        "domain of ECR's registry host names: the data plane serves ACCOUNT.dkr.ecr.REGION.DOMAIN (e.g. "
        "amazonaws.com, with the names mapped to ecrd by DNS or /etc/hosts), and repository URIs use them",
    )
    public_url: str = _setting(
        "",
        "URL clients are told the registry is at; default http://HOST:PORT, with localhost for a loopback "
        "or wildcard HOST",
    )
    create_on_push: bool = _setting(
        False,
        "at start, make a ROOT repository creation template apply to CREATE_ON_PUSH (created with "
        "CreateRepository's defaults, or an existing ROOT template gains it), so that a push to a missing "
        "repository creates it; the pusher also needs ecr:CreateRepository. Turning it off later leaves the "
        "template: delete it with DeleteRepositoryCreationTemplate",
    )
    workers: int = _setting(
        0,
        "server worker processes; 0: one per CPU the server may use (its CPU affinity within a cgroup CPU "
        f"quota), at most {DEFAULT_WORKERS_CAP}",
    )
    log_level: str = _setting("info", "log level: debug, info, warning, error")
    upload_expiry_hours: int = _setting(24, "hours after which an idle upload session expires")
    root_access_key_id: str = _setting("", "access key id of the account root, used on first start")
    root_secret_access_key: Secret = _setting(Secret(""), "secret key of the account root", secret=True)
    tls_cert: str = _setting("", "PEM certificate (chain) to serve HTTPS with; needs --tls-key")
    tls_key: str = _setting("", "PEM private key of --tls-cert")
    master_key: Secret = _setting(
        Secret(""),
        "the master key (base64 of 32 bytes) that wraps every key at rest; default: master-key-file",
        secret=True,
    )
    master_key_file: str = _setting(
        "", "file holding the master key (base64); default DATA_DIR/keys/master.key, created on first start"
    )
    storage_url: str = _setting(
        "", "where blobs are stored: empty for DATA_DIR, or s3://BUCKET[/PREFIX] for an S3-compatible object store"
    )
    s3_endpoint_url: str = _setting("", "URL of the S3 API for --storage-url s3://…; default AWS S3 of --s3-region")
    s3_region: str = _setting("", "region of the S3 bucket; default --region")
    s3_path_style: bool = _setting(
        True, "address the bucket in the path (SeaweedFS, MinIO, Ceph) rather than as a virtual host"
    )
    s3_access_key_id: str = _setting("", "access key id for the object store; default the AWS credential chain")
    s3_secret_access_key: Secret = _setting(Secret(""), "secret key for the object store", secret=True)
    archive_dir: Path = _setting(Path(""), "directory that blobs of archived images move to; default DATA_DIR/archive")
    lifecycle_interval_minutes: int = _setting(60, "minutes between runs of the lifecycle policies (0: never)")
    gc_interval_minutes: int = _setting(60, "minutes between online garbage collections (0: never)")
    gc_grace_minutes: int = _setting(60, "minutes an unreferenced blob is kept before garbage collection may delete it")
    upstream_ca_file: str = _setting("", "PEM file of CA certificates to trust for pull-through cache upstreams")
    insecure_upstream: str = _setting(
        "", "comma-separated upstream hosts (host[:port]) the pull-through cache may reach over plain HTTP"
    )
    upstream_check_minutes: int = _setting(
        1440, "minutes between two checks of a cached tag against its upstream (ECR: 24 hours)"
    )
    webhook_max_attempts: int = _setting(
        8, "attempts at delivering an event to a webhook before the delivery is dead-lettered (ecrd events failed)"
    )
    webhook_timeout_seconds: int = _setting(10, "seconds a webhook has to answer a delivery before it counts as failed")
    event_retention_hours: int = _setting(
        168, "hours registry events are kept once every delivery of theirs is made or dead-lettered"
    )
    metrics_public: bool = _setting(
        False,
        "serve the Prometheus metrics at /metrics to anyone; by default a caller needs a registry token (Basic "
        "AWS:<token>) of a principal allowed ecrd:GetMetrics",
    )
    console: bool = _setting(
        True,
        "serve the web console at /console (sign-in with an IAM user's console password or an access key pair); "
        "--no-console turns it off",
    )
    console_session_minutes: int = _setting(
        60, "minutes a console sign-in lasts before the console asks to sign in again (5 to 720)"
    )

    # -- derived values --------------------------------------------------------------------------------

    @property
    def resolved_public_url(self) -> str:
        if self.public_url:
            return self.public_url.rstrip("/")
        host = self.host
        if host in LOOPBACK_HOSTS or host in WILDCARD_HOSTS:
            host = "localhost"
        elif ":" in host:
            host = f"[{host}]"  # an IPv6 literal in a URL (RFC 3986, section 3.2.2)
        scheme = "https" if self.tls_cert else "http"
        return f"{scheme}://{host}:{self.port}"

    @property
    def registry_host(self) -> str:
        """host[:port] of the public URL: what repository URIs and docker tags start with."""
        return self.resolved_public_url.split("://", 1)[-1].split("/", 1)[0]

    @property
    def served_regions(self) -> frozenset[str]:
        """The regions requests may be signed for: --regions, or the partition's; the default one always."""
        listed = [region.strip() for region in self.regions.split(",") if region.strip()]
        return frozenset(listed or PARTITION_REGIONS) | {self.region}

    def registry_host_for(self, registry: RegistryId) -> str:
        """host[:port] of a registry's data plane: its ECR host name under --registry-domain (with the public
        URL's port, if any), else the public URL's host, which serves the default registry."""
        if not self.registry_domain:
            return self.registry_host
        port = self.registry_host.rsplit(":", 1)[1] if self.registry_host.count(":") == 1 else ""
        default_port = "443" if self.resolved_public_url.startswith("https://") else "80"
        suffix = f":{port}" if port and port != default_port else ""
        return registry_host(registry, self.registry_domain) + suffix

    @property
    def default_registry(self) -> RegistryId:
        return RegistryId(self.account_id, self.region)

    @property
    def insecure_upstream_hosts(self) -> frozenset[str]:
        return frozenset(host.strip().lower() for host in self.insecure_upstream.split(",") if host.strip())

    @property
    def resolved_archive_dir(self) -> Path:
        return self.archive_dir if str(self.archive_dir) not in ("", ".") else self.data_dir / "archive"

    @property
    def metrics_dir(self) -> Path:
        """Where the server's worker processes keep their metric values, summed at each scrape; emptied by
        every start of the serve command."""
        return self.data_dir / "metrics"

    @property
    def resolved_workers(self) -> int:
        """The worker processes to run: as set, or one per CPU the server may use, up to the cap."""
        return self.workers or min(usable_cpus(), DEFAULT_WORKERS_CAP)

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{(self.data_dir / EMBEDDED_DATABASE_FILE).resolve()}"

    # -- construction ----------------------------------------------------------------------------------

    @classmethod
    def load(
        cls,
        *,
        flags: Mapping[str, Any] | None = None,
        environ: Mapping[str, str] | None = None,
        config_file: Path | None = None,
    ) -> Settings:
        environ = os.environ if environ is None else environ
        values: dict[str, tuple[Any, str]] = {}
        if config_file is not None:
            for key, value in _read_toml(config_file).items():
                values[key] = (value, f"{config_file}")
        _refuse_unknown_variables(environ)
        for f in dataclasses.fields(cls):
            env_name = ENV_PREFIX + f.name.upper()
            if env_name in environ:
                values[f.name] = (environ[env_name], f"environment variable {env_name}")
        for key, value in (flags or {}).items():
            if value is not None:
                values[key] = (value, f"--{key.replace('_', '-')}")
        return cls._build(values)

    @classmethod
    def _build(cls, values: Mapping[str, tuple[Any, str]]) -> Settings:
        known = {f.name: f for f in dataclasses.fields(cls)}
        kwargs: dict[str, Any] = {}
        for key, (raw, source) in values.items():
            if key not in known:
                raise SettingsError(f"unknown setting {key!r} in {source}")
            kwargs[key] = _coerce(known[key], raw, source)
        settings = cls(**kwargs)
        settings._validate(values)
        return settings

    def _validate(self, values: Mapping[str, tuple[Any, str]]) -> None:
        def fail(key: str, why: str) -> None:
            source = values.get(key, (None, "the default"))[1]
            raise SettingsError(f"setting {key} = {getattr(self, key)!r} from {source}: {why}")

        if not re.fullmatch(r"[0-9]{12}", self.account_id):
            fail("account_id", "must be 12 digits")
        if not re.fullmatch(r"[a-z]{2}(-[a-z]+)+-[0-9]+", self.region):
            fail("region", "must look like an AWS region, e.g. us-east-1")
        unknown = self.served_regions - set(PARTITION_REGIONS) - {self.region}
        if unknown:
            fail("regions", f"not regions of the AWS partition: {', '.join(sorted(unknown))}")
        if self.registry_domain and not re.fullmatch(
            r"[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)+", self.registry_domain
        ):
            fail("registry_domain", "must be a DNS domain, e.g. amazonaws.com")
        if not 0 < self.port < 65536:
            fail("port", "must be between 1 and 65535")
        if self.workers < 0:
            fail("workers", "must be at least 1, or 0 for one per usable CPU")
        if self.public_url and not re.fullmatch(r"https?://[^/\s]+/?", self.public_url):
            fail("public_url", "must be http(s)://host[:port]")
        if self.log_level not in ("debug", "info", "warning", "error"):
            fail("log_level", "must be debug, info, warning or error")
        if self.upload_expiry_hours < 1:
            fail("upload_expiry_hours", "must be at least 1")
        if bool(self.tls_cert) != bool(self.tls_key):
            fail("tls_cert", "--tls-cert and --tls-key go together")
        for key in ("tls_cert", "tls_key"):
            if getattr(self, key) and not Path(getattr(self, key)).is_file():
                fail(key, "no such file")
        if self.master_key.reveal():
            try:
                if len(base64.b64decode(self.master_key.reveal(), validate=True)) != 32:
                    raise ValueError
            except ValueError:
                fail("master_key", "must be base64 of exactly 32 bytes (e.g. openssl rand -base64 32)")
        if self.storage_url and not re.fullmatch(r"s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](/[^\s]*)?", self.storage_url):
            fail("storage_url", "must be empty (blobs in --data-dir) or s3://BUCKET[/PREFIX]")
        if self.s3_endpoint_url and not re.fullmatch(r"https?://[^/\s]+/?", self.s3_endpoint_url):
            fail("s3_endpoint_url", "must be http(s)://host[:port]")
        if bool(self.s3_access_key_id) != bool(self.s3_secret_access_key.reveal()):
            fail("s3_access_key_id", "the object store's access key id and secret must be set together")
        for key in (
            "lifecycle_interval_minutes",
            "gc_interval_minutes",
            "gc_grace_minutes",
            "upstream_check_minutes",
            "event_retention_hours",
        ):
            if getattr(self, key) < 0:
                fail(key, "must not be negative")
        for key in ("webhook_max_attempts", "webhook_timeout_seconds"):
            if getattr(self, key) < 1:
                fail(key, "must be at least 1")
        if self.upstream_ca_file and not Path(self.upstream_ca_file).is_file():
            fail("upstream_ca_file", "is not a file")
        if bool(self.root_access_key_id) != bool(self.root_secret_access_key.reveal()):
            fail("root_access_key_id", "root access key id and secret must be set together")
        if not 5 <= self.console_session_minutes <= 720:
            fail("console_session_minutes", "must be between 5 and 720")

    # -- handing settings to worker processes ------------------------------------------------------------

    def serialize(self) -> str:
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, Secret):
                value = value.reveal()
            elif isinstance(value, Path):
                value = str(value)
            out[f.name] = value
        return json.dumps(out)

    @classmethod
    def from_serialized_environment(cls) -> Settings:
        raw = os.environ.get(SERIALIZED_ENV)
        if raw is None:
            return cls.load()
        return cls._build({k: (v, "the serve command") for k, v in json.loads(raw).items()})


def _setting_names() -> list[str]:
    return [f.name for f in dataclasses.fields(Settings)]


def _did_you_mean(key: str, *, spelt: Callable[[str], str]) -> str:
    """The setting closest to a misspelt key, spelt as its source spells keys, as the end of a message."""
    # Compared on the setting's own name, so the ECRD_ prefix every variable shares does not make any two alike.
    wanted = key.removeprefix(ENV_PREFIX).lower().replace("-", "_")
    close = difflib.get_close_matches(wanted, _setting_names(), n=1)
    return f"; did you mean {spelt(close[0])}?" if close else ""


def _dashed_key(setting: str) -> str:
    return repr(setting.replace("_", "-"))


def _underscored_key(setting: str) -> str:
    return repr(setting)


def _refuse_unknown_variables(environ: Mapping[str, str]) -> None:
    """An ECRD_* variable that is no setting is a typo; its value is not shown, since it may be a secret."""
    known = {ENV_PREFIX + name.upper() for name in _setting_names()}
    for name in sorted(environ):
        if (
            name.startswith(ENV_PREFIX)
            and name not in known
            and name not in NOT_SETTINGS
            and not name.startswith(INTERNAL_ENV_PREFIX)
        ):
            hint = _did_you_mean(name, spelt=lambda setting: ENV_PREFIX + setting.upper())
            raise SettingsError(f"unknown setting {name} in the environment{hint}")


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            data = tomllib.load(fh)
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise SettingsError(f"cannot read config file {path}: {exc}") from None
    # Accept top-level keys or an [ecrd] table, not both: TOML puts top-level keys above every table, so a
    # key there beside an [ecrd] table is easy to misplace, and it would be dropped.
    table = data
    if isinstance(data.get("ecrd"), dict):
        table = data["ecrd"]
        for key in data:
            if key != "ecrd":
                raise SettingsError(
                    f"setting {key!r} in {path} is outside the [ecrd] table; put every setting "
                    "in [ecrd], or all of them at the top level"
                )
    names = _setting_names()
    settings: dict[str, Any] = {}
    for key, value in table.items():
        # Dashes and underscores alike, as in the flags; a suggestion is spelt the way the file spells keys.
        name = str(key).replace("-", "_")
        if name not in names:
            spelt = _dashed_key if "-" in str(key) else _underscored_key
            hint = _did_you_mean(str(key), spelt=spelt)
            raise SettingsError(f"unknown setting {key!r} in {path}{hint}")
        settings[name] = value
    return settings


def _coerce(f: dataclasses.Field[Any], raw: Any, source: str) -> Any:
    kind: type = type(f.default)
    try:
        if kind is bool:
            if isinstance(raw, bool):
                return raw
            text = str(raw).strip().lower()
            if text in ("1", "true", "yes", "on"):
                return True
            if text in ("0", "false", "no", "off", ""):
                return False
            raise ValueError("expected true or false")
        if kind is int:
            if isinstance(raw, bool):
                raise ValueError("expected an integer")
            return int(raw)
        if issubclass(kind, Path):
            return Path(str(raw))
        if kind is Secret:
            return Secret(raw.reveal() if isinstance(raw, Secret) else str(raw))
        if not isinstance(raw, str):
            raise ValueError("expected a string")
        return raw
    except ValueError as exc:
        shown = "***" if f.metadata.get("secret") else repr(raw)
        raise SettingsError(f"setting {f.name} = {shown} from {source}: {exc}") from None


def fields_for_cli() -> list[tuple[str, type, str, Any]]:
    """(name, type, help, default) of each setting, for building the command line mechanically."""
    return [(f.name, type(f.default), str(f.metadata["help"]), f.default) for f in dataclasses.fields(Settings)]


def configuration_reference() -> str:
    """docs/configuration.md, generated from the Settings fields (a test keeps the file current)."""
    lines = [
        "# Configuration",
        "",
        "Generated by `ecrd config-reference` from `ecrd.config.Settings`; do not edit by hand.",
        "",
        "Every setting can be given as a command-line flag, an `ECRD_*` environment variable, or a key in a",
        "TOML file passed with `--config` (top level or under `[ecrd]`). Precedence: defaults < TOML <",
        "environment < flags. An unknown TOML key or `ECRD_*` variable stops the command at start, naming it,",
        "its source and the closest setting; so does a bad value, naming the key, its source and the value.",
        "",
        "| flag | environment | TOML key | default | meaning |",
        "|---|---|---|---|---|",
    ]
    for f in dataclasses.fields(Settings):
        default = "***" if f.metadata.get("secret") else f.default
        shown = f"`{default}`" if default not in ("", None) else "(none)"
        lines.append(
            f"| `--{f.name.replace('_', '-')}` | `{ENV_PREFIX}{f.name.upper()}` | `{f.name}` | {shown} | "
            f"{f.metadata['help']} |"
        )
    return "\n".join(lines) + "\n"
