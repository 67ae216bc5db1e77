"""Bodies of the clients endpoints."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from nscl_api.types import ResponseModel
from nscl_domain.identity import Role
from nscl_domain.identity.service import ClientView


class ClientRead(ResponseModel):
    """An API client: the system or front-end that calls for one unit, with its roles.
    Its secret is never shown (only its hash is kept)."""

    client_id: str = Field(examples=["tn-xa-cho-don-portal"])
    name: str = Field(examples=["Cổng báo cáo xã Chợ Đồn"])
    unit: str = Field(description="Key of the unit it acts for.", examples=["tn-xa-cho-don"])
    roles: list[Role] = Field(examples=[["reporter"]])
    enabled: bool
    created_at: datetime
    secret_rotated_at: datetime | None
    disabled_at: datetime | None

    @classmethod
    def of(cls, view: ClientView) -> ClientRead:
        c = view.client
        return cls(
            client_id=c.client_id, name=c.name, unit=view.unit.key,
            roles=sorted(Role(r) for r in c.roles), enabled=c.enabled, created_at=c.created_at,
            secret_rotated_at=c.secret_rotated_at, disabled_at=c.disabled_at,
        )  # fmt: skip
