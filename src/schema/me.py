"""The logged-in user's own view of their account."""

from __future__ import annotations

import strawberry

from src.models import User
from src.resolvers.errors import Unauthenticated
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
        if ctx.auth_problem:
            # A refused token is not "logged out": tell the client to refresh it.
            raise Unauthenticated(ctx.auth_problem)
        user = await ctx.viewer()
        if user is None and ctx.claims is not None:
            # A valid token whose login was revoked, or whose account was banned or deleted.
            raise Unauthenticated("This login has ended; log in again.")
        return Me.of(user) if user else None
