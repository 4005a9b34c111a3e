"""Plans, daily quotas and buying PRO."""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from enum import Enum
from typing import Any

import strawberry
from sqlalchemy import (
    Boolean,
    ColumnElement,
    Date,
    DateTime,
    FromClause,
    Integer,
    Select,
    Text,
    and_,
    cast,
    func,
    select,
    values,
)
from sqlalchemy import column as sql_column
from sqlalchemy.dialects.postgresql import JSONB

from src.auth.permissions import AUTHENTICATED
from src.models import rules
from src.models.plans import QUOTA_KINDS
from src.resolvers import orders
from src.resolvers.memberships import membership_state
from src.resolvers.quotas import plan_limits, quota_day, quota_states, resets_at
from src.resolvers.readplan import Scalar, Scope, Source
from src.resolvers.readplan.model import RequestInfo, column, iso_text
from src.schema.common import UserError, run_mutation
from src.schema.context import Info, client_platform


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


def _can_purchase(request: RequestInfo) -> bool:
    return orders.can_purchase(request.services, client_platform(request.headers))


def _limits(request: RequestInfo) -> str:
    """Every plan's limit of every kind, as JSON text (the statement picks the plan in force)."""
    return json.dumps(plan_limits(request.services.settings))


def quota_rows(user: FromClause, scope: Scope) -> Select[Any]:
    """One row per kind in QUOTA_KINDS order (`n`): today's use (today's row, else 0) and the
    limit of the plan in force now — quota_states in one SELECT, from the same rules."""
    kinds = values(
        sql_column("kind", Text), sql_column("n", Integer), name="kinds", literal_binds=True
    ).data([(kind, n) for n, kind in enumerate(QUOTA_KINDS)])
    use = rules.USER_QUOTAS.alias()
    today = scope.per_request(lambda r: quota_day(r.now), Date())
    limits = cast(scope.per_request(_limits, Text()), JSONB)
    plan = rules.plan_in_force(user.c.id, scope.now)
    limit = limits.op("->")(plan).op("->>")(kinds.c.kind)
    day_row = and_(use.c.user_id == user.c.id, use.c.day == today, use.c.kind == kinds.c.kind)
    return select(
        kinds.c.kind,
        kinds.c.n,
        func.coalesce(use.c.used, 0).label("used"),
        cast(limit, Integer).label("limit"),
    ).select_from(kinds.outerjoin(use, day_row))


def _resets_at(_: FromClause, scope: Scope) -> ColumnElement[Any]:
    return iso_text(scope.per_request(lambda r: resets_at(r.now), DateTime(timezone=True)))


def _valid_until(user: FromClause, scope: Scope) -> ColumnElement[Any]:
    """The rule's instant, computed once (iso_text reads its argument three times)."""
    until = select(rules.pro_valid_until(user.c.id, scope.now).label("at")).correlate(user)
    once = until.subquery("valid_until")
    return select(iso_text(once.c.at)).select_from(once).scalar_subquery()


# Where Membership and QuotaStatus live, for the compiled reads: Membership reads the user's
# row itself (Inline), QuotaStatus the rows of quota_rows (see Me's declaration).
MEMBERSHIP_SOURCE = Source(
    table=rules.USERS,
    fields={
        "plan": Scalar(lambda user, scope: rules.plan_in_force(user.c.id, scope.now)),
        "validUntil": Scalar(_valid_until),
        "canPurchase": Scalar(lambda _, scope: scope.per_request(_can_purchase, Boolean())),
    },
)
QUOTA_STATUS_SOURCE = Source(
    table=rules.USER_QUOTAS,
    fields={
        "kind": column("kind"),
        "used": column("used"),
        "limit": column("limit"),
        "resetsAt": Scalar(_resets_at),
    },
)


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
