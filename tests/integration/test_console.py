"""The web console over HTTP, in-process against the real application on SQLite and PostgreSQL: sign-in and its
cookie, CSRF on every form, failed sign-ins limited and audited, denials in AWS's words, server-side paging, and
the setting that turns the console off."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator
from typing import Any

import pytest
from starlette.testclient import TestClient

from ecrd.app import Registry, asgi_app, build_registry
from ecrd.config import Settings
from ecrd.domain.registries import RegistryId
from ecrd.policy.managed import READ_ONLY
from ecrd.services.console_sessions import MAX_FAILURES
from tests.conftest import ROOT_ACCESS_KEY_ID, ROOT_SECRET_ACCESS_KEY, basic_auth_for
from tests.support.layers import file, layer
from tests.support.oci import Blob, config_blob, digest_of, image_manifest, push_blob, push_manifest
from tests.support.vulndata import VULNDATA

BASE_URL = "http://127.0.0.1:5000"
LAYER_TYPE = "application/vnd.oci.image.layer.v1.tar+gzip"
PASSWORD = "Console-Pass-1"


@pytest.fixture
def browser(registry: Registry) -> Iterator[TestClient]:
    """A browser-like client: keeps cookies, follows nothing by itself."""
    with TestClient(asgi_app(registry), base_url=BASE_URL, follow_redirects=False) as client:
        yield client


def _csrf(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found is not None, html
    return found.group(1)


def _user(registry: Registry, name: str, *, policy_arn: str | None = None, reset: bool = False) -> None:
    registry.identity.users.create_user(name)
    registry.identity.login_profiles.create_login_profile(name, PASSWORD, reset_required=reset)
    if policy_arn is not None:
        registry.identity.permissions.attach_policy("user", name, policy_arn)


def _sign_in(client: TestClient, user: str, password: str = PASSWORD, *, account: str = "000000000000") -> Any:
    form = client.get("/console/signin")
    return client.post(
        "/console/signin",
        data={
            "csrf_token": _csrf(form.text),
            "method": "password",
            "account": account,
            "user_name": user,
            "password": password,
        },
    )


def test_the_sign_in_page_asks_for_account_user_name_and_password(browser: TestClient) -> None:
    # when the console is opened without a session
    opened = browser.get("/console/")

    # then it sends the browser to the sign-in page, whose fields are labelled as AWS's are
    assert opened.status_code == 303
    assert opened.headers["location"].startswith("/console/signin")
    page = browser.get(opened.headers["location"]).text
    for field, label in (("account", "Account"), ("user_name", "User name"), ("password", "Password")):
        assert f'<label for="{field}">{label}</label>' in page
    assert '<button type="submit" class="primary">Sign in</button>' in page
    # and nothing on it comes from another site
    assert "http://" not in page and "https://" not in page


def test_a_password_sign_in_sets_a_short_lived_httponly_samesite_cookie_and_sign_out_ends_it(
    browser: TestClient, registry: Registry
) -> None:
    # given a user with a console password
    _user(registry, "alice", policy_arn=READ_ONLY.arn)

    # when it signs in
    answer = _sign_in(browser, "alice")

    # then the session cookie cannot be read by scripts nor sent cross-site, and lasts the configured time
    assert answer.status_code == 303 and answer.headers["location"] == "/console/"
    cookie = next(c for c in answer.headers.get_list("set-cookie") if c.startswith("ecrd_console_session="))
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/console" in cookie
    assert f"Max-Age={registry.settings.console_session_minutes * 60}" in cookie
    overview = browser.get("/console/")
    assert overview.status_code == 200
    assert "arn:aws:iam::000000000000:user/alice" in overview.text
    assert "script-src 'self'" in overview.headers["content-security-policy"]

    # and signing out revokes the session on the server, not only in this browser
    stolen = browser.cookies.get("ecrd_console_session")
    out = browser.post("/console/signout", data={"csrf_token": _csrf(overview.text)})
    assert out.status_code == 303
    with TestClient(asgi_app(registry), base_url=BASE_URL, follow_redirects=False) as other:
        other.cookies.set("ecrd_console_session", str(stolen), path="/console")
        assert other.get("/console/").status_code == 303


def test_every_form_needs_its_csrf_token(browser: TestClient, registry: Registry) -> None:
    # given the signed-in root (by access key)
    _sign_in_as_root(browser)

    # when a form arrives without its token, or with another's
    for token in ("", "0" * 64):
        refused = browser.post("/console/", data={"csrf_token": token, "repository_name": "forged"})
        # then it is refused and nothing is made
        assert refused.status_code == 403
    assert registry.registry.list_repositories(after=None, limit=10) == []

    # and the sign-in form needs its own token too
    forged = browser.post(
        "/console/signin", data={"method": "password", "account": "000000000000", "user_name": "x", "password": "y"}
    )
    assert forged.status_code == 403


def test_failed_sign_ins_are_limited_and_audited(browser: TestClient, registry: Registry) -> None:
    # given a user with a console password
    _user(registry, "bob")

    # when its password is guessed wrong as often as allowed
    for _ in range(MAX_FAILURES):
        assert _sign_in(browser, "bob", "wrong-guess").status_code == 401

    # then even the right password is refused for a while
    limited = _sign_in(browser, "bob")
    assert limited.status_code == 429
    assert "Too many failed sign-ins" in limited.text

    # and every failure is on the audit trail as a denied console sign-in
    denied = registry.audit.events(action="signin:ConsoleLogin", outcome="denied", limit=100)
    assert len(denied) == MAX_FAILURES + 1
    assert {event.principal for event in denied} == {"arn:aws:iam::000000000000:user/bob"}


def test_a_wrong_account_fails_like_a_wrong_password(browser: TestClient, registry: Registry) -> None:
    _user(registry, "carol")
    failed = _sign_in(browser, "carol", account="111111111111")
    assert failed.status_code == 401
    assert "Your authentication information is incorrect" in failed.text


def test_a_read_only_user_sees_no_write_buttons_and_is_denied_in_aws_words(
    browser: TestClient, registry: Registry
) -> None:
    # given a repository and a user with ECR's read-only policy
    registry.registry.create_repository("team/app")
    _user(registry, "reader", policy_arn=READ_ONLY.arn)
    _sign_in(browser, "reader")

    # when it looks at the registry and the repository
    overview = browser.get("/console/")
    repository = browser.get("/console/repository", params={"name": "team/app"})

    # then it sees them, without the buttons it may not use
    assert "team/app" in overview.text and "Create repository" not in overview.text
    assert repository.status_code == 200 and "Save mutability" not in repository.text

    # and a write it tries anyway is refused with AWS's message, and audited
    tried = browser.post("/console/", data={"csrf_token": _csrf(overview.text), "repository_name": "mine"})
    assert "is not authorized to perform: ecr:CreateRepository" in tried.text
    assert registry.audit.events(action="ecr:CreateRepository", outcome="denied", limit=10)


def test_repositories_are_paged_on_the_server(browser: TestClient, registry: Registry) -> None:
    # given more repositories than a page holds
    for number in range(30):
        registry.registry.create_repository(f"repo-{number:02d}")
    browser.get("/console/signin")
    _sign_in_as_root(browser)

    # when the first page of 25 is shown, then the next
    first = browser.get("/console/", params={"size": 25}).text
    link = re.search(r'href="(/console/\?[^"]*next=[^"]+)"', first)
    assert link is not None
    second = browser.get(link.group(1).replace("&amp;", "&")).text

    # then each repository is on exactly one page
    shown = re.findall(r"repo-\d\d</a>", first) + re.findall(r"repo-\d\d</a>", second)
    assert len(shown) == 30 and len(set(shown)) == 30


def test_a_password_to_reset_must_be_changed_before_anything_else(browser: TestClient, registry: Registry) -> None:
    # given a user whose password must be reset, allowed to change its own
    registry.identity.login_profiles.update_account_password_policy(allow_users_to_change_password=True)
    _user(registry, "dave", policy_arn=READ_ONLY.arn, reset=True)
    _sign_in(browser, "dave")

    # when it opens any page, it is sent to change its password first
    assert browser.get("/console/").headers["location"] == "/console/change-password"
    page = browser.get("/console/change-password")
    changed = browser.post(
        "/console/change-password",
        data={
            "csrf_token": _csrf(page.text),
            "old_password": PASSWORD,
            "new_password": "Brand-New-Pass-2",
            "confirm_password": "Brand-New-Pass-2",
        },
    )

    # then, changed, the console opens, and the new password signs in
    assert "Your password has been changed" in changed.text
    assert browser.get("/console/").status_code == 200
    assert registry.identity.login_profiles.sign_in("dave", "Brand-New-Pass-2") is not None


def test_sign_in_never_sends_the_browser_to_another_site(browser: TestClient, registry: Registry) -> None:
    _user(registry, "erin")
    form = browser.get("/console/signin")
    answer = browser.post(
        "/console/signin",
        data={
            "csrf_token": _csrf(form.text),
            "method": "password",
            "account": "000000000000",
            "user_name": "erin",
            "password": PASSWORD,
            "next": "//evil.example/",
        },
    )
    assert answer.headers["location"] == "/console/"


def _sign_in_as_root(client: TestClient) -> None:
    page = client.get("/console/signin")
    answer = client.post(
        "/console/signin",
        data={
            "csrf_token": _csrf(page.text),
            "method": "access_key",
            "account": "000000000000",
            "access_key_id": ROOT_ACCESS_KEY_ID,
            "secret_access_key": ROOT_SECRET_ACCESS_KEY,
        },
    )
    assert answer.status_code == 303


def test_the_policy_check_explains_the_decision_and_keeps_the_signed_in_principal(
    browser: TestClient, registry: Registry
) -> None:
    # given a repository, a read-only user, and the root signed in
    registry.registry.create_repository("team/app")
    _user(registry, "reader", policy_arn=READ_ONLY.arn)
    _sign_in_as_root(browser)
    page = browser.get("/console/policy", params={"name": "team/app"})

    # when the root asks whether the reader may push there
    checked = browser.post(
        "/console/policy?name=team/app",
        data={
            "csrf_token": _csrf(page.text),
            "change": "check",
            "principal": "arn:aws:iam::000000000000:user/reader",
            "action": "ecr:PutImage",
        },
    ).text

    # then the engine's denial is shown with the statement that did not apply
    assert "Denied: User: arn:aws:iam::000000000000:user/reader is not authorized to perform: ecr:PutImage" in checked
    assert "does not apply: its action does not match" in checked
    # and the page still says who is signed in
    assert '<span class="principal" title="arn:aws:iam::000000000000:root">' in checked


def _push_image(registry: Registry, repository: str, tag: str, blob: Blob) -> str:
    """Push an image of one layer to the default registry as its root; its digest."""
    with TestClient(
        asgi_app(registry), base_url=BASE_URL, headers={"Authorization": basic_auth_for(registry, ROOT_ACCESS_KEY_ID)}
    ) as pusher:
        config = config_blob()
        for item in (config, blob):
            push_blob(pusher, repository, item)
        manifest = image_manifest(config, [blob])
        push_manifest(pusher, repository, tag, manifest)
    return digest_of(manifest)


def test_an_image_page_shows_its_findings_and_hands_out_its_sbom(browser: TestClient, registry: Registry) -> None:
    # given an image of an old pip, pushed to a scan-on-push repository and scanned
    registry.vulndb.import_paths([VULNDATA / "pypi.osv.jsonl"])
    registry.registry.create_repository("scanned", scan_on_push=True)
    metadata = "usr/local/lib/python3.11/site-packages/pip-20.3.dist-info/METADATA"
    blob = Blob(layer(file(metadata, "Metadata-Version: 2.1\nName: pip\nVersion: 20.3\n")), LAYER_TYPE)
    digest = _push_image(registry, "scanned", "v1", blob)
    registry.jobs.drain()
    _sign_in_as_root(browser)

    # when its page is opened
    page = browser.get("/console/image", params={"repository": "scanned", "digest": digest}).text

    # then the findings show the package, the installed and the fixing version
    row = re.search(r"<tr>(?:(?!</tr>).)*CVE-2023-5752(?:(?!</tr>).)*</tr>", page, re.S)
    assert row is not None, page
    assert "pip" in row.group(0) and "<code>20.3</code>" in row.group(0) and "<code>23.3</code>" in row.group(0)
    # and the SBOM downloads as the scan's CycloneDX document
    sbom = browser.get("/console/sbom", params={"repository": "scanned", "digest": digest})
    assert sbom.status_code == 200
    assert sbom.headers["content-disposition"].startswith("attachment;")
    assert sbom.json()["bomFormat"] == "CycloneDX"


def test_a_new_access_keys_secret_is_shown_once(browser: TestClient, registry: Registry) -> None:
    registry.identity.users.create_user("ci")
    _sign_in_as_root(browser)
    page = browser.get("/console/iam/users/ci")
    created = browser.post("/console/iam/users/ci", data={"csrf_token": _csrf(page.text), "change": "create_key"})
    [key] = registry.identity.users.list_access_keys("ci").items
    secret = re.search(r"Secret access key</dt><dd><code>([^<]+)</code>", created.text)
    assert secret is not None and "only time" in created.text
    assert registry.identity.authentication.authenticate_access_key(key.access_key_id, None)[1] == secret.group(1)
    assert secret.group(1) not in browser.get("/console/iam/users/ci").text


def test_the_policy_editor_validates_with_the_engines_parser(browser: TestClient, registry: Registry) -> None:
    _sign_in_as_root(browser)
    token = _csrf(browser.get("/console/").text)

    def validate(text: str) -> Any:
        return browser.post("/console/validate-policy", data={"csrf_token": token, "policy": text}).json()

    assert validate("{not json")["valid"] is False
    missing_principal = '{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "ecr:*"}]}'
    answer = validate(missing_principal)
    assert answer["valid"] is False and "Principal" in answer["message"]
    allowed = (
        '{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", '
        '"Principal": {"AWS": "arn:aws:iam::000000000000:root"}, "Action": "ecr:BatchGetImage"}]}'
    )
    assert validate(allowed) == {"valid": True, "message": "The policy is valid."}


def test_every_account_signs_in_to_the_one_console_and_sees_its_own_registry_only(
    browser: TestClient, registry: Registry
) -> None:
    # given an image pushed in the default account, and another account with a repository and a console user
    registry.registry.create_repository("default-images")
    _push_image(registry, "default-images", "v1", Blob(layer(file("etc/a", "a\n")), LAYER_TYPE))
    other = "444455556666"
    _, other_key_id, other_secret = registry.registries.accounts.create(account_id=other)
    services = registry.registries.get(RegistryId(other, registry.settings.region))
    services.registry.create_repository("other-images")
    services.identity.users.create_user("bob")
    services.identity.login_profiles.create_login_profile("bob", PASSWORD)
    services.identity.permissions.attach_policy("user", "bob", READ_ONLY.arn)

    # when that account's user signs in, naming the account
    assert _sign_in(browser, "bob", account=other).status_code == 303
    page = browser.get("/console/")

    # then the console answers as that account: its principal, its repositories, its registry's figures only
    assert page.status_code == 200
    assert f"arn:aws:iam::{other}:user/bob" in page.text
    assert f"Registry {other} · {registry.settings.region}" in page.text
    assert "other-images" in page.text
    assert "default-images" not in page.text  # not even in the chart of the largest repositories

    # and a key signs in only to its own account
    with TestClient(asgi_app(registry), base_url=BASE_URL, follow_redirects=False) as client:
        form = client.get("/console/signin")
        fields = {"method": "access_key", "access_key_id": other_key_id, "secret_access_key": other_secret}
        wrong = client.post(
            "/console/signin", data={"csrf_token": _csrf(form.text), "account": "000000000000", **fields}
        )
        assert wrong.status_code == 401
        right = client.post("/console/signin", data={"csrf_token": _csrf(wrong.text), "account": other, **fields})
        assert right.status_code == 303
        # each sign-in on the trail of the account it named, as CloudTrail records a ConsoleLogin
        signed_in = registry.audit.events(account_id=other, action="signin:ConsoleLogin", outcome="allowed")
        assert len(signed_in) == 2  # bob's, and the key's
        refused = registry.audit.events(account_id="000000000000", action="signin:ConsoleLogin", outcome="denied")
        assert [event.principal for event in refused] == [f"access key {other_key_id}"]
        assert f"arn:aws:iam::{other}:root" in client.get("/console/").text

        # and what that account does is on its own audit trail, where nothing of the default account's is
        token = _csrf(client.get("/console/").text)
        made = client.post("/console/", data={"csrf_token": token, "repository_name": "made-by-other"})
        assert made.status_code == 200 and services.registry.get_repository("made-by-other")
        trail = client.get("/console/audit").text
        assert "made-by-other" in trail and "default-images" not in trail

    # and the default account's console shows its own image, not the other account's repository nor its trail
    with TestClient(asgi_app(registry), base_url=BASE_URL, follow_redirects=False) as client:
        _sign_in_as_root(client)
        own = client.get("/console/").text
        assert "default-images" in own and "other-images" not in own
        trail = client.get("/console/audit").text
        assert "default-images" in trail and "made-by-other" not in trail


def test_the_console_switches_region_and_remembers_it(browser: TestClient, registry: Registry) -> None:
    # given a repository in the default region and one in another
    registry.registry.create_repository("east-images")
    west = registry.registries.get(RegistryId("000000000000", "eu-west-1"))
    west.registry.create_repository("west-images")
    _sign_in_as_root(browser)

    # when the console opens, it shows the default region, and offers the others
    east_page = browser.get("/console/").text
    assert "Registry 000000000000 · us-east-1" in east_page
    assert "east-images" in east_page and "west-images" not in east_page
    assert '<option value="eu-west-1">eu-west-1</option>' in east_page

    # when another region is chosen
    west_page = browser.get("/console/", params={"region": "eu-west-1"})

    # then the pages show that region's registry, and keep it
    assert "Registry 000000000000 · eu-west-1" in west_page.text
    assert "west-images" in west_page.text and "east-images" not in west_page.text
    assert '<option value="eu-west-1" selected>eu-west-1</option>' in west_page.text
    repository = browser.get("/console/repository", params={"name": "west-images"})
    assert repository.status_code == 200 and "--region eu-west-1" in repository.text
    # and what is made there is made in that region
    token = _csrf(west_page.text)
    assert browser.post("/console/", data={"csrf_token": token, "repository_name": "made-in-west"}).status_code == 200
    assert west.registry.get_repository("made-in-west").registry == RegistryId("000000000000", "eu-west-1")

    # and a region not served is no region: the one chosen before stays
    assert "Registry 000000000000 · eu-west-1" in browser.get("/console/", params={"region": "mars-1"}).text
    assert "Registry 000000000000 · us-east-1" in browser.get("/console/", params={"region": "us-east-1"}).text


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_no_console_setting_turns_it_off(settings: Settings) -> None:
    registry = build_registry(dataclasses.replace(settings, console=False))
    try:
        with TestClient(asgi_app(registry), base_url=BASE_URL) as client:
            assert client.get("/console/signin").status_code == 404
    finally:
        registry.close()
