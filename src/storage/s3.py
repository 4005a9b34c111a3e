"""An S3-compatible bucket over httpx, signed with AWS Signature Version 4 (no SDK).

Works with Tencent COS, Alibaba OSS and MinIO through their S3-compatible APIs. Only the three
calls the app needs: PUT, GET and DELETE of one object.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime
from urllib.parse import quote, urlsplit

import httpx

from src.storage.base import StorageError, check_key

ALGORITHM = "AWS4-HMAC-SHA256"


def _hmac(key: bytes, message: str) -> bytes:
    return hmac.new(key, message.encode(), hashlib.sha256).digest()


def sigv4_headers(
    *,
    method: str,
    url: str,
    payload: bytes,
    access_key: str,
    secret_key: str,
    region: str,
    service: str = "s3",
    now: datetime | None = None,
    extra: dict[str, str] | None = None,
) -> dict[str, str]:
    """The headers that sign one request (Host, x-amz-date, x-amz-content-sha256,
    Authorization), per AWS Signature Version 4 with a signed payload hash."""
    moment = (now or datetime.now(UTC)).astimezone(UTC)
    amz_date = moment.strftime("%Y%m%dT%H%M%SZ")
    day = amz_date[:8]
    parts = urlsplit(url)
    payload_hash = hashlib.sha256(payload).hexdigest()
    headers = {
        "host": parts.netloc,
        "x-amz-date": amz_date,
        "x-amz-content-sha256": payload_hash,
        **{k.lower(): v.strip() for k, v in (extra or {}).items()},
    }
    signed = sorted(headers)
    canonical_request = "\n".join(
        [
            method,
            quote(parts.path or "/", safe="/-_.~"),
            parts.query,  # our requests carry no query string
            "".join(f"{name}:{headers[name]}\n" for name in signed),
            ";".join(signed),
            payload_hash,
        ]
    )
    scope = f"{day}/{region}/{service}/aws4_request"
    string_to_sign = "\n".join(
        [ALGORITHM, amz_date, scope, hashlib.sha256(canonical_request.encode()).hexdigest()]
    )
    key = ("AWS4" + secret_key).encode()
    for part in (day, region, service, "aws4_request"):
        key = _hmac(key, part)
    signature = hmac.new(key, string_to_sign.encode(), hashlib.sha256).hexdigest()
    headers["authorization"] = (
        f"{ALGORITHM} Credential={access_key}/{scope}, "
        f"SignedHeaders={';'.join(signed)}, Signature={signature}"
    )
    return headers


class S3Storage:
    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        endpoint: str,
        bucket: str,
        access_key: str,
        secret_key: str,
        region: str,
        addressing: str = "virtual",
        prefix: str = "proofs/",
    ):
        self.http = http
        parts = urlsplit(endpoint.rstrip("/"))
        if addressing == "virtual":
            self.base = f"{parts.scheme}://{bucket}.{parts.netloc}"
        else:
            self.base = f"{parts.scheme}://{parts.netloc}/{bucket}"
        self.access_key = access_key
        self._secret = secret_key
        self.region = region
        self.prefix = prefix
        self.timeout = httpx.Timeout(10.0, connect=3.0)

    async def _request(
        self, method: str, key: str, payload: bytes = b"", extra: dict[str, str] | None = None
    ) -> httpx.Response:
        url = f"{self.base}/{self.prefix}{check_key(key)}"
        headers = sigv4_headers(
            method=method,
            url=url,
            payload=payload,
            access_key=self.access_key,
            secret_key=self._secret,
            region=self.region,
            extra=extra,
        )
        try:
            return await self.http.request(
                method, url, content=payload, headers=headers, timeout=self.timeout
            )
        except httpx.HTTPError as exc:
            raise StorageError(f"S3 {method} failed: {type(exc).__name__}") from exc

    async def put(self, key: str, data: bytes, content_type: str) -> None:
        response = await self._request("PUT", key, data, {"content-type": content_type})
        if response.status_code != 200:
            raise StorageError(f"S3 PUT answered {response.status_code}")

    async def get(self, key: str) -> bytes | None:
        response = await self._request("GET", key)
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            raise StorageError(f"S3 GET answered {response.status_code}")
        return response.content

    async def delete(self, key: str) -> None:
        response = await self._request("DELETE", key)
        if response.status_code not in (200, 204, 404):
            raise StorageError(f"S3 DELETE answered {response.status_code}")
