"""The `nscl` command: serve, worker, database migrations, seed data, OpenAPI document."""

from __future__ import annotations

import asyncio
import dataclasses
import getpass
import json
import sys
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, TypeVar

import typer

from nscl_domain.errors import DomainError
from nscl_domain.identity import Caller
from nscl_domain.logs import configure_logging
from nscl_domain.settings import Settings
from nscl_domain.uow import UnitOfWork

T = TypeVar("T")

app = typer.Typer(help="nscl: the NSCL programme backend.", no_args_is_help=True)
db_app = typer.Typer(help="Database schema migrations.", no_args_is_help=True)
app.add_typer(db_app, name="db")
clients_app = typer.Typer(help="API clients: other systems and front-ends.", no_args_is_help=True)
app.add_typer(clients_app, name="clients")
keys_app = typer.Typer(help="Keys that sign access tokens.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")


def _settings(*, service: bool = False) -> Settings:
    """Read the settings and start logging: a service's logs on standard output, a one-shot
    command's on standard error (its output is what it prints, e.g. a client's secret)."""
    settings = Settings()
    configure_logging(
        settings.log_level, json=settings.log_json, stream=None if service else sys.stderr
    )
    return settings


def _database_url(settings: Settings) -> str:
    if settings.database_url is not None:
        return str(settings.database_url)
    from nscl_domain.embedded import start_postgres

    return start_postgres(settings.data_dir)


def _migration_url(settings: Settings) -> str:
    """The schema owner's URL: NSCL_MIGRATION_DATABASE_URL, else NSCL_DATABASE_URL."""
    owner = settings.owner_database_url
    if owner is not None:
        return owner
    from nscl_domain.embedded import start_postgres

    return start_postgres(settings.data_dir)


def _grant_service_role(settings: Settings, owner_url: str, role: str | None) -> None:
    from nscl_domain import embedded, schema

    if role is not None:
        schema.grant(owner_url, role)
    elif settings.uses_embedded_database:
        schema.grant(owner_url, embedded.SERVICE_ROLE, create_role=True)
    else:
        typer.echo(
            "warning: NSCL_MIGRATION_DATABASE_URL is not set (or names the same user as "
            "NSCL_DATABASE_URL): the service connects as the schema's owner, which can "
            "switch off the triggers that keep the audit trail append-only",
            err=True,
        )
        return
    typer.echo(f"granted the service role {role or embedded.SERVICE_ROLE}", err=True)


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

    settings = _settings(service=True)
    try:
        settings.refuse_unsafe_production(signs_tokens=True)
    except RuntimeError as refusal:
        typer.echo(str(refusal), err=True)
        raise typer.Exit(2) from None
    if workers > 1 and (settings.uses_embedded_database or settings.uses_embedded_redis):
        raise typer.BadParameter("several processes need NSCL_DATABASE_URL and NSCL_REDIS_URL")
    # Without Redis the queue lives in this process, so the worker must too: the command
    # line composes the API with the worker package's in-process worker; otherwise the
    # API runs alone (`nscl worker` runs elsewhere) from its ASGI entry point.
    target: str | Callable[..., Any] = "nscl_api.asgi:app"
    if settings.uses_embedded_redis:
        from nscl_api.main import add_request_id, create_app
        from nscl_worker.embedded import InProcessWorker

        configure_logging(
            settings.log_level, json=settings.log_json, extra_processors=[add_request_id]
        )
        target = create_app(settings, companion=InProcessWorker())
    uvicorn.run(
        target,
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
    health_port: Annotated[
        int | None,
        typer.Option(help="Serve GET /health and /ready (JSON: Redis, database, waiting for)."),
    ] = None,
) -> None:
    """Run the job worker against NSCL_REDIS_URL and NSCL_DATABASE_URL, through outages."""
    settings = _settings(service=True)
    if settings.redis_url is None or settings.database_url is None:
        typer.echo(
            "A separate worker needs NSCL_REDIS_URL and NSCL_DATABASE_URL; without them "
            "`nscl serve` runs the worker inside the API.",
            err=True,
        )
        raise typer.Exit(2)

    from nscl_worker.runner import run_supervised

    asyncio.run(run_supervised(settings, burst=burst, health_port=health_port))


@db_app.command("upgrade")
def db_upgrade(
    revision: Annotated[str, typer.Argument()] = "head",
    service_role: Annotated[
        str | None,
        typer.Option(
            help=(
                "The role the API and the worker connect as (default: the user of "
                "NSCL_DATABASE_URL): the migration job need not know its password."
            )
        ),
    ] = None,
) -> None:
    """Migrate up to REVISION (default: the newest) as the owner, then grant the service role."""
    from nscl_domain import schema

    settings = _settings()
    owner_url = _migration_url(settings)
    schema.upgrade(owner_url, revision)
    try:
        _grant_service_role(settings, owner_url, service_role or settings.service_role)
    except schema.ServiceRoleError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc


@db_app.command("grant")
def db_grant(
    role: Annotated[
        str | None, typer.Argument(help="Default: the user of NSCL_DATABASE_URL.")
    ] = None,
) -> None:
    """Grant the service role what it needs, and no more (safe to run again)."""
    from nscl_domain import schema

    settings = _settings()
    try:
        _grant_service_role(settings, _migration_url(settings), role or settings.service_role)
    except schema.ServiceRoleError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc


@db_app.command("downgrade")
def db_downgrade(revision: Annotated[str, typer.Argument(help="e.g. -1, or base")]) -> None:
    """Migrate the database down to REVISION."""
    from nscl_domain import schema

    schema.downgrade(_migration_url(_settings()), revision)


@db_app.command("current")
def db_current() -> None:
    """Print the database's schema revision and the code's."""
    from nscl_domain.db import create_engine
    from nscl_domain.schema import schema_state

    url = _migration_url(_settings())

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
    from nscl_domain.composition.process import open_process
    from nscl_domain.composition.seed import load_seed

    url = _database_url(_settings())

    async def main() -> None:
        process = open_process(_settings(), url, pooled=False)
        async with process.sessionmaker() as session:
            counts = await load_seed(session)
            await session.commit()
        await process.engine.dispose()
        typer.echo(", ".join(f"{n} {section}" for section, n in counts.items()))

    asyncio.run(main())


def _run_with_uow(work: Callable[[UnitOfWork, Caller], Awaitable[T]]) -> T:
    """Run one use case against the configured database as the operator at the console."""
    from nscl_domain.composition.process import open_process
    from nscl_domain.identity import SYSTEM

    settings = _settings()
    url = _database_url(settings)
    actor = dataclasses.replace(SYSTEM, client_id=f"cli:{getpass.getuser()}")

    async def main() -> T:
        process = open_process(settings, url, pooled=False)
        try:
            return await work(process.new_uow(), actor)
        finally:
            await process.engine.dispose()

    try:
        return asyncio.run(main())
    except DomainError as exc:
        typer.echo(f"error: {exc.detail}", err=True)
        raise typer.Exit(1) from exc


@clients_app.command("create")
def clients_create(
    client_id: Annotated[str, typer.Argument(help="e.g. so-tai-chinh-ketoan")],
    unit: Annotated[str, typer.Option(help="Organisation unit (id or key) it acts for.")],
    role: Annotated[list[str], typer.Option(help="A role; repeat for several.")],
    name: Annotated[str, typer.Option(help="Who or what the client is.")] = "",
) -> None:
    """Register a client and print its secret (shown this once)."""
    from nscl_domain.identity import service as identity

    view, secret = _run_with_uow(
        lambda uow, actor: identity.create_client(
            uow, actor, client_id=client_id, name=name or client_id, unit=unit, roles=role
        )
    )
    typer.echo(json.dumps({"client_id": view.client.client_id, "client_secret": secret}))


@clients_app.command("disable")
def clients_disable(client_id: str) -> None:
    """Refuse the client's secret and tokens from now on."""
    from nscl_domain.identity import service as identity

    _run_with_uow(lambda uow, actor: identity.disable_client(uow, actor, client_id))
    typer.echo(f"{client_id} disabled")


@clients_app.command("rotate")
def clients_rotate(client_id: str) -> None:
    """Give the client a new secret and print it; the old one stops working."""
    from nscl_domain.identity import service as identity

    view, secret = _run_with_uow(lambda uow, actor: identity.rotate_secret(uow, actor, client_id))
    typer.echo(json.dumps({"client_id": view.client.client_id, "client_secret": secret}))


@clients_app.command("list")
def clients_list() -> None:
    """List clients with their unit, roles and whether they are enabled."""
    from nscl_domain.identity import service as identity

    for view in _run_with_uow(lambda uow, actor: identity.list_clients(uow)):
        state = "enabled" if view.client.enabled else "disabled"
        typer.echo(
            f"{view.client.client_id}\t{view.unit.key}\t{','.join(view.client.roles)}\t{state}"
        )


@keys_app.command("rotate")
def keys_rotate() -> None:
    """Add a signing key; tokens signed by older keys stay valid until those are retired."""
    from nscl_domain.identity import service as identity
    from nscl_domain.identity.sealing import KeySealer

    sealer = KeySealer.from_settings(Settings())
    key = _run_with_uow(lambda uow, actor: identity.rotate_signing_key(uow, actor, sealer))
    typer.echo(f"{key.kid} signs from now on")


@keys_app.command("reseal")
def keys_reseal() -> None:
    """Seal every key in force under NSCL_SIGNING_KEY_PASSPHRASE (the old passphrase given in
    NSCL_SIGNING_KEY_PREVIOUS_PASSPHRASES); also seals keys stored before a passphrase was set."""
    from nscl_domain.identity import service as identity
    from nscl_domain.identity.sealing import KeySealer

    settings = Settings()
    if settings.signing_key_passphrase is None:
        raise typer.BadParameter("set NSCL_SIGNING_KEY_PASSPHRASE to the passphrase to seal with")
    sealer = KeySealer.from_settings(settings)
    changed = _run_with_uow(lambda uow, actor: identity.reseal_signing_keys(uow, actor, sealer))
    typer.echo(f"{len(changed)} key(s) resealed" + (f": {', '.join(changed)}" if changed else ""))


@keys_app.command("retire")
def keys_retire(kid: str) -> None:
    """Stop accepting tokens signed by KID (wait for its tokens to expire first)."""
    from nscl_domain.identity import service as identity

    _run_with_uow(lambda uow, actor: identity.retire_signing_key(uow, actor, kid))
    typer.echo(f"{kid} retired")


@keys_app.command("list")
def keys_list() -> None:
    """List keys in force, the signer first."""
    from nscl_domain.identity import service as identity

    for key in _run_with_uow(lambda uow, actor: identity.signing_keys(uow)):
        typer.echo(f"{key.kid}\t{key.algorithm}\t{key.created_at.isoformat()}")


@app.command()
def openapi() -> None:
    """Print the OpenAPI document the code generates (the committed openapi.json)."""
    from nscl_api.main import create_app

    document = create_app(Settings()).openapi()
    json.dump(document, sys.stdout, indent=2, ensure_ascii=False)
    sys.stdout.write("\n")
