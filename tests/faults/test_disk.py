"""SQLite on a full filesystem, while orders arrive.

Where it can (root, or CAP_SYS_ADMIN: this machine, and CI running as root), the store and the
queue live on a real 16 MiB tmpfs (``mount -t tmpfs -o size=16m``) and a filler file takes its
last byte: SQLite meets the real ENOSPC. Where mounting fails (or with
``AFTERCARE_FAULTS_DISK_DOUBLE=1``) a test double stands in; the ``disk`` property in the
test's report and its failure messages say which ran (``tmpfs`` or ``double``). The double: a
``sitecustomize`` module given to the processes sets SQLite's own ``PRAGMA max_page_count`` to
the database's current size while a flag file exists, so SQLite answers the writes that need a
new page with its disk-full error (SQLITE_FULL, "database or disk is full") though the disk has
room.
"""

import contextlib
import os
import subprocess
from pathlib import Path

import pytest

from .conftest import Stack, refused_answers, wait_for

pytestmark = [pytest.mark.faults, pytest.mark.xdist_group("faults")]  # one test process runs them in turn

#: Loaded by every Python process started with this folder on PYTHONPATH (the double).
DOUBLE = '''\
"""Fault suite test double: SQLite "disk full" while $AFTERCARE_TEST_DISK_FULL names a file that exists."""
import os

flag = os.environ.get("AFTERCARE_TEST_DISK_FULL")
if flag:
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    @event.listens_for(Engine, "before_cursor_execute")
    def _full_disk(conn, cursor, statement, parameters, context, executemany):
        if conn.dialect.name != "sqlite":
            return
        raw = conn.connection.dbapi_connection
        if os.path.exists(flag):
            pages = raw.execute("PRAGMA page_count").fetchone()[0]
            raw.execute(f"PRAGMA max_page_count = {max(pages, 1)}")
        else:
            raw.execute("PRAGMA max_page_count = 1073741823")
'''


class RealDisk:
    kind = "tmpfs"

    def __init__(self, folder: Path) -> None:
        self.folder, self.env, self.filler = folder, {}, folder / "filler"

    def fill(self) -> None:
        # suppress() outside open(): closing a file on a full disk fails too
        with contextlib.suppress(OSError), self.filler.open("wb") as out:
            while True:
                out.write(b"\0" * 65536)
                out.flush()
        with contextlib.suppress(OSError), self.filler.open("ab", buffering=0) as out:  # the last block
            while True:
                out.write(b"\0")

    def free(self) -> None:
        self.filler.unlink()


class DoubleDisk(RealDisk):
    kind = "double"

    def __init__(self, folder: Path) -> None:
        super().__init__(folder)
        (folder / "double").mkdir()
        (folder / "double" / "sitecustomize.py").write_text(DOUBLE)
        self.flag = folder / "full"
        path = os.pathsep.join(filter(None, [str(folder / "double"), os.environ.get("PYTHONPATH", "")]))
        self.env = {"PYTHONPATH": path, "AFTERCARE_TEST_DISK_FULL": str(self.flag)}

    def fill(self) -> None:
        self.flag.touch()

    def free(self) -> None:
        self.flag.unlink()


@pytest.fixture
def full_disk(tmp_path):
    disk = tmp_path / "disk"
    disk.mkdir()
    if not os.environ.get("AFTERCARE_FAULTS_DISK_DOUBLE"):
        mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(disk)],
                                 capture_output=True, text=True)  # fmt: skip
        if mounted.returncode == 0:
            try:
                yield RealDisk(disk)
            finally:
                subprocess.run(["umount", "-l", str(disk)], check=False)
            return
    yield DoubleDisk(disk)


def test_sqlite_on_a_full_filesystem_refuses_what_it_cannot_store_and_loses_and_repeats_nothing(
    tmp_path, full_disk, record_property
):
    record_property("disk", full_disk.kind)
    disk = full_disk.folder
    stack = Stack(tmp_path / "stack", database=f"sqlite:///{disk}/aftercare.db", queue=f"sqlite:///{disk}/queue.db",
                  env=full_disk.env)  # fmt: skip
    try:
        stack.serve()
        before = stack.place_orders(2)
        stack.done(before)
        full_disk.fill()
        during = stack.place_orders(6)
        # then free it at once: the platform's retries (about 10 s of them) bring the rest
        wait_for(lambda: refused_answers(stack, during), timeout=10, what=f"a delivery refused ({full_disk.kind})")
        full_disk.free()
        stack.done(before + during, timeout=30, retries_due=True)
        stack.assert_promises(before + during)
    finally:
        stack.close()
