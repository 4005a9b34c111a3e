"""What the AI workflows read from the database: a profile's facts, public cards of people the
viewer may see, and the interests most people share."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Any

from sqlalchemy import bindparam, distinct, func, true
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from src.ai.suggestions import ProfileFacts, ProjectFacts
from src.models import Institution, User, UserProfile, UserProject, rules
from src.models.rules import visible_to
from src.resolvers.errors import UserFacingError
from src.resolvers.profiles import age_on

MAX_BIO_IN_CARD = 300


def _popular() -> Any:
    """Interests by how many people anyone may find (`rules.in_discovery`) list them."""
    u, p = rules.USERS.alias("u"), rules.PROFILES.alias("p")
    tags = func.unnest(p.c.interests).table_valued("tag").render_derived("t")
    people = func.count(distinct(p.c.user_id))
    return (
        select(func.mode().within_group(tags.c.tag).label("tag"), people.label("people"))
        .select_from(p.join(u, u.c.id == p.c.user_id).join(tags, true()))
        .where(rules.in_discovery(user=u, profile=p), u.c.id != bindparam("viewer"))
        .group_by(func.lower(tags.c.tag))
        .having(people >= bindparam("at_least"))
        .order_by(people.desc(), func.lower(tags.c.tag))
        .limit(bindparam("limit"))
    )


_POPULAR = _popular()


async def profile_facts(session: AsyncSession, user_id: uuid.UUID, today: date) -> ProfileFacts:
    """The owner's view of their profile, ages as of `today` (the one clock's Asia/Shanghai
    date). Raises REGISTRATION_REQUIRED without one."""
    profile = await session.get(UserProfile, user_id)
    if profile is None:
        raise UserFacingError(
            "Complete registration first (register).", code="REGISTRATION_REQUIRED"
        )
    institution = (
        await session.get(Institution, profile.institution_id) if profile.institution_id else None
    )
    projects = await session.exec(
        select(UserProject)
        .where(col(UserProject.user_id) == user_id)
        .order_by(col(UserProject.created_at), col(UserProject.id))
        .limit(50)
    )
    return ProfileFacts(
        nickname=profile.nickname,
        avatar_url=profile.avatar_url,
        gender=profile.gender,
        age=age_on(profile.birth_date, today) if profile.birth_date else None,
        has_birth_date=profile.birth_date is not None,
        city=profile.city,
        bio=profile.bio,
        interests=list(profile.interests),
        looking_for=profile.looking_for,
        institution=institution.name if institution else None,
        projects=[ProjectFacts(str(p.id), p.title, p.description) for p in projects],
    )


async def people_cards(
    session: AsyncSession, viewer_id: uuid.UUID, ids: list[uuid.UUID], today: date
) -> list[dict[str, Any]]:
    """Public profiles (what the GraphQL `Profile` type shows others) of the people the viewer
    may see, in the order given; anyone else is left out, as if missing."""
    if not ids:
        return []
    rows = await session.exec(
        select(UserProfile, col(Institution.name))
        .join(User, col(User.id) == col(UserProfile.user_id))
        .join(
            Institution,
            (col(Institution.id) == col(UserProfile.institution_id))
            & rules.institution_shown(viewer_id),
            isouter=True,
        )
        .where(col(UserProfile.user_id).in_(ids), visible_to(viewer_id))
    )
    found = {p.user_id: card(p, name, today) for p, name in rows}
    return [found[i] for i in ids if i in found]


def card(profile: UserProfile, institution: str | None, today: date) -> dict[str, Any]:
    bio = profile.bio or None
    if bio and len(bio) > MAX_BIO_IN_CARD:
        bio = bio[:MAX_BIO_IN_CARD] + "…"
    return {
        "id": str(profile.user_id),
        "nickname": profile.nickname,
        "avatarUrl": profile.avatar_url,
        "gender": profile.gender,
        "age": age_on(profile.birth_date, today) if profile.birth_date else None,
        "city": profile.city,
        "bio": bio,
        "interests": list(profile.interests),
        "lookingFor": profile.looking_for,
        "institution": institution,
    }


async def popular_interests(
    session: AsyncSession, viewer_id: uuid.UUID, *, limit: int = 10, at_least: int = 2
) -> list[tuple[str, int]]:
    """The interests most people in discovery (registered, active, discoverable, not held)
    list (case-insensitively), with how
    many people list each; only those at least `at_least` people share."""
    rows = await session.exec(
        _POPULAR, params={"viewer": viewer_id, "limit": limit, "at_least": at_least}
    )
    return [(str(tag), int(n)) for tag, n in rows]
