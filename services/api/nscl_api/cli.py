"""The `nscl` command: serve, worker, database migrations, seed data, OpenAPI document."""

from __future__ import annotations

import asyncio
import dataclasses
import getpass
import json
import signal
import sys
import uuid
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, TypeVar

import typer

from nscl_domain.composition.process import Process
from nscl_domain.errors import DomainError
from nscl_domain.identity import Caller
from nscl_domain.logs import configure_logging
from nscl_domain.settings import Settings
from nscl_domain.uow import UnitOfWork

T = TypeVar("T")

app = typer.Typer(help="nscl: the NSCL programme backend.", no_args_is_help=True)
jobs_app = typer.Typer(help="Background jobs: list, show, cancel.", no_args_is_help=True)
app.add_typer(jobs_app, name="jobs")
schedules_app = typer.Typer(
    help="When jobs run (cron, Asia/Ho_Chi_Minh): list, pause, resume, run now.",
    no_args_is_help=True,
)
app.add_typer(schedules_app, name="schedules")
rollups_app = typer.Typer(help="Provincial rollups: rebuild them now.", no_args_is_help=True)
app.add_typer(rollups_app, name="rollups")
JsonOption = Annotated[
    bool, typer.Option("--json", help="Print the result as JSON on standard output.")
]
db_app = typer.Typer(help="Database schema migrations.", no_args_is_help=True)
app.add_typer(db_app, name="db")
clients_app = typer.Typer(help="API clients: other systems and front-ends.", no_args_is_help=True)
app.add_typer(clients_app, name="clients")
keys_app = typer.Typer(help="Keys that sign access tokens.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import PackageNotFoundError, version

        try:
            typer.echo(f"nscl {version('nscl')}")
        except PackageNotFoundError:  # run from a source tree that was never installed
            typer.echo("nscl (not installed)")
        raise typer.Exit()


@app.callback()
def main(
    show_version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """nscl: the NSCL programme backend. Logs go to standard error; standard output carries
    only what a command answers (JSON with --json)."""


def _print_json(value: Any) -> None:
    typer.echo(json.dumps(value, ensure_ascii=False, default=str))


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
    if workers > 1:
        _share_metrics_between_processes()
    # uvicorn shuts down gracefully on SIGTERM, then raises the signal again with the
    # handler it found: the default one ends the process without running exit hooks, and
    # the embedded PostgreSQL would outlive it. This handler makes it a normal exit.
    signal.signal(signal.SIGTERM, _exit_normally)
    try:
        uvicorn.run(
            target,
            host=host,
            port=port,
            workers=workers,
            log_config=None,
            proxy_headers=True,
            # The access event is the application's own (`http.access`), with the route
            # template, duration and client; uvicorn's line carries none of them.
            access_log=False,
        )
    finally:
        if settings.uses_embedded_database:
            from nscl_domain.embedded import stop_postgres

            stop_postgres()


def _exit_normally(signum: int, frame: object) -> None:
    raise SystemExit(0)


def _share_metrics_between_processes() -> None:
    """Let every API process count into files one /metrics reads together (prometheus_client's
    multiprocess mode): set before the processes start, emptied of a previous run's counts."""
    import os
    import tempfile
    from pathlib import Path

    folder = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if not folder:
        folder = tempfile.mkdtemp(prefix="nscl-metrics-")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = folder
    for stale in Path(folder).glob("*.db"):
        stale.unlink()


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


def _run_async(work: Callable[[Process, Caller], Awaitable[T]], *, hand_over: bool = False) -> T:
    """Run use cases against the configured database as the operator at the console.

    With ``hand_over`` and NSCL_REDIS_URL set, jobs written are handed to the queue at once;
    otherwise the worker's sweep finds them in the outbox within seconds.
    """
    from nscl_domain.composition.process import open_process
    from nscl_domain.identity import SYSTEM

    settings = _settings()
    url = _database_url(settings)
    actor = dataclasses.replace(SYSTEM, client_id=f"cli:{getpass.getuser()}")

    async def main() -> T:
        redis = None
        queue = None
        if hand_over and settings.redis_url is not None:
            from arq.connections import RedisSettings, create_pool

            from nscl_domain.jobs.queue import ArqJobQueue

            redis = await create_pool(RedisSettings.from_dsn(str(settings.redis_url)))
            queue = ArqJobQueue(redis, settings.queue_name)
        process = open_process(settings, url, queue, pooled=False)
        try:
            return await work(process, actor)
        finally:
            await process.engine.dispose()
            if redis is not None:
                await redis.aclose()

    try:
        return asyncio.run(main())
    except DomainError as exc:
        typer.echo(f"error: {exc.detail}", err=True)
        raise typer.Exit(1) from exc


def _run_with_uow(work: Callable[[UnitOfWork, Caller], Awaitable[T]]) -> T:
    """Run one use case against the configured database as the operator at the console."""
    return _run_async(lambda process, actor: work(process.new_uow(), actor))


@clients_app.command("create")
def clients_create(
    client_id: Annotated[str, typer.Argument(help="e.g. so-tai-chinh-ketoan")],
    unit: Annotated[str, typer.Option(help="Organisation unit (id or key) it acts for.")],
    role: Annotated[list[str], typer.Option(help="A role; repeat for several.")],
    name: Annotated[str, typer.Option(help="Who or what the client is.")] = "",
    as_json: Annotated[
        bool, typer.Option("--json", help="Accepted for scripts: the answer is JSON anyway.")
    ] = True,
) -> None:
    """Register a client and print its credentials as JSON (the secret is shown this once)."""
    from nscl_domain.identity import service as identity

    view, secret = _run_with_uow(
        lambda uow, actor: identity.create_client(
            uow, actor, client_id=client_id, name=name or client_id, unit=unit, roles=role
        )
    )
    _print_secret(view.client.client_id, secret)


def _print_secret(client_id: str, secret: str) -> None:
    # JSON with or without --json: the answer is a credentials file the client is given
    # (`> client.json`), and scripts read it with jq.
    _print_json({"client_id": client_id, "client_secret": secret})


@clients_app.command("disable")
def clients_disable(client_id: str) -> None:
    """Refuse the client's secret and tokens from now on."""
    from nscl_domain.identity import service as identity

    _run_with_uow(lambda uow, actor: identity.disable_client(uow, actor, client_id))
    typer.echo(f"{client_id} disabled")


@clients_app.command("rotate")
def clients_rotate(
    client_id: str,
    as_json: Annotated[
        bool, typer.Option("--json", help="Accepted for scripts: the answer is JSON anyway.")
    ] = True,
) -> None:
    """Give the client a new secret and print its credentials as JSON; the old one stops
    working."""
    from nscl_domain.identity import service as identity

    view, secret = _run_with_uow(lambda uow, actor: identity.rotate_secret(uow, actor, client_id))
    _print_secret(view.client.client_id, secret)


@clients_app.command("list")
def clients_list(as_json: JsonOption = False) -> None:
    """List clients with their unit, roles and whether they are enabled."""
    from nscl_domain.identity import service as identity

    views = _run_with_uow(lambda uow, actor: identity.list_clients(uow))
    if as_json:
        _print_json(
            [
                {
                    "client_id": v.client.client_id,
                    "unit": v.unit.key,
                    "roles": list(v.client.roles),
                    "enabled": v.client.enabled,
                }
                for v in views
            ]
        )
        return
    for view in views:
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
    """Seal every key in force and every webhook signing secret under
    NSCL_SIGNING_KEY_PASSPHRASE (the old passphrase given in
    NSCL_SIGNING_KEY_PREVIOUS_PASSPHRASES); also seals those stored before a passphrase was
    set."""
    from nscl_domain.events import service as webhooks
    from nscl_domain.identity import service as identity
    from nscl_domain.identity.sealing import KeySealer

    settings = Settings()
    if settings.signing_key_passphrase is None:
        raise typer.BadParameter("set NSCL_SIGNING_KEY_PASSPHRASE to the passphrase to seal with")
    sealer = KeySealer.from_settings(settings)
    changed = _run_with_uow(lambda uow, actor: identity.reseal_signing_keys(uow, actor, sealer))
    typer.echo(f"{len(changed)} key(s) resealed" + (f": {', '.join(changed)}" if changed else ""))
    subs = _run_with_uow(lambda uow, actor: webhooks.reseal_secrets(uow, actor, sealer))
    typer.echo(f"{len(subs)} webhook subscription(s) resealed")


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


def _job_json(job: Any, progress: dict[str, Any] | None = None) -> dict[str, Any]:
    from nscl_api.jobs.schemas import JobRead

    return JobRead.of(job, progress).model_dump(mode="json")


def _job_line(job: Any) -> str:
    return f"{job.id}\t{job.name}\t{job.status}\t{job.attempts}\t{job.created_at.isoformat()}"


@jobs_app.command("list")
def jobs_list(
    status: Annotated[str | None, typer.Option(help="pending, running, succeeded, …")] = None,
    name: Annotated[str | None, typer.Option(help="e.g. rollups.rebuild")] = None,
    limit: Annotated[int, typer.Option(min=1, max=200)] = 20,
    as_json: JsonOption = False,
) -> None:
    """List jobs, newest first: id, name, status, attempts, created."""
    from nscl_domain.jobs import JobStatus
    from nscl_domain.jobs import service as jobs

    wanted = JobStatus(status) if status else None
    found = _run_with_uow(
        lambda uow, actor: jobs.list_jobs(uow, actor, status=wanted, name=name, limit=limit)
    )[:limit]
    if as_json:
        _print_json([_job_json(job) for job in found])
        return
    for job in found:
        typer.echo(_job_line(job))


@jobs_app.command("show")
def jobs_show(job_id: uuid.UUID, as_json: JsonOption = False) -> None:
    """Show a job: status, attempts, timings, progress, error and result."""
    from nscl_domain.jobs import service as jobs

    async def work(process: Process, actor: Caller) -> dict[str, Any]:
        job = await jobs.get(process.new_uow(), actor, job_id)
        return _job_json(job, await jobs.progress_of(process.new_uow(), actor, job_id))

    shown = _run_async(work)
    if as_json:
        _print_json(shown)
        return
    for key, value in shown.items():
        if isinstance(value, dict | list):
            value = json.dumps(value, ensure_ascii=False)
        if value is not None:
            typer.echo(f"{key}\t{value}")


@jobs_app.command("cancel")
def jobs_cancel(job_id: uuid.UUID, as_json: JsonOption = False) -> None:
    """Cancel a pending job, or ask a running one to stop at its next progress report."""
    from nscl_domain.jobs import service as jobs

    job = _run_with_uow(lambda uow, actor: jobs.cancel(uow, actor, job_id))
    if as_json:
        _print_json(_job_json(job))
    else:
        typer.echo(
            f"{job.id}\t{job.status}" + ("\tcancel requested" if job.cancel_requested else "")
        )


async def _follow(process: Process, actor: Caller, job_id: uuid.UUID, every: float) -> Any:
    """Wait for the job to end, drawing its progress (stage, done of total) on stderr."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from nscl_domain.jobs import JobStatus
    from nscl_domain.jobs import service as jobs

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn())
    with Progress(*columns, console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task("pending", total=None)
        while True:
            job = await jobs.get(process.new_uow(), actor, job_id)
            if JobStatus(job.status).is_final:
                return job
            progress = await jobs.progress_of(process.new_uow(), actor, job_id) or {}
            total = progress.get("total")
            bar.update(
                task,
                description=str(progress.get("stage") or job.status),
                total=total if isinstance(total, int) and total > 0 else None,
                completed=int(progress.get("done") or 0),
            )
            await asyncio.sleep(every)


def _finish(job: Any, as_json: bool) -> None:
    """Print the job's end; a job that did not succeed exits 1."""
    if as_json:
        _print_json(_job_json(job))
    else:
        typer.echo(f"{job.id}\t{job.status}\t{json.dumps(job.result or job.error)}")
    if job.status != "succeeded":
        raise typer.Exit(1)


@rollups_app.command("rebuild")
def rollups_rebuild(
    programme: Annotated[str, typer.Argument(help="Programme key or id.")] = "bac-kan-nscl",
    year: Annotated[int | None, typer.Option(help="One year only (default: every year).")] = None,
    full: Annotated[bool, typer.Option(help="With --year: recompute every cell.")] = False,
    wait: Annotated[bool, typer.Option(help="Follow the job with a progress bar.")] = True,
    as_json: JsonOption = False,
) -> None:
    """Queue a rebuild of a programme's rollups (a worker runs it) and follow its progress."""
    from nscl_domain.rollups import service as rollups

    async def work(process: Process, actor: Caller) -> Any:
        job = await rollups.request_refresh(process.new_uow(), actor, programme, year, full=full)
        typer.echo(f"queued job {job.id}", err=True)
        return await _follow(process, actor, job.id, 0.5) if wait else job

    job = _run_async(work, hand_over=True)
    if wait:
        _finish(job, as_json)
    elif as_json:
        _print_json(_job_json(job))
    else:
        typer.echo(str(job.id))


def _schedule_json(view: Any) -> dict[str, Any]:
    from nscl_api.schedules.schemas import ScheduleRead

    return ScheduleRead.of(view).model_dump(mode="json")


def _schedule_line(view: Any) -> str:
    s = view.schedule
    state = "enabled" if s.enabled else "paused"
    upcoming = view.next_fire_times[0].isoformat() if view.next_fire_times else "-"
    last = view.runs[0].status if view.runs else "-"
    return f"{s.key}\t{state}\t{s.cron}\t{s.job_name}\tnext {upcoming}\tlast {last}"


@schedules_app.command("list")
def schedules_list(as_json: JsonOption = False) -> None:
    """List schedules: key, state, cron, job, next fire time, last run's outcome."""
    from nscl_domain.jobs import schedules

    views = _run_with_uow(lambda uow, actor: schedules.list_schedules(uow, actor))
    if as_json:
        _print_json([_schedule_json(v) for v in views])
        return
    for view in views:
        typer.echo(_schedule_line(view))


def _set_enabled(key: str, enabled: bool, as_json: bool) -> None:
    from nscl_domain.jobs import schedules

    view = _run_async(
        lambda process, actor: schedules.update_schedule(
            process.new_uow(),
            actor,
            process.registry,
            key,
            schedules.ScheduleChanges(enabled=enabled),
        )
    )
    if as_json:
        _print_json(_schedule_json(view))
    else:
        typer.echo(_schedule_line(view))


@schedules_app.command("pause")
def schedules_pause(key: str, as_json: JsonOption = False) -> None:
    """Stop a schedule firing until it is resumed."""
    _set_enabled(key, False, as_json)


@schedules_app.command("resume")
def schedules_resume(key: str, as_json: JsonOption = False) -> None:
    """Fire a paused schedule again, from now on (missed fire times are not made up)."""
    _set_enabled(key, True, as_json)


@schedules_app.command("run-now")
def schedules_run_now(
    key: str,
    wait: Annotated[bool, typer.Option(help="Follow the job with a progress bar.")] = False,
    as_json: JsonOption = False,
) -> None:
    """Queue the schedule's job now; it is listed among the schedule's runs."""
    from nscl_domain.jobs import schedules

    async def work(process: Process, actor: Caller) -> Any:
        job = await schedules.run_now(process.new_uow(), actor, process.registry, key)
        typer.echo(f"queued job {job.id}", err=True)
        return await _follow(process, actor, job.id, 0.5) if wait else job

    job = _run_async(work, hand_over=True)
    if wait:
        _finish(job, as_json)
    elif as_json:
        _print_json(_job_json(job))
    else:
        typer.echo(str(job.id))


@app.command()
def openapi() -> None:
    """Print the OpenAPI document the code generates (the committed openapi.json)."""
    from nscl_api.main import create_app

    document = create_app(Settings()).openapi()
    json.dump(document, sys.stdout, indent=2, ensure_ascii=False)
    sys.stdout.write("\n")
