"""Refresh rotation, reuse detection, logout, bans and deletion end logins at once
(SECURITY.md 14-15)."""

from __future__ import annotations

from starlette.applications import Starlette

from tests.helpers import GraphQLClient, dev_login, running_app, sql

ME = "{ me { id } }"
REFRESH = """mutation ($t: String!) {
  refreshToken(refreshToken: $t) { accessToken refreshToken me { id } errors { code field } }
}"""
LOGOUT = "mutation ($t: String!) { logout(refreshToken: $t) { ok errors { code } } }"
DELETE = "mutation { deleteAccount { ok errors { code } } }"


async def refresh(gql: GraphQLClient, token: str) -> dict:
    return (await gql(REFRESH, {"t": token})).data["refreshToken"]


async def me(gql: GraphQLClient, token: str) -> tuple[object, list[str | None]]:
    response = await gql(ME, token=token)
    return (response.data or {}).get("me"), response.error_codes


async def test_refresh_rotates_and_reuse_revokes_the_family(gql: GraphQLClient) -> None:
    login = await dev_login(gql, "alice")
    rotated = await refresh(gql, login["refreshToken"])
    assert rotated["errors"] == []
    assert rotated["refreshToken"] != login["refreshToken"]
    assert (await me(gql, rotated["accessToken"]))[0] == {"id": login["me"]["id"]}

    # The first token again: reuse. It fails, and the whole family dies with it.
    reused = await refresh(gql, login["refreshToken"])
    assert reused["errors"] == [{"code": "INVALID_TOKEN", "field": "refreshToken"}]
    assert (await refresh(gql, rotated["refreshToken"]))["errors"][0]["code"] == "INVALID_TOKEN"
    assert await me(gql, rotated["accessToken"]) == (None, ["UNAUTHENTICATED"])


async def test_other_logins_survive_a_reuse(gql: GraphQLClient) -> None:
    phone = await dev_login(gql, "bob")
    laptop = await dev_login(gql, "bob")
    await refresh(gql, phone["refreshToken"])
    await refresh(gql, phone["refreshToken"])  # reuse on the phone's family only
    assert (await me(gql, laptop["accessToken"]))[1] == []
    assert (await refresh(gql, laptop["refreshToken"]))["errors"] == []


async def test_access_token_is_not_a_refresh_token(gql: GraphQLClient) -> None:
    login = await dev_login(gql, "carol")
    payload = await refresh(gql, login["accessToken"])
    assert payload["errors"] == [{"code": "INVALID_TOKEN", "field": "refreshToken"}]


async def test_logout_ends_the_login_at_once(gql: GraphQLClient) -> None:
    login = await dev_login(gql, "dave")
    out = await gql(LOGOUT, {"t": login["refreshToken"]})
    assert out.data == {"logout": {"ok": True, "errors": []}}
    assert await me(gql, login["accessToken"]) == (None, ["UNAUTHENTICATED"])
    assert (await refresh(gql, login["refreshToken"]))["errors"][0]["code"] == "INVALID_TOKEN"
    again = await gql(LOGOUT, {"t": login["refreshToken"]})
    assert again.data["logout"]["errors"] == [{"code": "INVALID_TOKEN"}]


async def test_ban_takes_effect_at_the_next_request(app: Starlette) -> None:
    async with running_app(app) as http:
        gql = GraphQLClient(http)
        login = await dev_login(gql, "erin")
        assert (await me(gql, login["accessToken"]))[1] == []
        await sql(app, "UPDATE users SET status = 'banned' WHERE id = :id", id=login["me"]["id"])
        assert await me(gql, login["accessToken"]) == (None, ["UNAUTHENTICATED"])
        assert (await refresh(gql, login["refreshToken"]))["errors"][0]["code"] == "INVALID_TOKEN"
        relogin = (
            await gql('mutation { wechatLogin(code: "dev:erin") { accessToken errors { code } } }')
        ).data["wechatLogin"]
        assert relogin == {"accessToken": None, "errors": [{"code": "ACCOUNT_SUSPENDED"}]}


async def test_delete_account_ends_every_login(gql: GraphQLClient) -> None:
    first = await dev_login(gql, "frank")
    second = await dev_login(gql, "frank")
    deleted = await gql(DELETE, token=first["accessToken"])
    assert deleted.data == {"deleteAccount": {"ok": True, "errors": []}}
    for login in (first, second):
        assert await me(gql, login["accessToken"]) == (None, ["UNAUTHENTICATED"])
        assert (await refresh(gql, login["refreshToken"]))["errors"][0]["code"] == "INVALID_TOKEN"
    # The openid is free again: logging in makes a new, empty account.
    fresh = await dev_login(gql, "frank")
    assert fresh["isNewUser"] is True
    assert fresh["me"]["id"] != first["me"]["id"]


async def test_garbage_bearer_is_unauthenticated_not_a_crash(gql: GraphQLClient) -> None:
    for header in ("Bearer nonsense", "Basic abc", "Bearer "):
        response = await gql(ME, headers={"authorization": header})
        assert response.data == {"me": None}
        assert response.error_codes == ["UNAUTHENTICATED"]
    assert (await gql(ME)).data == {"me": None}  # no token at all: simply logged out
