"""Institutions: search by any of their names; users may propose a missing one."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

from sqlalchemy import func, or_, tuple_
from sqlalchemy.dialects.postgresql import insert
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from src.models import Institution, User
from src.models.institutions import INSTITUTION_KINDS
from src.resolvers.errors import InvalidInput, UserFacingError
from src.resolvers.pagination import Page, check_first, decode_cursor, encode_cursor

STARTER_LIST = Path(__file__).resolve().parents[2] / "migrations" / "data" / "institutions.json"


def _escape_like(term: str) -> str:
    return term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _name_matches(term: str):  # type: ignore[no-untyped-def]
    pattern = f"%{_escape_like(term.lower())}%"
    aliases = func.lower(func.array_to_string(Institution.aliases, " "))
    return or_(func.lower(Institution.name).like(pattern), aliases.like(pattern))


async def search_institutions(
    session: AsyncSession,
    *,
    search: str | None,
    kind: str | None = None,
    first: int | None,
    after: str | None,
) -> Page[Institution]:
    """Institutions whose name or an alias (Chinese or English) contains `search`, by name."""
    limit = check_first(first)
    query = select(Institution)
    term = (search or "").strip()[:100]
    if term:
        query = query.where(_name_matches(term))
    if kind:
        query = query.where(Institution.kind == kind)
    if after:
        name, last_id = decode_cursor(after, str, uuid.UUID)
        query = query.where(tuple_(Institution.name, Institution.id) > tuple_(name, last_id))
    query = query.order_by(Institution.name, Institution.id).limit(limit + 1)  # type: ignore[arg-type]
    rows = list(await session.exec(query))
    return Page(
        items=[(encode_cursor(r.name, r.id), r) for r in rows[:limit]],
        has_next=len(rows) > limit,
    )


async def propose_institution(
    session: AsyncSession, user: User, *, name: str, kind: str, city: str | None
) -> Institution:
    """Add a missing institution, unverified until a moderator checks it."""
    clean = " ".join(name.split())
    if not 2 <= len(clean) <= 100:
        raise InvalidInput("Name must be 2 to 100 characters.", field="name")
    if kind not in INSTITUTION_KINDS:
        raise InvalidInput("Unknown kind.", field="kind")
    place = " ".join((city or "").split())[:50] or None
    existing = await session.scalar(
        select(Institution.id).where(
            or_(
                func.lower(Institution.name) == clean.lower(),
                func.array_position(Institution.aliases, clean).is_not(None),
            )
        )
    )
    if existing is not None:
        raise UserFacingError("It is already listed.", code="ALREADY_EXISTS", field="name")
    institution = Institution(
        name=clean, kind=kind, city=place, verified=False, proposed_by_id=user.id
    )
    session.add(institution)
    await session.flush()
    return institution


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
        insert(Institution).values(rows).on_conflict_do_nothing().returning(Institution.id)
    )
    return len(added.all())
