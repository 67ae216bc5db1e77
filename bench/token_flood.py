"""How a flood of bad token requests affects everyone else: /health latency under it.

Runs the product (``nscl_api.asgi:app``) under uvicorn in a subprocess on a migrated
database, sends bad token requests with fresh random client ids (``--concurrency`` at a
time, ``--source-addresses`` distinct X-Forwarded-For addresses through a trusted-proxy
setting, so the per-address limit does not hide the cost), and polls ``/health`` meanwhile.

    .venv/bin/python -m bench.token_flood --database-url postgresql+asyncpg://…/db
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time
import uuid
from collections import Counter
from collections.abc import Sequence

import httpx

from bench.http_load import serve


async def _health_latencies(http: httpx.AsyncClient, stop: asyncio.Event) -> list[float]:
    latencies = []
    while not stop.is_set():
        started = time.perf_counter()
        await http.get("/health")
        latencies.append((time.perf_counter() - started) * 1000)
        await asyncio.sleep(0.01)
    return latencies


async def _flood(base: str, requests: int, concurrency: int, addresses: int) -> None:
    async with httpx.AsyncClient(base_url=base, timeout=60) as http:
        idle_stop = asyncio.Event()
        idle = asyncio.create_task(_health_latencies(http, idle_stop))
        await asyncio.sleep(1)
        idle_stop.set()
        idle_ms = await idle

        gate = asyncio.Semaphore(concurrency)
        statuses: Counter[int] = Counter()
        token_ms: list[float] = []

        async def bad_request(n: int) -> None:
            async with gate:
                started = time.perf_counter()
                response = await http.post(
                    "/v1/oauth/token",
                    data={
                        "grant_type": "client_credentials",
                        "client_id": f"nobody-{uuid.uuid4().hex}",
                        "client_secret": "guess",
                    },
                    headers={"X-Forwarded-For": f"198.51.100.{n % addresses + 1}"},
                )
                token_ms.append((time.perf_counter() - started) * 1000)
                statuses[response.status_code] += 1

        stop = asyncio.Event()
        probe = asyncio.create_task(_health_latencies(http, stop))
        await asyncio.gather(*(bad_request(n) for n in range(requests)))
        stop.set()
        busy_ms = await probe

    def summary(values: list[float]) -> str:
        return f"median {statistics.median(values):.1f} ms, max {max(values):.1f} ms"

    print(f"/health idle:            {summary(idle_ms)} ({len(idle_ms)} probes)")
    print(f"/health during flood:    {summary(busy_ms)} ({len(busy_ms)} probes)")
    counts = dict(sorted(statuses.items()))
    print(f"bad token requests:      {summary(token_ms)}; statuses {counts}")


def main(argv: Sequence[str] | None = None) -> None:
    """Measure /health during a flood of bad token requests."""
    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--database-url", default=os.environ.get("BENCH_DATABASE_URL"))
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--port", type=int, default=8766)
    parser.add_argument("--requests", type=int, default=60)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--source-addresses", type=int, default=60)
    args = parser.parse_args(argv)
    if not args.database_url:
        parser.error("give --database-url (a migrated database) or BENCH_DATABASE_URL")
    env = {
        "NSCL_DATABASE_URL": args.database_url,
        "NSCL_REDIS_URL": args.redis_url,
        "NSCL_LOG_LEVEL": "ERROR",
        "NSCL_TRUSTED_PROXIES": '["127.0.0.1"]',
        # Limits of this run only, so earlier runs leave no hold-offs behind.
        "NSCL_AUTH_REDIS_PREFIX": f"nscl:bench:{uuid.uuid4().hex}:auth",
        "NSCL_TOKEN_RATE_LIMIT": "100000",
    }
    with serve("nscl_api.asgi:app", port=args.port, env=env, factory=False) as base:
        asyncio.run(_flood(base, args.requests, args.concurrency, max(1, args.source_addresses)))


if __name__ == "__main__":
    main()
