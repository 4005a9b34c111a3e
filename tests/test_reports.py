"""Reporting users: proof images checked by content and stripped of metadata, multipart rules,
merging, and what reporters and reported users can see (SECURITY.md 6, 10, 26)."""

from __future__ import annotations

import io
import json
from pathlib import Path

import httpx
from PIL import Image
from starlette.applications import Starlette

from src.config import Settings
from tests.helpers import GraphQLClient, registered_user, sql
from tests.uploads import (
    CSRF,
    REPORT,
    big_png,
    codes,
    jpeg_with_gps,
    multipart,
    png,
    report,
)

MY_REPORTS = "{ me { reports { edges { node { id status decision proofUrls note } } } } }"


def stored(settings: Settings) -> list[Path]:
    folder = settings.data_dir / "proofs"
    return sorted(folder.iterdir()) if folder.exists() else []


async def two_users(gql: GraphQLClient) -> tuple[dict, dict]:
    return await registered_user(gql, "alice"), await registered_user(gql, "mallory")


async def test_jpeg_is_stored_without_its_gps_exif(
    http: httpx.AsyncClient, gql: GraphQLClient, app: Starlette, settings: Settings
) -> None:
    alice, mallory = await two_users(gql)
    original = jpeg_with_gps()
    assert Image.open(io.BytesIO(original)).getexif().get_ifd(0x8825)  # the GPS is there

    payload = await report(
        http,
        alice["accessToken"],
        mallory["me"]["id"],
        [("holiday.jpg", original, "image/jpeg")],
        details="  sent me threats  ",
    )

    assert payload["errors"] == []
    got = payload["report"]
    assert got["status"] == "PENDING" and got["details"] == "sent me threats"
    assert got["proofUrls"] == []  # the reporter does not get proof links back
    assert got["reporter"]["id"] == alice["me"]["id"]
    files = stored(settings)
    assert len(files) == 1
    assert files[0].suffix == ".jpg" and "holiday" not in files[0].name
    data = files[0].read_bytes()
    cleaned = Image.open(io.BytesIO(data))
    assert cleaned.format == "JPEG" and cleaned.size == (80, 60)
    assert dict(cleaned.getexif()) == {}
    assert b"SecretPhone" not in data and b"Exif" not in data
    keys = await sql(app, "SELECT proof_keys FROM user_reports WHERE id = :id", id=got["id"])
    assert keys == [files[0].name]


async def test_png_named_jpg_is_accepted_as_png(
    http: httpx.AsyncClient, gql: GraphQLClient, settings: Settings
) -> None:
    alice, mallory = await two_users(gql)
    payload = await report(
        http, alice["accessToken"], mallory["me"]["id"], [("photo.jpg", png(), "image/jpeg")]
    )
    assert payload["errors"] == []
    (only,) = stored(settings)
    assert only.suffix == ".png"
    with Image.open(only) as image:
        assert image.format == "PNG"


async def test_html_named_png_is_refused_and_nothing_is_stored(
    http: httpx.AsyncClient, gql: GraphQLClient, app: Starlette, settings: Settings
) -> None:
    alice, mallory = await two_users(gql)
    html = b"<!doctype html><script>alert(document.cookie)</script>"
    payload = await report(
        http,
        alice["accessToken"],
        mallory["me"]["id"],
        [("ok.png", png(), "image/png"), ("evil.png", html, "image/png")],
    )
    assert payload["report"] is None
    assert codes(payload) == ["INVALID_IMAGE"]
    assert stored(settings) == []
    assert await sql(app, "SELECT count(*) FROM user_reports") == 0


async def test_image_over_5_mb_is_refused(
    http: httpx.AsyncClient, gql: GraphQLClient, app: Starlette, settings: Settings
) -> None:
    alice, mallory = await two_users(gql)
    six_mb = big_png(6 * 1024 * 1024)
    payload = await report(
        http, alice["accessToken"], mallory["me"]["id"], [("big.png", six_mb, "image/png")]
    )
    assert codes(payload) == ["PROOF_TOO_LARGE"]
    assert stored(settings) == []
    assert await sql(app, "SELECT count(*) FROM user_reports") == 0


async def test_five_images_are_refused_and_nothing_is_stored(
    http: httpx.AsyncClient, gql: GraphQLClient, app: Starlette, settings: Settings
) -> None:
    alice, mallory = await two_users(gql)
    files = [(f"p{i}.png", png(color=(i, i, i)), "image/png") for i in range(5)]
    payload = await report(http, alice["accessToken"], mallory["me"]["id"], files)
    assert codes(payload) == ["TOO_MANY_PROOFS"]
    assert stored(settings) == []
    assert await sql(app, "SELECT count(*) FROM user_reports") == 0


async def test_multipart_without_the_csrf_header_is_refused(
    http: httpx.AsyncClient, gql: GraphQLClient, app: Starlette, settings: Settings
) -> None:
    alice, mallory = await two_users(gql)
    variables = {"input": {"reportedUserId": mallory["me"]["id"], "reason": "SPAM"}}
    response = await multipart(
        http,
        REPORT,
        variables,
        [("p.png", png(), "image/png")],
        token=alice["accessToken"],
        headers={},  # what a cross-site HTML form can send
    )
    assert response.status_code == 400
    assert "Apollo-Require-Preflight" in response.text
    assert stored(settings) == []
    assert await sql(app, "SELECT count(*) FROM user_reports") == 0


async def test_multipart_for_another_operation_is_refused(
    http: httpx.AsyncClient, gql: GraphQLClient, app: Starlette
) -> None:
    alice, mallory = await two_users(gql)
    block = "mutation ($id: ID!, $proofs: [Upload!]) { blockUser(userId: $id) { ok } }"
    smuggled = (
        "mutation ($input: ReportInput!, $proofs: [Upload!], $id: ID!) {"
        " reportUser(input: $input, proofs: $proofs) { errors { code } }"
        " blockUser(userId: $id) { ok } }"
    )
    query = "query ($proofs: [Upload!]) { me { id } }"
    for document in (block, smuggled, query, "{ health }", "not graphql"):
        response = await multipart(
            http,
            document,
            {
                "id": mallory["me"]["id"],
                "input": {"reportedUserId": mallory["me"]["id"], "reason": "SPAM"},
            },
            [("p.png", png(), "image/png")],
            token=alice["accessToken"],
        )
        assert response.status_code == 400, document
        assert "only run reportUser or reportWhisper" in response.text
    assert await sql(app, "SELECT count(*) FROM user_blocks") == 0
    assert await sql(app, "SELECT count(*) FROM user_reports") == 0


async def test_oversized_bodies_are_refused_with_413(
    http: httpx.AsyncClient, gql: GraphQLClient, app: Starlette, settings: Settings
) -> None:
    alice, mallory = await two_users(gql)
    # JSON keeps its small limit.
    padding = "x" * (settings.max_json_request_bytes + 10)
    response = await http.post(
        "/graphql", json={"query": "{ health }", "variables": {"pad": padding}}
    )
    assert response.status_code == 413
    # Multipart bodies beyond four proofs' worth are cut off while streaming.
    response = await multipart(
        http,
        REPORT,
        {"input": {"reportedUserId": mallory["me"]["id"], "reason": "SPAM"}},
        [("huge.png", b"\0" * (settings.max_upload_request_bytes + 1), "image/png")],
        token=alice["accessToken"],
    )
    assert response.status_code == 413
    assert await sql(app, "SELECT count(*) FROM user_reports") == 0


async def test_strings_instead_of_files_are_refused(gql: GraphQLClient, app: Starlette) -> None:
    alice, mallory = await two_users(gql)
    response = await gql(
        REPORT,
        {
            "input": {"reportedUserId": mallory["me"]["id"], "reason": "SPAM"},
            "proofs": ["/etc/passwd"],
        },
        token=alice["accessToken"],
    )
    assert codes(response.data["reportUser"]) == ["INVALID_INPUT"]
    assert await sql(app, "SELECT count(*) FROM user_reports") == 0


async def test_cannot_report_self_or_nobody(http: httpx.AsyncClient, gql: GraphQLClient) -> None:
    alice, _ = await two_users(gql)
    payload = await report(http, alice["accessToken"], alice["me"]["id"])
    assert codes(payload) == ["CANNOT_REPORT_SELF"]
    for missing in ("00000000-0000-4000-8000-000000000000", "not-an-id"):
        payload = await report(http, alice["accessToken"], missing)
        assert payload["errors"] == [
            {"code": "NOT_FOUND", "message": "No such user.", "field": "reportedUserId"}
        ]


async def test_details_are_limited_to_1000_characters(
    http: httpx.AsyncClient, gql: GraphQLClient
) -> None:
    alice, mallory = await two_users(gql)
    payload = await report(http, alice["accessToken"], mallory["me"]["id"], details="x" * 1001)
    assert payload["errors"][0]["field"] == "details"
    payload = await report(http, alice["accessToken"], mallory["me"]["id"], details="x" * 1000)
    assert payload["errors"] == []


async def test_a_second_report_within_a_day_is_merged(
    http: httpx.AsyncClient, gql: GraphQLClient, app: Starlette, settings: Settings
) -> None:
    alice, mallory = await two_users(gql)
    token, target = alice["accessToken"], mallory["me"]["id"]
    first = await report(http, token, target, [("a.png", png(), "image/png")], details="one")
    # wx.uploadFile sends one file per request: further proofs arrive as merged reports.
    second = await report(
        http,
        token,
        target,
        [("b.png", png(color=(1, 2, 3)), "image/png"), ("c.jpg", jpeg_with_gps(), "image/jpeg")],
        reason="SCAM",
        details="two",
    )
    assert second["report"]["id"] == first["report"]["id"]
    assert second["report"]["reason"] == "SCAM" and second["report"]["details"] == "two"
    assert await sql(app, "SELECT count(*) FROM user_reports") == 1
    assert await sql(app, "SELECT cardinality(proof_keys) FROM user_reports") == 3
    # Two more would make five: refused, and the report keeps its three.
    payload = await report(
        http, token, target, [(f"{i}.png", png(), "image/png") for i in range(2)]
    )
    assert codes(payload) == ["TOO_MANY_PROOFS"]
    assert len(stored(settings)) == 3
    # A report older than a day is not merged into.
    await sql(app, "UPDATE user_reports SET created_at = now() - interval '25 hours'")
    third = await report(http, token, target, details="again")
    assert third["report"]["id"] != first["report"]["id"]
    assert await sql(app, "SELECT count(*) FROM user_reports") == 2


async def test_reporting_is_rate_limited(
    http: httpx.AsyncClient, gql: GraphQLClient, settings: Settings
) -> None:
    alice = await registered_user(gql, "alice")
    targets = [(await registered_user(gql, f"u{i}"))["me"]["id"] for i in range(3)]
    app_limits = http._transport.app.state.services.rate_limiter.limits  # type: ignore[attr-defined]
    app_limits["report:user"] = (2, 3600)
    results = [await report(http, alice["accessToken"], t) for t in targets]
    assert [codes(r) for r in results] == [[], [], ["RATE_LIMITED"]]


async def test_reporters_see_their_reports_status_and_the_reported_learn_nothing(
    http: httpx.AsyncClient, gql: GraphQLClient, app: Starlette
) -> None:
    alice, mallory = await two_users(gql)
    await report(http, alice["accessToken"], mallory["me"]["id"], [("a.png", png(), "image/png")])
    mine = await gql(MY_REPORTS, token=alice["accessToken"])
    (edge,) = mine.data["me"]["reports"]["edges"]
    assert edge["node"]["status"] == "PENDING"
    assert edge["node"]["proofUrls"] == [] and edge["node"]["note"] is None
    # Mallory: no reports of hers, none about her, nothing in her export.
    theirs = await gql(MY_REPORTS, token=mallory["accessToken"])
    assert theirs.data["me"]["reports"]["edges"] == []
    export = await gql("mutation { exportMyData { json } }", token=mallory["accessToken"])
    data = json.loads(export.data["exportMyData"]["json"])
    assert data["reportsMade"] == []
    assert alice["me"]["id"] not in export.data["exportMyData"]["json"]
    # Alice's export has the report she made.
    export = await gql("mutation { exportMyData { json } }", token=alice["accessToken"])
    data = json.loads(export.data["exportMyData"]["json"])
    assert [(r["reportedUserId"], r["proofCount"]) for r in data["reportsMade"]] == [
        (mallory["me"]["id"], 1)
    ]


async def test_deleted_reporters_reports_stay_without_them(
    http: httpx.AsyncClient, gql: GraphQLClient, app: Starlette
) -> None:
    alice, mallory = await two_users(gql)
    await report(http, alice["accessToken"], mallory["me"]["id"], details="evidence")
    await gql("mutation { deleteAccount { ok } }", token=alice["accessToken"])
    assert await sql(app, "SELECT reporter_id FROM user_reports") is None
    assert await sql(app, "SELECT details FROM user_reports") == "evidence"


async def test_multipart_needs_a_login_like_everything_else(
    http: httpx.AsyncClient, gql: GraphQLClient
) -> None:
    _, mallory = await two_users(gql)
    response = await multipart(
        http,
        REPORT,
        {"input": {"reportedUserId": mallory["me"]["id"], "reason": "SPAM"}},
        [("p.png", png(), "image/png")],
        headers=CSRF,
    )
    parsed = GraphQLClient.parse(response)
    assert parsed.error_codes == ["UNAUTHENTICATED"]
