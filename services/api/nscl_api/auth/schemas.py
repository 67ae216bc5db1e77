"""Request and response bodies of the auth routes."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from nscl_api.types import ResponseModel


class TokenResponse(ResponseModel):
    """RFC 6749 §5.1 access token response."""

    access_token: str
    token_type: Literal["Bearer"] = "Bearer"
    expires_in: int = Field(description="Seconds until the token expires.", examples=[900])
    scope: str = Field(description="Granted scopes, space-separated.", examples=["catalogue.read"])


class Jwks(ResponseModel):
    keys: list[dict[str, Any]]
