"""SMS delivery behind one interface: `console` for development, Tencent Cloud SMS (API 3.0)."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
from datetime import UTC, datetime
from typing import Protocol
from urllib.parse import urlsplit

import httpx

from src.auth.phone import mask_phone
from src.config import Settings, reveal

log = logging.getLogger(__name__)


class SmsDeliveryError(Exception):
    """The provider did not accept the message."""


class SmsProvider(Protocol):
    async def send_code(self, phone: str, code: str, ttl_minutes: int) -> None: ...


class ConsoleSmsProvider:
    """Development only (production refuses it): the code goes to the server log."""

    async def send_code(self, phone: str, code: str, ttl_minutes: int) -> None:
        log.warning("DEVELOPMENT SMS to %s: login code %s", mask_phone(phone), code)


def tc3_signature(
    *,
    secret_id: str,
    secret_key: str,
    service: str,
    host: str,
    action: str,
    payload: bytes,
    timestamp: int,
) -> dict[str, str]:
    """Headers of a Tencent Cloud API 3.0 request signed with TC3-HMAC-SHA256."""
    content_type = "application/json; charset=utf-8"
    date = datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d")
    canonical = "\n".join(
        [
            "POST",
            "/",
            "",
            f"content-type:{content_type}\nhost:{host}\n",
            "content-type;host",
            hashlib.sha256(payload).hexdigest(),
        ]
    )
    scope = f"{date}/{service}/tc3_request"
    to_sign = "\n".join(
        ["TC3-HMAC-SHA256", str(timestamp), scope, hashlib.sha256(canonical.encode()).hexdigest()]
    )

    def _hmac(key: bytes, msg: str) -> bytes:
        return hmac.new(key, msg.encode(), hashlib.sha256).digest()

    signing = _hmac(_hmac(_hmac(("TC3" + secret_key).encode(), date), service), "tc3_request")
    signature = hmac.new(signing, to_sign.encode(), hashlib.sha256).hexdigest()
    return {
        "Authorization": (
            f"TC3-HMAC-SHA256 Credential={secret_id}/{scope}, "
            f"SignedHeaders=content-type;host, Signature={signature}"
        ),
        "Content-Type": content_type,
        "Host": host,
        "X-TC-Action": action,
        "X-TC-Timestamp": str(timestamp),
        "X-TC-Version": "2021-01-11",
    }


class TencentSmsProvider:
    """`SendSms` of Tencent Cloud SMS, API version 2021-01-11."""

    def __init__(self, settings: Settings, http: httpx.AsyncClient):
        self.endpoint = settings.tencent_sms_endpoint.rstrip("/")
        self.host = urlsplit(self.endpoint).netloc
        self.region = settings.tencent_sms_region
        self.secret_id = settings.tencent_secret_id or ""
        self._secret_key = reveal(settings.tencent_secret_key)
        self.app_id = settings.tencent_sms_app_id or ""
        self.sign_name = settings.tencent_sms_sign_name or ""
        self.template_id = settings.tencent_sms_template_id or ""
        self.http = http
        self.timeout = httpx.Timeout(5.0, connect=2.0)

    async def send_code(self, phone: str, code: str, ttl_minutes: int) -> None:
        payload = json.dumps(
            {
                "PhoneNumberSet": [phone],
                "SmsSdkAppId": self.app_id,
                "SignName": self.sign_name,
                "TemplateId": self.template_id,
                "TemplateParamSet": [code, str(ttl_minutes)],
            },
            separators=(",", ":"),
        ).encode()
        headers = tc3_signature(
            secret_id=self.secret_id,
            secret_key=self._secret_key,
            service="sms",
            host=self.host,
            action="SendSms",
            payload=payload,
            timestamp=int(time.time()),
        )
        headers["X-TC-Region"] = self.region
        try:
            response = await self.http.post(
                self.endpoint + "/", content=payload, headers=headers, timeout=self.timeout
            )
            body = response.json().get("Response", {})
        except (httpx.HTTPError, ValueError, AttributeError) as exc:
            raise SmsDeliveryError(type(exc).__name__) from None
        if "Error" in body:
            raise SmsDeliveryError(str(body["Error"].get("Code")))
        statuses = body.get("SendStatusSet") or []
        if not statuses or statuses[0].get("Code") != "Ok":
            raise SmsDeliveryError(str(statuses[0].get("Code") if statuses else "no status"))
        log.info("SMS code sent to %s", mask_phone(phone))


def build_sms_provider(settings: Settings, http: httpx.AsyncClient) -> SmsProvider:
    if settings.sms_provider == "tencent":
        return TencentSmsProvider(settings, http)
    return ConsoleSmsProvider()
