"""SQLite on a full filesystem: a real 16 MiB tmpfs (``mount -t tmpfs``) holds the store and the
queue, and a filler file takes its last byte while orders arrive. Where the filesystem cannot be
mounted (not root, no CAP_SYS_ADMIN) the scenario is skipped, saying so: it is not replaced by a
double of the error, so what it proves is always the real ENOSPC path of SQLite."""

import contextlib
import subprocess

import pytest

from .conftest import Stack, refused_answers, wait_for

pytestmark = pytest.mark.faults


@pytest.fixture
def small_disk(tmp_path):
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(disk)],
                             capture_output=True, text=True)  # fmt: skip
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {mounted.stderr.strip() or mounted.returncode}")
    try:
        yield disk
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)


def fill(disk):
    """Take every free byte of ``disk``; return the filler file."""
    filler = disk / "filler"
    # suppress() outside open(): closing a file on a full disk fails too
    with contextlib.suppress(OSError), filler.open("wb") as out:
        while True:
            out.write(b"\0" * 65536)
            out.flush()
    with contextlib.suppress(OSError), filler.open("ab", buffering=0) as out:  # the last partial block
        while True:
            out.write(b"\0")
            out.flush()
    return filler


def test_sqlite_on_a_full_filesystem_refuses_what_it_cannot_store_and_loses_and_repeats_nothing(tmp_path, small_disk):
    stack = Stack(tmp_path / "stack", database=f"sqlite:///{small_disk}/aftercare.db",
                  queue=f"sqlite:///{small_disk}/queue.db")  # fmt: skip
    try:
        stack.serve()
        before = stack.place_orders(2)
        stack.done(before)
        filler = fill(small_disk)
        during = stack.place_orders(6)
        wait_for(lambda: refused_answers(stack, during), what="a delivery refused on the full disk")
        filler.unlink()
        stack.done(before + during, timeout=30, retries_due=True)
        stack.assert_promises(before + during)
    finally:
        stack.close()
