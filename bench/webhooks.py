"""Webhook delivery: events per second to a loopback receiver with one worker, and the
outbox lag under a burst.

    python -m bench.webhooks [--events 10000] [--batch 100] [--concurrency 16]

Starts a private PostgreSQL and Redis, one `nscl worker` (loopback allowed, production
retry settings otherwise) and a receiver on loopback answering 200 over keep-alive
connections. One subscription (an operator's, to ``job.failed``) receives a burst of
``--events`` events, committed ``--batch`` per transaction as use cases commit them (the
event hook writes the event and its delivery in the change's transaction). Prints:

- burst write: how fast the burst entered the outbox;
- throughput: events delivered per second, from the first commit to the last delivery;
- outbox lag: from each event's commit to its delivery (the delivery's settle time).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from sqlalchemy import text

import nscl_domain.composition  # noqa: F401 -- an entry point: wires the contexts together
from bench.private_services import WorkerProcess, seeded_stack, worker_env
from nscl_domain.audit.repository import AuditRepository
from nscl_domain.db import create_engine, create_sessionmaker
from nscl_domain.identity import SYSTEM
from nscl_domain.identity import service as identity
from nscl_domain.uow import UnitOfWork
from nscl_worker.queue import ArqJobQueue


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    received = 0
    lock = threading.Lock()

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        with _Handler.lock:
            _Handler.received += 1
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, format: str, *args: object) -> None:
        return


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


async def run(args: argparse.Namespace, database_url: str, redis_url: str, logs: Path) -> None:
    from arq.connections import RedisSettings, create_pool

    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/events"
    engine = create_engine(database_url, pool_size=4)
    sessionmaker = create_sessionmaker(engine)
    await identity.create_client(
        UnitOfWork(sessionmaker), SYSTEM, client_id="bench-operator", name="bench",
        unit="bk-dost", roles=["operator"],
    )  # fmt: skip
    async with engine.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO webhook_subscription (id, owner_client_id, url, event_types, secret, "
                "created_by, max_concurrency) VALUES (gen_random_uuid(), 'bench-operator', :url, "
                "ARRAY['job.failed'], 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw', 'bench', :c)"
            ),
            {"url": url, "c": args.concurrency},
        )
    env = worker_env(
        database_url,
        redis_url,
        log_level="WARNING",
        webhook_allowed_networks=json.dumps(["127.0.0.0/8"]),
    )
    worker = WorkerProcess(env, logs / "worker.log").start()
    redis = await create_pool(RedisSettings.from_dsn(redis_url))
    try:
        await asyncio.sleep(3)  # the worker starts
        queue = ArqJobQueue(redis, "nscl:jobs")
        started = time.perf_counter()
        for first in range(0, args.events, args.batch):
            uow = UnitOfWork(sessionmaker, queue)
            async with uow:
                audit = uow.get(AuditRepository)
                for _ in range(min(args.batch, args.events - first)):
                    audit.record(SYSTEM, "job.failed", "job", uuid.uuid4(), after={"name": "x"})
                await uow.commit()
        written = time.perf_counter() - started
        print(
            f"burst write: {args.events:,} events in {written:.1f} s "
            f"({args.events / written:,.0f} events/s into the outbox)",
            flush=True,
        )
        while True:
            async with engine.connect() as conn:
                left = await conn.scalar(
                    text("SELECT count(*) FROM webhook_delivery WHERE status <> 'succeeded'")
                )
            if not left:
                break
            if time.perf_counter() - started > args.timeout:
                raise SystemExit(f"{left} deliveries still pending after {args.timeout} s")
            await asyncio.sleep(0.5)
        async with engine.connect() as conn:
            rows = (
                await conn.execute(
                    text(
                        "SELECT EXTRACT(EPOCH FROM d.finished_at - e.occurred_at), "
                        "EXTRACT(EPOCH FROM d.finished_at - min(e.occurred_at) OVER ()) "
                        "FROM webhook_delivery d JOIN webhook_event e ON e.id = d.event_id"
                    )
                )
            ).all()
        lags = [float(r[0]) for r in rows]
        span = max(float(r[1]) for r in rows)
        print(
            f"throughput: {len(rows):,} events delivered in {span:.1f} s = "
            f"{len(rows) / span:,.0f} events/s (1 worker, {args.concurrency} in flight, "
            f"receiver got {_Handler.received:,})"
        )
        print(
            f"outbox lag (commit → delivered): median {statistics.median(lags):.2f} s, "
            f"p95 {percentile(lags, 0.95):.2f} s, max {max(lags):.2f} s"
        )
    finally:
        worker.stop()
        await redis.aclose()
        await engine.dispose()
        server.shutdown()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Webhook delivery throughput and outbox lag.")
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--batch", type=int, default=100, help="events per transaction")
    parser.add_argument("--concurrency", type=int, default=16, help="requests in flight")
    parser.add_argument("--timeout", type=float, default=900.0)
    args = parser.parse_args(argv)
    with seeded_stack() as (url, redis_url, logs):
        asyncio.run(run(args, url, redis_url, logs))


if __name__ == "__main__":
    main()
