"""Profiles: validation, updates, who may see whom, the browse feed, erasure and export."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import date, datetime
from typing import Any
from urllib.parse import urlsplit

from sqlmodel import col, delete, select
from sqlmodel.ext.asyncio.session import AsyncSession

from src.models import Institution, User, UserProfile, UserProject, rules
from src.models.rules import after as after_cursor
from src.models.rules import visible_to
from src.resolvers.calendar import local_day
from src.resolvers.content import SCENE_PROFILE, check_text
from src.resolvers.errors import InvalidInput, NotFound
from src.resolvers.indexing import enqueue
from src.resolvers.pagination import Page, check_first, decode_cursor, encode_cursor
from src.services import Services

GENDERS = ("MALE", "FEMALE", "OTHER", "UNDISCLOSED")
MAX_INTERESTS = 20
MAX_TAG = 20


def clean_nickname(value: str) -> str:
    nickname = " ".join(value.split())
    if not 1 <= len(nickname) <= 30:
        raise InvalidInput("Nickname must be 1 to 30 characters.", field="nickname")
    return nickname


def clean_text(value: str | None, field: str, limit: int) -> str | None:
    """Trimmed free text, None when empty; INVALID_INPUT naming `field` when too long."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    if len(text) > limit:
        raise InvalidInput(f"At most {limit} characters.", field=field)
    return text


def clean_https_url(value: str | None, field: str) -> str | None:
    if value is None or not value.strip():
        return None
    url = value.strip()
    parts = urlsplit(url)
    if parts.scheme != "https" or not parts.netloc or len(url) > 500:
        raise InvalidInput("Must be an https:// URL of at most 500 characters.", field=field)
    return url


def clean_tags(values: list[str] | None, field: str, limit: int) -> list[str]:
    """Trimmed, de-duplicated (case-insensitively, first spelling kept) tags of ≤ 20 chars."""
    tags: list[str] = []
    seen: set[str] = set()
    for raw in values or []:
        tag = " ".join(raw.split())
        if not tag or tag.casefold() in seen:
            continue
        if len(tag) > MAX_TAG:
            raise InvalidInput(f"Each tag is at most {MAX_TAG} characters.", field=field)
        seen.add(tag.casefold())
        tags.append(tag)
    if len(tags) > limit:
        raise InvalidInput(f"At most {limit} tags.", field=field)
    return tags


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


def age_on(born: date, on: date) -> int:
    return on.year - born.year - ((on.month, on.day) < (born.month, born.day))


async def update_profile(
    session: AsyncSession, services: Services, user: User, changes: dict[str, Any]
) -> UserProfile:
    """Apply the given fields (a key present with None clears that field)."""
    profile = await session.get(UserProfile, user.id)
    if profile is None:  # registered users always have one; be safe for admin-made accounts
        raise InvalidInput("Register first.", field=None)
    settings = services.settings
    now = services.clock()
    cleaners: dict[str, Callable[[Any], Any]] = {
        "nickname": lambda v: clean_nickname(v or ""),
        "avatar_url": lambda v: clean_https_url(v, "avatarUrl"),
        "gender": _clean_gender,
        "birth_date": lambda v: parse_birth_date(v, min_age=settings.min_age, today=local_day(now)),
        "city": lambda v: clean_text(v, "city", 50),
        "bio": lambda v: clean_text(v, "bio", 500),
        "interests": lambda v: clean_tags(v, "interests", MAX_INTERESTS),
        "looking_for": lambda v: clean_text(v, "lookingFor", 200),
        "visibility": lambda v: "hidden" if v is False else "discoverable",
    }
    values: dict[str, Any] = {
        name: cleaners[name](value) for name, value in changes.items() if name in cleaners
    }
    if "institution_id" in changes:
        values["institution_id"] = await _existing_institution(
            session, user.id, changes["institution_id"]
        )
    await check_text(
        session,
        services,
        user,
        {k: values[k] for k in ("nickname", "bio") if values.get(k)},
        scene=SCENE_PROFILE,
    )
    for name, value in values.items():
        setattr(profile, name, value)
    profile.updated_at = now
    session.add(profile)
    await session.flush()
    await enqueue(session, user.id)
    return profile


def _clean_gender(value: str | None) -> str:
    gender = value or "UNDISCLOSED"
    if gender not in GENDERS:
        raise InvalidInput("Unknown gender.", field="gender")
    return gender


async def _existing_institution(
    session: AsyncSession, user_id: uuid.UUID, raw: str | None
) -> uuid.UUID | None:
    """A listed institution, or the user's own proposal (others' look missing)."""
    if raw is None:
        return None
    try:
        institution_id = uuid.UUID(str(raw))
    except ValueError:
        raise NotFound("No such institution.", field="institutionId") from None
    shown = await session.scalar(
        select(col(Institution.id)).where(
            col(Institution.id) == institution_id, rules.institution_shown(user_id)
        )
    )
    if shown is None:
        raise NotFound("No such institution.", field="institutionId")
    return institution_id


async def visible_user(
    session: AsyncSession, viewer_id: uuid.UUID, raw_id: str
) -> uuid.UUID | None:
    """The id of the user the viewer asked for, or None — the same for a missing, hidden,
    banned, deleted, unregistered or blocked user, so nothing can be told apart."""
    try:
        user_id = uuid.UUID(raw_id)
    except ValueError:
        return None
    query = (
        select(col(User.id))
        .join(UserProfile, col(UserProfile.user_id) == col(User.id))
        .where(col(User.id) == user_id, visible_to(viewer_id))
    )
    return await session.scalar(query)


async def visible_ids(
    session: AsyncSession, viewer_id: uuid.UUID, ids: list[uuid.UUID]
) -> set[uuid.UUID]:
    """Which of `ids` the viewer may see (`rules.visible_to`): every path that leads to a person —
    whisper senders and recipients, matches, reports, MCP — shows the others as `user(id)`
    shows them, as missing."""
    if not ids:
        return set()
    rows = await session.exec(
        select(col(User.id))
        .join(UserProfile, col(UserProfile.user_id) == col(User.id))
        .where(col(User.id).in_(ids), visible_to(viewer_id))
    )
    return set(rows)


async def browse_users(
    session: AsyncSession, viewer_id: uuid.UUID, *, first: int | None, after: str | None
) -> Page[uuid.UUID]:
    """Other people the viewer may see, most recently registered first."""
    limit = check_first(first)
    query = (
        select(col(User.id), col(User.registered_at))
        .join(UserProfile, col(UserProfile.user_id) == col(User.id))
        .where(col(User.id) != viewer_id, visible_to(viewer_id))
    )
    if after:
        registered_at, last_id = decode_cursor(after, datetime, uuid.UUID)
        query = query.where(
            after_cursor(
                [col(User.registered_at), col(User.id)], [registered_at, last_id], descending=True
            )
        )
    query = query.order_by(col(User.registered_at).desc(), col(User.id).desc()).limit(limit + 1)
    rows = (await session.exec(query)).all()
    return Page(
        items=[(encode_cursor(at, user_id), user_id) for user_id, at in rows[:limit]],
        has_next=len(rows) > limit,
    )


async def erase_profile(session: AsyncSession, user_id: uuid.UUID) -> None:
    """Account deletion: the profile and the portfolio go entirely."""
    await session.exec(delete(UserProject).where(col(UserProject.user_id) == user_id))
    await session.exec(delete(UserProfile).where(col(UserProfile.user_id) == user_id))


async def export_profile(session: AsyncSession, user_id: uuid.UUID) -> dict[str, Any]:
    profile = await session.get(UserProfile, user_id)
    projects = await session.exec(
        select(UserProject)
        .where(col(UserProject.user_id) == user_id)
        .order_by(col(UserProject.created_at))
    )
    return {
        "profile": profile.model_dump(mode="json") if profile else None,
        "projects": [p.model_dump(mode="json") for p in projects],
    }
