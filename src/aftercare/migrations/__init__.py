"""Schema migrations (Alembic). ``upgrade(conn)`` brings a database to the head revision.

Add a revision for every schema change to :mod:`aftercare.store`; a test
checks that the migrated schema and the store's tables agree.
"""

from __future__ import annotations

from alembic import command
from alembic.config import Config
from sqlalchemy.engine import Connection

SCRIPT_LOCATION = "aftercare:migrations"


def alembic_config(conn: Connection) -> Config:
    config = Config()
    config.set_main_option("script_location", SCRIPT_LOCATION)
    config.attributes["connection"] = conn
    return config


def upgrade(conn: Connection, revision: str = "head") -> None:
    command.upgrade(alembic_config(conn), revision)
