"""Schema migrations (Alembic). ``upgrade(conn)`` brings a database to the head revision.

Add a revision for every schema change to :mod:`aftercare.store`; a test
checks that the migrated schema and the store's tables agree. Processes do not
call this directly: :meth:`aftercare.store.Store.migrate` runs it under the
migration lock.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

from alembic import command
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy.engine import Connection

SCRIPT_LOCATION = "aftercare:migrations"


def alembic_config(conn: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", SCRIPT_LOCATION)
    config.attributes["connection"] = conn
    return config


def upgrade(conn: Connection, revision: str = "head", on_step: Callable[[str], None] | None = None) -> None:
    """Apply the revisions up to ``revision``; ``on_step`` hears of each one applied ("0002 rejected deliveries")."""
    config = alembic_config(conn)
    config.attributes["on_step"] = on_step
    command.upgrade(config, revision)


def current_revision(conn: Connection) -> str | None:
    """The database's revision; None for a database without aftercare's schema."""
    return MigrationContext.configure(conn).get_current_revision()


@functools.cache
def _scripts() -> ScriptDirectory:
    return ScriptDirectory.from_config(alembic_config())


def head_revision() -> str:
    """The revision this aftercare's code expects."""
    head = _scripts().get_current_head()
    assert head is not None, "no migrations"
    return head


def known_revision(revision: str) -> bool:
    """Whether this aftercare has the revision (a newer aftercare's are unknown to it)."""
    try:
        return _scripts().get_revision(revision) is not None
    except CommandError:
        return False
