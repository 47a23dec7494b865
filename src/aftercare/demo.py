"""``aftercare demo``: a week of a Shopify and a WooCommerce shop, in one process, in seconds.

The week is played on :mod:`aftercare.sandbox.deployment` (the same wiring
the end-to-end tests use): two sandbox shops, the receiver, the worker and a
SQLite store on 127.0.0.1, one manual clock for all. :func:`summarise` reads
what happened from the store, :func:`print_summary` says it, and
:func:`run_demo` does it all, start to end.

The week ends this morning (07:00 UTC, today or yesterday): the dates the
mails and the coupons show read as a merchant would expect, and the
commands the demo prints afterwards (``report``, ``actions list``,
``simulate``, on the config it writes beside its store) find the week in
their default periods.
"""

from __future__ import annotations

import contextlib
import json
import logging
import secrets
import shutil
import signal
import threading
import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from datetime import time as day_time
from pathlib import Path
from typing import Any

from pydantic import SecretStr
from rich.console import Console
from rich.table import Table

from aftercare.actions import ActionKind, ActionState, ReasonCode
from aftercare.clock import ManualClock
from aftercare.config import Config
from aftercare.console.accounts import add_user
from aftercare.report import shop_report
from aftercare.sandbox.deployment import SHOPS as SHOP_IDS
from aftercare.sandbox.deployment import Deployment, deployment, read_mail, run_week

#: The console account `--keep-serving` creates (with a fresh random password each run).
DEMO_USER = "demo"
#: The config the demo writes beside its store, for the commands it prints to explore the week.
CONFIG_FILE = "aftercare.toml"
#: The hour of the day (UTC) the demo's week starts and ends.
START_HOUR = day_time(7, 0)


def week_start(now: datetime, days: int) -> datetime:
    """When a week of ``days`` days that ends at the last 07:00 UTC up to ``now`` begins."""
    end = datetime.combine(now.astimezone(UTC).date(), START_HOUR, tzinfo=UTC)
    if end > now:
        end -= timedelta(days=1)
    return end - timedelta(days=days)


# -- what happened ------------------------------------------------------------------------


@dataclass
class Summary:
    events: dict[tuple[str, str], int]  # (kind, platform) -> count
    event_orders: dict[tuple[str, str], int]  # (kind, platform) -> distinct orders
    actions: dict[tuple[str, str], int]  # (plugin, state) -> count
    drop_reasons: dict[str, int]
    coupons: dict[str, list[dict[str, Any]]]  # shop id -> coupons on the sandbox
    surveys: dict[str, dict[str, Any]]  # shop id -> figures
    mails: int
    outbox: Path
    birthdays: list[tuple[str, str, str]]  # (shop id, to, subject) of each birthday mail
    texts: list[tuple[str, str, str]]  # (shop id, to, body) of each text Twilio accepted, oldest first


def summarise(running: Deployment, since: datetime) -> Summary:
    app = running.app
    platform_of = {shop_id: shop.config.platform for shop_id, shop in app.shops.items()}
    events: Counter[tuple[str, str]] = Counter()
    orders: Counter[tuple[str, str]] = Counter()
    for (shop_id, kind), (count, distinct_orders) in app.store.count_events_by_shop_and_kind().items():
        events[(kind, platform_of.get(shop_id, shop_id))] += count
        orders[(kind, platform_of.get(shop_id, shop_id))] += distinct_orders
    actions: Counter[tuple[str, str]] = Counter()
    reasons: Counter[str] = Counter()
    for (plugin, state, _reason), count in app.store.count_actions_by_plugin_state_and_reason().items():
        actions[(plugin, state)] += count
    for code, count in app.store.count_dropped_actions_by_reason_code().items():
        reasons[_reason_kind(code)] += count
    until = app.now() + timedelta(seconds=1)
    surveys = {}
    for shop_id in app.shops:
        report = shop_report(app.store, shop_id, since, until)
        scores = Counter(a.answer.score for a in app.store.survey_answers(shop_id) if a.answer.kind.value == "csat")
        surveys[shop_id] = {
            "answers": report.csat_answers,
            "csat": report.csat,
            "nps": report.nps,
            "nps_answers": report.nps_answers,
            "scores": dict(sorted(scores.items())),
            "relationship_nps": report.relationship_nps,
            "relationship_nps_answers": report.relationship_nps_answers,
        }
    mails = sorted(running.outbox.glob("*.eml")) if running.outbox.is_dir() else []
    birthdays = [(m.shop_id, m.to, m.subject) for m in map(read_mail, mails) if "/greetings/" in m.key]
    return Summary(
        events=dict(events),
        event_orders=dict(orders),
        actions=dict(actions),
        drop_reasons=dict(reasons.most_common()),
        coupons={shop_id: shop.coupons() for shop_id, shop in running.sandboxes.items()},
        surveys=surveys,
        mails=len(mails),
        outbox=running.outbox,
        birthdays=birthdays,
        texts=_texts(running),
    )


def _texts(running: Deployment) -> list[tuple[str, str, str]]:
    """The texts at the Twilio sandbox, each with the shop whose action sent it (by message SID)."""
    if running.twilio is None:
        return []
    texting = (ActionKind.SEND_SMS, ActionKind.SEND_WHATSAPP)
    shop_of = {a.result.get("sid"): a.shop_id for a in running.app.store.every_action()
               if a.kind in texting and a.state is ActionState.DONE}  # fmt: skip
    return [(shop_of.get(m.sid, ""), m.to, m.body or m.content_sid) for m in running.twilio.messages]


def _reason_kind(code: ReasonCode) -> str:
    """A drop reason without its particulars (addresses, counts, ids), for counting: its code."""
    return code.value.replace("_", " ") or "(no reason given)"


def print_summary(summary: Summary, console: Console) -> None:
    platforms = sorted({platform for _kind, platform in summary.events})
    table = Table(
        title="Events stored (webhooks and customer pages)",
        caption="Shopify reports a delivery with two topics: both are stored, the plugins act once.",
    )
    table.add_column("event")
    for platform in platforms:
        table.add_column(f"{platform}: events", justify="right")
        table.add_column("orders", justify="right")
    for kind in sorted({kind for kind, _p in summary.events}):
        cells = [str(getattr(summary, name).get((kind, p), 0)) for p in platforms
                 for name in ("events", "event_orders")]  # fmt: skip
        table.add_row(kind, *cells)
    console.print(table)

    states = [s.value for s in ActionState if any(state == s.value for _p, state in summary.actions)]
    table = Table(title="Actions per plugin")
    table.add_column("plugin")
    for state in states:
        table.add_column(state, justify="right")
    for plugin in sorted({plugin for plugin, _s in summary.actions}):
        table.add_row(plugin, *(str(summary.actions.get((plugin, s), 0)) for s in states))
    console.print(table)

    if summary.drop_reasons:
        table = Table(title="Why actions were dropped")
        table.add_column("reason")
        table.add_column("actions", justify="right")
        for reason, count in summary.drop_reasons.items():
            table.add_row(reason, str(count))
        console.print(table)

    table = Table(title="Coupons on the sandbox shops")
    for column in ("shop", "code", "discount", "for", "valid until"):
        table.add_column(column, no_wrap=column in ("code", "valid until"))
    for shop_id, coupons in summary.coupons.items():
        for coupon in coupons:
            unit = "%" if coupon["kind"].startswith("percent") else ""
            until = (coupon["ends_at"] or "")[:10]
            table.add_row(shop_id, coupon["code"], f"{coupon['amount']}{unit}", ", ".join(coupon["customers"]), until)
    console.print(table)

    table = Table(
        title="Survey answers from simulated customers",
        caption="Relationship NPS (% 9-10 minus % 0-6): signed-up customers asked about the shop, apart from the CSAT.",
    )
    for column in ("shop", "answers", "CSAT (% 4-5)", "scores given", "relationship NPS"):
        table.add_column(column)
    for shop_id, figures in summary.surveys.items():
        csat = "-" if figures["csat"] is None else f"{figures['csat']:g}%"
        scores = ", ".join(f"{score}: {n}" for score, n in figures["scores"].items()) or "-"
        answered = figures["relationship_nps_answers"]
        relationship = "-" if figures["relationship_nps"] is None else f"{figures['relationship_nps']:+g}"
        answers = f"{answered} answer" if answered == 1 else f"{answered} answers"
        table.add_row(shop_id, str(figures["answers"]), csat, scores, f"{relationship} ({answers})")
    console.print(table)

    if summary.birthdays:
        table = Table(title="Birthday greetings (customers who signed up with their birthday)")
        for column in ("shop", "to", "subject"):
            table.add_column(column)
        for row in summary.birthdays:
            table.add_row(*row)
        console.print(table)

    if summary.texts:
        table = Table(title=f"Texts sent to the Twilio sandbox ({len(summary.texts)})")
        widths = [max(len(row[n]) for row in summary.texts) for n in (0, 1)]
        for column, width in zip(("shop", "to"), widths, strict=True):  # whole; the text gives way
            table.add_column(column, no_wrap=True, min_width=width)
        rest = console.width - sum(widths) - 10  # the borders and the cells' padding
        table.add_column("text", no_wrap=True, overflow="ellipsis", max_width=max(20, rest))
        for row in sorted(summary.texts, key=lambda row: row[0]):
            table.add_row(*row)
        console.print(table)
    console.print(f"{summary.mails} mails written as .eml files to [bold]{summary.outbox}[/bold]")


# -- the demo, start to end ------------------------------------------------------------------


def run_demo(folder: Path, orders_per_shop: int, days: int, seed: int, keep_serving: bool) -> None:
    """``aftercare demo``: play the week in ``folder`` (emptied first), print the summary, and with
    ``keep_serving`` leave everything up until Ctrl-C."""
    console = Console()
    logging.getLogger("aftercare").setLevel(logging.ERROR)  # the summary says what happened
    logging.getLogger("huey").setLevel(logging.ERROR)
    if folder.exists():
        shutil.rmtree(folder)
    started = time.monotonic()
    starting = console.status("starting two sandbox shops, the receiver and the worker...")
    clock = ManualClock(week_start(datetime.now(UTC), days))
    with starting as status, deployment(folder.resolve(), clock=clock, console=keep_serving) as running:
        since = running.clock.now()
        config_path = write_config(running.app.config, folder / CONFIG_FILE)

        def progress(now: datetime) -> None:
            status.update(f"simulating {now:%a %d %b %H:%M} UTC...")

        week = run_week(running, orders_per_shop=orders_per_shop, days=days, seed=seed, progress=progress)
        running.finish()
        summary = summarise(running, since)
        status.stop()
        console.print(
            f"[bold]aftercare demo[/bold]: {len(week.orders)} orders on 2 shops over {days} simulated days, "
            f"{len(week.customers.answers)} survey answers and {len(week.customers.optins)} newsletter "
            f"confirmations by simulated customers, in {time.monotonic() - started:.1f}s"
        )
        print_summary(summary, console)
        console.print(f"Store: {folder / 'aftercare.db'} (SQLite). Open any .eml file with a mail client.")
        print_next_steps(config_path, console)
        if keep_serving:
            keep_serving_until_interrupted(running, console)


def print_next_steps(config_path: Path, console: Console) -> None:
    """The commands that explore the week from its config (they read the store, call no shop)."""
    shop_id = next(iter(SHOP_IDS))
    console.print(f"\nExplore the week with its config, {config_path}:")
    for command in ("report", "actions list", f"simulate --shop {shop_id} --days 30"):
        console.print(f"  aftercare -c {config_path} {command}", markup=False, highlight=False)


def write_config(config: Config, path: Path) -> Path:
    """``config`` as the TOML file a merchant would write (secrets included: the demo's own, made
    for this run), so that the commands run on the demo's store read the same shops and plugins."""
    data = config.model_dump(exclude_unset=True, exclude={"base_dir"})
    path.write_text("# Written by `aftercare demo` for this run's store; the sandbox shops are gone.\n"
                    + _toml(_plain(data)), encoding="utf-8")  # fmt: skip
    return path


def _plain(value: Any) -> Any:
    if isinstance(value, SecretStr):
        return value.get_secret_value()
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items() if v is not None}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    return value


def _toml(table: dict[str, Any], prefix: str = "") -> str:
    """A small TOML writer for a config's data: scalars, lists, tables and arrays of tables."""
    lines, tables = [], []
    for key, value in table.items():
        name = f"{prefix}.{_key(key)}" if prefix else _key(key)
        if isinstance(value, dict):  # a table of tables only needs its subtables' headers
            header = "" if value and all(isinstance(v, dict) for v in value.values()) else f"\n[{name}]\n"
            tables.append(header + _toml(value, name))
        elif isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            tables.extend(f"\n[[{name}]]\n" + _toml(v, name) for v in value)
        else:
            lines.append(f"{_key(key)} = {_value(value)}\n")
    return "".join(lines) + "".join(tables)


def _key(key: str) -> str:
    return key if key.replace("_", "").replace("-", "").isalnum() else json.dumps(key)


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{_key(k)} = {_value(v)}" for k, v in value.items()) + " }"
    if isinstance(value, day_time):
        return value.isoformat()
    return json.dumps(str(value), ensure_ascii=False)


def keep_serving_until_interrupted(running: Deployment, console: Console) -> None:
    """Leave the demo's shops, receiver and console up, with a console user, until Ctrl-C."""
    password = secrets.token_urlsafe(12)
    add_user(running.app.store, DEMO_USER, password, ("all",), running.app.now())
    console.print(
        f"\nThe console is at [bold]{running.url}/console[/bold]: user [bold]{DEMO_USER}[/bold], "
        f"password [bold]{password}[/bold]. Ctrl-C stops everything."
    )
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda signum, frame: stop.set())
    with contextlib.suppress(KeyboardInterrupt):
        stop.wait()
