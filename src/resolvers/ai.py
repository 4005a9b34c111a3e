"""The AI workflows as the API runs them (GraphQL and MCP alike): chat, AI search and profile
suggestions. Here live the checks (registration, rate limit, AI_REQUEST quota), the database
reads and the metadata records; the workflows themselves are plain functions in `src/ai/`.

Every call is recorded in `ai_sessions` as metadata only (kind, time, token counts, model). A
chat's turns are kept in `ai_chat_transcripts` only while it can go on (AI_CHAT_TTL_S after the
last turn), then deleted.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from dataclasses import asdict, dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import delete
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from src.ai import chat as chat_ai
from src.ai import prompts, suggestions
from src.ai.language import language_of
from src.ai.llm import LLMError, Usage
from src.ai.suggestions import Suggestion
from src.models import AIChatTranscript, AISession, User
from src.resolvers import ai_sessions, discovery
from src.resolvers.ai_data import people_cards, popular_interests, profile_facts
from src.resolvers.auth import rate_limit
from src.resolvers.calendar import local_day
from src.resolvers.errors import InvalidInput, NotFound, UserFacingError
from src.resolvers.quotas import consume
from src.resolvers.users import require_registered
from src.services import Services

log = logging.getLogger(__name__)

MAX_MESSAGE = 1000
NO_MODEL, MODEL_DOWN = "no_model", "model_down"  # keys of src/ai/texts.py CHAT


@dataclass(frozen=True)
class ChatAnswer:
    reply: str
    session_id: uuid.UUID
    used_model: str | None


@dataclass(frozen=True)
class SuggestionsAnswer:
    items: list[Suggestion]
    used_model: str | None


def _ms(started: float) -> int:
    return int((time.perf_counter() - started) * 1000)


async def _metered(session: AsyncSession, services: Services, viewer: User) -> None:
    """Registered, within the per-minute rate limit, and one AI request of today's quota."""
    require_registered(viewer)
    await rate_limit(services, "ai:user", str(viewer.id))
    await consume(session, services, viewer.id, "AI_REQUEST", now=services.clock())


async def ai_search(
    session: AsyncSession,
    services: Services,
    viewer: User,
    *,
    prompt: str,
    first: int | None,
    criteria: discovery.Criteria | None = None,
) -> discovery.Results:
    """The discovery search as an AI request (AI_REQUEST quota, recorded as metadata)."""
    require_registered(viewer)
    await rate_limit(services, "ai:user", str(viewer.id))
    started = time.perf_counter()
    results = await discovery.discover(
        session,
        services,
        viewer,
        prompt=prompt,
        criteria=criteria or discovery.Criteria(),
        first=first,
        after=None,
        quota_kind="AI_REQUEST",
    )
    await ai_sessions.record(
        services,
        viewer.id,
        kind="search",
        latency_ms=_ms(started),
        model=services.embedder.model_name,
    )
    return results


async def search_people(
    session: AsyncSession,
    services: Services,
    viewer: User,
    query: str,
    *,
    criteria: discovery.Criteria | None = None,
    first: int = 8,
    metered: bool = False,
) -> tuple[list[dict[str, Any]], bool]:
    """(public profiles of the people a search finds, whether the search was degraded).
    `metered`: an AI request of its own (the MCP tool); otherwise part of a request already
    metered (the chat)."""
    query = " ".join(query.split())[: discovery.MAX_PROMPT]
    if metered:
        results = await ai_search(
            session, services, viewer, prompt=query, first=first, criteria=criteria
        )
    else:
        results = await discovery.discover(
            session,
            services,
            viewer,
            prompt=query,
            criteria=criteria or discovery.Criteria(),
            first=first,
            after=None,
            quota_kind=None,
        )
    hits = [hit.user_id for _, hit in results.hits]
    cards = await people_cards(session, viewer.id, hits, local_day(services.clock()))
    return cards, results.degraded


async def rule_suggestions(
    session: AsyncSession, viewer: User, today: date, lang: str | None = None
) -> list[Suggestion]:
    """`lang` None: the language of the viewer's profile."""
    facts = await profile_facts(session, viewer.id, today)
    return suggestions.from_rules(facts, await popular_interests(session, viewer.id), lang)


async def profile_suggestions(
    session: AsyncSession, services: Services, viewer: User
) -> SuggestionsAnswer:
    """Field-by-field improvements of the viewer's profile: the rules' and, when a model is
    configured and answers, the model's (validated; dropped when malformed)."""
    await _metered(session, services, viewer)
    started = time.perf_counter()
    facts = await profile_facts(session, viewer.id, local_day(services.clock()))
    popular = await popular_interests(session, viewer.id)
    rules = suggestions.from_rules(facts, popular)
    made: list[Suggestion] = []
    usage, model = Usage(), None
    if services.llm is not None:
        try:
            async with asyncio.timeout(services.settings.llm_deadline_s):
                answer = await services.llm.complete(
                    prompts.suggestion_messages(facts, rules, popular),
                    json_mode=True,
                    temperature=0.3,
                )
            usage, model = answer.usage, answer.model
            made = suggestions.from_model(answer.content, facts, answer.model)
        except (LLMError, TimeoutError) as exc:
            log.warning("profile suggestions from rules only: %s", exc or "deadline")
    await ai_sessions.record(
        services,
        viewer.id,
        kind="suggestions",
        latency_ms=_ms(started),
        model=model,
        prompt_tokens=usage.prompt_tokens,
        completion_tokens=usage.completion_tokens,
    )
    return SuggestionsAnswer(suggestions.merge(rules, made), model)


async def chat(
    session: AsyncSession,
    services: Services,
    viewer: User,
    *,
    message: str,
    session_id: str | None,
) -> ChatAnswer:
    """One turn of a conversation; `session_id` continues one of the viewer's own."""
    text = message.strip()
    if not 1 <= len(text) <= MAX_MESSAGE:
        raise InvalidInput(f"A message is 1 to {MAX_MESSAGE} characters.", field="message")
    now = services.clock()
    row, transcript = None, None
    if session_id is not None:
        row, transcript = await _ongoing(session, viewer.id, session_id, now)
    await _metered(session, services, viewer)
    await purge_expired_transcripts(session, now, user_id=viewer.id)
    started = time.perf_counter()
    turn, reason = None, NO_MODEL
    if services.llm is not None:
        try:
            async with asyncio.timeout(services.settings.llm_deadline_s):
                turn = await chat_ai.converse(
                    services.llm,
                    history=list(transcript.messages) if transcript else [],
                    message=text,
                    tools=_chat_tools(session, services, viewer),
                    max_rounds=services.settings.ai_chat_max_rounds,
                )
        except (LLMError, TimeoutError) as exc:
            log.warning("chat answered without the model: %s", exc or "deadline")
            reason = MODEL_DOWN
    reply = turn.reply if turn else await _without_model(session, services, viewer, text, reason)
    usage = turn.usage if turn else Usage()
    model = turn.model if turn else None
    # The audit row commits on its own, like the quota; the transcript goes with the operation.
    if row is None:
        chat_id = await ai_sessions.record(
            services,
            viewer.id,
            kind="chat",
            latency_ms=_ms(started),
            model=model,
            prompt_tokens=usage.prompt_tokens,
            completion_tokens=usage.completion_tokens,
        )
        transcript = AIChatTranscript(ai_session_id=chat_id, user_id=viewer.id, expires_at=now)
    else:
        chat_id = row.id
        await ai_sessions.add_usage(
            services,
            chat_id,
            latency_ms=_ms(started),
            model=model,
            prompt_tokens=usage.prompt_tokens,
            completion_tokens=usage.completion_tokens,
        )
    assert transcript is not None
    if turn is not None:  # only a model needs the conversation so far
        transcript.messages = chat_ai.remember(list(transcript.messages), text, reply)
    transcript.expires_at = now + timedelta(seconds=services.settings.ai_chat_ttl_s)
    session.add(transcript)
    await session.flush()
    return ChatAnswer(reply=reply, session_id=chat_id, used_model=model)


async def _ongoing(
    session: AsyncSession, viewer_id: uuid.UUID, raw_id: str, now: datetime
) -> tuple[AISession, AIChatTranscript]:
    """The viewer's own chat and its transcript, locked for this turn. Another user's id
    answers exactly as a missing one."""
    try:
        chat_id = uuid.UUID(raw_id)
    except ValueError:
        raise NotFound("No such conversation.", field="sessionId") from None
    row = await session.scalar(
        select(AISession).where(
            col(AISession.id) == chat_id,
            col(AISession.user_id) == viewer_id,
            col(AISession.kind) == "chat",
        )
    )
    if row is None:
        raise NotFound("No such conversation.", field="sessionId")
    transcript = await session.scalar(
        select(AIChatTranscript)
        .where(col(AIChatTranscript.ai_session_id) == chat_id)
        .with_for_update()
    )
    if transcript is None or transcript.expires_at <= now:
        raise NotFound(
            "This conversation has ended; start a new one (without sessionId).", field="sessionId"
        )
    return row, transcript


async def _without_model(
    session: AsyncSession, services: Services, viewer: User, text: str, reason: str
) -> str:
    """Retrieval and rules: who a search for the message finds, and the top suggestions."""
    query = " ".join(text.split())[: discovery.MAX_PROMPT]
    people, degraded = await search_people(session, services, viewer, query, first=5)
    today = local_day(services.clock())
    advice = (await rule_suggestions(session, viewer, today, language_of(query)))[:3]
    return chat_ai.answer_without_model(query, people, advice, reason=reason, degraded=degraded)


def _chat_tools(session: AsyncSession, services: Services, viewer: User) -> list[chat_ai.Tool]:
    async def guarded(work: Any) -> Any:
        # A tool's expected failure goes back to the model; its writes (none today) roll back.
        try:
            async with session.begin_nested():
                return await work()
        except UserFacingError as exc:
            raise chat_ai.ToolFailed(exc.message) from None

    async def search_users(args: dict[str, Any]) -> Any:
        query, city = args.get("query"), args.get("city")
        if not isinstance(query, str) or not query.strip():
            raise chat_ai.ToolFailed("query must be a non-empty string")
        criteria = discovery.Criteria(city=city if isinstance(city, str) and city else None)
        people, degraded = await guarded(
            lambda: search_people(session, services, viewer, query, criteria=criteria)
        )
        return {"people": people, "degraded": degraded}

    async def get_my_profile(args: dict[str, Any]) -> Any:
        today = local_day(services.clock())
        return (await guarded(lambda: profile_facts(session, viewer.id, today))).as_dict()

    async def suggest_profile_improvements(args: dict[str, Any]) -> Any:
        today = local_day(services.clock())
        found = await guarded(lambda: rule_suggestions(session, viewer, today))
        return {"suggestions": [asdict(s) for s in found]}

    empty = {"type": "object", "properties": {}}
    return [
        chat_ai.Tool(
            "search_users",
            "Find people on qiaoqiao by a natural-language description (Chinese or English), "
            "optionally in one city. Returns public profiles.",
            {
                "type": "object",
                "properties": {
                    "query": {"type": "string", "description": "Whom to look for."},
                    "city": {"type": "string", "description": "Only people in this city."},
                },
                "required": ["query"],
            },
            search_users,
        ),
        chat_ai.Tool("get_my_profile", "Read the user's own profile.", empty, get_my_profile),
        chat_ai.Tool(
            "suggest_profile_improvements",
            "Rule-based, field-by-field suggestions to improve the user's profile.",
            empty,
            suggest_profile_improvements,
        ),
    ]


async def purge_expired_transcripts(
    session: AsyncSession, now: datetime, *, user_id: uuid.UUID | None = None
) -> int:
    """Chat turns are kept only while the conversation can go on: delete the expired ones
    (one user's, at each of their turns; everyone's, from the app's periodic purge)."""
    query = delete(AIChatTranscript).where(col(AIChatTranscript.expires_at) <= now)
    if user_id is not None:
        query = query.where(col(AIChatTranscript.user_id) == user_id)
    result = await session.exec(query)
    return int(result.rowcount or 0)
