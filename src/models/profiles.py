"""A user's profile (one per user) and their project portfolio."""

from __future__ import annotations

import uuid
from datetime import date, datetime

from sqlalchemy import CheckConstraint, Index, Text
from sqlmodel import Field, SQLModel

from src.models.base import created_at, one_of, text_array, timestamptz, uuid_pk

GENDERS = ("MALE", "FEMALE", "OTHER", "UNDISCLOSED")
VISIBILITIES = ("discoverable", "hidden")


class UserProfile(SQLModel, table=True):
    __tablename__ = "user_profiles"
    __table_args__ = (
        CheckConstraint(one_of("gender", GENDERS), name="gender"),
        CheckConstraint(one_of("visibility", VISIBILITIES), name="visibility"),
        CheckConstraint("char_length(nickname) BETWEEN 1 AND 30", name="nickname_length"),
        CheckConstraint("char_length(bio) <= 500", name="bio_length"),
        CheckConstraint("cardinality(interests) <= 20", name="interests_count"),
        Index("ix_user_profiles_city", "city"),
    )

    # The primary key is the user: one profile per user.
    user_id: uuid.UUID = Field(primary_key=True, foreign_key="users.id", ondelete="CASCADE")
    nickname: str = Field(sa_type=Text)
    avatar_url: str | None = Field(default=None, sa_type=Text)
    gender: str = Field(default="UNDISCLOSED", sa_type=Text)
    birth_date: date | None = None
    city: str | None = Field(default=None, sa_type=Text)
    bio: str | None = Field(default=None, sa_type=Text)
    interests: list[str] = text_array()
    looking_for: str | None = Field(default=None, sa_type=Text)
    institution_id: uuid.UUID | None = Field(
        default=None, foreign_key="institutions.id", ondelete="SET NULL", index=True
    )
    visibility: str = Field(default="discoverable", sa_type=Text)
    created_at: datetime = created_at()
    updated_at: datetime | None = timestamptz()


class UserProject(SQLModel, table=True):
    __tablename__ = "user_projects"
    __table_args__ = (
        CheckConstraint("char_length(title) BETWEEN 1 AND 100", name="title_length"),
        CheckConstraint("char_length(description) <= 2000", name="description_length"),
        CheckConstraint(
            "ended_on IS NULL OR started_on IS NULL OR ended_on >= started_on", name="period"
        ),
        # A user's portfolio, newest first, keyset-paginated.
        Index("ix_user_projects_user_id_created_at", "user_id", "created_at", "id"),
    )

    id: uuid.UUID = uuid_pk()
    user_id: uuid.UUID = Field(foreign_key="users.id", ondelete="CASCADE")
    title: str = Field(sa_type=Text)
    description: str | None = Field(default=None, sa_type=Text)
    role: str | None = Field(default=None, sa_type=Text)
    link: str | None = Field(default=None, sa_type=Text)
    started_on: date | None = None
    ended_on: date | None = None
    tags: list[str] = text_array()
    created_at: datetime = created_at()
    updated_at: datetime | None = timestamptz()
