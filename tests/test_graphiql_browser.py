"""GraphiQL in a real browser (headless Chromium) with every other origin blocked: the editor
renders, `{ health }` runs, the development login fills the Authorization header (kept across
a reload), and a whisper arrives through a subscription over the websocket. A screenshot is
saved (its path is printed; QQ_ARTIFACTS=<dir> keeps a copy there)."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette

from tests.browser import Page, chromium_page, find_chromium
from tests.helpers import GraphQLClient, dev_login, live_server, registered_user, send_whisper

CHROMIUM = find_chromium()
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="no chromium on PATH (.ci/run installs it)"
)

QUERY_EDITOR = "document.querySelector('.graphiql-query-editor .CodeMirror').CodeMirror"
RESPONSE = "document.querySelector('.graphiql-response .CodeMirror').CodeMirror.getValue()"
# The Headers tab is the one shown (defaultEditorToolsVisibility); Variables is hidden.
HEADERS = (
    "Array.from(document.querySelectorAll('.graphiql-editor-tool .CodeMirror'))"
    ".find(e => !e.closest('.hidden')).CodeMirror.getValue()"
)


async def run(page: Page, query: str) -> None:
    await page.evaluate(f"{QUERY_EDITOR}.setValue({json.dumps(query)})")
    # GraphiQL picks the operation name from the edited text a moment later.
    await asyncio.sleep(0.6)
    await page.evaluate("document.querySelector('.graphiql-execute-button').click()")


async def type_into(page: Page, selector: str, text: str) -> None:
    await page.evaluate(f"document.querySelector({json.dumps(selector)}).select()")
    await page.send("Input.insertText", text=text)


async def test_graphiql_loads_and_works_offline(app: Starlette, tmp_path: Path) -> None:
    assert CHROMIUM is not None, "no chromium on PATH"
    async with (
        live_server(app) as server,
        httpx.AsyncClient(base_url=server.url) as http,
        chromium_page(CHROMIUM, server.url, tmp_path / "profile") as page,
    ):
        await page.goto(server.url + "/graphql")
        await page.wait_for(f"{QUERY_EDITOR} !== undefined")
        await page.wait_for("document.readyState === 'complete'")
        assert page.blocked == [], f"the page reached for other origins: {page.blocked}"

        await run(page, "{ health }")
        answer = await page.wait_for(f"{RESPONSE}.includes('health') && {RESPONSE}")
        assert json.loads(answer) == {"data": {"health": "ok"}, "extensions": {"cost": 0}}

        # One click: the dev login panel is open; it logs in (and registers) carol.
        await type_into(page, "#qq-dev-name", "carol")
        await page.evaluate("document.querySelector('#qq-dev-login').click()")
        status = await page.wait_for(
            "(document.querySelector('#qq-dev-status') || {}).textContent"
            " && document.querySelector('#qq-dev-status').textContent.startsWith('Logged in')"
            " && document.querySelector('#qq-dev-status').textContent"
        )
        assert status.startswith("Logged in as carol"), status
        headers = json.loads(await page.evaluate(HEADERS))
        assert headers["Authorization"].startswith("Bearer ")

        # The header stays across a reload (GraphiQL keeps it in localStorage).
        await page.wait_for("(localStorage.getItem('graphiql:headers') || '').includes('Bearer')")
        await page.send("Page.reload")
        await page.wait_for(f"{QUERY_EDITOR} !== undefined && {HEADERS}.includes('Bearer')")
        assert json.loads(await page.evaluate(HEADERS)) == headers

        await run(page, "{ me { registered profile { nickname } } }")
        me = await page.wait_for(f"{RESPONSE}.includes('registered') && {RESPONSE}")
        assert json.loads(me)["data"]["me"] == {
            "registered": True,
            "profile": {"nickname": "carol"},
        }

        # A subscription runs over the websocket with the same token.
        await run(page, "subscription { whisperReceived { content isAnonymous } }")
        await page.wait_for(
            "document.querySelector('.graphiql-execute-button').title"
            " .toLowerCase().includes('stop')"
            " || document.querySelector('.graphiql-execute-button')"
            ".getAttribute('aria-label').toLowerCase().includes('stop')"
        )
        gql = GraphQLClient(http)
        sender = await registered_user(gql, "dave")
        carol = await dev_login(gql, "carol")
        await send_whisper(
            gql, sender["accessToken"], recipientId=carol["me"]["id"], content="你好 GraphiQL"
        )
        event = await page.wait_for(f"{RESPONSE}.includes('GraphiQL') && {RESPONSE}")
        assert json.loads(event)["data"]["whisperReceived"] == {
            "content": "你好 GraphiQL",
            "isAnonymous": True,
        }

        shot = await page.screenshot(tmp_path / "graphiql.png")
        if os.environ.get("QQ_ARTIFACTS"):
            shutil.copy(shot, Path(os.environ["QQ_ARTIFACTS"]) / shot.name)
        print(f"GraphiQL screenshot: {shot}")

        assert page.blocked == [], page.blocked
        assert all(
            u.startswith(server.url) or u.startswith(server.ws_url) or u.startswith("data:")
            for u in page.requested
        ), page.requested
        assert any(u.startswith(server.ws_url) for u in page.requested), "no websocket"
        assert page.problems == [], page.problems
