"""Buying PRO: orders through WeChat Pay JSAPI, the payment notification, and settling orders
whose notification never came. Every path that pays extends the membership exactly once."""

from __future__ import annotations

import json
import logging
import secrets
from datetime import datetime, timedelta
from typing import Any

from sqlmodel import col, select, update
from sqlmodel.ext.asyncio.session import AsyncSession

from src.models import PaymentOrder, User
from src.payments.wechat_pay import InvalidNotification, PayError
from src.resolvers import idempotency
from src.resolvers.errors import UserFacingError
from src.resolvers.memberships import extend_pro
from src.services import Services

log = logging.getLogger(__name__)

OPERATION = "createProOrder"
# Platforms where WeChat forbids selling virtual goods through wx.requestPayment.
NO_VIRTUAL_GOODS = frozenset({"ios"})


def can_purchase(services: Services, platform: str | None) -> bool:
    if (platform or "").lower() in NO_VIRTUAL_GOODS:
        return False
    return services.pay is not None or services.settings.dev_purchase_enabled


def _failed(message: str) -> UserFacingError:
    return UserFacingError(message, code="PAYMENT_FAILED")


async def create_pro_order(
    session: AsyncSession,
    services: Services,
    user: User,
    *,
    platform: str | None,
    idempotency_key: str | None,
    now: datetime,
) -> dict[str, Any]:
    """Open a PRO order; returns {"orderId", "paymentParams"} (the same for a repeated key)."""
    if (platform or "").lower() in NO_VIRTUAL_GOODS:
        raise _failed("WeChat does not allow buying PRO on iOS.")
    if (
        idempotency_key
        and (stored := await idempotency.claim(session, user.id, OPERATION, idempotency_key))
        is not None
    ):
        return stored
    settings = services.settings
    order = PaymentOrder(
        user_id=user.id,
        out_trade_no="QQ" + secrets.token_hex(15),
        amount_fen=settings.pro_price_fen,
    )
    session.add(order)
    await session.flush()
    if services.pay is None:
        if not settings.dev_purchase_enabled:
            raise _failed("Payments are not available.")
        # Development without merchant credentials: the order is paid on the spot.
        await _mark_paid(session, services, order, transaction_id=None, now=now)
        params: dict[str, Any] = {"development": True, "paid": True}
    else:
        if not user.wechat_openid:
            raise _failed("Log in with WeChat to pay.")
        try:
            order.prepay_id = await services.pay.create_jsapi_order(
                out_trade_no=order.out_trade_no,
                description=f"悄悄 PRO {settings.pro_days} 天",
                amount_fen=order.amount_fen,
                openid=user.wechat_openid,
            )
        except PayError as exc:
            log.warning("WeChat Pay order failed: %s", exc)
            raise _failed("WeChat Pay is not answering; please try again.") from None
        session.add(order)
        params = services.pay.payment_params(order.prepay_id)
    result = {"orderId": str(order.id), "paymentParams": json.dumps(params, separators=(",", ":"))}
    if idempotency_key:
        await idempotency.remember(session, user.id, OPERATION, idempotency_key, result)
    return result


async def _mark_paid(
    session: AsyncSession,
    services: Services,
    order: PaymentOrder,
    *,
    transaction_id: str | None,
    now: datetime,
) -> None:
    order.status = "PAID"
    order.transaction_id = transaction_id
    order.paid_at = now
    session.add(order)
    await session.flush()
    await extend_pro(
        session, order.user_id, source=order.out_trade_no, days=services.settings.pro_days, now=now
    )


async def apply_transaction(
    session: AsyncSession, services: Services, transaction: dict[str, Any], now: datetime
) -> str:
    """Apply a transaction reported by WeChat Pay (notify or query). Returns what happened:
    'paid', 'duplicate', 'pending', 'closed'. Raises InvalidNotification when it does not
    match our order (amount, currency, merchant, app)."""
    pay = services.pay
    assert pay is not None
    order = (
        await session.exec(
            select(PaymentOrder)
            .where(col(PaymentOrder.out_trade_no) == str(transaction.get("out_trade_no")))
            .with_for_update()  # a concurrent duplicate waits here, then sees PAID
        )
    ).first()
    if order is None:
        raise InvalidNotification("unknown order")
    amount = transaction.get("amount") or {}
    if (
        transaction.get("mchid") != pay.mch_id
        or transaction.get("appid") != pay.app_id
        or amount.get("total") != order.amount_fen
        or amount.get("currency", "CNY") != order.currency
    ):
        raise InvalidNotification("transaction does not match the order")
    state = transaction.get("trade_state")
    if order.status == "PAID":
        return "duplicate"
    if state == "SUCCESS":
        await _mark_paid(
            session, services, order, transaction_id=str(transaction.get("transaction_id")), now=now
        )
        return "paid"
    if state in ("CLOSED", "REVOKED", "PAYERROR"):
        order.status = "CLOSED"
        session.add(order)
        return "closed"
    return "pending"


async def handle_notification(services: Services, headers: dict[str, str], body: str) -> str:
    """POST /pay/notify: verify, decrypt, apply in one transaction of its own."""
    pay = services.pay
    if pay is None:
        raise InvalidNotification("payments are not configured")
    transaction = pay.decrypt_notification(headers, body)
    async with services.sessionmaker() as session, session.begin():
        outcome = await apply_transaction(session, services, transaction, services.clock())
    log.info("payment notification: %s", outcome)
    return outcome


async def settle_pending_orders(services: Services, *, older_than_s: float = 60) -> int:
    """Ask WeChat Pay about orders still waiting for their notification; returns how many
    were settled (paid or closed). Orders older than a day without payment are closed."""
    pay = services.pay
    if pay is None:
        return 0
    now = services.clock()
    async with services.sessionmaker() as session:
        waiting = (
            await session.exec(
                select(col(PaymentOrder.out_trade_no), col(PaymentOrder.created_at)).where(
                    col(PaymentOrder.status) == "CREATED",
                    col(PaymentOrder.created_at) < now - timedelta(seconds=older_than_s),
                )
            )
        ).all()
    settled = 0
    for out_trade_no, created in waiting:
        try:
            transaction = await pay.query_order(out_trade_no)
        except (PayError, InvalidNotification) as exc:
            log.warning("could not query order: %s", exc)
            continue
        async with services.sessionmaker() as session, session.begin():
            try:
                outcome = await apply_transaction(session, services, transaction, now)
            except InvalidNotification as exc:
                log.error("order query does not match the order: %s", exc)
                continue
            if outcome == "pending" and now - created > timedelta(days=1):
                await session.exec(
                    update(PaymentOrder)
                    .where(col(PaymentOrder.out_trade_no) == out_trade_no)
                    .values(status="CLOSED")
                )
                outcome = "closed"
            settled += outcome in ("paid", "closed")
    return settled
