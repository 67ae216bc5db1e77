"""Baseline: the whole schema of the first release, created directly.

Grouped by context, in foreign-key order: jobs, the programme catalogue, identity and
audit, reporting, rollups, budget, plans. What a column or a check means is said on the
models; this file says why the schema does what the models cannot (triggers, partial
indexes, missing foreign keys).

Database roles and grants are not here: `nscl db upgrade` grants the service role after
migrating (`nscl_domain.schema`), so the owner runs this and the service owns nothing.

Revision ID: 104761abeb59
Revises:
Create Date: 2026-11-30 04:00:00+00:00
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "104761abeb59"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


# Shared column shapes, so each table reads as what is particular to it.
def _id() -> sa.Column[Any]:
    return sa.Column("id", sa.Uuid(), nullable=False)


def _key(length: int = 100) -> sa.Column[Any]:
    return sa.Column("key", sa.String(length=length), nullable=False)


def _created_at(name: str = "created_at") -> sa.Column[Any]:
    return sa.Column(
        name, sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
    )


def _jsonb(name: str, *, nullable: bool = False) -> sa.Column[Any]:
    return sa.Column(name, postgresql.JSONB(astext_type=sa.Text()), nullable=nullable)


def _fk(table: str, column: str, target: str, *, ondelete: str | None = None) -> sa.Constraint:
    return sa.ForeignKeyConstraint(
        [column],
        [f"{target}.id"],
        name=op.f(f"fk_{table}_{column}_{target}"),
        ondelete=ondelete,
    )


# The workflow states of everything a unit submits and the province accepts or returns.
SUBMISSION_STATUSES = "status IN ('draft', 'submitted', 'returned', 'resubmitted', 'accepted')"
# Money is whole đồng in BIGINT; the ceiling (10^15) keeps sums far from overflow.
AMOUNT_RANGE = "amount >= 0 AND amount <= 1000000000000000"


# --- Frozen rows ------------------------------------------------------------------------
#
# What was submitted, accepted or published never changes: a correction is a new version,
# a refresh a new run. Privileges alone do not bind the tables' owner (or anyone the owner
# grants), so triggers refuse UPDATE and DELETE for every role. The service role owns
# nothing and is no superuser, so it can neither disable nor replace them.

REFUSE_CHANGE_OF_FROZEN_ROW = """
CREATE FUNCTION refuse_change_of_frozen_row() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is frozen once written: % refused', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$
"""


def _freeze(table: str) -> None:
    op.execute(
        f"CREATE TRIGGER {table}_frozen BEFORE UPDATE OR DELETE ON {table} "
        "FOR EACH ROW EXECUTE FUNCTION refuse_change_of_frozen_row()"
    )


# --- Jobs -------------------------------------------------------------------------------


def _jobs() -> None:
    # The outbox and the record of every job's life: a job row is written in the
    # transaction of the change that asks for it, and handed to the queue afterwards.
    op.create_table(
        "job",
        _id(),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column(
            "args",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.Column("dedup_key", sa.String(length=300), nullable=True),
        sa.Column("status", sa.String(length=20), server_default="pending", nullable=False),
        sa.Column("attempts", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("max_attempts", sa.Integer(), server_default=sa.text("5"), nullable=False),
        sa.Column("requested_by", sa.String(length=200), nullable=True),
        sa.Column("not_before", sa.DateTime(timezone=True), nullable=True),
        _created_at(),
        sa.Column("enqueued_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        _jsonb("result", nullable=True),
        # A running attempt renews its lease; the sweep hands the job over again once it
        # lapses. Each hand-over has its own sequence number, so nothing the queue remembers
        # of an earlier one can refuse a later one.
        sa.Column("lease_expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("handovers", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column(
            "cancel_requested", sa.Boolean(), server_default=sa.text("false"), nullable=False
        ),
        sa.CheckConstraint(
            "status IN ('pending', 'running', 'succeeded', 'failed', 'cancelled')",
            name=op.f("ck_job_status_known"),
        ),
        sa.CheckConstraint("attempts >= 0", name=op.f("ck_job_attempts_not_negative")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_job")),
    )
    op.create_index("ix_job_name_status", "job", ["name", "status"], unique=False)
    # The sweep reads jobs that are not done, oldest first; finished jobs, the great
    # majority, stay out of this index.
    op.create_index(
        "ix_job_unfinished",
        "job",
        ["created_at"],
        unique=False,
        postgresql_where=sa.text("status IN ('pending', 'running')"),
    )
    # One pending job per (name, dedup_key): a burst of changes schedules one job, while a
    # running or finished one does not stop the next from being scheduled.
    op.create_index(
        "uq_job_pending_dedup",
        "job",
        ["name", "dedup_key"],
        unique=True,
        postgresql_where=sa.text("status = 'pending' AND dedup_key IS NOT NULL"),
    )
    # Written by a running job outside its own transaction, hence a table of its own and
    # no foreign key: the job holds its row of `job` locked, and a write to that row (or a
    # key check against it) would wait for the job.
    op.create_table(
        "job_progress",
        sa.Column("job_id", sa.Uuid(), nullable=False),
        _jsonb("progress"),
        _created_at("updated_at"),
        sa.PrimaryKeyConstraint("job_id", name=op.f("pk_job_progress")),
    )


# --- Programme catalogue ----------------------------------------------------------------


def _catalogue() -> None:
    op.create_table(
        "baseline_period",
        _id(),
        _key(),
        sa.Column("name_vi", sa.String(length=200), nullable=False),
        sa.Column("name_en", sa.String(length=200), nullable=False),
        sa.Column("start_year", sa.Integer(), nullable=False),
        sa.Column("end_year", sa.Integer(), nullable=False),
        sa.CheckConstraint("end_year >= start_year", name=op.f("ck_baseline_period_years_ordered")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_baseline_period")),
        sa.UniqueConstraint("key", name=op.f("uq_baseline_period_key")),
    )
    # Organisation units over time: a merged or renamed unit keeps its row (valid_to) and
    # its successors are recorded in org_succession, so old reports keep their unit.
    op.create_table(
        "org_unit",
        _id(),
        _key(),
        sa.Column("kind", sa.String(length=50), nullable=False),
        sa.Column("code", sa.String(length=20), nullable=True),
        sa.Column("name_vi", sa.String(length=300), nullable=False),
        sa.Column("name_en", sa.String(length=300), nullable=False),
        sa.Column("abbreviation", sa.String(length=30), nullable=True),
        sa.Column("parent_id", sa.Uuid(), nullable=True),
        sa.Column("valid_from", sa.Date(), nullable=False),
        sa.Column("valid_to", sa.Date(), nullable=True),
        sa.Column("search_text", sa.Text(), nullable=False),
        sa.CheckConstraint(
            "valid_to IS NULL OR valid_to > valid_from", name=op.f("ck_org_unit_period_ordered")
        ),
        _fk("org_unit", "parent_id", "org_unit"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_org_unit")),
        sa.UniqueConstraint("key", name=op.f("uq_org_unit_key")),
    )
    op.create_index("ix_org_unit_code", "org_unit", ["code"], unique=False)
    op.create_index("ix_org_unit_parent_id", "org_unit", ["parent_id"], unique=False)
    op.create_table(
        "org_succession",
        _id(),
        _key(),
        sa.Column("predecessor_id", sa.Uuid(), nullable=False),
        sa.Column("successor_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(length=30), nullable=False),
        sa.Column("effective", sa.Date(), nullable=False),
        sa.Column("note_en", sa.Text(), nullable=True),
        sa.CheckConstraint(
            "kind IN ('merged_into', 'split_into', 'renamed_to', 'absorbed_by_area')",
            name=op.f("ck_org_succession_kind_known"),
        ),
        sa.CheckConstraint(
            "predecessor_id <> successor_id", name=op.f("ck_org_succession_not_self")
        ),
        _fk("org_succession", "predecessor_id", "org_unit"),
        _fk("org_succession", "successor_id", "org_unit"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_org_succession")),
        sa.UniqueConstraint("key", name=op.f("uq_org_succession_key")),
        sa.UniqueConstraint(
            "predecessor_id",
            "successor_id",
            "kind",
            name=op.f("uq_org_succession_predecessor_id_successor_id_kind"),
        ),
    )
    op.create_table(
        "programme",
        _id(),
        _key(),
        sa.Column("level", sa.String(length=20), nullable=False),
        sa.Column("parent_id", sa.Uuid(), nullable=True),
        sa.Column("owner_unit_id", sa.Uuid(), nullable=False),
        sa.Column("decision_no", sa.String(length=50), nullable=False),
        sa.Column("decision_date", sa.Date(), nullable=False),
        sa.Column("decided_by_vi", sa.String(length=300), nullable=False),
        sa.Column("decided_by_en", sa.String(length=300), nullable=False),
        sa.Column("name_vi", sa.Text(), nullable=False),
        sa.Column("name_en", sa.Text(), nullable=False),
        sa.Column("start_year", sa.Integer(), nullable=False),
        sa.Column("end_year", sa.Integer(), nullable=False),
        sa.CheckConstraint(
            "level IN ('national', 'provincial')", name=op.f("ck_programme_level_known")
        ),
        sa.CheckConstraint("end_year >= start_year", name=op.f("ck_programme_years_ordered")),
        _fk("programme", "owner_unit_id", "org_unit"),
        _fk("programme", "parent_id", "programme"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_programme")),
        sa.UniqueConstraint("key", name=op.f("uq_programme_key")),
    )
    op.create_table(
        "indicator",
        _id(),
        _key(),
        sa.Column("programme_id", sa.Uuid(), nullable=False),
        sa.Column("name_vi", sa.Text(), nullable=False),
        sa.Column("name_en", sa.Text(), nullable=False),
        sa.Column("unit", sa.String(length=30), nullable=False),
        sa.Column("aggregation_across_units", sa.String(length=20), nullable=False),
        sa.Column("aggregation_across_time", sa.String(length=20), nullable=False),
        _jsonb("disaggregations"),
        sa.Column("derived_from", sa.String(length=50), nullable=True),
        # The national indicator a provincial one reports into (national rollups).
        sa.Column("national_indicator_id", sa.Uuid(), nullable=True),
        sa.CheckConstraint(
            "aggregation_across_time IN ('sum', 'latest', 'maximum')",
            name=op.f("ck_indicator_time_aggregation_known"),
        ),
        sa.CheckConstraint(
            "aggregation_across_units IN ('sum', 'latest', 'maximum', 'minimum', 'average')",
            name=op.f("ck_indicator_unit_aggregation_known"),
        ),
        _fk("indicator", "programme_id", "programme"),
        _fk("indicator", "national_indicator_id", "indicator"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_indicator")),
        sa.UniqueConstraint("key", name=op.f("uq_indicator_key")),
    )
    op.create_index(op.f("ix_indicator_programme_id"), "indicator", ["programme_id"], unique=False)
    op.create_table(
        "phase",
        _id(),
        _key(),
        sa.Column("programme_id", sa.Uuid(), nullable=False),
        sa.Column("name_vi", sa.String(length=200), nullable=False),
        sa.Column("name_en", sa.String(length=200), nullable=False),
        sa.Column("start_year", sa.Integer(), nullable=False),
        sa.Column("end_year", sa.Integer(), nullable=False),
        sa.CheckConstraint("end_year >= start_year", name=op.f("ck_phase_years_ordered")),
        _fk("phase", "programme_id", "programme"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_phase")),
        sa.UniqueConstraint("key", name=op.f("uq_phase_key")),
    )
    op.create_index(op.f("ix_phase_programme_id"), "phase", ["programme_id"], unique=False)
    op.create_table(
        "programme_role",
        _id(),
        _key(150),
        sa.Column("programme_id", sa.Uuid(), nullable=False),
        sa.Column("role", sa.String(length=50), nullable=False),
        sa.Column("unit_id", sa.Uuid(), nullable=False),
        sa.Column("focal_agency_id", sa.Uuid(), nullable=True),
        sa.Column("valid_from", sa.Date(), nullable=False),
        sa.Column("valid_to", sa.Date(), nullable=True),
        sa.CheckConstraint(
            "role IN ('lead', 'standing_body', 'recurrent_estimate_recipient', "
            "'investment_estimate_recipient', 'reporting_unit', 'cooperating_unit', "
            "'receives_provincial_report')",
            name=op.f("ck_programme_role_role_known"),
        ),
        sa.CheckConstraint(
            "valid_to IS NULL OR valid_to > valid_from",
            name=op.f("ck_programme_role_period_ordered"),
        ),
        _fk("programme_role", "focal_agency_id", "org_unit"),
        _fk("programme_role", "programme_id", "programme"),
        _fk("programme_role", "unit_id", "org_unit"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_programme_role")),
        sa.UniqueConstraint("key", name=op.f("uq_programme_role_key")),
    )
    op.create_index(
        "ix_programme_role_programme_id_role",
        "programme_role",
        ["programme_id", "role"],
        unique=False,
    )
    op.create_index(op.f("ix_programme_role_unit_id"), "programme_role", ["unit_id"], unique=False)
    op.create_table(
        "task_group",
        _id(),
        _key(),
        sa.Column("programme_id", sa.Uuid(), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("name_vi", sa.Text(), nullable=False),
        sa.Column("name_en", sa.Text(), nullable=False),
        _fk("task_group", "programme_id", "programme"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_task_group")),
        sa.UniqueConstraint("key", name=op.f("uq_task_group_key")),
    )
    op.create_index(
        op.f("ix_task_group_programme_id"), "task_group", ["programme_id"], unique=False
    )
    op.create_table(
        "target",
        _id(),
        _key(),
        sa.Column("programme_id", sa.Uuid(), nullable=False),
        sa.Column("indicator_id", sa.Uuid(), nullable=False),
        sa.Column("phase_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(length=30), nullable=False),
        sa.Column("value", sa.Numeric(precision=20, scale=4), nullable=True),
        sa.Column("min_pct", sa.Numeric(precision=9, scale=4), nullable=True),
        sa.Column("max_pct", sa.Numeric(precision=9, scale=4), nullable=True),
        sa.Column("baseline_period_id", sa.Uuid(), nullable=True),
        _jsonb("disaggregation", nullable=True),
        sa.Column("approximate", sa.Boolean(), nullable=False),
        sa.Column("text_vi", sa.Text(), nullable=False),
        sa.Column("text_en", sa.Text(), nullable=False),
        sa.CheckConstraint(
            "kind IN ('phase_total', 'minimum', 'yearly_growth_range', 'baseline_percentage', "
            "'share_percentage')",
            name=op.f("ck_target_kind_known"),
        ),
        sa.CheckConstraint(
            "max_pct IS NULL OR min_pct IS NULL OR max_pct >= min_pct", name=op.f("ck_target_range")
        ),
        _fk("target", "baseline_period_id", "baseline_period"),
        _fk("target", "indicator_id", "indicator"),
        _fk("target", "phase_id", "phase"),
        _fk("target", "programme_id", "programme"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_target")),
        sa.UniqueConstraint("key", name=op.f("uq_target_key")),
    )
    op.create_index(op.f("ix_target_programme_id"), "target", ["programme_id"], unique=False)
    op.create_table(
        "task",
        _id(),
        _key(),
        sa.Column("group_id", sa.Uuid(), nullable=False),
        sa.Column("number", sa.String(length=20), nullable=False),
        sa.Column("text_vi", sa.Text(), nullable=False),
        sa.Column("text_en", sa.Text(), nullable=False),
        sa.Column("search_text", sa.Text(), nullable=False),
        _fk("task", "group_id", "task_group"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_task")),
        sa.UniqueConstraint("key", name=op.f("uq_task_key")),
    )
    op.create_index(op.f("ix_task_group_id"), "task", ["group_id"], unique=False)
    op.create_table(
        "task_extension",
        _id(),
        _key(),
        sa.Column("programme_id", sa.Uuid(), nullable=False),
        sa.Column("task_id", sa.Uuid(), nullable=True),
        sa.Column("title_vi", sa.Text(), nullable=False),
        sa.Column("title_en", sa.Text(), nullable=False),
        sa.Column("unit_id", sa.Uuid(), nullable=False),
        sa.Column("decided_by_id", sa.Uuid(), nullable=False),
        sa.Column("decision_no", sa.String(length=50), nullable=False),
        sa.Column("decision_date", sa.Date(), nullable=False),
        sa.Column("extended_to_year", sa.Integer(), nullable=False),
        _fk("task_extension", "decided_by_id", "org_unit"),
        _fk("task_extension", "programme_id", "programme"),
        _fk("task_extension", "task_id", "task"),
        _fk("task_extension", "unit_id", "org_unit"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_task_extension")),
        sa.UniqueConstraint("key", name=op.f("uq_task_extension_key")),
    )
    op.create_index(
        op.f("ix_task_extension_programme_id"), "task_extension", ["programme_id"], unique=False
    )
    op.create_table(
        "task_unit",
        sa.Column("task_id", sa.Uuid(), nullable=False),
        sa.Column("unit_id", sa.Uuid(), nullable=False),
        sa.Column("role", sa.String(length=20), nullable=False),
        sa.CheckConstraint("role IN ('lead', 'cooperating')", name=op.f("ck_task_unit_role_known")),
        _fk("task_unit", "task_id", "task", ondelete="CASCADE"),
        _fk("task_unit", "unit_id", "org_unit"),
        sa.PrimaryKeyConstraint("task_id", "unit_id", "role", name=op.f("pk_task_unit")),
    )


# --- Identity, audit and idempotent replays ---------------------------------------------

AUDIT_EVENT_REFUSE_CHANGE = """
CREATE FUNCTION audit_event_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_event is append-only: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$
"""


def _identity_and_audit() -> None:
    op.create_table(
        "audit_event",
        _id(),
        _created_at("occurred_at"),
        sa.Column("client_id", sa.String(length=100), nullable=False),
        sa.Column("unit_id", sa.Uuid(), nullable=True),
        sa.Column("unit_key", sa.String(length=100), nullable=True),
        sa.Column("action", sa.String(length=100), nullable=False),
        sa.Column("object_type", sa.String(length=50), nullable=False),
        sa.Column("object_id", sa.String(length=100), nullable=False),
        _jsonb("before", nullable=True),
        _jsonb("after", nullable=True),
        sa.Column("request_id", sa.String(length=100), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_event")),
    )
    op.create_index("ix_audit_event_actor", "audit_event", ["client_id"], unique=False)
    op.create_index(
        "ix_audit_event_object", "audit_event", ["object_type", "object_id"], unique=False
    )
    op.create_index("ix_audit_event_occurred_at", "audit_event", ["occurred_at"], unique=False)
    # The trail is append-only for every role, the service's and the owner's: a row trigger
    # refuses UPDATE and DELETE, a statement trigger TRUNCATE (which skips row triggers).
    op.execute(AUDIT_EVENT_REFUSE_CHANGE)
    op.execute(
        "CREATE TRIGGER audit_event_append_only BEFORE UPDATE OR DELETE ON audit_event "
        "FOR EACH ROW EXECUTE FUNCTION audit_event_refuse_change()"
    )
    op.execute(
        "CREATE TRIGGER audit_event_no_truncate BEFORE TRUNCATE ON audit_event "
        "FOR EACH STATEMENT EXECUTE FUNCTION audit_event_refuse_change()"
    )
    # PUBLIC holds no table privileges by default; the revoke states it for the trail. The
    # service role's privileges are granted by `nscl db upgrade` (APPEND_ONLY_TABLES).
    op.execute("REVOKE UPDATE, DELETE, TRUNCATE ON audit_event FROM PUBLIC")

    op.create_table(
        "signing_key",
        sa.Column("kid", sa.String(length=64), nullable=False),
        sa.Column("algorithm", sa.String(length=10), nullable=False),
        sa.Column("private_pem", sa.Text(), nullable=False),
        _jsonb("public_jwk"),
        _created_at(),
        sa.Column("retired_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("kid", name=op.f("pk_signing_key")),
    )
    op.create_table(
        "api_client",
        _id(),
        sa.Column("client_id", sa.String(length=100), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("secret_hash", sa.Text(), nullable=False),
        sa.Column("unit_id", sa.Uuid(), nullable=False),
        sa.Column("roles", sa.ARRAY(sa.String(length=30)), nullable=False),
        sa.Column("enabled", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        _created_at(),
        sa.Column("secret_rotated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("disabled_at", sa.DateTime(timezone=True), nullable=True),
        _fk("api_client", "unit_id", "org_unit"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_client")),
        sa.UniqueConstraint("client_id", name=op.f("uq_api_client_client_id")),
    )
    op.create_index(op.f("ix_api_client_unit_id"), "api_client", ["unit_id"], unique=False)
    # A key is claimed (state in_progress) before its request runs, so a concurrent retry
    # waits for the first and replays its stored answer instead of racing it.
    op.create_table(
        "idempotency_key",
        sa.Column("client_id", sa.String(length=100), nullable=False),
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        _created_at(),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=True),
        _jsonb("headers", nullable=True),
        sa.Column("body", sa.LargeBinary(), nullable=True),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("client_id", "key", name=op.f("pk_idempotency_key")),
    )


# --- Reporting --------------------------------------------------------------------------


def _reporting() -> None:
    op.create_table(
        "validation_rule",
        sa.Column("code", sa.String(length=50), nullable=False),
        sa.Column("severity", sa.String(length=10), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column(
            "params",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "severity IN ('error', 'warning')", name=op.f("ck_validation_rule_severity_known")
        ),
        sa.PrimaryKeyConstraint("code", name=op.f("pk_validation_rule")),
    )
    op.create_table(
        "reporting_regime",
        _id(),
        _key(),
        sa.Column("programme_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(length=30), nullable=False),
        sa.Column("name_vi", sa.Text(), nullable=False),
        sa.Column("name_en", sa.Text(), nullable=False),
        sa.Column("due_month", sa.Integer(), nullable=False),
        sa.Column("due_day", sa.Integer(), nullable=False),
        sa.Column(
            "cutoff_days_before_due", sa.Integer(), server_default=sa.text("0"), nullable=False
        ),
        sa.Column("years", sa.ARRAY(sa.Integer()), nullable=True),
        sa.CheckConstraint(
            "kind IN ('annual', 'ad_hoc', 'mid_term_review', 'final_review')",
            name=op.f("ck_reporting_regime_kind_known"),
        ),
        sa.CheckConstraint(
            "due_month BETWEEN 1 AND 12 AND due_day BETWEEN 1 AND 31",
            name=op.f("ck_reporting_regime_due"),
        ),
        _fk("reporting_regime", "programme_id", "programme"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reporting_regime")),
        sa.UniqueConstraint("key", name=op.f("uq_reporting_regime_key")),
    )
    op.create_index(
        op.f("ix_reporting_regime_programme_id"), "reporting_regime", ["programme_id"], unique=False
    )
    op.create_table(
        "reporting_request",
        _id(),
        sa.Column("programme_id", sa.Uuid(), nullable=False),
        sa.Column("title_vi", sa.Text(), nullable=False),
        sa.Column("title_en", sa.Text(), nullable=False),
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("due_date", sa.Date(), nullable=False),
        sa.Column("indicator_keys", sa.ARRAY(sa.String(length=100)), nullable=False),
        sa.Column("questions", sa.ARRAY(sa.Text()), nullable=False),
        sa.Column("requested_by", sa.String(length=100), nullable=False),
        _created_at(),
        _fk("reporting_request", "programme_id", "programme"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reporting_request")),
    )
    op.create_index(
        op.f("ix_reporting_request_programme_id"),
        "reporting_request",
        ["programme_id"],
        unique=False,
    )
    # An obligation comes from a regime (one per unit and year) or from an ad-hoc request
    # (one per unit), never both.
    op.create_table(
        "reporting_obligation",
        _id(),
        sa.Column("programme_id", sa.Uuid(), nullable=False),
        sa.Column("regime_id", sa.Uuid(), nullable=True),
        sa.Column("request_id", sa.Uuid(), nullable=True),
        sa.Column("unit_id", sa.Uuid(), nullable=False),
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("due_date", sa.Date(), nullable=False),
        sa.Column("cutoff_date", sa.Date(), nullable=False),
        _created_at(),
        sa.CheckConstraint(
            "(regime_id IS NULL) <> (request_id IS NULL)",
            name=op.f("ck_reporting_obligation_regime_or_request"),
        ),
        _fk("reporting_obligation", "programme_id", "programme"),
        _fk("reporting_obligation", "regime_id", "reporting_regime"),
        _fk("reporting_obligation", "request_id", "reporting_request"),
        _fk("reporting_obligation", "unit_id", "org_unit"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reporting_obligation")),
        sa.UniqueConstraint(
            "regime_id",
            "unit_id",
            "year",
            name=op.f("uq_reporting_obligation_regime_id_unit_id_year"),
        ),
        sa.UniqueConstraint(
            "request_id", "unit_id", name=op.f("uq_reporting_obligation_request_id_unit_id")
        ),
    )
    op.create_index(
        "ix_reporting_obligation_programme_id_year",
        "reporting_obligation",
        ["programme_id", "year"],
        unique=False,
    )
    op.create_index(
        op.f("ix_reporting_obligation_unit_id"), "reporting_obligation", ["unit_id"], unique=False
    )
    # The report is the working copy (its draft changes); what was submitted is kept in
    # report_version, frozen.
    op.create_table(
        "report",
        _id(),
        sa.Column("obligation_id", sa.Uuid(), nullable=False),
        sa.Column("unit_id", sa.Uuid(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("revision", sa.Integer(), server_default=sa.text("1"), nullable=False),
        _jsonb("draft"),
        sa.Column("correction_reason", sa.Text(), nullable=True),
        sa.Column("returned_reason", sa.Text(), nullable=True),
        sa.Column("latest_version_no", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("accepted_version_no", sa.Integer(), nullable=True),
        sa.Column("first_submitted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("accepted_at", sa.DateTime(timezone=True), nullable=True),
        _created_at(),
        _created_at("updated_at"),
        sa.CheckConstraint(SUBMISSION_STATUSES, name=op.f("ck_report_status_known")),
        _fk("report", "obligation_id", "reporting_obligation"),
        _fk("report", "unit_id", "org_unit"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_report")),
        sa.UniqueConstraint("obligation_id", name=op.f("uq_report_obligation_id")),
    )
    op.create_index(op.f("ix_report_unit_id"), "report", ["unit_id"], unique=False)
    op.create_table(
        "report_version",
        _id(),
        sa.Column("report_id", sa.Uuid(), nullable=False),
        sa.Column("version_no", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        _jsonb("content"),
        _jsonb("warnings"),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("submitted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("submitted_by", sa.String(length=100), nullable=False),
        sa.CheckConstraint(
            "kind IN ('submission', 'resubmission', 'correction')",
            name=op.f("ck_report_version_kind_known"),
        ),
        _fk("report_version", "report_id", "report"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_report_version")),
        sa.UniqueConstraint(
            "report_id", "version_no", name=op.f("uq_report_version_report_id_version_no")
        ),
    )
    # A version's figures, one row each, so rollups aggregate them in SQL.
    op.create_table(
        "indicator_value",
        sa.Column("version_id", sa.Uuid(), nullable=False),
        sa.Column("indicator_id", sa.Uuid(), nullable=False),
        sa.Column("disaggregation", sa.String(length=200), nullable=False),
        sa.Column("unit_id", sa.Uuid(), nullable=False),
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("value", sa.Numeric(precision=20, scale=4), nullable=False),
        sa.Column("derived", sa.Boolean(), nullable=False),
        _fk("indicator_value", "indicator_id", "indicator"),
        _fk("indicator_value", "unit_id", "org_unit"),
        _fk("indicator_value", "version_id", "report_version"),
        sa.PrimaryKeyConstraint(
            "version_id", "indicator_id", "disaggregation", name=op.f("pk_indicator_value")
        ),
    )
    op.create_index(
        "ix_indicator_value_indicator_id_year",
        "indicator_value",
        ["indicator_id", "year"],
        unique=False,
    )
    op.create_table(
        "task_progress",
        sa.Column("version_id", sa.Uuid(), nullable=False),
        sa.Column("task_id", sa.Uuid(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("narrative", sa.Text(), nullable=False),
        sa.CheckConstraint(
            "status IN ('not_started', 'in_progress', 'completed', 'suspended')",
            name=op.f("ck_task_progress_status_known"),
        ),
        _fk("task_progress", "task_id", "task"),
        _fk("task_progress", "version_id", "report_version"),
        sa.PrimaryKeyConstraint("version_id", "task_id", name=op.f("pk_task_progress")),
    )
    for table in ("report_version", "indicator_value", "task_progress"):
        _freeze(table)


# --- Rollups ----------------------------------------------------------------------------


def _rollups() -> None:
    op.create_table(
        "rollup_run",
        _id(),
        sa.Column("programme_id", sa.Uuid(), nullable=False),
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("level", sa.String(length=20), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        _created_at("computed_at"),
        sa.Column("job_id", sa.Uuid(), nullable=True),
        sa.Column("sources", sa.Integer(), nullable=False),
        # JSON text, not JSONB: PostgreSQL builds it far faster and nobody queries inside.
        sa.Column("sections", sa.JSON(), nullable=False),
        # The run's sources as parallel arrays, so a rebuild writes one row per run
        # instead of one per source.
        sa.Column("source_ids", postgresql.ARRAY(sa.Uuid()), nullable=False),
        sa.Column("source_units", postgresql.ARRAY(sa.Uuid()), nullable=False),
        sa.Column("source_breakdowns", postgresql.ARRAY(sa.Text()), nullable=False),
        sa.Column("other_inputs", sa.Text(), nullable=False),
        sa.CheckConstraint(
            "kind IN ('full', 'incremental')", name=op.f("ck_rollup_run_kind_known")
        ),
        sa.CheckConstraint(
            "level IN ('provincial', 'national')", name=op.f("ck_rollup_run_level_known")
        ),
        _fk("rollup_run", "programme_id", "programme"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rollup_run")),
        sa.UniqueConstraint(
            "programme_id", "year", "seq", name=op.f("uq_rollup_run_programme_id_year_seq")
        ),
    )
    # No foreign keys on cells: only the engine writes them, in the statement that reads
    # the run and the indicators they name, and per-row key checks doubled that write.
    op.create_table(
        "rollup_cell",
        sa.Column("run_id", sa.Uuid(), nullable=False),
        sa.Column("indicator_id", sa.Uuid(), nullable=False),
        sa.Column("disaggregation", sa.String(length=200), nullable=False),
        sa.Column("breakdown", sa.String(length=200), nullable=False),
        sa.Column("value", sa.Numeric(precision=24, scale=4), nullable=False),
        sa.Column("value_sum", sa.Numeric(precision=24, scale=4), nullable=False),
        sa.Column("value_count", sa.Integer(), nullable=False),
        sa.Column("value_min", sa.Numeric(precision=20, scale=4), nullable=False),
        sa.Column("value_max", sa.Numeric(precision=20, scale=4), nullable=False),
        sa.PrimaryKeyConstraint(
            "run_id", "indicator_id", "disaggregation", "breakdown", name=op.f("pk_rollup_cell")
        ),
    )
    # The publication pointer moves (it is not frozen): readers see the run it names.
    op.create_table(
        "rollup_publication",
        sa.Column("programme_id", sa.Uuid(), nullable=False),
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.Uuid(), nullable=False),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=False),
        _fk("rollup_publication", "programme_id", "programme"),
        _fk("rollup_publication", "run_id", "rollup_run"),
        sa.PrimaryKeyConstraint("programme_id", "year", name=op.f("pk_rollup_publication")),
    )
    for table in ("rollup_run", "rollup_cell"):
        _freeze(table)


# --- Budget -----------------------------------------------------------------------------

# A dossier's content is frozen once built; only its status (and when it was sent and
# acknowledged) changes as it travels, so this trigger compares the content columns.
REFUSE_CHANGE_OF_DOSSIER_CONTENT = """
CREATE FUNCTION refuse_change_of_dossier_content() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' OR NEW.document IS DISTINCT FROM OLD.document
       OR NEW.total IS DISTINCT FROM OLD.total OR NEW.version_no IS DISTINCT FROM OLD.version_no
       OR NEW.destination_unit_id IS DISTINCT FROM OLD.destination_unit_id
       OR NEW.budget_year IS DISTINCT FROM OLD.budget_year THEN
        RAISE EXCEPTION 'budget_dossier is frozen once built: % refused', TG_OP
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NEW;
END
$$
"""


def _budget() -> None:
    op.create_table(
        "account_code",
        _id(),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("code", sa.String(length=20), nullable=False),
        sa.Column("name_vi", sa.Text(), nullable=False),
        sa.Column("valid_from_year", sa.Integer(), nullable=False),
        sa.Column("valid_to_year", sa.Integer(), nullable=True),
        sa.Column("source", sa.String(length=100), nullable=False),
        sa.CheckConstraint(
            "kind IN ('chapter', 'loai_khoan', 'muc_tieu_muc')",
            name=op.f("ck_account_code_kind_known"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_account_code")),
        sa.UniqueConstraint(
            "kind",
            "code",
            "valid_from_year",
            name=op.f("uq_account_code_kind_code_valid_from_year"),
        ),
    )
    op.create_table(
        "budget_dossier",
        _id(),
        sa.Column("programme_id", sa.Uuid(), nullable=False),
        sa.Column("budget_year", sa.Integer(), nullable=False),
        sa.Column("destination_unit_id", sa.Uuid(), nullable=False),
        sa.Column("version_no", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("total", sa.BigInteger(), nullable=False),
        _jsonb("document"),
        _created_at("built_at"),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("acknowledged_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("acknowledged_by", sa.String(length=100), nullable=True),
        sa.CheckConstraint(
            "status IN ('draft', 'sent', 'acknowledged')",
            name=op.f("ck_budget_dossier_status_known"),
        ),
        _fk("budget_dossier", "destination_unit_id", "org_unit"),
        _fk("budget_dossier", "programme_id", "programme"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_budget_dossier")),
        # Longer than PostgreSQL's 63 characters: SQLAlchemy shortens it, deterministically,
        # to uq_budget_dossier_programme_id_budget_year_destination__2ee0.
        sa.UniqueConstraint(
            "programme_id",
            "budget_year",
            "destination_unit_id",
            "version_no",
            name=op.f("uq_budget_dossier_programme_id_budget_year_destination_unit_id_version_no"),
        ),
    )
    op.create_index(
        op.f("ix_budget_dossier_destination_unit_id"),
        "budget_dossier",
        ["destination_unit_id"],
        unique=False,
    )
    op.execute(REFUSE_CHANGE_OF_DOSSIER_CONTENT)
    op.execute(
        "CREATE TRIGGER budget_dossier_frozen BEFORE UPDATE OR DELETE ON budget_dossier "
        "FOR EACH ROW EXECUTE FUNCTION refuse_change_of_dossier_content()"
    )
    op.create_table(
        "budget_estimate",
        _id(),
        sa.Column("programme_id", sa.Uuid(), nullable=False),
        sa.Column("unit_id", sa.Uuid(), nullable=False),
        sa.Column("budget_year", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("revision", sa.Integer(), server_default=sa.text("1"), nullable=False),
        sa.Column("returned_reason", sa.Text(), nullable=True),
        sa.Column("submitted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("accepted_at", sa.DateTime(timezone=True), nullable=True),
        _created_at(),
        sa.CheckConstraint(SUBMISSION_STATUSES, name=op.f("ck_budget_estimate_status_known")),
        _fk("budget_estimate", "programme_id", "programme"),
        _fk("budget_estimate", "unit_id", "org_unit"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_budget_estimate")),
        sa.UniqueConstraint(
            "programme_id",
            "unit_id",
            "budget_year",
            name=op.f("uq_budget_estimate_programme_id_unit_id_budget_year"),
        ),
    )
    op.create_index(
        op.f("ix_budget_estimate_unit_id"), "budget_estimate", ["unit_id"], unique=False
    )
    # Rollup sections, totals and dossiers read one programme's estimates of a budget year.
    op.create_index(
        "ix_budget_estimate_programme_id_budget_year",
        "budget_estimate",
        ["programme_id", "budget_year"],
        unique=False,
    )
    op.create_table(
        "estimate_line",
        _id(),
        sa.Column("estimate_id", sa.Uuid(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("task_id", sa.Uuid(), nullable=True),
        sa.Column("activity", sa.Text(), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("funding_source", sa.String(length=30), nullable=False),
        sa.Column("chapter", sa.String(length=20), nullable=True),
        sa.Column("loai_khoan", sa.String(length=20), nullable=True),
        sa.Column("muc_tieu_muc", sa.String(length=20), nullable=True),
        sa.Column("destination_unit_id", sa.Uuid(), nullable=True),
        sa.CheckConstraint(
            "funding_source IN ('recurrent_science', 'recurrent_sector', "
            "'development_investment', 'other_enterprise', 'other_sponsorship', 'other')",
            name=op.f("ck_estimate_line_funding_source_known"),
        ),
        sa.CheckConstraint(AMOUNT_RANGE, name=op.f("ck_estimate_line_amount_range")),
        _fk("estimate_line", "destination_unit_id", "org_unit"),
        _fk("estimate_line", "estimate_id", "budget_estimate", ondelete="CASCADE"),
        _fk("estimate_line", "task_id", "task"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_estimate_line")),
    )
    op.create_index(
        "ix_estimate_line_destination_unit_id",
        "estimate_line",
        ["destination_unit_id"],
        unique=False,
    )
    op.create_index(
        op.f("ix_estimate_line_estimate_id"), "estimate_line", ["estimate_id"], unique=False
    )
    op.create_table(
        "budget_allocation",
        _id(),
        sa.Column("dossier_id", sa.Uuid(), nullable=False),
        sa.Column("line_id", sa.Uuid(), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("recorded_by", sa.String(length=100), nullable=False),
        _created_at("recorded_at"),
        sa.CheckConstraint(AMOUNT_RANGE, name=op.f("ck_budget_allocation_amount_range")),
        _fk("budget_allocation", "dossier_id", "budget_dossier"),
        _fk("budget_allocation", "line_id", "estimate_line"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_budget_allocation")),
        sa.UniqueConstraint(
            "dossier_id", "line_id", name=op.f("uq_budget_allocation_dossier_id_line_id")
        ),
    )
    # The follow-up and the rollup sections join allocations to their lines.
    op.create_index("ix_budget_allocation_line_id", "budget_allocation", ["line_id"], unique=False)
    op.create_table(
        "budget_spending",
        _id(),
        sa.Column("allocation_id", sa.Uuid(), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("spent_on", sa.DateTime(timezone=True), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("recorded_by", sa.String(length=100), nullable=False),
        sa.CheckConstraint(
            "amount > 0 AND amount <= 1000000000000000",
            name=op.f("ck_budget_spending_amount_range"),
        ),
        _fk("budget_spending", "allocation_id", "budget_allocation"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_budget_spending")),
    )
    op.create_index(
        op.f("ix_budget_spending_allocation_id"), "budget_spending", ["allocation_id"], unique=False
    )


# --- Plans ------------------------------------------------------------------------------


def _plans() -> None:
    op.create_table(
        "plan",
        _id(),
        sa.Column("programme_id", sa.Uuid(), nullable=False),
        sa.Column("unit_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("start_year", sa.Integer(), nullable=False),
        sa.Column("end_year", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("revision", sa.Integer(), server_default=sa.text("1"), nullable=False),
        _jsonb("content"),
        sa.Column("returned_reason", sa.Text(), nullable=True),
        sa.Column("accepted_version_no", sa.Integer(), nullable=True),
        sa.Column("submitted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("accepted_at", sa.DateTime(timezone=True), nullable=True),
        _created_at(),
        sa.CheckConstraint("kind IN ('five_year', 'annual')", name=op.f("ck_plan_kind_known")),
        sa.CheckConstraint(SUBMISSION_STATUSES, name=op.f("ck_plan_status_known")),
        sa.CheckConstraint("end_year >= start_year", name=op.f("ck_plan_years_ordered")),
        _fk("plan", "programme_id", "programme"),
        _fk("plan", "unit_id", "org_unit"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_plan")),
        sa.UniqueConstraint(
            "programme_id",
            "unit_id",
            "kind",
            "start_year",
            name=op.f("uq_plan_programme_id_unit_id_kind_start_year"),
        ),
    )
    op.create_index(op.f("ix_plan_unit_id"), "plan", ["unit_id"], unique=False)
    op.create_table(
        "plan_change_request",
        _id(),
        sa.Column("plan_id", sa.Uuid(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        _jsonb("proposed_content"),
        sa.Column("base_version_no", sa.Integer(), nullable=False),
        sa.Column("proposed_by", sa.String(length=100), nullable=False),
        sa.Column("proposed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("decided_by", sa.String(length=100), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("decision_note", sa.Text(), nullable=True),
        sa.Column("resulting_version_no", sa.Integer(), nullable=True),
        sa.CheckConstraint(
            "status IN ('proposed', 'approved', 'rejected', 'withdrawn')",
            name=op.f("ck_plan_change_request_status_known"),
        ),
        _fk("plan_change_request", "plan_id", "plan"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_plan_change_request")),
    )
    op.create_index(
        op.f("ix_plan_change_request_plan_id"), "plan_change_request", ["plan_id"], unique=False
    )
    # One open proposal per plan (DOST decides on it before the next is made); decided
    # requests are history and stay out of the constraint.
    op.create_index(
        "uq_plan_change_request_open",
        "plan_change_request",
        ["plan_id"],
        unique=True,
        postgresql_where=sa.text("status = 'proposed'"),
    )
    op.create_table(
        "plan_version",
        _id(),
        sa.Column("plan_id", sa.Uuid(), nullable=False),
        sa.Column("version_no", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        _jsonb("content"),
        sa.Column("change_request_id", sa.Uuid(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=100), nullable=False),
        sa.CheckConstraint(
            "kind IN ('submission', 'resubmission', 'change')",
            name=op.f("ck_plan_version_kind_known"),
        ),
        _fk("plan_version", "change_request_id", "plan_change_request"),
        _fk("plan_version", "plan_id", "plan"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_plan_version")),
        sa.UniqueConstraint(
            "plan_id", "version_no", name=op.f("uq_plan_version_plan_id_version_no")
        ),
    )
    # A plan's history is its versions: what was submitted, accepted or changed stays.
    _freeze("plan_version")


def upgrade() -> None:
    op.execute(REFUSE_CHANGE_OF_FROZEN_ROW)
    _jobs()
    _catalogue()
    _identity_and_audit()
    _reporting()
    _rollups()
    _budget()
    _plans()


# Every table, dependants before what they reference; triggers and indexes go with them.
TABLES_IN_DROP_ORDER = (
    "plan_version",
    "plan_change_request",
    "plan",
    "budget_spending",
    "budget_allocation",
    "estimate_line",
    "budget_estimate",
    "budget_dossier",
    "account_code",
    "rollup_publication",
    "rollup_cell",
    "rollup_run",
    "task_progress",
    "indicator_value",
    "report_version",
    "report",
    "reporting_obligation",
    "reporting_request",
    "reporting_regime",
    "validation_rule",
    "idempotency_key",
    "api_client",
    "signing_key",
    "audit_event",
    "task_unit",
    "task_extension",
    "task",
    "target",
    "task_group",
    "programme_role",
    "phase",
    "indicator",
    "programme",
    "org_succession",
    "org_unit",
    "baseline_period",
    "job_progress",
    "job",
)


def downgrade() -> None:
    for table in TABLES_IN_DROP_ORDER:
        op.drop_table(table)
    op.execute("DROP FUNCTION refuse_change_of_dossier_content()")
    op.execute("DROP FUNCTION audit_event_refuse_change()")
    op.execute("DROP FUNCTION refuse_change_of_frozen_row()")
