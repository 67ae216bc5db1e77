"""A benchmark's own database on the PostgreSQL of ``BENCH_ADMIN_URL``: its URL, creating
it afresh, dropping it, and the ``nscl`` command run against it (migrations, seed).

    BENCH = BenchDatabase("nscl_bench_x")
    asyncio.run(BENCH.recreate()); BENCH.nscl("db", "upgrade"); BENCH.nscl("seed")
    ...
    asyncio.run(BENCH.drop())

The administrator's URL (default: the local server, which trusts local logins) only creates
and drops the database; everything else connects to the database itself.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from nscl_domain.db import create_sessionmaker
from nscl_domain.identity import SYSTEM
from nscl_domain.identity import service as identity
from nscl_domain.uow import UnitOfWork

ADMIN_URL = os.environ.get("BENCH_ADMIN_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test")
NSCL = str(Path(sys.executable).with_name("nscl"))


@dataclass(frozen=True)
class BenchDatabase:
    """A database a benchmark creates, uses and drops; nobody else's."""

    name: str
    admin_url: str = ADMIN_URL

    def url(self) -> str:
        return self.admin_url.rsplit("/", 1)[0] + "/" + self.name

    async def recreate(self) -> None:
        """Drop what a previous run left (``--keep``, or a run stopped midway), then create."""
        admin = create_async_engine(self.admin_url, isolation_level="AUTOCOMMIT")
        async with admin.connect() as conn:
            await conn.execute(text(f"DROP DATABASE IF EXISTS {self.name} WITH (FORCE)"))
            await conn.execute(text(f"CREATE DATABASE {self.name}"))
        await admin.dispose()

    async def drop(self) -> None:
        admin = create_async_engine(self.admin_url, isolation_level="AUTOCOMMIT")
        async with admin.connect() as conn:
            await conn.execute(text(f"DROP DATABASE IF EXISTS {self.name} WITH (FORCE)"))
        await admin.dispose()

    async def server_version(self) -> str:
        engine = create_async_engine(self.url())
        async with engine.connect() as conn:
            version = await conn.scalar(text("SHOW server_version"))
        await engine.dispose()
        return str(version)

    def nscl(self, *args: str) -> None:
        """Run ``nscl *args`` on this database, as an operator would (quiet unless it fails)."""
        env = {**os.environ, "NSCL_DATABASE_URL": self.url(), "NSCL_LOG_LEVEL": "WARNING"}
        subprocess.run([NSCL, *args], check=True, env=env, stdout=subprocess.DEVNULL)


async def create_client(url: str, role: str, unit: str) -> tuple[str, str]:
    """A client of the database at ``url`` with one ``role`` on ``unit``: (id, secret)."""
    engine = create_async_engine(url)
    client_id = f"bench-{role}-{uuid.uuid4().hex[:8]}"
    _, secret = await identity.create_client(
        UnitOfWork(create_sessionmaker(engine)),
        SYSTEM,
        client_id=client_id,
        name="bench",
        unit=unit,
        roles=[role],
    )
    await engine.dispose()
    return client_id, secret
