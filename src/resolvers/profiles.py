"""Profiles: validation shared by registration and profile updates, erasure and export."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Any
from urllib.parse import urlsplit

from sqlmodel import delete, select
from sqlmodel.ext.asyncio.session import AsyncSession

from src.models import UserProfile, UserProject
from src.resolvers.errors import InvalidInput

GENDERS = ("MALE", "FEMALE", "OTHER", "UNDISCLOSED")


def clean_nickname(value: str) -> str:
    nickname = " ".join(value.split())
    if not 1 <= len(nickname) <= 30:
        raise InvalidInput("Nickname must be 1 to 30 characters.", field="nickname")
    return nickname


def clean_https_url(value: str | None, field: str) -> str | None:
    if value is None or not value.strip():
        return None
    url = value.strip()
    parts = urlsplit(url)
    if parts.scheme != "https" or not parts.netloc or len(url) > 500:
        raise InvalidInput("Must be an https:// URL of at most 500 characters.", field=field)
    return url


def parse_birth_date(value: str | None, *, min_age: int, today: date) -> date | None:
    if value is None or not value.strip():
        return None
    try:
        born = date.fromisoformat(value.strip())
    except ValueError:
        raise InvalidInput(
            "Birth date must be a real date, YYYY-MM-DD.", field="birthDate"
        ) from None
    age = age_on(born, today)
    if age < min_age:
        raise InvalidInput(f"You must be at least {min_age} years old.", field="birthDate")
    if age > 120:
        raise InvalidInput("Birth date is too far in the past.", field="birthDate")
    return born


def age_on(born: date, today: date) -> int:
    return today.year - born.year - ((today.month, today.day) < (born.month, born.day))


async def erase_profile(session: AsyncSession, user_id: uuid.UUID) -> None:
    """Account deletion: the profile and the portfolio go entirely."""
    await session.exec(delete(UserProject).where(UserProject.user_id == user_id))  # type: ignore[arg-type]
    await session.exec(delete(UserProfile).where(UserProfile.user_id == user_id))  # type: ignore[arg-type]


async def export_profile(session: AsyncSession, user_id: uuid.UUID) -> dict[str, Any]:
    profile = await session.get(UserProfile, user_id)
    projects = await session.exec(
        select(UserProject).where(UserProject.user_id == user_id).order_by(UserProject.created_at)  # type: ignore[arg-type]
    )
    return {
        "profile": profile.model_dump(mode="json") if profile else None,
        "projects": [p.model_dump(mode="json") for p in projects],
    }
