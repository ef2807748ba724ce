"""A lean HTTP/1.1 keep-alive client for the load driver: asyncio protocols and httptools' response parser.

The client shares the 2 cores with the server it measures, so every microsecond it spends is one the
server does not get, and a late client shows up as server latency in open loop. aiohttp spent ~285 µs
of CPU per request here (60% of a core at 2,000 req/s); this one writes pre-formatted request bytes on
a pooled connection and parses only the status line, headers and length of the answer.

One request at a time per connection (no pipelining), at most ``connections`` connections; a request
that finds them all busy waits for one, inside its timeout, as aiohttp's pool did.
"""
from __future__ import annotations

import asyncio
from collections import deque
from urllib.parse import urlsplit

import httptools

ERRORS = (OSError, asyncio.TimeoutError, httptools.HttpParserError)  # a request that gets no HTTP answer


class _Connection(asyncio.Protocol):
    """One keep-alive connection; ``answer`` resolves to the status code of the response to the last request."""

    def __init__(self) -> None:
        self.parser = httptools.HttpResponseParser(self)
        self.transport: asyncio.Transport | None = None
        self.answer: asyncio.Future | None = None
        self.closed = False

    def connection_made(self, transport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as error:
            self._fail(error)
            self.close()

    def on_message_complete(self) -> None:
        if self.answer is not None and not self.answer.done():
            self.answer.set_result(self.parser.get_status_code())

    def connection_lost(self, exc) -> None:
        self.closed = True
        self._fail(ConnectionResetError("the server closed the connection"))

    def _fail(self, error: Exception) -> None:
        if self.answer is not None and not self.answer.done():
            self.answer.set_exception(error)

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()


class HttpClient:
    """``await client.request(raw_bytes)`` -> status code; raises one of ``ERRORS`` when no answer came."""

    def __init__(self, url: str, connections: int, timeout: float):
        parts = urlsplit(url)
        self.host, self.port = parts.hostname, parts.port or 80
        self.limit = connections
        self.timeout = timeout
        self.open = 0
        self._idle: list[_Connection] = []
        self._waiting: deque[asyncio.Future] = deque()

    def format(self, method: str, path: str, body: bytes | None = None, headers: dict[str, str] | None = None) -> bytes:
        """A request's bytes (build them once per request; the server sees a minimal, valid HTTP/1.1 request)."""
        lines = [f"{method} {path} HTTP/1.1", f"Host: {self.host}:{self.port}"]
        lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
        if body is not None:
            lines.append(f"Content-Length: {len(body)}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode() + (body or b"")

    async def request(self, raw: bytes) -> int:
        async with asyncio.timeout(self.timeout):
            connection = await self._acquire()
            try:
                connection.answer = asyncio.get_running_loop().create_future()
                connection.transport.write(raw)
                return await connection.answer
            except BaseException:
                connection.close()  # its state is unknown (timed out, cancelled, broken): never reuse it
                raise
            finally:
                self._release(connection)

    async def _acquire(self) -> _Connection:
        while True:
            while self._idle:
                connection = self._idle.pop()
                if not connection.closed:
                    return connection
                self.open -= 1
            if self.open < self.limit:
                self.open += 1
                try:
                    _, connection = await asyncio.get_running_loop().create_connection(_Connection, self.host, self.port)
                except BaseException:
                    self.open -= 1
                    raise
                return connection
            turn = asyncio.get_running_loop().create_future()
            self._waiting.append(turn)
            await turn

    def _release(self, connection: _Connection) -> None:
        if connection.closed:
            self.open -= 1
        else:
            self._idle.append(connection)
        while self._waiting:
            turn = self._waiting.popleft()
            if not turn.done():
                turn.set_result(None)
                break

    def close(self) -> None:
        for connection in self._idle:
            connection.close()
        self._idle.clear()
