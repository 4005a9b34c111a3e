"""Helpers for report tests: GraphQL multipart requests (the multipart request spec), test
images made with Pillow, and moderators."""

from __future__ import annotations

import io
import json
import os
from typing import Any

import httpx
from PIL import Image
from starlette.applications import Starlette

from tests.helpers import GraphQLClient, registered_user, sql

CSRF = {"Apollo-Require-Preflight": "true"}

REPORT = """mutation ($input: ReportInput!, $proofs: [Upload!]) {
  reportUser(input: $input, proofs: $proofs) {
    report { id reason details status proofUrls reporter { id } reported { id } decision }
    errors { code message field }
  }
}"""


async def multipart(
    http: httpx.AsyncClient,
    query: str,
    variables: dict[str, Any],
    files: list[tuple[str, bytes, str]],
    *,
    token: str | None = None,
    headers: dict[str, str] | None = None,
    file_variable: str = "proofs",
) -> httpx.Response:
    """POST `files` (name, bytes, declared type) as the list variable `file_variable`."""
    operations = {"query": query, "variables": {**variables, file_variable: [None] * len(files)}}
    mapping = {str(i): [f"variables.{file_variable}.{i}"] for i in range(len(files))}
    sent = dict(headers if headers is not None else CSRF)
    if token:
        sent["authorization"] = f"Bearer {token}"
    return await http.post(
        "/graphql",
        data={"operations": json.dumps(operations), "map": json.dumps(mapping)},
        files=[(str(i), (name, data, ctype)) for i, (name, data, ctype) in enumerate(files)],
        headers=sent,
    )


async def report(
    http: httpx.AsyncClient,
    token: str,
    reported_id: str,
    files: list[tuple[str, bytes, str]] | None = None,
    *,
    reason: str = "HARASSMENT",
    details: str | None = None,
) -> dict[str, Any]:
    """reportUser (multipart when there are files); returns the payload."""
    variables = {"input": {"reportedUserId": reported_id, "reason": reason, "details": details}}
    if files:
        response = await multipart(http, REPORT, variables, files, token=token)
        parsed = GraphQLClient.parse(response)
    else:
        parsed = await GraphQLClient(http)(REPORT, variables, token=token)
    assert parsed.errors == [], (parsed.status, parsed.errors)
    return parsed.data["reportUser"]


def png(size: tuple[int, int] = (64, 48), color: tuple[int, int, int] = (200, 30, 30)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, color).save(out, "PNG")
    return out.getvalue()


def jpeg_with_gps() -> bytes:
    """A JPEG carrying EXIF with a camera model and GPS coordinates (Shanghai)."""
    exif = Image.Exif()
    exif[0x0110] = "SecretPhone 12"  # Model
    exif[0x0112] = 1  # Orientation
    gps = exif.get_ifd(0x8825)
    gps[1], gps[2] = "N", (31.0, 14.0, 0.0)
    gps[3], gps[4] = "E", (121.0, 28.0, 0.0)
    out = io.BytesIO()
    Image.new("RGB", (80, 60), (10, 120, 200)).save(out, "JPEG", exif=exif, quality=90)
    return out.getvalue()


def big_png(min_bytes: int) -> bytes:
    """A real PNG of random pixels (incompressible) larger than `min_bytes`."""
    side = int((min_bytes / 3) ** 0.5) + 64
    image = Image.frombytes("RGB", (side, side), os.urandom(side * side * 3))
    out = io.BytesIO()
    image.save(out, "PNG", compress_level=1)
    data = out.getvalue()
    assert len(data) > min_bytes
    return data


async def moderator(gql: GraphQLClient, app: Starlette, name: str) -> dict[str, Any]:
    login = await registered_user(gql, name)
    await sql(app, "UPDATE users SET role = 'moderator' WHERE id = :id", id=login["me"]["id"])
    return login


def codes(payload: dict[str, Any]) -> list[str]:
    return [e["code"] for e in payload["errors"]]


async def established(app: Starlette, *logins: dict[str, Any]) -> None:
    """Make these accounts registered 4 days ago: old enough for their reports to count toward
    an automatic hold (REPORT_HOLD_MIN_ACCOUNT_AGE_H, 72 by default)."""
    for login in logins:
        await sql(
            app,
            "UPDATE users SET registered_at = now() - interval '4 days' WHERE id = :u",
            u=login["me"]["id"],
        )
