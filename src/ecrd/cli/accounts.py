"""`ecrd account`: the accounts this deployment serves — make one (with its root's first access key), list them.

`ecrd account create` prints the new root key as exactly two lines on standard output,
``AWS_ACCESS_KEY_ID=…`` and ``AWS_SECRET_ACCESS_KEY=…``, so that ``export $(ecrd account create …)`` works;
everything else it says goes to standard error. The secret is shown this once: only its sealed form is stored.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys

from rich.console import Console
from rich.table import Table

from ecrd.errors import EcrdError
from ecrd.metadata.accounts import Account
from ecrd.metadata.store import MetadataStore
from ecrd.services.accounts import AccountService
from ecrd.services.secrets import MasterKeyMismatch, SecretBox, check_master_key

EXIT_REFUSED = 1

# The new account's id is --account-id: the deployment's default account (the setting of that name) is given
# in the configuration file or ECRD_ACCOUNT_ID, as for `ecrd serve`.
_SETTINGS = ("data_dir", "database_url", "region", "master_key", "master_key_file")


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from ecrd.cli.main import add_registry_arguments

    parser = commands.add_parser("account", help="the accounts this deployment serves")
    actions = parser.add_subparsers(dest="action", required=True)
    create = actions.add_parser(
        "create", help="make an account and its root's access key (printed as AWS_ACCESS_KEY_ID=… lines)"
    )
    create.add_argument(
        "--account-id", dest="new_account_id", default=None, help="its 12-digit id (default: a random unused one)"
    )
    create.add_argument("--alias", default=None, help="its IAM account alias (as CreateAccountAlias takes one)")
    add_registry_arguments(create, _SETTINGS)
    create.set_defaults(run=run_create)
    listing = actions.add_parser("list", help="list the accounts: id, alias, created")
    add_registry_arguments(listing, _SETTINGS)
    listing.set_defaults(run=run_list)


def _open_store(args: argparse.Namespace) -> MetadataStore:
    settings = args.settings
    store = MetadataStore(settings.resolved_database_url)
    store.migrate(default_account_id=settings.account_id, default_region=settings.region)
    return store


def run_create(args: argparse.Namespace) -> int:
    settings = args.settings
    store = _open_store(args)
    try:
        secret_box = SecretBox.load(
            data_dir=settings.data_dir,
            master_key=settings.master_key.reveal(),
            master_key_file=settings.master_key_file,
        )
        # The root's secret is sealed with the master key: with another key than the server's, no server could
        # ever open it.
        check_master_key(store, secret_box)
        accounts = AccountService(store, secret_box=secret_box)
        accounts.ensure(settings.account_id)
        account, access_key_id, secret_access_key = accounts.create(args.new_account_id, args.alias)
    except EcrdError as exc:
        print(f"ecrd: {exc.message}", file=sys.stderr)
        return EXIT_REFUSED
    except MasterKeyMismatch as exc:
        print(f"ecrd: {exc}", file=sys.stderr)
        return EXIT_REFUSED
    finally:
        store.dispose()
    named = f" ({account.alias})" if account.alias else ""
    print(
        f"ecrd: account {account.account_id}{named} created; the secret access key of its root is shown only this once",
        file=sys.stderr,
    )
    print(f"AWS_ACCESS_KEY_ID={access_key_id}")
    print(f"AWS_SECRET_ACCESS_KEY={secret_access_key}")
    return 0


def run_list(args: argparse.Namespace) -> int:
    settings = args.settings
    store = _open_store(args)
    try:
        # No secret is sealed here: listing needs no master key.
        accounts = AccountService(store)
        accounts.ensure(settings.account_id)
        listed = accounts.list()
    finally:
        store.dispose()
    _print(listed)
    return 0


def _print(listed: list[Account]) -> None:
    table = Table(box=None, pad_edge=False, header_style="bold")
    for column in ("ACCOUNT ID", "ALIAS", "CREATED"):
        table.add_column(column)
    for account in listed:
        created = dt.datetime.fromtimestamp(account.created_at, tz=dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        table.add_row(account.account_id, account.alias or "-", created)
    Console(highlight=False, soft_wrap=True).print(table)
