"""Long-lived resources the app's lifespan owns and every request shares."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import httpx
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from src.ai import neutral
from src.ai.embeddings import Embedder
from src.ai.index import IndexVersion, VectorIndex
from src.ai.llm import LLMClient
from src.ai.vector_store import list_collections, open_vector_store
from src.auth.ratelimit import RateLimiter
from src.auth.sms import SmsProvider, build_sms_provider
from src.auth.tokens import TokenService
from src.auth.wechat import WechatClient
from src.config import Settings, reveal
from src.db import ReadPool, create_engine, create_sessionmaker
from src.events import EventHub
from src.models.base import utcnow
from src.payments.wechat_pay import WechatPayClient
from src.storage import LocalStorage, S3Storage, Storage
from src.storage.urls import ProofLinks


@dataclass(frozen=True)
class Services:
    settings: Settings
    engine: AsyncEngine
    # For transactions that must commit on their own while a request's transaction is open
    # (rate-limit hits, wrong SMS codes, token-reuse revocation, the WeChat token): a pool of
    # its own, so requests holding every main connection can never starve them.
    side_engine: AsyncEngine
    # Only for the compiled read queries (see schema/fastpath.py).
    read_pool: ReadPool
    sessionmaker: async_sessionmaker[AsyncSession]
    http: httpx.AsyncClient
    tokens: TokenService
    wechat: WechatClient
    sms: SmsProvider
    rate_limiter: RateLimiter
    pay: WechatPayClient | None
    hub: EventHub
    embedder: Embedder
    # The versioned profile index (src/ai/index.py) over the configured vector store.
    vectors: VectorIndex
    storage: Storage
    proof_links: ProofLinks
    # None without LLM_BASE_URL: the AI workflows then answer from retrieval and rules.
    llm: LLMClient | None = None
    # Injectable clock (UTC): quotas and memberships read time only through it.
    clock: Callable[[], datetime] = utcnow


@functools.cache
def shared_embedder(model_name: str | None, base_dir: Path) -> Embedder:
    """One embedding model per process, whatever the number of apps: it weighs ~0.5 GB and is
    read-only once loaded (it loads on first use)."""
    return Embedder.from_settings(model_name, base_dir)


def build_index(settings: Settings, embedder: Embedder) -> VectorIndex:
    """The profile index of the current version: model, transform and document builder."""
    from src.resolvers.demo_data import parallel_sentences
    from src.resolvers.indexing import DOCUMENT_VERSION

    dim = embedder.dim
    version = IndexVersion(embedder.identity, dim, settings.vector_transform, DOCUMENT_VERSION)
    cache = (settings.model_dir or settings.data_dir) / "models"

    async def transforms(name: str) -> neutral.Neutralizer:
        return await neutral.load_or_fit(name, embedder, parallel_sentences(), cache)

    async def names() -> list[str]:
        return await list_collections(qdrant_url=settings.qdrant_url, data_dir=settings.data_dir)

    return VectorIndex(
        version,
        open_store=lambda name: open_vector_store(
            qdrant_url=settings.qdrant_url, data_dir=settings.data_dir, dim=dim, collection=name
        ),
        list_names=names,
        transforms=transforms,
        # An index made before versions existed: this model's vectors, untransformed.
        legacy=IndexVersion(embedder.identity, dim, neutral.IDENTITY, 1),
    )


def build_storage(settings: Settings, http: httpx.AsyncClient) -> Storage:
    """The configured S3-compatible bucket, else DATA_DIR/proofs."""
    if settings.s3_configured:
        return S3Storage(
            http,
            endpoint=settings.storage_s3_endpoint or "",
            bucket=settings.storage_s3_bucket or "",
            access_key=settings.storage_s3_access_key or "",
            secret_key=reveal(settings.storage_s3_secret_key),
            region=settings.storage_s3_region,
            addressing=settings.storage_s3_addressing,
        )
    return LocalStorage(settings.data_dir / "proofs")


def build_llm(settings: Settings) -> LLMClient | None:
    if not settings.llm_configured:
        return None
    assert settings.llm_base_url is not None and settings.llm_model is not None
    return LLMClient(
        base_url=settings.llm_base_url,
        model=settings.llm_model,
        api_key=reveal(settings.llm_api_key) or None,
        connect_timeout_s=settings.llm_connect_timeout_s,
        timeout_s=settings.llm_timeout_s,
        retries=settings.llm_retries,
        backoff_s=settings.llm_retry_backoff_s,
        max_tokens=settings.llm_max_tokens,
    )


def build_services(settings: Settings, engine: AsyncEngine) -> Services:
    # One pooled HTTP client for every outgoing call; each call sets its own timeouts.
    http = httpx.AsyncClient(timeout=httpx.Timeout(5.0, connect=2.0), follow_redirects=False)
    url = engine.url.render_as_string(hide_password=False)
    embedder = shared_embedder(settings.embedding_model, settings.model_dir or settings.data_dir)
    side = create_engine(url, settings.model_copy(update={"db_pool_size": 5}))
    return Services(
        side_engine=side,
        settings=settings,
        engine=engine,
        read_pool=ReadPool(engine.url.render_as_string(hide_password=False), settings),
        sessionmaker=create_sessionmaker(engine),
        http=http,
        tokens=TokenService(settings),
        wechat=WechatClient(settings, side),
        sms=build_sms_provider(settings, http),
        pay=WechatPayClient(settings, http) if settings.wechat_pay_configured else None,
        hub=EventHub(url, side, max_sockets_per_user=settings.ws_max_sockets_per_user),
        embedder=embedder,
        vectors=build_index(settings, embedder),
        storage=build_storage(settings, http),
        proof_links=ProofLinks(settings),
        llm=build_llm(settings),
        rate_limiter=RateLimiter(
            side,
            settings.rate_limits,
            Redis.from_url(reveal(settings.redis_url)) if reveal(settings.redis_url) else None,
        ),
    )


async def close_services(services: Services) -> None:
    await services.hub.stop()
    await services.vectors.close()
    await services.http.aclose()
    await services.wechat.aclose()
    if services.llm is not None:
        await services.llm.aclose()
    if services.rate_limiter.redis is not None:
        await services.rate_limiter.redis.aclose()
    await services.read_pool.close()
    await services.side_engine.dispose()
    await services.engine.dispose()
