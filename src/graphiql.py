"""GraphiQL at /graphql, served entirely from this server: its assets ship inside the package
(src/static/graphiql/vendor/, refreshed by scripts/update_graphiql.py) and the page's Content
Security Policy lets it reach nothing but its own origin, so it loads where CDNs cannot be
reached. Development extras: the Headers tab is kept between reloads, subscriptions run over
the websocket with the same Authorization, and a "Dev login" panel logs in as dev:<name>."""

from __future__ import annotations

from pathlib import Path

import orjson
from starlette.responses import HTMLResponse
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles

from src.config import Settings

ASSETS = Path(__file__).resolve().parent / "static" / "graphiql"

DEFAULT_QUERY = """# qiaoqiao's GraphQL API. Ctrl-Enter runs the operation under the cursor.
#
# Log in with the "Dev login" panel (development), or put a token in the Headers tab:
#   {"Authorization": "Bearer <accessToken>"}
# Subscriptions run over the websocket with the same Authorization.

query Start {
  health
  appConfig { privacyPolicyVersion minAge proPriceFen }
  me { id registered profile { nickname } }
}
"""

# Nothing but this origin (a websocket to it included); React sets inline styles.
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; font-src 'self' data:; connect-src 'self'; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)


def graphiql_page(settings: Settings, endpoint: str = "/graphql") -> str:
    config = {
        "endpoint": endpoint,
        "devLogin": settings.dev_login_enabled,
        "defaultQuery": DEFAULT_QUERY,
    }
    # Inside <script type="application/json">: "<" escaped, so no text can end the element.
    data = orjson.dumps(config).decode().replace("<", "\\u003c")
    return (ASSETS / "index.html").read_text().replace("{{CONFIG}}", data)


def graphiql_response(page: str) -> HTMLResponse:
    return HTMLResponse(page, headers={"content-security-policy": CSP})


def graphiql_assets() -> Mount:
    return Mount("/graphiql", app=StaticFiles(directory=ASSETS), name="graphiql")
