"""A differential property test of the read compiler: hypothesis writes queries over every
compiled type — random fields, aliases, inline and named fragments, `__typename`,
@include/@skip, page sizes and cursors, several root fields — and both paths (COMPILED_QUERIES
on and off) must answer each with byte-identical JSON, on people of every standing (the data
of tests/test_compiled_reads.py: hidden, held, banned, deleted, unregistered, blocked either
way, PRO now/expired/ahead, proposer-only institutions, and with each of them a match and
whispers both ways, anonymous or not, with replies; the viewer PRO with a period bought ahead,
some quotas used today and before, and any X-WX-Platform header)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from src.app import create_app
from src.resolvers.pagination import EPOCH, encode_cursor
from tests.helpers import running_app, sql
from tests.test_compiled_reads import (
    PRO_PERIOD,
    QUOTA_USE,
    people,  # noqa: F401 - the fixture
)

# The compiled types: field -> None (a leaf) or the type of its selection set.
TYPES: dict[str, dict[str, str | None]] = {
    "User": {"id": None, "isPro": None, "profile": "Profile", "projects": "ProjectConnection"},
    "Me": {
        **dict.fromkeys(("id", "registered", "phone", "hasWechat", "role", "birthDate")),
        "profile": "Profile",
        "projects": "ProjectConnection",
        "membership": "Membership",
        "quotas": "QuotaStatus",
    },
    "Membership": dict.fromkeys(("plan", "validUntil", "canPurchase")),
    "QuotaStatus": dict.fromkeys(("kind", "used", "limit", "resetsAt")),
    "Profile": {
        **dict.fromkeys(
            ("nickname", "avatarUrl", "gender", "age", "city", "bio", "interests", "lookingFor")
        ),
        "discoverable": None,
        "institution": "Institution",
    },
    "Institution": dict.fromkeys(("id", "name", "kind", "city", "verified")),
    "Project": dict.fromkeys(
        ("id", "title", "description", "role", "link", "tags", "startedOn", "endedOn")
    ),
    "ProjectConnection": {"edges": "ProjectEdge", "pageInfo": "PageInfo"},
    "ProjectEdge": {"cursor": None, "node": "Project"},
    "UserConnection": {"edges": "UserEdge", "pageInfo": "PageInfo"},
    "UserEdge": {"cursor": None, "node": "User"},
    "PageInfo": {"hasNextPage": None, "endCursor": None},
    "Match": {"id": None, "createdAt": None, "user": "User"},
    "MatchConnection": {"edges": "MatchEdge", "pageInfo": "PageInfo"},
    "MatchEdge": {"cursor": None, "node": "Match"},
    "Whisper": {
        **dict.fromkeys(("id", "content", "createdAt", "readAt", "isAnonymous", "revealedAt")),
        "isMine": None,
        "sender": "User",
        "recipient": "User",
        "replyTo": "Whisper",
    },
    "WhisperConnection": {"edges": "WhisperEdge", "pageInfo": "PageInfo"},
    "WhisperEdge": {"cursor": None, "node": "Whisper"},
    "InstitutionConnection": {"edges": "InstitutionEdge", "pageInfo": "PageInfo"},
    "InstitutionEdge": {"cursor": None, "node": "Institution"},
}
CONNECTIONS = {"projects", "users", "matches", "whispersReceived", "whispersSent", "institutions"}
_CONDITIONS = [" @include(if: $yes)", " @skip(if: $no)", " @skip(if: $yes)", " @include(if: true)"]
# The variables a generated query may use, declared only when used (GraphQL refuses unused ones).
_VARIABLES = {
    "$yes": "$yes: Boolean = true",
    "$no": "$no: Boolean = false",
    "$id": "$id: ID!",
    "$after": "$after: String",
}


class Query:
    """Collects the named fragments a generated selection uses."""

    def __init__(self) -> None:
        self.fragments: list[str] = []


@st.composite
def selection(draw: st.DrawFn, type_name: str, query: Query, depth: int = 0) -> str:
    """A selection set on `type_name`: some of its fields (nested ones recursively),
    sometimes aliased, `__typename`, wrapped in fragments or under @include/@skip."""
    fields = TYPES[type_name]
    names = draw(st.lists(st.sampled_from(sorted(fields)), min_size=1, max_size=4, unique=True))
    parts = []
    for name in names:
        text = name
        if name in CONNECTIONS:
            text += draw(page_args())
        text += draw(st.sampled_from(["", "", "", *_CONDITIONS]))
        if fields[name] is not None:
            if depth >= 4:
                continue
            text += " " + draw(selection(fields[name], query, depth + 1))
        alias = draw(st.sampled_from(["", "", "", f"a_{name}: "]))
        parts.append(f"{alias}{text}")
    if not parts:
        parts = ["__typename"]
    if draw(st.booleans()):
        parts.insert(
            draw(st.integers(0, len(parts))), draw(st.sampled_from(["__typename", "t: __typename"]))
        )
    wrap = draw(st.sampled_from(["plain", "plain", "inline", "spread", "named"]))
    body = " ".join(parts)
    if wrap == "inline":
        body = f"... on {type_name} {{ {body} }}"
    elif wrap == "spread":
        body = f"... @include(if: $yes) {{ {body} }}"
    elif wrap == "named":
        name = f"F{len(query.fragments)}"
        query.fragments.append(f"fragment {name} on {type_name} {{ {body} }}")
        body = f"...{name}"
    return "{ " + body + " }"


@st.composite
def page_args(draw: st.DrawFn) -> str:
    args = []
    if draw(st.booleans()):
        args.append(f"first: {draw(st.integers(1, 6))}")
    if draw(st.booleans()):
        args.append("after: $after")
    return f"({', '.join(args)})" if args else ""


@st.composite
def queries(draw: st.DrawFn) -> str:
    query = Query()
    kinds = st.sampled_from(
        ["users", "user", "me", "matches", "whispersReceived", "whispersSent", "institutions"]
    )
    roots = draw(st.lists(kinds, min_size=1, max_size=2, unique=True))
    parts = []
    for root in roots:
        if root == "users":
            parts.append(
                "users" + draw(page_args()) + " " + draw(selection("UserConnection", query))
            )
        elif root == "institutions":
            args = [a for a in (draw(page_args())[1:-1],) if a]
            if draw(st.booleans()):
                term = draw(st.sampled_from(["清华", "tsinghua", " THU ", "", "%", "a_", "Their"]))
                args.append(f"search: {json.dumps(term)}")
            if draw(st.booleans()):
                args.append(f"kind: {draw(st.sampled_from(['COMPANY', 'UNIVERSITY', 'OTHER']))}")
            text = f"({', '.join(args)})" if args else ""
            parts.append(
                "institutions" + text + " " + draw(selection("InstitutionConnection", query))
            )
        elif root in ("matches", "whispersReceived", "whispersSent"):
            of = "MatchConnection" if root == "matches" else "WhisperConnection"
            args = draw(page_args())
            if root == "whispersReceived" and draw(st.booleans()):
                unread = draw(st.sampled_from(["true", "false", "null", "$yes"]))
                args = f"(unreadOnly: {unread}{', ' + args[1:-1] if args else ''})"
            parts.append(root + args + " " + draw(selection(of, query)))
        elif root == "user":
            parts.append("user(id: $id) " + draw(selection("User", query)))
        else:
            parts.append("me " + draw(selection("Me", query)))
    return _operation(parts, query)


def _operation(parts: list[str], query: Query) -> str:
    text = " { " + " ".join(parts) + " } " + " ".join(query.fragments)
    used = [declared for name, declared in _VARIABLES.items() if name in text]
    return f"query Q{'(' + ', '.join(used) + ')' if used else ''}{text}"


@st.composite
def plan_queries(draw: st.DrawFn) -> str:
    """`me` asking its membership or quotas (rare among all the generated queries)."""
    query = Query()
    fields = draw(st.lists(st.sampled_from(["membership", "quotas"]), min_size=1, unique=True))
    fields += draw(st.lists(st.sampled_from(["id", "role", "membership", "quotas"]), max_size=1))
    sels = []
    for n, name in enumerate(fields, 1):
        of = TYPES["Me"][name]
        sels.append(f"{'a' * n}: {name}" + (" " + draw(selection(of, query, 3)) if of else ""))
    return _operation(["me { " + " ".join(sels) + " }"], query)


@pytest.fixture
async def paths(people: tuple) -> AsyncIterator[dict[str, Any]]:  # noqa: F811
    base, token, ids = people
    # Many feed pages a minute: lift the feed's rate limit on both paths alike.
    base = base.model_copy(update={"rate_limits": {"feed:user": (10**9, 60)}})
    fast_app = create_app(base.model_copy(update={"compiled_queries": True}))
    slow_app = create_app(base.model_copy(update={"compiled_queries": False}))
    async with running_app(fast_app) as fast, running_app(slow_app) as slow:
        # Cursors of every user and project (visible or not) to page from.
        rows = await sql(
            fast_app,
            "SELECT json_agg(json_build_array(extract(epoch FROM at) * 1000000, id)) FROM"
            " (SELECT registered_at AS at, id FROM users WHERE registered_at IS NOT NULL"
            " UNION ALL SELECT created_at, id FROM user_projects"
            " UNION ALL SELECT created_at, id FROM user_matches"
            " UNION ALL SELECT created_at, id FROM whispers) x",
        )
        names = await sql(fast_app, "SELECT json_agg(json_build_array(name, id)) FROM institutions")
        rows = orjson.loads(rows) if isinstance(rows, str) else rows
        cursors = [encode_cursor(*_key(row)) for row in rows]
        names = orjson.loads(names) if isinstance(names, str) else names
        cursors += [encode_cursor(name, ident) for name, ident in names[::7]]
        # The viewer is PRO with a period bought ahead, and used some quotas today and before.
        viewer = ids["viewer"]
        for start, end in ((-1, 1), (1, 31)):
            await sql(fast_app, PRO_PERIOD, v=viewer, a=start, b=end)
        for kind, used, ago in (("WHISPER", 2, 0), ("SWIPE", 4, 1)):
            await sql(fast_app, QUOTA_USE, v=viewer, kind=kind, used=used, ago=ago)
        yield {"fast": fast, "slow": slow, "token": token, "ids": ids, "cursors": cursors}


def _key(row: list[Any]) -> tuple[Any, ...]:
    return EPOCH + timedelta(microseconds=int(row[0])), row[1]


@settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(query=queries(), data=st.data())
async def test_generated_reads_answer_alike(paths: dict[str, Any], query: str, data: Any) -> None:
    await answer_alike(paths, query, data)


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(query=plan_queries(), data=st.data())
async def test_generated_plan_reads_answer_alike(
    paths: dict[str, Any], query: str, data: Any
) -> None:
    await answer_alike(paths, query, data)


async def answer_alike(paths: dict[str, Any], query: str, data: Any) -> None:
    """Both paths give the same bytes; the compiled one answers unless there is an error."""
    ids = paths["ids"]
    variables = {}
    if "$id" in query:
        variables["id"] = data.draw(st.sampled_from(sorted(ids.values())))
    if "$after" in query:
        variables["after"] = data.draw(st.one_of(st.none(), st.sampled_from(paths["cursors"])))
    body = {"query": query, "variables": variables, "operationName": "Q"}
    headers = {"authorization": f"Bearer {paths['token']}"}
    platform = data.draw(st.sampled_from([None, "ios", "Android"]))
    if platform:  # canPurchase depends on it
        headers["x-wx-platform"] = platform
    answers = []
    for path in ("fast", "slow"):
        response = await paths[path].post("/graphql", json=body, headers=headers)
        doc = orjson.loads(response.content)
        answers.append((doc.get("extensions", {}).pop("path", None), doc))
    (fast_path, fast), (_, slow) = answers
    assert orjson.dumps(fast) == orjson.dumps(slow), query
    # A cursor of another connection (a name where a time is expected) is an error, which the
    # interpreter words; any answer without errors must come from the compiled path — except
    # when such a cursor goes to a connection the interpreter never reads (under a person
    # hidden from the viewer): the compiled plan refuses the value up front and falls back,
    # with the same answer (checked above). Found by this test in CI.
    refused_unread = "$after" in query and "after: $after" not in query.split("{", 2)[1]
    assert fast_path == "compiled" or "errors" in fast or refused_unread, (query, fast)
