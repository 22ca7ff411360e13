"""Child process of the MCP resume test: calls the `count` tool with the
official Python SDK and dies abruptly mid-call.

Usage: drop_mid_call.py URL MODE STEPS DELAY_MS DROP_AT

MODE is the SDK's connect mode: `legacy` (the initialize handshake and an
MCP session) or a modern protocol version such as `2026-07-28` (stateless).
Prints JSON lines: `{"session", "version"}` once connected, `{"progress"}`
per notification as it arrives, `{"token", "seen"}` per event id the SDK
reports (with how many progress values had arrived by then), and exits with
`os._exit` — no cancel, no DELETE, sockets closed by the kernel — right
after reporting the event id of progress DROP_AT.
"""

from __future__ import annotations

import os
import sys

import anyio
from mcp import Client

from mcp_common import Tap, call_count, emit, tapped_transport


async def main(url: str, mode: str, steps: int, delay_ms: int, drop_at: int) -> None:
    tap = Tap(on_progress=lambda value: emit(progress=value))

    async def on_token(token: str) -> None:
        # The SDK reports an event's id after handing the event on; let the
        # tap see that event before deciding.
        for _ in range(20):
            await anyio.sleep(0)
        emit(token=token, seen=len(tap.progress))
        if tap.progress and tap.progress[-1] >= drop_at:
            os._exit(0)

    async with Client(tapped_transport(url, tap), mode=mode) as client:
        emit(session=tap.session_id, version=client.protocol_version)
        result = await call_count(client.session, steps, delay_ms, on_token=on_token)
        emit(unexpected_result=result.model_dump(mode="json"))


if __name__ == "__main__":
    url, mode, steps, delay_ms, drop_at = sys.argv[1:6]
    anyio.run(main, url, mode, int(steps), int(delay_ms), int(drop_at))
