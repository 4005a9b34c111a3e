"""Swipes and matches."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import Enum

import strawberry
from sqlalchemy import and_, case, or_

from src.auth.permissions import AUTHENTICATED
from src.models import UserMatch
from src.resolvers import matches
from src.resolvers.readplan import Many, One, Source
from src.resolvers.readplan.model import FieldSource, id_column, iso_datetime
from src.schema.common import OkPayload, PageInfo, UserError, run_mutation
from src.schema.context import Info
from src.schema.users import User


@strawberry.enum(description="What a swipe says.")
class SwipeAction(Enum):
    LIKE = "LIKE"
    PASS = "PASS"  # noqa: S105 - a swipe, not a password
    SUPER_LIKE = "SUPER_LIKE"


@strawberry.type(description="Two people who liked each other.")
class Match:
    row: strawberry.Private[UserMatch]
    viewer_id: strawberry.Private[uuid.UUID]

    @strawberry.field(description="Opaque id.")
    def id(self) -> strawberry.ID:
        return strawberry.ID(str(self.row.id))

    @strawberry.field(description="The other person.")
    def user(self) -> User:
        return User(uid=matches.other(self.row, self.viewer_id))

    @strawberry.field(description="When the second like made it.")
    def created_at(self) -> datetime:
        return self.row.created_at


# Where a Match's fields live, for the compiled reads (src/resolvers/readplan). The other
# person may be hidden from the viewer: the guarded User source answers as User does.
MATCH_SOURCE = Source(
    table=UserMatch.__table__,  # type: ignore[attr-defined]  # SQLModel sets it
    fields={
        "id": id_column(),
        "user": One(
            "User (guarded)",
            lambda match, user, scope: (
                user.c.id
                == case(
                    (match.c.user_a_id == scope.viewer, match.c.user_b_id), else_=match.c.user_a_id
                )
            ),
        ),
        "createdAt": iso_datetime("created_at"),
    },
)
# `matches`: the viewer's live matches, newest first (matches._live_for).
MATCH_ROOTS: dict[str, FieldSource] = {
    "matches": Many(
        "Match",
        lambda _, match, scope: and_(
            or_(match.c.user_a_id == scope.viewer, match.c.user_b_id == scope.viewer),
            match.c.ended_at.is_(None),
        ),
        order=("created_at", "id"),
    )
}


@strawberry.type(description="A match and its cursor.")
class MatchEdge:
    cursor: str = strawberry.field(description="Opaque position of this edge.")
    node: Match = strawberry.field(description="The match.")


@strawberry.type(description="A page of matches, newest first.")
class MatchConnection:
    edges: list[MatchEdge] = strawberry.field(description="The matches of this page.")
    page_info: PageInfo = strawberry.field(description="Where this page ends.")


@strawberry.type(description="The result of a swipe.")
class SwipePayload:
    match: Match | None = strawberry.field(
        default=None, description="The match this swipe made, if it made one."
    )
    errors: list[UserError] = strawberry.field(default_factory=list, description="Failures.")


@strawberry.type
class MatchQuery:
    @strawberry.field(description="Your matches, newest first.", permission_classes=AUTHENTICATED)
    async def matches(
        self, info: Info, first: int | None = 20, after: str | None = None
    ) -> MatchConnection:
        ctx = info.context
        viewer = await ctx.require_viewer()
        page = await matches.matches(ctx.session, viewer.id, first=first, after=after)
        return MatchConnection(
            edges=[
                MatchEdge(cursor=c, node=Match(row=m, viewer_id=viewer.id)) for c, m in page.items
            ],
            page_info=PageInfo.of(page),
        )


@strawberry.type
class MatchMutation:
    @strawberry.mutation(
        description="Like, pass or super-like someone; two likes make a match.",
        permission_classes=AUTHENTICATED,
    )
    async def swipe(
        self, info: Info, target_user_id: strawberry.ID, action: SwipeAction
    ) -> SwipePayload:
        ctx = info.context
        viewer = await ctx.require_viewer()

        async def body() -> SwipePayload:
            made = await matches.swipe(
                ctx.session, ctx.services, viewer, str(target_user_id), action.value
            )
            return SwipePayload(match=Match(row=made, viewer_id=viewer.id) if made else None)

        return await run_mutation(info, body, lambda errors: SwipePayload(errors=errors))

    @strawberry.mutation(description="End a match.", permission_classes=AUTHENTICATED)
    async def unmatch(self, info: Info, match_id: strawberry.ID) -> OkPayload:
        ctx = info.context
        viewer = await ctx.require_viewer()

        async def body() -> OkPayload:
            await matches.unmatch(ctx.session, ctx.services, viewer, str(match_id))
            return OkPayload(ok=True, errors=[])

        return await run_mutation(info, body, lambda errors: OkPayload(ok=False, errors=errors))
