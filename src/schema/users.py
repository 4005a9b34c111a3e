"""Other users as the viewer may see them; browsing; blocking."""

from __future__ import annotations

import uuid

import strawberry

from src.auth.permissions import AUTHENTICATED
from src.resolvers import blocks, profiles
from src.resolvers.auth import rate_limit
from src.schema.common import OkPayload, PageInfo, UserError, run_mutation
from src.schema.context import Info
from src.schema.profiles import Profile
from src.schema.projects import ProjectConnection, project_connection


@strawberry.type(description="Another user as the viewer may see them.")
class User:
    uid: strawberry.Private[uuid.UUID]

    @strawberry.field(description="The user's opaque id.")
    def id(self) -> strawberry.ID:
        return strawberry.ID(str(self.uid))

    @strawberry.field(description="Their public profile.")
    async def profile(self, info: Info) -> Profile | None:
        row = await info.context.loaders.profile_by_user_id.load(self.uid)
        return Profile(row=row) if row else None

    @strawberry.field(description="Their projects, newest first.")
    async def projects(
        self, info: Info, first: int | None = 20, after: str | None = None
    ) -> ProjectConnection:
        return await project_connection(info, self.uid, first, after)

    @strawberry.field(description="True while they have a PRO membership.")
    async def is_pro(self, info: Info) -> bool:
        return await info.context.loaders.is_pro_by_user_id.load(self.uid)


@strawberry.type(description="A user and their cursor.")
class UserEdge:
    cursor: str = strawberry.field(description="Opaque position of this edge.")
    node: User = strawberry.field(description="The user.")


@strawberry.type(description="A page of users.")
class UserConnection:
    edges: list[UserEdge] = strawberry.field(description="The users of this page.")
    page_info: PageInfo = strawberry.field(description="Where this page ends.")


@strawberry.type
class UserQuery:
    @strawberry.field(
        description="A user by id; null when missing or not visible to you (hidden, blocked "
        "either way, banned, deleted, unregistered) — the same answer either way.",
        permission_classes=AUTHENTICATED,
    )
    async def user(self, info: Info, id: strawberry.ID) -> User | None:
        ctx = info.context
        viewer = await ctx.require_viewer()
        found = await profiles.visible_user(ctx.session, viewer.id, str(id))
        return User(uid=found) if found else None

    @strawberry.field(
        description="Browse the people you may see, most recently registered first.",
        permission_classes=AUTHENTICATED,
    )
    async def users(
        self, info: Info, first: int | None = 20, after: str | None = None
    ) -> UserConnection:
        ctx = info.context
        viewer = await ctx.require_viewer()
        await rate_limit(ctx.services, "feed:user", str(viewer.id))
        page = await profiles.browse_users(ctx.session, viewer.id, first=first, after=after)
        return UserConnection(
            edges=[UserEdge(cursor=c, node=User(uid=uid)) for c, uid in page.items],
            page_info=PageInfo.of(page),
        )


def _not_ok(errors: list[UserError]) -> OkPayload:
    return OkPayload(ok=False, errors=errors)


@strawberry.type
class BlockMutation:
    @strawberry.mutation(
        description="Block a user: each of you disappears for the other. Idempotent.",
        permission_classes=AUTHENTICATED,
    )
    async def block_user(self, info: Info, user_id: strawberry.ID) -> OkPayload:
        ctx = info.context
        viewer = await ctx.require_viewer()

        async def body() -> OkPayload:
            await blocks.block_user(ctx.session, viewer, str(user_id))
            return OkPayload(ok=True, errors=[])

        return await run_mutation(info, body, _not_ok)

    @strawberry.mutation(
        description="Lift your block. Idempotent.", permission_classes=AUTHENTICATED
    )
    async def unblock_user(self, info: Info, user_id: strawberry.ID) -> OkPayload:
        ctx = info.context
        viewer = await ctx.require_viewer()

        async def body() -> OkPayload:
            await blocks.unblock_user(ctx.session, viewer, str(user_id))
            return OkPayload(ok=True, errors=[])

        return await run_mutation(info, body, _not_ok)
