"""`aftercare migrate`, and processes starting together on a fresh store: one migrates, under a lock
(PostgreSQL's advisory lock per schema, SQLite's write lock), the others find the schema current.
Services never migrate an older schema: they refuse in one line naming `aftercare migrate`."""

import subprocess
import sys
import time
from types import SimpleNamespace

import pytest
import sqlalchemy as sa
from alembic import command
from click.testing import CliRunner

from aftercare.cli import cli
from aftercare.clock import ManualClock
from aftercare.migrations import alembic_config, head_revision, upgrade
from aftercare.models import SurveyAnswer, SurveyKind, SurveyPurpose
from aftercare.store import Store
from aftercare.testing import START

from ..runtime.test_processes import stop
from .test_store import postgres_schema, store  # noqa: F401  (the fixture)


@pytest.fixture(params=["sqlite", "postgresql"])
def fresh_database(request, tmp_path):
    """The URL of a database without any table: a new SQLite file, or a new PostgreSQL schema."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'state' / 'aftercare.db'}"
        return
    with postgres_schema("m") as (_, url):
        yield url


def write_config(tmp_path, database):
    config = tmp_path / "aftercare.toml"
    config.write_text(f'database = "{database}"\nqueue = "sqlite:///{tmp_path / "state" / "queue.db"}"\n')
    return config


def aftercare(config, *args):
    return subprocess.Popen(
        [sys.executable, "-m", "aftercare", "--config", str(config), *args],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip


def lines_until(process, prefix, timeout=40):
    """What the process printed up to and with its line starting ``prefix`` (it is up then)."""
    deadline = time.monotonic() + timeout
    seen = []
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:  # it ended
            break
        seen.append(line)
        if line.startswith(prefix):
            return "".join(seen)
    raise AssertionError(f"{process.args[4:]} did not print {prefix!r}; it printed:\n{''.join(seen)}")


def run(config, *args):
    """A command in this process (fast; the ones started at once above are real processes)."""
    result = CliRunner().invoke(cli, ["--config", str(config), *args])
    return SimpleNamespace(returncode=result.exit_code, stdout=result.stdout, stderr=result.stderr)


def revision_of(database):
    opened = Store(database, ManualClock(START))
    try:
        return opened.require_current_schema()
    finally:
        opened.close()


def test_four_processes_starting_at_once_on_a_fresh_store_all_come_up_and_one_migrates(tmp_path, fresh_database):
    config = write_config(tmp_path, fresh_database)
    migrates = [aftercare(config, "migrate") for _ in range(2)]
    server = aftercare(config, "serve", "--port", "0")
    worker = aftercare(config, "worker")
    outputs = []
    try:
        outputs.append(lines_until(server, "aftercare serve: listening on"))
        outputs.append(lines_until(worker, "aftercare worker: consuming"))
        for process in migrates:
            out, _ = process.communicate(timeout=40)
            assert process.returncode == 0, out
            assert out.splitlines()[-1].startswith(f"schema at revision {head_revision()}"), out
            outputs.append(out)
    finally:
        for process in (server, worker):
            outputs.append(stop(process))
        for process in migrates:
            process.kill() if process.poll() is None else None
    assert server.returncode == 0 and worker.returncode == 0, outputs
    migrated = [out for out in outputs if "applied 0001 " in out or "created the store's schema" in out]
    assert len(migrated) == 1, outputs
    assert revision_of(fresh_database) == head_revision()


def test_migrate_on_a_current_schema_changes_nothing_and_exits_0(tmp_path):
    config = write_config(tmp_path, f"sqlite:///{tmp_path / 'aftercare.db'}")
    first = run(config, "migrate")
    assert first.returncode == 0, first.stderr
    assert first.stdout.splitlines()[0].startswith("applied 0001 ")
    again = run(config, "migrate")
    current = f"schema at revision {head_revision()} (already current)\n"
    assert (again.returncode, again.stdout, again.stderr) == (0, current, "")


def test_serve_refuses_an_older_schema_in_one_line_naming_aftercare_migrate(tmp_path):
    database = f"sqlite:///{tmp_path / 'aftercare.db'}"
    engine = sa.create_engine(database)
    with engine.begin() as conn:
        upgrade(conn, "0007")
    engine.dispose()
    config = write_config(tmp_path, database)
    refused = run(config, "serve", "--port", "0")
    assert refused.returncode == 2
    assert refused.stderr.splitlines() == [
        f"error: database: the schema is at revision 0007, this aftercare needs {head_revision()}:"
        " run `aftercare migrate`"
    ]
    listed = run(config, "events", "list")  # the one-shot commands refuse it too (they only set up a fresh one)
    assert (listed.returncode, listed.stderr) == (2, refused.stderr)
    migrated = run(config, "migrate")
    assert migrated.returncode == 0 and migrated.stdout.startswith("applied 0009 "), migrated.stdout
    assert "applied 0001 " not in migrated.stdout
    assert revision_of(database) == head_revision()


def test_a_schema_from_a_newer_aftercare_is_refused_by_migrate_and_the_services(tmp_path):
    database = f"sqlite:///{tmp_path / 'aftercare.db'}"
    config = write_config(tmp_path, database)
    assert run(config, "migrate").returncode == 0
    engine = sa.create_engine(database)
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE alembic_version SET version_num = '9999'"))
    engine.dispose()
    for args in (["migrate"], ["worker"]):
        refused = run(config, *args)
        assert refused.returncode == 2, args
        [line] = refused.stderr.splitlines()
        assert line.startswith("error: database: the schema is at revision 9999, which this aftercare does not know")
        assert line.endswith("upgrade aftercare")


def test_migrate_with_the_store_unreachable_is_one_line_naming_the_database_and_exit_2(tmp_path):
    config = tmp_path / "aftercare.toml"
    config.write_text('database = "postgresql+psycopg://aftercare:hunter2@127.0.0.1:1/x"\n')
    done = run(config, "migrate")
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        "error: database: cannot open postgresql+psycopg://aftercare:***@127.0.0.1:1/x: Connection refused"
    ]
    assert "hunter2" not in done.stdout + done.stderr


def test_0013_gives_survey_answers_a_purpose_and_downgrades(store):  # noqa: F811
    with store.transaction() as conn:
        upgrade(conn, "0012")
        columns = ("shop_id", "order_id", "email", "kind", "score", "comment", "source", "answered_at", "updated_at")
        answers = sa.table("survey_answers", *(sa.column(c) for c in columns))
        conn.execute(sa.insert(answers), [  # the columns 0012 has: no purpose
            {"shop_id": "test", "order_id": order, "email": "ana@example.com", "kind": "nps", "score": score,
             "comment": "", "source": "survey page", "answered_at": START, "updated_at": START}
            for order, score in (("1", 9), ("2", 4))
        ])  # fmt: skip
    store.upgrade()
    assert [(a.order_id, a.answer.purpose, a.answer.score) for a in store.survey_answers("test")] == [
        ("1", SurveyPurpose.ORDER, 9), ("2", SurveyPurpose.ORDER, 4)]  # fmt: skip
    relationship = SurveyAnswer(SurveyKind.NPS, 2, START, purpose=SurveyPurpose.RELATIONSHIP)
    with store.transaction() as conn:  # the same order and kind, another purpose: a second answer
        assert store.record_survey_answer(conn, shop_id="test", order_id="1", email="ana@example.com",
                                          answer=relationship, source="survey page")  # fmt: skip
    assert len(store.survey_answers("test")) == 3

    with store.transaction() as conn:
        command.downgrade(alembic_config(conn), "0012")
        inspector = sa.inspect(conn)
        assert "purpose" not in {c["name"] for c in inspector.get_columns("survey_answers")}
        unique = {u["name"]: u["column_names"] for u in inspector.get_unique_constraints("survey_answers")}
        assert unique == {"uq_survey_answers_shop_order_kind": ["shop_id", "order_id", "kind"]}
        kept = conn.execute(sa.select(answers.c.order_id, answers.c.score).order_by(answers.c.order_id)).all()
        assert [tuple(row) for row in kept] == [("1", 9), ("2", 4)]  # the relationship answer could not stay
    store.upgrade()
    assert store.survey_answer("test", "1", SurveyKind.NPS).answer.score == 9
    assert store.survey_answer("test", "1", SurveyKind.NPS, SurveyPurpose.RELATIONSHIP) is None
