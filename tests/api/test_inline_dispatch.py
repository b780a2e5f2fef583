"""Runtime reads run on the event loop only while warm; a cold step moves the request to the thread pool."""

from __future__ import annotations

import asyncio
import threading

import pytest

from tastemaker.api.app import Api
from tastemaker.api.operations import implemented, inline_operations
from tastemaker.realtime.inline import NotWarm, inline, is_inline, slow_step


class Cache:
    """A cache whose miss is a slow step, like the serving caches."""

    def __init__(self) -> None:
        self.value: str | None = None
        self.threads: list[str] = []

    def operation(self, _ctx: object, **params: str) -> dict[str, str]:
        self.threads.append(threading.current_thread().name)
        if self.value is None:
            slow_step("load")
            self.value = params["key"]
        return {"value": self.value}


def test_cold_request_runs_in_the_pool_then_warm_ones_inline() -> None:
    api = Api.__new__(Api)  # run() needs no services
    cache = Cache()
    name = "GetRecommendations"
    implemented()
    assert name in inline_operations()

    async def calls() -> list[dict[str, str]]:
        return [await api.run(name, cache.operation, None, {"key": "k"}) for _ in range(3)]  # type: ignore[arg-type]

    main = threading.current_thread().name
    assert asyncio.run(calls()) == [{"value": "k"}] * 3
    # first: tried inline (refused before any work), then the pool; then inline on the loop's thread
    assert cache.threads[0] == main and cache.threads[1] != main
    assert cache.threads[2:] == [main, main]


def test_operations_not_marked_inline_always_use_the_pool() -> None:
    api = Api.__new__(Api)
    cache = Cache()
    cache.value = "warm"
    threads = asyncio.run(_twice(api, cache))
    assert all(t != threading.current_thread().name for t in threads)


async def _twice(api: Api, cache: Cache) -> list[str]:
    for _ in range(2):
        await api.run("CreateDatasetGroup", cache.operation, None, {"key": "k"})  # type: ignore[arg-type]
    return cache.threads


def test_slow_step_only_refuses_inside_inline() -> None:
    slow_step("fine outside")
    assert not is_inline()
    with inline():
        assert is_inline()
        with pytest.raises(NotWarm):
            slow_step("database read")
    assert not is_inline()


def test_inline_nests_and_restores_the_state_after_an_error() -> None:
    with inline():
        with inline():
            assert is_inline()
        assert is_inline()  # the inner block gave back the outer one's state, not "off"
        with pytest.raises(NotWarm), inline():
            slow_step("model load")
        assert is_inline()
    assert not is_inline()
    slow_step("fine again outside")


@pytest.mark.parametrize("kind", ["coroutine", "future", "plain"])
def test_an_inline_answer_that_is_awaitable_is_awaited(kind: str) -> None:
    """PutEvents answers inline with an awaitable (its group commit); run() awaits it and returns the result,
    and returns any other answer as it is (a dict that merely has keys is no awaitable)."""
    api = Api.__new__(Api)
    implemented()

    async def commit() -> dict[str, str]:
        return {"committed": "yes"}

    def operation(_ctx: object, **_params: str) -> object:
        if kind == "coroutine":
            return commit()
        if kind == "future":
            future = asyncio.get_running_loop().create_future()
            asyncio.get_running_loop().call_soon(future.set_result, {"committed": "yes"})
            return future
        return {"__await__": "not a method"}

    answer = asyncio.run(api.run("PutEvents", operation, None, {}))  # type: ignore[arg-type]
    assert answer == ({"__await__": "not a method"} if kind == "plain" else {"committed": "yes"})
