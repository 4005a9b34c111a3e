"""A scriptable fake of WeChat's server APIs, served on 127.0.0.1 by tests and benchmarks.

Script failures with `fail_next(...)`: an errcode, an HTTP status, a delay or a hang, consumed
one request at a time by any endpoint.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

SESSION_KEY = "FAKE-SESSION-KEY-must-never-leak"


@dataclass
class Behaviour:
    errcode: int | None = None
    status: int | None = None
    delay: float = 0.0


@dataclass
class FakeWechat:
    url: str = ""
    app_id: str = "wx-fake-app"
    app_secret: str = "wx-fake-secret"
    # code -> (openid, unionid); a code works once, like WeChat's.
    login_codes: dict[str, tuple[str, str | None]] = field(default_factory=dict)
    used_codes: set[str] = field(default_factory=set)
    # getPhoneNumber code -> (purePhoneNumber, countryCode)
    phone_codes: dict[str, tuple[str, str]] = field(default_factory=dict)
    script: list[Behaviour] = field(default_factory=list)
    valid_tokens: set[str] = field(default_factory=set)
    # msg_sec_check: text containing one of these words gets that verdict.
    risky_words: set[str] = field(default_factory=lambda: {"赌博", "gamble-now"})
    review_words: set[str] = field(default_factory=lambda: {"加微信", "dm-me"})
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    token_refreshes: int = 0
    # media_check_async: trace_id -> the accepted request body.
    media_checks: dict[str, dict[str, Any]] = field(default_factory=dict)
    # The Token configured for message push in the mini program console.
    push_token: str = "fake-push-token"
    _serial: itertools.count = field(default_factory=itertools.count)

    def add_login(self, code: str, openid: str, unionid: str | None = None) -> None:
        self.login_codes[code] = (openid, unionid)

    def fail_next(self, *behaviours: Behaviour) -> None:
        self.script.extend(behaviours)

    def calls_to(self, path: str) -> int:
        return sum(1 for p, _ in self.calls if p == path)

    async def _scripted(self) -> Response | None:
        if not self.script:
            return None
        step = self.script.pop(0)
        if step.delay:
            await asyncio.sleep(step.delay)
        if step.status:
            return Response("upstream error", status_code=step.status)
        if step.errcode is not None:
            return JSONResponse({"errcode": step.errcode, "errmsg": "scripted"})
        return None

    async def _jscode2session(self, request: Request) -> Response:
        params = dict(request.query_params)
        self.calls.append(("/sns/jscode2session", params))
        if scripted := await self._scripted():
            return scripted
        if params.get("appid") != self.app_id or params.get("secret") != self.app_secret:
            return JSONResponse({"errcode": 40013, "errmsg": "invalid appid"})
        code = params.get("js_code", "")
        if code in self.used_codes:
            return JSONResponse({"errcode": 40163, "errmsg": "code been used"})
        if code not in self.login_codes:
            return JSONResponse({"errcode": 40029, "errmsg": "invalid code"})
        self.used_codes.add(code)
        openid, unionid = self.login_codes[code]
        body: dict[str, Any] = {"openid": openid, "session_key": SESSION_KEY}
        if unionid:
            body["unionid"] = unionid
        return JSONResponse(body)

    async def _stable_token(self, request: Request) -> Response:
        body = await request.json()
        self.calls.append(("/cgi-bin/stable_token", body))
        if scripted := await self._scripted():
            return scripted
        if body.get("appid") != self.app_id or body.get("secret") != self.app_secret:
            return JSONResponse({"errcode": 40013, "errmsg": "invalid appid"})
        self.token_refreshes += 1
        token = f"ACCESS-{next(self._serial)}"
        # A new token replaces the old ones, as a forced refresh does at WeChat.
        self.valid_tokens = {token}
        return JSONResponse({"access_token": token, "expires_in": 7200})

    def _token_ok(self, request: Request) -> bool:
        return request.query_params.get("access_token") in self.valid_tokens

    async def _phone_number(self, request: Request) -> Response:
        body = await request.json()
        self.calls.append(("/wxa/business/getuserphonenumber", body))
        if scripted := await self._scripted():
            return scripted
        if not self._token_ok(request):
            return JSONResponse({"errcode": 40001, "errmsg": "invalid credential"})
        found = self.phone_codes.pop(body.get("code", ""), None)
        if found is None:
            return JSONResponse({"errcode": 40029, "errmsg": "invalid code"})
        pure, country = found
        return JSONResponse(
            {
                "errcode": 0,
                "errmsg": "ok",
                "phone_info": {
                    "phoneNumber": f"+{country}{pure}",
                    "purePhoneNumber": pure,
                    "countryCode": country,
                },
            }
        )

    async def _msg_sec_check(self, request: Request) -> Response:
        body = await request.json()
        self.calls.append(("/wxa/msg_sec_check", body))
        if scripted := await self._scripted():
            return scripted
        if not self._token_ok(request):
            return JSONResponse({"errcode": 40001, "errmsg": "invalid credential"})
        if (
            body.get("version") != 2
            or not body.get("openid")
            or body.get("scene") not in (1, 2, 3, 4)
        ):
            return JSONResponse({"errcode": 47001, "errmsg": "data format error"})
        content = str(body.get("content", ""))
        suggest, label = "pass", 100
        if any(word in content for word in self.risky_words):
            suggest, label = "risky", 20006
        elif any(word in content for word in self.review_words):
            suggest, label = "review", 21000
        return JSONResponse(
            {"errcode": 0, "errmsg": "ok", "result": {"suggest": suggest, "label": label}}
        )

    async def _subscribe_send(self, request: Request) -> Response:
        body = await request.json()
        self.calls.append(("/cgi-bin/message/subscribe/send", body))
        if scripted := await self._scripted():
            return scripted
        if not self._token_ok(request):
            return JSONResponse({"errcode": 40001, "errmsg": "invalid credential"})
        return JSONResponse({"errcode": 0, "errmsg": "ok"})

    async def _media_check_async(self, request: Request) -> Response:
        body = await request.json()
        self.calls.append(("/wxa/media_check_async", body))
        if scripted := await self._scripted():
            return scripted
        if not self._token_ok(request):
            return JSONResponse({"errcode": 40001, "errmsg": "invalid credential"})
        url = body.get("media_url")
        if (
            not isinstance(url, str)
            or not url.startswith(("http://", "https://"))
            or body.get("media_type") not in (1, 2)
            or body.get("version") != 2
            or body.get("scene") not in (1, 2, 3, 4)
            or not body.get("openid")
        ):
            return JSONResponse({"errcode": 47001, "errmsg": "data format error"})
        trace_id = f"trace-{next(self._serial)}-{secrets.token_hex(4)}"
        self.media_checks[trace_id] = body
        return JSONResponse({"errcode": 0, "errmsg": "ok", "trace_id": trace_id})

    def verdict_event(
        self, trace_id: str, suggest: str, label: int = 100, openid: str = ""
    ) -> dict[str, Any]:
        """The `wxa_media_check` push event WeChat sends when a check is done."""
        return {
            "ToUserName": "gh_fake_miniprogram",
            "FromUserName": openid or self.media_checks[trace_id]["openid"],
            "CreateTime": int(time.time()),
            "MsgType": "event",
            "Event": "wxa_media_check",
            "appid": self.app_id,
            "trace_id": trace_id,
            "version": 2,
            "detail": [
                {
                    "strategy": "content_model",
                    "errcode": 0,
                    "suggest": suggest,
                    "label": label,
                    "prob": 90,
                }
            ],
            "errcode": 0,
            "errmsg": "ok",
            "result": {"suggest": suggest, "label": label},
        }

    def push_query(
        self, *, token: str | None = None, timestamp: int | None = None
    ) -> dict[str, str]:
        """Message-push signature parameters: sha1 over the sorted token, timestamp, nonce."""
        stamp = str(timestamp if timestamp is not None else int(time.time()))
        nonce = str(secrets.randbelow(10**9))
        parts = sorted([token or self.push_token, stamp, nonce])
        signature = hashlib.sha1("".join(parts).encode()).hexdigest()  # noqa: S324
        return {"signature": signature, "timestamp": stamp, "nonce": nonce}

    async def push(
        self,
        http: httpx.AsyncClient,
        url: str,
        event: dict[str, Any],
        *,
        token: str | None = None,
        timestamp: int | None = None,
    ) -> httpx.Response:
        """Deliver a push event to the app's callback, signed as WeChat signs it."""
        return await http.post(
            url, params=self.push_query(token=token, timestamp=timestamp), json=event
        )

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/sns/jscode2session", self._jscode2session),
                Route("/cgi-bin/stable_token", self._stable_token, methods=["POST"]),
                Route("/wxa/business/getuserphonenumber", self._phone_number, methods=["POST"]),
                Route("/wxa/msg_sec_check", self._msg_sec_check, methods=["POST"]),
                Route("/cgi-bin/message/subscribe/send", self._subscribe_send, methods=["POST"]),
                Route("/wxa/media_check_async", self._media_check_async, methods=["POST"]),
            ]
        )
