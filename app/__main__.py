"""`python -m app`: serve with uvicorn on HWR_HOST:HWR_PORT (defaults 0.0.0.0:8000).

SIGTERM / SIGINT stop accepting connections, let in-flight requests finish (up to
HWR_SHUTDOWN_TIMEOUT_S), then unload the models.
"""

from __future__ import annotations

import uvicorn

from app.config import Settings
from app.logs import configure_logging
from app.main import create_app


def main() -> None:
    settings = Settings()
    configure_logging(settings.log_level)
    app = create_app(settings)
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level.lower(),
        log_config=None,  # keep our JSON handler; uvicorn's own lines go through it too
        access_log=False,  # RequestContextMiddleware writes the access log, with request ids
        server_header=False,  # do not advertise the server software
        timeout_graceful_shutdown=settings.shutdown_timeout_s,
    )


if __name__ == "__main__":
    main()
