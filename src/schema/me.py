"""The logged-in user's own view of their account."""

from __future__ import annotations

import strawberry

from src.models import User
from src.resolvers.users import get_viewer
from src.schema.context import Info


@strawberry.type(description="The logged-in user: everything of theirs.")
class Me:
    id: strawberry.ID = strawberry.field(description="The user's opaque id.")
    registered: bool = strawberry.field(
        description="True once `register` recorded consent and the basic profile."
    )
    phone: str | None = strawberry.field(description="The bound phone number in E.164 form.")
    has_wechat: bool = strawberry.field(description="True when a WeChat account is linked.")
    role: str = strawberry.field(description="user, moderator or admin.")

    @classmethod
    def of(cls, user: User) -> Me:
        return cls(
            id=strawberry.ID(str(user.id)),
            registered=user.registered_at is not None,
            phone=user.phone,
            has_wechat=user.wechat_openid is not None,
            role=user.role,
        )


@strawberry.type
class MeQuery:
    @strawberry.field(description="The logged-in user, or null when not logged in.")
    async def me(self, info: Info) -> Me | None:
        ctx = info.context
        user = await get_viewer(ctx.loaders, ctx.viewer_id)
        return Me.of(user) if user else None
