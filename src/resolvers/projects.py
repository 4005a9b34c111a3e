"""A user's project portfolio: only its owner changes it; others' ids answer as not found."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import ARRAY, Uuid, cast, func, true
from sqlalchemy.orm import aliased
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from src.models import User, UserProject
from src.models.rules import after as after_cursor
from src.resolvers.errors import InvalidInput, NotFound, UserFacingError
from src.resolvers.indexing import enqueue
from src.resolvers.pagination import Page, decode_cursor, encode_cursor
from src.resolvers.profiles import clean_https_url, clean_tags, clean_text

MAX_PROJECTS = 30


@dataclass(frozen=True)
class ProjectData:
    title: str
    description: str | None = None
    role: str | None = None
    link: str | None = None
    tags: list[str] | None = None
    started_on: str | None = None
    ended_on: str | None = None


def parse_month_or_day(value: str | None, field: str) -> date | None:
    """YYYY-MM-DD, or YYYY-MM meaning the first of that month."""
    if value is None or not value.strip():
        return None
    raw = value.strip()
    try:
        return date.fromisoformat(raw if len(raw) != 7 else raw + "-01")
    except ValueError:
        raise InvalidInput("Use YYYY-MM or YYYY-MM-DD.", field=field) from None


def _apply(project: UserProject, data: ProjectData) -> None:
    title = " ".join(data.title.split())
    if not 1 <= len(title) <= 100:
        raise InvalidInput("Title must be 1 to 100 characters.", field="title")
    started = parse_month_or_day(data.started_on, "startedOn")
    ended = parse_month_or_day(data.ended_on, "endedOn")
    if started and ended and ended < started:
        raise InvalidInput("The end is before the start.", field="endedOn")
    project.title = title
    project.description = clean_text(data.description, "description", 2000)
    project.role = clean_text(data.role, "role", 50)
    project.link = clean_https_url(data.link, "link")
    project.tags = clean_tags(data.tags, "tags", 10)
    project.started_on, project.ended_on = started, ended


async def add_project(session: AsyncSession, user: User, data: ProjectData) -> UserProject:
    # Serialize the owner's additions so the 30-project cap holds under concurrency.
    await session.exec(select(col(User.id)).where(col(User.id) == user.id).with_for_update())
    count = await session.scalar(select(func.count()).where(col(UserProject.user_id) == user.id))
    if (count or 0) >= MAX_PROJECTS:
        raise UserFacingError(f"At most {MAX_PROJECTS} projects.", code="LIMIT_REACHED")
    project = UserProject(user_id=user.id, title="")
    _apply(project, data)
    session.add(project)
    await session.flush()
    await enqueue(session, user.id)
    return project


async def _owned(session: AsyncSession, user: User, raw_id: str) -> UserProject:
    try:
        project_id = uuid.UUID(raw_id)
    except ValueError:
        raise NotFound("No such project.", field="id") from None
    project = await session.get(UserProject, project_id)
    if project is None or project.user_id != user.id:
        raise NotFound("No such project.", field="id")
    return project


async def update_project(
    session: AsyncSession, user: User, raw_id: str, data: ProjectData, now: datetime
) -> UserProject:
    project = await _owned(session, user, raw_id)
    _apply(project, data)
    project.updated_at = now
    session.add(project)
    await session.flush()
    await enqueue(session, user.id)
    return project


async def delete_project(session: AsyncSession, user: User, raw_id: str) -> None:
    project = await _owned(session, user, raw_id)
    await session.delete(project)
    await session.flush()
    await enqueue(session, user.id)


async def project_pages(
    session: AsyncSession, owner_ids: list[uuid.UUID], first: int, after: str | None
) -> dict[uuid.UUID, Page[UserProject]]:
    """The first `first` projects after `after` of every owner, newest first, in one query."""
    after_at: datetime | None = None
    after_id: uuid.UUID | None = None
    if after:
        after_at, after_id = decode_cursor(after, datetime, uuid.UUID)
    # unnest(owners) CROSS JOIN LATERAL (their next `first + 1` projects): one statement.
    owner = (
        func.unnest(cast(list(owner_ids), ARRAY(Uuid))).table_valued("id").render_derived("owner")
    )
    per_owner = select(UserProject).where(col(UserProject.user_id) == owner.c.id)
    if after_at is not None:
        per_owner = per_owner.where(
            after_cursor(
                [col(UserProject.created_at), col(UserProject.id)],
                [after_at, after_id],
                descending=True,
            )
        )
    lateral = (
        per_owner.order_by(col(UserProject.created_at).desc(), col(UserProject.id).desc())
        .limit(first + 1)
        .lateral("p")
    )
    project = aliased(UserProject, lateral)
    rows = await session.exec(select(project).select_from(owner).join(lateral, true()))
    grouped: dict[uuid.UUID, list[UserProject]] = {owner: [] for owner in owner_ids}
    for row in rows:
        grouped[row.user_id].append(row)
    return {
        owner: Page(
            items=[(encode_cursor(p.created_at, p.id), p) for p in projects[:first]],
            has_next=len(projects) > first,
        )
        for owner, projects in grouped.items()
    }
