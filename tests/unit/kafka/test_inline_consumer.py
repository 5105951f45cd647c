"""Every advrec Faust app runs its Kafka consumer on its own event loop (`_InlineConsumerThread`),
unless `consumer_thread` asks for Faust's thread: calls Faust would hand to the consumer's thread
run on the caller's loop, whether the consumer's method is a coroutine or a plain function."""

from __future__ import annotations

import asyncio

import pytest

from streams.contract.settings import Settings
from streams.kafka.faust_app import _ConsumerThread, _InlineConsumerThread
from streams.worker.app import create_app, create_detector_app


@pytest.mark.parametrize("create", [create_app, create_detector_app])
def test_the_consumer_runs_on_the_apps_loop_unless_a_thread_is_asked_for(create, tmp_path):
    async def consumer_threads():
        found = []
        for threaded in (False, True):
            app = create(Settings(app_id="inline", data_dir=tmp_path, consumer_thread=threaded), "127.0.0.1:9", False)
            thread = app.consumer._thread
            found.append((type(thread), thread.thread_loop is asyncio.get_running_loop()))
        return found

    inline, threaded = asyncio.run(consumer_threads())
    assert inline == (_InlineConsumerThread, True)
    assert threaded[0] is _ConsumerThread and not threaded[1]


def test_calls_for_the_consumer_run_on_the_callers_loop(tmp_path):
    async def calls():
        app = create_app(Settings(app_id="inline", data_dir=tmp_path), "127.0.0.1:9", False)
        thread = app.consumer._thread
        loop = asyncio.get_running_loop()

        def plain(x):
            return x + 1, asyncio.get_running_loop() is loop

        async def coroutine(x):
            await asyncio.sleep(0)
            return x * 2, asyncio.get_running_loop() is loop

        async def failing():
            raise KeyError("gone")

        got = [await thread.call_thread(plain, 1), await thread.call_thread(coroutine, x=4)]
        with pytest.raises(KeyError):
            await thread.call_thread(failing)
        return got

    assert asyncio.run(calls()) == [(2, True), (8, True)]
