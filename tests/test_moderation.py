"""Moderation: moderators only (SECURITY.md 12), the queue by status, proof links, bans that
take effect at once on sockets and the next request (SECURITY.md 13, 15), automatic discovery
holds, the record of every action, and `qiaoqiao grant-role`."""

from __future__ import annotations

import asyncio
import os
import sys
import time
import uuid
from collections.abc import AsyncIterator
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from starlette.applications import Starlette

from src.app import create_app
from src.config import Settings
from src.storage.urls import ProofLinks
from tests.helpers import (
    GraphQLClient,
    WsClient,
    dev_login,
    live_server,
    registered_user,
    running_app,
    send_whisper,
    sql,
)
from tests.uploads import codes, established, jpeg_with_gps, moderator, png, report

QUEUE = """query ($status: ReportStatus, $first: Int, $after: String) {
  reports(status: $status, first: $first, after: $after) {
    edges { cursor node { id status details proofUrls flags reporter { id } reported { id } } }
    pageInfo { hasNextPage endCursor }
  }
}"""
RESOLVE = """mutation ($input: ResolveReportInput!) {
  resolveReport(input: $input) {
    report { id status decision note } errors { code message field }
  }
}"""
RECEIVED = "subscription { whisperReceived { id content } }"


async def resolve(
    gql: GraphQLClient, token: str, report_id: str, status: str, action: str, note: str = "ok"
) -> dict:
    response = await gql(
        RESOLVE,
        {"input": {"reportId": report_id, "status": status, "action": action, "note": note}},
        token=token,
    )
    assert response.errors == [], response.errors
    return response.data["resolveReport"]


async def test_only_moderators_may_list_or_resolve_reports(
    http: httpx.AsyncClient, gql: GraphQLClient, app: Starlette
) -> None:
    alice, mallory = await registered_user(gql, "alice"), await registered_user(gql, "mallory")
    filed = await report(http, alice["accessToken"], mallory["me"]["id"])
    report_id = filed["report"]["id"]
    resolve_vars = {
        "input": {"reportId": report_id, "status": "RESOLVED", "action": "BAN", "note": "x"}
    }
    for token in (alice["accessToken"], mallory["accessToken"]):
        listed = await gql(QUEUE, token=token)
        assert listed.data is None and listed.error_codes == ["FORBIDDEN"]
        decided = await gql(RESOLVE, resolve_vars, token=token)
        assert decided.data is None and decided.error_codes == ["FORBIDDEN"]
    anonymous = await gql(RESOLVE, resolve_vars)
    assert anonymous.error_codes == ["UNAUTHENTICATED"]
    # No side effect of any refusal.
    assert await sql(app, "SELECT status FROM user_reports") == "PENDING"
    assert await sql(app, "SELECT status FROM users WHERE id = :id", id=mallory["me"]["id"]) == (
        "active"
    )
    assert await sql(app, "SELECT count(*) FROM moderation_actions") == 0


async def test_queue_pages_by_status(
    http: httpx.AsyncClient, gql: GraphQLClient, app: Starlette
) -> None:
    mod = await moderator(gql, app, "mod")
    target = await registered_user(gql, "target")
    ids = []
    for i in range(5):
        reporter = await registered_user(gql, f"r{i}")
        filed = await report(http, reporter["accessToken"], target["me"]["id"], details=f"{i}")
        ids.append(filed["report"]["id"])
    await resolve(gql, mod["accessToken"], ids[1], "DISMISSED", "NONE")
    await resolve(gql, mod["accessToken"], ids[3], "RESOLVED", "WARN")

    pending, after = [], None
    while True:
        response = await gql(
            QUEUE, {"status": "PENDING", "first": 2, "after": after}, token=mod["accessToken"]
        )
        page = response.data["reports"]
        pending += [e["node"]["id"] for e in page["edges"]]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert pending == [ids[4], ids[2], ids[0]]  # newest first
    everything = await gql(QUEUE, {"first": 100}, token=mod["accessToken"])
    assert len(everything.data["reports"]["edges"]) == 5
    dismissed = await gql(QUEUE, {"status": "DISMISSED"}, token=mod["accessToken"])
    assert [e["node"]["id"] for e in dismissed.data["reports"]["edges"]] == [ids[1]]
    # Every decision is on record: who, what, on which report.
    rows = await sql(
        app,
        "SELECT string_agg(action || ':' || report_id::text, ',' ORDER BY action)"
        " FROM moderation_actions WHERE moderator_id = :m",
        m=mod["me"]["id"],
    )
    assert rows == f"DISMISS:{ids[1]},WARN:{ids[3]}"


async def test_decisions_are_validated(
    http: httpx.AsyncClient, gql: GraphQLClient, app: Starlette
) -> None:
    mod = await moderator(gql, app, "mod")
    alice, mallory = await registered_user(gql, "alice"), await registered_user(gql, "mallory")
    report_id = (await report(http, alice["accessToken"], mallory["me"]["id"]))["report"]["id"]
    token = mod["accessToken"]
    assert codes(await resolve(gql, token, report_id, "DISMISSED", "BAN")) == ["INVALID_INPUT"]
    assert codes(await resolve(gql, token, report_id, "PENDING", "NONE")) == ["INVALID_INPUT"]
    missing = str(uuid.uuid4())
    assert codes(await resolve(gql, token, missing, "RESOLVED", "NONE")) == ["NOT_FOUND"]
    assert codes(await resolve(gql, token, report_id, "RESOLVED", "WARN")) == []
    assert codes(await resolve(gql, token, report_id, "RESOLVED", "BAN")) == ["ALREADY_RESOLVED"]
    assert await sql(app, "SELECT status FROM users WHERE id = :id", id=mallory["me"]["id"]) == (
        "active"
    )


async def test_only_admins_may_ban_staff(
    http: httpx.AsyncClient, gql: GraphQLClient, app: Starlette
) -> None:
    mod = await moderator(gql, app, "mod")
    other_mod = await moderator(gql, app, "mod2")
    alice = await registered_user(gql, "alice")
    report_id = (await report(http, alice["accessToken"], other_mod["me"]["id"]))["report"]["id"]
    payload = await resolve(gql, mod["accessToken"], report_id, "RESOLVED", "BAN")
    assert codes(payload) == ["FORBIDDEN"]
    await sql(app, "UPDATE users SET role = 'admin' WHERE id = :id", id=mod["me"]["id"])
    payload = await resolve(gql, mod["accessToken"], report_id, "RESOLVED", "BAN")
    assert codes(payload) == [] and payload["report"]["decision"] == "BAN"


async def test_moderators_open_proofs_through_short_lived_signed_links(
    http: httpx.AsyncClient, gql: GraphQLClient, app: Starlette, settings: Settings
) -> None:
    mod = await moderator(gql, app, "mod")
    alice, mallory = await registered_user(gql, "alice"), await registered_user(gql, "mallory")
    await report(
        http,
        alice["accessToken"],
        mallory["me"]["id"],
        [("a.png", png(), "image/png"), ("b.jpg", jpeg_with_gps(), "image/jpeg")],
    )
    listed = await gql(QUEUE, token=mod["accessToken"])
    node = listed.data["reports"]["edges"][0]["node"]
    assert node["reporter"]["id"] == alice["me"]["id"]
    urls = node["proofUrls"]
    assert len(urls) == 2
    first = await http.get(urls[0])
    assert first.status_code == 200
    assert first.headers["content-type"] == "image/png"
    assert first.headers["x-content-type-options"] == "nosniff"
    assert first.content == (settings.data_dir / "proofs" / urlsplit(urls[0]).path[8:]).read_bytes()
    assert (await http.get(urls[1])).headers["content-type"] == "image/jpeg"

    path = urlsplit(urls[0]).path
    query = {k: v[0] for k, v in parse_qs(urlsplit(urls[0]).query).items()}
    forged = {**query, "sig": query["sig"][:-2] + ("AA" if query["sig"][-2:] != "AA" else "BB")}
    longer = {**query, "exp": str(int(query["exp"]) + 3600)}
    other_key = urlsplit(urls[1]).path
    for url, params in (
        (path, forged),
        (path, longer),
        (other_key, query),  # a link signs one object only
        (path, {}),
        ("/proofs/..passwd", query),
    ):
        assert (await http.get(url, params=params)).status_code == 403, (url, params)
    traversal = await http.get("/proofs/..%2F..%2Fetc%2Fpasswd", params=query)
    assert traversal.status_code == 404
    expired = ProofLinks(settings).url(path[8:], 60, now=time.time() - 120)
    assert (await http.get(expired)).status_code == 403


async def _queued(app: Starlette, user_id: str) -> int:
    return await sql(app, "SELECT count(*) FROM vector_outbox WHERE user_id = :u", u=user_id)


async def test_a_ban_closes_the_socket_and_ends_every_login_at_once(
    app: Starlette, settings: Settings
) -> None:
    async with live_server(app) as server, httpx.AsyncClient(base_url=server.url) as http:
        gql = GraphQLClient(http)
        mod = await moderator(gql, app, "mod")
        alice, mallory = await registered_user(gql, "alice"), await registered_user(gql, "mallory")
        second_login = await dev_login(gql, "mallory")
        # Mallory's token is verified (and cached by this process) before the ban.
        assert (await gql("{ me { id } }", token=mallory["accessToken"])).errors == []
        report_id = (await report(http, alice["accessToken"], mallory["me"]["id"]))["report"]["id"]
        async with WsClient.connect(server, mallory["accessToken"]) as ws:
            await ws.subscribe("1", RECEIVED)
            await asyncio.sleep(0.2)
            await send_whisper(
                gql, alice["accessToken"], recipientId=mallory["me"]["id"], content="hi"
            )
            assert (await ws.next())["payload"]["data"]["whisperReceived"]["content"] == "hi"
            before = await _queued(app, mallory["me"]["id"])

            payload = await resolve(gql, mod["accessToken"], report_id, "RESOLVED", "BAN", "abuse")
            assert payload["errors"] == [] and payload["report"]["decision"] == "BAN"

            with pytest.raises(Exception) as closed:
                await ws.next()
        assert "4403" in str(closed.value)
        # The very next HTTP request with a token that verified a moment ago fails.
        for token in (mallory["accessToken"], second_login["accessToken"]):
            me = await gql("{ me { id } }", token=token)
            assert me.error_codes == ["UNAUTHENTICATED"]
            sent = await gql(
                "mutation ($id: ID!) { blockUser(userId: $id) { ok } }",
                {"id": alice["me"]["id"]},
                token=token,
            )
            assert sent.error_codes == ["UNAUTHENTICATED"]
        # Refresh tokens are revoked; logging in again is refused.
        refreshed = await gql(
            "mutation ($t: String!) { refreshToken(refreshToken: $t) { errors { code } } }",
            {"t": mallory["refreshToken"]},
        )
        assert codes(refreshed.data["refreshToken"]) == ["INVALID_TOKEN"]
        again = await gql('mutation { wechatLogin(code: "dev:mallory") { errors { code } } }')
        assert codes(again.data["wechatLogin"]) == ["ACCOUNT_SUSPENDED"]
        # Hidden everywhere, out of the index, and on record.
        found = await gql(
            "query ($id: ID!) { user(id: $id) { id } }",
            {"id": mallory["me"]["id"]},
            token=alice["accessToken"],
        )
        assert found.data == {"user": None}
        browse = await gql("{ users { edges { node { id } } } }", token=alice["accessToken"])
        assert mallory["me"]["id"] not in str(browse.data)
        assert await _queued(app, mallory["me"]["id"]) > before
        assert (
            await sql(
                app,
                "SELECT action || ':' || moderator_id::text || ':' || note FROM moderation_actions"
                " WHERE target_id = :t",
                t=mallory["me"]["id"],
            )
            == f"BAN:{mod['me']['id']}:abuse"
        )
        assert (
            await sql(
                app,
                "SELECT count(*) FROM auth_sessions WHERE user_id = :u AND revoked_at IS NULL",
                u=mallory["me"]["id"],
            )
            == 0
        )


DISCOVER = "{ discover(filter: {excludeSwiped: false}) { edges { node { user { id } } } } }"


@pytest.fixture
async def indexed_world(settings: Settings) -> AsyncIterator[tuple[Starlette, GraphQLClient]]:
    app = create_app(settings.model_copy(update={"vector_worker": True}))
    async with running_app(app) as http:
        yield app, GraphQLClient(http)


async def drained(app: Starlette, within: float = 60) -> None:
    deadline = time.monotonic() + within
    while await sql(app, "SELECT count(*) FROM vector_outbox"):
        assert time.monotonic() < deadline, "the outbox did not drain"
        await asyncio.sleep(0.1)


async def discovered(gql: GraphQLClient, token: str) -> list[str]:
    response = await gql(DISCOVER, token=token)
    assert response.errors == [], response.errors
    return [e["node"]["user"]["id"] for e in response.data["discover"]["edges"]]


async def test_reports_by_three_people_hide_someone_until_a_moderator_decides(
    indexed_world: tuple[Starlette, GraphQLClient],
) -> None:
    app, gql = indexed_world
    http = gql.http
    mod = await moderator(gql, app, "mod")
    viewer = await registered_user(gql, "viewer")
    mallory = await registered_user(gql, "mallory")
    reporters = [await registered_user(gql, f"r{i}") for i in range(3)]
    await established(app, *reporters)  # only accounts older than 72 h count toward a hold
    target = mallory["me"]["id"]
    await drained(app)
    assert target in await discovered(gql, viewer["accessToken"])

    # Two reporters (one of them twice): not yet.
    first = await report(http, reporters[0]["accessToken"], target)
    await report(http, reporters[0]["accessToken"], target, details="again")
    await report(http, reporters[1]["accessToken"], target)
    assert await sql(app, "SELECT moderation_hold_at FROM users WHERE id = :t", t=target) is None
    # The third distinct reporter: held back from discovery, browsing and lookups.
    await report(http, reporters[2]["accessToken"], target)
    assert await sql(
        app, "SELECT moderation_hold_at IS NOT NULL FROM users WHERE id = :t", t=target
    )
    await drained(app)
    assert await app.state.services.vectors.get_vector(uuid.UUID(target)) is None
    assert target not in await discovered(gql, viewer["accessToken"])
    browse = await gql("{ users { edges { node { id } } } }", token=viewer["accessToken"])
    assert target not in str(browse.data)
    # Her own choice was not touched, and she can still use the app.
    assert await sql(app, "SELECT visibility FROM user_profiles WHERE user_id = :t", t=target) == (
        "discoverable"
    )
    assert (await gql("{ me { id } }", token=mallory["accessToken"])).errors == []
    assert (
        await sql(app, "SELECT action FROM moderation_actions WHERE target_id = :t", t=target)
        == "HOLD"
    )

    # A moderator finds nothing wrong: the hold is lifted.
    await resolve(gql, mod["accessToken"], first["report"]["id"], "RESOLVED", "NONE")
    assert await sql(app, "SELECT moderation_hold_at FROM users WHERE id = :t", t=target) is None
    await drained(app)
    assert await app.state.services.vectors.get_vector(uuid.UUID(target)) is not None
    assert target in await discovered(gql, viewer["accessToken"])


async def test_grant_role_cli(app: Starlette, gql: GraphQLClient, database_url: str) -> None:
    alice = await registered_user(gql, "alice")
    await gql(
        'mutation { bindPhone(code: "dev:13800138000") { errors { code } } }',
        token=alice["accessToken"],
    )
    env = {**os.environ, "DATABASE_URL": database_url, "APP_ENV": "development"}

    async def cli(*args: str) -> tuple[int, str, str]:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "src.cli",
            "grant-role",
            *args,
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(process.communicate(), 60)
        return process.returncode or 0, out.decode(), err.decode()

    code, out, _ = await cli(alice["me"]["id"], "moderator")
    assert code == 0 and "user -> moderator" in out
    me = await gql("{ me { role } }", token=alice["accessToken"])
    assert me.data == {"me": {"role": "moderator"}}  # at once: roles are read per request
    assert (await gql(QUEUE, token=alice["accessToken"])).errors == []

    code, out, _ = await cli("138 0013 8000", "admin")  # by phone number
    assert code == 0 and "moderator -> admin" in out
    code, _, err = await cli(str(uuid.uuid4()), "admin")
    assert code == 1 and "No account" in err
    code, _, err = await cli("not-a-user", "admin")
    assert code == 1 and "neither a user id nor a phone number" in err
    code, _, err = await cli(alice["me"]["id"], "superuser")
    assert code == 2 and "invalid choice" in err
    assert (
        await sql(
            app,
            "SELECT string_agg(note, ',' ORDER BY created_at) FROM moderation_actions"
            " WHERE action = 'GRANT_ROLE' AND target_id = :t",
            t=alice["me"]["id"],
        )
        == "user -> moderator (CLI),moderator -> admin (CLI)"
    )
