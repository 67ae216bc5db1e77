"""ASGI entry point for servers: `uvicorn nscl_api.asgi:app`."""

from nscl_api.main import create_app
from nscl_domain.logs import configure_logging
from nscl_domain.settings import Settings

settings = Settings()
configure_logging(settings.log_level, json=settings.log_json)
app = create_app(settings)
