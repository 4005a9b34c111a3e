"""The Starlette application: GraphQL over HTTP and websocket, MCP, health and readiness."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import overload

import orjson
from cross_web import AsyncHTTPRequestAdapter, HTTPException
from mcp.server import MCPServer
from sqlalchemy import text
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.types import ASGIApp, Receive, Scope, Send
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.exceptions import ConnectionRejectionError
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL
from strawberry.types.unset import UNSET, UnsetType

from src.config import Settings, get_settings
from src.db import create_engine, resolve_database_url
from src.endpoints import proof_image, wechat_push
from src.graphiql import graphiql_assets, graphiql_page, graphiql_response
from src.graphql_http import DocumentCache, GraphQLOverHTTP
from src.graphql_ws import TransportWSHandler
from src.mcp_server import mcp_http_app
from src.observability import RequestIdMiddleware, configure_logging
from src.payments.wechat_pay import InvalidNotification
from src.request_guard import (
    RequestGuard,
    check_multipart_headers,
    check_multipart_map,
    check_upload_operation,
    decode_json,
)
from src.resolvers import ai, orders
from src.resolvers.index_worker import IndexWorker, trouble
from src.schema import build_schema
from src.schema.context import Context
from src.schema.fastpath import CompiledQueries, FastPathApp
from src.schema.role_sdl import sdl_by_role
from src.schema.ws_login import ExpiringLoginHandler
from src.services import Services, build_services, close_services

log = logging.getLogger("qiaoqiao.app")


class SocketHandler(ExpiringLoginHandler, TransportWSHandler):
    """graphql-transport-ws to the letter (src/graphql_ws.py), with logins that expire on an
    open socket unless renewed (src/schema/ws_login.py)."""


class GraphQLApp(GraphQL[Context, None]):
    max_tokens = 2000
    graphql_transport_ws_handler_class = SocketHandler
    documents: DocumentCache  # create_app gives each app its schema's document checker
    ide_page = ""  # GraphiQL (src/graphiql.py), when enabled

    async def render_graphql_ide(self, request: Request) -> Response:
        return graphiql_response(self.ide_page)

    async def parse_multipart(self, request: AsyncHTTPRequestAdapter) -> dict[str, str]:
        """File uploads: only with the CSRF header, only for `reportUser` (SECURITY.md 6)."""
        check_multipart_headers(request.headers)
        try:
            form = await request.get_form_data()  # kept by the request: not read twice
        except ValueError:
            raise HTTPException(400, "Unable to parse the multipart body") from None
        files_map = form.form.get("map", "{}")
        check_multipart_map(self.parse_json(files_map) if isinstance(files_map, str) else None)
        try:
            data = await super().parse_multipart(request)
        except (LookupError, TypeError, ValueError, AttributeError):  # a path that leads nowhere
            raise HTTPException(400, "A multipart `map` path does not fit `operations`.") from None
        check_upload_operation(data, self.max_tokens)
        return data

    def decode_json(self, data: str | bytes) -> object:
        return decode_json(data)

    @overload
    async def run(
        self, request: Request, context: Context = UNSET, root_value: None = UNSET
    ) -> Response: ...

    @overload
    async def run(
        self, request: WebSocket, context: Context = UNSET, root_value: None = UNSET
    ) -> WebSocket: ...

    async def run(
        self, request: Request | WebSocket, context: Context = UNSET, root_value: None = UNSET
    ) -> Response | WebSocket:
        try:
            return await super().run(request, context, root_value)
        finally:
            if isinstance(request, Request):
                # Uploaded files spooled to disk are closed (and removed) with the request.
                await request.close()

    def encode_json(self, data: object) -> str:
        # orjson: several times faster than json, and Chinese text stays UTF-8, not \uXXXX.
        # A str, not bytes: over websockets bytes would go out as binary frames, which
        # graphql-transport-ws clients (wx.connectSocket included) do not read as messages.
        return orjson.dumps(data).decode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            # However the socket ended (closed, dropped, refused), its presence goes with it.
            joined = scope.get("qq.socket")
            if joined is not None:
                await scope["app"].state.services.hub.leave(*joined)

    async def get_context(
        self, request: Request | WebSocket, response: Response | WebSocket | None = None
    ) -> Context:
        context = Context(request=request, response=response, services=request.app.state.services)
        context.authenticate(request.headers.get("authorization"))
        return context

    async def on_ws_connect(self, context: Context) -> UnsetType:
        """Authenticate a websocket from `connection_init` {"authorization": "Bearer …"}, or
        else from the handshake's header; anything else closes it with 4403."""
        params = context.connection_params or {}
        given = params.get("authorization") or params.get("Authorization")
        header = given if isinstance(given, str) else context.request.headers.get("authorization")
        context.authenticate(header)
        try:
            user = await context.viewer() if context.claims else None
            user_id = user.id if user else None
        finally:
            # The socket may live for hours: never hold a database session for it.
            await context.finish(commit=False)
        if user_id is None:
            raise ConnectionRejectionError({"reason": "unauthenticated"})
        socket_id = await context.services.hub.join(user_id)
        if socket_id is None:
            raise ConnectionRejectionError({"reason": "too many sockets"})
        context.request.scope["qq.socket"] = (user_id, socket_id)
        return UNSET


async def health(_: Request) -> JSONResponse:
    return JSONResponse({"status": "ok"})


async def ready(request: Request) -> JSONResponse:
    """200 when PostgreSQL answers within the readiness timeout, else 503. The vector index
    and the outbox backlog are reported too; without the index, discovery degrades but the
    service stays up, so they do not decide readiness."""
    services: Services = request.app.state.services
    body: dict[str, object] = {}
    timeout = services.settings.ready_timeout_s
    try:
        async with asyncio.timeout(timeout):
            async with services.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
        body["database"] = "ok"
    except Exception as exc:  # any failure means "not ready", never a 500
        log.warning("readiness: database unavailable: %s", type(exc).__name__)
        body["database"] = "unavailable"
    try:
        async with asyncio.timeout(timeout), services.engine.connect() as conn:
            body["outboxBacklog"] = await conn.scalar(text("SELECT count(*) FROM vector_outbox"))
    except Exception:
        body["outboxBacklog"] = None
    try:
        async with asyncio.timeout(timeout):
            body["vectors"] = "ok" if await services.vectors.ping() else "unavailable"
    except Exception:
        body["vectors"] = "unavailable"
    status = 200 if body["database"] == "ok" else 503
    return JSONResponse({"status": "ready" if status == 200 else "unavailable", **body}, status)


async def pay_notify(request: Request) -> Response:
    """WeChat Pay's payment notification: verified, decrypted, applied once; 204 when done.
    Anything else answers FAIL, and WeChat Pay retries for a day."""
    services: Services = request.app.state.services
    body = await request.body()
    if len(body) > 64 * 1024:
        return JSONResponse({"code": "FAIL", "message": "too large"}, 413)
    try:
        await orders.handle_notification(services, dict(request.headers), body.decode())
    except (InvalidNotification, UnicodeDecodeError) as exc:
        log.warning("payment notification refused: %s", exc)
        return JSONResponse({"code": "FAIL", "message": "invalid notification"}, 400)
    return Response(status_code=204)


async def _settle_orders_forever(services: Services) -> None:
    """Orders whose notification never came are settled by asking WeChat Pay."""
    while True:
        await asyncio.sleep(services.settings.wechat_pay_settle_interval_s)
        try:
            await orders.settle_pending_orders(services)
        except Exception:  # keep settling after a bad round; the log has the details
            log.exception("settling orders failed")


class _McpEndpoint:
    """/mcp: the MCP app of the running lifespan (built per run: a session manager runs once,
    and an app's lifespan may run more than once)."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await scope["app"].state.mcp_app(scope, receive, send)


async def _run_mcp(mcp: MCPServer, started: asyncio.Event, stop: asyncio.Event) -> None:
    async with mcp.session_manager.run():
        started.set()
        await stop.wait()


async def _purge_transcripts_forever(services: Services) -> None:
    """Chat transcripts go as soon as they expire, whether or not anyone chats again."""
    while True:
        await asyncio.sleep(60)
        try:
            async with services.sessionmaker() as session, session.begin():
                await ai.purge_expired_transcripts(session, services.clock())
        except Exception as exc:  # the database may be down: try again next round
            log.warning("purging chat transcripts failed: %s", type(exc).__name__)


# Full passes per middle-generation pass: CPython's default is 10, about every 15 s under
# workload C, and each pass stopped the event loop for 0.2-0.26 s at 500 sockets a process.
FULL_GC_EVERY = 100


def tune_gc() -> None:
    """The cyclic collector walks every tracked object on a full pass, with the event loop
    stopped, at ~1 µs an object on these machines. Start-up leaves ~280k objects that live as
    long as the process (modules, schema, ORM mappings): freeze them out of every pass, and
    make full passes rarer; young passes still catch short-lived cycles."""
    gc.freeze()
    young, middle, _ = gc.get_threshold()
    gc.set_threshold(young, middle, FULL_GC_EVERY)


def _say_vector_index(settings: Settings, points: int) -> None:
    if settings.qdrant_url:
        log.info("vector index: Qdrant server at %s, %d points", settings.qdrant_url, points)
    else:
        where = (settings.data_dir / "vectors").resolve()
        log.info("vector index: Qdrant Edge in %s, %d points", where, points)


async def _announce_index(settings: Settings, services: Services) -> None:
    """Say where the index is and how many points it serves, once it is open."""
    try:
        await services.vectors.ensure_open()
        serving = services.vectors.serving is not None
        _say_vector_index(settings, await services.vectors.count() if serving else 0)
    except Exception as exc:
        log.warning("vector index unavailable at start-up: %s", trouble(exc))


def create_app(settings: Settings | None = None) -> Starlette:
    settings = settings or get_settings()
    configure_logging(settings.log_level, json=settings.json_logs)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        engine = create_engine(resolve_database_url(settings), settings)
        app.state.services = services = build_services(settings, engine)
        await services.hub.start()
        # The index may be down at start-up, or first need its transform fitted (seconds):
        # discovery answers from PostgreSQL, degraded, until it is open.
        announce = asyncio.create_task(_announce_index(settings, services))
        indexer = (
            asyncio.create_task(IndexWorker(services).run()) if settings.vector_worker else None
        )
        settler = asyncio.create_task(_settle_orders_forever(services)) if services.pay else None
        purger = asyncio.create_task(_purge_transcripts_forever(services))
        # A mounted app's own lifespan never runs: the MCP session manager runs here, in a task
        # of its own (its anyio task group must end in the task that started it, and a
        # lifespan's start and end may run in different tasks).
        # One MCP server per lifespan run: its session manager runs only once.
        mcp, app.state.mcp_app = mcp_http_app(lambda: services, settings, sdl=sdl)
        mcp_started, stop_mcp = asyncio.Event(), asyncio.Event()
        mcp_task = asyncio.create_task(_run_mcp(mcp, mcp_started, stop_mcp))
        await asyncio.wait(
            {mcp_task, asyncio.create_task(mcp_started.wait())},
            return_when=asyncio.FIRST_COMPLETED,
        )
        if mcp_task.done():
            mcp_task.result()  # it failed to start: say why
        if settings.gc_tuning:
            tune_gc()
        try:
            yield
        finally:
            stop_mcp.set()
            try:
                await mcp_task
            finally:
                for task in (purger, settler, indexer, announce):
                    if task:
                        task.cancel()
                await close_services(services)

    schema = build_schema(settings)
    graphql = GraphQLApp(
        schema,
        graphql_ide="graphiql" if settings.graphiql_enabled else None,
        allow_queries_via_get=False,
        subscription_protocols=(GRAPHQL_TRANSPORT_WS_PROTOCOL,),
        allowed_origins=settings.ws_allowed_origins,
        connection_init_wait_timeout=timedelta(seconds=settings.ws_init_timeout_s),
        max_subscriptions_per_connection=settings.ws_max_subscriptions,
        multipart_uploads_enabled=True,
    )
    graphql.max_tokens = settings.max_tokens
    graphql.documents = schema.documents
    if settings.graphiql_enabled:
        graphql.ide_page = graphiql_page(settings)
    http_graphql: ASGIApp = graphql
    if settings.compiled_queries:
        compiled = CompiledQueries(
            schema._schema,
            schema.documents,
            max_cost=settings.max_query_cost,
            report_cost=not settings.is_production,
            report_path=settings.reports_path,
            timeout_s=settings.operation_timeout_s,
            hits_in_sql=settings.redis_url is None,
        )
        http_graphql = FastPathApp(graphql, compiled)
    # One GraphQL-over-HTTP behaviour in front of both paths (src/graphql_http.py); body limits
    # and read times for every endpoint: RequestGuard, in the middleware below.
    http_graphql = GraphQLOverHTTP(
        http_graphql, documents=graphql.documents, ide=settings.graphiql_enabled
    )
    middleware = [Middleware(RequestIdMiddleware)]
    if settings.cors_allowed_origins:
        middleware.append(
            Middleware(
                CORSMiddleware,
                allow_origins=settings.cors_allowed_origins,
                allow_methods=["GET", "POST"],
                allow_headers=[
                    "authorization",
                    "content-type",
                    "x-request-id",
                    "apollo-require-preflight",
                ],
            )
        )
    middleware.append(
        Middleware(
            RequestGuard,
            json_limit=settings.max_json_request_bytes,
            multipart_limit=settings.max_upload_request_bytes,
            body_timeout_s=settings.http_body_timeout_s,
            idle_timeout_s=settings.http_header_timeout_s,
        )
    )
    sdl = sdl_by_role(schema)  # for MCP: each role sees what it may call
    # Route, not Mount: a Mount would redirect /mcp to /mcp/. The MCP app does its own bearer
    # auth, Host and Origin checks; FastPathApp wraps /graphql only.
    app = Starlette(
        routes=[
            Route("/graphql", http_graphql, methods=["GET", "POST"]),
            WebSocketRoute("/graphql", graphql),
            Route("/mcp", _McpEndpoint(), methods=["GET", "POST", "DELETE"]),
            Route("/health", health),
            Route("/ready", ready),
            Route("/pay/notify", pay_notify, methods=["POST"]),
            Route("/proofs/{key}", proof_image, methods=["GET"]),
            Route("/wechat/callback", wechat_push, methods=["GET", "POST"]),
            *([graphiql_assets()] if settings.graphiql_enabled else []),
        ],
        middleware=middleware,
        lifespan=lifespan,
    )
    app.state.documents = schema.documents  # the one document checker (tests count its work)
    return app
