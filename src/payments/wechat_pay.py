"""WeChat Pay API v3 (JSAPI) over httpx: merchant-signed requests, the `wx.requestPayment`
arguments, and verification and decryption of what WeChat Pay sends back.

Requests are signed SHA256-RSA (PKCS#1 v1.5) with the merchant key over
`METHOD\\nPATH\\nTIMESTAMP\\nNONCE\\nBODY\\n`; answers and notifications are verified with the
platform public key over `TIMESTAMP\\nNONCE\\nBODY\\n`; notification resources are
AEAD_AES_256_GCM-encrypted with the APIv3 key.
"""

from __future__ import annotations

import base64
import json
import secrets
import time
from typing import Any

import httpx
from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from src.config import Settings, reveal

# Notifications older or newer than this are refused (replays of captured requests).
MAX_CLOCK_SKEW_S = 300


class PayError(Exception):
    """WeChat Pay refused the request or could not be reached."""


class InvalidNotification(Exception):
    """A notification or answer whose signature, timestamp or ciphertext does not check out."""


def _load_private(pem: str) -> rsa.RSAPrivateKey:
    key = serialization.load_pem_private_key(pem.encode(), password=None)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError("the merchant key must be an RSA private key")
    return key


def _load_public(pem: str) -> rsa.RSAPublicKey:
    key = serialization.load_pem_public_key(pem.encode())
    if not isinstance(key, rsa.RSAPublicKey):
        raise ValueError("the platform key must be an RSA public key")
    return key


def rsa_sign(key: rsa.RSAPrivateKey, message: str) -> str:
    return base64.b64encode(
        key.sign(message.encode(), padding.PKCS1v15(), hashes.SHA256())
    ).decode()


def rsa_verify(key: rsa.RSAPublicKey, message: str, signature: str) -> bool:
    try:
        key.verify(
            base64.b64decode(signature), message.encode(), padding.PKCS1v15(), hashes.SHA256()
        )
    except (InvalidSignature, ValueError):
        return False
    return True


class WechatPayClient:
    def __init__(self, settings: Settings, http: httpx.AsyncClient):
        self.app_id = settings.wechat_app_id or ""
        self.mch_id = settings.wechat_pay_mch_id or ""
        self.serial_no = settings.wechat_pay_serial_no or ""
        self.base = settings.wechat_pay_api_base.rstrip("/")
        self.notify_url = settings.wechat_pay_notify_url or ""
        self._key = _load_private(reveal(settings.wechat_pay_private_key))
        self._platform = _load_public(settings.wechat_pay_platform_public_key or "")
        self._platform_serial = settings.wechat_pay_platform_serial
        self._aead = AESGCM(reveal(settings.wechat_pay_api_v3_key).encode())
        self.http = http
        self.timeout = httpx.Timeout(5.0, connect=2.0)

    def _authorization(self, method: str, path: str, body: str) -> str:
        timestamp, nonce = str(int(time.time())), secrets.token_hex(16)
        signature = rsa_sign(self._key, f"{method}\n{path}\n{timestamp}\n{nonce}\n{body}\n")
        return (
            f'WECHATPAY2-SHA256-RSA2048 mchid="{self.mch_id}",nonce_str="{nonce}",'
            f'signature="{signature}",timestamp="{timestamp}",serial_no="{self.serial_no}"'
        )

    async def _request(self, method: str, path: str, payload: dict[str, Any] | None = None) -> Any:
        body = json.dumps(payload, separators=(",", ":"), ensure_ascii=False) if payload else ""
        headers = {
            "Authorization": self._authorization(method, path, body),
            "Accept": "application/json",
            "Content-Type": "application/json",
        }
        try:
            response = await self.http.request(
                method,
                self.base + path,
                content=body.encode(),
                headers=headers,
                timeout=self.timeout,
            )
        except httpx.HTTPError as exc:
            raise PayError(type(exc).__name__) from None
        if response.status_code >= 300:
            raise PayError(f"HTTP {response.status_code}")
        # Answers are signed too: a man in the middle cannot fake a paid order.
        self.verify(dict(response.headers), response.text, max_skew=None)
        return response.json() if response.text else None

    async def create_jsapi_order(
        self, *, out_trade_no: str, description: str, amount_fen: int, openid: str
    ) -> str:
        """Create the order at WeChat Pay; returns its prepay_id."""
        answer = await self._request(
            "POST",
            "/v3/pay/transactions/jsapi",
            {
                "appid": self.app_id,
                "mchid": self.mch_id,
                "description": description,
                "out_trade_no": out_trade_no,
                "notify_url": self.notify_url,
                "amount": {"total": amount_fen, "currency": "CNY"},
                "payer": {"openid": openid},
            },
        )
        prepay_id = (answer or {}).get("prepay_id")
        if not prepay_id:
            raise PayError("no prepay_id")
        return str(prepay_id)

    def payment_params(self, prepay_id: str) -> dict[str, str]:
        """The arguments of `wx.requestPayment`, signed with the merchant key."""
        timestamp, nonce = str(int(time.time())), secrets.token_hex(16)
        package = f"prepay_id={prepay_id}"
        return {
            "appId": self.app_id,
            "timeStamp": timestamp,
            "nonceStr": nonce,
            "package": package,
            "signType": "RSA",
            "paySign": rsa_sign(self._key, f"{self.app_id}\n{timestamp}\n{nonce}\n{package}\n"),
        }

    async def query_order(self, out_trade_no: str) -> dict[str, Any]:
        """The transaction as WeChat Pay knows it (for orders whose notify never came)."""
        path = f"/v3/pay/transactions/out-trade-no/{out_trade_no}?mchid={self.mch_id}"
        return dict(await self._request("GET", path) or {})

    def verify(self, headers: dict[str, str], body: str, *, max_skew: int | None) -> None:
        """Check `Wechatpay-Signature` over `timestamp\\nnonce\\nbody\\n`."""
        lowered = {k.lower(): v for k, v in headers.items()}
        timestamp = lowered.get("wechatpay-timestamp", "")
        nonce = lowered.get("wechatpay-nonce", "")
        signature = lowered.get("wechatpay-signature", "")
        serial = lowered.get("wechatpay-serial")
        if not (timestamp.isdigit() and nonce and signature):
            raise InvalidNotification("missing signature headers")
        if self._platform_serial and serial != self._platform_serial:
            raise InvalidNotification("unknown platform certificate")
        if max_skew is not None and abs(time.time() - int(timestamp)) > max_skew:
            raise InvalidNotification("stale timestamp")
        if not rsa_verify(self._platform, f"{timestamp}\n{nonce}\n{body}\n", signature):
            raise InvalidNotification("bad signature")

    def decrypt_notification(self, headers: dict[str, str], body: str) -> dict[str, Any]:
        """Verify a payment notification and return its decrypted transaction."""
        self.verify(headers, body, max_skew=MAX_CLOCK_SKEW_S)
        try:
            resource = json.loads(body)["resource"]
            if resource.get("algorithm") != "AEAD_AES_256_GCM":
                raise InvalidNotification("unknown algorithm")
            plain = self._aead.decrypt(
                resource["nonce"].encode(),
                base64.b64decode(resource["ciphertext"]),
                (resource.get("associated_data") or "").encode(),
            )
            return dict(json.loads(plain))
        except (KeyError, TypeError, ValueError, InvalidTag) as exc:
            raise InvalidNotification(type(exc).__name__) from None
