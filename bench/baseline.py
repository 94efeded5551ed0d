"""The ingest baseline: `python -m bench.baseline PORT`.

A bare FastAPI endpoint at the matcher's webhook path that reads the body, parses it with
the same pydantic model the matcher uses (`matcher.schemas.WEBHOOK_BODY`) and answers 202 —
no signature, no Kafka, no middleware. Configured and started like a service (FastAPI's
OpenTelemetry hooks off, the start-up heap frozen for the garbage collector) and served
exactly like one (`shared.service.serve` settings: one uvicorn
process, uvloop, httptools, no access log), so the ratio to it is what the matcher's own
work costs.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import AsyncIterator

import pydantic
from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse
from matcher.schemas import WEBHOOK_BODY

from shared.service import NO_TELEMETRY, freeze_heap


@contextlib.asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    freeze_heap()  # started like the services
    yield


def create_app() -> FastAPI:
    app = FastAPI(telemetry=NO_TELEMETRY, lifespan=lifespan)  # configured like the services

    @app.post("/v1/partner/webhooks")
    async def webhook(request: Request) -> Response:
        body = await request.body()
        try:
            WEBHOOK_BODY.validate_json(body)
        except pydantic.ValidationError:
            return JSONResponse({"error": "invalid"}, status_code=400)
        return JSONResponse({"status": "accepted"}, status_code=202)

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app


if __name__ == "__main__":
    import uvicorn

    uvicorn.run(
        create_app(),
        host="127.0.0.1",
        port=int(sys.argv[1]),
        log_config=None,
        access_log=False,
        loop="uvloop",
        http="httptools",
    )
