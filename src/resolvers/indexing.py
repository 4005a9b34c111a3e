"""Keeping the vector index in step with PostgreSQL through the outbox.

A change that may move a user's point writes an outbox row in its own transaction (`enqueue`).
A worker in every server process claims rows (`FOR UPDATE SKIP LOCKED`), reads each user's
current state, embeds the indexable ones in batches, upserts or deletes their points, and only
then deletes the rows; when the vector store or the model fails, the rows stay and are retried
with backoff. Bulk writers (`qiaoqiao seed-demo`) enqueue their users the same way.

At start-up the worker's process runs `maintain`: the index of the current version is built
from PostgreSQL in the background if it does not exist (`rebuild`, see src/ai/index.py), else
compared with PostgreSQL (`reconcile`): users missing from it (a restore, an import, rows
written by anything that bypassed the outbox) are queued, and discovery says it is degraded
until they are in. `reindex` rebuilds the whole index.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import delete, func, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from src.ai.index import VectorIndex
from src.ai.vector_store import ProfilePoint
from src.models import Institution, User, UserProfile, UserProject, VectorOutbox, utcnow
from src.models.rules import in_discovery
from src.services import Services

log = logging.getLogger(__name__)

BATCH = 64
# Bump when `document_text` changes what a point is embedded from: the index version changes
# and every server rebuilds its index in the background (src/ai/index.py).
DOCUMENT_VERSION = 1
# The index is "behind" (discovery says degraded) while the outbox holds this many rows, or a
# row older than LAG_S seconds: more than the worker's normal delay.
LAG_ROWS = 100
LAG_S = 10.0
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


async def enqueue(session: AsyncSession, *user_ids: uuid.UUID) -> int | None:
    """Record, in the caller's transaction, that these users' points must be refreshed.
    Returns the last outbox row's id (None: nothing queued)."""
    last = None
    ids = list(user_ids)
    for start in range(0, len(ids), 5000):  # under PostgreSQL's bind parameter cap
        rows = [{"user_id": u} for u in ids[start : start + 5000]]
        added = insert(VectorOutbox).values(rows).returning(col(VectorOutbox.id)).cte("added")
        last = await session.scalar(select(func.max(added.c.id)))
    return last


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
            # Who has a point is `rules.in_discovery` (with no profile: null, so no point).
            select(User, UserProfile, Institution, in_discovery())
            .join(UserProfile, col(UserProfile.user_id) == col(User.id), isouter=True)
            .join(Institution, col(Institution.id) == col(UserProfile.institution_id), isouter=True)
            .where(col(User.id).in_(user_ids))
        )
    ).all()
    projects: dict[uuid.UUID, list[UserProject]] = {}
    for project in await session.exec(
        select(UserProject)
        .where(col(UserProject.user_id).in_(user_ids))
        .order_by(col(UserProject.created_at).desc())
    ):
        projects.setdefault(project.user_id, []).append(project)
    docs = {}
    for user, profile, institution, keep in rows:
        if not keep or profile is None:
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


async def _points(
    services: Services, docs: dict[uuid.UUID, ProfileDoc]
) -> tuple[list[ProfilePoint], list[str], list[uuid.UUID]]:
    """(raw points of the indexable users, their texts, the others' ids)."""
    keep = [d for d in docs.values() if d.point is not None]
    gone = [uid for uid, d in docs.items() if d.point is None]
    vectors = await services.embedder.embed_passages([d.text for d in keep]) if keep else []
    points = [
        ProfilePoint(**{**d.point.__dict__, "vector": list(v)})
        for d, v in zip(keep, vectors, strict=True)
    ]
    return points, [d.text for d in keep], gone


async def apply_docs(services: Services, docs: dict[uuid.UUID, ProfileDoc]) -> None:
    """Embed and upsert the indexable users, delete the others' points."""
    points, texts, gone = await _points(services, docs)
    await services.vectors.upsert(points, texts)
    await services.vectors.delete(gone)


async def process_outbox(services: Services) -> int:
    """Claim and apply one batch; returns how many outbox rows were done (0: nothing due)."""
    async with services.sessionmaker() as session, session.begin():
        rows = list(
            await session.exec(
                select(VectorOutbox)
                .where(col(VectorOutbox.next_attempt_at) <= func.now())
                .order_by(col(VectorOutbox.id))
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
                .where(col(VectorOutbox.id).in_([r.id for r in rows]))
                .values(
                    attempts=col(VectorOutbox.attempts) + 1,
                    next_attempt_at=utcnow() + delay,
                    last_error=type(exc).__name__,
                )
            )
            return 0
        await session.exec(
            delete(VectorOutbox).where(col(VectorOutbox.id).in_([r.id for r in rows]))
        )
        return len(rows)


async def index_behind(session: AsyncSession, services: Services) -> bool:
    """Whether discovery should not trust the index now: nothing serves, a backfill is under
    way, or the outbox holds more than the worker's normal lag."""
    index = services.vectors
    await index.ensure_open()
    if not index.complete:
        return True
    oldest = (
        select(col(VectorOutbox.created_at))
        .order_by(col(VectorOutbox.id))
        .limit(LAG_ROWS)
        .subquery()
    )
    count, first = (await session.exec(select(func.count(), func.min(oldest.c.created_at)))).one()
    if count >= LAG_ROWS:
        return True
    return first is not None and (utcnow() - first).total_seconds() > LAG_S


async def check_backfill(services: Services) -> None:
    """End the backfill state once every row it queued is done."""
    index = services.vectors
    if index.backfill_mark is None:
        return
    async with services.sessionmaker() as session:
        pending = await session.scalar(
            select(func.count()).where(col(VectorOutbox.id) <= index.backfill_mark)
        )
    if not pending:
        log.info("vector index backfill done")
        index.backfill_mark = None


async def reconcile(services: Services) -> int:
    """Queue every user whose point is missing, or present but should not be; returns how
    many. The index counts as incomplete until they are done."""
    index = services.vectors
    in_index = await index.ids()
    async with services.sessionmaker() as session, session.begin():
        wanted = set(
            await session.exec(
                select(col(User.id))
                .join(UserProfile, col(UserProfile.user_id) == col(User.id))
                .where(in_discovery())
            )
        )
        wrong = sorted((wanted - in_index) | (in_index - wanted))
        mark = await enqueue(session, *wrong)
    if wrong:
        log.info("vector index behind PostgreSQL by %d users: backfilling", len(wrong))
        index.backfill_mark = mark
    return len(wrong)


async def _all_user_ids(services: Services) -> list[uuid.UUID]:
    async with services.sessionmaker() as session:
        return list(await session.exec(select(col(User.id)).order_by(col(User.id))))


async def rebuild(services: Services, progress: Callable[[int, int], Any] | None = None) -> int:
    """Build the current version's collection from PostgreSQL while the old one (if any)
    serves, then switch to it (src/ai/index.py). Returns the number of indexed users."""
    index: VectorIndex = services.vectors
    await index.open()
    building = await index.begin_build()
    log.info("building vector index %s", building.name)
    try:
        ids = await _all_user_ids(services)
        indexed = 0
        for start in range(0, len(ids), 256):
            async with services.sessionmaker() as session:
                docs = await profile_docs(session, ids[start : start + 256])
            points, texts, _ = await _points(services, docs)
            await index.upsert_building(points, texts)
            indexed += len(points)
            if progress is not None:
                progress(min(start + 256, len(ids)), len(ids))
        # Changes the worker applied during the pass may have been overwritten by older text.
        for _ in range(3):
            touched, index.touched = sorted(index.touched), set()
            if not touched:
                break
            async with services.sessionmaker() as session:
                docs = await profile_docs(session, touched)
            await apply_docs(services, docs)
        await index.finish_build()
    except BaseException:
        await index.abandon_build()
        raise
    log.info("vector index %s built: %d users", building.name, indexed)
    return indexed


async def reindex(services: Services, progress: Callable[[int, int], Any] | None = None) -> int:
    """Rebuild the index from PostgreSQL: every user's point recomputed, stale points removed.
    Returns the number of indexed users."""
    return await rebuild(services, progress)


# One process at a time builds or backfills (several share a Qdrant server); its number is
# arbitrary but fixed.
MAINTENANCE_LOCK = 0x71710018
MAINTENANCE_RETRY_S = 30.0


async def maintain(services: Services) -> None:
    """Start-up: build the current version's index, or catch the existing one up with
    PostgreSQL. Several processes sharing one store take turns (an advisory lock); one that
    waited re-opens the index first, to serve what the other built."""
    index = services.vectors
    await index.open()
    waited = False
    while True:
        async with services.engine.connect() as conn:
            mine = await conn.scalar(
                text("SELECT pg_try_advisory_lock(:k)"), {"k": MAINTENANCE_LOCK}
            )
            if mine:
                try:
                    if waited:
                        await index.reopen()
                    await index.drop_unfinished()
                    if index.needs_build:
                        await rebuild(services)
                    else:
                        await reconcile(services)
                    return
                finally:
                    await conn.execute(
                        text("SELECT pg_advisory_unlock(:k)"), {"k": MAINTENANCE_LOCK}
                    )
        waited = True
        await asyncio.sleep(MAINTENANCE_RETRY_S)
