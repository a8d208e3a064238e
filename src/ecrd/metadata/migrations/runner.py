"""Runs the Alembic migrations in this package against a live connection, without an alembic.ini."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection

_HERE = Path(__file__).parent


def alembic_config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(_HERE))
    config.attributes["connection"] = connection
    return config


def upgrade_to_head(connection: Connection, defaults: dict[str, str] | None = None) -> None:
    """``defaults``: values a data migration needs from the settings (``default_account_id``, ``default_region``)."""
    config = alembic_config(connection)
    config.attributes.update(defaults or {})
    # "heads": features developed side by side may add migrations on parallel branches of the same parent.
    command.upgrade(config, "heads")
