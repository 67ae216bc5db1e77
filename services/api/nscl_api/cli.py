"""The `nscl` command: serve, worker, database migrations, seed data, OpenAPI document."""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Annotated

import typer

from nscl_domain.logs import configure_logging
from nscl_domain.settings import Settings

app = typer.Typer(help="nscl: the NSCL programme backend.", no_args_is_help=True)
db_app = typer.Typer(help="Database schema migrations.", no_args_is_help=True)
app.add_typer(db_app, name="db")


def _settings() -> Settings:
    settings = Settings()
    configure_logging(settings.log_level, json=settings.log_json)
    return settings


def _database_url(settings: Settings) -> str:
    if settings.database_url is not None:
        return str(settings.database_url)
    from nscl_domain.embedded import start_postgres

    return start_postgres(settings.data_dir)


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    workers: Annotated[
        int, typer.Option(help="Processes (needs NSCL_DATABASE_URL and NSCL_REDIS_URL).")
    ] = 1,
) -> None:
    """Run the HTTP API (and, without NSCL_REDIS_URL, the worker inside it)."""
    import uvicorn

    settings = _settings()
    if workers > 1 and (settings.uses_embedded_database or settings.uses_embedded_redis):
        raise typer.BadParameter("several processes need NSCL_DATABASE_URL and NSCL_REDIS_URL")
    uvicorn.run(
        "nscl_api.asgi:app",
        host=host,
        port=port,
        workers=workers,
        log_config=None,
        proxy_headers=True,
        access_log=True,
    )


@app.command()
def worker(
    burst: Annotated[bool, typer.Option(help="Stop when the queue is empty.")] = False,
) -> None:
    """Run the job worker against NSCL_REDIS_URL and NSCL_DATABASE_URL."""
    settings = _settings()
    if settings.redis_url is None or settings.database_url is None:
        typer.echo(
            "A separate worker needs NSCL_REDIS_URL and NSCL_DATABASE_URL; without them "
            "`nscl serve` runs the worker inside the API.",
            err=True,
        )
        raise typer.Exit(2)

    async def main() -> None:
        from arq.connections import RedisSettings, create_pool

        from nscl_worker.settings import build_worker

        redis = await create_pool(RedisSettings.from_dsn(str(settings.redis_url)))
        running = build_worker(
            settings, database_url=str(settings.database_url), redis=redis, burst=burst
        )
        try:
            await running.async_run()
        finally:
            await running.close()

    asyncio.run(main())


@db_app.command("upgrade")
def db_upgrade(revision: Annotated[str, typer.Argument()] = "head") -> None:
    """Migrate the database up to REVISION (default: the newest)."""
    from nscl_domain import schema

    schema.upgrade(_database_url(_settings()), revision)


@db_app.command("downgrade")
def db_downgrade(revision: Annotated[str, typer.Argument(help="e.g. -1, or base")]) -> None:
    """Migrate the database down to REVISION."""
    from nscl_domain import schema

    schema.downgrade(_database_url(_settings()), revision)


@db_app.command("current")
def db_current() -> None:
    """Print the database's schema revision and the code's."""
    from nscl_domain.db import create_engine
    from nscl_domain.schema import schema_state

    url = _database_url(_settings())

    async def main() -> None:
        engine = create_engine(url, pooled=False)
        async with engine.connect() as conn:
            state = await schema_state(conn)
        await engine.dispose()
        typer.echo(f"database: {state.current or '(empty)'}  code: {state.head}")
        if not state.is_current:
            raise typer.Exit(1)

    asyncio.run(main())


@app.command()
def seed() -> None:
    """Load the built-in Bắc Kạn plan into the catalogue (safe to run again)."""
    from nscl_domain.catalogue.seed import load_seed
    from nscl_domain.db import create_engine, create_sessionmaker

    url = _database_url(_settings())

    async def main() -> None:
        engine = create_engine(url, pooled=False)
        async with create_sessionmaker(engine)() as session:
            counts = await load_seed(session)
            await session.commit()
        await engine.dispose()
        typer.echo(", ".join(f"{n} {section}" for section, n in counts.items()))

    asyncio.run(main())


@app.command()
def openapi() -> None:
    """Print the OpenAPI document the code generates (the committed openapi.json)."""
    from nscl_api.main import create_app

    document = create_app(Settings()).openapi()
    json.dump(document, sys.stdout, indent=2, ensure_ascii=False)
    sys.stdout.write("\n")
