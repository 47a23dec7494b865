"""Alembic environment: always run on the connection aftercare hands in."""

from alembic import context

from aftercare.store import metadata

connection = context.config.attributes["connection"]
on_step = context.config.attributes.get("on_step")


def report_step(*, step, **_ignored) -> None:  # noqa: ANN001 - alembic's MigrationInfo
    """Tell ``on_step`` which revision was just applied, e.g. ``0002 rejected deliveries``."""
    if on_step is not None and step.is_upgrade:
        on_step(f"{step.up_revision_id} {(step.up_revision.doc or '').strip()}".strip())


context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=connection.dialect.name == "sqlite",  # SQLite alters tables by copying
    on_version_apply=report_step,
)
with context.begin_transaction():
    context.run_migrations()
