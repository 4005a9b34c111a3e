"""The compiled sendWhisper does what the interpreter does — same answers, same rows, same
counters — in one statement, and leaves every other case to the interpreter untouched."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from src.app import create_app
from src.config import Settings
from tests.fakes.wechat import Behaviour, FakeWechat
from tests.helpers import (
    LOGIN,
    REGISTER,
    SEND,
    GraphQLClient,
    count_statements,
    registered_user,
    running_app,
    sql,
)

ALIASED = """mutation Send($w: SendWhisperInput!) {
  s: sendWhisper(input: $w) {
    __typename
    w: whisper { __typename key: id text: content createdAt readAt revealedAt isAnonymous isMine
                 from: sender { id __typename } to: recipient { id } replyTo { id } }
    problems: errors { code }
  }
}"""
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
STAMP = re.compile(r"\d{4}-\d\d-\d\dT[0-9:.]+\+00:00")


@pytest.fixture
async def people(settings: Settings) -> dict[str, Any]:
    """alice (sender), bob (recipient), carol (blocked by bob), dave (logged in, unregistered),
    erin (hid her profile), frank (held for review), gina (bob blocked her through a whisper)."""
    app = create_app(settings)
    async with running_app(app) as http:
        gql = GraphQLClient(http)
        names = ("alice", "bob", "carol", "erin", "frank", "gina")
        users = {name: await registered_user(gql, name) for name in names}
        await gql(
            "mutation { updateProfile(input: {discoverable: false}) { errors { code } } }",
            token=users["erin"]["accessToken"],
        )
        await sql(
            app,
            "UPDATE users SET moderation_hold_at = now() WHERE id = :f",
            f=users["frank"]["me"]["id"],
        )
        sent = await gql(
            SEND,
            {"input": {"recipientId": users["bob"]["me"]["id"], "content": "hey"}},
            token=users["gina"]["accessToken"],
        )
        await gql(
            "mutation ($w: ID!) { blockWhisperSender(whisperId: $w) { ok } }",
            {"w": sent.data["sendWhisper"]["whisper"]["id"]},
            token=users["bob"]["accessToken"],
        )
        dave = await gql('mutation { wechatLogin(code: "dev:dave") { accessToken } }')
        users["dave"] = dave.data["wechatLogin"]
        await gql(
            "mutation ($id: ID!) { blockUser(userId: $id) { ok } }",
            {"id": users["carol"]["me"]["id"]},
            token=users["bob"]["accessToken"],
        )
    return users


async def send_both(
    settings: Settings, token: str, variables: dict[str, Any], query: str = SEND
) -> list[tuple[dict[str, Any], int, dict[str, Any]]]:
    """(answer, statements on the compiled pool or -1 if the interpreter ran, what changed in
    the database) for the compiled app, then for the interpreter alone."""
    results = []
    for compiled in (True, False):
        app = create_app(settings.model_copy(update={"compiled_queries": compiled}))
        async with running_app(app) as http:
            services = app.state.services
            before_rows = await _counts(app)
            before = services.read_pool.statements
            with count_statements(services.engine) as main:
                response = await http.post(
                    "/graphql",
                    json={"query": query, "variables": variables},
                    headers={"authorization": f"Bearer {token}"},
                )
            statements = -1 if main.count else services.read_pool.statements - before
            after_rows = await _counts(app)
        changed = {k: after_rows[k] - before_rows[k] for k in after_rows}
        results.append((json.loads(response.content), statements, changed))
    return results


async def _counts(app: Any) -> dict[str, int]:
    return {
        "whispers": await sql(app, "SELECT count(*) FROM whispers"),
        "quota": await sql(app, "SELECT coalesce(sum(used), 0) FROM user_quotas"),
        "hits": await sql(app, "SELECT coalesce(sum(hits), 0) FROM rate_limit_counters"),
        "reviews": await sql(app, "SELECT count(*) FROM content_reviews"),
    }


def _same_shape(answer: dict[str, Any]) -> str:
    # Two sends differ only in the new whisper's id and time.
    return STAMP.sub("<time>", UUID.sub("<id>", json.dumps(answer, sort_keys=True)))


async def test_a_plain_send_is_one_statement_with_the_interpreters_answer(
    settings: Settings, people: dict[str, Any]
) -> None:
    bob = people["bob"]["me"]["id"]
    for query in (SEND, ALIASED):
        key = "input" if query is SEND else "w"
        for anonymous in (True, False):
            variables = {key: {"recipientId": bob, "content": "  hi  ", "anonymous": anonymous}}
            fast, slow = await send_both(settings, people["alice"]["accessToken"], variables, query)
            assert fast[1] == 1 and slow[1] == -1
            assert _same_shape(fast[0]) == _same_shape(slow[0])
            assert "errors" not in fast[0]
            assert fast[2] == slow[2] == {"whispers": 1, "quota": 1, "hits": 1, "reviews": 0}
    rows = [r for r in await _rows(settings) if r["content"] != "hey"]  # gina's, in the setup
    assert len(rows) == 8
    assert {(r["content"], r["sender"], r["recipient"], r["reply_to_id"]) for r in rows} == {
        ("hi", people["alice"]["me"]["id"], bob, None)
    }


async def _rows(settings: Settings) -> list[dict[str, Any]]:
    app = create_app(settings)
    async with running_app(app), app.state.services.engine.connect() as conn:
        result = await conn.exec_driver_sql(
            "SELECT content, sender_id::text AS sender, recipient_id::text AS recipient,"
            " reply_to_id FROM whispers"
        )
        return [dict(r._mapping) for r in result]


@pytest.mark.parametrize(
    ("sender", "recipient", "content"),
    [
        ("alice", "alice", "to myself"),
        ("carol", "bob", "blocked by bob"),
        ("bob", "carol", "bob blocked carol"),
        ("alice", "00000000-0000-0000-0000-000000000000", "nobody"),
        ("alice", "not-a-uuid", "garbage id"),
        ("alice", "bob", "   "),
        ("alice", "bob", "x" * 501),
        ("dave", "bob", "unregistered sender"),
        ("gina", "bob", "bob blocked her through a whisper"),
    ],
)
async def test_refusals_are_the_interpreters_and_count_once(
    settings: Settings, people: dict[str, Any], sender: str, recipient: str, content: str
) -> None:
    recipient_id = people[recipient]["me"]["id"] if recipient in people else recipient
    variables = {"input": {"recipientId": recipient_id, "content": content}}
    fast, slow = await send_both(settings, people[sender]["accessToken"], variables)
    assert fast[0] == slow[0]
    assert fast[0]["data"]["sendWhisper"]["errors"]
    assert fast[2] == slow[2]  # nothing sent; the rate-limit hit counted once, as before
    assert fast[2]["whispers"] == 0


@pytest.mark.parametrize("recipient", ["erin", "frank"])
async def test_a_hidden_recipient_is_null_in_both_answers(
    settings: Settings, people: dict[str, Any], recipient: str
) -> None:
    """Whispering someone who hid their profile or is held works, and the answer shows them as
    `user(id)` would: not at all."""
    variables = {"input": {"recipientId": people[recipient]["me"]["id"], "content": "hi"}}
    fast, slow = await send_both(settings, people["alice"]["accessToken"], variables)
    assert fast[1] == 1 and slow[1] == -1
    assert _same_shape(fast[0]) == _same_shape(slow[0])
    assert fast[0]["data"]["sendWhisper"]["whisper"]["recipient"] is None
    assert fast[2] == slow[2] == {"whispers": 1, "quota": 1, "hits": 1, "reviews": 0}


async def test_quota_and_rate_limit_refusals_match(
    settings: Settings, people: dict[str, Any]
) -> None:
    bob = people["bob"]["me"]["id"]
    token = people["alice"]["accessToken"]
    limits = {"BASIC": {"WHISPER": 1}, "PRO": {"WHISPER": 1}}
    quota = settings.model_copy(update={"quota_limits": limits})
    variables = {"input": {"recipientId": bob, "content": "one"}}
    first, _ = await send_both(quota, token, variables)  # the compiled one uses the only send
    assert "errors" not in first[0] and first[2]["whispers"] == 1
    fast, slow = await send_both(quota, token, variables)
    assert fast[0] == slow[0]
    assert fast[0]["data"]["sendWhisper"]["errors"][0]["code"] == "QUOTA_EXCEEDED"
    assert fast[2] == slow[2] == {"whispers": 0, "quota": 0, "hits": 1, "reviews": 0}

    limited = settings.model_copy(update={"rate_limits": {"whisper:user": (0, 3600)}})
    fast, slow = await send_both(limited, token, variables)
    errors = [answer["data"]["sendWhisper"]["errors"] for answer, _, _ in (fast, slow)]
    assert [e[0]["code"] for e in errors] == ["RATE_LIMITED"] * 2  # the seconds left may differ
    assert fast[2] == slow[2] == {"whispers": 0, "quota": 0, "hits": 1, "reviews": 0}


async def test_revoked_login_falls_back(settings: Settings, people: dict[str, Any]) -> None:
    app = create_app(settings)
    async with running_app(app):
        await sql(app, "UPDATE auth_sessions SET revoked_at = now()")
    variables = {"input": {"recipientId": people["bob"]["me"]["id"], "content": "hi"}}
    fast, slow = await send_both(settings, people["alice"]["accessToken"], variables)
    assert fast[0] == slow[0]
    assert fast[0]["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


@pytest.mark.parametrize(
    "extra",
    [
        {"idempotencyKey": "k-1"},
        {"anonymous": None},
        {"unknown": 1},
    ],
)
async def test_other_inputs_go_to_the_interpreter(
    settings: Settings, people: dict[str, Any], extra: dict[str, Any]
) -> None:
    variables = {"input": {"recipientId": people["bob"]["me"]["id"], "content": "hi", **extra}}
    fast, slow = await send_both(settings, people["alice"]["accessToken"], variables)
    assert fast[1] in (-1, 0)  # not the compiled pool (a null `anonymous` never executes)
    assert _same_shape(fast[0]) == _same_shape(slow[0])


async def test_replies_and_inline_input_go_to_the_interpreter(
    settings: Settings, people: dict[str, Any]
) -> None:
    bob = people["bob"]["me"]["id"]
    inline = (
        f'mutation {{ sendWhisper(input: {{recipientId: "{bob}", content: "hi"}})'
        " { whisper { id } } }"
    )
    fast, slow = await send_both(settings, people["alice"]["accessToken"], {}, inline)
    assert fast[1] == slow[1] == -1 and "errors" not in fast[0]
    whisper_id = fast[0]["data"]["sendWhisper"]["whisper"]["id"]
    reply = {"input": {"replyToId": whisper_id, "content": "who is this?"}}
    fast, slow = await send_both(settings, people["bob"]["accessToken"], reply)
    assert fast[1] == -1
    assert _same_shape(fast[0]) == _same_shape(slow[0])


# With WeChat configured (production refuses to start without it), the content check runs
# before the send's transaction and the send is still the compiled statement.


@pytest.fixture
async def wx_people(wx_settings: Settings, fake_wechat: FakeWechat) -> dict[str, Any]:
    """alice and bob, logged in through the fake WeChat (so they have openids), registered."""
    app = create_app(wx_settings)
    async with running_app(app) as http:
        gql = GraphQLClient(http)
        users = {}
        for name in ("alice", "bob"):
            fake_wechat.add_login(f"code-{name}", f"openid-{name}")
            login = (await gql(LOGIN, {"code": f"code-{name}"})).data["wechatLogin"]
            data = {"acceptedPolicyVersion": "2026-11", "nickname": name}
            registered = await gql(REGISTER, {"input": data}, token=login["accessToken"])
            assert registered.data["register"]["errors"] == [], registered
            users[name] = login
    return users


def _checks(fake: FakeWechat) -> list[str]:
    return [body["content"] for path, body in fake.calls if path == "/wxa/msg_sec_check"]


async def test_with_wechat_a_checked_send_is_the_compiled_statement(
    wx_settings: Settings, fake_wechat: FakeWechat, wx_people: dict[str, Any]
) -> None:
    bob = wx_people["bob"]["me"]["id"]
    for query, key in ((SEND, "input"), (ALIASED, "w")):
        variables = {key: {"recipientId": bob, "content": " checked "}}
        before = len(_checks(fake_wechat))
        fast, slow = await send_both(
            wx_settings, wx_people["alice"]["accessToken"], variables, query
        )
        # the pre-check and the send on the compiled pool, nothing on the ORM's engine
        assert fast[1] == 2 and slow[1] == -1
        assert _same_shape(fast[0]) == _same_shape(slow[0])
        assert "errors" not in fast[0]
        assert fast[2] == slow[2] == {"whispers": 1, "quota": 1, "hits": 1, "reviews": 0}
        assert _checks(fake_wechat)[before:] == ["checked", "checked"]  # once per path


async def test_with_wechat_a_rejected_text_sends_nothing_and_uses_no_quota(
    wx_settings: Settings, fake_wechat: FakeWechat, wx_people: dict[str, Any]
) -> None:
    variables = {"input": {"recipientId": wx_people["bob"]["me"]["id"], "content": "gamble-now"}}
    fast, slow = await send_both(wx_settings, wx_people["alice"]["accessToken"], variables)
    assert fast[0] == slow[0]
    assert fast[0]["data"]["sendWhisper"]["errors"][0]["code"] == "CONTENT_REJECTED"
    assert fast[0]["data"]["sendWhisper"]["whisper"] is None
    assert fast[2] == slow[2] == {"whispers": 0, "quota": 0, "hits": 1, "reviews": 0}


async def test_with_wechat_text_to_review_is_sent_and_queued_as_before(
    wx_settings: Settings, fake_wechat: FakeWechat, wx_people: dict[str, Any]
) -> None:
    variables = {"input": {"recipientId": wx_people["bob"]["me"]["id"], "content": "dm-me"}}
    fast, slow = await send_both(wx_settings, wx_people["alice"]["accessToken"], variables)
    assert _same_shape(fast[0]) == _same_shape(slow[0])
    assert "errors" not in fast[0]
    assert fast[2] == slow[2] == {"whispers": 1, "quota": 1, "hits": 1, "reviews": 1}


async def test_with_wechat_unavailable_the_interpreter_decides(
    wx_settings: Settings, fake_wechat: FakeWechat, wx_people: dict[str, Any]
) -> None:
    """The compiled path's check fails: the interpreter asks again and sends (its own check
    passed) — a checker hiccup loses no whisper and sends none twice."""
    variables = {"input": {"recipientId": wx_people["bob"]["me"]["id"], "content": "hello"}}
    # Every attempt of the compiled path's first WeChat call fails (retries included).
    fake_wechat.fail_next(*[Behaviour(status=502)] * (wx_settings.wechat_retries + 1))
    fast, slow = await send_both(wx_settings, wx_people["alice"]["accessToken"], variables)
    assert fast[1] == -1
    assert _same_shape(fast[0]) == _same_shape(slow[0])
    assert fast[2] == slow[2] == {"whispers": 1, "quota": 1, "hits": 1, "reviews": 0}


async def test_with_wechat_refusals_never_reach_wechat_from_the_compiled_path(
    wx_settings: Settings, fake_wechat: FakeWechat, wx_people: dict[str, Any]
) -> None:
    """A rate-limited sender, or one whispering themselves, makes no content check on either
    path: the interpreter refuses before it, and the compiled pre-check does too."""
    alice = wx_people["alice"]
    limited = wx_settings.model_copy(update={"rate_limits": {"whisper:user": (0, 3600)}})
    cases = [
        (limited, wx_people["bob"]["me"]["id"], "RATE_LIMITED"),
        (wx_settings, alice["me"]["id"], "NOT_FOUND"),
    ]
    for settings, recipient, code in cases:
        before = len(_checks(fake_wechat))
        variables = {"input": {"recipientId": recipient, "content": "hi"}}
        fast, slow = await send_both(settings, alice["accessToken"], variables)
        assert [a["data"]["sendWhisper"]["errors"][0]["code"] for a in (fast[0], slow[0])] == [
            code
        ] * 2
        assert fast[2] == slow[2] == {"whispers": 0, "quota": 0, "hits": 1, "reviews": 0}
        assert _checks(fake_wechat)[before:] == []
