"""The FastAPI application factory."""

from __future__ import annotations

import contextlib
import gc
import re
from collections.abc import AsyncIterator, MutableMapping
from typing import Any

import structlog
from asgi_correlation_id import correlation_id
from fastapi import Depends, FastAPI
from fastapi.openapi.utils import get_openapi

from nscl_api.audit.router import router as audit_router
from nscl_api.auth.router import router as auth_router
from nscl_api.budget.router import router as budget_router
from nscl_api.catalogue.router import periods_router, programmes_router, units_router
from nscl_api.clients.router import router as clients_router
from nscl_api.conditional import RESPONSE_HEADERS
from nscl_api.deps import check_v1_request, reject_unstorable_parameters
from nscl_api.docs import PAGE_PATHS as DOCS_PAGE_PATHS
from nscl_api.docs import router as docs_router
from nscl_api.documents.router import router as documents_router
from nscl_api.errors import install_error_handlers, responses
from nscl_api.examples import REQUEST_EXAMPLES
from nscl_api.health.router import router as health_router
from nscl_api.idempotency import install_idempotency
from nscl_api.jobs.router import router as jobs_router
from nscl_api.metrics import add_metrics_route, route_templates
from nscl_api.middleware import EdgeMiddleware
from nscl_api.plans.router import router as plans_router
from nscl_api.problems import PROBLEM_MEDIA_TYPE
from nscl_api.records.router import router as records_router
from nscl_api.reports.history import (
    router as history_router,
)
from nscl_api.reports.history import (
    uploads_router as history_uploads_router,
)
from nscl_api.reports.router import router as reports_router
from nscl_api.reports.router import uploads_router
from nscl_api.resources import Companion, Resources, open_resources
from nscl_api.rollups.intake import router as intake_router
from nscl_api.rollups.router import router as rollups_router
from nscl_api.schedules.router import router as schedules_router
from nscl_api.webhooks.router import router as webhooks_router
from nscl_domain.settings import Settings

log = structlog.get_logger(__name__)

API_VERSION = "1.0.0"
DESCRIPTION = """\
Backend of the provincial programme supporting enterprises to raise productivity and
quality of products and goods (*năng suất chất lượng*, NSCL) 2021–2030.

Reporting units file plans, budget estimates and annual reports; workers aggregate them
into provincial rollups. Every error is an RFC 9457 `application/problem+json` body with a
stable `code`. Lists use cursor pagination (`limit`, `cursor` → `items`, `next_cursor`).
Long work answers `202 Accepted` with `Location: /v1/jobs/{id}`.
"""

SERVERS = [{"url": "/", "description": "This service"}]
# Who answers for the contract: the programme's standing body, which runs the service.
CONTACT = {"name": "Sub-department of Standards, Metrology and Quality (DOST), NSCL standing body"}
# Not open source (pyproject: Proprietary); SPDX spells a licence it has no id for this way.
LICENSE = {"name": "Proprietary", "identifier": "LicenseRef-Proprietary"}

TAGS = [
    {"name": "service", "description": "Liveness and readiness."},
    {
        "name": "authentication",
        "description": "OAuth2 client credentials: exchange a client id and secret for a "
        "short-lived bearer token; public keys for other systems to verify tokens.",
    },
    {
        "name": "organisation units",
        "description": "Effective-dated organisation units with successor links; `as_of` "
        "returns the structure of a day.",
    },
    {
        "name": "programmes",
        "description": "The national programme and provincial plans: phases, indicators, "
        "targets, task groups, tasks and who does what.",
    },
    {
        "name": "reporting",
        "description": "Obligations, ad hoc requests, reports and their versions, review, "
        "spreadsheet import, timeliness.",
    },
    {
        "name": "history",
        "description": "The programme's past: reports of earlier years entered as DOST received "
        "them (official letter and day received; one by one or a province's history from one "
        "spreadsheet), and baseline figures (2011–2020, base year 2020) targets compare with.",
    },
    {
        "name": "plans",
        "description": "Five-year and annual plans of the reporting units, reviewed as reports "
        "are; change requests to accepted plans and DOST's decisions, kept as versions.",
    },
    {
        "name": "records",
        "description": "Programme records of DOST and the units (honours, National Quality "
        "Award entries, training courses, communication, model enterprises, inspections), "
        "reviewed as reports are; accepted ones count into the indicators they determine.",
    },
    {
        "name": "budget",
        "description": "Budget estimates in whole đồng, routed by funding source to Finance or "
        "Planning and Investment; dossiers, acknowledgements and allocations.",
    },
    {
        "name": "documents",
        "description": "The annual report and phase reviews officials sign, as DOCX and XLSX.",
    },
    {
        "name": "rollups",
        "description": "Published provincial rollups of accepted reports and records.",
    },
    {
        "name": "national-intake",
        "description": "The national instance's intake: provinces' own instances send each "
        "published provincial rollup, which the national rollup then combines.",
    },
    {"name": "jobs", "description": "Background jobs: status, attempts, timings, results."},
    {
        "name": "schedules",
        "description": "When jobs run: cron expressions read in Asia/Ho_Chi_Minh, paused or "
        "enabled, their next fire times and latest runs.",
    },
    {
        "name": "webhooks",
        "description": "Subscriptions of other systems to events (CloudEvents, signed as "
        "Standard Webhooks), their deliveries and replays.",
    },
    {"name": "audit", "description": "Append-only record of every change."},
    {
        "name": "clients",
        "description": "API clients (systems and front-ends acting for a unit), for those "
        "who manage them; created, rotated and disabled with `nscl clients`.",
    },
]


def create_app(
    settings: Settings, resources: Resources | None = None, *, companion: Companion | None = None
) -> FastAPI:
    """Build the application; with ``resources`` given (tests), the lifespan opens nothing.

    ``companion`` runs beside the API when there is no Redis (the embedded default's worker).
    """

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if resources is not None:
            app.state.resources = resources
            yield
            return
        async with open_resources(settings, companion) as opened:
            app.state.resources = opened
            # What start-up built lives as long as the process: keeping it out of the
            # collector's generations keeps full collections short under load.
            gc.freeze()
            log.info(
                "api.started",
                embedded_database=settings.uses_embedded_database,
                embedded_redis=settings.uses_embedded_redis,
            )
            yield

    app = FastAPI(
        title="nscl",
        version=API_VERSION,
        description=DESCRIPTION,
        openapi_tags=TAGS,
        contact=CONTACT,
        license_info=LICENSE,
        lifespan=lifespan,
        # FastAPI's own pages load their viewers from a CDN; docs.py serves them from here.
        docs_url=None,
        redoc_url=None,
        # The only flow is client credentials: Swagger UI needs no redirect page.
        swagger_ui_oauth2_redirect_url=None,
        # The service reports through Prometheus (/metrics) and its structured logs; FastAPI's
        # OpenTelemetry support would otherwise look for providers on every request.
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    if resources is not None:
        app.state.resources = resources
    install_error_handlers(app)
    install_idempotency(app)
    app.include_router(health_router)
    app.include_router(docs_router)
    v1_dependencies = [Depends(check_v1_request)]
    # Routes are matched in order: the most polled (published rollups) are tried first.
    for router in (
        rollups_router,
        units_router,
        programmes_router,
        periods_router,
        reports_router,
        history_router,
        plans_router,
        records_router,
        budget_router,
        documents_router,
        jobs_router,
        schedules_router,
        audit_router,
        clients_router,
        webhooks_router,
        intake_router,
    ):
        app.include_router(router, dependencies=v1_dependencies)
    app.include_router(uploads_router, dependencies=[Depends(reject_unstorable_parameters)])
    app.include_router(history_uploads_router, dependencies=[Depends(reject_unstorable_parameters)])
    # The token endpoint takes a form, as OAuth2 says, so it is spared the JSON-only rule.
    app.include_router(auth_router, dependencies=[Depends(reject_unstorable_parameters)])

    add_metrics_route(app)
    # Outside every other middleware: its answers (413) and the application's carry the
    # request id and the security headers, and every one is counted, timed and logged.
    # It answers the published rollup's plain poll itself (nscl_api.rollups.fast).
    app.add_middleware(
        EdgeMiddleware,
        max_body_bytes=settings.max_body_bytes,
        docs_paths=DOCS_PAGE_PATHS,
        templates=route_templates(app),
    )
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]  # FastAPI's documented hook
    return app


def add_request_id(
    logger: object, method_name: str, event: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """Put the request's X-Request-ID on every log line written while serving it."""
    request_id = correlation_id.get()
    if request_id is not None:
        event.setdefault("request_id", request_id)
    return event


def _openapi(app: FastAPI) -> dict[str, Any]:
    """Generate the document once, with every error response described as problem+json."""
    if app.openapi_schema is not None:
        return app.openapi_schema
    document = get_openapi(
        title=app.title,
        version=app.version,
        description=app.description,
        routes=app.routes,
        tags=app.openapi_tags,
        contact=app.contact,
        license_info=app.license_info,
        # Relative, so generated clients and the docs page call whichever host served them.
        servers=SERVERS,
        separate_input_output_schemas=app.separate_input_output_schemas,
    )
    problem_ref = {"$ref": "#/components/schemas/Problem"}
    body_errors = responses(400, 415)
    # The size limit sits in front of every route: a request declaring or sending a body
    # over it, whatever its method, is answered 413 before any route sees it.
    size_errors = responses(413)
    auth_errors = responses(401, 403)
    # Every /v1 operation needs the database: during an outage it answers 503.
    outage_errors = responses(503)
    # A repeated Idempotency-Key: 409 while the first request runs, 422 for another request.
    idempotency_errors = responses(409, 422)
    for path, path_item in document.get("paths", {}).items():
        for operation in path_item.values():
            responses_ = operation.setdefault("responses", {})
            added = {**body_errors} if "requestBody" in operation else {}
            added |= size_errors
            if operation.get("security"):
                added |= auth_errors
            if path.startswith("/v1/"):
                added |= outage_errors
            if any(p.get("name") == "Idempotency-Key" for p in operation.get("parameters", [])):
                added |= idempotency_errors
            for status, entry in added.items():
                responses_.setdefault(
                    str(status),
                    {
                        "description": entry["description"],
                        "content": {PROBLEM_MEDIA_TYPE: {"schema": problem_ref}},
                    },
                )
            for status in ("429", "503"):
                if status in responses_:
                    responses_[status].setdefault("headers", {}).setdefault(
                        "Retry-After", RESPONSE_HEADER_SCHEMAS["Retry-After"]
                    )
            _document_headers(operation)
            _add_request_example(operation)
            _describe_success(operation)
            # Said outright rather than left out: generators then know the operation is
            # public instead of guessing from the absence of a document-wide default.
            operation.setdefault("security", [])
            if "422" in responses_:
                responses_["422"] = {
                    "description": "The input is invalid; `errors` lists every field.",
                    "content": {PROBLEM_MEDIA_TYPE: {"schema": problem_ref}},
                }
            for status, response in responses_.items():
                for media_type, content in response.get("content", {}).items():
                    # A download described by its media type alone is a file, not `unknown`.
                    if not content.get("schema") and "json" not in media_type:
                        content["schema"] = {"type": "string", "format": "binary"}
                if int(status) >= 400 and "content" in response:
                    schema = next(iter(response["content"].values())).get("schema", problem_ref)
                    response["content"] = {PROBLEM_MEDIA_TYPE: {"schema": schema}}
    schemas = document.get("components", {}).get("schemas", {})
    for unused in ("HTTPValidationError", "ValidationError"):
        schemas.pop(unused, None)
    _rename_schemas(document, _schema_names(schemas))
    app.openapi_schema = document
    return document


RESPONSE_HEADER_SCHEMAS: dict[str, dict[str, Any]] = {
    "ETag": {
        "description": "The revision read: send it back in If-Match to change the resource, "
        "or in If-None-Match to be answered 304 while it is unchanged.",
        "schema": {"type": "string"},
    },
    "Location": {
        "description": "Where the created resource, or the job queued, can be read.",
        "schema": {"type": "string", "format": "uri-reference"},
    },
    "Link": {
        "description": 'The work this change set going: `</v1/jobs/{id}>; rel="monitor"` names '
        "the job that refreshes the rollups it affects (its result names the run published).",
        "schema": {"type": "string"},
    },
    "Idempotent-Replayed": {
        "description": "`true` when this is the stored answer to an earlier request with the "
        "same Idempotency-Key.",
        "schema": {"type": "string", "enum": ["true"]},
    },
    "Retry-After": {
        "description": "Seconds to wait before retrying.",
        "schema": {"type": "integer"},
    },
}


def _document_headers(operation: dict[str, Any]) -> None:
    """Describe the headers the code sets by hand, and require If-Match where 428 answers."""
    responses_ = operation["responses"]
    parameters = {p.get("name"): p for p in operation.get("parameters", [])}
    sent = list(operation.pop(RESPONSE_HEADERS, []))
    idempotent = "Idempotency-Key" in parameters
    if idempotent:
        sent.append("Idempotent-Replayed")
    for status, response in responses_.items():
        success = status.startswith("2")
        for name in sent:
            # A 304 repeats the ETag it confirms, and nothing else.
            if success or (status == "304" and name == "ETag"):
                # A route's own, more specific description (JOB_QUEUED's Location) stays.
                response.setdefault("headers", {}).setdefault(name, RESPONSE_HEADER_SCHEMAS[name])
    if idempotent and "409" in responses_:
        # request_in_progress: the first request with the key still runs.
        responses_["409"].setdefault("headers", {}).setdefault(
            "Retry-After", RESPONSE_HEADER_SCHEMAS["Retry-After"]
        )
    # Parsed as optional so that a missing If-Match is the 428 problem, not a generic 422; the
    # contract still says it is required, which is what a client must do.
    if "If-Match" in parameters and "428" in responses_:
        if_match = parameters["If-Match"]
        if_match["required"] = True
        # A required header has a value: the `null` of the optional parsing is not one.
        schema = if_match.get("schema", {})
        non_null = [s for s in schema.get("anyOf", []) if s.get("type") != "null"]
        if len(non_null) == 1:
            if_match["schema"] = {
                **non_null[0],
                **{k: v for k, v in schema.items() if k != "anyOf"},
            }


# What a client calls the resource a schema carries, where the schema's name does not say it.
_NOUNS = {
    "AuditEventRead": "audit event",
    "ChangeRequestRead": "plan change request",
    "DossierRead": "budget dossier",
    "EstimateRead": "budget estimate",
    "FollowUpRow": "task's estimate, allocation and spending",
    "Health": "liveness of the process",
    "ImportOutcome": "outcome of the import: every row checked, and what was applied",
    "Jwks": "public keys (JWK Set) of this service's tokens",
    "ObligationGenerated": "count of the obligations created and of those that existed",
    "OrgUnitDetail": "organisation unit, with its predecessors and successors",
    "OrgUnitRead": "organisation unit",
    "PlanSummary": "plan",
    "PlanVersionRead": "plan version",
    "ProgrammeDetail": "programme, with its phases",
    "ProvenanceRead": "report versions (or provincial runs) behind the figure",
    "Readiness": "state of each dependency",
    "RegimeRead": "reporting regime",
    "RequestRead": "ad hoc reporting request",
    "RoleRead": "programme role",
    "RollupPhaseRead": "rollup of the phase",
    "RollupRead": "published rollup",
    "RuleRead": "validation rule",
    "RunsRead": "rollup runs of the year",
    "SpendingRead": "spending recorded",
    "SuccessionRead": "successor link",
    "TaskExtensionRead": "extended task",
    "TimelinessSummary": "timeliness of the year's obligations",
    "TokenResponse": "access token",
    "TotalRow": "budget total",
    "VersionRead": "report version",
}
_DEFAULT_SUCCESS = "Successful Response"
# Where the schema is shared by another resource, the operation says which it is.
_SUCCESS = {"listBaselinePeriods": "One page of the list, each item a baseline period."}


def _noun(schema: str) -> str:
    if schema in _NOUNS:
        return _NOUNS[schema]
    base = re.sub(r"(Read|Detail)$", "", schema)
    return re.sub(r"(?<!^)(?=[A-Z])", " ", base).lower()


def _describe_success(operation: dict[str, Any]) -> None:
    """Replace FastAPI's "Successful Response" with what the answer holds, named."""
    for status, response in operation["responses"].items():
        if not status.startswith("2") or response.get("description") != _DEFAULT_SUCCESS:
            continue
        schema = response.get("content", {}).get("application/json", {}).get("schema", {})
        name = schema.get("$ref", "").removeprefix("#/components/schemas/")
        page = _GENERIC_PAGE.match(name)
        if operation.get("operationId") in _SUCCESS:
            text = _SUCCESS[operation["operationId"]]
        elif page is not None:
            text = f"One page of the list, each item a {_noun(page['item'])}."
        elif status == "202":
            text = f"Accepted: the {_noun(name)} queued."
        elif status == "201":
            text = f"Created: the {_noun(name)}."
        else:
            text = f"The {_noun(name)}."
        if status in ("201", "202") and "Location" in response.get("headers", {}):
            text += (
                " `Location` says where to follow it."
                if status == "202"
                else (" `Location` says where to read it again.")
            )
        response["description"] = text


def _add_request_example(operation: dict[str, Any]) -> None:
    """Put the operation's example (examples.py) on its JSON or form body; files have none."""
    found = REQUEST_EXAMPLES.get(operation.get("operationId", ""))
    if found is None or "requestBody" not in operation:
        return
    summary, value = found
    for media_type, content in operation["requestBody"]["content"].items():
        if "json" in media_type or media_type == "application/x-www-form-urlencoded":
            content["examples"] = {"bac-kan": {"summary": summary, "value": value}}


_GENERIC_PAGE = re.compile(r"^Page_(?P<item>[A-Za-z0-9]+)_$")
# A model read and written with different required fields (defaults on the way in, always
# sent on the way out) is two shapes: the answer keeps the model's name, the request says so.
_TWIN = re.compile(r"^(?P<model>[A-Za-z0-9]+)-(?P<side>Input|Output)$")
# FastAPI names a form body after its operation: `Body_issueToken`.
_FORM_BODY = re.compile(r"^Body_(?P<operation>[A-Za-z0-9]+)$")


def _schema_names(schemas: dict[str, Any]) -> dict[str, str]:
    """Contract names for generated ones: ``Page_TaskRead_`` → ``TaskReadPage``,
    ``Body_issueToken`` → ``IssueTokenForm``, ``ReportContent-Output`` → ``ReportContent``
    and ``ReportContent-Input`` → ``ReportContentInput``.

    Pydantic keys a parametrized model by its origin and arguments, whatever its
    ``model_parametrized_name``, so the component is renamed once the document is built.
    """
    renames: dict[str, str] = {}
    for name in schemas:
        match = _GENERIC_PAGE.match(name)
        if match is not None:
            renames[name] = f"{match['item']}Page"
        twin = _TWIN.match(name)
        if twin is not None:
            side = "" if twin["side"] == "Output" else "Input"
            renames[name] = f"{twin['model']}{side}"
        form = _FORM_BODY.match(name)
        if form is not None:
            operation = form["operation"]
            renames[name] = f"{operation[0].upper()}{operation[1:]}Form"
    clashes = set(renames.values()) & set(schemas)
    if clashes:
        raise RuntimeError(f"Schema names clash after renaming: {sorted(clashes)}")
    return renames


def _rename_schemas(document: dict[str, Any], renames: dict[str, str]) -> None:
    """Rename components and every reference to them; components stay in name order."""
    if not renames:
        return
    schemas = document["components"]["schemas"]
    document["components"]["schemas"] = dict(
        sorted((renames.get(k, k), v) for k, v in schemas.items())
    )
    for new in renames.values():
        schema = document["components"]["schemas"][new]
        if "title" in schema:
            schema["title"] = new
    prefix = "#/components/schemas/"

    def visit(node: Any) -> None:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith(prefix):
                target = ref.removeprefix(prefix)
                node["$ref"] = prefix + renames.get(target, target)
            mapping = node.get("discriminator", {}).get("mapping")
            if isinstance(mapping, dict):  # a union's variants, named by reference strings
                for tag, target in mapping.items():
                    name = target.removeprefix(prefix)
                    mapping[tag] = prefix + renames.get(name, name)
            for value in node.values():
                visit(value)
        elif isinstance(node, list):
            for value in node:
                visit(value)

    visit(document)
