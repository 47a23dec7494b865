"""Reason codes: what kind of reason an action carries, beside its text.

``actions.reason_code`` (a ``ReasonCode`` value, "" for no reason) is what code
decides by: a dependency wait, a dry-run drop, a frequency cap. The text in
``reason`` stays for people. Rows written before get their code from the
text's prefix, as the code of this revision wrote it; a dropped action whose
text matches none was withdrawn by its plugin (``ctx.cancel``, whose text is
the plugin's own), a failed one failed on the platform or in the channel.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-02
"""

import re

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

#: (LIKE pattern on the reason, the state it applies to or "" for any, code), first match wins.
#: A claimed (running) action keeps the reason it was due with, so most apply to any state.
#: Written out here, not imported: a revision keeps meaning what it meant when it was written.
PREFIXES = (
    ("dry run%", "", "dry_run"),
    ("waiting for %", "", "waiting_for"),
    ("depends on %", "dropped", "dependency_failed"),
    ("fire-time check:%", "", "fire_time_check"),
    ("suppressed: unsubscribed % (marketing consent withdrawn)", "", "no_consent"),
    ("suppressed:%", "", "suppressed"),
    ("frequency cap:%", "", "frequency_cap"),
    ("quiet hours %", "", "quiet_hours"),
    ("rescheduled by %", "", "rescheduled"),
    ("attempt % failed: %", "", "retry"),
    ("database error: %", "", "database_error"),
    ("no channel is registered for %", "failed", "no_channel"),
    ("sent earlier, not resent", "done", "done_earlier"),
    ("done earlier, not run again", "done", "done_earlier"),
    ("sent, unconfirmed:%", "done", "unconfirmed"),
    ("released: its worker stopped mid-run", "", "released"),
    ("retried by %", "", "retried"),
    ("customer erased", "dropped", "erased"),
)

#: ``ctx.cancel``'s own text when the plugin gives none: "cancelled by PLUGIN in HOOK".
_PLUGIN_CANCEL = re.compile(r"cancelled by \S+ in \S+")
#: A channel's crash is kept as "ExceptionName: message".
_CRASH = re.compile(r"[A-Za-z_][\w.]*(Error|Exception|Exit|Interrupt|Warning): ")


def _leftover_code(state: str, reason: str) -> str:
    """The code of a reason no prefix matched."""
    if state == "dropped":
        if reason.startswith("cancelled by ") and not _PLUGIN_CANCEL.fullmatch(reason):
            return "cancelled"  # by hand: the CLI ("cancelled by USER[: why]") or the console
        return "withdrawn"
    if state == "failed":
        return "channel_error" if _CRASH.match(reason) else "platform_error"
    return "other"


def upgrade() -> None:
    with op.batch_alter_table("actions") as batch:
        batch.add_column(sa.Column("reason_code", sa.String(32), nullable=False, server_default=""))
    actions = sa.table(
        "actions", sa.column("id", sa.Integer), sa.column("state"), sa.column("reason"), sa.column("reason_code")
    )
    conn = op.get_bind()
    unset = sa.and_(actions.c.reason_code == "", actions.c.reason != "")
    for pattern, state, code in PREFIXES:
        where = [unset, actions.c.reason.like(pattern)]
        if state:
            where.append(actions.c.state == state)
        conn.execute(sa.update(actions).where(*where).values(reason_code=code))
    by_code: dict[str, list[int]] = {}
    for row in conn.execute(sa.select(actions.c.id, actions.c.state, actions.c.reason).where(unset)):
        by_code.setdefault(_leftover_code(row.state, row.reason), []).append(row.id)
    for code, ids in by_code.items():
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            conn.execute(sa.update(actions).where(actions.c.id.in_(chunk)).values(reason_code=code))


def downgrade() -> None:
    with op.batch_alter_table("actions") as batch:
        batch.drop_column("reason_code")
