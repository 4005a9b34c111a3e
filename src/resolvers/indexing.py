"""Keeping the vector index in step with PostgreSQL through the outbox.

A change that may move a user's point writes an outbox row in its own transaction (`enqueue`).
A worker in every server process claims rows (`FOR UPDATE SKIP LOCKED`), reads each user's
current state, embeds the indexable ones in batches, upserts or deletes their points, and only
then deletes the rows; when the vector store or the model fails, the rows stay and are retried
with backoff. `reindex` rebuilds the whole index from PostgreSQL.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import delete, func, update
from sqlalchemy.dialects.postgresql import insert
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from src.ai.vector_store import ProfilePoint
from src.models import Institution, User, UserProfile, UserProject, VectorOutbox, utcnow
from src.services import Services

log = logging.getLogger(__name__)

BATCH = 64
MAX_BACKOFF = timedelta(minutes=5)
# The document describes the person, not their portfolio: the newest few projects with a short
# description carry the signal, and embedding cost grows with every token (median ~150 tokens).
DOC_PROJECTS = 3
DOC_DESCRIPTION_CHARS = 100
DOC_CHARS = 1200

# Cities people write in either language; filters and payloads use one spelling.
CITY_NAMES = {
    "beijing": "北京",
    "shanghai": "上海",
    "shenzhen": "深圳",
    "guangzhou": "广州",
    "hangzhou": "杭州",
    "chengdu": "成都",
    "nanjing": "南京",
    "wuhan": "武汉",
    "xian": "西安",
    "xi'an": "西安",
    "suzhou": "苏州",
    "tianjin": "天津",
    "chongqing": "重庆",
    "hong kong": "香港",
    "hongkong": "香港",
    "changsha": "长沙",
    "xiamen": "厦门",
    "qingdao": "青岛",
    "hefei": "合肥",
    "zhengzhou": "郑州",
    "dalian": "大连",
}


def normalize_city(city: str | None) -> str | None:
    if not city or not city.strip():
        return None
    key = " ".join(city.split()).lower().removesuffix("市").removesuffix(" city")
    return CITY_NAMES.get(key, key)


async def enqueue(session: AsyncSession, *user_ids: uuid.UUID) -> None:
    """Record, in the caller's transaction, that these users' points must be refreshed."""
    if user_ids:
        await session.exec(
            insert(VectorOutbox).values([{"user_id": u} for u in user_ids])  # type: ignore[call-overload]
        )


@dataclass(frozen=True)
class ProfileDoc:
    point: ProfilePoint | None  # None: not indexable (hidden, held, banned, deleted, unregistered)
    text: str


@dataclass(frozen=True)
class ProjectText:
    title: str
    role: str | None
    description: str | None
    tags: list[str]


def document_text(
    *,
    nickname: str,
    bio: str | None,
    interests: list[str],
    looking_for: str | None,
    city: str | None,
    institution: tuple[str, list[str]] | None,
    projects: list[ProjectText],
) -> str:
    """The text a user's point is embedded from; `projects` newest first."""
    parts = [nickname, bio or "", " ".join(interests), looking_for or "", city or ""]
    if institution is not None:
        name, aliases = institution
        parts += [name, " ".join(aliases)]
    for p in projects[:DOC_PROJECTS]:
        description = (p.description or "")[:DOC_DESCRIPTION_CHARS]
        parts += [p.title, p.role or "", description, " ".join(p.tags)]
    return ". ".join(part for part in parts if part)[:DOC_CHARS]


async def profile_docs(
    session: AsyncSession, user_ids: list[uuid.UUID]
) -> dict[uuid.UUID, ProfileDoc]:
    """What each user's point should be now, read from PostgreSQL."""
    rows = (
        await session.exec(
            select(User, UserProfile, Institution)
            .join(UserProfile, UserProfile.user_id == User.id, isouter=True)  # type: ignore[arg-type]
            .join(Institution, Institution.id == UserProfile.institution_id, isouter=True)  # type: ignore[arg-type]
            .where(User.id.in_(user_ids))  # type: ignore[attr-defined]
        )
    ).all()
    projects: dict[uuid.UUID, list[UserProject]] = {}
    for project in await session.exec(
        select(UserProject)
        .where(UserProject.user_id.in_(user_ids))  # type: ignore[attr-defined]
        .order_by(UserProject.created_at.desc())  # type: ignore[attr-defined]
    ):
        projects.setdefault(project.user_id, []).append(project)
    docs = {}
    for user, profile, institution in rows:
        indexable = (
            profile is not None
            and user.status == "active"
            and user.registered_at is not None
            and user.moderation_hold_at is None
            and profile.visibility == "discoverable"
        )
        if not indexable:
            docs[user.id] = ProfileDoc(None, "")
            continue
        text = document_text(
            nickname=profile.nickname,
            bio=profile.bio,
            interests=profile.interests,
            looking_for=profile.looking_for,
            city=profile.city,
            institution=(institution.name, institution.aliases) if institution else None,
            projects=[
                ProjectText(p.title, p.role, p.description, p.tags)
                for p in projects.get(user.id, [])
            ],
        )
        docs[user.id] = ProfileDoc(
            ProfilePoint(
                user_id=user.id,
                vector=[],
                city=normalize_city(profile.city),
                institution_id=profile.institution_id,
                gender=profile.gender,
                birth_year=profile.birth_date.year if profile.birth_date else None,
            ),
            text,
        )
    return docs


async def apply_docs(services: Services, docs: dict[uuid.UUID, ProfileDoc]) -> None:
    """Embed and upsert the indexable users, delete the others' points."""
    keep = [d for d in docs.values() if d.point is not None]
    gone = [uid for uid, d in docs.items() if d.point is None]
    if keep:
        vectors = await services.embedder.embed_passages([d.text for d in keep])
        await services.vectors.upsert(
            [
                ProfilePoint(**{**d.point.__dict__, "vector": list(v)})  # type: ignore[union-attr]
                for d, v in zip(keep, vectors, strict=True)
            ]
        )
    if gone:
        await services.vectors.delete(gone)


async def process_outbox(services: Services) -> int:
    """Claim and apply one batch; returns how many outbox rows were done (0: nothing due)."""
    async with services.sessionmaker() as session, session.begin():
        rows = list(
            await session.exec(
                select(VectorOutbox)
                .where(VectorOutbox.next_attempt_at <= func.now())
                .order_by(VectorOutbox.id)  # type: ignore[arg-type]
                .limit(BATCH)
                .with_for_update(skip_locked=True)
            )
        )
        if not rows:
            return 0
        user_ids = list({r.user_id for r in rows})
        try:
            await apply_docs(services, await profile_docs(session, user_ids))
        except Exception as exc:  # the store or the model is down: keep the rows, retry later
            attempts = max(r.attempts for r in rows) + 1
            delay = min(timedelta(seconds=2**attempts), MAX_BACKOFF)
            log.warning("vector index update failed (%s); retry in %s", type(exc).__name__, delay)
            await session.exec(
                update(VectorOutbox)
                .where(VectorOutbox.id.in_([r.id for r in rows]))  # type: ignore[union-attr]
                .values(
                    attempts=VectorOutbox.attempts + 1,
                    next_attempt_at=utcnow() + delay,
                    last_error=type(exc).__name__,
                )
            )
            return 0
        await session.exec(delete(VectorOutbox).where(VectorOutbox.id.in_([r.id for r in rows])))  # type: ignore[union-attr]
        return len(rows)


async def backlog(session: AsyncSession) -> int:
    return int(await session.scalar(select(func.count()).select_from(VectorOutbox)) or 0)


async def reindex(services: Services) -> int:
    """Rebuild the index from PostgreSQL: every user's point recomputed, stale points removed.
    Returns the number of indexed users."""
    await services.vectors.ensure_collection()
    started = utcnow()
    indexed = 0
    last: uuid.UUID | None = None
    while True:
        async with services.sessionmaker() as session:
            query = select(User.id).order_by(User.id).limit(256)  # type: ignore[arg-type]
            if last is not None:
                query = query.where(User.id > last)
            ids = list(await session.exec(query))
            if not ids:
                break
            docs = await profile_docs(session, ids)
        await apply_docs(services, docs)
        indexed += sum(1 for d in docs.values() if d.point is not None)
        last = ids[-1]
    # What was queued before we started is covered; what came since stays for the worker.
    async with services.sessionmaker() as session, session.begin():
        await session.exec(delete(VectorOutbox).where(VectorOutbox.created_at < started))  # type: ignore[arg-type]
    return indexed
