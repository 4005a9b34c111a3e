"""The logged-in user's own view of their account, and their profile edits."""

from __future__ import annotations

from typing import Any

import strawberry
from sqlalchemy import func, literal_column, select, true

from src.auth.permissions import AUTHENTICATED
from src.models import User, rules
from src.resolvers import media_checks, profiles, reports
from src.resolvers.errors import Unauthenticated
from src.resolvers.readplan import Lookup, Many, One, Scalar, Source
from src.resolvers.readplan.model import FieldSource, Inline, Rows, column, id_column
from src.resolvers.users import require_registered
from src.schema.common import UserError, run_mutation
from src.schema.context import Context, Info
from src.schema.plans import Membership, QuotaStatus, membership_of, quota_rows, quotas_of
from src.schema.profiles import Profile, ProfileInput
from src.schema.projects import ProjectConnection, project_connection
from src.schema.reports import ReportConnection, report_connection


@strawberry.type(description="The logged-in user: everything of theirs.")
class Me:
    row: strawberry.Private[User]

    @strawberry.field(description="The user's opaque id.")
    def id(self) -> strawberry.ID:
        return strawberry.ID(str(self.row.id))

    @strawberry.field(description="True once `register` recorded consent and the basic profile.")
    def registered(self) -> bool:
        return self.row.registered_at is not None

    @strawberry.field(description="The bound phone number in E.164 form (only you see it).")
    def phone(self) -> str | None:
        return self.row.phone

    @strawberry.field(description="True when a WeChat account is linked.")
    def has_wechat(self) -> bool:
        return self.row.wechat_openid is not None

    @strawberry.field(description="user, moderator or admin.")
    def role(self) -> str:
        return self.row.role

    @strawberry.field(description="Your profile, as others see it; null until you register.")
    async def profile(self, info: Info) -> Profile | None:
        row = await info.context.loaders.profile_by_user_id.load(self.row.id)
        return Profile(row=row) if row else None

    @strawberry.field(description="Your exact birth date, YYYY-MM-DD (only you see it).")
    async def birth_date(self, info: Info) -> str | None:
        row = await info.context.loaders.profile_by_user_id.load(self.row.id)
        return row.birth_date.isoformat() if row and row.birth_date else None

    @strawberry.field(description="Your plan now.")
    async def membership(self, info: Info) -> Membership:
        return await membership_of(info, self.row.id)

    @strawberry.field(description="Today's use of every daily quota.")
    async def quotas(self, info: Info) -> list[QuotaStatus]:
        return await quotas_of(info, self.row.id)

    @strawberry.field(description="Your projects, newest first.")
    async def projects(
        self, info: Info, first: int | None = 20, after: str | None = None
    ) -> ProjectConnection:
        return await project_connection(info, self.row.id, first, after)

    @strawberry.field(description="Reports you made, newest first, with their status and decision.")
    async def reports(
        self, info: Info, first: int | None = 20, after: str | None = None
    ) -> ReportConnection:
        page = await reports.own_reports_page(
            info.context.session, self.row.id, first=first, after=after
        )
        return report_connection(page, for_moderator=False)


def _birth_date(row: Any, _: Any) -> Any:
    """The viewer's birth date from their profile row, YYYY-MM-DD (date.isoformat)."""
    profile = rules.PROFILES.alias()
    shown = func.to_char(profile.c.birth_date, literal_column("'YYYY-MM-DD'"))
    return select(shown).where(profile.c.user_id == row.c.id).scalar_subquery()


# Where Me's fields live, for the compiled reads (src/resolvers/readplan). The reports are not
# declared yet (report_connection shapes them in Python): a `me` asking them is interpreted.
ME_SOURCE = Source(
    table=rules.USERS,
    fields={
        "id": id_column(),
        "registered": Scalar(lambda row, _: rules.registered(user=row)),
        "phone": column("phone"),
        "hasWechat": Scalar(lambda row, _: row.c.wechat_openid.is_not(None)),
        "role": column("role"),
        "profile": One("Profile", lambda user, profile, _: profile.c.user_id == user.c.id),
        "birthDate": Scalar(_birth_date),
        "membership": Inline("Membership"),
        "quotas": Rows("QuotaStatus", quota_rows, order=("n",)),
        "projects": Many(
            "Project",
            # A nested connection always has its parent row (None is for root connections).
            lambda user, project, _: project.c.user_id == user.c.id,  # type: ignore[union-attr]
            order=("created_at", "id"),
            walk=False,  # no rule: ix_user_projects_user_id_created_at in one scan
        ),
    },
)
# `me`: the viewer's own row (the statement has already checked their login).
ME_ROOTS: dict[str, FieldSource] = {
    "me": Lookup("Me", arg=None, key="id", rule=lambda _, __: true(), rows=lambda: rules.USERS)
}


@strawberry.type(description="The logged-in user after a change.")
class MePayload:
    me: Me | None = strawberry.field(default=None, description="The user, changed.")
    errors: list[UserError] = strawberry.field(default_factory=list, description="Failures.")


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
        return Me(row=user) if user else None


def check_avatar(ctx: Context, user: User, url: str) -> None:
    """After commit, send a new avatar to WeChat's image check (when configured)."""
    services, user_id, openid = ctx.services, user.id, user.wechat_openid
    ctx.after_commit.append(
        lambda: media_checks.check_avatar(services, user_id=user_id, openid=openid, url=url)
    )


@strawberry.type
class MeMutation:
    @strawberry.mutation(description="Change your profile.", permission_classes=AUTHENTICATED)
    async def update_profile(self, info: Info, input: ProfileInput) -> MePayload:
        ctx = info.context
        user = await ctx.require_viewer()

        async def body() -> MePayload:
            require_registered(user)
            before = await ctx.loaders.profile_by_user_id.load(user.id)
            old_avatar = before.avatar_url if before else None
            profile = await profiles.update_profile(
                ctx.session, ctx.services, user, input.changes()
            )
            ctx.loaders.profile_by_user_id.clear(user.id).prime(user.id, profile)
            if profile.avatar_url and profile.avatar_url != old_avatar:
                check_avatar(ctx, user, profile.avatar_url)
            return MePayload(me=Me(row=user))

        return await run_mutation(info, body, lambda errors: MePayload(errors=errors))
