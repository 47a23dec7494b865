"""Webhook ingest: `aftercare serve` against a floor, under concurrent signed webhooks.

The floor is a bare Starlette endpoint that only checks the HMAC of the body
and answers 200. Both are driven by wrk (Debian package `wrk`) with a 10 kB
Shopify order, signed as Shopify signs it. A Shopify event's key is its order
and transition (``order:ID:paid``), so the same order paid twice is one event:
each request posts another of ``--orders`` copies of the order that differ only
in its id (same size), with new webhook and event ids, so each is a new event
to store until the pool is used up. After the run the bench counts the events
in the store: every acknowledged new order must be there. Everything listens
on 127.0.0.1 only.

    .venv/bin/python bench/ingest.py [--seconds 10] [--connections 50] [--orders 20000]
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
ORDER = REPO.parent / "shared" / "fixtures" / "shopify" / "orders_create_paid_thirdparty_yellowai.json"
SECRET = "bench-secret"
DOMAIN = "bench-shop.myshopify.com"

WRK_SCRIPT = """
local counter = 0
local threads = 0
function setup(thread)
  threads = threads + 1
  thread:set("tid", threads)
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
    output = subprocess.run(
        ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", str(script), url],
        check=True, capture_output=True, text=True,
    ).stdout  # fmt: skip
    figures = {"rps": float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))}
    for name in ("50", "99"):
        value, unit = re.search(rf"\s{name}%\s+([\d.]+)(us|ms|s)", output).groups()
        figures[f"p{name}_ms"] = float(value) * {"us": 0.001, "ms": 1, "s": 1000}[unit]
    total = int(re.search(r"(\d+) requests in", output).group(1))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    figures["acknowledged"] = total - (int(non2xx.group(1)) if non2xx else 0)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--orders", type=int, default=20_000, help="distinct orders to post (then they repeat)")
    parser.add_argument("--receivers", type=int, default=1, help="[server] receivers: serve's receiver processes")
    args = parser.parse_args()
    if not shutil.which("wrk"):
        sys.exit("bench/ingest.py needs wrk: apt-get install wrk")

    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        write_pool(ORDER.read_bytes(), args.orders, work / "bodies", work / "index")
        script = work / "post.lua"
        script.write_text(WRK_SCRIPT.format(bodies=work / "bodies", index=work / "index", domain=DOMAIN))
        (work / "aftercare.toml").write_text(
            f'[[shops]]\nid = "bench"\nplatform = "shopify"\nwebhook_secret = "{SECRET}"\n'
            f'shop_domain = "{DOMAIN}"\naccess_token = "unused"\n'
            f"[server]\nreceivers = {args.receivers}\n"
        )

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

        serve_port = free_port()
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        serve = subprocess.Popen(
            [sys.executable, "-m", "aftercare", "--config", str(work / "aftercare.toml"), "serve",
             "--port", str(serve_port)],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            wait_until_up(f"http://127.0.0.1:{serve_port}/healthz")
            cpu_before = _cpu_seconds(serve.pid)
            results["aftercare"] = run_wrk(f"http://127.0.0.1:{serve_port}/webhooks/bench", script, args.seconds,
                                           args.connections)  # fmt: skip
            receiver_cpu = _cpu_seconds(serve.pid) - cpu_before
        finally:
            serve.terminate()
            serve.wait()
        stored = _count_events(work / "aftercare.db")

    floor_rps, ours = results["floor"]["rps"], results["aftercare"]
    print(f"ingest: {args.connections} connections, {args.seconds} s, 10 kB Shopify order, 127.0.0.1")
    for name, r in results.items():
        print(f"ingest: {name:9} {r['rps']:8,.0f} webhooks/s  p50 {r['p50_ms']:6.1f} ms  p99 {r['p99_ms']:6.1f} ms")
    print(f"ingest: aftercare/floor = {ours['rps'] / floor_rps:.2f}")
    # CPU per webhook moves less than webhooks/s when other processes share the cores.
    per_webhook = receiver_cpu * 1000 / max(1, ours["acknowledged"])
    print(f"ingest: the receiver process used {receiver_cpu:.1f} s of CPU, {per_webhook:.2f} ms per webhook")
    new_orders = min(ours["acknowledged"], args.orders)  # past the pool, an order comes again: not new
    verdict = "every acknowledged new order is stored" if stored >= new_orders else "EVENTS MISSING"
    print(f"ingest: acknowledged {ours['acknowledged']:,.0f}, stored {stored:,} ({verdict})")


def write_pool(order: bytes, count: int, bodies: Path, index: Path) -> None:
    """``count`` signed copies of the order, each with another id of the same length."""
    order_id = re.search(rb'"id":\s*(\d+)', order).group(1)
    first = int(order_id)
    offset = 0
    with bodies.open("wb") as out, index.open("w") as lines:
        for n in range(count):
            body = order.replace(order_id, str(first + n).encode())
            signature = base64.b64encode(hmac.new(SECRET.encode(), body, hashlib.sha256).digest()).decode()
            out.write(body)
            lines.write(f"{signature} {offset} {len(body)}\n")
            offset += len(body)


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of one process (its threads included, its children not), from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _count_events(path: Path) -> int:
    import sqlite3

    with sqlite3.connect(path) as db:
        return db.execute("SELECT count(*) FROM events").fetchone()[0]


if __name__ == "__main__":
    main()
