"""A TCP proxy in front of PostgreSQL, on 127.0.0.1, that can cut a connection right after
passing on its COMMIT: the commit happens, and the app never hears of it — a connection cut
at the worst moment, for real.

`cut_commit_after(b"INSERT INTO whispers")`: the next connection that sends that text (a
statement's Parse message, the first time it runs on the connection) and then a COMMIT has its
COMMIT forwarded to PostgreSQL and is then cut on both sides before any answer comes back.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field


@dataclass
class PgProxy:
    target_host: str
    target_port: int
    port: int = 0
    cuts: int = 0  # connections cut after their COMMIT
    _marker: bytes | None = None
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)

    def cut_commit_after(self, marker: bytes) -> None:
        self._marker = marker

    async def _pipe(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        upstream: bool,
        state: dict[str, bool],
        both: tuple[asyncio.StreamWriter, asyncio.StreamWriter],
    ) -> None:
        try:
            while data := await reader.read(65536):
                if state.get("cutting"):
                    continue  # PostgreSQL's answer to the COMMIT never reaches the app
                if upstream and self._marker is not None:
                    if self._marker in data:
                        state["armed"] = True
                    if state.get("armed") and b"COMMIT" in data:
                        self._marker = None
                        state["cutting"] = True
                        self.cuts += 1
                        writer.write(data)
                        await writer.drain()
                        await asyncio.sleep(0.2)  # let PostgreSQL commit it
                        for w in both:
                            w.transport.abort()
                        return
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            with contextlib.suppress(Exception):
                writer.close()

    async def _serve(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        try:
            server_r, server_w = await asyncio.open_connection(self.target_host, self.target_port)
        except OSError:
            client_w.close()
            return
        state: dict[str, bool] = {}
        both = (client_w, server_w)
        await asyncio.gather(
            self._pipe(client_r, server_w, True, state, both),
            self._pipe(server_r, client_w, False, state, both),
        )

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[PgProxy]:
        def track(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
            task = asyncio.create_task(self._serve(r, w))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

        server = await asyncio.start_server(track, "127.0.0.1", 0)
        self.port = server.sockets[0].getsockname()[1]
        try:
            yield self
        finally:
            server.close()
            for task in list(self._tasks):
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
