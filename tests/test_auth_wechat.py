"""WeChat login, phone binding and the shared access token, against a fake WeChat on 127.0.0.1
(SECURITY.md 16-17)."""

from __future__ import annotations

import asyncio
import logging
import time

import pytest
from starlette.applications import Starlette

from src.auth.wechat import WechatClient
from src.config import Settings
from tests.fakes.wechat import SESSION_KEY, Behaviour, FakeWechat
from tests.helpers import LOGIN, GraphQLClient

BIND = "mutation ($code: String!) { bindPhone(code: $code) { me { phone } errors { code field } } }"


async def login(gql: GraphQLClient, code: str) -> dict:
    response = await gql(LOGIN, {"code": code})
    assert response.errors == []
    return response.data["wechatLogin"]


async def test_first_login_creates_the_account_and_later_ones_find_it(
    wx_gql: GraphQLClient, fake_wechat: FakeWechat
) -> None:
    fake_wechat.add_login("code-1", "openid-alice", unionid="union-alice")
    fake_wechat.add_login("code-2", "openid-alice")
    first = await login(wx_gql, "code-1")
    assert first["errors"] == []
    assert first["isNewUser"] is True
    assert first["me"]["registered"] is False
    second = await login(wx_gql, "code-2")
    assert second["isNewUser"] is False
    assert second["me"]["id"] == first["me"]["id"]


async def test_session_key_never_appears_in_responses_or_logs(
    wx_gql: GraphQLClient, fake_wechat: FakeWechat, caplog: pytest.LogCaptureFixture
) -> None:
    fake_wechat.add_login("code-1", "openid-bob")
    with caplog.at_level(logging.DEBUG):
        response = await wx_gql(LOGIN, {"code": "code-1"})
    assert response.data["wechatLogin"]["accessToken"]
    assert SESSION_KEY not in str(response.data)
    assert SESSION_KEY not in caplog.text
    assert "code-1" not in caplog.text.replace("js_code=code-1", "")


async def test_reused_and_invalid_codes_fail_cleanly(
    wx_gql: GraphQLClient, fake_wechat: FakeWechat
) -> None:
    fake_wechat.add_login("once", "openid-carol")
    assert (await login(wx_gql, "once"))["errors"] == []
    for code in ("once", "never-issued"):
        payload = await login(wx_gql, code)
        assert payload["accessToken"] is None
        assert [e["code"] for e in payload["errors"]] == ["INVALID_CODE"]
    assert fake_wechat.calls_to("/sns/jscode2session") == 3  # no retries for code errors


async def test_busy_and_5xx_are_retried_then_succeed(
    wx_gql: GraphQLClient, fake_wechat: FakeWechat
) -> None:
    fake_wechat.add_login("code", "openid-dave")
    fake_wechat.fail_next(Behaviour(errcode=-1), Behaviour(status=502))
    payload = await login(wx_gql, "code")
    assert payload["errors"] == []
    assert fake_wechat.calls_to("/sns/jscode2session") == 3


@pytest.mark.parametrize(
    ("behaviour", "expected_calls", "code"),
    [
        (Behaviour(errcode=-1), 3, "WECHAT_UNAVAILABLE"),  # retried, bounded
        (Behaviour(status=500), 3, "WECHAT_UNAVAILABLE"),
        (Behaviour(errcode=45011), 1, "WECHAT_UNAVAILABLE"),  # rate limited: not retried
        (Behaviour(errcode=40226), 1, "WECHAT_REJECTED"),  # high-risk user: not retried
    ],
)
async def test_wechat_failures_map_to_stable_codes(
    wx_gql: GraphQLClient,
    fake_wechat: FakeWechat,
    behaviour: Behaviour,
    expected_calls: int,
    code: str,
) -> None:
    fake_wechat.add_login("code", "openid-erin")
    fake_wechat.fail_next(*[behaviour] * 5)
    payload = await login(wx_gql, "code")
    assert [e["code"] for e in payload["errors"]] == [code]
    assert payload["me"] is None
    assert fake_wechat.calls_to("/sns/jscode2session") == expected_calls


async def test_hanging_wechat_answers_within_five_seconds(
    wx_gql: GraphQLClient, fake_wechat: FakeWechat
) -> None:
    fake_wechat.add_login("code", "openid-frank")
    fake_wechat.fail_next(Behaviour(delay=30))
    started = time.monotonic()
    payload = await login(wx_gql, "code")
    assert time.monotonic() - started < 5
    assert [e["code"] for e in payload["errors"]] == ["WECHAT_UNAVAILABLE"]


async def test_unreachable_wechat_is_unavailable(wx_settings: Settings) -> None:
    from src.app import create_app
    from tests.helpers import free_port, running_app

    closed = wx_settings.model_copy(update={"wechat_api_base": f"http://127.0.0.1:{free_port()}"})
    async with running_app(create_app(closed)) as http:
        payload = await login(GraphQLClient(http), "code")
    assert [e["code"] for e in payload["errors"]] == ["WECHAT_UNAVAILABLE"]


async def test_dev_login_is_off_once_wechat_is_configured(
    wx_gql: GraphQLClient, fake_wechat: FakeWechat
) -> None:
    payload = await login(wx_gql, "dev:mallory")
    assert [e["code"] for e in payload["errors"]] == ["INVALID_CODE"]
    assert fake_wechat.calls_to("/sns/jscode2session") == 1  # it went to WeChat, as any code


async def test_bind_phone_through_wechat(wx_gql: GraphQLClient, fake_wechat: FakeWechat) -> None:
    fake_wechat.add_login("a", "openid-a")
    fake_wechat.add_login("b", "openid-b")
    fake_wechat.phone_codes["phone-1"] = ("13800138000", "86")
    fake_wechat.phone_codes["phone-2"] = ("13800138000", "86")
    alice = (await login(wx_gql, "a"))["accessToken"]
    bob = (await login(wx_gql, "b"))["accessToken"]

    bound = await wx_gql(BIND, {"code": "phone-1"}, token=alice)
    assert bound.data["bindPhone"] == {"me": {"phone": "+8613800138000"}, "errors": []}
    taken = await wx_gql(BIND, {"code": "phone-2"}, token=bob)
    assert taken.data["bindPhone"]["errors"] == [{"code": "ALREADY_EXISTS", "field": "code"}]
    used = await wx_gql(BIND, {"code": "phone-1"}, token=bob)
    assert used.data["bindPhone"]["errors"] == [{"code": "INVALID_CODE", "field": "code"}]


async def test_access_token_is_refreshed_once_across_processes_and_after_invalidation(
    wx_app: Starlette, wx_settings: Settings, fake_wechat: FakeWechat
) -> None:
    async with wx_app.router.lifespan_context(wx_app):
        services = wx_app.state.services
        # Two clients stand for two server processes sharing one database.
        clients = [WechatClient(wx_settings, services.engine) for _ in range(2)]
        tokens = await asyncio.gather(*(c.access_token() for c in clients * 5))
        assert len(set(tokens)) == 1
        assert fake_wechat.token_refreshes == 1

        # WeChat invalidates it (40001): the next call refreshes once and retries.
        fake_wechat.valid_tokens.clear()
        fake_wechat.phone_codes["p"] = ("13900139000", "86")
        assert await clients[0].phone_number("p") == "+8613900139000"
        assert fake_wechat.token_refreshes == 2
        # The other process picks the new token up from the shared row once its cache expires.
        clients[1]._cached = None
        assert await clients[1].access_token() in fake_wechat.valid_tokens
        assert fake_wechat.token_refreshes == 2
