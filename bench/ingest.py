"""Webhook ingest: `aftercare serve` against a floor, under concurrent signed webhooks.

The floor is a bare Starlette endpoint that only checks the HMAC of the body
and answers 200. Both are driven by wrk (Debian package `wrk`) with a 10 kB
Shopify order, signed as Shopify signs it. A Shopify event's key is its order
and transition (``order:ID:paid``), so the same order paid twice is one event:
each request posts another of ``--orders`` copies of the order that differ only
in its id and its customer, with new webhook and event ids, so each is a new
event to store until the pool is used up. After the run the bench counts the
events in the store: every acknowledged new order must be there. Everything
listens on 127.0.0.1 only.

    .venv/bin/python bench/ingest.py [--seconds 10] [--connections 50] [--orders 20000]
        [--receivers 1] [--database sqlite|postgresql] [--worker-processes 1] [--burst N]

``--database postgresql``: the store on PostgreSQL (127.0.0.1:5432, database
``test``, a throwaway schema) and the queue on Redis (127.0.0.1:6379), the
scale-out stack. ``--worker-processes 2``: an ``aftercare worker`` beside
serve's own. ``--burst N``: a flash sale instead of the floor: N webhooks as
fast as wrk posts them, with the coupon plugin mailing each new customer, then
the time until every event is dispatched and every mail is in the outbox.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from contextlib import contextmanager
from pathlib import Path

import httpx
import sqlalchemy as sa

REPO = Path(__file__).resolve().parents[1]
ORDER = REPO.parent / "shared" / "fixtures" / "shopify" / "orders_create_paid_thirdparty_yellowai.json"
SECRET = "bench-secret"
DOMAIN = "bench-shop.myshopify.com"

WRK_SCRIPT = """
counter = 0  -- a global: done() reads each thread's with thread:get
local answered = 0
local threads = 0
local all_threads = {{}}
function setup(thread)
  threads = threads + 1
  thread:set("tid", threads)
  table.insert(all_threads, thread)
end
function init(args)
  local file = io.open("{bodies}", "rb")
  local all = file:read("*all")
  file:close()
  pool = {{}}
  for signature, offset, length in io.open("{index}"):read("*all"):gmatch("(%S+) (%d+) (%d+)") do
    pool[#pool + 1] = {{signature, all:sub(offset + 1, offset + length)}}
  end
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
  wrk.headers["X-Shopify-Topic"] = "orders/paid"
  wrk.headers["X-Shopify-Shop-Domain"] = "{domain}"
  wrk.headers["X-Shopify-API-Version"] = "2026-10"
end
function request()
  counter = counter + 1
  -- The two threads take turns through the pool: thread 1 the odd entries, thread 2 the even.
  local entry = pool[((counter - 1) * 2 + tid - 1) % #pool + 1]
  local id = tid .. "-" .. counter .. "-" .. math.random(1, 1000000000)
  wrk.headers["X-Shopify-Hmac-Sha256"] = entry[1]
  wrk.headers["X-Shopify-Webhook-Id"] = "w-" .. id
  wrk.headers["X-Shopify-Event-Id"] = "e-" .. id
  return wrk.format(nil, nil, nil, entry[2])
end
function response(status, headers, body)
  answered = answered + 1
  if {limit} > 0 and answered >= {limit} then wrk.thread:stop() end
end
function done(summary, latency, requests)
  for _, thread in ipairs(all_threads) do io.write("posted-by-thread ", thread:get("counter"), "\\n") end
end
"""

FLOOR_APP = """
import base64, hashlib, hmac, sys
import uvicorn
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route

SECRET = sys.argv[2].encode()

async def webhook(request):
    body = await request.body()
    given = request.headers.get("x-shopify-hmac-sha256", "")
    expected = base64.b64encode(hmac.new(SECRET, body, hashlib.sha256).digest()).decode()
    if not hmac.compare_digest(given, expected):
        return PlainTextResponse("bad signature", status_code=401)
    return PlainTextResponse("ok")

app = Starlette(routes=[Route("/webhooks/{shop_id}", webhook, methods=["POST"])])
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning", access_log=False)
"""


POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
REDIS = "redis://127.0.0.1:6379/0"
#: The flash sale's plugin: a coupon and its mail for each new customer's paid order. The shop is
#: not a production one, so the actions are recorded in the outbox and never executed (no call
#: leaves 127.0.0.1).
BURST_PLUGINS = '[plugins.coupon]\nenabled = true\nsend_after = "paid"\nvalue = 10\n'


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until_up(url: str) -> None:
    for _ in range(200):
        try:
            httpx.get(url, timeout=0.5)
            return
        except httpx.TransportError:
            time.sleep(0.05)
    raise RuntimeError(f"{url} did not come up")


def run_wrk(url: str, script: Path, seconds: int, connections: int) -> dict[str, float]:
    return wrk_figures(subprocess.run(wrk_command(url, script, seconds, connections), check=True,
                                      capture_output=True, text=True).stdout)  # fmt: skip


def wrk_command(url: str, script: Path, seconds: int, connections: int) -> list[str]:
    return ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", str(script), url]


def wrk_figures(output: str) -> dict[str, float]:
    figures = {"rps": float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))}
    for name in ("50", "99"):
        value, unit = re.search(rf"\s{name}%\s+([\d.]+)(us|ms|s)", output).groups()
        figures[f"p{name}_ms"] = float(value) * {"us": 0.001, "ms": 1, "s": 1000}[unit]
    total = int(re.search(r"(\d+) requests in", output).group(1))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    figures["refused"] = int(non2xx.group(1)) if non2xx else 0
    figures["acknowledged"] = total - figures["refused"]
    figures["posted_by_thread"] = [int(n) for n in re.findall(r"posted-by-thread (\d+)", output)]
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--orders", type=int, default=20_000, help="distinct orders to post (then they repeat)")
    parser.add_argument("--receivers", type=int, default=1, help="[server] receivers: serve's receiver processes")
    parser.add_argument("--database", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--worker-processes", type=int, default=1, help="serve's worker plus N-1 `aftercare worker`")
    parser.add_argument("--burst", type=int, default=0, help="post N webhooks, then time the backlog's dispatch")
    args = parser.parse_args()
    if not shutil.which("wrk"):
        sys.exit("bench/ingest.py needs wrk: apt-get install wrk")
    if args.burst:
        args.orders = args.burst + args.connections  # each a new order of a new customer, a few spare

    with tempfile.TemporaryDirectory() as folder, store_for(args.database, Path(folder)) as (database, queue):
        work = Path(folder)
        write_pool(ORDER.read_bytes(), args.orders, work / "bodies", work / "index")
        script = work / "post.lua"
        limit = -(-args.burst // 2)  # per wrk thread
        script.write_text(WRK_SCRIPT.format(bodies=work / "bodies", index=work / "index", domain=DOMAIN, limit=limit))
        (work / "aftercare.toml").write_text(
            f'database = "{database}"\nqueue = "{queue}"\nqueue_name = "bench-{uuid.uuid4().hex[:8]}"\n'
            f'[[shops]]\nid = "bench"\nplatform = "shopify"\nwebhook_secret = "{SECRET}"\n'
            f'shop_domain = "{DOMAIN}"\naccess_token = "unused"\n'
            f"[server]\nreceivers = {args.receivers}\n" + (BURST_PLUGINS if args.burst else "")
        )
        label = f"{args.database}, {args.receivers} receiver(s), {args.worker_processes} worker process(es)"
        if args.burst:
            burst(args, work, script, database, label)
        else:
            throughput(args, work, script, database, label)


def throughput(args: argparse.Namespace, work: Path, script: Path, database: str, label: str) -> None:
    results = {}
    floor_port = free_port()
    floor = subprocess.Popen([sys.executable, "-c", FLOOR_APP, str(floor_port), SECRET])
    try:
        wait_until_up(f"http://127.0.0.1:{floor_port}/")
        results["floor"] = run_wrk(f"http://127.0.0.1:{floor_port}/webhooks/bench", script, args.seconds,
                                   args.connections)  # fmt: skip
    finally:
        floor.terminate()
        floor.wait()

    with running(work, args) as (url, serve):
        cpu_before = _cpu_seconds(serve.pid)
        results["aftercare"] = run_wrk(f"{url}/webhooks/bench", script, args.seconds, args.connections)
        receiver_cpu = _cpu_seconds(serve.pid) - cpu_before
    stored = count_events(database)

    floor_rps, ours = results["floor"]["rps"], results["aftercare"]
    print(f"ingest: {args.connections} connections, {args.seconds} s, 10 kB Shopify order, 127.0.0.1; {label}")
    for name, r in results.items():
        print(f"ingest: {name:9} {r['rps']:8,.0f} webhooks/s  p50 {r['p50_ms']:6.1f} ms  p99 {r['p99_ms']:6.1f} ms")
    print(f"ingest: aftercare/floor = {ours['rps'] / floor_rps:.2f}")
    # CPU per webhook moves less than webhooks/s when other processes share the cores.
    per_webhook = receiver_cpu * 1000 / max(1, ours["acknowledged"])
    print(f"ingest: serve's first receiver process used {receiver_cpu:.1f} s of CPU, {per_webhook:.2f} ms per webhook"
          + (" it answered" if args.receivers == 1 else " answered by all"))  # fmt: skip
    # Past the pool an order comes again (not new): thread 1 posts the odd entries, thread 2 the even.
    shares = (-(-args.orders // 2), args.orders // 2)
    distinct = sum(min(posted, share) for posted, share in zip(ours["posted_by_thread"], shares, strict=False))
    expected = distinct - ours["refused"] - args.connections  # those still in flight when wrk stopped: unknown
    verdict = "every acknowledged new order is stored" if stored >= expected else "EVENTS MISSING"
    print(f"ingest: acknowledged {ours['acknowledged']:,.0f} ({distinct:,} distinct orders posted), "
          f"stored {stored:,} ({verdict})")  # fmt: skip


def burst(args: argparse.Namespace, work: Path, script: Path, database: str, label: str) -> None:
    with running(work, args) as (url, _serve):
        # wrk's threads stop sending after their share of the burst (the script's response()), but
        # wrk itself runs its whole duration: it is interrupted (and prints) once all are stored.
        wrk = subprocess.Popen(wrk_command(f"{url}/webhooks/bench", script, 600, args.connections),
                               stdout=subprocess.PIPE, text=True)  # fmt: skip
        while not count_events(database) and wrk.poll() is None:  # wrk reads its pool first
            time.sleep(0.005)
        started = time.perf_counter()  # the first webhook stored
        stored, last_change, seen = 0, time.monotonic(), -1
        while stored < args.burst and time.monotonic() - last_change < 5 and wrk.poll() is None:
            time.sleep(0.02)
            stored = count_events(database)
            if stored != seen:
                seen, last_change = stored, time.monotonic()
        posted = time.perf_counter() - started
        wrk.send_signal(signal.SIGINT)
        answers = wrk_figures(wrk.communicate()[0])
        deadline = time.monotonic() + 1800
        while time.monotonic() < deadline:  # until every event is dispatched and each one's mail is in the outbox
            stored = count_events(database)
            waiting, mails = backlog(database)
            if not waiting and mails >= stored:
                break
            time.sleep(0.05)
        else:
            sys.exit(f"burst: after 30 minutes {waiting:,} events wait and {mails:,} of {stored:,} mails are recorded")
        drained = time.perf_counter() - started
    print(f"burst: {args.burst:,} webhooks, {args.connections} connections, 10 kB Shopify order; {label}")
    print(f"burst: {stored:,} stored in {posted:.1f} s ({stored / posted:,.0f}/s, p99 {answers['p99_ms']:.1f} ms), "
          f"{answers['refused']:,} refused")  # fmt: skip
    print(
        f"burst: every event dispatched and its mail in the outbox {drained:.1f} s after the first webhook "
        f"({stored / drained:,.0f} events/s end to end; the backlog took {drained - posted:.1f} s more)"
    )


@contextmanager
def running(work: Path, args: argparse.Namespace):
    """`aftercare serve` (and --worker-processes - 1 more workers) on the bench's config; its URL."""
    port = free_port()
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    command = [sys.executable, "-m", "aftercare", "--config", str(work / "aftercare.toml")]
    quiet = {"env": env, "stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    serve = subprocess.Popen([*command, "serve", "--port", str(port)], **quiet)
    extra = []
    try:
        wait_until_up(f"http://127.0.0.1:{port}/healthz")
        time.sleep(1.0 if args.receivers > 1 else 0)  # the other receivers listening too
        # Niced as serve's own worker is ([server] worker_nice).
        extra = [subprocess.Popen([*command, "worker", "--nice", "10"], **quiet)
                 for _ in range(args.worker_processes - 1)]  # fmt: skip
        yield f"http://127.0.0.1:{port}", serve
    finally:
        for process in [serve, *extra]:
            process.terminate()
        for process in [serve, *extra]:
            process.wait()


@contextmanager
def store_for(kind: str, folder: Path):
    """(database URL, queue URL): SQLite files in the folder, or a fresh PostgreSQL schema and Redis."""
    if kind == "sqlite":
        yield f"sqlite:///{folder / 'aftercare.db'}", f"sqlite:///{folder / 'queue.db'}"
        return
    schema = f"bench_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(POSTGRES)
    with admin.begin() as conn:
        conn.execute(sa.text(f"CREATE SCHEMA {schema}"))
    try:
        yield f"{POSTGRES}?options=-csearch_path%3D{schema}", REDIS
    finally:
        with admin.begin() as conn:
            conn.execute(sa.text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


def write_pool(order: bytes, count: int, bodies: Path, index: Path) -> None:
    """``count`` signed copies of the order, each with another id and another customer."""
    order_id = re.search(rb'"id":\s*(\d+)', order).group(1)
    customer_id = re.search(rb'"customer":\s*\{\s*"id":\s*(\d+)', order)
    email = re.search(rb'"email":\s*"([^"]+)"', order).group(1)
    first = int(order_id)
    offset = 0
    with bodies.open("wb") as out, index.open("w") as lines:
        for n in range(count):
            body = order.replace(order_id, str(first + n).encode()).replace(email, b"c%08d@example.com" % n)
            if customer_id:
                body = body.replace(customer_id.group(1), str(int(customer_id.group(1)) + n).encode())
            signature = base64.b64encode(hmac.new(SECRET.encode(), body, hashlib.sha256).digest()).decode()
            out.write(body)
            lines.write(f"{signature} {offset} {len(body)}\n")
            offset += len(body)


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of one process (its threads included, its children not), from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def count_events(database: str) -> int:
    engine = sa.create_engine(database)
    try:
        with engine.connect() as conn:
            return conn.execute(sa.text("SELECT count(*) FROM events")).scalar_one()
    finally:
        engine.dispose()


def backlog(database: str) -> tuple[int, int]:
    """(events not yet dispatched, mails in the outbox)."""
    engine = sa.create_engine(database)
    try:
        with engine.connect() as conn:
            waiting = conn.execute(sa.text("SELECT count(*) FROM events WHERE state IN ('pending', 'dispatching')"))
            mails = conn.execute(sa.text("SELECT count(*) FROM actions WHERE kind = 'send_email'"))
            return waiting.scalar_one(), mails.scalar_one()
    finally:
        engine.dispose()


if __name__ == "__main__":
    main()
