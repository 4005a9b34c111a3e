"""Automatic holds that cannot be bought (only established reporters count; whisper reports never
do), and moderators who never decide their own case."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from src.app import create_app
from src.config import Settings
from tests.helpers import GraphQLClient, registered_user, running_app, send_whisper, sql
from tests.uploads import established, moderator, report

HELD = "SELECT moderation_hold_at IS NOT NULL FROM users WHERE id = :t"
REPORT_WHISPER = """mutation ($input: ReportWhisperInput!) {
  reportWhisper(input: $input) { report { id } errors { code } }
}"""
QUEUE = "{ reports { edges { node { id reported { id } reporter { id } } } } }"
RESOLVE = """mutation ($input: ResolveReportInput!) {
  resolveReport(input: $input) { report { status } errors { code message field } }
}"""


async def people(gql: GraphQLClient, prefix: str, n: int) -> list[dict[str, Any]]:
    return [await registered_user(gql, f"{prefix}{i}") for i in range(n)]


async def test_three_fresh_accounts_cannot_hide_anyone(
    app: Starlette, http: httpx.AsyncClient, gql: GraphQLClient
) -> None:
    target = (await registered_user(gql, "target"))["me"]["id"]
    for login in await people(gql, "fresh", 3):
        await report(http, login["accessToken"], target)
    assert await sql(app, HELD, t=target) is False
    # Two established reporters and a fresh one: still not.
    old = await people(gql, "old", 2)
    await established(app, *old)
    for login in old:
        await report(http, login["accessToken"], target)
    assert await sql(app, HELD, t=target) is False
    # A third established one: held.
    third = await registered_user(gql, "old2")
    await established(app, third)
    await report(http, third["accessToken"], target)
    assert await sql(app, HELD, t=target) is True


async def test_banned_reporters_stop_counting(
    app: Starlette, http: httpx.AsyncClient, gql: GraphQLClient
) -> None:
    target = (await registered_user(gql, "target"))["me"]["id"]
    reporters = await people(gql, "r", 3)
    await established(app, *reporters)
    await report(http, reporters[0]["accessToken"], target)
    await report(http, reporters[1]["accessToken"], target)
    await sql(app, "UPDATE users SET status = 'banned' WHERE id = :r", r=reporters[0]["me"]["id"])
    await report(http, reporters[2]["accessToken"], target)
    assert await sql(app, HELD, t=target) is False


async def test_whisper_reports_never_count_toward_a_hold(
    app: Starlette, http: httpx.AsyncClient, gql: GraphQLClient
) -> None:
    """Otherwise a recipient's other accounts could report a suspect twice, report the whisper,
    and watch whether the suspect disappears."""
    sender = await registered_user(gql, "sender")
    target = sender["me"]["id"]
    recipients = await people(gql, "rcpt", 3)
    await established(app, *recipients)
    for login in recipients:
        sent = await send_whisper(
            gql, sender["accessToken"], recipientId=login["me"]["id"], content="boo"
        )
        filed = await gql(
            REPORT_WHISPER,
            {"input": {"whisperId": sent["whisper"]["id"], "reason": "HARASSMENT"}},
            token=login["accessToken"],
        )
        assert filed.data["reportWhisper"]["errors"] == []
    assert await sql(app, HELD, t=target) is False
    # Two user reports plus the whisper reports: still not.
    for login in recipients[:2]:
        await report(http, login["accessToken"], target)
    assert await sql(app, HELD, t=target) is False


async def test_the_minimum_age_is_a_setting(settings: Settings) -> None:
    app = create_app(settings.model_copy(update={"report_hold_min_account_age_h": 0}))
    async with running_app(app) as http:
        gql = GraphQLClient(http)
        target = (await registered_user(gql, "target"))["me"]["id"]
        for login in await people(gql, "fresh", 3):
            await report(http, login["accessToken"], target)
        assert await sql(app, HELD, t=target) is True


async def decide(gql: GraphQLClient, token: str, report_id: str) -> Any:
    response = await gql(
        RESOLVE,
        {"input": {"reportId": report_id, "status": "RESOLVED", "action": "NONE"}},
        token=token,
    )
    return response.data["resolveReport"]


@pytest.mark.parametrize("side", ["about", "by"])
async def test_moderators_never_decide_their_own_case(
    app: Starlette, http: httpx.AsyncClient, gql: GraphQLClient, side: str
) -> None:
    """A report about a moderator, or filed by one, is neither in their queue (it would name
    who reported them, or the sender of a whisper they received) nor theirs to decide."""
    mod, other_mod = await moderator(gql, app, "mod"), await moderator(gql, app, "other")
    user = await registered_user(gql, "user")
    if side == "about":
        filed = await report(http, user["accessToken"], mod["me"]["id"])
    else:
        filed = await report(http, mod["accessToken"], user["me"]["id"])
    report_id = filed["report"]["id"]
    own_queue = (await gql(QUEUE, token=mod["accessToken"])).data["reports"]["edges"]
    assert own_queue == []
    refused = await decide(gql, mod["accessToken"], report_id)
    assert refused == {
        "report": None,
        "errors": [
            {
                "code": "FORBIDDEN",
                "message": "Another moderator must decide a report about you or by you.",
                "field": "reportId",
            }
        ],
    }
    assert await sql(app, "SELECT status FROM user_reports") == "PENDING"
    other_queue = (await gql(QUEUE, token=other_mod["accessToken"])).data["reports"]["edges"]
    assert [e["node"]["id"] for e in other_queue] == [report_id]
    assert (await decide(gql, other_mod["accessToken"], report_id))["errors"] == []


async def test_a_moderator_who_reports_a_whisper_cannot_read_its_sender_in_the_queue(
    app: Starlette, gql: GraphQLClient
) -> None:
    mod = await moderator(gql, app, "mod")
    sender = await registered_user(gql, "sender")
    sent = await send_whisper(gql, sender["accessToken"], recipientId=mod["me"]["id"], content="x")
    filed = await gql(
        REPORT_WHISPER,
        {"input": {"whisperId": sent["whisper"]["id"], "reason": "SPAM"}},
        token=mod["accessToken"],
    )
    assert filed.data["reportWhisper"]["errors"] == []
    queue = await gql(QUEUE, token=mod["accessToken"])
    assert queue.data == {"reports": {"edges": []}}
    assert sender["me"]["id"] not in str(queue.data)
