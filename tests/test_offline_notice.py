"""People who are offline get one WeChat subscribe message per consent they granted; the notice
names neither sender nor text, and a failing WeChat never fails the whisper."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest
from starlette.applications import Starlette

from src.app import create_app
from src.config import Settings
from tests.fakes.wechat import Behaviour, FakeWechat
from tests.helpers import LOGIN, GraphQLClient, LiveServer, WsClient, live_server, send_whisper

GRANT = """mutation ($t: [String!]!) {
  grantSubscribeMessages(templateIds: $t) { ok errors { code field } }
}"""
REGISTER = """mutation {
  register(input: {acceptedPolicyVersion: "2026-11", nickname: "n"}) { errors { code } }
}"""
SENT = "/cgi-bin/message/subscribe/send"


@pytest.fixture
async def server(wx_settings: Settings) -> AsyncIterator[LiveServer]:
    app: Starlette = create_app(
        wx_settings.model_copy(update={"wechat_subscribe_template_whisper": "TPL-1"})
    )
    async with live_server(app) as live:
        yield live


async def wechat_user(gql: GraphQLClient, fake: FakeWechat, name: str) -> dict:
    fake.add_login(f"c-{name}", f"openid-{name}")
    login = (await gql(LOGIN, {"code": f"c-{name}"})).data["wechatLogin"]
    assert (await gql(REGISTER, token=login["accessToken"])).data["register"]["errors"] == []
    return login


async def notices(fake: FakeWechat, expected: int) -> list[dict]:
    for _ in range(40):  # sent after commit, in the background
        found = [body for path, body in fake.calls if path == SENT]
        if len(found) >= expected:
            break
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.1)
    return [body for path, body in fake.calls if path == SENT]


async def test_offline_recipient_gets_one_notice_per_credit(
    server: LiveServer, fake_wechat: FakeWechat
) -> None:
    async with httpx.AsyncClient(base_url=server.url) as http:
        gql = GraphQLClient(http)
        alice, bob = (
            await wechat_user(gql, fake_wechat, "alice"),
            await wechat_user(gql, fake_wechat, "bob"),
        )
        to_bob = {"recipientId": bob["me"]["id"]}
        assert (await gql(GRANT, {"t": ["TPL-1"]}, token=bob["accessToken"])).data[
            "grantSubscribeMessages"
        ]["ok"]
        unknown = await gql(GRANT, {"t": ["SOMETHING-ELSE"]}, token=bob["accessToken"])
        assert unknown.data["grantSubscribeMessages"]["errors"] == [
            {"code": "INVALID_INPUT", "field": "templateIds"}
        ]

        await send_whisper(gql, alice["accessToken"], content="秘密内容", **to_bob)
        await send_whisper(gql, alice["accessToken"], content="again", **to_bob)  # no credit left
        sent = await notices(fake_wechat, 1)
        assert len(sent) == 1
        assert sent[0]["touser"] == "openid-bob" and sent[0]["template_id"] == "TPL-1"
        assert "秘密内容" not in str(sent[0]) and "alice" not in str(sent[0])

        # Online (a socket open anywhere): no notice, the credit is kept.
        await gql(GRANT, {"t": ["TPL-1"]}, token=bob["accessToken"])
        async with WsClient.connect(server, bob["accessToken"]):
            await send_whisper(gql, alice["accessToken"], content="live", **to_bob)
            assert len(await notices(fake_wechat, 2)) == 1

        # WeChat failing: the whisper still goes through.
        fake_wechat.fail_next(*[Behaviour(status=500)] * 5)
        failed = await send_whisper(gql, alice["accessToken"], content="x", **to_bob)
        assert failed["errors"] == []
