"""How ``serve`` and ``worker`` log: text lines (the default) or one JSON object a line.

``log_format = "json"`` (top-level key of the config) is for a log pipeline
(Loki, Elasticsearch, journald's JSON export): each line has ``time`` (UTC,
ISO 8601), ``level``, ``logger`` and ``message``, plus the fields the log
call gave in ``extra=`` (:data:`FIELDS`: shop, order, plugin, action,
outcome, duration_ms), and ``exception`` with the traceback when there is
one. The text format prints the message only, as it always did: the same
calls write both, so neither loses a word of the other.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"
#: What a log call may pass in ``extra=`` for the JSON lines; bounded like the metrics' labels
#: plus the order's platform id (logs may name an order, never a customer's address).
FIELDS = ("shop", "order", "plugin", "action", "outcome", "duration_ms", "event", "kind", "status")
LEVELS = ("debug", "info", "warning", "error")
HANDLER_NAME = "aftercare"


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in FIELDS:
            if name in record.__dict__:
                line[name] = record.__dict__[name]
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str, ensure_ascii=False)


def configure(log_format: str = "text", level: str = "info") -> None:
    """Log to stderr in ``log_format`` from ``level`` up (this process's root logger)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT))
    handler.set_name(HANDLER_NAME)
    root = logging.getLogger()
    for old in [h for h in root.handlers if h.get_name() == HANDLER_NAME]:  # ours from before; others stay
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    # Huey logs every task at INFO; our own lines say what happened.
    logging.getLogger("huey").setLevel(logging.WARNING)
    logging.getLogger("alembic").setLevel(logging.WARNING)
