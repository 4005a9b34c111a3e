"""Logging in and out."""

from __future__ import annotations

import strawberry

from src.resolvers import auth
from src.schema.common import OkPayload, UserError, run_mutation
from src.schema.context import Info
from src.schema.me import Me


@strawberry.type(description="Tokens of a new or refreshed login.")
class AuthPayload:
    access_token: str | None = strawberry.field(
        default=None, description="Short-lived JWT for `Authorization: Bearer …`."
    )
    refresh_token: str | None = strawberry.field(
        default=None, description="Opaque, single-use: exchange it with refreshToken."
    )
    expires_in: int | None = strawberry.field(
        default=None, description="Seconds until the access token expires."
    )
    is_new_user: bool | None = strawberry.field(
        default=None, description="True when this login created the account."
    )
    me: Me | None = strawberry.field(default=None, description="The logged-in user.")
    errors: list[UserError] = strawberry.field(default_factory=list, description="Failures.")

    @classmethod
    def of(cls, login: auth.Login) -> AuthPayload:
        return cls(
            access_token=login.access_token,
            refresh_token=login.refresh_token,
            expires_in=login.expires_in,
            is_new_user=login.is_new_user,
            me=Me(row=login.user),
        )


@strawberry.type(description="The result of sendSmsCode.")
class SendSmsCodePayload:
    sent: bool = strawberry.field(description="True when a code was texted.")
    retry_after_seconds: int | None = strawberry.field(
        default=None, description="Seconds before another code may be requested."
    )
    errors: list[UserError] = strawberry.field(default_factory=list, description="Failures.")


def _auth_failed(errors: list[UserError]) -> AuthPayload:
    return AuthPayload(errors=errors)


def _sms_failed(errors: list[UserError]) -> SendSmsCodePayload:
    retry = next((e.retry_after_seconds for e in errors if e.retry_after_seconds), None)
    return SendSmsCodePayload(sent=False, retry_after_seconds=retry, errors=errors)


def _not_ok(errors: list[UserError]) -> OkPayload:
    return OkPayload(ok=False, errors=errors)


@strawberry.type
class AuthMutation:
    @strawberry.mutation(
        description="Log in with a wx.login code; creates the account on first login. "
        "In development without WeChat credentials, 'dev:<name>' logs in as that test user."
    )
    async def wechat_login(self, info: Info, code: str) -> AuthPayload:
        ctx = info.context

        async def body() -> AuthPayload:
            login = await auth.wechat_login(ctx.session, ctx.services, code=code, ip=ctx.client_ip)
            return AuthPayload.of(login)

        return await run_mutation(info, body, _auth_failed)

    @strawberry.mutation(description="Text a 6-digit login code to a phone number.")
    async def send_sms_code(self, info: Info, phone: str) -> SendSmsCodePayload:
        ctx = info.context

        async def body() -> SendSmsCodePayload:
            retry = await auth.send_sms_code(
                ctx.session, ctx.services, phone=phone, ip=ctx.client_ip
            )
            return SendSmsCodePayload(sent=True, retry_after_seconds=retry)

        return await run_mutation(info, body, _sms_failed)

    @strawberry.mutation(description="Log in with a texted code; creates the account if new.")
    async def sms_login(self, info: Info, phone: str, code: str) -> AuthPayload:
        ctx = info.context

        async def body() -> AuthPayload:
            login = await auth.sms_login(
                ctx.session, ctx.services, phone=phone, code=code, ip=ctx.client_ip
            )
            return AuthPayload.of(login)

        return await run_mutation(info, body, _auth_failed)

    @strawberry.mutation(
        description="Exchange a refresh token for new tokens. Each refresh token works once; "
        "presenting a used one again ends that login everywhere."
    )
    async def refresh_token(self, info: Info, refresh_token: str) -> AuthPayload:
        ctx = info.context

        async def body() -> AuthPayload:
            login = await auth.refresh(
                ctx.session, ctx.services, token=refresh_token, ip=ctx.client_ip
            )
            return AuthPayload.of(login)

        return await run_mutation(info, body, _auth_failed)

    @strawberry.mutation(description="End the login this refresh token belongs to.")
    async def logout(self, info: Info, refresh_token: str) -> OkPayload:
        async def body() -> OkPayload:
            await auth.logout(
                info.context.session, token=refresh_token, now=info.context.services.clock()
            )
            return OkPayload(ok=True, errors=[])

        return await run_mutation(info, body, _not_ok)
