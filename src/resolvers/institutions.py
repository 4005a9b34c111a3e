"""Institutions: search by any of their names."""

from __future__ import annotations

import uuid

from sqlalchemy import func, or_, tuple_
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from src.models import Institution
from src.resolvers.pagination import Page, check_first, decode_cursor, encode_cursor


def _escape_like(term: str) -> str:
    return term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


async def search_institutions(
    session: AsyncSession, *, search: str | None, first: int | None, after: str | None
) -> Page[Institution]:
    """Institutions whose name or an alias contains `search` (case-insensitive), by name."""
    limit = check_first(first)
    query = select(Institution)
    term = (search or "").strip()
    if term:
        pattern = f"%{_escape_like(term.lower())}%"
        alias_match = func.array_to_string(Institution.aliases, " ").ilike(pattern)
        query = query.where(or_(func.lower(Institution.name).like(pattern), alias_match))
    if after:
        name, last_id = decode_cursor(after, str, uuid.UUID)
        query = query.where(tuple_(Institution.name, Institution.id) > tuple_(name, last_id))
    query = query.order_by(Institution.name, Institution.id).limit(limit + 1)
    rows = list(await session.exec(query))
    return Page(
        items=[(encode_cursor(r.name, r.id), r) for r in rows[:limit]],
        has_next=len(rows) > limit,
    )
