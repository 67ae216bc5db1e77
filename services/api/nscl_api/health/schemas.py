"""Request and response bodies of the health routes."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from nscl_api.types import ResponseModel

CheckResult = Literal["ok", "failed"]


class Health(ResponseModel):
    status: Literal["alive"] = "alive"


class Readiness(ResponseModel):
    status: Literal["ready"] = "ready"
    checks: dict[str, CheckResult] = Field(
        examples=[{"database": "ok", "schema": "ok", "redis": "ok"}]
    )
