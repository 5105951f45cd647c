"""Faust's consumer, as patched by `streams.kafka.eager_delivery`: a record's callback that does not
wait runs at once with no task; one that waits still finishes, or is abandoned when the flow is
suspended, exactly as through `mode`'s `wait_first`.

The calls have the shape of Faust's `Consumer._drain_messages`:
`wait_first(callback(message), consumer.suspend_flow.wait())`, on a real `mode` service.
"""

from __future__ import annotations

import asyncio

import pytest
from faust.transport.consumer import Consumer
from mode import Service

import streams.kafka.faust_app  # noqa: F401 - installs the patches


class Drain(Service):
    """What `wait_first` reads of Faust's consumer: the service's stop / crash events and the flow's."""

    def __init__(self) -> None:
        super().__init__()
        self.suspend_flow = asyncio.Event()


def run(main):
    """Run `main(drain, tasks_made)` on a fresh loop that counts the tasks made on it."""

    async def with_counted_tasks():
        loop, made = asyncio.get_running_loop(), []

        def factory(loop, coro, **kwargs):
            made.append(coro)
            return asyncio.Task(coro, loop=loop, **kwargs)

        loop.set_task_factory(factory)
        return await main(Drain(), made)

    return asyncio.run(with_counted_tasks())


def test_a_callback_that_does_not_wait_runs_at_once_with_no_task():
    delivered = []

    async def callback(record):
        delivered.append(record)
        return f"queued {record}"

    async def main(drain, made):
        flow = drain.suspend_flow.wait()
        result = await Consumer.wait_first(drain, callback("r1"), flow)
        assert flow.cr_frame is None  # closed, never left pending
        return result, list(made)

    result, made = run(main)
    assert delivered == ["r1"]
    assert (result.results, result.stopped) == (["queued r1"], False)
    assert made == []


def test_a_callback_that_waits_goes_on_from_where_it_stopped():
    steps = []

    async def callback(record, room):
        steps.append("first step")
        await room  # a full queue: it waits until the stream takes a record
        steps.append("second step")
        return f"queued {record}"

    async def main(drain, made):
        room = asyncio.get_running_loop().create_future()
        asyncio.get_running_loop().call_later(0.01, room.set_result, None)
        result = await Consumer.wait_first(drain, callback("r1", room), drain.suspend_flow.wait())
        return result, list(made)

    result, made = run(main)
    assert steps == ["first step", "second step"]  # the first step ran once, not again
    assert "queued r1" in result.results
    assert result.stopped is False
    assert made  # the rest ran through mode's tasks


def test_a_suspended_flow_abandons_a_waiting_callback_and_it_cleans_up():
    seen = []

    async def callback(never):
        try:
            await never
        except asyncio.CancelledError:
            seen.append("cancelled")
            raise
        seen.append("went on")

    async def main(drain, made):
        loop = asyncio.get_running_loop()
        loop.call_later(0.01, drain.suspend_flow.set)  # a rebalance starts
        result = await asyncio.wait_for(
            Consumer.wait_first(drain, callback(loop.create_future()), drain.suspend_flow.wait()), 5
        )
        await asyncio.sleep(0)  # the abandoned callback runs its cancellation
        return result

    result = run(main)
    assert seen == ["cancelled"]
    assert result.results == [True]  # only the flow's wait finished


@pytest.mark.parametrize("waits_first", [False, True])
def test_a_failing_callback_raises_to_the_drain(waits_first):
    async def callback():
        if waits_first:
            await asyncio.sleep(0.001)
        raise ValueError("the stream's buffer is broken")

    async def main(drain, made):
        await Consumer.wait_first(drain, callback(), drain.suspend_flow.wait())

    with pytest.raises(ValueError, match="buffer is broken"):
        run(main)


def test_with_the_flow_suspended_the_callback_goes_through_mode_as_before():
    async def callback():
        return "queued"

    async def main(drain, made):
        drain.suspend_flow.set()
        result = await Consumer.wait_first(drain, callback(), drain.suspend_flow.wait())
        return result, list(made)

    result, made = run(main)
    assert len(made) == 4  # the callback, the flow's wait, stopped and crashed: mode's wait_first
    assert result.stopped is False
