"""A fake S3-compatible object store (path-style) that checks AWS Signature V4 itself.

The verification is written from AWS's published algorithm, independently of the app's
signer: it rebuilds the canonical request from what actually arrived (method, raw path, the
headers the client says it signed, the body's hash) and compares signatures.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

_AUTH = re.compile(
    r"^AWS4-HMAC-SHA256 Credential=(?P<ak>[^/]+)/(?P<day>\d{8})/(?P<region>[^/]+)/s3/aws4_request,"
    r"\s*SignedHeaders=(?P<signed>[a-z0-9;-]+),\s*Signature=(?P<sig>[0-9a-f]{64})$"
)


def _error(code: str, status: int) -> Response:
    body = f"<?xml version='1.0'?><Error><Code>{code}</Code></Error>"
    return Response(body, status_code=status, media_type="application/xml")


@dataclass
class FakeS3:
    url: str = ""
    bucket: str = "proofs-bucket"
    region: str = "ap-shanghai"
    access_key: str = "AKFAKE123"
    secret_key: str = "fake-s3-secret"
    objects: dict[str, tuple[bytes, str]] = field(default_factory=dict)
    rejected: list[str] = field(default_factory=list)

    def _verify(self, request: Request, body: bytes) -> str | None:
        """None when the signature holds, else an S3 error code."""
        match = _AUTH.match(request.headers.get("authorization", ""))
        if match is None:
            return "AccessDenied"
        if match["ak"] != self.access_key:
            return "InvalidAccessKeyId"
        amz_date = request.headers.get("x-amz-date", "")
        try:
            sent = datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
        except ValueError:
            return "AccessDenied"
        if abs((datetime.now(UTC) - sent).total_seconds()) > 900:
            return "RequestTimeTooSkewed"
        if match["day"] != amz_date[:8] or match["region"] != self.region:
            return "AuthorizationHeaderMalformed"
        signed = match["signed"].split(";")
        if not {"host", "x-amz-date", "x-amz-content-sha256"} <= set(signed):
            return "AccessDenied"
        if request.headers.get("x-amz-content-sha256") != hashlib.sha256(body).hexdigest():
            return "XAmzContentSHA256Mismatch"
        header_block = ""
        for name in signed:
            value = request.headers.get(name)
            if value is None:
                return "AccessDenied"
            header_block += name + ":" + " ".join(value.split()) + "\n"
        canonical = "\n".join(
            (
                request.method,
                request.scope["raw_path"].decode(),
                request.scope["query_string"].decode(),
                header_block,
                match["signed"],
                request.headers["x-amz-content-sha256"],
            )
        )
        scope = f"{match['day']}/{self.region}/s3/aws4_request"
        to_sign = (
            f"AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n"
            + hashlib.sha256(canonical.encode()).hexdigest()
        )
        k_date = hmac.new(f"AWS4{self.secret_key}".encode(), match["day"].encode(), "sha256")
        k_region = hmac.new(k_date.digest(), self.region.encode(), "sha256")
        k_service = hmac.new(k_region.digest(), b"s3", "sha256")
        k_signing = hmac.new(k_service.digest(), b"aws4_request", "sha256")
        expected = hmac.new(k_signing.digest(), to_sign.encode(), "sha256").hexdigest()
        if not hmac.compare_digest(expected, match["sig"]):
            return "SignatureDoesNotMatch"
        return None

    async def _object(self, request: Request) -> Response:
        if request.path_params["bucket"] != self.bucket:
            return _error("NoSuchBucket", 404)
        body = await request.body()
        problem = self._verify(request, body)
        if problem:
            self.rejected.append(problem)
            return _error(problem, 403)
        key = request.path_params["key"]
        if request.method == "PUT":
            self.objects[key] = (body, request.headers.get("content-type", ""))
            return Response(status_code=200, headers={"etag": hashlib.md5(body).hexdigest()})  # noqa: S324
        if request.method == "DELETE":
            self.objects.pop(key, None)
            return Response(status_code=204)
        found = self.objects.get(key)
        if found is None:
            return _error("NoSuchKey", 404)
        return Response(found[0], media_type=found[1])

    def app(self) -> Starlette:
        return Starlette(
            routes=[Route("/{bucket}/{key:path}", self._object, methods=["GET", "PUT", "DELETE"])]
        )
