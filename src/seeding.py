"""`qiaoqiao seed-demo`: registered demo users with profiles and projects, in bulk. A batch job,
not a request: it commits batch by batch, so a large run holds no huge transaction. Each batch
queues its users for the vector index in the same transaction."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from itertools import islice

from sqlalchemy import insert
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from src.models import Consent, Institution, User, UserProfile, UserProject
from src.resolvers.demo_data import DemoUser, generate_users
from src.resolvers.indexing import enqueue

BATCH = 1000


def demo_user_id(name: str) -> uuid.UUID:
    return uuid.uuid5(uuid.NAMESPACE_URL, f"qiaoqiao:demo-user:{name}")


async def seed_demo_users(
    session: AsyncSession, *, count: int, seed: int = 1, policy_version: str, now: datetime
) -> int:
    """Create `count` demo users (deterministic by `seed`); existing ones are skipped.

    They log in like development users: `wechatLogin(code: "dev:<name>")`. Returns how many
    were new. Commits batch by batch, so a large run does not hold one huge transaction.
    `now`: the one clock's time (`services.clock()`); registrations spread over the year before.
    """
    institutions = dict(
        (await session.exec(select(col(Institution.name), col(Institution.id)))).all()
    )
    added = 0
    users = generate_users(count, seed=seed)
    index = 0
    while batch := list(islice(users, BATCH)):
        added += await _insert_batch(session, batch, institutions, now, index, policy_version)
        index += len(batch)
        await session.commit()
    return added


async def _insert_batch(
    session: AsyncSession,
    batch: list[DemoUser],
    institutions: dict[str, uuid.UUID],
    now: datetime,
    start: int,
    policy_version: str,
) -> int:
    user_rows = []
    for offset, demo in enumerate(batch):
        # Spread registrations over the past year so "newest first" has an order to show.
        registered = now - timedelta(minutes=7 * (start + offset))
        user_rows.append(
            {
                "id": demo_user_id(demo.name),
                "wechat_openid": f"dev:{demo.name}",
                "status": "active",
                "role": "user",
                "registered_at": registered,
                "created_at": registered,
            }
        )
    created = set(
        (
            await session.exec(
                pg_insert(User).values(user_rows).on_conflict_do_nothing().returning(col(User.id))
            )
        ).scalars()
    )
    if not created:
        return 0
    fresh = [d for d in batch if demo_user_id(d.name) in created]
    await session.exec(
        insert(Consent).values(
            [
                {
                    "id": uuid.uuid4(),
                    "user_id": demo_user_id(d.name),
                    "policy_version": policy_version,
                }
                for d in fresh
            ]
        )
    )
    await session.exec(
        insert(UserProfile).values(
            [
                {
                    "user_id": demo_user_id(d.name),
                    "nickname": d.nickname,
                    "gender": d.gender,
                    "birth_date": d.birth_date,
                    "city": d.city,
                    "bio": d.bio,
                    "interests": d.interests,
                    "looking_for": d.looking_for,
                    "institution_id": institutions.get(d.institution_name or ""),
                    "visibility": "discoverable" if d.discoverable else "hidden",
                }
                for d in fresh
            ]
        )
    )
    projects = [
        {
            "id": uuid.uuid4(),
            "user_id": demo_user_id(d.name),
            "title": p.title,
            "description": p.description,
            "role": p.role,
            "link": p.link,
            "tags": p.tags,
            "started_on": p.started_on,
            "ended_on": p.ended_on,
            "created_at": now - timedelta(days=i),
        }
        for d in fresh
        for i, p in enumerate(d.projects)
    ]
    if projects:  # executemany: SQLAlchemy batches the rows under PostgreSQL's parameter cap
        await session.exec(insert(UserProject), params=projects)
    # Like every other way in, through the outbox: a running server indexes them at once, the
    # next one to start does otherwise.
    await enqueue(session, *(demo_user_id(d.name) for d in fresh))
    return len(fresh)
