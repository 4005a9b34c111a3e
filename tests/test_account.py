"""Registration with consent, development phone binding, export and deletion (PIPL)."""

from __future__ import annotations

import json
from datetime import date

import pytest
from starlette.applications import Starlette

from tests.helpers import REGISTER, GraphQLClient, dev_login, running_app, sql

ME = "{ me { id registered phone hasWechat role } }"
EXPORT = "mutation { exportMyData { json errors { code } } }"
BIND = "mutation ($c: String!) { bindPhone(code: $c) { me { phone } errors { code field } } }"


def registration(**changes: object) -> dict[str, object]:
    return {"acceptedPolicyVersion": "2026-11", "nickname": "Alice", **changes}


async def register(gql: GraphQLClient, token: str, **changes: object) -> dict:
    response = await gql(REGISTER, {"input": registration(**changes)}, token=token)
    return response.data["register"]


async def test_new_user_logs_in_registers_and_reads_me(gql: GraphQLClient) -> None:
    login = await dev_login(gql, "alice")
    token = login["accessToken"]
    assert login["isNewUser"] is True
    before = (await gql(ME, token=token)).data["me"]
    assert before == {
        "id": login["me"]["id"],
        "registered": False,
        "phone": None,
        "hasWechat": True,
        "role": "user",
    }
    done = await register(
        gql,
        token,
        gender="FEMALE",
        birthDate="1995-06-01",
        avatarUrl="https://img.example.com/a.png",
    )
    assert done == {"me": {"id": login["me"]["id"], "registered": True}, "errors": []}
    assert (await gql(ME, token=token)).data["me"]["registered"] is True
    again = await register(gql, token)
    assert again["errors"] == [
        {"code": "ALREADY_EXISTS", "message": again["errors"][0]["message"], "field": None}
    ]


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"acceptedPolicyVersion": "2019-01"}, "acceptedPolicyVersion"),
        ({"nickname": "   "}, "nickname"),
        ({"nickname": "x" * 31}, "nickname"),
        ({"birthDate": "2001-02-30"}, "birthDate"),
        ({"birthDate": f"{date.today().year - 10}-01-01"}, "birthDate"),
        ({"avatarUrl": "http://insecure.example.com/a.png"}, "avatarUrl"),
        ({"avatarUrl": "javascript:alert(1)"}, "avatarUrl"),
    ],
)
async def test_registration_is_validated(
    gql: GraphQLClient, changes: dict[str, object], field: str
) -> None:
    token = (await dev_login(gql, "bob"))["accessToken"]
    payload = await register(gql, token, **changes)
    assert payload["me"] is None
    assert [(e["code"], e["field"]) for e in payload["errors"]] == [("INVALID_INPUT", field)]
    assert (await gql(ME, token=token)).data["me"]["registered"] is False


async def test_consent_is_recorded_with_version_and_time(app: Starlette) -> None:
    async with running_app(app) as http:
        gql = GraphQLClient(http)
        login = await dev_login(gql, "carol")
        await register(gql, login["accessToken"])
        version = await sql(
            app, "SELECT policy_version FROM consents WHERE user_id = :id", id=login["me"]["id"]
        )
    assert version == "2026-11"


async def test_development_phone_binding(gql: GraphQLClient) -> None:
    alice = (await dev_login(gql, "alice"))["accessToken"]
    bob = (await dev_login(gql, "bob"))["accessToken"]
    bound = await gql(BIND, {"c": "dev:13800138000"}, token=alice)
    assert bound.data["bindPhone"] == {"me": {"phone": "+8613800138000"}, "errors": []}
    taken = await gql(BIND, {"c": "dev:+86 138 0013 8000"}, token=bob)
    assert taken.data["bindPhone"]["errors"] == [{"code": "ALREADY_EXISTS", "field": "code"}]


async def test_export_holds_the_users_data_and_no_secrets(gql: GraphQLClient) -> None:
    login = await dev_login(gql, "dave")
    token = login["accessToken"]
    await register(gql, token, nickname="Dave", birthDate="1990-01-02")
    await gql(BIND, {"c": "dev:13900139000"}, token=token)
    payload = (await gql(EXPORT, token=token)).data["exportMyData"]
    data = json.loads(payload["json"])
    assert data["account"]["id"] == login["me"]["id"]
    assert data["account"]["phone"] == "+8613900139000"
    assert data["consents"][0]["policyVersion"] == "2026-11"
    assert data["profile"]["nickname"] == "Dave"
    assert data["profile"]["birth_date"] == "1990-01-02"
    assert len(data["sessions"]) == 1
    assert login["refreshToken"] not in payload["json"]
    assert token not in payload["json"]


async def test_delete_account_removes_personal_data(app: Starlette) -> None:
    async with running_app(app) as http:
        gql = GraphQLClient(http)
        login = await dev_login(gql, "erin")
        token = login["accessToken"]
        await register(gql, token, nickname="Erin")
        await gql(BIND, {"c": "dev:13700137000"}, token=token)
        await gql("mutation { deleteAccount { ok } }", token=token)
        user_id = login["me"]["id"]
        row = await sql(
            app,
            "SELECT status || ':' || coalesce(phone, '-') || ':' || coalesce(wechat_openid, '-')"
            " FROM users WHERE id = :id",
            id=user_id,
        )
        profiles = await sql(
            app, "SELECT count(*) FROM user_profiles WHERE user_id = :id", id=user_id
        )
        live = await sql(
            app,
            "SELECT count(*) FROM auth_sessions WHERE user_id = :id AND revoked_at IS NULL",
            id=user_id,
        )
    assert (row, profiles, live) == ("deleted:-:-", 0, 0)
