"""WeChat Pay orders for PRO, and idempotency keys for retried mutations."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import CheckConstraint, Index, Text
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Field, SQLModel

from src.models.base import created_at, one_of, timestamptz, uuid_pk

ORDER_STATUSES = ("CREATED", "PAID", "CLOSED")


class PaymentOrder(SQLModel, table=True):
    __tablename__ = "payment_orders"
    __table_args__ = (
        CheckConstraint(one_of("status", ORDER_STATUSES), name="status"),
        CheckConstraint("amount_fen > 0", name="amount_positive"),
        # The settler looks for orders still waiting for their notify.
        Index("ix_payment_orders_status_created_at", "status", "created_at"),
    )

    id: uuid.UUID = uuid_pk()
    user_id: uuid.UUID = Field(foreign_key="users.id", ondelete="CASCADE", index=True)
    # Our order number at WeChat Pay (6-32 characters).
    out_trade_no: str = Field(sa_type=Text, unique=True)
    amount_fen: int
    currency: str = Field(default="CNY", sa_type=Text)
    status: str = Field(default="CREATED", sa_type=Text)
    prepay_id: str | None = Field(default=None, sa_type=Text)
    transaction_id: str | None = Field(default=None, sa_type=Text, unique=True)
    paid_at: datetime | None = timestamptz()
    created_at: datetime = created_at()


class IdempotencyKey(SQLModel, table=True):
    """The first result of a mutation sent with a client key; the same key returns it again."""

    __tablename__ = "idempotency_keys"

    user_id: uuid.UUID = Field(primary_key=True, foreign_key="users.id", ondelete="CASCADE")
    operation: str = Field(primary_key=True, sa_type=Text)
    key: str = Field(primary_key=True, sa_type=Text)
    result: dict[str, Any] | None = Field(default=None, sa_type=JSONB)
    created_at: datetime = created_at()
