"""`user(id)` and `me` on both paths (COMPILED_QUERIES on and off): byte-identical JSON, the
compiled one pinned to its path, on people of every standing — hidden, held for review,
banned, deleted, unregistered, blocked either way, PRO now and PRO expired — and on
institutions only their proposer may see."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from sqlalchemy import text

from src.app import create_app
from src.config import Settings
from src.resolvers.calendar import next_local_midnight
from src.seeding import seed_demo_users
from tests.helpers import GraphQLClient, registered_user, running_app, sql
from tests.test_fastpath_shapes import assert_compiled, both

PERSON = """query Person($id: ID!, $pf: Int = 2) { user(id: $id) { __typename id isPro
  profile { nickname avatarUrl gender age city bio interests lookingFor discoverable
            institution { __typename id name kind city verified } }
  projects(first: $pf) { edges { cursor node { id title description role link tags startedOn
    endedOn } } pageInfo { hasNextPage endCursor } } } }"""
ME = """{ me { id registered phone hasWechat role birthDate
  profile { nickname age discoverable institution { name verified } }
  projects(first: 3) { edges { cursor node { title } } pageInfo { hasNextPage endCursor } } } }"""
FEED_AND_ME = """{ me { id } users(first: 30) { edges { node { id isPro
  profile { nickname institution { name verified } } } } } }"""

# demo user -> what is done to them (SQL over `u`, the user's row, and `v`, the viewer's id)
STANDINGS = {
    "hidden": "UPDATE user_profiles SET visibility = 'hidden' WHERE user_id = :u",
    "held": "UPDATE users SET moderation_hold_at = now() WHERE id = :u",
    "banned": "UPDATE users SET status = 'banned' WHERE id = :u",
    "deleted": "UPDATE users SET status = 'deleted' WHERE id = :u",
    "unregistered": "UPDATE users SET registered_at = NULL WHERE id = :u",
    "blocked by viewer": "INSERT INTO user_blocks (blocker_id, blocked_id) VALUES (:v, :u)",
    "blocks viewer": "INSERT INTO user_blocks (blocker_id, blocked_id) VALUES (:u, :v)",
    "pro": "INSERT INTO memberships (id, user_id, plan, valid_from, valid_until) VALUES"
    " (gen_random_uuid(), :u, 'PRO', now() - interval '1 day', now() + interval '1 day')",
    "pro expired": "INSERT INTO memberships (id, user_id, plan, valid_from, valid_until) VALUES"
    " (gen_random_uuid(), :u, 'PRO', now() - interval '9 day', now() - interval '1 day')",
    "pro ahead": "INSERT INTO memberships (id, user_id, plan, valid_from, valid_until) VALUES"
    " (gen_random_uuid(), :u, 'PRO', now() + interval '1 day', now() + interval '9 day')",
    # an institution its proposer (this user) sees, and nobody else
    "own proposal": "WITH i AS (INSERT INTO institutions (id, name, kind, verified,"
    " proposed_by_id, created_at) VALUES (gen_random_uuid(), 'Their Lab', 'OTHER', false, :u,"
    " now()) RETURNING id) UPDATE user_profiles SET institution_id = (SELECT id FROM i)"
    " WHERE user_id = :u",
    "plain": "SELECT 1",
    # Text JSON must escape (the compiled path writes it in SQL): quotes, a backslash, a
    # newline, a tab, U+0001, U+2028 and an emoji; and null in every nullable field.
    "awkward text": "WITH p AS (UPDATE user_profiles SET nickname = 'a\"b\\c' || chr(10)"
    " || chr(1) || chr(9) || chr(8232) || chr(128512), bio = 'x' || chr(8233) || '\"',"
    " city = NULL, avatar_url = NULL, looking_for = NULL, birth_date = NULL,"
    " institution_id = NULL WHERE user_id = :u) UPDATE user_projects SET title = '\"t\\'"
    " || chr(13) || chr(12) || chr(8), description = NULL, role = NULL, link = NULL,"
    " started_on = NULL, ended_on = NULL WHERE user_id = :u",
}


# The demo users who start out visible (the demo data has hidden people of its own).
_LISTED = (
    "SELECT u.id FROM users u JOIN user_profiles p ON p.user_id = u.id"
    " WHERE u.wechat_openid LIKE 'dev:demo-%' AND p.visibility = 'discoverable'"
    " AND u.status = 'active' AND u.registered_at IS NOT NULL AND u.moderation_hold_at IS NULL"
    " ORDER BY u.wechat_openid"
)


@pytest.fixture
async def people(settings: Settings) -> tuple[Settings, str, dict[str, str]]:
    settings = settings.model_copy(update={"report_path": True, "max_query_cost": 100_000})
    app = create_app(settings)
    async with running_app(app) as http:
        async with app.state.services.sessionmaker() as session:
            await seed_demo_users(
                session,
                count=len(STANDINGS) * 2,
                seed=5,
                policy_version="2026-11",
                now=app.state.services.clock(),
            )
        gql = GraphQLClient(http)
        login = await registered_user(gql, "viewer", birthDate="1999-12-31")
        viewer = login["me"]["id"]
        async with app.state.services.engine.connect() as conn:
            listed = [str(row[0]) for row in await conn.execute(text(_LISTED))]
        ids = {}
        for n, (standing, statement) in enumerate(STANDINGS.items()):
            uid = listed[n]
            await sql(app, statement, u=uid, v=viewer)
            ids[standing] = uid
        # The viewer's own proposal, on their profile: they see it, others do not.
        await sql(app, STANDINGS["own proposal"], u=viewer, v=viewer)
        await sql(
            app,
            "UPDATE user_profiles SET institution_id = (SELECT institution_id FROM user_profiles"
            " WHERE user_id = :v) WHERE user_id = :u",
            u=ids["plain"],
            v=viewer,
        )
        # A match with each of them (one ended), made a minute apart, some in the same instant.
        await sql(
            app,
            "INSERT INTO user_matches (id, user_a_id, user_b_id, ended_at, created_at)"
            " SELECT gen_random_uuid(), least(u.id, CAST(:v AS uuid)),"
            " greatest(u.id, CAST(:v AS uuid)), CASE WHEN n = 3 THEN now() END,"
            " date_trunc('minute', now()) - (n / 2) * interval '1 minute'"
            " + CASE WHEN n % 4 = 1 THEN interval '1 microsecond' ELSE interval '0' END"
            " FROM (SELECT id, row_number() OVER (ORDER BY id) AS n FROM users"
            " WHERE id <> CAST(:v AS uuid)) u",
            v=viewer,
        )
        await whispers_between(app, viewer, list(ids.values()))
        ids["viewer"], ids["missing"], ids["not a uuid"] = viewer, str(uuid.uuid4()), "x-1"
    return settings, login["accessToken"], ids


_WHISPER = (
    "INSERT INTO whispers (id, sender_id, recipient_id, content, is_anonymous, revealed_at,"
    " read_at, reply_to_id, withheld, created_at) VALUES (:id, :s, :r, :c, :anon,"
    " CASE WHEN :revealed THEN now() END, CASE WHEN :read THEN now() END, :reply, :withheld,"
    " date_trunc('second', now()) - :n * interval '1 second')"
)


async def whispers_between(app: Any, viewer: str, people: list[str]) -> None:
    """With each person: a whisper to the viewer (anonymous or not, revealed or not, read or
    not), one from the viewer, the viewer's reply to the first and their reply to the second;
    a withheld reply and one from a since-deleted sender."""
    n = 0

    async def whisper(sender: str | None, recipient: str, **values: Any) -> str:
        nonlocal n
        n += 1
        wid = str(uuid.uuid4())
        values = {"reply": None, "withheld": False, "read": n % 3 == 0, **values}
        await sql(app, _WHISPER, id=wid, s=sender, r=recipient, c=f"w{n}", n=n, **values)
        return wid

    for p, person in enumerate(people):
        # by person: anonymous and unrevealed, anonymous and revealed, or signed
        kind = {"anon": p % 3 != 2, "revealed": p % 3 == 1}
        first = await whisper(person, viewer, **kind)
        second = await whisper(viewer, person, **kind)
        await whisper(viewer, person, reply=first, anon=p % 2 == 0, revealed=False)
        await whisper(person, viewer, reply=second, anon=p % 2 == 1, revealed=False)
    await whisper(people[0], viewer, withheld=True, anon=True, revealed=False)
    await whisper(None, viewer, anon=False, revealed=False)


@pytest.mark.parametrize("standing", [*STANDINGS, "viewer", "missing", "not a uuid"])
async def test_user_by_id_is_compiled_alike(people: tuple, standing: str) -> None:
    settings, token, ids = people
    body = {"query": PERSON, "variables": {"id": ids[standing]}, "operationName": "Person"}
    fast, slow = await both(settings, token, body)
    assert_compiled(settings, fast, slow)
    found = fast["doc"]["data"]["user"]
    hidden = {"hidden", "held", "banned", "deleted", "unregistered", "blocked by viewer"}
    if standing in hidden | {"blocks viewer", "missing", "not a uuid"}:
        assert found is None
    else:
        assert found["id"] == ids[standing]
    if standing in ("pro", "pro expired", "pro ahead"):
        assert found["isPro"] is (standing == "pro")


async def test_me_is_compiled_alike(people: tuple) -> None:
    settings, token, _ = people
    fast, slow = await both(settings, token, {"query": ME})
    assert_compiled(settings, fast, slow)
    me = fast["doc"]["data"]["me"]
    assert me["birthDate"] == "1999-12-31" and me["registered"] is True
    assert me["profile"]["institution"] == {"name": "Their Lab", "verified": False}


async def test_feed_beside_me_is_compiled_alike(people: tuple) -> None:
    settings, token, ids = people
    fast, slow = await both(settings, token, {"query": FEED_AND_ME})
    assert_compiled(settings, fast, slow)
    shown = {e["node"]["id"] for e in fast["doc"]["data"]["users"]["edges"]}
    assert shown >= {ids["plain"], ids["pro"], ids["own proposal"]}
    assert not shown & {ids[s] for s in ("hidden", "held", "banned", "deleted", "viewer")}
    # Another's unapproved proposal is not shown to the viewer; the viewer's own is.
    institutions = {
        e["node"]["id"]: e["node"]["profile"]["institution"]
        for e in fast["doc"]["data"]["users"]["edges"]
    }
    assert institutions[ids["own proposal"]] is None
    assert institutions[ids["plain"]] == {"name": "Their Lab", "verified": False}


MATCHES = """query Matches($n: Int, $after: String) { matches(first: $n, after: $after) {
  edges { cursor node { __typename id createdAt user { __typename id isPro
    profile { nickname institution { name } } projects(first: 2) { edges { node { title } } } }
  } } pageInfo { hasNextPage endCursor } } }"""


async def test_matches_are_compiled_alike(people: tuple) -> None:
    """Every page of matches, the other person hidden or not, on both paths alike."""
    settings, token, ids = people
    after, seen = None, []
    for _ in range(20):
        variables = {"n": 4, "after": after}
        fast, slow = await both(settings, token, {"query": MATCHES, "variables": variables})
        assert_compiled(settings, fast, slow)
        page = fast["doc"]["data"]["matches"]
        seen += [edge["node"]["user"] for edge in page["edges"]]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    by_id = {user["id"]: user for user in seen}
    assert len(seen) == len(by_id) > len(STANDINGS)  # one ended match is not among them
    assert by_id[ids["hidden"]]["profile"] is None and by_id[ids["plain"]]["profile"]
    assert by_id[ids["pro"]]["isPro"] is True


WHISPERS = """query Inbox($n: Int, $after: String, $unread: Boolean) {
  received: whispersReceived(first: $n, after: $after, unreadOnly: $unread) { ...Page }
  sent: whispersSent(first: $n, after: $after) { ...Page } }
fragment Page on WhisperConnection { edges { cursor node { ...W replyTo { ...W
  replyTo { id } } } } pageInfo { hasNextPage endCursor } }
fragment W on Whisper { __typename id content createdAt readAt isAnonymous revealedAt isMine
  sender { id profile { nickname } } recipient { id isPro } }"""
ONE_WHISPER = """query One($id: ID!) { whisper(id: $id) { id content readAt isMine
  sender { id } recipient { id } replyTo { id sender { id } } } }"""


@pytest.mark.parametrize("unread", [None, False, True])
async def test_whispers_are_compiled_alike(people: tuple, unread: bool | None) -> None:
    """Inbox and outbox, page after page, and each whisper by id, on both paths alike: who
    sent what stays hidden exactly where the interpreter hides it."""
    settings, token, ids = people
    after, seen = None, set()
    for _ in range(40):
        variables = {"n": 7, "after": after, "unread": unread}
        fast, slow = await both(settings, token, {"query": WHISPERS, "variables": variables})
        assert_compiled(settings, fast, slow)
        data = fast["doc"]["data"]
        seen |= {e["node"]["id"] for side in ("received", "sent") for e in data[side]["edges"]}
        more = [data[side]["pageInfo"] for side in ("received", "sent")]
        if not any(info["hasNextPage"] for info in more):
            break
        after = next(info["endCursor"] for info in more if info["hasNextPage"])
    assert len(seen) > 20
    if unread:
        return
    # Blocks act at send time: an anonymous, unrevealed whisper from someone who blocked the
    # viewer stays, sender unknown; a signed one from someone the viewer blocked is gone. A
    # banned sender's signed whisper stays, the sender hidden as user(id) hides them.
    inbox = await inbox_by_content(settings, token)
    order = list(STANDINGS)

    def first_from(standing: str) -> Any:  # each person's first whisper to the viewer
        return inbox.get(f"w{4 * order.index(standing) + 1}")

    assert order.index("blocks viewer") % 3 == 0 and first_from("blocks viewer")["sender"] is None
    assert order.index("blocked by viewer") % 3 == 2 and first_from("blocked by viewer") is None
    assert order.index("banned") % 3 == 2 and first_from("banned")["sender"] is None
    assert order.index("pro") % 3 == 1 and first_from("pro")["sender"] == {"id": ids["pro"]}
    for wid in [*sorted(seen)[:12], str(uuid.uuid4())]:
        fast, slow = await both(settings, token, {"query": ONE_WHISPER, "variables": {"id": wid}})
        assert_compiled(settings, fast, slow)


async def inbox_by_content(settings: Settings, token: str) -> dict[str, Any]:
    inbox = "{ whispersReceived(first: 100) { edges { node { content sender { id } } } } }"
    body = {"query": inbox}
    fast, slow = await both(settings, token, body)
    assert_compiled(settings, fast, slow)
    edges = fast["doc"]["data"]["whispersReceived"]["edges"]
    return {e["node"]["content"]: e["node"] for e in edges}


INSTITUTIONS = """query Search($s: String, $kind: InstitutionKind, $n: Int, $after: String) {
  institutions(search: $s, kind: $kind, first: $n, after: $after) { __typename
    edges { cursor node { __typename id name kind city verified } }
    pageInfo { hasNextPage endCursor } } }"""


@pytest.mark.parametrize(
    "variables",
    [
        {},
        {"s": "清华"},
        {"s": "tsinghua", "n": 3},
        {"s": " THU  "},
        {"s": "  "},
        {"s": "Their"},  # the viewer's own proposal and another's of the same name
        {"s": "%"},
        {"s": "_a"},
        {"kind": "COMPANY", "n": 100},
        {"kind": "UNIVERSITY", "s": "大学", "n": 7},
    ],
)
async def test_institution_search_is_compiled_alike(people: tuple, variables: dict) -> None:
    settings, token, _ = people
    after, pages = None, 0
    while pages < 30:
        body = {"query": INSTITUTIONS, "variables": {**variables, "after": after}}
        fast, slow = await both(settings, token, body)
        assert_compiled(settings, fast, slow)
        info = fast["doc"]["data"]["institutions"]["pageInfo"]
        pages += 1
        if not info["hasNextPage"]:
            break
        after = info["endCursor"]
    if variables.get("s") == "Their":
        names = [
            (e["node"]["name"], e["node"]["verified"])
            for e in fast["doc"]["data"]["institutions"]["edges"]
        ]
        assert names == [("Their Lab", False)]  # the viewer's own; the other proposal is not


# --- me { membership quotas } ----------------------------------------------------------------

PLAN_AND_QUOTAS = """query Mine { me { __typename id
  membership { __typename plan validUntil canPurchase }
  q: quotas { __typename kind used limit resetsAt } ...Again } }
fragment Again on Me { quotas { kind resetsAt } membership { validUntil } }"""

# The viewer's PRO periods, as (start, end) in days from now.
MEMBERSHIPS: dict[str, list[tuple[int, int]]] = {
    "basic": [],
    "pro": [(-1, 1)],
    "pro with a period bought ahead": [(-1, 1), (1, 31)],
    "pro expired": [(-9, -1)],
    "only a period bought ahead": [(1, 9)],
}
PRO_PERIOD = (
    "INSERT INTO memberships (id, user_id, plan, valid_from, valid_until) VALUES"
    " (gen_random_uuid(), :v, 'PRO', now() + CAST(:a AS integer) * interval '1 day',"
    " now() + CAST(:b AS integer) * interval '1 day' + interval '1.5 millisecond')"
)
# Use today (the Asia/Shanghai day) and on an earlier day, which no longer counts.
QUOTA_USE = (
    "INSERT INTO user_quotas (user_id, day, kind, used, daily_limit) VALUES"
    " (:v, (now() AT TIME ZONE 'Asia/Shanghai')::date - CAST(:ago AS integer), :kind, :used, 99)"
)
LIMITS = {
    "BASIC": {"WHISPER": 3, "SWIPE": 20, "AI_REQUEST": 2, "DISCOVERY": 5},
    "PRO": {"WHISPER": 30, "SWIPE": 200, "AI_REQUEST": 40, "DISCOVERY": 50},
}


@pytest.fixture
async def viewer(settings: Settings) -> tuple[Settings, str, str]:
    """A registered viewer with some use today and some on an earlier day; limits that are
    not the defaults (they come from the settings on both paths)."""
    settings = settings.model_copy(update={"report_path": True, "quota_limits": LIMITS})
    app = create_app(settings)
    async with running_app(app) as http:
        login = await registered_user(GraphQLClient(http), "viewer")
        me = login["me"]["id"]
        for kind, used, ago in (("WHISPER", 2, 0), ("AI_REQUEST", 5, 1), ("SWIPE", 7, 0)):
            await sql(app, QUOTA_USE, v=me, kind=kind, used=used, ago=ago)
    return settings, login["accessToken"], me


@pytest.mark.parametrize("standing", MEMBERSHIPS)
async def test_membership_and_quotas_are_compiled_alike(viewer: tuple, standing: str) -> None:
    settings, token, me = viewer
    app = create_app(settings)
    async with running_app(app):
        for start, end in MEMBERSHIPS[standing]:
            await sql(app, PRO_PERIOD, v=me, a=start, b=end)
    fast, slow = await both(settings, token, {"query": PLAN_AND_QUOTAS})
    assert_compiled(settings, fast, slow)
    answer = fast["doc"]["data"]["me"]
    membership, quotas = answer["membership"], answer["q"]
    pro = standing in ("pro", "pro with a period bought ahead")
    assert membership["plan"] == ("PRO" if pro else "BASIC")
    assert (membership["validUntil"] is None) is not pro
    if standing == "pro with a period bought ahead":  # the latest end, not the current one's
        assert membership["validUntil"] > (datetime.now(UTC) + timedelta(days=30)).isoformat()
    used = {q["kind"]: q["used"] for q in quotas}
    assert used == {"WHISPER": 2, "SWIPE": 7, "AI_REQUEST": 0, "DISCOVERY": 0}
    limits = LIMITS["PRO" if pro else "BASIC"]
    assert [(q["kind"], q["limit"]) for q in quotas] == list(limits.items())


@pytest.mark.parametrize("platform", [None, "iOS", " android "])
async def test_can_purchase_by_platform_is_compiled_alike(
    viewer: tuple, platform: str | None
) -> None:
    settings, token, _ = viewer
    headers = {"X-WX-Platform": platform} if platform else {}
    fast, slow = await both(settings, token, {"query": PLAN_AND_QUOTAS}, headers)
    assert_compiled(settings, fast, slow)
    assert fast["doc"]["data"]["me"]["membership"]["canPurchase"] is (platform != "iOS")


async def test_cached_plan_takes_each_request_platform(viewer: tuple) -> None:
    """One app, one cached plan: each request's own header decides canPurchase."""
    settings, token, _ = viewer
    app = create_app(settings)
    seen = []
    async with running_app(app) as http:
        for platform in ("android", "ios", "devtools", "ios"):
            headers = {"authorization": f"Bearer {token}", "x-wx-platform": platform}
            response = await http.post("/graphql", json={"query": ME_PLAN}, headers=headers)
            doc = response.json()
            assert doc["extensions"]["path"] == "compiled"
            seen.append(doc["data"]["me"]["membership"]["canPurchase"])
    assert seen == [True, False, True, False]


ME_PLAN = "{ me { membership { canPurchase } } }"


@pytest.mark.parametrize("standing", ["pro", "pro with a period bought ahead"])
async def test_membership_and_quotas_follow_the_injected_clock(
    viewer: tuple, standing: str
) -> None:
    """Two days on by services.clock() (PostgreSQL's now() stays): the current period has
    ended, the one bought ahead has begun, a new quota day has started — on both paths."""
    settings, token, me = viewer
    later = datetime.now(UTC) + timedelta(days=2)
    answers = []
    for compiled in (True, False):
        app = create_app(settings.model_copy(update={"compiled_queries": compiled}))
        async with running_app(app) as http:
            if compiled:
                for start, end in MEMBERSHIPS[standing]:
                    await sql(app, PRO_PERIOD, v=me, a=start, b=end)
            services = app.state.services
            app.state.services = dataclasses.replace(services, clock=lambda: later)
            headers = {"authorization": f"Bearer {token}"}
            response = await http.post("/graphql", json={"query": PLAN_AND_QUOTAS}, headers=headers)
            answers.append(orjson.loads(response.content))
    fast, slow = answers
    assert fast["extensions"].pop("path") == "compiled"
    assert slow["extensions"].pop("path") == "interpreted"
    assert orjson.dumps(fast) == orjson.dumps(slow)
    answer = fast["data"]["me"]
    assert answer["membership"]["plan"] == ("BASIC" if standing == "pro" else "PRO")
    assert [q["used"] for q in answer["q"]] == [0, 0, 0, 0]
    assert answer["q"][0]["resetsAt"] == next_local_midnight(later).isoformat()
