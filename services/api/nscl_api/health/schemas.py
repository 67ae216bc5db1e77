"""Request and response bodies of the health routes."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

CheckResult = Literal["ok", "failed"]


class Health(BaseModel):
    status: Literal["alive"] = "alive"


class Readiness(BaseModel):
    status: Literal["ready"] = "ready"
    checks: dict[str, CheckResult] = Field(
        examples=[{"database": "ok", "schema": "ok", "redis": "ok"}]
    )
