"""Events other systems hear: signed webhooks, delivered through the outbox.

A change that other systems care about (a report accepted, a rollup published) leaves an
audit event in its transaction; the composition root tells which audit actions are events
and whose they are, and the hook installed here turns them into ``webhook_event`` rows and
one ``webhook_delivery`` per subscription that may read the object, in that same
transaction. A delivery job per subscription then sends them (CloudEvents 1.0 JSON, signed
as Standard Webhooks), in order per object, retrying with back-off for about three days.
"""

from __future__ import annotations

from enum import StrEnum

EVENT_TYPE_PREFIX = "vn.gov.nscl."


class EventType(StrEnum):
    """Every event a subscription may ask for (the CloudEvents ``type`` without its prefix)."""

    REPORT_SUBMITTED = "report.submitted"
    REPORT_RETURNED = "report.returned"
    REPORT_ACCEPTED = "report.accepted"
    REPORT_CORRECTED = "report.corrected"
    PLAN_SUBMITTED = "plan.submitted"
    PLAN_RETURNED = "plan.returned"
    PLAN_ACCEPTED = "plan.accepted"
    PLAN_CHANGE_DECIDED = "plan.change_decided"
    ESTIMATE_SUBMITTED = "estimate.submitted"
    ESTIMATE_RETURNED = "estimate.returned"
    ESTIMATE_ACCEPTED = "estimate.accepted"
    DOSSIER_BUILT = "dossier.built"
    DOSSIER_SENT = "dossier.sent"
    DOSSIER_ACKNOWLEDGED = "dossier.acknowledged"
    ROLLUP_PUBLISHED = "rollup.published"
    JOB_FAILED = "job.failed"
    DEADLINE_APPROACHING = "deadline.approaching"
    DEADLINE_MISSED = "deadline.missed"
    WEBHOOK_DISABLED = "webhook.disabled"
    WEBHOOK_PING = "webhook.ping"

    @property
    def cloudevents_type(self) -> str:
        return EVENT_TYPE_PREFIX + self.value


SUBSCRIBABLE = tuple(t for t in EventType if t is not EventType.WEBHOOK_PING)


class DeliveryStatus(StrEnum):
    """pending → succeeded | failed; a replay takes any of them back to pending."""

    PENDING = "pending"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
