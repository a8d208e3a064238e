"""Caller kinds: every caller is made with its kind where its key is authenticated, and no code under src/
reads a caller's kind back out of its ARN.

The kinds are checked on a real SQLite store: the root's long-term key, a user's key, a user's GetSessionToken
session, the root's session, and a role session (also one chained from another role session).
"""

from __future__ import annotations

import ast
import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from ecrd.errors import ValidationError
from ecrd.metadata.store import MetadataStore
from ecrd.services.access import Caller, CallerKind
from ecrd.services.iam import IdentityServices, identity_services
from ecrd.services.secrets import SecretBox

SRC = Path(__file__).resolve().parents[2] / "src" / "ecrd"
ACCOUNT = "123456789012"
ROOT_KEY = "AKIAROOTCONFIGURED01"
# The ARN fragments that say what sort of principal an ARN names.
KIND_FRAGMENTS = (":root", ":user/", ":role/", ":assumed-role/", ":federated-user/")
_TEXT_TESTS = {"startswith", "endswith", "find", "rfind", "index", "rindex", "count", "__contains__"}


def _fragment_in(node: ast.expr) -> str | None:
    """The kind fragment a string literal (or an f-string's literal part) holds, if any."""
    parts = [node] if isinstance(node, ast.Constant) else node.values if isinstance(node, ast.JoinedStr) else []
    for part in parts:
        if isinstance(part, ast.Constant) and isinstance(part.value, str):
            for fragment in KIND_FRAGMENTS:
                if fragment in part.value:
                    return fragment
    return None


def arn_kind_checks(source: str) -> list[str]:
    """Where ``source`` tests a string for a kind fragment (``":user/" in arn``, ``arn.endswith(":root")``…):
    the line and the test."""
    found: list[str] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Compare):
            operands = [node.left, *node.comparators]
            for op, left in zip(node.ops, operands, strict=False):
                if isinstance(op, ast.In | ast.NotIn) and _fragment_in(left):
                    found.append(f"{node.lineno}: {ast.unparse(node)}")
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in _TEXT_TESTS
            and any(_fragment_in(arg) for arg in node.args)
        ):
            found.append(f"{node.lineno}: {ast.unparse(node)}")
    return found


def arn_kind_checks_under(root: Path) -> dict[str, list[str]]:
    checks = {}
    for path in sorted(root.rglob("*.py")):
        found = arn_kind_checks(path.read_text())
        if found:
            checks[str(path.relative_to(root))] = found
    return checks


def test_no_code_under_src_reads_a_caller_kind_out_of_an_arn() -> None:
    assert arn_kind_checks_under(SRC) == {}


@pytest.mark.parametrize(
    "check",
    [
        'if ":assumed-role/" in caller.arn: pass',
        'chained = ":assumed-role/" not in ctx.caller.arn',
        'ok = name and ":user/" in arn',
        'root = arn.endswith(":root")',
        'ok = principal.arn.startswith(f"arn:aws:sts::{account}:assumed-role/")',
    ],
)
def test_the_check_finds_each_form_of_arn_kind_test(check: str) -> None:
    assert arn_kind_checks(check)


@pytest.mark.parametrize(
    "harmless",
    [
        'arn = f"arn:aws:iam::{account}:user{path}{name}"',
        "root = caller.kind is CallerKind.ROOT",
        "ok = arn.startswith(prefix)",
    ],
)
def test_the_check_leaves_arn_building_and_kinds_alone(harmless: str) -> None:
    assert arn_kind_checks(harmless) == []


# -- each kind, as authentication makes it ---------------------------------------------------------------


@pytest.fixture
def identity(tmp_path: Path) -> Iterator[IdentityServices]:
    store = MetadataStore(f"sqlite:///{tmp_path / 'metadata.db'}")
    store.migrate()
    services = identity_services(store, account_id=ACCOUNT, secret_box=SecretBox(os.urandom(32)))
    services.authentication.bootstrap_root(ROOT_KEY, "configured-secret")
    yield services
    store.dispose()


def caller_of(identity: IdentityServices, access_key_id: str, session_token: str | None = None) -> Caller:
    caller, _ = identity.authentication.authenticate_access_key(access_key_id, session_token)
    assert identity.authentication.current_caller(access_key_id) == caller
    return caller


def user(identity: IdentityServices, name: str) -> Caller:
    identity.users.create_user(name)
    return caller_of(identity, identity.users.create_access_key(name).access_key_id)


def role_trusting(identity: IdentityServices, name: str, principal: str) -> str:
    trust = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"AWS": principal}, "Action": "sts:AssumeRole"}],
    }
    return identity.roles.create_role(name, json.dumps(trust)).arn(ACCOUNT)


def test_the_root_key_makes_a_root_caller(identity: IdentityServices) -> None:
    root = caller_of(identity, ROOT_KEY)
    assert root.kind is CallerKind.ROOT and root.is_root
    assert root.arn == f"arn:aws:iam::{ACCOUNT}:root"


def test_a_user_key_makes_a_user_caller(identity: IdentityServices) -> None:
    alice = user(identity, "alice")
    assert alice.kind is CallerKind.USER and not alice.is_root
    assert (alice.arn, alice.username) == (f"arn:aws:iam::{ACCOUNT}:user/alice", "alice")


def test_session_tokens_keep_the_kind_of_whoever_asked(identity: IdentityServices) -> None:
    alice = user(identity, "alice")
    for asker, kind in [(alice, CallerKind.USER), (caller_of(identity, ROOT_KEY), CallerKind.ROOT)]:
        credentials = identity.sessions.get_session_token(asker, 900)
        session = caller_of(identity, credentials.access_key_id, credentials.session_token)
        assert session.kind is kind and session.arn == asker.arn
        assert session.expires_at == credentials.expires_at


def test_a_role_session_makes_an_assumed_role_caller_and_chains_as_one(identity: IdentityServices) -> None:
    alice = user(identity, "alice")
    first = role_trusting(identity, "first", alice.arn)
    second = role_trusting(identity, "second", first)
    assumed = identity.sessions.assume_role(alice, first, "build", 3600)
    session = caller_of(identity, assumed.credentials.access_key_id, assumed.credentials.session_token)
    assert session.kind is CallerKind.ASSUMED_ROLE and not session.is_root
    assert session.arn == f"arn:aws:sts::{ACCOUNT}:assumed-role/first/build"
    assert session.aliases == (first,)
    # A role session asking for another role is role chaining: at most one hour.
    with pytest.raises(ValidationError, match="1 hour session limit for roles assumed by role chaining"):
        identity.sessions.assume_role(session, second, "deploy", 7200)
    chained = identity.sessions.assume_role(session, second, "deploy", 900)
    again = caller_of(identity, chained.credentials.access_key_id, chained.credentials.session_token)
    assert again.kind is CallerKind.ASSUMED_ROLE
    assert again.arn == f"arn:aws:sts::{ACCOUNT}:assumed-role/second/deploy"
