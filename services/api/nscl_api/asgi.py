"""ASGI entry point for servers: `uvicorn nscl_api.asgi:app`.

An entry point, like the CLI: with no NSCL_REDIS_URL it runs the worker in this process on
an in-memory Redis, as `nscl serve` does.
"""

from nscl_api.main import add_request_id, create_app
from nscl_domain.logs import configure_logging
from nscl_domain.settings import Settings

settings = Settings()
configure_logging(settings.log_level, json=settings.log_json, extra_processors=[add_request_id])
if settings.uses_embedded_redis:
    from nscl_worker.embedded import InProcessWorker

    app = create_app(settings, companion=InProcessWorker())
else:
    app = create_app(settings)
