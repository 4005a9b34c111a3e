"""The account's lifecycle: register, bind a phone, export, delete."""

from __future__ import annotations

import orjson
import strawberry

from src.auth.permissions import AUTHENTICATED
from src.resolvers import account
from src.schema.common import OkPayload, UserError, run_mutation
from src.schema.context import Info
from src.schema.me import Me, MePayload, check_avatar
from src.schema.profiles import Gender


@strawberry.input(description="Consent to the privacy guide and the basic profile.")
class RegisterInput:
    accepted_policy_version: str = strawberry.field(
        description="The version of the privacy guide the user accepted."
    )
    nickname: str = strawberry.field(description="1 to 30 characters.")
    avatar_url: str | None = strawberry.field(default=None, description="An https:// URL.")
    gender: Gender | None = strawberry.field(default=None, description="Optional.")
    birth_date: str | None = strawberry.field(
        default=None, description="YYYY-MM-DD; never shown to others (they see an age)."
    )


@strawberry.type(description="Everything stored about the user.")
class ExportPayload:
    json: str | None = strawberry.field(default=None, description="The data, as a JSON document.")
    errors: list[UserError] = strawberry.field(default_factory=list, description="Failures.")


def _me_failed(errors: list[UserError]) -> MePayload:
    return MePayload(errors=errors)


@strawberry.type
class AccountMutation:
    @strawberry.mutation(
        description="Accept the privacy guide and set the basic profile. Until then the account "
        "cannot appear in discovery or send whispers.",
        permission_classes=AUTHENTICATED,
    )
    async def register(self, info: Info, input: RegisterInput) -> MePayload:
        ctx = info.context
        user = await ctx.require_viewer()
        data = account.Registration(
            accepted_policy_version=input.accepted_policy_version,
            nickname=input.nickname,
            avatar_url=input.avatar_url,
            gender=input.gender.value if input.gender else None,
            birth_date=input.birth_date,
        )

        async def body() -> MePayload:
            registered = await account.register(ctx.session, ctx.services, user, data)
            profile = await ctx.loaders.profile_by_user_id.load(user.id)
            if profile is not None and profile.avatar_url:
                check_avatar(ctx, user, profile.avatar_url)
            return MePayload(me=Me(row=registered))

        return await run_mutation(info, body, _me_failed)

    @strawberry.mutation(
        description="Bind the phone number behind a getPhoneNumber code to this account.",
        permission_classes=AUTHENTICATED,
    )
    async def bind_phone(self, info: Info, code: str) -> MePayload:
        ctx = info.context
        user = await ctx.require_viewer()

        async def body() -> MePayload:
            return MePayload(
                me=Me(row=await account.bind_phone(ctx.session, ctx.services, user, code))
            )

        return await run_mutation(info, body, _me_failed)

    @strawberry.mutation(
        description="Everything stored about you, as JSON (PIPL right of access).",
        permission_classes=AUTHENTICATED,
    )
    async def export_my_data(self, info: Info) -> ExportPayload:
        ctx = info.context
        user = await ctx.require_viewer()

        async def body() -> ExportPayload:
            data = await account.export_my_data(ctx.session, user, ctx.services.clock())
            return ExportPayload(json=orjson.dumps(data).decode())

        return await run_mutation(info, body, lambda errors: ExportPayload(errors=errors))

    @strawberry.mutation(
        description="Delete your account: personal data removed, every login ended at once.",
        permission_classes=AUTHENTICATED,
    )
    async def delete_account(self, info: Info) -> OkPayload:
        ctx = info.context
        user = await ctx.require_viewer()

        async def body() -> OkPayload:
            await account.delete_account(ctx.session, user, ctx.services.clock())
            return OkPayload(ok=True, errors=[])

        return await run_mutation(info, body, lambda errors: OkPayload(ok=False, errors=errors))
