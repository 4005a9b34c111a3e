"""Headless Chromium (Debian's `chromium`) driven over the DevTools protocol with the
`websockets` package the tests already use: no driver, no browser download.

Every request of the page goes through the Fetch domain: requests to the page's own origin
continue, any other is failed and recorded, so a test sees what a page would have fetched from
elsewhere (a CDN) instead of only noticing that something did not load. Chromium's own
resolver maps every host name to nothing as well (`--host-resolver-rules`)."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import json
import re
import shutil
import subprocess
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import websockets

CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "chrome")


def find_chromium() -> str | None:
    for name in CANDIDATES:
        path = shutil.which(name)
        if path:
            return path
    return None


class Page:
    """One tab, attached over a flat DevTools session."""

    def __init__(self, ws: Any, session: str, origin: str):
        self.ws = ws
        self.session = session
        self.origin = origin
        self.ids = itertools.count(1)
        self.pending: dict[int, asyncio.Future[Any]] = {}
        self.requested: list[str] = []  # every URL the page asked for, websockets included
        self.blocked: list[str] = []  # those not on the page's origin (failed)
        self.problems: list[str] = []  # uncaught exceptions, console errors, CSP reports
        self.reader = asyncio.create_task(self._read())

    async def send(self, method: str, **params: Any) -> Any:
        ident = next(self.ids)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self.pending[ident] = future
        message = {"id": ident, "method": method, "params": params, "sessionId": self.session}
        await self.ws.send(json.dumps(message))
        return await asyncio.wait_for(future, 30)

    async def _read(self) -> None:
        async for raw in self.ws:
            message = json.loads(raw)
            if "id" in message:
                future = self.pending.pop(message["id"], None)
                if future is not None and not future.done():
                    if "error" in message:
                        future.set_exception(RuntimeError(str(message["error"])))
                    else:
                        future.set_result(message.get("result", {}))
            elif message.get("sessionId") == self.session:
                await self._event(message["method"], message.get("params", {}))

    async def _event(self, method: str, params: dict[str, Any]) -> None:
        if method == "Fetch.requestPaused":
            url = params["request"]["url"]
            self.requested.append(url)
            if url.startswith(self.origin + "/") or url.startswith("data:"):
                command = {"method": "Fetch.continueRequest", "params": {}}
            else:
                self.blocked.append(url)
                command = {
                    "method": "Fetch.failRequest",
                    "params": {"errorReason": "BlockedByClient"},
                }
            command["params"]["requestId"] = params["requestId"]
            # Not awaited here: this runs on the reader, which must stay free for the answer.
            await self.ws.send(
                json.dumps({"id": next(self.ids), "sessionId": self.session, **command})
            )
        elif method == "Network.webSocketCreated":
            url = params["url"]
            self.requested.append(url)
            if not re.sub(r"^ws", "http", url).startswith(self.origin + "/"):
                self.blocked.append(url)
        elif method == "Runtime.exceptionThrown":
            self.problems.append(str(params["exceptionDetails"].get("exception", params)))
        elif method == "Runtime.consoleAPICalled" and params.get("type") == "error":
            self.problems.append(" ".join(str(a.get("value", a)) for a in params["args"]))
        elif method == "Log.entryAdded" and params["entry"].get("level") == "error":
            self.problems.append(params["entry"].get("text", ""))

    async def evaluate(self, expression: str) -> Any:
        answer = await self.send(
            "Runtime.evaluate", expression=expression, awaitPromise=True, returnByValue=True
        )
        if "exceptionDetails" in answer:
            raise RuntimeError(f"{expression}: {answer['exceptionDetails']}")
        return answer["result"].get("value")

    async def wait_for(self, expression: str, timeout: float = 20) -> Any:  # noqa: ASYNC109
        """Poll a JavaScript expression until it is truthy; its value."""
        deadline = asyncio.get_running_loop().time() + timeout
        last: object = None
        while True:
            try:
                value = await self.evaluate(expression)
            except RuntimeError as error:  # not there yet (a null element, say)
                value, last = None, error
            if value:
                return value
            if asyncio.get_running_loop().time() > deadline:
                raise TimeoutError(f"waited {timeout} s for: {expression} (last: {last})")
            await asyncio.sleep(0.1)

    async def goto(self, url: str) -> None:
        await self.send("Page.navigate", url=url)

    async def screenshot(self, path: Path) -> Path:
        shot = await self.send("Page.captureScreenshot", format="png")
        await asyncio.to_thread(path.write_bytes, base64.b64decode(shot["data"]))
        return path


@contextlib.asynccontextmanager
async def chromium_page(
    executable: str, origin: str, profile: Path, size: tuple[int, int] = (1400, 900)
) -> AsyncIterator[Page]:
    """A fresh headless Chromium with one tab whose every request off `origin` fails."""
    # Popen only starts it; the DevTools address is read on a thread below.
    process = subprocess.Popen(  # noqa: ASYNC220
        [
            executable,
            "--headless=new",
            "--no-sandbox",  # tests run as root
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-default-apps",
            "--disable-extensions",
            "--disable-sync",
            "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
            f"--user-data-dir={profile}",
            f"--window-size={size[0]},{size[1]}",
            "--remote-debugging-port=0",
            "about:blank",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        endpoint = await asyncio.wait_for(asyncio.to_thread(_devtools_url, process), 30)
        async with websockets.connect(endpoint, max_size=64 * 1024 * 1024) as ws:
            raw_ids = itertools.count(1_000_000)

            async def browser(method: str, **params: Any) -> Any:
                ident = next(raw_ids)
                await ws.send(json.dumps({"id": ident, "method": method, "params": params}))
                while True:
                    message = json.loads(await asyncio.wait_for(ws.recv(), 30))
                    if message.get("id") == ident:
                        return message["result"]

            target = await browser("Target.createTarget", url="about:blank")
            attached = await browser(
                "Target.attachToTarget", targetId=target["targetId"], flatten=True
            )
            page = Page(ws, attached["sessionId"], origin)
            try:
                for domain in ("Page", "Runtime", "Network", "Log"):
                    await page.send(f"{domain}.enable")
                await page.send("Fetch.enable", patterns=[{"urlPattern": "*"}])
                yield page
            finally:
                page.reader.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await page.reader
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stderr is not None:
            process.stderr.close()


def _devtools_url(process: subprocess.Popen[str]) -> str:
    assert process.stderr is not None
    for line in process.stderr:
        found = re.search(r"DevTools listening on (ws://\S+)", line)
        if found:
            # Keep draining stderr so Chromium never blocks on a full pipe.
            threading.Thread(target=_drain, args=(process,), daemon=True).start()
            return found.group(1)
    raise RuntimeError(f"chromium exited ({process.wait()}) without a DevTools endpoint")


def _drain(process: subprocess.Popen[str]) -> None:
    assert process.stderr is not None
    for _ in process.stderr:
        pass
