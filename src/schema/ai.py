"""The AI workflows: chat, profile suggestions, and the viewer's AI sessions (metadata only)."""

from __future__ import annotations

from datetime import datetime

import strawberry

from src.auth.permissions import AUTHENTICATED
from src.models import AISession as AISessionRow
from src.resolvers import ai, ai_sessions
from src.resolvers.pagination import Page
from src.schema.common import PageInfo, UserError, run_mutation
from src.schema.context import Info


@strawberry.type(description="One AI request or conversation, as metadata: never its text.")
class AISession:
    row: strawberry.Private[AISessionRow]

    @strawberry.field(description="Opaque id; for a chat, the sessionId that continues it.")
    def id(self) -> strawberry.ID:
        return strawberry.ID(str(self.row.id))

    @strawberry.field(description="chat, search or suggestions.")
    def kind(self) -> str:
        return self.row.kind

    @strawberry.field(description="When it started.")
    def created_at(self) -> datetime:
        return self.row.created_at

    @strawberry.field(description="Time spent answering, in milliseconds (all turns of a chat).")
    def latency_ms(self) -> int:
        return self.row.latency_ms

    @strawberry.field(description="The model that answered; null when none was used.")
    def model(self) -> str | None:
        return self.row.model

    @strawberry.field(description="Tokens the model read (all turns of a chat).")
    def prompt_tokens(self) -> int:
        return self.row.prompt_tokens

    @strawberry.field(description="Tokens the model wrote (all turns of a chat).")
    def completion_tokens(self) -> int:
        return self.row.completion_tokens


@strawberry.type(description="An AI session and its cursor.")
class AISessionEdge:
    cursor: str = strawberry.field(description="Opaque position of this edge.")
    node: AISession = strawberry.field(description="The session.")


@strawberry.type(description="A page of AI sessions, newest first.")
class AISessionConnection:
    edges: list[AISessionEdge] = strawberry.field(description="The sessions of this page.")
    page_info: PageInfo = strawberry.field(description="Where this page ends.")

    @classmethod
    def of(cls, page: Page[AISessionRow]) -> AISessionConnection:
        return cls(
            edges=[AISessionEdge(cursor=c, node=AISession(row=r)) for c, r in page.items],
            page_info=PageInfo.of(page),
        )


@strawberry.type(description="One concrete improvement of one profile field.")
class ProfileSuggestion:
    field: str = strawberry.field(
        description="The field, as ProfileInput spells it (bio, interests, city, …), "
        "`projects` for a new project, or `projects[<id>].description` for one project."
    )
    suggestion: str = strawberry.field(description="What to change.")
    reason: str = strawberry.field(description="Why it helps.")
    model: str | None = strawberry.field(
        default=None, description="The language model that wrote it; null for the rules' own."
    )


@strawberry.type(description="The assistant's answer in a chat.")
class AIChatPayload:
    reply: str | None = strawberry.field(default=None, description="The answer.")
    session_id: strawberry.ID | None = strawberry.field(
        default=None, description="Pass it back to continue this conversation."
    )
    used_model: str | None = strawberry.field(
        default=None,
        description="The language model that wrote the reply; null when none was used (the "
        "reply then comes from search and rules, and says so).",
    )
    errors: list[UserError] = strawberry.field(default_factory=list, description="Failures.")


@strawberry.type
class AIQuery:
    @strawberry.field(
        description="Concrete, field-by-field improvements of your profile, from rules and, "
        "when configured, a language model (one AI request of the daily quota).",
        permission_classes=AUTHENTICATED,
    )
    async def profile_suggestions(self, info: Info) -> list[ProfileSuggestion]:
        ctx = info.context
        viewer = await ctx.require_viewer()
        answer = await ai.profile_suggestions(ctx.session, ctx.services, viewer)
        return [
            ProfileSuggestion(
                field=s.field, suggestion=s.suggestion, reason=s.reason, model=s.model
            )
            for s in answer.items
        ]

    @strawberry.field(
        description="Your AI requests and conversations, newest first: metadata only.",
        permission_classes=AUTHENTICATED,
    )
    async def ai_sessions(
        self, info: Info, first: int | None = 20, after: str | None = None
    ) -> AISessionConnection:
        ctx = info.context
        viewer = await ctx.require_viewer()
        page = await ai_sessions.list_sessions(ctx.session, viewer.id, first=first, after=after)
        return AISessionConnection.of(page)


@strawberry.type
class AIMutation:
    @strawberry.mutation(
        description="Talk with the assistant: it can search people, read your profile and "
        "suggest improvements. `sessionId` continues one of your conversations (kept 30 "
        "minutes after its last turn). One AI request of the daily quota per message.",
        permission_classes=AUTHENTICATED,
    )
    async def ai_chat(
        self, info: Info, message: str, session_id: strawberry.ID | None = None
    ) -> AIChatPayload:
        ctx = info.context
        viewer = await ctx.require_viewer()

        async def body() -> AIChatPayload:
            answer = await ai.chat(
                ctx.session,
                ctx.services,
                viewer,
                message=message,
                session_id=str(session_id) if session_id is not None else None,
            )
            return AIChatPayload(
                reply=answer.reply,
                session_id=strawberry.ID(str(answer.session_id)),
                used_model=answer.used_model,
            )

        return await run_mutation(info, body, lambda errors: AIChatPayload(errors=errors))
