"""The model queue shares slots fairly between callers (the real `Slots`, driven on one event loop)."""

from __future__ import annotations

import asyncio

import pytest

from app.core.errors import Overloaded
from app.providers.slots import Slots


async def run_all(slots: Slots, arrivals: list[str], hold_s: float = 0.01) -> list[str]:
    """Each arrival takes a slot in turn of arrival; returns the order in which they were served."""
    served: list[str] = []

    async def one(caller: str) -> None:
        async with slots.hold(caller):
            served.append(caller)
            await asyncio.sleep(hold_s)

    tasks = []
    for caller in arrivals:
        tasks.append(asyncio.create_task(one(caller)))
        await asyncio.sleep(0)  # arrive in this order
    await asyncio.gather(*tasks)
    return served


async def test_a_flood_from_one_key_does_not_delay_another_keys_request() -> None:
    slots = Slots(name="m", concurrency=1, depth=32, per_key_depth=16)
    served = await run_all(slots, ["A"] * 12 + ["B"])
    # B arrived last, behind eleven waiting A's: it is served right after the running one.
    assert served.index("B") == 1, served


async def test_callers_alternate_while_both_have_waiters() -> None:
    slots = Slots(name="m", concurrency=1, depth=32, per_key_depth=16)
    served = await run_all(slots, ["A"] * 6 + ["B"] * 3)
    assert served[:7] == ["A", "B", "A", "B", "A", "B", "A"], served


async def test_one_key_may_fill_the_queue_but_gives_a_place_to_another() -> None:
    slots = Slots(name="m", concurrency=1, depth=4)
    gate = asyncio.Event()
    served: list[str] = []

    async def hold(caller: str) -> None:
        async with slots.hold(caller):
            served.append(caller)
            await gate.wait()

    flood = [asyncio.create_task(hold("A")) for _ in range(5)]  # one running, the whole queue waiting
    await asyncio.sleep(0.01)
    with pytest.raises(Overloaded, match="queue depth 4"):
        async with slots.hold("A"):  # a single caller may use the whole queue, no more
            pass
    other = asyncio.create_task(hold("B"))  # another key still gets in: A's newest waiter gives way
    await asyncio.sleep(0.01)
    assert slots.waiting == 4 and not other.done()
    displaced = [t for t in flood if t.done()]
    assert len(displaced) == 1 and isinstance(displaced[0].exception(), Overloaded)
    assert "another caller needed a place" in str(displaced[0].exception())
    gate.set()
    await asyncio.gather(*(t for t in flood if t is not displaced[0]), other)
    assert served[:2] == ["A", "B"] and slots.waiting == 0 and slots.active == 0


async def test_a_waiter_that_leaves_gives_its_place_back() -> None:
    slots = Slots(name="m", concurrency=1, depth=4)
    gate = asyncio.Event()

    async def hold(caller: str) -> None:
        async with slots.hold(caller):
            await gate.wait()

    first = asyncio.create_task(hold("A"))
    await asyncio.sleep(0.01)
    leaving = asyncio.create_task(hold("B"))
    await asyncio.sleep(0.01)
    leaving.cancel()
    await asyncio.sleep(0.01)
    assert slots.waiting == 0
    gate.set()
    await first
    served = await run_all(slots, ["C"])  # the slot is free again, nothing leaked
    assert served == ["C"] and slots.active == 0 and slots._free == 1


async def test_a_reserved_place_counts_against_the_queue_and_becomes_the_slot() -> None:
    slots = Slots(name="m", concurrency=1, depth=2)
    gate = asyncio.Event()

    async def turn() -> None:
        with slots.place():  # taken before the slow part (a session lock)
            await asyncio.sleep(0.01)
            async with slots.hold("A"):
                await gate.wait()

    turns = [asyncio.create_task(turn()) for _ in range(3)]  # one slot + two places: all fit
    await asyncio.sleep(0)
    assert slots.reserved == 3
    with pytest.raises(Overloaded):
        with slots.place():  # a fourth does not: refused before it does anything slow
            pass
    await asyncio.sleep(0.05)
    assert slots.reserved == 0 and slots.active == 1 and slots.waiting == 2  # places became the queue
    gate.set()
    await asyncio.gather(*turns)
    assert (slots.active, slots.waiting, slots.reserved, slots._free) == (0, 0, 0, 1)
