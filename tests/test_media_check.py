"""WeChat's asynchronous image check for proofs and avatars, and its signed push callback,
against the fake WeChat server."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from pydantic import SecretStr
from starlette.applications import Starlette

from src.app import create_app
from src.config import Settings
from tests.fakes.wechat import Behaviour, FakeWechat
from tests.helpers import LOGIN, REGISTER, GraphQLClient, running_app, sql
from tests.uploads import png, report

PUBLIC = "https://api.qiaoqiao.test"
CALLBACK = "/wechat/callback"
FLAGS = "{ reports { edges { node { id flags } } } }"
UPDATE = "mutation ($i: ProfileInput!) { updateProfile(input: $i) { errors { code } } }"


@pytest.fixture
async def world(
    wx_settings: Settings, fake_wechat: FakeWechat
) -> AsyncIterator[tuple[Starlette, httpx.AsyncClient]]:
    settings = wx_settings.model_copy(
        update={"public_base_url": PUBLIC, "wechat_push_token": SecretStr(fake_wechat.push_token)}
    )
    app = create_app(settings)
    async with running_app(app) as http:
        yield app, http


async def wx_user(http: httpx.AsyncClient, fake: FakeWechat, name: str) -> dict[str, Any]:
    gql = GraphQLClient(http)
    fake.add_login(f"code-{name}", f"openid-{name}")
    login = (await gql(LOGIN, {"code": f"code-{name}"})).data["wechatLogin"]
    data = {"acceptedPolicyVersion": "2026-11", "nickname": name}
    response = await gql(REGISTER, {"input": data}, token=login["accessToken"])
    assert response.data["register"]["errors"] == []
    return login


async def checks(app: Starlette, count: int, within: float = 5) -> None:
    """Wait for the post-commit submission(s) to be recorded."""
    deadline = time.monotonic() + within
    while await sql(app, "SELECT count(*) FROM media_checks") < count:
        assert time.monotonic() < deadline, "no media check was recorded"
        await asyncio.sleep(0.05)


async def test_a_risky_proof_flags_the_report_for_moderators(
    world: tuple[Starlette, httpx.AsyncClient], fake_wechat: FakeWechat
) -> None:
    app, http = world
    alice, mallory = (
        await wx_user(http, fake_wechat, "alice"),
        await wx_user(http, fake_wechat, "mallory"),
    )
    filed = await report(
        http, alice["accessToken"], mallory["me"]["id"], [("a.png", png(), "image/png")]
    )
    await checks(app, 1)
    ((trace_id, body),) = fake_wechat.media_checks.items()
    assert body["media_type"] == 2 and body["version"] == 2 and body["scene"] == 4
    assert body["openid"] == "openid-alice"
    # WeChat gets a signed link to the stripped proof under the public address.
    url = urlsplit(body["media_url"])
    assert f"{url.scheme}://{url.netloc}" == PUBLIC and url.path.startswith("/proofs/")
    fetched = await http.get(f"{url.path}?{url.query}")
    assert fetched.status_code == 200 and fetched.headers["content-type"] == "image/png"

    risky = fake_wechat.verdict_event(trace_id, "risky", 20002)
    # Bad signatures and stale timestamps change nothing.
    bad = await fake_wechat.push(http, CALLBACK, risky, token="not-the-token")
    stale = await fake_wechat.push(http, CALLBACK, risky, timestamp=int(time.time()) - 3600)
    unsigned = await http.post(CALLBACK, json=risky)
    assert [bad.status_code, stale.status_code, unsigned.status_code] == [403, 403, 403]
    assert await sql(app, "SELECT verdict FROM media_checks") == "pending"
    assert await sql(app, "SELECT cardinality(flags) FROM user_reports") == 0

    answer = await fake_wechat.push(http, CALLBACK, risky)
    assert answer.status_code == 200 and answer.text == "success"
    again = await fake_wechat.push(http, CALLBACK, risky)  # WeChat retries: applied once
    assert again.text == "success"
    assert await sql(app, "SELECT verdict || ':' || label FROM media_checks") == "risky:20002"
    # A moderator other than the reported person (nobody sees reports about themselves).
    mod = await wx_user(http, fake_wechat, "mod")
    await sql(app, "UPDATE users SET role = 'moderator' WHERE id = :id", id=mod["me"]["id"])
    listed = await GraphQLClient(http)(FLAGS, token=mod["accessToken"])
    assert listed.data["reports"]["edges"] == [
        {"node": {"id": filed["report"]["id"], "flags": ["PROOF_RISKY"]}}
    ]


async def test_a_risky_avatar_is_removed(
    world: tuple[Starlette, httpx.AsyncClient], fake_wechat: FakeWechat
) -> None:
    app, http = world
    gql = GraphQLClient(http)
    alice = await wx_user(http, fake_wechat, "alice")
    token, me = alice["accessToken"], alice["me"]["id"]
    first, second = "https://img.example.com/a.png", "https://img.example.com/b.png"
    assert (await gql(UPDATE, {"i": {"avatarUrl": first}}, token=token)).errors == []
    await checks(app, 1)
    assert (await gql(UPDATE, {"i": {"bio": "no avatar change"}}, token=token)).errors == []
    assert (await gql(UPDATE, {"i": {"avatarUrl": second}}, token=token)).errors == []
    await checks(app, 2)
    traces = {body["media_url"]: trace for trace, body in fake_wechat.media_checks.items()}
    assert set(traces) == {first, second}
    assert {b["scene"] for b in fake_wechat.media_checks.values()} == {1}

    # A late verdict on the old avatar does not remove the new one.
    await fake_wechat.push(http, CALLBACK, fake_wechat.verdict_event(traces[first], "risky"))
    assert await sql(app, "SELECT avatar_url FROM user_profiles WHERE user_id = :u", u=me) == (
        second
    )
    await fake_wechat.push(http, CALLBACK, fake_wechat.verdict_event(traces[second], "risky"))
    assert await sql(app, "SELECT avatar_url FROM user_profiles WHERE user_id = :u", u=me) is None
    assert (
        await sql(app, "SELECT action FROM moderation_actions WHERE target_id = :u", u=me)
        == "AVATAR_REMOVED"
    )


async def test_a_passing_verdict_changes_nothing(
    world: tuple[Starlette, httpx.AsyncClient], fake_wechat: FakeWechat
) -> None:
    app, http = world
    gql = GraphQLClient(http)
    alice = await wx_user(http, fake_wechat, "alice")
    url = "https://img.example.com/ok.png"
    await gql(UPDATE, {"i": {"avatarUrl": url}}, token=alice["accessToken"])
    await checks(app, 1)
    (trace,) = fake_wechat.media_checks
    await fake_wechat.push(http, CALLBACK, fake_wechat.verdict_event(trace, "pass"))
    assert await sql(app, "SELECT verdict FROM media_checks") == "pass"
    assert await sql(app, "SELECT avatar_url FROM user_profiles") == url


async def test_url_verification_echoes_only_when_signed(
    world: tuple[Starlette, httpx.AsyncClient], fake_wechat: FakeWechat
) -> None:
    _, http = world
    good = await http.get(CALLBACK, params={**fake_wechat.push_query(), "echostr": "4711"})
    assert good.status_code == 200 and good.text == "4711"
    forged = await http.get(
        CALLBACK, params={**fake_wechat.push_query(token="guess"), "echostr": "4711"}
    )
    assert forged.status_code == 403 and "4711" not in forged.text


async def test_media_check_failures_never_fail_the_report(
    world: tuple[Starlette, httpx.AsyncClient], fake_wechat: FakeWechat
) -> None:
    app, http = world
    alice, mallory = (
        await wx_user(http, fake_wechat, "alice"),
        await wx_user(http, fake_wechat, "mallory"),
    )
    fake_wechat.fail_next(*[Behaviour(status=503)] * 10)
    payload = await report(
        http, alice["accessToken"], mallory["me"]["id"], [("a.png", png(), "image/png")]
    )
    assert payload["errors"] == [] and payload["report"]["status"] == "PENDING"
    deadline = time.monotonic() + 10
    while fake_wechat.calls_to("/wxa/media_check_async") < 3:  # one try and two retries
        assert time.monotonic() < deadline
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.2)
    assert await sql(app, "SELECT count(*) FROM media_checks") == 0
    assert await sql(app, "SELECT count(*) FROM user_reports") == 1


async def test_callback_without_a_configured_token_refuses_everything(
    wx_settings: Settings, fake_wechat: FakeWechat
) -> None:
    async with running_app(create_app(wx_settings)) as http:
        response = await http.get(CALLBACK, params={**fake_wechat.push_query(), "echostr": "1"})
        assert response.status_code == 403
