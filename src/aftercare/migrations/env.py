"""Alembic environment: always run on the connection aftercare hands in."""

from alembic import context

from aftercare.mail import suppression  # noqa: F401  (its table is part of the schema)
from aftercare.store import metadata

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=connection.dialect.name == "sqlite",  # SQLite alters tables by copying
)
with context.begin_transaction():
    context.run_migrations()
