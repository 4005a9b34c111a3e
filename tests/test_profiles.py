"""Profile updates, their validation, content security, and the privacy of the public view."""

from __future__ import annotations

from datetime import date

import pytest
from starlette.applications import Starlette

from tests.fakes.wechat import Behaviour, FakeWechat
from tests.helpers import LOGIN, GraphQLClient, registered_user, sql

UPDATE = """mutation ($input: ProfileInput!) {
  updateProfile(input: $input) {
    me { birthDate profile { nickname avatarUrl gender age city bio interests lookingFor
         discoverable institution { name } } }
    errors { code field }
  }
}"""
PUBLIC = """query ($id: ID!) {
  user(id: $id) { id profile { nickname age city bio discoverable } isPro }
}"""


async def update(gql: GraphQLClient, token: str, **changes: object) -> dict:
    response = await gql(UPDATE, {"input": changes}, token=token)
    assert response.errors == [], response.errors
    return response.data["updateProfile"]


def errors(payload: dict) -> list[tuple[str, str | None]]:
    return [(e["code"], e["field"]) for e in payload["errors"]]


async def test_update_trims_deduplicates_and_clears(gql: GraphQLClient) -> None:
    token = (await registered_user(gql, "alice"))["accessToken"]
    payload = await update(
        gql,
        token,
        nickname="  Alice   Liu ",
        city="  上海 ",
        bio="产品经理，喜欢徒步。",
        interests=[" 徒步", "Hiking", "hiking", "摄影 ", ""],
        lookingFor="找一起徒步的朋友",
        gender="FEMALE",
        birthDate="1996-03-04",
    )
    profile = payload["me"]["profile"]
    assert payload["errors"] == []
    assert profile["nickname"] == "Alice Liu"
    assert profile["city"] == "上海"
    assert profile["interests"] == ["徒步", "Hiking", "摄影"]
    assert profile["gender"] == "FEMALE"
    assert payload["me"]["birthDate"] == "1996-03-04"
    assert 29 <= profile["age"] <= 31
    cleared = await update(gql, token, bio=None, city=None)
    assert cleared["me"]["profile"]["bio"] is None
    assert cleared["me"]["profile"]["city"] is None
    assert cleared["me"]["profile"]["nickname"] == "Alice Liu"  # omitted: unchanged


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"nickname": ""}, "nickname"),
        ({"nickname": "n" * 31}, "nickname"),
        ({"bio": "b" * 501}, "bio"),
        ({"interests": [f"tag{i}" for i in range(21)]}, "interests"),
        ({"interests": ["x" * 21]}, "interests"),
        ({"avatarUrl": "http://example.com/a.png"}, "avatarUrl"),
        ({"birthDate": "1999-13-01"}, "birthDate"),
        ({"birthDate": f"{date.today().year - 17}-01-01"}, "birthDate"),
        ({"birthDate": "1850-01-01"}, "birthDate"),
        ({"city": "c" * 51}, "city"),
        ({"lookingFor": "l" * 201}, "lookingFor"),
        ({"institutionId": "not-an-id"}, "institutionId"),
        ({"institutionId": "6c3c8a8e-0000-4000-8000-000000000000"}, "institutionId"),
    ],
)
async def test_each_rule_names_its_field(
    gql: GraphQLClient, changes: dict[str, object], field: str
) -> None:
    token = (await registered_user(gql, "bob"))["accessToken"]
    payload = await update(gql, token, **changes)
    assert payload["me"] is None
    code = "NOT_FOUND" if field == "institutionId" else "INVALID_INPUT"
    assert errors(payload) == [(code, field)]


async def test_unregistered_users_must_register_first(gql: GraphQLClient) -> None:
    token = (await gql(LOGIN, {"code": "dev:newbie"})).data["wechatLogin"]["accessToken"]
    payload = await update(gql, token, bio="hi")
    assert errors(payload) == [("REGISTRATION_REQUIRED", None)]


async def test_public_view_shows_age_never_birth_date_phone_or_openid(gql: GraphQLClient) -> None:
    alice = await registered_user(gql, "alice", birthDate="1990-05-06")
    bob = await registered_user(gql, "bob")
    await gql(
        'mutation { bindPhone(code: "dev:13800138000") { errors { code } } }',
        token=alice["accessToken"],
    )
    seen = await gql(PUBLIC, {"id": alice["me"]["id"]}, token=bob["accessToken"])
    assert seen.errors == []
    assert seen.data["user"]["profile"]["age"] >= 36
    # The public type has no such fields at all: asking is a validation error.
    for private in ("birthDate", "phone", "wechatOpenid", "registered"):
        response = await gql(
            f'query {{ user(id: "{alice["me"]["id"]}") {{ {private} }} }}', token=bob["accessToken"]
        )
        assert response.data is None
        assert "Cannot query field" in response.errors[0]["message"]


async def test_hidden_banned_and_missing_users_look_the_same(
    app: Starlette, gql: GraphQLClient
) -> None:
    viewer = (await registered_user(gql, "viewer"))["accessToken"]
    hidden = await registered_user(gql, "hidden")
    banned = await registered_user(gql, "banned")
    await update(gql, hidden["accessToken"], discoverable=False)
    await sql(app, "UPDATE users SET status = 'banned' WHERE id = :id", id=banned["me"]["id"])
    unregistered = (await gql(LOGIN, {"code": "dev:unreg"})).data["wechatLogin"]
    ids = [
        hidden["me"]["id"],
        banned["me"]["id"],
        unregistered["me"]["id"],
        "00000000-0000-4000-8000-000000000000",
        "garbage",
    ]
    answers = [(await gql(PUBLIC, {"id": i}, token=viewer)) for i in ids]
    assert [(a.data, a.errors) for a in answers] == [({"user": None}, [])] * len(ids)
    # A hidden user still sees themselves.
    own = await gql(PUBLIC, {"id": hidden["me"]["id"]}, token=hidden["accessToken"])
    assert own.data["user"]["profile"]["discoverable"] is False


async def test_anonymous_callers_cannot_read_users(gql: GraphQLClient) -> None:
    alice = await registered_user(gql, "alice")
    response = await gql(PUBLIC, {"id": alice["me"]["id"]})
    assert response.data == {"user": None}
    assert response.error_codes == ["UNAUTHENTICATED"]


async def test_content_security_on_nickname_and_bio(
    wx_app: Starlette, wx_gql: GraphQLClient, fake_wechat: FakeWechat
) -> None:
    fake_wechat.add_login("c1", "openid-zoe")
    token = (await wx_gql(LOGIN, {"code": "c1"})).data["wechatLogin"]["accessToken"]
    register = """mutation { register(input: {acceptedPolicyVersion: "2026-11", nickname: "Zoe"})
                  { errors { code } } }"""
    assert (await wx_gql(register, token=token)).data["register"]["errors"] == []

    risky = await update(wx_gql, token, bio="来赌博吧")
    assert errors(risky) == [("CONTENT_REJECTED", "bio")]
    fine = await update(wx_gql, token, bio="喜欢徒步")
    assert fine["errors"] == []
    review = await update(wx_gql, token, bio="有事加微信")
    assert review["errors"] == []
    fake_wechat.fail_next(*[Behaviour(status=500)] * 3)
    unavailable = await update(wx_gql, token, nickname="Zoe Z")
    assert unavailable["errors"] == []  # default policy: accept, queue for review
    queued = await sql(wx_app, "SELECT count(*) FROM content_reviews")
    assert queued == 2
    checks = [c for p, c in fake_wechat.calls if p == "/wxa/msg_sec_check"]
    assert {c["scene"] for c in checks} == {1}
    assert {c["openid"] for c in checks} == {"openid-zoe"}


async def test_content_check_can_reject_when_wechat_is_down(
    wx_settings, fake_wechat: FakeWechat
) -> None:
    from src.app import create_app
    from tests.helpers import running_app

    strict = wx_settings.model_copy(update={"content_check_unavailable": "reject"})
    async with running_app(create_app(strict)) as http:
        gql = GraphQLClient(http)
        fake_wechat.add_login("c1", "openid-yan")
        token = (await gql(LOGIN, {"code": "c1"})).data["wechatLogin"]["accessToken"]
        await gql(
            'mutation { register(input: {acceptedPolicyVersion: "2026-11", nickname: "Yan"})'
            " { errors { code } } }",
            token=token,
        )
        fake_wechat.fail_next(*[Behaviour(errcode=-1)] * 3)
        payload = await update(gql, token, bio="你好")
    assert errors(payload) == [("WECHAT_UNAVAILABLE", "bio")]
