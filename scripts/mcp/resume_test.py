"""Resuming a dropped tool call on the ssehub MCP example server, with the
official Python MCP SDK as the client.

Usage: resume_test.py URL

For each protocol era the SDK speaks — `legacy` (the initialize handshake,
an MCP session, protocol 2025-11-25) and `2026-07-28` (stateless) — it
1. calls the `count` tool (progress per step) in a child process that dies
   mid-call without a cancel (drop_mid_call.py),
2. resumes the call with the last event id the child saw (Last-Event-ID),
3. checks that the progress values over both connections are exactly 1..N,
   no gap and no duplicate, and that the result arrives once,
4. checks that another session (or a client without one) presenting that
   event id gets no data.

Prints one `ok - ...` / `not ok - ...` line per check and ends with
`N passed, M failed`; exits 1 if any check failed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import anyio
from mcp import Client

from mcp_common import Tap, bare_session, call_count, tapped_transport

HERE = os.path.dirname(os.path.abspath(__file__))
STEPS = 8
DELAY_MS = 300
DROP_AT = 3
# Bounds: the whole child run, one resume, one theft attempt.
CHILD_TIMEOUT_S = 60
RESUME_TIMEOUT_S = 30
THEFT_WAIT_S = 3
MODES = ("legacy", "2026-07-28")


class Checks:
    def __init__(self) -> None:
        self.passed = 0
        self.failed = 0

    def check(self, ok: bool, what: str, detail: Any = "") -> bool:
        if ok:
            self.passed += 1
            print(f"ok - {what}", flush=True)
        else:
            self.failed += 1
            print(f"not ok - {what}: {detail}", flush=True)
        return ok


def run_child(url: str, mode: str) -> list[dict[str, Any]]:
    """Runs drop_mid_call.py and returns its JSON lines."""
    child = subprocess.run(
        [sys.executable, os.path.join(HERE, "drop_mid_call.py"), url, mode, str(STEPS), str(DELAY_MS), str(DROP_AT)],
        capture_output=True,
        text=True,
        timeout=CHILD_TIMEOUT_S,
        cwd=HERE,
    )
    if child.returncode != 0:
        raise RuntimeError(f"child exited {child.returncode}: {child.stderr[-2000:]}")
    return [json.loads(line) for line in child.stdout.splitlines() if line.startswith("{")]


async def resume(url: str, mode: str, token: str, session: str | None, version: str) -> tuple[Tap, Any]:
    """Resumes the call from `token` as the SDK does (GET with Last-Event-ID)."""
    tap = Tap()
    with anyio.fail_after(RESUME_TIMEOUT_S):
        if mode == "legacy":
            headers = {"mcp-session-id": session or "", "mcp-protocol-version": version}
            async with tapped_transport(url, tap, headers=headers) as (read, write):
                async with bare_session(read, write) as s:
                    result = await call_count(s, STEPS, DELAY_MS, resume_from=token)
        else:
            async with Client(tapped_transport(url, tap), mode=mode) as client:
                result = await call_count(client.session, STEPS, DELAY_MS, resume_from=token)
    return tap, result


async def steal(url: str, thief_mode: str, token: str) -> Tap:
    """Another client (a new session, or none) presents `token`; returns what
    it received within THEFT_WAIT_S."""
    tap = Tap()
    async with Client(tapped_transport(url, tap), mode=thief_mode) as client:
        tap.forget_handshake()
        with anyio.move_on_after(THEFT_WAIT_S):
            await call_count(client.session, STEPS, DELAY_MS, resume_from=token)
    return tap


def text_of(result: Any) -> str:
    return " ".join(getattr(c, "text", "") for c in getattr(result, "content", []))


async def main(url: str) -> int:
    checks = Checks()
    victims: dict[str, str] = {}
    for mode in MODES:
        try:
            lines = run_child(url, mode)
        except Exception as e:  # noqa: BLE001 - reported as a failed check
            checks.check(False, f"[{mode}] tool call dropped mid-call", e)
            continue
        hello = lines[0] if lines else {}
        version = hello.get("version")
        session = hello.get("session")
        before = [l["progress"] for l in lines if "progress" in l]
        tokens = [l for l in lines if "token" in l]
        checks.check(
            version is not None and (mode != "legacy" or session is not None),
            f"[{mode}] connected (protocol {version}, session {session})",
            hello,
        )
        checks.check(
            not any("unexpected_result" in l for l in lines) and bool(tokens),
            f"[{mode}] the call was cut before its result, with event ids seen",
            lines,
        )
        k = len(before)
        checks.check(
            before == [float(i) for i in range(1, k + 1)] and k >= DROP_AT and tokens and tokens[-1]["seen"] == k,
            f"[{mode}] before the drop: progress 1..{k}, the last event id is the last progress's",
            {"progress": before, "tokens": tokens},
        )
        if not tokens:
            continue
        token = tokens[-1]["token"]
        victims[mode] = token
        try:
            tap, result = await resume(url, mode, token, session, version or "")
        except Exception as e:  # noqa: BLE001
            checks.check(False, f"[{mode}] resume with Last-Event-ID", repr(e))
            continue
        checks.check(
            tap.progress == [float(i) for i in range(k + 1, STEPS + 1)],
            f"[{mode}] the resume delivers progress {k + 1}..{STEPS}: together exactly 1..{STEPS}, no gap, no duplicate",
            tap.progress,
        )
        checks.check(
            len(tap.responses) == 1 and text_of(result) == f"counted to {STEPS}",
            f"[{mode}] the result arrives once",
            {"responses": tap.responses, "result": text_of(result)},
        )

    # Another session's id gets no data: legacy-session ids to another
    # session and to a session-less client; a stateless id to a session.
    attempts = []
    if "legacy" in victims:
        attempts += [("legacy", "legacy", victims["legacy"]), ("legacy", "2026-07-28", victims["legacy"])]
    if "2026-07-28" in victims:
        attempts += [("2026-07-28", "legacy", victims["2026-07-28"])]
    for victim_mode, thief_mode, token in attempts:
        try:
            tap = await steal(url, thief_mode, token)
        except Exception as e:  # noqa: BLE001
            checks.check(False, f"[{thief_mode}] resume with a [{victim_mode}] id", repr(e))
            continue
        checks.check(
            not tap.progress and not tap.responses,
            f"[{thief_mode}] another client presenting a [{victim_mode}] event id gets no data",
            {"progress": tap.progress, "responses": tap.responses},
        )
    checks.check(len(attempts) == 3, "every theft attempt ran", attempts)

    print(f"{checks.passed} passed, {checks.failed} failed", flush=True)
    return 1 if checks.failed else 0


if __name__ == "__main__":
    sys.exit(anyio.run(main, sys.argv[1]))
