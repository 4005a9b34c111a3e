"""HTTP routes besides GraphQL for reports: proof images behind signed links, and WeChat's
message push (the verdicts of the asynchronous image check)."""

from __future__ import annotations

import logging
import time

import orjson
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from src.auth.wechat import verify_push
from src.config import reveal
from src.resolvers import media_checks
from src.services import Services
from src.storage import StorageError
from src.storage.base import content_type_of

log = logging.getLogger(__name__)

MAX_PUSH_BODY = 64 * 1024
PUSH_MAX_AGE_S = 300


async def proof_image(request: Request) -> Response:
    """GET /proofs/{key}?exp=…&sig=… — only with an unexpired link made by this server
    (handed to moderators, and to WeChat's image check). Anything else: 403."""
    services: Services = request.app.state.services
    key = request.path_params["key"]
    params = request.query_params
    if not services.proof_links.verify(key, params.get("exp"), params.get("sig")):
        return PlainTextResponse("Forbidden.", status_code=403)
    try:
        data = await services.storage.get(key)
    except StorageError as exc:
        log.warning("proof unavailable: %s", exc)
        return PlainTextResponse("Unavailable.", status_code=503)
    if data is None:
        return PlainTextResponse("Not found.", status_code=404)
    return Response(
        data,
        media_type=content_type_of(key),
        headers={
            "cache-control": "private, no-store",
            "x-content-type-options": "nosniff",
            "content-security-policy": "default-src 'none'",
        },
    )


def _signed(request: Request, services: Services) -> bool:
    token = reveal(services.settings.wechat_push_token)
    params = request.query_params
    signature, timestamp, nonce = (
        params.get("signature", ""),
        params.get("timestamp", ""),
        params.get("nonce", ""),
    )
    if not token or not signature or not timestamp.isdigit():
        return False
    # The signature does not cover the body: a fresh timestamp limits replays.
    if abs(time.time() - int(timestamp)) > PUSH_MAX_AGE_S:
        return False
    return verify_push(token, signature, timestamp, nonce)


async def wechat_push(request: Request) -> Response:
    """WeChat message push (plaintext JSON mode). GET verifies the URL by echoing `echostr`;
    POST delivers events. A bad signature answers 403 and changes nothing."""
    services: Services = request.app.state.services
    if not _signed(request, services):
        return PlainTextResponse("Forbidden.", status_code=403)
    if request.method == "GET":
        return PlainTextResponse(request.query_params.get("echostr", ""))
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_PUSH_BODY:
            return PlainTextResponse("Too large.", status_code=413)
    try:
        event = orjson.loads(body)
    except orjson.JSONDecodeError:
        return PlainTextResponse("Not JSON.", status_code=400)
    if isinstance(event, dict):
        await media_checks.apply_verdict(services, event)
    # WeChat retries until it hears "success"; events we do not handle are acknowledged too.
    return PlainTextResponse("success")
