"""Plans, daily quotas and buying PRO."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import Enum

import strawberry

from src.auth.permissions import AUTHENTICATED
from src.resolvers import orders
from src.resolvers.memberships import membership_state
from src.resolvers.quotas import plan_limits, quota_states
from src.schema.common import UserError, run_mutation
from src.schema.context import Info


@strawberry.enum(description="BASIC is free; PRO raises every daily limit.")
class Plan(Enum):
    BASIC = "BASIC"
    PRO = "PRO"


@strawberry.enum(description="What a daily quota meters.")
class QuotaKind(Enum):
    WHISPER = "WHISPER"
    SWIPE = "SWIPE"
    AI_REQUEST = "AI_REQUEST"
    DISCOVERY = "DISCOVERY"


@strawberry.type(description="Your plan now.")
class Membership:
    plan: Plan = strawberry.field(description="The plan in force now.")
    valid_until: datetime | None = strawberry.field(description="When PRO ends; null on BASIC.")
    can_purchase: bool = strawberry.field(
        description="False where PRO cannot be bought here (iOS forbids virtual goods; the "
        "client reports its platform in the X-WX-Platform header)."
    )


@strawberry.type(description="Today's use of one metered kind.")
class QuotaStatus:
    kind: QuotaKind = strawberry.field(description="What is metered.")
    used: int = strawberry.field(description="Used today.")
    limit: int = strawberry.field(description="Today's limit under the current plan.")
    resets_at: datetime = strawberry.field(description="Next midnight, Asia/Shanghai.")


@strawberry.type(description="A daily limit of one kind.")
class QuotaLimit:
    kind: QuotaKind = strawberry.field(description="What is metered.")
    limit: int = strawberry.field(description="How many a day (Asia/Shanghai days).")


@strawberry.type(description="A plan and its daily limits.")
class PlanInfo:
    plan: Plan = strawberry.field(description="The plan.")
    daily_limits: list[QuotaLimit] = strawberry.field(description="Its limit of every kind.")


@strawberry.type(description="What the mini app's first screen needs; no login needed.")
class AppConfig:
    privacy_policy_version: str = strawberry.field(
        description="The version of the privacy guide that `register` must accept."
    )
    privacy_policy_url: str | None = strawberry.field(
        description="Where the privacy guide can be read (null when not configured)."
    )
    min_age: int = strawberry.field(description="The youngest age allowed to register.")
    plans: list[PlanInfo] = strawberry.field(description="Every plan with its daily limits.")
    pro_price_fen: int = strawberry.field(description="The PRO price, in fen (1 RMB = 100).")
    pro_days: int = strawberry.field(description="How many days one PRO purchase lasts.")
    can_purchase: bool = strawberry.field(
        description="Whether PRO can be bought on the caller's platform (X-WX-Platform header; "
        "iOS forbids selling virtual goods)."
    )


@strawberry.type
class PlanQuery:
    @strawberry.field(description="No login needed: what the mini app's first screen needs.")
    def app_config(self, info: Info) -> AppConfig:
        ctx = info.context
        settings = ctx.settings
        return AppConfig(
            privacy_policy_version=settings.privacy_policy_version,
            privacy_policy_url=settings.privacy_policy_url,
            min_age=settings.min_age,
            plans=[
                PlanInfo(
                    plan=Plan(plan),
                    daily_limits=[
                        QuotaLimit(kind=QuotaKind(kind), limit=limit)
                        for kind, limit in limits.items()
                    ],
                )
                for plan, limits in plan_limits(settings).items()
            ],
            pro_price_fen=settings.pro_price_fen,
            pro_days=settings.pro_days,
            can_purchase=orders.can_purchase(ctx.services, ctx.client_platform),
        )


async def membership_of(info: Info, user_id: uuid.UUID) -> Membership:
    ctx = info.context
    state = await membership_state(ctx.session, user_id, ctx.services.clock())
    return Membership(
        plan=Plan(state.plan),
        valid_until=state.valid_until,
        can_purchase=orders.can_purchase(ctx.services, ctx.client_platform),
    )


async def quotas_of(info: Info, user_id: uuid.UUID) -> list[QuotaStatus]:
    ctx = info.context
    states = await quota_states(ctx.session, ctx.settings, user_id, now=ctx.services.clock())
    return [
        QuotaStatus(kind=QuotaKind(s.kind), used=s.used, limit=s.limit, resets_at=s.resets_at)
        for s in states
    ]


@strawberry.type(description="A PRO order and how to pay it.")
class ProOrderPayload:
    payment_params: str | None = strawberry.field(
        default=None,
        description="Arguments for wx.requestPayment (JSON: timeStamp, nonceStr, package, "
        'signType, paySign). In development without merchant credentials: {"development": '
        'true, "paid": true} — the order is paid at once.',
    )
    order_id: strawberry.ID | None = strawberry.field(default=None, description="Our order id.")
    errors: list[UserError] = strawberry.field(default_factory=list, description="Failures.")


@strawberry.type
class PlanMutation:
    @strawberry.mutation(
        description="Start buying PRO (10 RMB for 30 days) with WeChat Pay.",
        permission_classes=AUTHENTICATED,
    )
    async def create_pro_order(
        self, info: Info, idempotency_key: str | None = None
    ) -> ProOrderPayload:
        ctx = info.context
        user = await ctx.require_viewer()

        async def body() -> ProOrderPayload:
            result = await orders.create_pro_order(
                ctx.session,
                ctx.services,
                user,
                platform=ctx.client_platform,
                idempotency_key=idempotency_key,
                now=ctx.services.clock(),
            )
            return ProOrderPayload(
                payment_params=result["paymentParams"], order_id=strawberry.ID(result["orderId"])
            )

        return await run_mutation(info, body, lambda errors: ProOrderPayload(errors=errors))
