"""Other users as the viewer may see them; browsing; blocking."""

from __future__ import annotations

import uuid
from typing import Any

import strawberry
from sqlalchemy import (
    ColumnElement,
    FromClause,
    Select,
    and_,
    false,
    func,
    literal_column,
    or_,
    select,
    true,
)

from src.auth.permissions import AUTHENTICATED
from src.models import rules
from src.resolvers import blocks, profiles
from src.resolvers.auth import rate_limit
from src.resolvers.pagination import check_first
from src.resolvers.readplan import Lookup, Many, One, Scalar, Scope, Source
from src.resolvers.readplan.model import FieldSource, id_column
from src.schema.common import OkPayload, PageInfo, UserError, run_mutation
from src.schema.context import Info
from src.schema.profiles import Profile
from src.schema.projects import ProjectConnection, project_connection


async def shown(info: Info, uid: uuid.UUID) -> bool:
    """Whether the viewer may see this person (`rules.visible_to`): the one rule for every
    path that reaches a `User` — whisper senders and recipients, matches, reports, discovery."""
    claims = info.context.claims
    if claims is None:
        return False
    if uid == claims.user_id:
        return True
    return await info.context.loaders.visible_by_viewer_and_user.load((claims.user_id, uid))


def seen(info: Info, uid: uuid.UUID) -> User:
    """A person a resolver has just found visible (user(id), the feed, discovery): remembered
    so that their fields do not ask again."""
    claims = info.context.claims
    if claims is not None:
        info.context.loaders.visible_by_viewer_and_user.prime((claims.user_id, uid), True)
    return User(uid=uid)


async def user_or_none(info: Info, uid: uuid.UUID | None) -> User | None:
    """A nullable path to a person: null when missing or hidden from the viewer, exactly as
    `user(id)` answers."""
    if uid is None or not await shown(info, uid):
        return None
    return User(uid=uid)


@strawberry.type(
    description="Another user as the viewer may see them. Someone hidden from the viewer "
    "(they blocked the viewer or were blocked, hid their profile, are held for review, banned or "
    "deleted) shows only an id, where a user must be given at all: no profile, no projects, "
    "isPro false."
)
class User:
    uid: strawberry.Private[uuid.UUID]
    # Moderators judging a report see the people in it whatever their visibility.
    unrestricted: strawberry.Private[bool] = False

    async def _shown(self, info: Info) -> bool:
        return self.unrestricted or await shown(info, self.uid)

    @strawberry.field(description="The user's opaque id.")
    def id(self) -> strawberry.ID:
        return strawberry.ID(str(self.uid))

    @strawberry.field(description="Their public profile; null when they are hidden from you.")
    async def profile(self, info: Info) -> Profile | None:
        if not await self._shown(info):
            return None
        row = await info.context.loaders.profile_by_user_id.load(self.uid)
        return Profile(row=row) if row else None

    @strawberry.field(description="Their projects, newest first; none when they are hidden.")
    async def projects(
        self, info: Info, first: int | None = 20, after: str | None = None
    ) -> ProjectConnection:
        if not await self._shown(info):
            check_first(first)
            return ProjectConnection(
                edges=[], page_info=PageInfo(has_next_page=False, end_cursor=None)
            )
        return await project_connection(info, self.uid, first, after)

    @strawberry.field(description="True while they have a PRO membership (false when hidden).")
    async def is_pro(self, info: Info) -> bool:
        if not await self._shown(info):
            return False
        return await info.context.loaders.is_pro_by_user_id.load(self.uid)


# Where a User's fields live, for the compiled reads (src/resolvers/readplan). Every compiled
# path to a User finds it through `rules.visible_to` (below), so its fields are those of a
# shown person.
USER_SOURCE = Source(
    table=rules.USERS,
    fields={
        "id": id_column(),
        "isPro": Scalar(lambda row, scope: rules.is_pro(row.c.id, scope.now)),
        "profile": One("Profile", lambda user, profile, _: profile.c.user_id == user.c.id),
        "projects": Many(
            "Project",
            # A nested connection always has its parent row (None is for root connections).
            lambda user, project, _: project.c.user_id == user.c.id,  # type: ignore[union-attr]
            order=("created_at", "id"),
            walk=False,  # no rule: ix_user_projects_user_id_created_at in one scan
        ),
    },
)


def _with_shown(scope: Scope) -> Select[Any]:
    """Users with a column `shown`: whether the viewer may see them (`rules.visible_to`,
    over their profile read by key; everyone sees themselves)."""
    user = rules.USERS
    profile = (
        select(rules.PROFILES)
        .where(rules.PROFILES.c.user_id == user.c.id)
        .offset(literal_column("0"))
        .lateral()
    )
    visible = rules.visible_to(scope.viewer, user=user, profile=profile)
    shown = or_(user.c.id == scope.viewer, func.coalesce(visible, false()))
    return select(*user.c, shown.label("shown")).select_from(user.outerjoin(profile, true()))


def _if_shown(then: Any) -> Any:
    return lambda row, scope: and_(row.c.shown, then(row, scope))


# A User reached where the viewer may not see them (the other person of a match): only
# the id when hidden — no profile, no projects, isPro false — as the User type answers.
GUARDED_USER_SOURCE = Source(
    table=rules.USERS,
    rows=_with_shown,
    fields={
        "id": id_column(),
        "isPro": Scalar(_if_shown(lambda row, scope: rules.is_pro(row.c.id, scope.now))),
        "profile": One(
            "Profile",
            lambda user, profile, _: and_(user.c.shown, profile.c.user_id == user.c.id),
        ),
        "projects": Many(
            "Project",
            # A nested connection always has its parent row (None is for root connections).
            lambda user, project, _: and_(
                user.c.shown,  # type: ignore[union-attr]
                project.c.user_id == user.c.id,  # type: ignore[union-attr]
            ),
            order=("created_at", "id"),
            walk=False,  # no rule: ix_user_projects_user_id_created_at in one scan
        ),
    },
)
# The people a viewer may see, joined with the profile the rule reads.
_PEOPLE = rules.USERS.join(rules.PROFILES, rules.PROFILES.c.user_id == rules.USERS.c.id)


def _others_visible(user: FromClause, scope: Scope) -> ColumnElement[bool]:
    """The feed's rule on one walked row: someone else whom the viewer may see. Their profile
    is read by primary key per row (LATERAL ... OFFSET 0 keeps PostgreSQL from turning it
    into a join whose method would depend on table statistics)."""
    profile = (
        select(rules.PROFILES)
        .where(rules.PROFILES.c.user_id == user.c.id)
        .offset(literal_column("0"))
        .lateral()
    )
    visible = rules.visible_to(scope.viewer, user=user, profile=profile)
    return and_(user.c.id != scope.viewer, visible)


# The compiled root fields of UserQuery.
USER_ROOTS: dict[str, FieldSource] = {
    "user": Lookup(
        "User",
        arg="id",
        key="id",
        rule=lambda user, scope: rules.visible_to(scope.viewer, user=user),
        rows=lambda: _PEOPLE,
    ),
    "users": Many(
        "User",
        # ix_users_registered_at_id holds exactly the active, registered users.
        lambda _, user, __: and_(rules.active(user=user), rules.registered(user=user)),
        order=("registered_at", "id"),
        rule=lambda user, scope: _others_visible(user, scope),
        rate_limit="feed:user",
    ),
}


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
        return seen(info, found) if found else None

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
            edges=[UserEdge(cursor=c, node=seen(info, uid)) for c, uid in page.items],
            page_info=PageInfo.of(page),
        )


def _not_ok(errors: list[UserError]) -> OkPayload:
    return OkPayload(ok=False, errors=errors)


@strawberry.type
class BlockMutation:
    @strawberry.mutation(
        description="Block a user: each of you disappears for the other, and neither can "
        "whisper the other. Anonymous whispers you already received stay. Idempotent; rate "
        "limited.",
        permission_classes=AUTHENTICATED,
    )
    async def block_user(self, info: Info, user_id: strawberry.ID) -> OkPayload:
        ctx = info.context
        viewer = await ctx.require_viewer()

        async def body() -> OkPayload:
            await blocks.block_user(ctx.session, ctx.services, viewer, str(user_id))
            return OkPayload(ok=True, errors=[])

        return await run_mutation(info, body, _not_ok)

    @strawberry.mutation(
        description="Lift your block. Idempotent; rate limited.", permission_classes=AUTHENTICATED
    )
    async def unblock_user(self, info: Info, user_id: strawberry.ID) -> OkPayload:
        ctx = info.context
        viewer = await ctx.require_viewer()

        async def body() -> OkPayload:
            await blocks.unblock_user(ctx.session, ctx.services, viewer, str(user_id))
            return OkPayload(ok=True, errors=[])

        return await run_mutation(info, body, _not_ok)

    @strawberry.mutation(
        description="Block the sender of a whisper you received without learning who it is: "
        "they can no longer whisper you, and nothing else changes for you. Idempotent; rate "
        "limited. NOT_FOUND for a whisper you did not receive.",
        permission_classes=AUTHENTICATED,
    )
    async def block_whisper_sender(self, info: Info, whisper_id: strawberry.ID) -> OkPayload:
        ctx = info.context
        viewer = await ctx.require_viewer()

        async def body() -> OkPayload:
            await blocks.block_whisper_sender(ctx.session, ctx.services, viewer, str(whisper_id))
            return OkPayload(ok=True, errors=[])

        return await run_mutation(info, body, _not_ok)
