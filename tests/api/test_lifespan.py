"""The ASGI lifespan readies what the first request would otherwise pay for."""

from __future__ import annotations

import subprocess
import sys
import textwrap

CHILD = textwrap.dedent("""
    import asyncio, sys
    from tastemaker.api.app import Application

    before = "anyio._backends._asyncio" in sys.modules
    messages = [{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}]
    sent = []

    async def receive():
        return messages.pop(0)

    async def send(message):
        sent.append(message["type"])

    asyncio.run(Application(api=None)({"type": "lifespan"}, receive, send))
    print(before, "anyio._backends._asyncio" in sys.modules, ",".join(sent))
""")


def test_startup_readies_the_thread_pool_before_the_first_request() -> None:
    """A request that runs in the thread pool (CreateCampaign and every other control-plane call) used to import
    anyio's asyncio backend on first use: ~25 ms of a first CreateCampaign after a start (33-45 ms against 4-6).
    A fresh process, so that no other test has imported it already."""
    run = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True, timeout=120, check=True)
    before, after, sent = run.stdout.split()
    assert before == "False"  # importing the app does not do it (else this test would prove nothing)
    assert after == "True"
    assert sent == "lifespan.startup.complete,lifespan.shutdown.complete"
