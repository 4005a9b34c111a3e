"""The MCP interface (like `src/schema`, an outer layer: it imports resolvers, never the
reverse). Served over streamable HTTP at /mcp by the app, and over stdio by `qiaoqiao mcp`."""

from __future__ import annotations

from collections.abc import Mapping

from mcp.server import MCPServer
from mcp.server.transport_security import TransportSecuritySettings
from starlette.applications import Starlette

from src.config import Settings
from src.mcp_server.server import build_mcp_server
from src.mcp_server.viewer import Identity, ServicesRef

__all__ = ["Identity", "build_mcp_server", "mcp_http_app"]


def mcp_http_app(
    services: ServicesRef, settings: Settings, *, sdl: Mapping[str, str]
) -> tuple[MCPServer, Starlette]:
    """The server and its ASGI app answering at /mcp. Stateless JSON responses: any server
    process can answer any request (no session lives in one process's memory), and no tool
    needs to call back to the client. The caller runs `server.session_manager.run()` in its
    lifespan."""
    server = build_mcp_server(services, sdl=sdl)
    app = server.streamable_http_app(
        streamable_http_path="/mcp",
        stateless_http=True,
        json_response=True,
        transport_security=TransportSecuritySettings(
            enable_dns_rebinding_protection=True,
            allowed_hosts=settings.mcp_allowed_hosts,
            allowed_origins=settings.mcp_allowed_origins,
        ),
    )
    return server, app
