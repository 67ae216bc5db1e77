"""ASGI entry point for servers: `uvicorn nscl_api.asgi:app`."""

from nscl_api.main import add_request_id, create_app
from nscl_domain.logs import configure_logging
from nscl_domain.settings import Settings

settings = Settings()
configure_logging(settings.log_level, json=settings.log_json, extra_processors=[add_request_id])
app = create_app(settings)
