"""Webhooks of a served registry: added with `ecrd events webhook add` beside the running server, they receive
the push of a real client (the oras SDK) from the server's own dispatcher, signed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from ecrd.domain.events import IMAGE_ACTION, SIGNATURE_HEADER, TIMESTAMP_HEADER, signature_valid
from tests.support.registry_process import EcrdProcess, RegistryUnderTest
from tests.support.webhooks import webhook_receiver

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]

SECRET = "e2e-webhook-secret-0123456789abcdef"


def test_a_served_registry_delivers_an_oras_push_to_a_webhook_signed(
    oras_client: Any, registry: RegistryUnderTest, repository: str, tmp_path: Path
) -> None:
    if not isinstance(registry.process, EcrdProcess):
        pytest.skip("webhooks are ecrd's")
    with webhook_receiver() as receiver:
        # given a webhook for this test's repository, added beside the running server
        added = registry.process.command(
            "events", "webhook", "add", receiver.url, "--secret", SECRET, "--repository", repository
        ).stdout
        webhook_id = added.split()[1]
        try:
            # when a file is pushed with oras
            payload = tmp_path / "notes.txt"
            payload.write_text("hello\n")
            response = oras_client.push(
                target=f"{registry.host}/{repository}:v1", files=[str(payload)], disable_path_validation=True
            )
            assert response.status_code == 201

            # then the server's dispatcher delivers its PUSH event, signed with the webhook's secret
            [got] = receiver.wait_for(1, timeout=60)
        finally:
            registry.process.command("events", "webhook", "remove", webhook_id)
    assert signature_valid(SECRET, got.headers[TIMESTAMP_HEADER], got.body, got.headers[SIGNATURE_HEADER])
    assert got.envelope["detail-type"] == IMAGE_ACTION
    assert got.envelope["detail"]["repository-name"] == repository
    assert got.envelope["detail"]["action-type"] == "PUSH"
    assert got.envelope["detail"]["image-tag"] == "v1"
