"""Plans, daily quotas and buying PRO."""

from __future__ import annotations

from datetime import datetime
from enum import Enum

import strawberry

from src.auth.permissions import AUTHENTICATED
from src.resolvers import orders
from src.resolvers.memberships import membership_state
from src.resolvers.quotas import quota_states
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


async def membership_of(info: Info, user_id) -> Membership:  # type: ignore[no-untyped-def]
    ctx = info.context
    state = await membership_state(ctx.session, user_id, ctx.services.clock())
    return Membership(
        plan=Plan(state.plan),
        valid_until=state.valid_until,
        can_purchase=orders.can_purchase(ctx.services, ctx.client_platform),
    )


async def quotas_of(info: Info, user_id) -> list[QuotaStatus]:  # type: ignore[no-untyped-def]
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
