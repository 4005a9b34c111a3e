"""Universities, companies and schools a profile can point at."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import CheckConstraint, Index, Text, text
from sqlmodel import Field, SQLModel

from src.models.base import created_at, one_of, text_array, uuid_pk

INSTITUTION_KINDS = ("UNIVERSITY", "COMPANY", "SCHOOL", "ORGANIZATION", "OTHER")


class Institution(SQLModel, table=True):
    __tablename__ = "institutions"
    __table_args__ = (
        CheckConstraint(one_of("kind", INSTITUTION_KINDS), name="kind"),
        CheckConstraint("char_length(name) BETWEEN 1 AND 100", name="name_length"),
        # One listed institution per name; proposals are private, so others may propose the
        # same name (each user once) and approval merges them.
        Index(
            "uq_institutions_lower_name",
            text("lower(name)"),
            unique=True,
            postgresql_where=text("verified"),
        ),
        Index(
            "uq_institutions_lower_name_proposed_by_id",
            text("lower(name)"),
            "proposed_by_id",
            unique=True,
            postgresql_where=text("NOT verified"),
        ),
    )

    id: uuid.UUID = uuid_pk()
    name: str = Field(sa_type=Text)
    # Other names it is searched by: the English or Chinese name, abbreviations.
    aliases: list[str] = text_array()
    kind: str = Field(sa_type=Text)
    city: str | None = Field(default=None, sa_type=Text)
    verified: bool = Field(default=False)
    proposed_by_id: uuid.UUID | None = Field(
        default=None, foreign_key="users.id", ondelete="SET NULL", index=True
    )
    created_at: datetime = created_at()
