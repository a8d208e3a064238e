"""Logging in to an upstream ECR registry (another ecrd, standing in for another account's ECR) as a pull-through
cache rule with ``upstreamRegistry: ecr`` does: assume the rule's ``customRoleArn`` through the upstream's STS
with the access key the registry holds for that peer, ask its ECR for an authorization token with the role's
session, and pull with that token. Tokens are remembered until shortly before they expire.

This is the AWS protocols' client side (botocore signs and parses), so it lives beside the AWS door; the
pull-through cache service receives it as a plain callable from the composition root.
"""

from __future__ import annotations

import base64
import hashlib
import re
import time
from collections.abc import Callable
from typing import Any, Final

from ecrd.domain.caches import BoundedCache
from ecrd.errors import UpstreamFailure
from ecrd.services.upstream_registry import UpstreamCredentials

ROLE_SESSION_NAME: Final = "ecrd-pull-through-cache"
# A token is renewed this long before the upstream says it expires.
RENEW_BEFORE_SECONDS: Final = 300.0
# An ECR host names its region: ACCOUNT.dkr.ecr.REGION.amazonaws.com (another ecrd's host does not).
_ECR_HOST = re.compile(r"^\d{12}\.dkr\.ecr\.([a-z0-9-]+)\.amazonaws\.com(?::\d+)?$")


class UpstreamEcrLogin:
    """``login(host, role_arn, peer)`` → the registry credentials (``AWS`` and a token) to pull from ``host``."""

    def __init__(
        self,
        *,
        region: str,
        ca_file: str = "",
        insecure_hosts: frozenset[str] = frozenset(),
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.region = region
        self.ca_file = ca_file
        self.insecure_hosts = insecure_hosts
        self.clock = clock
        self._session: Any = None  # botocore's, made on the first login: most registries never need it
        # (host, role, hash of the peer key) → (credentials, expires at).
        self._tokens: BoundedCache[tuple[str, str, str], tuple[UpstreamCredentials, float]] = BoundedCache(256)

    def __call__(self, host: str, role_arn: str, peer: UpstreamCredentials) -> UpstreamCredentials:
        key = (host, role_arn, hashlib.sha256(peer.basic.encode()).hexdigest())
        remembered = self._tokens.get(key)
        if remembered is not None and self.clock() < remembered[1] - RENEW_BEFORE_SECONDS:
            return remembered[0]
        credentials, expires_at = self._login(host, role_arn, peer)
        self._tokens.put(key, (credentials, expires_at))
        return credentials

    def _login(self, host: str, role_arn: str, peer: UpstreamCredentials) -> tuple[UpstreamCredentials, float]:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            assumed = self._client("sts", host, peer.username, peer.access_token, None).assume_role(
                RoleArn=role_arn, RoleSessionName=ROLE_SESSION_NAME
            )["Credentials"]
        except (ClientError, BotoCoreError) as exc:
            raise UpstreamFailure(
                f"the upstream registry {host} refused to let the rule assume {role_arn}: {_said(exc)}"
            ) from None
        try:
            ecr = self._client("ecr", host, assumed["AccessKeyId"], assumed["SecretAccessKey"], assumed["SessionToken"])
            data = ecr.get_authorization_token()["authorizationData"][0]
            username, _, password = base64.b64decode(data["authorizationToken"]).decode().partition(":")
        except (ClientError, BotoCoreError) as exc:
            raise UpstreamFailure(
                f"the upstream registry {host} gave the role {role_arn} no authorization token: {_said(exc)}"
            ) from None
        except (KeyError, IndexError, ValueError):
            raise UpstreamFailure(f"the upstream registry {host} sent an authorization token that is not one") from None
        return UpstreamCredentials(username, password), data["expiresAt"].timestamp()

    def _client(self, service: str, host: str, key_id: str, secret: str, token: str | None) -> Any:
        import botocore.session
        from botocore.config import Config

        if self._session is None:
            self._session = botocore.session.Session()
        scheme = "http" if host in self.insecure_hosts else "https"
        found = _ECR_HOST.fullmatch(host)
        return self._session.create_client(
            service,
            region_name=found.group(1) if found else self.region,
            # Amazon ECR's APIs have endpoints of their own; another ecrd serves them on its registry's host.
            endpoint_url=None if found else f"{scheme}://{host}",
            aws_access_key_id=key_id,
            aws_secret_access_key=secret,
            aws_session_token=token,
            verify=self.ca_file or True,
            config=Config(connect_timeout=10, read_timeout=30, retries={"total_max_attempts": 1}),
        )


def _said(exc: Exception) -> str:
    response = getattr(exc, "response", None)  # a botocore ClientError's parsed error
    if isinstance(response, dict):
        error = response.get("Error", {})
        return f"{error.get('Code', '')} {error.get('Message', '')}".strip()[:300]
    return str(exc)[:300]
