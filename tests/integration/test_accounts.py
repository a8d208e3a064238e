"""Several accounts over one metadata store: IAM kept apart per account, keys answering as their own account,
AssumeRole across accounts, principals of other served accounts, the accounts themselves (service and CLI),
the account alias, and console sign-in failures counted per account."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ecrd.cli.main import main
from ecrd.config import Settings
from ecrd.domain.records import AuditEvent
from ecrd.domain.registries import RegistryId
from ecrd.errors import (
    AccessDenied,
    ConsoleSignInFailed,
    EntityAlreadyExists,
    MalformedPolicyDocument,
    NoSuchEntity,
    TooManyRequests,
    ValidationError,
)
from ecrd.metadata.store import MetadataStore
from ecrd.policy.managed import READ_ONLY
from ecrd.services.access import Caller, CallerKind
from ecrd.services.accounts import AccountService
from ecrd.services.audit import AuditTrail
from ecrd.services.console_sessions import MAX_FAILURES, ConsoleSessions
from ecrd.services.iam import IdentityServices, identity_services
from ecrd.services.iam.authentication import Authenticator
from ecrd.services.iam.passwords import LoginProfileService
from ecrd.services.secrets import SecretBox
from tests.integration.test_command_line import ecrd
from tests.support.clock import FakeClock

A = "111111111111"
B = "222222222222"
START = 1_700_000_000.0


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(START)


@pytest.fixture
def store(settings: Settings) -> Iterator[MetadataStore]:
    metadata_store = MetadataStore(settings.resolved_database_url)
    metadata_store.migrate(default_account_id=A)
    yield metadata_store
    metadata_store.dispose()


@pytest.fixture
def box() -> SecretBox:
    return SecretBox(os.urandom(32))


@pytest.fixture
def accounts(store: MetadataStore, box: SecretBox, clock: FakeClock) -> AccountService:
    service = AccountService(store, secret_box=box, clock=clock)
    service.ensure(A)
    service.ensure(B)
    return service


@pytest.fixture
def first(store: MetadataStore, box: SecretBox, clock: FakeClock, accounts: AccountService) -> IdentityServices:
    return identity_services(store, account_id=A, secret_box=box, clock=clock)


@pytest.fixture
def second(store: MetadataStore, box: SecretBox, clock: FakeClock, accounts: AccountService) -> IdentityServices:
    return identity_services(store, account_id=B, secret_box=box, clock=clock)


def policy(*statements: dict[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def allow(action: str, resource: str = "*") -> dict[str, Any]:
    return {"Effect": "Allow", "Action": action, "Resource": resource}


def trust(principal: Any) -> str:
    return policy({"Effect": "Allow", "Principal": principal, "Action": "sts:AssumeRole"})


def user_caller(identity: IdentityServices, name: str) -> Caller:
    key = identity.users.create_access_key(name)
    caller, _ = identity.authentication.authenticate_access_key(key.access_key_id, None)
    return caller


# -- IAM per account ----------------------------------------------------------------------------------------


def test_two_accounts_may_each_have_the_same_names_and_see_only_their_own(
    first: IdentityServices, second: IdentityServices
) -> None:
    document = policy(allow("ecr:*"))
    for identity in (first, second):
        identity.users.create_user("ci")
        identity.groups.create_group("builders")
        identity.roles.create_role("deployer", trust({"AWS": f"arn:aws:iam::{identity.principals.account_id}:root"}))
        identity.policies.create_policy("push", document)
    first.users.create_user("only-in-a")
    with pytest.raises(EntityAlreadyExists):
        first.users.create_user("CI")

    assert [user.name for user in first.users.list_users().items] == ["ci", "only-in-a"]
    assert [user.name for user in second.users.list_users().items] == ["ci"]
    assert [group.name for group in second.groups.list_groups().items] == ["builders"]
    assert [role.name for role in second.roles.list_roles().items] == ["deployer"]
    assert [p.name for p in second.policies.list_policies(scope="Local").items] == ["push"]
    assert first.users.get_user("ci").id != second.users.get_user("ci").id
    with pytest.raises(NoSuchEntity):
        second.users.get_user("only-in-a")
    assert first.principals.user_arn("ci") == f"arn:aws:iam::{A}:user/ci"
    assert second.principals.user_arn("ci") == f"arn:aws:iam::{B}:user/ci"
    assert second.roles.get_role("deployer").arn(B) == f"arn:aws:iam::{B}:role/deployer"

    # A customer policy ARN resolves in its own account only; AWS managed policies are everyone's.
    assert second.policies.get_policy(f"arn:aws:iam::{B}:policy/push").name == "push"
    with pytest.raises(NoSuchEntity):
        second.policies.get_policy(f"arn:aws:iam::{A}:policy/push")
    with pytest.raises(NoSuchEntity):
        second.permissions.attach_user_policy("ci", f"arn:aws:iam::{A}:policy/push")
    first.permissions.attach_user_policy("ci", READ_ONLY.arn)
    assert first.policies.get_policy(READ_ONLY.arn).attachment_count == 1
    assert second.policies.get_policy(READ_ONLY.arn).attachment_count == 0
    assert second.policies.list_entities_for_policy(READ_ONLY.arn).users == ()

    # Deleting one account's user leaves the other's of the same name alone.
    first.permissions.detach_user_policy("ci", READ_ONLY.arn)
    first.users.delete_user("ci")
    assert second.users.get_user("ci").name == "ci"


def test_a_key_authenticates_as_its_own_account_whichever_authenticator_reads_it(
    first: IdentityServices, second: IdentityServices
) -> None:
    first.users.create_user("ci")
    second.users.create_user("ci")
    key = second.users.create_access_key("ci")
    for identity in (first, second):
        caller, secret = identity.authentication.authenticate_access_key(key.access_key_id, None)
        assert (caller.account_id, caller.arn, caller.kind) == (B, f"arn:aws:iam::{B}:user/ci", CallerKind.USER)
        assert secret == key.secret_access_key
    root_key = second.users.create_access_key(None)
    root, _ = first.authentication.authenticate_access_key(root_key.access_key_id, None)
    assert (root.account_id, root.arn, root.user_id) == (B, f"arn:aws:iam::{B}:root", B)
    # Each account lists its own keys, and may not touch another's.
    assert [k.access_key_id for k in second.users.list_access_keys(None).items] == [root_key.access_key_id]
    assert first.users.list_access_keys(None).items == ()
    with pytest.raises(NoSuchEntity):
        first.users.delete_access_key(None, root_key.access_key_id)
    assert first.sessions.get_caller_identity(root).account == B


def test_the_root_key_bootstrap_counts_only_its_own_accounts_keys(
    store: MetadataStore, box: SecretBox, second: IdentityServices
) -> None:
    second.users.create_access_key(None)
    created = Authenticator(store, account_id=A, secret_box=box).bootstrap_root(None, None)
    assert created is not None
    caller, _ = second.authentication.authenticate_access_key(created[0], None)
    assert caller.account_id == A
    assert Authenticator(store, account_id=A, secret_box=box).bootstrap_root(None, None) is None
    # A configured root key of one account is not another account's to claim.
    other = second.users.create_access_key(None)
    with pytest.raises(ValueError, match="not a key of the account root"):
        Authenticator(store, account_id=A, secret_box=box).bootstrap_root(other.access_key_id, "new-secret")


def test_each_account_has_its_own_password_policy(first: IdentityServices, second: IdentityServices) -> None:
    first.login_profiles.update_account_password_policy(minimum_password_length=20)
    assert first.login_profiles.get_account_password_policy().minimum_password_length == 20
    with pytest.raises(NoSuchEntity, match=f"domain name {B} cannot be found"):
        second.login_profiles.get_account_password_policy()
    second.users.create_user("ci")
    second.login_profiles.create_login_profile("ci", "Short-Pass-1")  # A's 20 characters do not apply in B
    second.login_profiles.update_account_password_policy(minimum_password_length=9)
    second.login_profiles.delete_account_password_policy()
    assert first.login_profiles.get_account_password_policy().minimum_password_length == 20
    with pytest.raises(NoSuchEntity):
        second.login_profiles.delete_account_password_policy()


# -- AssumeRole across accounts -----------------------------------------------------------------------------


def test_a_user_of_another_account_assumes_a_role_its_account_is_trusted_for(
    first: IdentityServices, second: IdentityServices
) -> None:
    role_arn = f"arn:aws:iam::{A}:role/deployer"
    first.roles.create_role("deployer", trust({"AWS": f"arn:aws:iam::{B}:root"}))
    second.users.create_user("ci")
    second.permissions.put_user_policy("ci", "assume", policy(allow("sts:AssumeRole", role_arn)))
    caller = user_caller(second, "ci")

    # Whichever account's session service is asked: the role is A's, the caller B's.
    for identity in (second, first):
        assumed = identity.sessions.assume_role(caller, role_arn, "deploy")
        assert assumed.arn == f"arn:aws:sts::{A}:assumed-role/deployer/deploy"
        session, _ = identity.authentication.authenticate_access_key(
            assumed.credentials.access_key_id, assumed.credentials.session_token
        )
        assert session.account_id == A
        assert session.arn == assumed.arn
        assert session.aliases == (role_arn,)
        assert second.sessions.get_caller_identity(session).account == A


def test_a_trust_policy_naming_the_other_accounts_user_still_needs_that_users_own_allow(
    first: IdentityServices, second: IdentityServices
) -> None:
    role_arn = f"arn:aws:iam::{A}:role/deployer"
    second.users.create_user("ci")
    first.roles.create_role("deployer", trust({"AWS": f"arn:aws:iam::{B}:user/ci"}))
    caller = user_caller(second, "ci")
    with pytest.raises(AccessDenied) as denied:
        second.sessions.assume_role(caller, role_arn, "deploy")
    assert denied.value.message.startswith(
        f"User: arn:aws:iam::{B}:user/ci is not authorized to perform: sts:AssumeRole on resource: {role_arn}"
    )
    second.permissions.put_user_policy("ci", "assume", policy(allow("sts:AssumeRole", role_arn)))
    assert second.sessions.assume_role(caller, role_arn, "deploy").arn.startswith(f"arn:aws:sts::{A}:")


def test_a_role_whose_trust_policy_does_not_name_the_callers_account_is_refused_in_stss_words(
    first: IdentityServices, second: IdentityServices
) -> None:
    role_arn = f"arn:aws:iam::{A}:role/internal"
    first.roles.create_role("internal", trust({"AWS": f"arn:aws:iam::{A}:root"}))
    second.users.create_user("ci")
    second.permissions.put_user_policy("ci", "everything", policy(allow("*")))
    caller = user_caller(second, "ci")
    expected = f"User: arn:aws:iam::{B}:user/ci is not authorized to perform: sts:AssumeRole on resource: {role_arn}"
    with pytest.raises(AccessDenied) as denied:
        second.sessions.assume_role(caller, role_arn, "s1")
    assert denied.value.message == expected
    # A role that is nowhere (in a served account or not) is answered the same way.
    for missing in (f"arn:aws:iam::{A}:role/nothing", "arn:aws:iam::333333333333:role/internal"):
        with pytest.raises(AccessDenied) as denied:
            second.sessions.assume_role(caller, missing, "s1")
        assert denied.value.message.endswith(f"on resource: {missing}")


def test_an_assumed_role_of_one_account_may_chain_into_a_role_of_another(
    first: IdentityServices, second: IdentityServices
) -> None:
    second.roles.create_role("hop", trust({"AWS": f"arn:aws:iam::{B}:root"}))
    second.permissions.put_role_policy("hop", "assume", policy(allow("sts:AssumeRole")))
    first.roles.create_role("target", trust({"AWS": f"arn:aws:iam::{B}:role/hop"}))
    second.users.create_user("ci")
    second.permissions.put_user_policy("ci", "assume", policy(allow("sts:AssumeRole")))
    hop = second.sessions.assume_role(user_caller(second, "ci"), f"arn:aws:iam::{B}:role/hop", "one")
    hop_caller, _ = second.authentication.authenticate_access_key(
        hop.credentials.access_key_id, hop.credentials.session_token
    )
    assumed = second.sessions.assume_role(hop_caller, f"arn:aws:iam::{A}:role/target", "two", 900)
    assert assumed.arn == f"arn:aws:sts::{A}:assumed-role/target/two"


# -- principals of other accounts ---------------------------------------------------------------------------


def test_principals_of_another_served_account_are_checked_there(
    first: IdentityServices, second: IdentityServices
) -> None:
    second.users.create_user("ci", path="/build/")
    first.roles.create_role("ok", trust({"AWS": f"arn:aws:iam::{B}:user/build/ci"}))
    for missing in (
        f"arn:aws:iam::{B}:user/ci",
        f"arn:aws:iam::{B}:user/build/nobody",
        f"arn:aws:iam::{B}:role/r",
        f"arn:aws:iam::{B}:user/",
    ):
        with pytest.raises(MalformedPolicyDocument, match="Invalid principal"):
            first.roles.create_role("bad", trust({"AWS": missing}))
    # Account roots of any account, by ARN or bare id, and principals of accounts served elsewhere pass.
    passing = ("arn:aws:iam::999999999999:root", "999999999999", "arn:aws:iam::999999999999:user/x", B)
    for number, principal in enumerate(passing):
        first.roles.create_role(f"trusting-{number}", trust({"AWS": principal}))
    assert first.principals.principal_exists(f"arn:aws:iam::{B}:user/build/ci")
    assert not first.principals.principal_exists(f"arn:aws:iam::{B}:user/nobody")
    assert first.principals.principal_exists("arn:aws:iam::999999999999:user/nobody")
    assert first.principals.principal_exists(f"arn:aws:iam::{B}:root")


# -- the accounts -------------------------------------------------------------------------------------------


def test_accounts_are_made_listed_and_refused_twice(
    store: MetadataStore, box: SecretBox, clock: FakeClock, accounts: AccountService
) -> None:
    accounts.ensure(A)  # again: nothing changes
    account, key_id, secret = accounts.create("123456789012", "team-a")
    assert (account.account_id, account.alias, account.created_at) == ("123456789012", "team-a", START)
    random_account, _, _ = accounts.create()
    assert len(random_account.account_id) == 12 and random_account.account_id.isdigit()
    assert random_account.alias is None
    assert [a.account_id for a in accounts.list()] == sorted([A, B, "123456789012", random_account.account_id])
    assert accounts.get("123456789012") == account
    assert accounts.exists("123456789012") and not accounts.exists("999999999999")
    with pytest.raises(NoSuchEntity):
        accounts.get("999999999999")

    # The root's key answers as the new account, and is that account's only root key.
    caller, stored = Authenticator(store, account_id=A, secret_box=box).authenticate_access_key(key_id, None)
    assert (caller.account_id, caller.kind, stored) == ("123456789012", CallerKind.ROOT, secret)
    made = identity_services(store, account_id="123456789012", secret_box=box, clock=clock)
    assert [k.access_key_id for k in made.users.list_access_keys(None).items] == [key_id]

    with pytest.raises(EntityAlreadyExists, match="123456789012 already exists"):
        accounts.create("123456789012")
    with pytest.raises(EntityAlreadyExists, match="alias team-a already exists"):
        accounts.create("210987654321", "team-a")
    assert not accounts.exists("210987654321")
    for bad_alias in ("Team", "a", "-team", "team-", "te--am", "x" * 64):
        with pytest.raises(ValidationError, match="accountAlias"):
            accounts.create(alias=bad_alias)
    for bad_id in ("12345", "12345678901a", "1234567890123"):
        with pytest.raises(ValidationError, match="accountId"):
            accounts.create(bad_id)


def test_the_account_alias_is_one_per_account_and_unique(
    first: IdentityServices, second: IdentityServices, accounts: AccountService
) -> None:
    assert first.account_aliases.list_account_aliases().items == ()
    first.account_aliases.create_account_alias("my-org")
    first.account_aliases.create_account_alias("my-org-renamed")  # replaces the first: one alias per account
    assert first.account_aliases.list_account_aliases().items == ("my-org-renamed",)
    assert accounts.get(A).alias == "my-org-renamed"
    with pytest.raises(EntityAlreadyExists, match=r"The account alias my-org-renamed already exists\."):
        second.account_aliases.create_account_alias("my-org-renamed")
    second.account_aliases.create_account_alias("my-org")  # freed by the rename
    with pytest.raises(NoSuchEntity, match=r"The account alias my-org cannot be found\."):
        first.account_aliases.delete_account_alias("my-org")
    with pytest.raises(ValidationError, match="regular expression pattern"):
        first.account_aliases.create_account_alias("My_Org")
    first.account_aliases.delete_account_alias("my-org-renamed")
    assert first.account_aliases.list_account_aliases().items == ()
    assert second.account_aliases.list_account_aliases().items == ("my-org",)


# -- console sign-in failures -------------------------------------------------------------------------------


def _console(store: MetadataStore, clock: FakeClock, *identities: tuple[str, IdentityServices]) -> ConsoleSessions:
    """The deployment's one console over these accounts (keys of every account found, as the server's are)."""
    by_account = dict(identities)

    def login_profiles(account_id: str) -> LoginProfileService | None:
        found = by_account.get(account_id)
        return None if found is None else found.login_profiles

    return ConsoleSessions(store, identities[0][1].authentication, login_profiles, session_seconds=3600, clock=clock)


def test_failed_sign_ins_of_a_user_name_do_not_lock_that_name_in_another_account(
    store: MetadataStore, first: IdentityServices, second: IdentityServices, clock: FakeClock
) -> None:
    for identity in (first, second):
        identity.users.create_user("ci")
        identity.login_profiles.create_login_profile("ci", "Correct-Horse-7")
    console = _console(store, clock, (A, first), (B, second))
    for attempt in range(MAX_FAILURES):
        with pytest.raises(ConsoleSignInFailed):
            console.sign_in_with_password(A, "ci", "wrong", source_ip=f"192.0.2.{attempt}")
    with pytest.raises(TooManyRequests):
        console.sign_in_with_password(A, "ci", "Correct-Horse-7", source_ip="192.0.2.100")
    session = console.sign_in_with_password(B, "ci", "Correct-Horse-7", source_ip="192.0.2.101")
    resumed = console.resume(session)
    assert resumed is not None and resumed.caller.arn == f"arn:aws:iam::{B}:user/ci"


def test_a_console_sign_in_acts_in_the_account_it_names_and_a_key_only_in_its_own(
    store: MetadataStore, first: IdentityServices, second: IdentityServices, clock: FakeClock
) -> None:
    console = _console(store, clock, (A, first), (B, second))
    key_of_b = second.users.create_access_key(None)
    with pytest.raises(ConsoleSignInFailed):
        console.sign_in_with_access_key(A, key_of_b.access_key_id, key_of_b.secret_access_key, source_ip="192.0.2.1")
    session = console.sign_in_with_access_key(
        B, key_of_b.access_key_id, key_of_b.secret_access_key, source_ip="192.0.2.1"
    )
    resumed = console.resume(session)
    assert resumed is not None and resumed.caller.arn == f"arn:aws:iam::{B}:root"
    # a user's password signs in only to the account that has that user
    second.users.create_user("ops")
    second.login_profiles.create_login_profile("ops", "Correct-Horse-7")
    with pytest.raises(ConsoleSignInFailed):
        console.sign_in_with_password(A, "ops", "Correct-Horse-7", source_ip="192.0.2.2")
    with pytest.raises(ConsoleSignInFailed):
        console.sign_in_with_password("999999999999", "ops", "Correct-Horse-7", source_ip="192.0.2.2")
    ops_session = console.sign_in_with_password(B, "ops", "Correct-Horse-7", source_ip="192.0.2.2")
    ops = console.resume(ops_session)
    assert ops is not None and ops.caller.arn == f"arn:aws:iam::{B}:user/ops" and ops.caller.account_id == B
    # and taking the user's password away ends its session
    second.login_profiles.delete_login_profile("ops")
    assert console.resume(ops_session) is None


# -- the audit trail ----------------------------------------------------------------------------------------


def test_an_accounts_trail_holds_what_happened_in_its_registries_and_what_its_principals_did(
    store: MetadataStore,
) -> None:
    trail = AuditTrail(store)
    in_a, in_b = RegistryId(A, "us-east-1"), RegistryId(B, "eu-west-1")

    def event(request_id: str, principal: str, registry: RegistryId | None) -> AuditEvent:
        return AuditEvent(START, request_id, principal, "ecr:PutImage", "app", "allowed", 200, None, "", registry)

    for recorded in (
        event("a-in-a", f"arn:aws:iam::{A}:user/ci", in_a),
        event("b-in-a", f"arn:aws:iam::{B}:user/ci", in_a),  # a cross-account call: on both trails
        event("a-before-its-registry", f"arn:aws:iam::{A}:root", None),
        event("b-role-in-b", f"arn:aws:sts::{B}:assumed-role/deploy/session", in_b),
        event("unknown-key", "access key AKIAEXAMPLEEXAMPLE", None),
        event("deployment", "ecrd", None),
    ):
        trail.record(recorded)

    def ids(account_id: str) -> set[str]:
        return {e.request_id for e in trail.events(account_id=account_id, limit=100)}

    assert ids(A) == {"a-in-a", "b-in-a", "a-before-its-registry"}
    assert ids(B) == {"b-in-a", "b-role-in-b"}
    assert len(trail.events(limit=100)) == 6  # the operator's `ecrd audit` reads the whole deployment's
    assert {e.registry for e in trail.events(account_id=B, limit=100)} == {in_a, in_b}


# -- the command ----------------------------------------------------------------------------------------------


def _registry_flags(settings: Settings) -> list[str]:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    return ["--data-dir", str(settings.data_dir), "--database-url", str(settings.database_url)]


def test_account_create_prints_an_exportable_root_key_and_list_shows_the_accounts(
    settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    flags = _registry_flags(settings)
    assert main(["account", "create", "--account-id", "123456789012", "--alias", "team-a", *flags]) == 0
    made = capsys.readouterr()
    lines = made.out.splitlines()
    assert len(lines) == 2, made.out
    assert lines[0].startswith("AWS_ACCESS_KEY_ID=AKIA") and lines[1].startswith("AWS_SECRET_ACCESS_KEY=")
    assert "123456789012" in made.err
    key_id, secret = (line.partition("=")[2] for line in lines)

    assert main(["account", "create", *flags]) == 0
    random_id_key = capsys.readouterr().out.splitlines()[0].partition("=")[2]

    assert main(["account", "create", "--account-id", "123456789012", *flags]) == 1
    refused = capsys.readouterr()
    assert refused.out == "" and "already exists" in refused.err

    assert main(["account", "list", *flags]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].split() == ["ACCOUNT", "ID", "ALIAS", "CREATED"]
    rows = {line.split()[0]: line.split()[1] for line in table[1:]}
    assert rows["000000000000"] == "-"  # the default account, entered before listing
    assert rows["123456789012"] == "team-a"
    assert len(rows) == 3

    store = MetadataStore(settings.resolved_database_url)
    try:
        authenticator = Authenticator(
            store, account_id="000000000000", secret_box=SecretBox.load(data_dir=settings.data_dir)
        )
        caller, stored = authenticator.authenticate_access_key(key_id, None)
        assert (caller.account_id, caller.kind, stored) == ("123456789012", CallerKind.ROOT, secret)
        other, _ = authenticator.authenticate_access_key(random_id_key, None)
        assert other.account_id in rows and other.account_id not in ("000000000000", "123456789012")
    finally:
        store.dispose()


@pytest.mark.parametrize("action", [["create", "--alias", "team-a"], ["list"]], ids=lambda a: a[0])
def test_account_commands_refuse_a_missing_registry_and_make_nothing(tmp_path: Path, action: list[str]) -> None:
    result = ecrd("account", *action, cwd=tmp_path)
    assert result.returncode == 2, result
    assert result.stdout == ""
    assert result.stderr.startswith(f"ecrd: no registry at {tmp_path / 'ecrd-data'}")
    assert not (tmp_path / "ecrd-data").exists()
