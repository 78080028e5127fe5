"""``cancel_on_disconnect`` with the protocol's watch and with a watcher task on ``receive``."""

from __future__ import annotations

import asyncio
from typing import Any

from interlock.server.asgi import DISCONNECT_WATCH, DisconnectWatch, cancel_on_disconnect


async def _hang() -> None:
    await asyncio.sleep(30)


async def _quick() -> None:
    await asyncio.sleep(0)


async def test_a_fired_watch_cancels_the_work() -> None:
    watch = DisconnectWatch()
    scope: dict[str, Any] = {DISCONNECT_WATCH: watch}

    async def receive() -> dict[str, Any]:
        raise AssertionError("receive is not read when the server gives a watch")

    asyncio.get_running_loop().call_later(0.05, watch.fire)
    assert await asyncio.wait_for(cancel_on_disconnect(scope, receive, _hang), 5) is False
    assert watch.task is None


async def test_work_that_finishes_is_not_cancelled_by_a_later_fire() -> None:
    watch = DisconnectWatch()
    assert await cancel_on_disconnect({DISCONNECT_WATCH: watch}, _never, _quick) is True
    watch.fire()  # the connection closes after the answer: nothing is left to cancel
    assert watch.fired and watch.task is None


async def test_a_watch_fired_before_the_work_starts_skips_it() -> None:
    watch = DisconnectWatch()
    watch.fire()
    ran = []

    async def work() -> None:
        ran.append(1)

    assert await cancel_on_disconnect({DISCONNECT_WATCH: watch}, _never, work) is False
    assert ran == []


async def test_an_outside_cancellation_is_not_taken_for_a_disconnect() -> None:
    watch = DisconnectWatch()
    task = asyncio.create_task(cancel_on_disconnect({DISCONNECT_WATCH: watch}, _never, _hang))
    await asyncio.sleep(0.01)
    task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        pass
    else:
        raise AssertionError("the outside cancellation was swallowed")


async def test_without_a_watch_a_disconnect_on_receive_cancels_the_work() -> None:
    async def receive() -> dict[str, Any]:
        await asyncio.sleep(0.05)
        return {"type": "http.disconnect"}

    assert await asyncio.wait_for(cancel_on_disconnect({}, receive, _hang), 5) is False


async def _never() -> dict[str, Any]:
    await asyncio.sleep(30)
    return {"type": "http.disconnect"}
