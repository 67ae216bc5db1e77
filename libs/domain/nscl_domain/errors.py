"""Domain errors. They carry no HTTP: the API maps each class to a status in one table."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

from pydantic import ValidationError

# Every `code` a problem answer can carry: the one list that raising code is checked against
# (mypy refuses a code not in it) and that the contract publishes as an enum, so a client can
# switch on codes exhaustively. A new code is added here first.
ProblemCode = Literal[
    "allocation_exceeded",
    "allocation_not_found",
    "backfill_invalid",
    "bad_request",
    "busy",
    "change_request_closed",
    "change_request_not_found",
    "change_request_open",
    "change_request_stale",
    "client_exists",
    "client_not_found",
    "conflict",
    "constraint_violated",
    "database_unavailable",
    "decider_not_competent",
    "decider_not_in_force",
    "document_not_found",
    "dossier_not_draft",
    "dossier_not_found",
    "dossier_not_sent",
    "estimate_empty",
    "estimate_exists",
    "estimate_not_editable",
    "estimate_not_found",
    "extension_key_taken",
    "extension_out_of_programme",
    "focal_agency_not_allowed",
    "forbidden",
    "four_eyes",
    "http_error",
    "idempotency_key_reused",
    "import_rejected",
    "indicator_not_found",
    "insufficient_scope",
    "intake_not_provincial",
    "intake_outdated",
    "internal_error",
    "invalid_allocations",
    "invalid_baseline",
    "invalid_client",
    "invalid_client_id",
    "invalid_content",
    "invalid_cron",
    "invalid_cursor",
    "invalid_due_date",
    "invalid_event_types",
    "invalid_job_args",
    "invalid_lines",
    "invalid_period",
    "invalid_replay",
    "invalid_request",
    "invalid_rule_params",
    "invalid_schedule_key",
    "invalid_scope",
    "invalid_token",
    "job_already_pending",
    "job_not_cancellable",
    "job_not_found",
    "job_not_retryable",
    "last_signing_key",
    "malformed_json",
    "method_not_allowed",
    "missing_token",
    "no_destination",
    "no_signing_key",
    "not_a_phase",
    "not_acceptable",
    "not_found",
    "not_ready",
    "obligation_not_found",
    "parent_cycle",
    "parent_not_found",
    "payload_too_large",
    "period_outside_parent",
    "period_reversed",
    "phase_not_found",
    "plan_empty",
    "plan_exists",
    "plan_not_accepted",
    "plan_not_editable",
    "plan_not_found",
    "plan_version_not_found",
    "precondition_failed",
    "precondition_required",
    "programme_not_found",
    "queue_unavailable",
    "rate_limited",
    "record_kind_changed",
    "record_not_editable",
    "record_not_found",
    "regime_not_found",
    "reminder_not_found",
    "report_exists",
    "report_invalid",
    "report_not_editable",
    "report_not_found",
    "request_in_progress",
    "reviewer_unit_not_acting",
    "role_not_found",
    "role_outlasts_unit",
    "role_overlap",
    "rollup_not_found",
    "rollup_not_published",
    "rule_not_found",
    "run_not_found",
    "schedule_exists",
    "schedule_fired",
    "schedule_not_found",
    "signing_key_not_found",
    "signing_key_sealed",
    "smtp_not_configured",
    "spending_outside_year",
    "stale_revision",
    "succession_exists",
    "successor_is_self",
    "successor_not_found",
    "successor_not_in_force",
    "task_not_found",
    "temporarily_unavailable",
    "token_expired",
    "too_many_attempts",
    "too_many_requests",
    "too_many_values",
    "transition_not_allowed",
    "unauthenticated",
    "unavailable",
    "unit_code_clash",
    "unit_key_taken",
    "unit_not_acting",
    "unit_not_found",
    "unit_not_in_force",
    "unit_not_in_period",
    "unknown_client",
    "unknown_indicator",
    "unknown_job",
    "unknown_programme",
    "unknown_role",
    "unknown_unit",
    "unreadable_file",
    "unsupported_grant_type",
    "unsupported_media_type",
    "upload_compression_ratio",
    "upload_parse_failed",
    "upload_parse_timeout",
    "upload_parsers_busy",
    "upload_shared_strings_too_large",
    "upload_too_large",
    "upload_too_many_cells",
    "upload_too_many_columns",
    "upload_too_many_parts",
    "upload_too_many_rows",
    "upload_too_many_shared_strings",
    "upload_uncompressed_too_large",
    "validation_failed",
    "version_not_found",
    "webhook_disabled",
    "webhook_event_not_found",
    "webhook_not_found",
    "webhook_target_internal",
    "webhook_target_redirects",
    "webhook_target_refused",
    "year_outside_programme",
    "year_outside_regime",
]
PROBLEM_CODES: frozenset[str] = frozenset(get_args(ProblemCode))


@dataclass(frozen=True)
class FieldProblem:
    """One invalid input, named by its location (e.g. ``("body", "valid_to")``)."""

    location: tuple[str | int, ...]
    message: str
    code: str = "invalid"

    @classmethod
    def all_of(cls, exc: ValidationError, at: tuple[str | int, ...]) -> list[FieldProblem]:
        """Every error of a pydantic validation, placed under ``at`` in the request."""
        return [cls((*at, *err["loc"]), err["msg"], err["type"]) for err in exc.errors()]


@dataclass
class DomainError(Exception):
    """Base of every error the domain raises on purpose."""

    detail: str
    code: ProblemCode
    fields: Sequence[FieldProblem] = field(default_factory=tuple)
    # Members the problem carries beside the standard ones (e.g. the unit's period).
    extra: dict[str, Any] = field(default_factory=dict)

    def __str__(self) -> str:
        return self.detail


class NotFound(DomainError):
    """The object does not exist, or the caller may not know that it does."""


class Conflict(DomainError):
    """The request clashes with the object's current state."""


class PreconditionFailed(DomainError):
    """The caller's copy of the object is stale (``If-Match`` did not match)."""


class Forbidden(DomainError):
    """The caller is known but may not do this."""


class Invalid(DomainError):
    """The input breaks a rule of the domain; ``fields`` names what is wrong."""


class Unavailable(DomainError):
    """A dependency the operation needs is not reachable right now."""


class Unauthenticated(DomainError):
    """No valid credentials: unknown or disabled client, bad secret, bad token."""


class RateLimited(DomainError):
    """Too many attempts; ``retry_after`` seconds until the next is accepted."""

    retry_after: int = 60
