"""The MCP server: the AI workflows and whispers as tools, the viewer's profile and the GraphQL
schema as resources, reusable prompts. Tools are thin adapters over `src/resolvers`: each runs
as the authenticated user, in its own transaction, with the same checks as GraphQL.

A tool's input schema is the truth about it: arguments are camelCase like the GraphQL API's
(`userId`, `recipientId`), each carries its own description, an argument the schema does not
have is refused (the SDK would drop it silently, and `get_profile {user_id}` answered with the
caller's own profile), and results use camelCase keys throughout. Descriptions name arguments
in backticks; tests/test_mcp_schemas.py checks each name against the schema."""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from dataclasses import asdict
from datetime import date
from typing import Annotated, Any, Literal

import orjson
from mcp.server import MCPServer
from mcp.server.auth.settings import AuthSettings
from mcp.server.mcpserver.exceptions import ResourceError, ToolError
from mcp.shared.exceptions import MCPError
from mcp_types import INVALID_PARAMS, Tool
from pydantic import Field
from sqlmodel.ext.asyncio.session import AsyncSession

from src.ai import prompts
from src.mcp_server.viewer import (
    Identity,
    JwtVerifier,
    Later,
    ServicesRef,
    as_viewer,
    current_identity,
    plain,
)
from src.models import User, UserProfile, Whisper
from src.resolvers import ai, discovery, whispers
from src.resolvers.ai_data import people_cards, profile_facts
from src.resolvers.calendar import local_day
from src.resolvers.errors import NotFound
from src.resolvers.profiles import visible_ids, visible_user

INSTRUCTIONS = (
    "qiaoqiao (悄悄): people discover each other and send short whispers, anonymous unless the "
    "sender reveals. Tools act as the logged-in user. search_users and "
    "suggest_profile_improvements each use one AI request of the user's daily quota; "
    "send_whisper uses a whisper."
)
PROFILE_URI = "qiaoqiao://me/profile"
SCHEMA_URI = "qiaoqiao://schema.graphql"


def _prompt_error(message: str) -> Exception:
    return MCPError(INVALID_PARAMS, message)


class StrictMCPServer(MCPServer):
    """Tools refuse arguments their input schema does not have, and say so in the schema
    (`additionalProperties: false`)."""

    async def list_tools(self) -> list[Tool]:
        tools = await super().list_tools()
        return [
            tool.model_copy(
                update={"input_schema": {**tool.input_schema, "additionalProperties": False}}
            )
            for tool in tools
        ]

    async def call_tool(
        self, name: str, arguments: dict[str, Any], *args: Any, **kwargs: Any
    ) -> Any:
        schema = self._tool_input_schema(name)
        if schema is not None:
            known = schema.get("properties", {})
            unknown = sorted(set(arguments) - set(known))
            if unknown:
                takes = ", ".join(known) or "no arguments"
                raise ToolError(
                    f"Error executing tool {name}: INVALID_INPUT: unknown argument(s) "
                    f"{', '.join(unknown)}; {name} takes: {takes}."
                )
        return await super().call_tool(name, arguments, *args, **kwargs)


_SNAKE = re.compile(r"_([a-z0-9])")


def camel_keys(value: Any) -> Any:
    """Results in the GraphQL API's casing: `avatar_url` becomes `avatarUrl`."""
    if isinstance(value, dict):
        return {
            _SNAKE.sub(lambda m: m.group(1).upper(), k): camel_keys(v) for k, v in value.items()
        }
    if isinstance(value, list):
        return [camel_keys(v) for v in value]
    return value


UserId = Annotated[
    str | None,
    Field(description="A user's id (User.id in GraphQL); leave it out for yourself."),
]


def build_mcp_server(
    services: ServicesRef, *, sdl: Mapping[str, str], stdio_identity: Identity | None = None
) -> MCPServer:
    """Over HTTP (`stdio_identity` None) every request needs a bearer access token; over stdio
    the calls act for `stdio_identity`. `sdl`: the schema each role may call, by role."""
    http = stdio_identity is None
    server: MCPServer = StrictMCPServer(
        "qiaoqiao",
        instructions=INSTRUCTIONS,
        token_verifier=JwtVerifier(services) if http else None,
        # We issue the tokens ourselves (wechatLogin / smsLogin): no OAuth metadata to publish.
        auth=AuthSettings(issuer_url="https://qiaoqiao.invalid", resource_server_url=None)
        if http
        else None,
    )

    async def run(work: Any, error: Any = ToolError) -> Any:
        return await as_viewer(services(), current_identity(stdio_identity), work, error=error)

    @server.tool(
        description="Find people by a natural-language description in `query` (Chinese or "
        "English), optionally in one `city`. Returns up to `first` public profiles, best match "
        "first, and whether the answer is degraded (true when the search index could not "
        "answer and a simpler ranking did). Uses one AI request of the daily quota."
    )
    async def search_users(
        query: Annotated[
            str, Field(description="Who you look for, e.g. 喜欢徒步的产品经理 or 'a designer'.")
        ],
        city: Annotated[str | None, Field(description="Only people in this city.")] = None,
        first: Annotated[int, Field(ge=1, le=100, description="How many people, 1 to 100.")] = 10,
    ) -> dict[str, Any]:
        async def work(session: AsyncSession, viewer: User, later: Later) -> Any:
            criteria = discovery.Criteria(city=city or None)
            people, degraded = await ai.search_people(
                session,
                services(),
                viewer,
                query,
                criteria=criteria,
                first=first,
                metered=True,
            )
            # Degraded: ranked from PostgreSQL (the index is down, behind, or held by a server
            # process beside this one), so the answer may differ from the server's.
            return {"people": people, "degraded": degraded}

        return await run(work)

    @server.tool(
        description="A profile: your own (without `userId`; it includes your private fields) "
        "or the public profile of the person `userId` names, if you may see them."
    )
    async def get_profile(userId: UserId = None) -> dict[str, Any]:
        async def work(session: AsyncSession, viewer: User, later: Later) -> Any:
            if userId is None or userId == str(viewer.id):
                today = local_day(services().clock())
                return {"id": str(viewer.id), **(await _own_profile(session, viewer, today))}
            found = await visible_user(session, viewer.id, userId)
            today = local_day(services().clock())
            cards = await people_cards(session, viewer.id, [found] if found else [], today)
            if not cards:
                raise NotFound("No such user.", field="userId")
            return cards[0]

        return await run(work)

    @server.tool(
        description="Concrete, field-by-field improvements of your profile, from rules and, "
        "when configured, a language model. Uses one AI request of the daily quota."
    )
    async def suggest_profile_improvements() -> dict[str, Any]:
        async def work(session: AsyncSession, viewer: User, later: Later) -> Any:
            answer = await ai.profile_suggestions(session, services(), viewer)
            return {
                "suggestions": [asdict(s) for s in answer.items],
                "usedModel": answer.used_model,
            }

        return await run(work)

    @server.tool(
        description="Send a whisper of `content` to `recipientId` — or reply to a whisper you "
        "received with `replyToId`, without learning who sent it. Anonymous unless `anonymous` "
        "is false; an `idempotencyKey` makes retrying safe. Uses one whisper of the daily quota; "
        "the text passes the content check."
    )
    async def send_whisper(
        content: Annotated[str, Field(description="The text, 1 to 500 characters.")],
        recipientId: Annotated[
            str | None,
            Field(description="Who receives it (a user id); required unless `replyToId` is given."),
        ] = None,
        replyToId: Annotated[
            str | None,
            Field(description="A whisper you received: the reply goes to its sender."),
        ] = None,
        anonymous: Annotated[
            bool, Field(description="Hide who you are until you reveal it (default true).")
        ] = True,
        idempotencyKey: Annotated[
            str | None,
            Field(description="The same key twice returns the first whisper, never a second."),
        ] = None,
    ) -> dict[str, Any]:
        data = whispers.NewWhisper(
            content=content,
            anonymous=anonymous,
            recipient_id=recipientId,
            reply_to_id=replyToId,
            idempotency_key=idempotencyKey,
        )

        async def work(session: AsyncSession, viewer: User, later: Later) -> Any:
            row = await whispers.send_whisper(session, services(), viewer, data)
            if notice := whispers.delivery_notice(services(), row):
                later.append(notice)
            (view,) = await _whisper_views(session, [row], viewer.id)
            return view

        return await run(work)

    @server.tool(
        description='Your whispers, newest first, `first` at a time: `box` "received" '
        '(only unread ones with `unreadOnly`) or "sent"; `after` takes the previous page\'s '
        "endCursor. The sender of an anonymous whisper you received stays hidden until revealed."
    )
    async def list_whispers(
        box: Annotated[
            Literal["received", "sent"], Field(description="Whispers received or sent.")
        ] = "received",
        unreadOnly: Annotated[
            bool, Field(description="Received whispers not yet marked read only.")
        ] = False,
        first: Annotated[int, Field(ge=1, le=100, description="Page size, 1 to 100.")] = 20,
        after: Annotated[
            str | None, Field(description="The endCursor of the page before (a cursor).")
        ] = None,
    ) -> dict[str, Any]:
        async def work(session: AsyncSession, viewer: User, later: Later) -> Any:
            if box == "sent":
                page = await whispers.sent(session, viewer.id, first=first, after=after)
            else:
                page = await whispers.received(
                    session, viewer.id, unread_only=unreadOnly, first=first, after=after
                )
            return {
                "whispers": await _whisper_views(session, [w for _, w in page.items], viewer.id),
                "hasNextPage": page.has_next,
                "endCursor": page.end_cursor,
            }

        return await run(work)

    @server.resource(
        PROFILE_URI,
        name="my-profile",
        description="Your profile, as you see it.",
        mime_type="application/json",
    )
    async def my_profile() -> str:
        async def work(session: AsyncSession, viewer: User, later: Later) -> Any:
            today = local_day(services().clock())
            return {"id": str(viewer.id), **(await _own_profile(session, viewer, today))}

        return orjson.dumps(await run(work, ResourceError)).decode()

    @server.resource(
        SCHEMA_URI,
        name="graphql-schema",
        description="The GraphQL API's schema (SDL), as far as you may call it.",
        mime_type="application/graphql",
    )
    async def graphql_schema() -> str:
        async def work(session: AsyncSession, viewer: User, later: Later) -> Any:
            return sdl.get(viewer.role, sdl["user"])

        return await run(work, ResourceError)

    @server.prompt(
        name="icebreaker",
        description="Draft a first whisper to the person `userId` names, built on their public "
        "profile and yours.",
    )
    async def icebreaker(
        userId: Annotated[str, Field(description="Who the whisper is for (a user id).")],
    ) -> str:
        async def work(session: AsyncSession, viewer: User, later: Later) -> Any:
            found = await visible_user(session, viewer.id, userId)
            today = local_day(services().clock())
            cards = await people_cards(session, viewer.id, [found] if found else [], today)
            if not cards:
                raise NotFound("No such user.", field="userId")
            facts = await profile_facts(session, viewer.id, today)
            return prompts.icebreaker(facts, cards[0])

        return await run(work, _prompt_error)

    @server.prompt(
        name="profile_review",
        description="Review your profile field by field, starting from the rules' findings.",
    )
    async def profile_review() -> str:
        async def work(session: AsyncSession, viewer: User, later: Later) -> Any:
            today = local_day(services().clock())
            facts = await profile_facts(session, viewer.id, today)
            found = await ai.rule_suggestions(session, viewer, today)
            return prompts.profile_review(facts, found)

        return await run(work, _prompt_error)

    return server


async def _own_profile(session: AsyncSession, viewer: User, today: date) -> dict[str, Any]:
    facts = await profile_facts(session, viewer.id, today)
    row = await session.get(UserProfile, viewer.id)
    data = facts.as_dict()
    data.pop("has_birth_date", None)
    data["birthDate"] = row.birth_date.isoformat() if row and row.birth_date else None
    data["discoverable"] = bool(row and row.visibility == "discoverable")
    return camel_keys(data)


async def _whisper_views(
    session: AsyncSession, rows: list[Whisper], viewer_id: uuid.UUID
) -> list[dict[str, Any]]:
    """Whispers as `viewer_id` may see them (the GraphQL `Whisper` rules, decided in SQL by
    `whispers.whisper_views`): a sender or recipient hidden from the viewer is null, as
    `user(id)` would be."""
    views = await whispers.whisper_views(session, viewer_id, [row.id for row in rows])
    originals = [await session.get(Whisper, row.reply_to_id) for row in rows if row.reply_to_id]
    took_part = {w.id for w in originals if w and viewer_id in (w.sender_id, w.recipient_id)}
    people = [
        u
        for view in views.values()
        for u in (view.sender_id, view.recipient_id)
        if u is not None and u != viewer_id
    ]
    shown = {viewer_id, *await visible_ids(session, viewer_id, people)}
    out = []
    for row in rows:
        view = views[row.id]
        out.append(
            plain(
                {
                    "id": row.id,
                    "content": row.content,
                    "createdAt": row.created_at,
                    "readAt": view.read_at,
                    "isAnonymous": row.is_anonymous,
                    "revealedAt": row.revealed_at,
                    "senderId": view.sender_id if view.sender_id in shown else None,
                    "recipientId": view.recipient_id if view.recipient_id in shown else None,
                    "isMine": row.sender_id == viewer_id,
                    "replyToId": row.reply_to_id if row.reply_to_id in took_part else None,
                }
            )
        )
    return out
