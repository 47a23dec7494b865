"""The queue: Huey carries "work is waiting" from the receiver to the workers.

SqliteHuey (one file beside the database, no server) by default; RedisHuey
when the config says ``queue = "redis://..."``. The queue is a messenger, not
the record: events and actions live in the store, so a lost or repeated
message costs nothing. A repeated one finds the work done (events are
dispatched once, actions are claimed once), and a lost one is found by the
worker's periodic sweep of the store (:meth:`aftercare.worker.Worker.sweep`).
That is also what makes delayed actions survive any restart: their due time
is a column in the outbox, not a timer in a process.

Two sides. :class:`Enqueuer`, the producer, is what the receiver, the customer
pages, the console and ``sync`` hold: it puts event and action ids in the
queue and says whether the queue answers and how many messages wait.
:class:`TaskQueue`, the consumer's side, is the :class:`~aftercare.worker.Worker`'s:
the same two messages, bound to the functions that do the work, and the
consumer threads that run them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from huey import Huey, RedisHuey, SqliteHuey
from huey.consumer import Consumer

if TYPE_CHECKING:
    from aftercare.app import App

SQLITE_PREFIX = "sqlite:///"
#: The messages' names: fixed, so a producer and a consumer in other processes agree.
DISPATCH_EVENTS = "aftercare.dispatch_events"
EXECUTE_ACTIONS = "aftercare.execute_actions"


def make_huey(url: str, name: str = "aftercare") -> Huey:
    """A Huey for a queue URL: ``sqlite:///path`` or ``redis://host:port/db``."""
    if url.startswith(SQLITE_PREFIX):
        path = Path(url.removeprefix(SQLITE_PREFIX))
        path.parent.mkdir(parents=True, exist_ok=True)
        return SqliteHuey(name=name, filename=str(path), results=False, utc=True)
    if url.startswith(("redis://", "rediss://", "unix://")):
        return RedisHuey(name=name, url=url, results=False, utc=True)
    raise ValueError(f"queue: unsupported URL {url!r} (use sqlite:///path or redis://host:port/db)")


class Enqueuer:
    """The producer: the two messages aftercare sends, "dispatch these events" and "run these
    actions", and the queue's health as a producer sees it (:meth:`ping`, :meth:`backlog`)."""

    def __init__(self, huey: Huey) -> None:
        self.huey = huey
        self._dispatch = huey.task(name=DISPATCH_EVENTS)(self._dispatch_task)
        self._execute = huey.task(name=EXECUTE_ACTIONS)(self._execute_task)

    @classmethod
    def for_app(cls, app: App) -> Enqueuer:
        """A producer on the app's configured queue (``queue``, ``queue_name``)."""
        return cls(make_huey(app.config.queue_url, app.config.queue_name))

    def _dispatch_task(self, event_ids: Sequence[int]) -> None:
        raise RuntimeError("an Enqueuer only enqueues: a Worker's TaskQueue consumes")

    def _execute_task(self, action_ids: Sequence[int]) -> None:
        raise RuntimeError("an Enqueuer only enqueues: a Worker's TaskQueue consumes")

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


class TaskQueue(Enqueuer):
    """The consumer's side (the Worker's): the same messages, bound to the functions that do the work."""

    def __init__(
        self,
        huey: Huey,
        *,
        dispatch_events: Callable[[Sequence[int]], None],
        execute_actions: Callable[[Sequence[int]], None],
    ) -> None:
        self._on_dispatch, self._on_execute = dispatch_events, execute_actions
        self._consumer: Consumer | None = None
        super().__init__(huey)

    def _dispatch_task(self, event_ids: Sequence[int]) -> None:
        self._on_dispatch(event_ids)

    def _execute_task(self, action_ids: Sequence[int]) -> None:
        self._on_execute(action_ids)

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
