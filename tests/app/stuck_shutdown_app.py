"""An ASGI app whose shutdown never ends: a stand-in for any step after uvicorn's bounded wait
for requests (the lifespan's shutdown, a task that ignores its cancellation, the thread pool's
join) that hangs. Imported by worker processes in `test_workers.py`, so a module of its own."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    yield
    await asyncio.sleep(3600)


def stuck_app() -> FastAPI:
    app = FastAPI(lifespan=_lifespan)

    @app.get("/")
    async def root() -> dict[str, str]:
        return {"ok": "yes"}

    return app
