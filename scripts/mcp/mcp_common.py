"""Shared pieces of the MCP resume test: a tapped transport of the official
Python SDK and the tool call it makes.

The tap sits between the SDK's streamable-HTTP transport and its dispatcher:
it sees every message the server sends, in wire order, before the SDK acts on
it, so the test records exactly what arrived (progress values, responses)
without relying on the SDK's callbacks, which it runs as separate tasks.
"""

from __future__ import annotations

import json
import sys
from contextlib import asynccontextmanager
from typing import Any, AsyncIterator, Callable

import anyio
from mcp.client.session import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client
from mcp.shared.jsonrpc_dispatcher import JSONRPCDispatcher
from mcp.shared.message import ClientMessageMetadata
from mcp.types import CallToolRequest, CallToolRequestParams, CallToolResult

TOOL = "count"


def emit(**record: Any) -> None:
    """One JSON line on stdout, flushed at once (the parent reads it live)."""
    print(json.dumps(record), flush=True)


def as_dict(message: Any) -> dict[str, Any]:
    """A JSON-RPC message as a plain dict."""
    if hasattr(message, "model_dump"):
        return message.model_dump(by_alias=True, mode="json", exclude_none=True)
    return dict(message)


class Tap:
    """What one connection received: progress values and responses, in order."""

    def __init__(self, on_progress: Callable[[float], None] | None = None) -> None:
        self.progress: list[float] = []
        self.responses: list[dict[str, Any]] = []
        self.session_id: str | None = None
        self._on_progress = on_progress

    def forget_handshake(self) -> None:
        """Drops what the connection's handshake received."""
        self.progress.clear()
        self.responses.clear()

    def see(self, item: Any) -> None:
        if isinstance(item, Exception):
            return
        data = as_dict(item.message)
        if data.get("method") == "notifications/progress":
            value = data["params"]["progress"]
            self.progress.append(value)
            if self._on_progress is not None:
                self._on_progress(value)
        elif "result" in data or "error" in data:
            self.responses.append(data)


@asynccontextmanager
async def tapped_transport(
    url: str, tap: Tap, headers: dict[str, str] | None = None
) -> AsyncIterator[tuple[Any, Any]]:
    """The SDK's streamable-HTTP transport with `tap` on its read side.

    Never terminates the session on exit (no DELETE): the test decides when a
    session ends. `headers` go on every request (the SDK's own headers win).
    """
    http = create_mcp_http_client(headers=headers)

    async def remember_session(response: Any) -> None:
        session = response.headers.get("mcp-session-id")
        if session:
            tap.session_id = session

    http.event_hooks = {"request": [], "response": [remember_session]}
    async with http:
        async with streamable_http_client(url, http_client=http, terminate_on_close=False) as (
            read,
            write,
        ):
            send, receive = anyio.create_memory_object_stream[Any](0)

            async def pump() -> None:
                async with send:
                    async for item in read:
                        tap.see(item)
                        await send.send(item)

            async with anyio.create_task_group() as tg:
                tg.start_soon(pump)
                try:
                    yield receive, write
                finally:
                    tg.cancel_scope.cancel()


def bare_session(read: Any, write: Any) -> ClientSession:
    """A client session over `read`/`write` that makes no handshake (to go on
    with a session that an earlier process opened)."""
    return ClientSession(dispatcher=JSONRPCDispatcher(read, write))


def count_request(steps: int, delay_ms: int) -> CallToolRequest:
    return CallToolRequest(
        params=CallToolRequestParams(name=TOOL, arguments={"steps": steps, "delay_ms": delay_ms})
    )


async def ignore_progress(progress: float, total: float | None, message: str | None) -> None:
    """Registered so that the SDK asks for progress; the tap records it."""


async def call_count(
    session: ClientSession,
    steps: int,
    delay_ms: int,
    *,
    resume_from: str | None = None,
    on_token: Callable[[str], Any] | None = None,
) -> CallToolResult:
    """Calls the `count` tool, or resumes a call of it from `resume_from`."""
    metadata = ClientMessageMetadata(resumption_token=resume_from, on_resumption_token_update=on_token)
    return await session.send_request(
        count_request(steps, delay_ms),
        CallToolResult,
        metadata=metadata,
        progress_callback=ignore_progress,
    )


def fail(message: str) -> None:
    print(message, file=sys.stderr, flush=True)
    sys.exit(2)
