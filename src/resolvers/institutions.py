"""Institutions: search by any of their names; users may propose a missing one.

A proposal is private until a moderator approves it (SECURITY.md 12; issue 16, L3): only its
proposer finds it, may pick it and sees it on their profile; everyone else sees a listed name or
none. Proposals are rate limited and pass the content check like other public text.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

from sqlalchemy import ColumnElement, delete, func, or_, update
from sqlalchemy.dialects.postgresql import insert
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from src.models import Institution, User, UserProfile, rules
from src.models.institutions import INSTITUTION_KINDS
from src.models.rules import after as after_cursor
from src.resolvers.auth import rate_limit
from src.resolvers.content import SCENE_PROFILE, check_text
from src.resolvers.errors import InvalidInput, NotFound, UserFacingError
from src.resolvers.indexing import enqueue
from src.resolvers.moderation import record
from src.resolvers.pagination import Page, check_first, decode_cursor, encode_cursor
from src.services import Services

STARTER_LIST = Path(__file__).resolve().parents[2] / "migrations" / "data" / "institutions.json"


def _escape_like(term: str) -> str:
    return term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def search_pattern(search: str | None) -> str | None:
    """The LIKE pattern a search asks for (trimmed, at most 100 characters, any case), or None
    for no search."""
    term = (search or "").strip()[:100]
    return f"%{_escape_like(term.lower())}%" if term else None


def name_like(pattern: Any) -> ColumnElement[bool]:
    """Over Institution: its name or an alias matches the LIKE `pattern`."""
    aliases = func.lower(func.array_to_string(col(Institution.aliases), " "))
    return or_(func.lower(col(Institution.name)).like(pattern), aliases.like(pattern))


def shown_to(viewer_id: uuid.UUID | ColumnElement[Any] | None) -> ColumnElement[bool]:
    """Listed (verified) institutions and the viewer's own proposals (`rules.institution_shown`)."""
    return rules.institution_shown(viewer_id)


async def search_institutions(
    session: AsyncSession,
    *,
    viewer_id: uuid.UUID | None,
    search: str | None,
    kind: str | None = None,
    first: int | None,
    after: str | None,
    pending: bool = False,
) -> Page[Institution]:
    """Institutions whose name or an alias (Chinese or English) contains `search`, by name:
    those `viewer_id` may see, or (`pending`, for moderators) the proposals awaiting review."""
    limit = check_first(first)
    query = select(Institution).where(
        col(Institution.verified).is_(False) if pending else shown_to(viewer_id)
    )
    pattern = search_pattern(search)
    if pattern:
        query = query.where(name_like(pattern))
    if kind:
        query = query.where(col(Institution.kind) == kind)
    if after:
        name, last_id = decode_cursor(after, str, uuid.UUID)
        query = query.where(
            after_cursor(
                [col(Institution.name), col(Institution.id)], [name, last_id], descending=False
            )
        )
    query = query.order_by(col(Institution.name), col(Institution.id)).limit(limit + 1)
    rows = list(await session.exec(query))
    return Page(
        items=[(encode_cursor(r.name, r.id), r) for r in rows[:limit]],
        has_next=len(rows) > limit,
    )


async def propose_institution(
    session: AsyncSession,
    services: Services,
    user: User,
    *,
    name: str,
    kind: str,
    city: str | None,
) -> Institution:
    """Add a missing institution, private to its proposer until a moderator approves it."""
    clean = " ".join(name.split())
    if not 2 <= len(clean) <= 100:
        raise InvalidInput("Name must be 2 to 100 characters.", field="name")
    if kind not in INSTITUTION_KINDS:
        raise InvalidInput("Unknown kind.", field="kind")
    place = " ".join((city or "").split())[:50] or None
    await rate_limit(services, "institution:user", str(user.id))
    existing = await session.scalar(
        select(col(Institution.id)).where(
            shown_to(user.id),
            or_(
                func.lower(col(Institution.name)) == clean.lower(),
                func.array_position(col(Institution.aliases), clean).is_not(None),
            ),
        )
    )
    if existing is not None:
        raise UserFacingError("It is already listed.", code="ALREADY_EXISTS", field="name")
    await check_text(
        session, services, user, {"name": clean, "city": place or ""}, scene=SCENE_PROFILE
    )
    institution = Institution(
        name=clean, kind=kind, city=place, verified=False, proposed_by_id=user.id
    )
    session.add(institution)
    await session.flush()
    return institution


async def review_institution(
    session: AsyncSession, moderator: User, *, institution_id: str, approve: bool
) -> Institution | None:
    """A moderator's decision on a proposal: approved, it is listed for everyone (the same name
    proposed by others merges into it); rejected, it goes (profiles pointing at it lose it).
    Returns the listed institution, or None when rejected."""
    try:
        row = await session.get(Institution, uuid.UUID(institution_id), with_for_update=True)
    except ValueError:
        row = None
    if row is None or row.verified:
        raise NotFound("No such proposal.", field="institutionId")
    same_name = func.lower(col(Institution.name)) == row.name.lower()
    action = "INSTITUTION_APPROVED" if approve else "INSTITUTION_REJECTED"
    record(
        session,
        target_id=row.proposed_by_id or moderator.id,
        moderator_id=moderator.id,
        action=action,
        note=row.name,
    )
    if not approve:
        affected = await _profiles_of(session, [row.id])
        await session.delete(row)
        await session.flush()
        await enqueue(session, *affected)
        return None
    if await session.scalar(
        select(col(Institution.id)).where(same_name, col(Institution.verified))
    ):
        raise UserFacingError("It is already listed.", code="ALREADY_EXISTS", field="name")
    duplicates = list(
        await session.exec(
            select(col(Institution.id)).where(same_name, col(Institution.id) != row.id)
        )
    )
    affected = await _profiles_of(session, [row.id, *duplicates])
    if duplicates:
        await session.exec(
            update(UserProfile)
            .where(col(UserProfile.institution_id).in_(duplicates))
            .values(institution_id=row.id)
        )
        await session.exec(delete(Institution).where(col(Institution.id).in_(duplicates)))
    row.verified = True
    session.add(row)
    await session.flush()
    await enqueue(session, *affected)
    return row


async def _profiles_of(session: AsyncSession, ids: list[uuid.UUID]) -> list[uuid.UUID]:
    return list(
        await session.exec(
            select(col(UserProfile.user_id)).where(col(UserProfile.institution_id).in_(ids))
        )
    )


def starter_rows() -> list[dict[str, object]]:
    """The shipped starter list (names and cities of well-known universities and employers)."""
    return [
        {
            **row,
            "id": uuid.uuid5(uuid.NAMESPACE_URL, f"qiaoqiao:institution:{row['name']}"),
            "verified": True,
        }
        for row in json.loads(STARTER_LIST.read_text(encoding="utf-8"))
    ]


async def seed_institutions(session: AsyncSession) -> int:
    """Insert the starter list; names already present are left alone. Returns rows added."""
    rows = starter_rows()
    added = await session.exec(
        insert(Institution).values(rows).on_conflict_do_nothing().returning(col(Institution.id))
    )
    return len(added.all())
