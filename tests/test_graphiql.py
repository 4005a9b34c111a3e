"""GraphiQL is served by the server itself: the page and its assets come from this origin,
the vendored builds match their manifest (versions, checksums, licences), the page's Content
Security Policy allows nothing else, and production serves none of it. The browser test is
tests/test_graphiql_browser.py."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import httpx
from pydantic import SecretStr

from src.app import create_app
from src.config import Settings
from src.graphiql import ASSETS
from tests.helpers import running_app

ROOT = Path(__file__).resolve().parent.parent


def _updater():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location(
        "update_graphiql", ROOT / "scripts/update_graphiql.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_vendored_assets_match_the_manifest() -> None:
    updater = _updater()
    assert updater.check() == []
    manifest = (ASSETS / "vendor" / "manifest.json").read_text()
    for package in ("graphiql", "react", "react-dom", "@graphiql/plugin-explorer", "graphql-ws"):
        assert f'"{package}"' in manifest
    for licence in (ASSETS / "vendor" / "licenses").iterdir():
        assert "MIT" in licence.read_text() or "Permission is hereby granted" in licence.read_text()


async def test_page_and_assets_come_from_this_origin(http: httpx.AsyncClient) -> None:
    page = await http.get("/graphql", headers={"accept": "text/html"})
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    csp = page.headers["content-security-policy"]
    assert "default-src 'none'" in csp and "script-src 'self'" in csp
    assert "connect-src 'self';" in csp
    sources = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert sources and all(s.startswith("/graphiql/") or s == "data:," for s in sources), sources
    for source in sources:
        if source.startswith("/"):
            asset = await http.get(source)
            assert asset.status_code == 200, source
    # Our own script names no other origin either.
    script = (ASSETS / "qiaoqiao.js").read_text()
    assert not re.findall(r"https?://", script)


async def test_dev_login_is_offered_only_where_it_works(settings: Settings) -> None:
    for update, offered in (
        ({}, True),
        ({"wechat_app_id": "wx1", "wechat_app_secret": SecretStr("s")}, False),
    ):
        async with running_app(create_app(settings.model_copy(update=update))) as http:
            page = await http.get("/graphql", headers={"accept": "text/html"})
            assert f'"devLogin":{str(offered).lower()}' in page.text, update


async def test_production_serves_no_graphiql(settings: Settings) -> None:
    production = settings.model_copy(update={"graphiql": False})
    async with running_app(create_app(production)) as http:
        page = await http.get("/graphql", headers={"accept": "text/html"})
        assert not page.headers["content-type"].startswith("text/html")
        assert page.json()["errors"][0]["extensions"]["code"] == "BAD_REQUEST"
        assert (await http.get("/graphiql/vendor/graphiql.min.js")).status_code == 404
