"""WeChat server APIs: login (jscode2session), the shared access token, phone numbers, content
checks; over the lean keep-alive client of src/auth/wechat_http.py.

Every call has explicit connect/read timeouts and an overall deadline (SECURITY.md 17): WeChat
busy (-1) and 5xx answers are retried a bounded number of times; code errors never are.
`session_key` is read from the login answer and dropped at once: no feature needs it.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import time
import zlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote, urlencode

import orjson
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from src.auth.wechat_http import HttpTimeout, HttpTransportError, KeepAliveClient, Timeouts
from src.config import Settings, reveal

log = logging.getLogger(__name__)

BUSY = -1
INVALID_CODE = 40029
CODE_USED = 40163
HIGH_RISK = 40226
TOKEN_INVALID = (40001, 42001)

# Refresh the shared access token this long before WeChat would expire it.
TOKEN_MARGIN = timedelta(minutes=5)


class WechatError(Exception):
    """`kind` is one of: invalid_code, unavailable, rejected."""

    def __init__(self, kind: str, errcode: int | None = None):
        super().__init__(f"wechat {kind} (errcode {errcode})")
        self.kind = kind
        self.errcode = errcode


@dataclass(frozen=True)
class WechatSession:
    openid: str
    unionid: str | None


class WechatClient:
    def __init__(self, settings: Settings, engine: AsyncEngine):
        self.app_id = settings.wechat_app_id or ""
        self._secret = reveal(settings.wechat_app_secret)
        self.deadline = settings.wechat_deadline_s
        self.retries = settings.wechat_retries
        self.timeouts = Timeouts(
            connect=settings.wechat_connect_timeout_s,
            read=settings.wechat_read_timeout_s,
            pool=settings.wechat_connect_timeout_s,
        )
        self.http = KeepAliveClient(settings.wechat_api_base)
        self.engine = engine
        self._cached: tuple[str, float] | None = None  # (token, monotonic expiry) per process

    async def aclose(self) -> None:
        await self.http.aclose()

    async def _call(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, str] | None = None,
        json: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """One WeChat API call with bounded retries inside the overall deadline."""
        target = f"{path}?{urlencode(params, quote_via=quote)}" if params else path
        payload = orjson.dumps(json) if json is not None else None
        try:
            async with asyncio.timeout(self.deadline):
                for attempt in range(self.retries + 1):
                    retry = attempt < self.retries
                    try:
                        answer = await self.http.request(method, target, payload, self.timeouts)
                    except HttpTimeout:
                        raise WechatError("unavailable") from None
                    except HttpTransportError:
                        if retry:
                            await asyncio.sleep(0.1 * (attempt + 1))
                            continue
                        raise WechatError("unavailable") from None
                    if answer.status >= 500:
                        if retry:
                            await asyncio.sleep(0.1 * (attempt + 1))
                            continue
                        raise WechatError("unavailable")
                    if 300 <= answer.status < 400:  # never followed: WeChat does not redirect
                        raise WechatError("unavailable")
                    try:
                        body = orjson.loads(answer.body)
                    except orjson.JSONDecodeError:
                        raise WechatError("unavailable") from None
                    if not isinstance(body, dict):
                        raise WechatError("unavailable")
                    errcode = int(body.get("errcode") or 0)
                    if errcode == BUSY and retry:
                        await asyncio.sleep(0.1 * (attempt + 1))
                        continue
                    if errcode:
                        raise _error_for(errcode)
                    return body
        except TimeoutError:
            raise WechatError("unavailable") from None
        raise WechatError("unavailable")  # pragma: no cover - the loop always returns or raises

    async def code_to_session(self, code: str) -> WechatSession:
        """Exchange a `wx.login` code for the user's openid (and unionid when bound)."""
        body = await self._call(
            "GET",
            "/sns/jscode2session",
            params={
                "appid": self.app_id,
                "secret": self._secret,
                "js_code": code,
                "grant_type": "authorization_code",
            },
        )
        openid = body.get("openid")
        if not isinstance(openid, str) or not openid:
            raise WechatError("unavailable")
        unionid = body.get("unionid")
        return WechatSession(openid=openid, unionid=unionid if isinstance(unionid, str) else None)

    async def phone_number(self, code: str) -> str:
        """The phone number behind a `getPhoneNumber` code, as +<country><number>."""
        body = await self._with_access_token(
            "POST", "/wxa/business/getuserphonenumber", json={"code": code}
        )
        info = body.get("phone_info") or {}
        number, country = info.get("purePhoneNumber"), info.get("countryCode")
        if not number or not country:
            raise WechatError("unavailable")
        return f"+{country}{number}"

    async def check_text(self, *, openid: str, content: str, scene: int) -> str:
        """WeChat content security (msg_sec_check v2): 'pass', 'review' or 'risky'.

        Scenes: 1 profile, 2 comment, 3 forum, 4 social. `openid` must be a user active in
        the last two hours; text is at most 2,500 characters.
        """
        body = await self._with_access_token(
            "POST",
            "/wxa/msg_sec_check",
            json={"content": content[:2500], "version": 2, "scene": scene, "openid": openid},
        )
        suggest = (body.get("result") or {}).get("suggest")
        if suggest not in ("pass", "review", "risky"):
            raise WechatError("unavailable")
        return str(suggest)

    async def media_check_async(
        self, *, openid: str, media_url: str, scene: int, media_type: int = 2
    ) -> str:
        """Submit an image (media_type 2) to WeChat's asynchronous media check (v2); returns
        the trace_id its `wxa_media_check` push event will carry. WeChat fetches
        `media_url` itself, so it must be publicly reachable for a while."""
        body = await self._with_access_token(
            "POST",
            "/wxa/media_check_async",
            json={
                "media_url": media_url,
                "media_type": media_type,
                "version": 2,
                "scene": scene,
                "openid": openid,
            },
        )
        trace_id = body.get("trace_id")
        if not isinstance(trace_id, str) or not trace_id:
            raise WechatError("unavailable")
        return trace_id

    async def send_subscribe_message(
        self, *, openid: str, template_id: str, page: str, data: dict[str, str], state: str
    ) -> None:
        """One subscribe message (each needs a one-time consent the user gave in the app)."""
        await self._with_access_token(
            "POST",
            "/cgi-bin/message/subscribe/send",
            json={
                "touser": openid,
                "template_id": template_id,
                "page": page,
                "miniprogram_state": state,
                "lang": "zh_CN",
                "data": {key: {"value": value} for key, value in data.items()},
            },
        )

    async def _with_access_token(
        self, method: str, path: str, *, json: dict[str, Any]
    ) -> dict[str, Any]:
        token = await self.access_token()
        try:
            return await self._call(method, path, params={"access_token": token}, json=json)
        except WechatError as exc:
            if exc.errcode not in TOKEN_INVALID:
                raise
        token = await self.access_token(force=True)
        return await self._call(method, path, params={"access_token": token}, json=json)

    async def access_token(self, *, force: bool = False) -> str:
        """The app's access token, shared by all processes through PostgreSQL.

        One refresher at a time: an advisory lock serializes refreshes across processes, and
        whoever waits re-reads the row instead of refreshing again (which would invalidate it).
        """
        if not force and self._cached and self._cached[1] > time.monotonic():
            return self._cached[0]
        lock_id = zlib.crc32(f"wechat-token:{self.app_id}".encode())
        async with self.engine.begin() as conn:
            await conn.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": lock_id})
            row = (
                await conn.execute(
                    text(
                        "SELECT access_token, expires_at FROM wechat_access_tokens"
                        " WHERE app_id = :app"
                    ),
                    {"app": self.app_id},
                )
            ).first()
            now = datetime.now(UTC)
            stale_token = self._cached[0] if force and self._cached else None
            if row and row.expires_at - TOKEN_MARGIN > now and row.access_token != stale_token:
                token, expires_at = row.access_token, row.expires_at
            else:
                body = await self._call(
                    "POST",
                    "/cgi-bin/stable_token",
                    json={
                        "grant_type": "client_credential",
                        "appid": self.app_id,
                        "secret": self._secret,
                        "force_refresh": force,
                    },
                )
                token = str(body["access_token"])
                expires_at = now + timedelta(seconds=int(body.get("expires_in", 7200)))
                await conn.execute(
                    text(
                        "INSERT INTO wechat_access_tokens (app_id, access_token, expires_at)"
                        " VALUES (:app, :token, :exp) ON CONFLICT (app_id) DO UPDATE"
                        " SET access_token = :token, expires_at = :exp"
                    ),
                    {"app": self.app_id, "token": token, "exp": expires_at},
                )
        ttl = (expires_at - TOKEN_MARGIN - now).total_seconds()
        self._cached = (token, time.monotonic() + max(ttl, 0))
        return token


def push_signature(token: str, timestamp: str, nonce: str) -> str:
    """WeChat message push: sha1 of token, timestamp and nonce, sorted and concatenated."""
    return hashlib.sha1("".join(sorted((token, timestamp, nonce))).encode()).hexdigest()  # noqa: S324 - WeChat's scheme


def verify_push(token: str, signature: str, timestamp: str, nonce: str) -> bool:
    return hmac.compare_digest(push_signature(token, timestamp, nonce), signature)


def _error_for(errcode: int) -> WechatError:
    if errcode in (INVALID_CODE, CODE_USED):
        return WechatError("invalid_code", errcode)
    if errcode == HIGH_RISK:
        return WechatError("rejected", errcode)
    return WechatError("unavailable", errcode)
