"""`python -m app`: serve with uvicorn on HWR_HOST:HWR_PORT (defaults 0.0.0.0:8000).

HWR_WORKERS processes (default 2, app/runtime/workers.py), each building its app from the environment
(`worker_app`) and accepting on its own socket; with one, the app runs in this process.
SIGTERM / SIGINT stop accepting connections, let in-flight requests finish (up to
HWR_SHUTDOWN_TIMEOUT_S), then unload the models.
"""

from __future__ import annotations

import logging
import sys
from typing import TYPE_CHECKING, Any

import uvicorn
from uvicorn.config import STARTUP_FAILURE

from app.config import Settings
from app.http.connections import guarded_protocol
from app.logs import configure_logging
from app.metrics import NoMetricsDirectory, forget_process, metrics_shared_between_processes
from app.runtime.workers import BoundedServer, Supervisor

if TYPE_CHECKING:
    from fastapi import FastAPI

log = logging.getLogger(__name__)


def worker_app(settings: Settings | None = None) -> FastAPI:
    """The app, imported here so that the supervising parent stays small. Without `settings` it
    is a worker process's own (a uvicorn factory: workers start from an import string, with
    logging set up by `app.runtime.workers.run_worker`), built from the environment."""
    from app.main import create_app

    return create_app(settings)


def main() -> None:
    settings = Settings()
    configure_logging(settings.log_level)
    config: dict[str, Any] = dict(
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level.lower(),
        log_config=None,  # keep our JSON handler; uvicorn's own lines go through it too
        access_log=False,  # RequestContextMiddleware writes the access log, with request ids
        server_header=False,  # do not advertise the server software
        timeout_graceful_shutdown=settings.shutdown_timeout_s,
        timeout_keep_alive=settings.keep_alive_timeout_s,
        http=guarded_protocol(settings.max_header_bytes, settings.header_timeout_s),
    )
    if settings.workers == 1:
        # Not `uvicorn.run`: a server sure to exit soon after its grace (app/runtime/workers.py).
        server = BoundedServer(uvicorn.Config(worker_app(settings), **config))
        server.run()
        if not server.started:
            sys.exit(STARTUP_FAILURE)
        return
    # The parent only supervises: it never imports the app (models, OpenCV, ONNX Runtime).
    # Set before the workers start: they inherit it and write their metrics where /metrics reads.
    try:
        with metrics_shared_between_processes():
            worker = config | {"app": "app.__main__:worker_app", "factory": True}
            status = Supervisor(settings.workers, worker, on_exit=forget_process).run()
    except NoMetricsDirectory as exc:
        log.error("%s; give /tmp a tmpfs, or run HWR_WORKERS=1", exc)
        status = STARTUP_FAILURE
    sys.exit(status)


if __name__ == "__main__":
    main()
