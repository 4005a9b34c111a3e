"""A fake Tencent Cloud SMS endpoint that checks TC3-HMAC-SHA256 signatures itself."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route


@dataclass
class FakeTencentSms:
    url: str = ""
    secret_id: str = "AKIDfake"
    secret_key: str = "fake-tencent-secret"
    sent: list[dict[str, object]] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)
    fail_with: str | None = None

    def last_code(self, phone: str) -> str:
        for message in reversed(self.sent):
            if message["PhoneNumberSet"] == [phone]:
                return str(message["TemplateParamSet"][0])  # type: ignore[index]
        raise LookupError(phone)

    def _expected_signature(self, request: Request, body: bytes, timestamp: str) -> str:
        # Written from Tencent's published algorithm, independently of the app's signer.
        date = datetime.fromtimestamp(int(timestamp), UTC).strftime("%Y-%m-%d")
        headers = (
            f"content-type:{request.headers['content-type']}\nhost:{request.headers['host']}\n"
        )
        canonical_request = (
            f"POST\n/\n\n{headers}\ncontent-type;host\n{hashlib.sha256(body).hexdigest()}"
        )
        string_to_sign = (
            f"TC3-HMAC-SHA256\n{timestamp}\n{date}/sms/tc3_request\n"
            f"{hashlib.sha256(canonical_request.encode()).hexdigest()}"
        )
        key = ("TC3" + self.secret_key).encode()
        for part in (date, "sms", "tc3_request"):
            key = hmac.new(key, part.encode(), hashlib.sha256).digest()
        return hmac.new(key, string_to_sign.encode(), hashlib.sha256).hexdigest()

    async def _api(self, request: Request) -> JSONResponse:
        body = await request.body()
        timestamp = request.headers.get("x-tc-timestamp", "0")
        auth = request.headers.get("authorization", "")
        signature = auth.rsplit("Signature=", 1)[-1]
        problem = None
        if request.headers.get("x-tc-action") != "SendSms":
            problem = "InvalidAction"
        elif f"Credential={self.secret_id}/" not in auth:
            problem = "AuthFailure.SecretIdNotFound"
        elif abs(time.time() - int(timestamp)) > 300:
            problem = "AuthFailure.SignatureExpire"
        elif not hmac.compare_digest(signature, self._expected_signature(request, body, timestamp)):
            problem = "AuthFailure.SignatureFailure"
        elif self.fail_with:
            problem = self.fail_with
        if problem:
            self.rejected.append(problem)
            return JSONResponse({"Response": {"Error": {"Code": problem}, "RequestId": "r"}})
        message = json.loads(body)
        self.sent.append(message)
        return JSONResponse(
            {
                "Response": {
                    "SendStatusSet": [{"Code": "Ok", "PhoneNumber": message["PhoneNumberSet"][0]}],
                    "RequestId": "r",
                }
            }
        )

    def app(self) -> Starlette:
        return Starlette(routes=[Route("/", self._api, methods=["POST"])])
