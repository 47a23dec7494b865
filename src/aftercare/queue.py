"""The queue: Huey carries "work is waiting" from the receiver to the workers.

SqliteHuey (one file beside the database, no server) by default; RedisHuey
when the config says ``queue = "redis://..."``. The queue is a messenger, not
the record: events and actions live in the store, so a lost or repeated
message costs nothing. A repeated one finds the work done (events are
dispatched once, actions are claimed once), and a lost one is found by the
worker's periodic sweep of the store (:meth:`aftercare.worker.Worker.sweep`).
That is also what makes delayed actions survive any restart: their due time
is a column in the outbox, not a timer in a process.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from huey import Huey, RedisHuey, SqliteHuey
from huey.consumer import Consumer

SQLITE_PREFIX = "sqlite:///"


def make_huey(url: str, name: str = "aftercare") -> Huey:
    """A Huey for a queue URL: ``sqlite:///path`` or ``redis://host:port/db``."""
    if url.startswith(SQLITE_PREFIX):
        path = Path(url.removeprefix(SQLITE_PREFIX))
        path.parent.mkdir(parents=True, exist_ok=True)
        return SqliteHuey(name=name, filename=str(path), results=False, utc=True)
    if url.startswith(("redis://", "rediss://", "unix://")):
        return RedisHuey(name=name, url=url, results=False, utc=True)
    raise ValueError(f"queue: unsupported URL {url!r} (use sqlite:///path or redis://host:port/db)")


class TaskQueue:
    """The two messages aftercare sends: "dispatch these events" and "run these actions"."""

    def __init__(
        self,
        huey: Huey,
        *,
        dispatch_events: Callable[[Sequence[int]], None],
        execute_actions: Callable[[Sequence[int]], None],
    ) -> None:
        self.huey = huey
        self._consumer: Consumer | None = None
        # Names are fixed so a producer and a consumer in other processes agree.
        self._dispatch = huey.task(name="aftercare.dispatch_events")(dispatch_events)
        self._execute = huey.task(name="aftercare.execute_actions")(execute_actions)

    def dispatch_events(self, event_ids: Sequence[int]) -> None:
        if event_ids:
            self._dispatch(list(event_ids))

    def execute_actions(self, action_ids: Sequence[int]) -> None:
        if action_ids:
            self._execute(list(action_ids))

    def backlog(self) -> int:
        """Messages waiting in the queue."""
        return self.huey.pending_count()

    def ping(self) -> None:
        """Raise if the queue's storage cannot be reached."""
        self.huey.pending_count()

    def consumer(self, workers: int, *, max_delay: float = 0.5) -> Consumer:
        """Worker threads; SIGTERM lets the tasks in flight finish. An idle thread looks for
        work again after 0.05 s, backing off to ``max_delay``."""
        self._consumer = self.huey.create_consumer(
            workers=workers,
            worker_type="thread",
            periodic=False,
            initial_delay=min(0.05, max_delay),
            max_delay=max_delay,
            graceful_signal="TERM",
            check_worker_health=True,
        )
        return self._consumer

    def stopping(self) -> bool:
        """True once this process's consumer was told to stop: long-running tasks should wrap up."""
        return self._consumer is not None and self._consumer.stop_flag.is_set()
