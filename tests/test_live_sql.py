"""The compiled read of a `whisperReceived` event (src/resolvers/live_sql.py) returns exactly
what the ORM path returns — the viewer check of `load_viewer` and the rows of
`whispers.received_after` — for blocks either way (which hide only senders the viewer knows),
withheld replies, deleted senders, other recipients and cursors, and says "login ended" for a
revoked session, a ban and a deletion."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from starlette.applications import Starlette

from src.resolvers import live_sql, whispers
from src.resolvers.users import load_viewer
from src.resolvers.whispers import LIVE_BATCH
from tests.helpers import GraphQLClient, registered_user, running_app, send_whisper, sql

BLOCK = "mutation ($id: ID!) { blockUser(userId: $id) { ok } }"
START = (datetime(2000, 1, 1, tzinfo=UTC), uuid.UUID(int=0))


async def orm_read(app: Starlette, viewer: uuid.UUID, session_id: uuid.UUID, cursor: Any) -> Any:
    async with app.state.services.sessionmaker() as session:
        if await load_viewer(session, viewer, session_id) is None:
            return None
        return await whispers.received_after(session, viewer, cursor)


async def both(app: Starlette, login: dict[str, Any], cursor: Any) -> list[dict[str, Any]] | None:
    """The compiled read, after checking the ORM read gives the same."""
    claims = app.state.services.tokens.verify_access(login["accessToken"])
    compiled = await live_sql.received_after(
        app.state.services, claims.user_id, claims.session_id, cursor
    )
    orm = await orm_read(app, claims.user_id, claims.session_id, cursor)
    if compiled is None or orm is None:
        assert compiled is None and orm is None, (compiled, orm)
        return None
    dumped = [w.model_dump() for w in compiled]
    assert dumped == [w.model_dump() for w in orm]
    return dumped


async def test_same_rows_as_the_orm_read(app: Starlette) -> None:
    async with running_app(app) as http:
        gql = GraphQLClient(http)
        names = ("alice", "bob", "carol", "dave", "erin", "frank")
        u = {n: await registered_user(gql, n) for n in names}
        bob_id = u["bob"]["me"]["id"]

        def send(name: str, content: str, to: str = bob_id, **more: Any) -> Any:
            return send_whisper(
                gql, u[name]["accessToken"], recipientId=to, content=content, **more
            )

        await send("alice", "anonymous")
        await send("carol", "from carol, named", anonymous=False)
        await send("dave", "dave, whom bob blocks")
        await send("dave", "dave, named, whom bob blocks", anonymous=False)
        erin = await send("erin", "erin, who blocks bob")
        await send("erin", "erin, named, who blocks bob", anonymous=False)
        await send("frank", "frank, who deletes his account")
        await send("bob", "to alice, not bob's", to=u["alice"]["me"]["id"])
        await gql(BLOCK, {"id": u["dave"]["me"]["id"]}, token=u["bob"]["accessToken"])
        await gql(BLOCK, {"id": bob_id}, token=u["erin"]["accessToken"])
        # Bob answers erin's anonymous whisper: accepted, and withheld from her.
        withheld = await send_whisper(
            gql, u["bob"]["accessToken"], replyToId=erin["whisper"]["id"], content="withheld"
        )
        assert withheld["errors"] == []
        deleted = await gql("mutation { deleteAccount { ok } }", token=u["frank"]["accessToken"])
        assert deleted.errors == [], deleted.errors

        rows = await both(app, u["bob"], START)
        assert rows is not None
        assert [r["content"] for r in rows] == [
            "anonymous",
            "from carol, named",
            "dave, whom bob blocks",
            "erin, who blocks bob",
            "frank, who deletes his account",
        ]
        assert rows[4]["sender_id"] is None  # a deleted sender: kept, unlinked
        # After a cursor: only what is newer; at the newest row, nothing.
        first = (rows[0]["created_at"], rows[0]["id"])
        assert [r["content"] for r in await both(app, u["bob"], first) or []] == [
            "from carol, named",
            "dave, whom bob blocks",
            "erin, who blocks bob",
            "frank, who deletes his account",
        ]
        assert await both(app, u["erin"], START) == []  # the withheld reply never arrives
        assert await both(app, u["bob"], (rows[-1]["created_at"], rows[-1]["id"])) == []
        # Alice's inbox: bob's whisper only.
        alice_rows = await both(app, u["alice"], START)
        assert [r["content"] for r in alice_rows or []] == ["to alice, not bob's"]


async def test_batches_are_capped_like_the_orm_read(app: Starlette) -> None:
    async with running_app(app) as http:
        gql = GraphQLClient(http)
        alice, bob = [await registered_user(gql, n) for n in ("alice", "bob")]
        await sql(
            app,
            "INSERT INTO whispers (id, sender_id, recipient_id, content, is_anonymous, created_at)"
            " SELECT gen_random_uuid(), :a, :b, 'n' || i, true, now() - i * interval '1 second'"
            " FROM generate_series(1, :n) AS i",
            a=alice["me"]["id"],
            b=bob["me"]["id"],
            n=LIVE_BATCH + 5,
        )
        rows = await both(app, bob, START)
        assert rows is not None and len(rows) == LIVE_BATCH
        assert rows[0]["content"] == f"n{LIVE_BATCH + 5}"  # oldest first


async def test_login_ended_when_revoked_banned_or_deleted(app: Starlette) -> None:
    async with running_app(app) as http:
        gql = GraphQLClient(http)
        u = {n: await registered_user(gql, n) for n in ("alice", "bob", "carol")}
        for login in u.values():
            assert await both(app, login, START) == []
        await sql(
            app,
            "UPDATE auth_sessions SET revoked_at = now() WHERE user_id = :a",
            a=u["alice"]["me"]["id"],
        )
        assert await both(app, u["alice"], START) is None
        await sql(app, "UPDATE users SET status = 'banned' WHERE id = :b", b=u["bob"]["me"]["id"])
        assert await both(app, u["bob"], START) is None
        await gql("mutation { deleteAccount { ok } }", token=u["carol"]["accessToken"])
        assert await both(app, u["carol"], START) is None
