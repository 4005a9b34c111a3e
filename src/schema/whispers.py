"""Whispers as the viewer may see them: the sender stays unknown until revealed."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import strawberry
from sqlalchemy import ColumnElement, FromClause, and_, case, exists, null, or_

from src.auth.permissions import AUTHENTICATED
from src.models import Whisper as WhisperRow
from src.models import rules
from src.resolvers import notify, whispers
from src.resolvers.pagination import Page
from src.resolvers.readplan import Lookup, Many, One, Scalar, Scope, Source
from src.resolvers.readplan.model import FieldSource, column, id_column, iso_datetime, iso_text
from src.schema.common import OkPayload, PageInfo, UserError, run_mutation
from src.schema.context import Info
from src.schema.users import User, user_or_none


@strawberry.type(description="A short message; anonymous until its sender reveals it.")
class Whisper:
    row: strawberry.Private[WhisperRow]
    viewer_id: strawberry.Private[uuid.UUID]

    @strawberry.field(description="Opaque id.")
    def id(self) -> strawberry.ID:
        return strawberry.ID(str(self.row.id))

    @strawberry.field(description="1 to 500 characters.")
    def content(self) -> str:
        return self.row.content

    @strawberry.field(description="When it was sent.")
    def created_at(self) -> datetime:
        return self.row.created_at

    @strawberry.field(
        description="When the recipient read it. Null for the writer of a reply to an "
        "anonymous, unrevealed whisper: that would tell whom it reached."
    )
    async def read_at(self, info: Info) -> datetime | None:
        original = await self._original(info)
        return whispers.read_at_visible(self.row, original, self.viewer_id)

    @strawberry.field(description="Sent anonymously.")
    def is_anonymous(self) -> bool:
        return self.row.is_anonymous

    @strawberry.field(description="When the sender revealed themselves.")
    def revealed_at(self) -> datetime | None:
        return self.row.revealed_at

    @strawberry.field(
        description="Null while the whisper is anonymous and unrevealed, for the recipient. "
        "Never leaks otherwise. Null too when the sender is hidden from you, as `user(id)`."
    )
    async def sender(self, info: Info) -> User | None:
        return await user_or_none(info, whispers.sender_visible(self.row, self.viewer_id))

    @strawberry.field(
        description="Null for the writer of a reply to an anonymous, unrevealed whisper: "
        "replying never reveals who it goes to. Null too when the recipient is hidden from "
        "you, as `user(id)`."
    )
    async def recipient(self, info: Info) -> User | None:
        original = await self._original(info)
        uid = whispers.recipient_visible(self.row, original, self.viewer_id)
        return await user_or_none(info, uid)

    @strawberry.field(description="True when the viewer wrote it.")
    def is_mine(self) -> bool:
        return self.row.sender_id == self.viewer_id

    @strawberry.field(description="The whisper this one answers, when the viewer took part in it.")
    async def reply_to(self, info: Info) -> Whisper | None:
        original = await self._original(info)
        if original is None or self.viewer_id not in (original.sender_id, original.recipient_id):
            return None
        return Whisper(row=original, viewer_id=self.viewer_id)

    async def _original(self, info: Info) -> WhisperRow | None:
        if self.row.reply_to_id is None:
            return None
        return await info.context.loaders.whisper_by_id.load(self.row.reply_to_id)


# Where a Whisper's fields live, for the compiled reads (src/resolvers/readplan): the same
# answers as whispers.sender_visible / recipient_visible / read_at_visible, in SQL over the
# rule book's sender_hidden; the people through the guarded User source, null when hidden.


def _sender_known(row: FromClause, scope: Scope) -> ColumnElement[Any]:
    """whispers.sender_visible: the viewer's own id for their whispers; null while anonymous
    and unrevealed (and for a deleted sender)."""
    return case(
        (row.c.sender_id == scope.viewer, row.c.sender_id),
        (rules.sender_hidden(whisper=row), null()),
        else_=row.c.sender_id,
    )


def _answers_hidden_sender(row: FromClause, scope: Scope) -> ColumnElement[bool]:
    """The whisper answers one whose sender the viewer does not know (sender_visible of the
    original is null): replying never reveals whom it goes to."""
    original = rules.WHISPERS.alias()
    unknown = or_(rules.sender_hidden(whisper=original), original.c.sender_id.is_(None))
    # Correlated by name: inside a person's subquery the whisper row is an outer query's.
    return (
        exists()
        .where(
            original.c.id == row.c.reply_to_id,
            original.c.sender_id.is_distinct_from(scope.viewer),
            unknown,
        )
        .correlate(row)
    )


def _recipient_known(row: FromClause, scope: Scope) -> ColumnElement[Any]:
    """whispers.recipient_visible."""
    return case(
        (row.c.recipient_id == scope.viewer, row.c.recipient_id),
        (_answers_hidden_sender(row, scope), null()),
        else_=row.c.recipient_id,
    )


def _read_at(row: FromClause, scope: Scope) -> ColumnElement[Any]:
    """whispers.read_at_visible."""
    hidden = and_(
        row.c.recipient_id.is_distinct_from(scope.viewer),
        _recipient_known(row, scope).is_(None),
    )
    return iso_text(case((hidden, null()), else_=row.c.read_at))


def _person(known: Any) -> One:
    """A person as `user_or_none` gives them: null when unknown or hidden from the viewer."""
    return One(
        "User (guarded)",
        lambda whisper, user, scope: and_(user.c.id == known(whisper, scope), user.c.shown),
    )


WHISPER_SOURCE = Source(
    table=rules.WHISPERS,
    fields={
        "id": id_column(),
        "content": column("content"),
        "createdAt": iso_datetime("created_at"),
        "readAt": Scalar(_read_at),
        "isAnonymous": column("is_anonymous"),
        "revealedAt": iso_datetime("revealed_at"),
        "sender": _person(_sender_known),
        "recipient": _person(_recipient_known),
        "isMine": Scalar(lambda row, scope: row.c.sender_id.is_not_distinct_from(scope.viewer)),
        "replyTo": One(
            "Whisper",
            lambda whisper, original, scope: and_(
                original.c.id == whisper.c.reply_to_id,
                or_(
                    original.c.sender_id == scope.viewer,
                    original.c.recipient_id == scope.viewer,
                ),
            ),
        ),
    },
)
WHISPER_ROOTS: dict[str, FieldSource] = {
    "whispersReceived": Many(
        "Whisper",
        lambda _, row, scope: row.c.recipient_id == scope.viewer,
        order=("created_at", "id"),
        rule=lambda row, scope: rules.shown_to_recipient(scope.viewer, whisper=row),
        flags={"unreadOnly": lambda row: row.c.read_at.is_(None)},
    ),
    "whispersSent": Many(
        "Whisper",
        lambda _, row, scope: row.c.sender_id == scope.viewer,
        order=("created_at", "id"),
    ),
    "whisper": Lookup(
        "Whisper",
        arg="id",
        key="id",
        rule=lambda row, scope: or_(
            row.c.sender_id == scope.viewer, rules.shown_to_recipient(scope.viewer, whisper=row)
        ),
        rows=lambda: rules.WHISPERS,
    ),
}


@strawberry.type(description="A whisper and its cursor.")
class WhisperEdge:
    cursor: str = strawberry.field(description="Opaque position of this edge.")
    node: Whisper = strawberry.field(description="The whisper.")


@strawberry.type(description="A page of whispers, newest first.")
class WhisperConnection:
    edges: list[WhisperEdge] = strawberry.field(description="The whispers of this page.")
    page_info: PageInfo = strawberry.field(description="Where this page ends.")

    @classmethod
    def of(cls, page: Page[WhisperRow], viewer_id: uuid.UUID) -> WhisperConnection:
        return cls(
            edges=[
                WhisperEdge(cursor=c, node=Whisper(row=w, viewer_id=viewer_id))
                for c, w in page.items
            ],
            page_info=PageInfo.of(page),
        )


@strawberry.input(description="A whisper to send.")
class SendWhisperInput:
    recipient_id: strawberry.ID | None = strawberry.field(
        default=None, description="Required unless replyToId is given."
    )
    content: str = strawberry.field(description="1 to 500 characters after trimming.")
    anonymous: bool = strawberry.field(default=True, description="Hide who sent it (default).")
    reply_to_id: strawberry.ID | None = strawberry.field(
        default=None,
        description="A whisper you received: reply to its sender without learning who it is.",
    )
    idempotency_key: str | None = strawberry.field(
        default=None,
        description="Optional client key: the same key twice returns the first result, never "
        "a second whisper.",
    )


@strawberry.type(description="A whisper after a change.")
class WhisperPayload:
    whisper: Whisper | None = strawberry.field(default=None, description="The whisper.")
    errors: list[UserError] = strawberry.field(default_factory=list, description="Failures.")


def _failed(errors: list[UserError]) -> WhisperPayload:
    return WhisperPayload(errors=errors)


@strawberry.type
class WhisperQuery:
    @strawberry.field(
        description="Whispers you received, newest first.", permission_classes=AUTHENTICATED
    )
    async def whispers_received(
        self,
        info: Info,
        unread_only: bool | None = False,
        first: int | None = 20,
        after: str | None = None,
    ) -> WhisperConnection:
        ctx = info.context
        viewer = await ctx.require_viewer()
        page = await whispers.received(
            ctx.session, viewer.id, unread_only=bool(unread_only), first=first, after=after
        )
        return WhisperConnection.of(page, viewer.id)

    @strawberry.field(
        description="Whispers you sent, newest first.", permission_classes=AUTHENTICATED
    )
    async def whispers_sent(
        self, info: Info, first: int | None = 20, after: str | None = None
    ) -> WhisperConnection:
        ctx = info.context
        viewer = await ctx.require_viewer()
        page = await whispers.sent(ctx.session, viewer.id, first=first, after=after)
        return WhisperConnection.of(page, viewer.id)

    @strawberry.field(
        description="A whisper you sent or received; null otherwise, as for a missing id.",
        permission_classes=AUTHENTICATED,
    )
    async def whisper(self, info: Info, id: strawberry.ID) -> Whisper | None:
        ctx = info.context
        viewer = await ctx.require_viewer()
        row = await whispers.visible_whisper(ctx.session, viewer.id, str(id))
        return Whisper(row=row, viewer_id=viewer.id) if row else None


@strawberry.type
class WhisperMutation:
    @strawberry.mutation(
        description="Send a whisper (anonymous by default), or reply to one you received.",
        permission_classes=AUTHENTICATED,
    )
    async def send_whisper(self, info: Info, input: SendWhisperInput) -> WhisperPayload:
        ctx = info.context
        viewer = await ctx.require_viewer()
        data = whispers.NewWhisper(
            content=input.content,
            anonymous=input.anonymous,
            recipient_id=str(input.recipient_id) if input.recipient_id is not None else None,
            reply_to_id=str(input.reply_to_id) if input.reply_to_id is not None else None,
            idempotency_key=input.idempotency_key,
        )

        async def body() -> WhisperPayload:
            row = await whispers.send_whisper(ctx.session, ctx.services, viewer, data)
            if notice := whispers.delivery_notice(ctx.services, row):
                ctx.after_commit.append(notice)
            return WhisperPayload(whisper=Whisper(row=row, viewer_id=viewer.id))

        return await run_mutation(info, body, _failed)

    @strawberry.mutation(
        description="Report one-time consents the user gave with wx.requestSubscribeMessage: "
        "each lets one notice reach them while they are offline.",
        permission_classes=AUTHENTICATED,
    )
    async def grant_subscribe_messages(self, info: Info, template_ids: list[str]) -> OkPayload:
        ctx = info.context
        viewer = await ctx.require_viewer()

        async def body() -> OkPayload:
            await notify.grant(ctx.session, ctx.services, viewer, template_ids)
            return OkPayload(ok=True, errors=[])

        return await run_mutation(info, body, lambda errors: OkPayload(ok=False, errors=errors))

    @strawberry.mutation(
        description="Reveal yourself as the sender.", permission_classes=AUTHENTICATED
    )
    async def reveal_whisper(self, info: Info, id: strawberry.ID) -> WhisperPayload:
        ctx = info.context
        viewer = await ctx.require_viewer()

        async def body() -> WhisperPayload:
            row = await whispers.reveal(ctx.session, ctx.services, viewer, str(id))
            return WhisperPayload(whisper=Whisper(row=row, viewer_id=viewer.id))

        return await run_mutation(info, body, _failed)

    @strawberry.mutation(
        description="Mark a whisper you received as read.", permission_classes=AUTHENTICATED
    )
    async def mark_whisper_read(self, info: Info, id: strawberry.ID) -> WhisperPayload:
        ctx = info.context
        viewer = await ctx.require_viewer()

        async def body() -> WhisperPayload:
            row = await whispers.mark_read(ctx.session, ctx.services, viewer, str(id))
            return WhisperPayload(whisper=Whisper(row=row, viewer_id=viewer.id))

        return await run_mutation(info, body, _failed)
