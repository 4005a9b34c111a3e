"""A stand-in for WeChat's server APIs in benchmarks, answering as production's WeChat would for
the paths a whisper takes: login, access token, content check (after a fixed delay), subscribe
message. Served by its own uvicorn process so its work is not counted as the load generator's.

    .venv/bin/python -m uvicorn bench.fake_wechat:app --host 127.0.0.1 --port N

`FAKE_WECHAT_CHECK_MS` (30): how long `msg_sec_check` takes, as measured from mainland servers.
A login code is taken as the openid itself, so the seeded users (`dev:<name>`) log in with
their own openid as the code. Every text passes.
"""

from __future__ import annotations

import asyncio
import itertools
import os

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

CHECK_S = float(os.environ.get("FAKE_WECHAT_CHECK_MS", "30")) / 1000
_serial = itertools.count()
counts = {"checks": 0}


async def jscode2session(request: Request) -> JSONResponse:
    code = request.query_params.get("js_code", "")
    return JSONResponse({"openid": code, "session_key": "bench-session-key"})


async def stable_token(request: Request) -> JSONResponse:
    return JSONResponse({"access_token": f"BENCH-{next(_serial)}", "expires_in": 7200})


async def msg_sec_check(request: Request) -> JSONResponse:
    await request.body()
    counts["checks"] += 1
    await asyncio.sleep(CHECK_S)
    return JSONResponse({"errcode": 0, "errmsg": "ok", "result": {"suggest": "pass", "label": 100}})


async def subscribe_send(request: Request) -> JSONResponse:
    return JSONResponse({"errcode": 0, "errmsg": "ok"})


async def stats(request: Request) -> JSONResponse:
    """How many content checks were answered (the benchmark reads it to show they ran)."""
    return JSONResponse(counts)


app = Starlette(
    routes=[
        Route("/sns/jscode2session", jscode2session),
        Route("/cgi-bin/stable_token", stable_token, methods=["POST"]),
        Route("/wxa/msg_sec_check", msg_sec_check, methods=["POST"]),
        Route("/cgi-bin/message/subscribe/send", subscribe_send, methods=["POST"]),
        Route("/stats", stats),
    ]
)
