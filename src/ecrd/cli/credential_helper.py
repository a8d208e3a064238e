"""`docker-credential-ecrd`: docker's credential helper for ecrd, so that docker pulls and pushes with AWS
credentials and no `docker login`.

docker runs ``docker-credential-ecrd ACTION`` with the registry host on stdin (the credential helper protocol of
docker-credential-helpers): ``get`` answers ``{"ServerURL", "Username": "AWS", "Secret"}`` from
GetAuthorizationToken, called with botocore's credential chain (environment, profile, SSO, roles) and region;
``store`` and ``erase`` do nothing, as docker's login and logout have nothing to keep; ``list`` shows the hosts of
the cached tokens. The AWS endpoint is the one the AWS configuration names for ECR (``AWS_ENDPOINT_URL_ECR``,
``AWS_ENDPOINT_URL``, a profile's ``endpoint_url``), else the registry host itself, whose ``POST /`` is ecrd's
AWS door. Errors go to docker on stdout with exit status 1, as the protocol has it; no secret is ever printed
except the one ``get`` returns.
"""

from __future__ import annotations

import base64
import binascii
import json
import sys
from collections.abc import Callable, Sequence
from typing import Any, TextIO
from urllib.parse import urlsplit

from ecrd.cli.credential_cache import CachedToken, TokenCache
from ecrd.config import LOOPBACK_HOSTS, user_cache_dir

# docker-credential-helpers' errors, word for word: docker recognises "not found" by this message and then
# goes on without credentials, as it does for a host no helper knows.
CREDENTIALS_NOT_FOUND = "credentials not found in native keychain"
MISSING_SERVER_URL = "no credentials server URL"
USAGE = "Usage: docker-credential-ecrd <store|get|erase|list|version>"
VERSION = "docker-credential-ecrd (ecrd) 0.1.0"
# The region ecrd answers as unless told otherwise (its --region default).
DEFAULT_REGION = "us-east-1"
USERNAME = "AWS"
CACHE_SUBDIRECTORY = ("ecrd", "docker-credential-ecrd")


class NotFound(Exception):
    """No credentials for this host: docker is told "not found" and the reason goes to stderr."""


def registry_host(server_url: str) -> str:
    """The host[:port] of what docker names a registry by (``host:port``, or a URL such as ``https://host/v1/``)."""
    rest = server_url.strip().split("://", 1)[-1]
    return rest.split("/", 1)[0].lower()


def default_endpoint(host: str) -> str:
    """The registry itself: plain HTTP on this machine (as docker speaks to a loopback registry), else HTTPS."""
    hostname = urlsplit(f"//{host}").hostname or ""
    loopback = hostname in LOOPBACK_HOSTS or hostname.startswith("127.")
    return f"{'http' if loopback else 'https'}://{host}"


class TokenSource:
    """Registry tokens of one AWS configuration: from the cache while good, else from GetAuthorizationToken."""

    def __init__(self, cache: TokenCache, session_factory: Callable[[], Any] | None = None) -> None:
        self.cache = cache
        self.session_factory = session_factory or _botocore_session

    def token(self, server_url: str) -> str:
        """The base64 ``AWS:<password>`` token for ``server_url``; raises NotFound, saying why."""
        from botocore.configprovider import ConfiguredEndpointProvider
        from botocore.exceptions import BotoCoreError, ClientError

        host = registry_host(server_url)
        if not host:
            raise NotFound("no registry host")
        session = self.session_factory()
        try:
            credentials = session.get_credentials()
        except BotoCoreError as exc:
            raise NotFound(f"no AWS credentials: {exc}") from None
        if credentials is None:
            raise NotFound("no AWS credentials (environment, profile or role)")
        region = session.get_config_variable("region") or DEFAULT_REGION
        configured = ConfiguredEndpointProvider(
            full_config=session.full_config, scoped_config=session.get_scoped_config(), client_name="ecr"
        ).provide()
        endpoint = str(configured or default_endpoint(host))
        key = TokenCache.key(endpoint, region, credentials.access_key)
        cached = self.cache.get(key)
        if cached is not None:
            return cached.authorization_token
        client = session.create_client("ecr", region_name=region, endpoint_url=endpoint)
        try:
            data = client.get_authorization_token()["authorizationData"][0]
        except ClientError as exc:
            error = exc.response.get("Error", {})
            raise NotFound(
                f"GetAuthorizationToken at {endpoint}: {error.get('Code')}: {error.get('Message')}"
            ) from None
        except BotoCoreError as exc:
            raise NotFound(f"GetAuthorizationToken at {endpoint}: {exc}") from None
        token = str(data["authorizationToken"])
        self.cache.put(key, CachedToken(host, token, data["expiresAt"].timestamp()))
        return token


def _botocore_session() -> Any:
    import botocore.session

    return botocore.session.Session()


def get(source: TokenSource, stdin: TextIO, stdout: TextIO, stderr: TextIO) -> int:
    server_url = stdin.read().strip()
    if not server_url:
        stdout.write(MISSING_SERVER_URL + "\n")
        return 1
    try:
        token = source.token(server_url)
        username, colon, secret = base64.b64decode(token, validate=True).decode().partition(":")
    except NotFound as exc:
        stderr.write(f"docker-credential-ecrd: {exc}\n")
        stdout.write(CREDENTIALS_NOT_FOUND + "\n")
        return 1
    except (binascii.Error, UnicodeDecodeError):
        username, colon, secret = "", "", ""
    if not colon or username != USERNAME:
        stderr.write("docker-credential-ecrd: the registry returned a token that is not base64 of AWS:<password>\n")
        stdout.write(CREDENTIALS_NOT_FOUND + "\n")
        return 1
    json.dump({"ServerURL": server_url, "Username": USERNAME, "Secret": secret}, stdout)
    stdout.write("\n")
    return 0


def main(
    argv: Sequence[str] | None = None,
    *,
    stdin: TextIO | None = None,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
    source: TokenSource | None = None,
) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    stdin, stdout, stderr = stdin or sys.stdin, stdout or sys.stdout, stderr or sys.stderr
    action = args[0] if len(args) == 1 else ""
    if action in ("store", "erase"):
        # Nothing to keep or forget: every token comes from the AWS credentials when docker asks for one.
        # The request is read, so that docker's write to the pipe never fails.
        stdin.read()
        return 0
    if action == "version":
        stdout.write(VERSION + "\n")
        return 0
    if action not in ("get", "list"):
        stdout.write(USAGE + "\n")
        return 1
    source = source or TokenSource(TokenCache(user_cache_dir().joinpath(*CACHE_SUBDIRECTORY)))
    if action == "list":
        hosts = {token.server_url: USERNAME for token in source.cache.valid()}
        json.dump(hosts, stdout)
        stdout.write("\n")
        return 0
    return get(source, stdin, stdout, stderr)


if __name__ == "__main__":
    raise SystemExit(main())
