"""Discovery: a natural-language prompt, embedded, searched in the vector index with filters and
exclusions applied inside the vector query; PostgreSQL ranks instead when the index is down."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import logging
import re
import uuid
from dataclasses import dataclass
from datetime import date

from sqlalchemy import Float, case, cast, func, literal
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from src.ai.vector_store import SearchFilter
from src.models import Institution, User, UserBlock, UserProfile, UserSwipe
from src.models.rules import visible_to
from src.resolvers.auth import rate_limit
from src.resolvers.errors import BadArgument, InvalidInput
from src.resolvers.indexing import CITY_NAMES, index_behind, normalize_city, profile_docs
from src.resolvers.pagination import check_first
from src.resolvers.profiles import today
from src.resolvers.quotas import consume
from src.resolvers.users import require_registered
from src.services import Services

log = logging.getLogger(__name__)

MAX_PROMPT = 200
# How deep a search can be paged (a vector search past it gets slow; nobody scrolls that far).
MAX_OFFSET = 1000
# The embedding and the index search together; the rest of the 2 s an answer may take when the
# index hangs (SECURITY.md 24) is left for the fallback ranking in PostgreSQL.
VECTOR_TIMEOUT_S = 1.4


@dataclass(frozen=True)
class Criteria:
    city: str | None = None
    institution_id: str | None = None
    gender: str | None = None
    min_age: int | None = None
    max_age: int | None = None
    exclude_swiped: bool = True


@dataclass(frozen=True)
class Hit:
    user_id: uuid.UUID
    score: float


@dataclass(frozen=True)
class Results:
    hits: list[tuple[str, Hit]]  # (cursor, hit)
    has_next: bool
    degraded: bool


def _fingerprint(prompt: str, criteria: Criteria) -> str:
    return hashlib.sha256(repr((prompt, criteria)).encode()).hexdigest()[:12]


def _cursor(fingerprint: str, offset: int) -> str:
    return base64.urlsafe_b64encode(f"{fingerprint}:{offset}".encode()).decode().rstrip("=")


def _offset(after: str | None, fingerprint: str) -> int:
    """Cursors are positions in one search: reusing one for another search is an error."""
    if not after:
        return 0
    try:
        raw = base64.urlsafe_b64decode(after + "=" * (-len(after) % 4)).decode()
        mark, offset = raw.split(":")
        if mark != fingerprint or not 0 <= int(offset) <= MAX_OFFSET:
            raise ValueError
        return int(offset)
    except (ValueError, UnicodeDecodeError):
        raise BadArgument("`after` is not a cursor of this search.") from None


def _filter(criteria: Criteria, exclude: frozenset[uuid.UUID]) -> SearchFilter:
    year = today().year
    institution = None
    if criteria.institution_id:
        try:
            institution = uuid.UUID(criteria.institution_id)
        except ValueError:
            raise InvalidInput("No such institution.", field="institutionId") from None
    for field, value in (("minAge", criteria.min_age), ("maxAge", criteria.max_age)):
        if value is not None and not 18 <= value <= 120:
            raise InvalidInput("Ages are between 18 and 120.", field=field)
    return SearchFilter(
        city=normalize_city(criteria.city),
        institution_id=institution,
        gender=criteria.gender,
        # Someone aged A was born in (year - A - 1) or (year - A): birth years approximate ages.
        min_birth_year=year - criteria.max_age - 1 if criteria.max_age else None,
        max_birth_year=year - criteria.min_age if criteria.min_age else None,
        exclude_ids=exclude,
    )


async def _excluded(
    session: AsyncSession, viewer_id: uuid.UUID, swiped: bool
) -> frozenset[uuid.UUID]:
    """The viewer, everyone blocked either way, and (optionally) everyone already swiped."""
    ids = {viewer_id}
    ids.update(
        await session.exec(
            select(col(UserBlock.blocked_id)).where(col(UserBlock.blocker_id) == viewer_id)
        )
    )
    ids.update(
        await session.exec(
            select(col(UserBlock.blocker_id)).where(col(UserBlock.blocked_id) == viewer_id)
        )
    )
    if swiped:
        ids.update(
            await session.exec(
                select(col(UserSwipe.target_id)).where(col(UserSwipe.swiper_id) == viewer_id)
            )
        )
    return frozenset(ids)


async def discover(
    session: AsyncSession,
    services: Services,
    viewer: User,
    *,
    prompt: str | None,
    criteria: Criteria,
    first: int | None,
    after: str | None,
    quota_kind: str | None = "DISCOVERY",
) -> Results:
    """One page of people matching `prompt` and `criteria`. `quota_kind` None: the caller
    already metered this request (a search the chat model asked for)."""
    limit, prompt, fingerprint, offset = _request(viewer, prompt, criteria, first, after)
    await rate_limit(services, "discover:user", str(viewer.id))
    if quota_kind:
        await consume(session, services, viewer.id, quota_kind, now=services.clock())
    exclude = await _excluded(session, viewer.id, criteria.exclude_swiped)
    flt = _filter(criteria, exclude)
    degraded = False
    try:
        async with asyncio.timeout(VECTOR_TIMEOUT_S):
            # An index that misses people (being built, backfilled, far behind the outbox)
            # would answer with fewer people than there are, and say nothing: rank in
            # PostgreSQL instead, and say so.
            if await index_behind(session, services):
                raise IndexBehind
            vector, text = await _query_vector(session, services, viewer.id, prompt)
            found = await services.vectors.search(vector, flt, limit + 1, offset, text=text)
        hits = [Hit(h.user_id, h.score) for h in found]
        hits = await _still_visible(session, viewer.id, hits)
    except Exception as exc:  # the index or the model is down or slow: rank in PostgreSQL
        if not isinstance(exc, IndexBehind):
            log.warning("discovery degraded: %s", type(exc).__name__)
        degraded = True
        hits = await _fallback(session, viewer.id, prompt, flt, limit + 1, offset)
    page = hits[:limit]
    return Results(
        hits=[(_cursor(fingerprint, offset + i + 1), hit) for i, hit in enumerate(page)],
        has_next=len(hits) > limit and offset + limit < MAX_OFFSET,
        degraded=degraded,
    )


def _request(
    viewer: User, prompt: str | None, criteria: Criteria, first: int | None, after: str | None
) -> tuple[int, str, str, int]:
    """(page size, prompt, fingerprint, offset), or the refusals that come before counting."""
    require_registered(viewer)
    limit = check_first(first)
    prompt = " ".join((prompt or "").split())
    if len(prompt) > MAX_PROMPT:
        raise InvalidInput(f"A prompt is at most {MAX_PROMPT} characters.", field="prompt")
    fingerprint = _fingerprint(prompt, criteria)
    return limit, prompt, fingerprint, _offset(after, fingerprint)


def check(
    viewer: User, *, prompt: str | None, criteria: Criteria, first: int | None, after: str | None
) -> None:
    """Raises what `discover` would for these arguments whatever the counters say: its checks
    before the rate limit, and a bad filter (which it finds after the quota). A caller that
    must not count a request twice asks this first."""
    _request(viewer, prompt, criteria, first, after)
    _filter(criteria, frozenset())


class IndexBehind(Exception):
    """The index is known to miss people just now (see `indexing.index_behind`)."""


async def _query_vector(
    session: AsyncSession, services: Services, viewer_id: uuid.UUID, prompt: str
) -> tuple[list[float], str | None]:
    """(vector, text): a raw query embedding of `text`, or (text None) a stored vector."""
    if prompt:
        return list((await services.embedder.embed_queries([prompt]))[0]), prompt
    # No prompt: people like the viewer. Their profile is embedded as a *query* (e5 is
    # asymmetric: a passage-to-passage match favours the same language over the same meaning).
    doc = (await profile_docs(session, [viewer_id])).get(viewer_id)
    text = doc.text if doc and doc.text else ""
    if not text:
        own = await services.vectors.get_vector(viewer_id)
        if own is not None:
            return own, None
    return list((await services.embedder.embed_queries([text]))[0]), text


async def _still_visible(session: AsyncSession, viewer_id: uuid.UUID, hits: list[Hit]) -> list[Hit]:
    """The index lags PostgreSQL by the outbox: drop anyone who stopped being visible since."""
    if not hits:
        return hits
    ids = set(
        await session.exec(
            select(col(User.id))
            .join(UserProfile, col(UserProfile.user_id) == col(User.id))
            .where(col(User.id).in_([h.user_id for h in hits]), visible_to(viewer_id))
        )
    )
    return [h for h in hits if h.user_id in ids]


def _terms(prompt: str) -> list[str]:
    """Words, and for Chinese runs their two-character pieces (Chinese has no spaces)."""
    terms: list[str] = []
    for word in re.findall(r"[\w']+", prompt.lower()):
        if re.search(r"[\u4e00-\u9fff]", word) and len(word) > 2:
            terms += [word[i : i + 2] for i in range(len(word) - 1)]
        elif len(word) > 1:
            terms.append(word)
    return terms[:20]


async def _fallback(
    session: AsyncSession,
    viewer_id: uuid.UUID,
    prompt: str,
    flt: SearchFilter,
    limit: int,
    offset: int,
) -> list[Hit]:
    """Degraded ranking: how many prompt terms the profile mentions, then recency."""
    document = func.lower(
        func.concat_ws(
            " ",
            col(UserProfile.nickname),
            col(UserProfile.bio),
            func.array_to_string(col(UserProfile.interests), " "),
            col(UserProfile.looking_for),
            col(UserProfile.city),
            col(Institution.name),
        )
    )
    matched = [
        case((document.contains(term, autoescape=True), 1), else_=0) for term in _terms(prompt)
    ]
    score = sum(matched, literal(0)) if matched else literal(0)
    query = (
        select(col(User.id), cast(score, Float))
        .join(UserProfile, col(UserProfile.user_id) == col(User.id))
        .join(Institution, col(Institution.id) == col(UserProfile.institution_id), isouter=True)
        .where(visible_to(viewer_id), col(User.id).not_in(flt.exclude_ids))
    )
    if flt.city:
        query = query.where(
            func.lower(func.trim(col(UserProfile.city))).in_(_city_spellings(flt.city))
        )
    if flt.institution_id:
        query = query.where(col(UserProfile.institution_id) == flt.institution_id)
    if flt.gender:
        query = query.where(col(UserProfile.gender) == flt.gender)
    if flt.min_birth_year:
        query = query.where(col(UserProfile.birth_date) >= date(flt.min_birth_year, 1, 1))
    if flt.max_birth_year:
        query = query.where(col(UserProfile.birth_date) <= date(flt.max_birth_year, 12, 31))
    query = (
        query.order_by(score.desc(), col(User.registered_at).desc(), col(User.id))
        .offset(offset)
        .limit(limit)
    )
    rows = (await session.exec(query)).all()
    return [Hit(uid, float(s)) for uid, s in rows]


def _city_spellings(city: str) -> list[str]:
    return [city, *(k for k, v in CITY_NAMES.items() if v == city)]
