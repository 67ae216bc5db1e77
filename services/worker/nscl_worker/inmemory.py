"""An in-memory Redis for the embedded default, good enough for arq.

fakeredis implements every command arq uses but INFO, which arq's worker sends once at
start-up to log the server's version and memory. Rather than patch arq or copy its worker
loop, this module gives fakeredis an INFO command of its own: a socket class with one more
command, used by a connection class that builds that socket. The reply carries the fields
arq reads (redis_version, used_memory_human, connected_clients).
"""

from __future__ import annotations

from typing import Any

from arq.connections import ArqRedis
from fakeredis import FakeServer
from fakeredis._commands import command
from fakeredis.aioredis import AsyncFakeSocket, FakeAsyncRedisConnection, FakeReader, FakeWriter
from redis.asyncio import ConnectionPool

REPORTED_VERSION = "7.0.0"


class _InfoSocket(AsyncFakeSocket):
    @command(name="INFO", fixed=(), repeat=(bytes,))
    def info(self, *sections: bytes) -> bytes:
        keys = sum(len(db) for db in self._server.dbs.values())
        lines = [
            "# Server",
            f"redis_version:{REPORTED_VERSION}",
            "redis_mode:standalone",
            "# Memory",
            "used_memory_human:n/a (in-memory)",
            "# Clients",
            "connected_clients:1",
            "# Keyspace",
            f"db0:keys={keys},expires=0,avg_ttl=0",
        ]
        return ("\r\n".join(lines) + "\r\n").encode()


class _InfoConnection(FakeAsyncRedisConnection):
    async def _connect(self) -> None:
        if self._server is None or not self._server.connected:
            raise self._connection_error_class("in-memory Redis is stopped")
        self._sock = _InfoSocket(
            self._server,
            self.db,
            client_class=self._client_class,
            lua_modules=self._lua_modules,
            client_info=self._client_info,
        )
        self._reader = FakeReader(self._sock)
        self._writer = FakeWriter(self._sock)


def in_memory_arq_redis(server: Any | None = None) -> ArqRedis:
    """Return an arq client on a private in-memory Redis (one per process)."""
    pool = ConnectionPool(
        connection_class=_InfoConnection,
        server=server or FakeServer(version=(7,)),
    )
    return ArqRedis(connection_pool=pool)
